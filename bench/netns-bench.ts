// Shared machinery of the benches that run meshtun in network namespaces (tunnel, stack, relay):
// shell commands, processes started in a namespace and stopped by PID, namespaces, veth pairs and
// temporary directories that cleanup() removes (also on SIGINT/SIGTERM via handleSignals()),
// polling until something is ready, CPU seconds of a process from /proc/<pid>/stat, ping RTT and
// iperf3 runs. One bench is one process, so the registry of what to remove is module state.
// (Not in measure.ts: importing that starts a GC observer that the in-process benches need.)

import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The meshtun CLI and the repository root, seen from dist/bench/. */
export const MESHTUN_BIN = fileURLToPath(new URL('../../bin/meshtun.js', import.meta.url));
export const REPO = fileURLToPath(new URL('../../', import.meta.url));
export const IPERF_PORT = 5201;
/** How often a client retries while the iperf3 server still winds down the previous test. */
const IPERF_BUSY_RETRIES = 10;
/** Output kept per started process (its tail). */
const OUTPUT_KEEP = 20_000;

/** 18..217: the third octet of the benches' underlay subnets (any value works: namespaces are private). */
export const SUBNET = 18 + (process.pid % 200);

/** A name prefix unique to this process, e.g. benchTag('mtb') = "mtb12345". */
export function benchTag(prefix: string): string {
  return `${prefix}${process.pid % 100000}`;
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** "[name HH:MM:SS] msg" on stderr. */
export function progressLog(name: string): (msg: string) => void {
  return (msg) => { process.stderr.write(`[${name} ${new Date().toISOString().slice(11, 19)}] ${msg}\n`); };
}

export interface ShOptions { input?: string; allowFail?: boolean; env?: NodeJS.ProcessEnv }

/** Runs a command to completion and returns its stdout; throws with its stderr unless allowFail
 * (then returns ''). */
export function sh(cmd: string, args: string[], opts: ShOptions = {}): string {
  try {
    return execFileSync(cmd, args, {
      encoding: 'utf8', input: opts.input, env: opts.env, stdio: [opts.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
    });
  } catch (err) {
    if (opts.allowFail) return '';
    const e = err as { stderr?: string; stdout?: string; message: string };
    throw new Error(`${cmd} ${args.join(' ')}: ${(e.stderr || e.stdout || e.message).trim()}`);
  }
}

/** The short commit of the repository, or '?'. */
export function gitRevision(): string {
  return sh('git', ['-C', REPO, 'rev-parse', '--short', 'HEAD'], { allowFail: true }).trim() || '?';
}

// ---- processes, namespaces and directories, all removed by cleanup() ----

const live = new Set<ChildProcess>();
const namespaces: string[] = [];
const dirs: string[] = [];
let lastChild: ChildProcess | null = null;
let stopGraceMs = 5000;
let cleaning: Promise<void> | null = null;
let aborted = false;

/** True once SIGINT/SIGTERM arrived: a run stops at its next step. */
export function isAborted(): boolean {
  return aborted;
}

/** How long stop() waits after SIGTERM before SIGKILL (default 5 s). */
export function setStopGrace(ms: number): void {
  stopGraceMs = ms;
}

/** cleanup() stops `child` after every other process (e.g. a coordinator its members would
 * otherwise reconnect to in a loop). */
export function stopLast(child: ChildProcess): void {
  lastChild = child;
}

export interface Proc { child: ChildProcess; pid: number; output: () => string }

/** Starts a long-running command in a namespace. `ip netns exec` execs it, so the PID is its own. */
export function start(ns: string, cmd: string, args: string[], env: NodeJS.ProcessEnv = process.env): Proc {
  const child = spawn('ip', ['netns', 'exec', ns, cmd, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env });
  live.add(child);
  child.once('exit', () => live.delete(child));
  let out = '';
  const keep = (d: Buffer) => { out = (out + d.toString()).slice(-OUTPUT_KEEP); };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  return { child, pid: child.pid ?? -1, output: () => out };
}

/** SIGTERM by PID, SIGKILL if it has not exited after the grace time. */
export async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  try { process.kill(child.pid, 'SIGTERM'); } catch { return; }
  if (await Promise.race([exited.then(() => true), sleep(stopGraceMs).then(() => false)])) return;
  try { process.kill(child.pid, 'SIGKILL'); } catch { /* gone */ }
  await Promise.race([exited, sleep(1000)]);
}

export interface RunResult { code: number | null; stdout: string; stderr: string }

/** Runs a command to completion (killed after timeoutMs); returns its output and exit code. */
export function runAsync(cmd: string, args: string[], timeoutMs: number, env: NodeJS.ProcessEnv = process.env): Promise<RunResult> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], env });
    live.add(child);
    let stdout = '', stderr = '';
    child.stdout!.on('data', (d: Buffer) => { stdout += d.toString(); });
    child.stderr!.on('data', (d: Buffer) => { stderr += d.toString(); });
    const timer = setTimeout(() => { if (child.pid) try { process.kill(child.pid, 'SIGKILL'); } catch { /* gone */ } }, timeoutMs);
    child.once('close', (code) => { clearTimeout(timer); live.delete(child); resolve({ code, stdout, stderr }); });
  });
}

/** A temporary directory that cleanup() removes. */
export function tempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  dirs.push(dir);
  return dir;
}

/** Stops every process started here (by PID), kills what is left in the namespaces, deletes them
 * and removes the temporary directories. Safe to call more than once. */
export function cleanup(): Promise<void> {
  cleaning ??= (async () => {
    await Promise.all([...live].filter((c) => c !== lastChild).map(stop));
    if (lastChild) await stop(lastChild);
    for (const ns of namespaces.splice(0)) {
      for (const pid of sh('ip', ['netns', 'pids', ns], { allowFail: true }).split(/\s+/).filter(Boolean)) {
        try { process.kill(Number(pid), 'SIGKILL'); } catch { /* gone */ }
      }
      sh('ip', ['netns', 'del', ns], { allowFail: true });
    }
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  })();
  return cleaning;
}

/** On SIGINT/SIGTERM: marks the run aborted, says so through `log` (if given), cleans up and
 * exits with 130. */
export function handleSignals(log?: (msg: string) => void): void {
  const onSignal = (sig: string) => {
    aborted = true;
    log?.(`${sig}: cleaning up`);
    void cleanup().then(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
}

/** Checks root, /dev/net/tun, the commands and (if `meshtun`) a built meshtun; `fail` on the first miss. */
export function checkHost(fail: (msg: string) => never, commands: string[], installHint: string, meshtun = true): void {
  if (process.getuid?.() !== 0) fail('must run as root (network namespaces and TUN devices)');
  if (!existsSync('/dev/net/tun')) fail('/dev/net/tun is missing');
  for (const cmd of commands) {
    if (!sh('sh', ['-c', `command -v ${cmd}`], { allowFail: true }).trim()) fail(`"${cmd}" is not installed (apt-get install ${installHint})`);
  }
  if (meshtun && !existsSync(fileURLToPath(new URL('../src/cli/main.js', import.meta.url)))) fail('meshtun is not built: run `npm run build` first');
}

/** A namespace with its loopback up. */
export function addNamespace(ns: string): string {
  sh('ip', ['netns', 'add', ns]);
  namespaces.push(ns);
  sh('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
  return ns;
}

/** A veth pair between two namespaces, both ends up; addresses in CIDR form ('' for none). */
export function vethPair(nsA: string, ifA: string, addrA: string, nsB: string, ifB: string, addrB: string): void {
  sh('ip', ['link', 'add', ifA, 'netns', nsA, 'type', 'veth', 'peer', 'name', ifB, 'netns', nsB]);
  for (const [ns, ifc, addr] of [[nsA, ifA, addrA], [nsB, ifB, addrB]] as const) {
    if (addr) sh('ip', ['-n', ns, 'addr', 'add', addr, 'dev', ifc]);
    sh('ip', ['-n', ns, 'link', 'set', ifc, 'up']);
  }
}

/** Namespaces `<tag>a` and `<tag>b` joined by veth `<tag>va` (underA/24) <-> `<tag>vb` (underB/24). */
export function namespacePair(tag: string, underA: string, underB: string): void {
  addNamespace(`${tag}a`);
  addNamespace(`${tag}b`);
  vethPair(`${tag}a`, `${tag}va`, `${underA}/24`, `${tag}b`, `${tag}vb`, `${underB}/24`);
}

// ---- waiting ----

export interface WaitOptions {
  timeoutMs: number;
  intervalMs: number;
  /** Processes that must stay up, each with how an error names it ("<name> exited: <output>"). */
  watch?: [name: string, proc: Proc | null][];
  /** The error message when the time is up. */
  timedOut: () => string;
}

/** Polls `check` until it passes; throws when the run is aborted, a watched process exits or the
 * time is up. */
export async function waitUntil(check: () => boolean | Promise<boolean>, o: WaitOptions): Promise<void> {
  const deadline = Date.now() + o.timeoutMs;
  for (;;) {
    if (aborted) throw new Error('interrupted');
    for (const [name, p] of o.watch ?? []) if (p && p.child.exitCode !== null) throw new Error(`${name} exited: ${p.output().trim()}`);
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(o.timedOut());
    await sleep(o.intervalMs);
  }
}

// ---- measuring ----

const CLK_TCK = Number(sh('getconf', ['CLK_TCK'], { allowFail: true }).trim()) || 100;

/** utime and stime of a whole process (all threads), in seconds; NaN when it is gone. */
export function cpuTimes(pid: number): { user: number; system: number } {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' '); // f[0] is field 3 (state)
    return { user: Number(f[11]) / CLK_TCK, system: Number(f[12]) / CLK_TCK }; // fields 14 (utime), 15 (stime)
  } catch {
    return { user: NaN, system: NaN };
  }
}

/** utime + stime of a whole process (all threads), in seconds; NaN when it is gone. */
export function cpuSeconds(pid: number): number {
  const t = cpuTimes(pid);
  return t.user + t.system;
}

/** One ping from a namespace: true when it was answered within a second. */
export async function pingOnce(ns: string, target: string): Promise<boolean> {
  return (await runAsync('ip', ['netns', 'exec', ns, 'ping', '-n', '-q', '-c', '1', '-W', '1', target], 3000)).code === 0;
}

/** Average RTT (ms) of `count` pings every `interval` seconds, and the loss ("0%"). */
export async function pingRtt(ns: string, target: string, count: number, interval: string): Promise<{ avg: number | null; loss: string }> {
  const r = await runAsync('ip', ['netns', 'exec', ns, 'ping', '-n', '-q', '-c', String(count), '-i', interval, '-W', '2', target], count * 1000 + 10_000);
  const rtt = /= [\d.]+\/([\d.]+)\//.exec(r.stdout);
  const loss = /([\d.]+%) packet loss/.exec(r.stdout);
  return { avg: rtt ? Number(rtt[1]) : null, loss: loss ? loss[1]! : '?' };
}

/** An iperf3 server in a namespace, once it listens. */
export async function iperfServer(ns: string): Promise<Proc> {
  const p = start(ns, 'iperf3', ['-s', '-p', String(IPERF_PORT)]);
  for (let t = Date.now(); Date.now() - t < 5000; await sleep(100)) {
    if (sh('ip', ['netns', 'exec', ns, 'ss', '-Hltn', `sport = :${IPERF_PORT}`], { allowFail: true }).trim()) return p;
  }
  throw new Error(`iperf3 server did not start in ${ns}: ${p.output()}`);
}

/** The parts of iperf3's -J report the benches read. */
export interface IperfJson {
  error?: string;
  end?: { sum_received?: { bits_per_second?: number; bytes?: number }; sum_sent?: { retransmits?: number; bytes?: number } };
}

export interface IperfRun<T> {
  /** The report, or null when iperf3 printed none (then code and stderr say why). */
  json: IperfJson | null; code: number | null; stderr: string;
  /** Wall-clock seconds of the client run, and `sample()` just before and after it. */
  wallS: number; before: T; after: T;
}

/** One iperf3 TCP client run from `ns` to `target` for `seconds` with `streams` streams (plus
 * `extra` arguments), retried while the server is still busy with the previous test. `sample` is
 * read around each attempt (e.g. CPU seconds of the daemons); `onAttempt` runs before each. */
export async function iperfClient<T>(ns: string, target: string, seconds: number, streams: number, extra: string[],
  sample: () => T, onAttempt?: () => void): Promise<IperfRun<T>> {
  const args = ['netns', 'exec', ns, 'iperf3', '-c', target, '-p', String(IPERF_PORT), '-t', String(seconds),
    '-P', String(streams), '--connect-timeout', '5000', '-J', ...extra];
  for (let attempt = 1; ; attempt++) {
    onAttempt?.();
    const before = sample();
    const t0 = performance.now();
    const r = await runAsync('ip', args, (seconds + 30) * 1000);
    const wallS = (performance.now() - t0) / 1000;
    const after = sample();
    let json: IperfJson | null = null;
    try { json = JSON.parse(r.stdout) as IperfJson; } catch { /* none */ }
    // The server still winds down the previous test for a moment after the client returns.
    if (json?.error?.includes('busy') && attempt < IPERF_BUSY_RETRIES) { await sleep(500); continue; }
    return { json, code: r.code, stderr: r.stderr, wallS, before, after };
  }
}
