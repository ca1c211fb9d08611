// Helpers for network-namespace tests: create namespaces joined by veth pairs, run commands in
// them, start processes, and remove everything (processes by PID, then namespaces) at the end,
// also when the test fails. Use one Topology per test file and call `destroy()` in `after`.

import { execFileSync, spawn, spawnSync, type ChildProcess, type SpawnOptions } from 'node:child_process';

let counter = 0;

/** A short unique prefix for names (interface names must stay within 15 characters). */
export function uniqueTag(prefix: string): string {
  return `${prefix}${process.pid % 100000}${(counter++).toString(36)}`;
}

export function sh(cmd: string, args: string[], opts: { input?: string; allowFail?: boolean } = {}): string {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', input: opts.input, stdio: ['pipe', 'pipe', 'pipe'] });
  } catch (err) {
    if (opts.allowFail) return '';
    const e = err as { stderr?: string; stdout?: string; message: string };
    throw new Error(`${cmd} ${args.join(' ')} failed: ${e.stderr || e.stdout || e.message}`);
  }
}

export class Topology {
  readonly namespaces: string[] = [];
  readonly procs: ChildProcess[] = [];
  private cleanups: (() => void)[] = [];

  constructor(readonly tag: string = uniqueTag('mt')) {}

  /** Creates a namespace named `<tag><suffix>` with loopback up; returns its name. */
  ns(suffix: string): string {
    const name = `${this.tag}${suffix}`;
    sh('ip', ['netns', 'add', name]);
    this.namespaces.push(name);
    sh('ip', ['-n', name, 'link', 'set', 'lo', 'up']);
    return name;
  }

  /** Runs a command inside a namespace and returns its stdout. */
  exec(ns: string, cmd: string, args: string[], opts: { input?: string; allowFail?: boolean } = {}): string {
    return sh('ip', ['netns', 'exec', ns, cmd, ...args], opts);
  }

  /** Joins two namespaces with a veth pair and gives each end an address (CIDR form). */
  link(nsA: string, addrA: string, nsB: string, addrB: string, opts: { mtu?: number } = {}): { ifA: string; ifB: string } {
    const ifA = `v${this.tag.slice(-8)}${counter}a`.slice(0, 15);
    const ifB = `v${this.tag.slice(-8)}${counter++}b`.slice(0, 15);
    sh('ip', ['link', 'add', ifA, 'netns', nsA, 'type', 'veth', 'peer', 'name', ifB, 'netns', nsB]);
    for (const [ns, ifc, addr] of [[nsA, ifA, addrA], [nsB, ifB, addrB]] as const) {
      if (addr) sh('ip', ['-n', ns, 'addr', 'add', addr, 'dev', ifc, ...(addr.includes(':') ? ['nodad'] : [])]);
      if (opts.mtu) sh('ip', ['-n', ns, 'link', 'set', ifc, 'mtu', String(opts.mtu)]);
      sh('ip', ['-n', ns, 'link', 'set', ifc, 'up']);
    }
    return { ifA, ifB };
  }

  /** Starts a long-running process inside a namespace; it is killed (by PID) in destroy(). */
  spawn(ns: string | null, cmd: string, args: string[], opts: SpawnOptions = {}): ChildProcess {
    const p = ns
      ? spawn('ip', ['netns', 'exec', ns, cmd, ...args], { stdio: ['ignore', 'pipe', 'pipe'], ...opts })
      : spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], ...opts });
    this.procs.push(p);
    return p;
  }

  /** Registers extra cleanup work, run first in destroy(). */
  onDestroy(fn: () => void): void {
    this.cleanups.push(fn);
  }

  /** Kills started processes by PID and deletes the namespaces. Safe to call twice. */
  async destroy(): Promise<void> {
    for (const fn of this.cleanups.splice(0)) {
      try { fn(); } catch { /* keep cleaning */ }
    }
    for (const p of this.procs.splice(0)) {
      if (p.exitCode === null && p.signalCode === null && p.pid) {
        try { process.kill(p.pid, 'SIGTERM'); } catch { /* already gone */ }
        const exited = await waitExit(p, 3000);
        if (!exited) try { process.kill(p.pid, 'SIGKILL'); } catch { /* gone */ }
      }
    }
    for (const ns of this.namespaces.splice(0)) {
      // Processes started with `ip netns exec` may have children still inside: kill them by PID.
      const pids = sh('ip', ['netns', 'pids', ns], { allowFail: true }).split(/\s+/).filter(Boolean);
      for (const pid of pids) try { process.kill(Number(pid), 'SIGKILL'); } catch { /* gone */ }
      sh('ip', ['netns', 'del', ns], { allowFail: true });
    }
  }
}

export function waitExit(p: ChildProcess, ms: number): Promise<boolean> {
  if (p.exitCode !== null || p.signalCode !== null) return Promise.resolve(true);
  return new Promise((resolve) => {
    const t = setTimeout(() => resolve(false), ms);
    p.once('exit', () => { clearTimeout(t); resolve(true); });
  });
}

/** Polls `fn` until it returns a truthy value or `ms` passes; returns the value or throws. */
export async function waitFor<T>(what: string, fn: () => T | Promise<T>, ms = 10000, every = 100): Promise<NonNullable<T>> {
  const end = Date.now() + ms;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v as NonNullable<T>;
    } catch (err) {
      last = err;
    }
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    await new Promise((r) => setTimeout(r, every));
  }
}

/** Collects a child's stdout+stderr for error messages. */
export function captureOutput(p: ChildProcess): { text: () => string } {
  let buf = '';
  p.stdout?.on('data', (d: Buffer) => { buf += d.toString(); if (buf.length > 200_000) buf = buf.slice(-100_000); });
  p.stderr?.on('data', (d: Buffer) => { buf += d.toString(); if (buf.length > 200_000) buf = buf.slice(-100_000); });
  return { text: () => buf };
}

export const isRoot = process.getuid?.() === 0;

/** True when one ping from inside `ns` to `addr` (an address or a name) is answered. The family
 * is -6 for IPv6 literals, else -4 unless given. */
export function pingOk(ns: string, addr: string, family: 4 | 6 = addr.includes(':') ? 6 : 4): boolean {
  const r = spawnSync('ip', ['netns', 'exec', ns, 'ping', `-${family}`, '-c', '1', '-W', '1', addr], { stdio: 'ignore' });
  return r.status === 0;
}

/** The A and AAAA records of `name` from the DNS server at `server`, asked from inside `ns`
 * (null when either lookup fails). */
export function resolveIn(ns: string, server: string, name: string): { a: string[]; aaaa: string[] } | null {
  const script = `const r = new (require('node:dns').promises.Resolver)({ timeout: 1000, tries: 2 }); r.setServers([${JSON.stringify(server)}]);` +
    `Promise.all([r.resolve4(${JSON.stringify(name)}), r.resolve6(${JSON.stringify(name)})]).then(([a, aaaa]) => console.log(JSON.stringify({ a, aaaa })), () => console.log('null'))`;
  const r = spawnSync('ip', ['netns', 'exec', ns, process.execPath, '-e', script], { encoding: 'utf8' });
  try { return JSON.parse(r.stdout) as { a: string[]; aaaa: string[] } | null; } catch { return null; }
}
