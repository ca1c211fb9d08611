// The test side of test/nat-udp-agent.ts: a running agent's events (one JSON line each) and its
// commands as methods. NatLab.agent() (test/nat-topology.ts) starts one in a namespace.

import type { ChildProcess } from 'node:child_process';

/** One event line of a UDP agent. */
export interface AgentEvent {
  ev: string;
  from?: string;
  port?: number;
  data?: string;
  echo?: string;
  observed?: string;
  id?: string;
  rtts?: number[];
  lost?: number;
  ok?: boolean;
  ms?: number;
  error?: string;
}

/** A running test/nat-udp-agent.ts (see its header). */
export class UdpAgent {
  readonly events: AgentEvent[] = [];
  private waiters: { pred: (e: AgentEvent) => boolean; resolve: (e: AgentEvent | null) => void }[] = [];
  private nextId = 0;
  stderr = '';

  constructor(readonly proc: ChildProcess, /** The namespace it runs in. */ readonly ns: string, readonly port: number) {
    let buf = '';
    proc.stdout!.on('data', (d: Buffer) => {
      buf += d.toString();
      let nl;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        let e: AgentEvent;
        try { e = JSON.parse(line) as AgentEvent; } catch { continue; }
        this.events.push(e);
        this.waiters = this.waiters.filter((w) => (w.pred(e) ? (w.resolve(e), false) : true));
      }
    });
    proc.stderr!.on('data', (d: Buffer) => { this.stderr += d.toString(); });
  }

  /** The first event (already seen or coming) that matches, or null after `ms`. */
  next(pred: (e: AgentEvent) => boolean, ms: number): Promise<AgentEvent | null> {
    const seen = this.events.find(pred);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve) => {
      const w = { pred, resolve: (e: AgentEvent | null) => { clearTimeout(t); resolve(e); } };
      const t = setTimeout(() => { this.waiters = this.waiters.filter((x) => x !== w); resolve(null); }, ms);
      this.waiters.push(w);
    });
  }

  /** Received datagrams whose text is `data` (echo answers excluded). */
  receivedData(data: string): AgentEvent[] {
    return this.events.filter((e) => e.ev === 'recv' && e.data === data);
  }

  send(to: string, port: number, data: string): void {
    this.command({ op: 'send', to, port, data });
  }

  /** Asks an echoing agent which source address and port it sees; null if no answer in `ms`. */
  async observedBy(to: string, port: number, ms = 2000): Promise<{ addr: string; port: number } | null> {
    const data = `whoami-${this.nextId++}-${Math.random().toString(36).slice(2)}`;
    this.send(to, port, data);
    const e = await this.next((x) => x.ev === 'recv' && x.echo === data, ms);
    if (!e?.observed) return null;
    const [addr, p] = e.observed.split(':');
    return { addr: addr!, port: Number(p) };
  }

  /** `count` echo round trips to an agent, timed inside the agent (ms). */
  async ping(to: string, port: number, opts: { count?: number; gapMs?: number; timeoutMs?: number } = {}): Promise<{ rtts: number[]; lost: number }> {
    const id = `p${this.nextId++}`;
    const count = opts.count ?? 5;
    const timeoutMs = opts.timeoutMs ?? 2000;
    this.command({ op: 'ping', id, to, port, count, gapMs: opts.gapMs ?? 20, timeoutMs });
    const e = await this.next((x) => x.ev === 'ping' && x.id === id, count * (timeoutMs + (opts.gapMs ?? 20)) + 5000);
    if (!e) throw new Error(`ping from ${this.ns} to ${to}:${port} never finished (agent stderr: ${this.stderr})`);
    return { rtts: e.rtts ?? [], lost: e.lost ?? 0 };
  }

  /** Connects to a TCP echo server (an agent's --tcp-port) and gets a line back. */
  async tcp(to: string, port: number, timeoutMs = 2000): Promise<{ ok: boolean; ms: number; error?: string }> {
    const id = `t${this.nextId++}`;
    this.command({ op: 'tcp', id, to, port, timeoutMs });
    const e = await this.next((x) => x.ev === 'tcp' && x.id === id, timeoutMs + 5000);
    if (!e) throw new Error(`tcp check from ${this.ns} never finished`);
    return { ok: !!e.ok, ms: e.ms ?? 0, ...(e.error ? { error: e.error } : {}) };
  }

  private command(c: Record<string, unknown>): void {
    this.proc.stdin!.write(JSON.stringify(c) + '\n');
  }
}
