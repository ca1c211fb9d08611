// ForwardSet: the running static port forwards of a node (TCP and UDP, both directions), with
// live reload: apply(specs) compares the wanted specs with the running ones by identity
// (direction + canonical text), stops those no longer wanted (closing their connections and
// sessions), starts the new ones and leaves the unchanged ones (and their connections and
// counters) alone. A spec that fails to start (port in use, address not ours) is reported in
// the result and not kept; the others still run. apply() calls run one at a time.

import { Logger, UserError } from '../util/index.js';
import { checkListenConflicts, forwardKey, type ForwardSpec } from './forward-spec.js';
import type { ForwardContext } from './forward-context.js';
import { TcpForward } from './tcp-forward.js';
import { UdpForward } from './udp-forward.js';

const log = new Logger('forward');

export interface ApplyResult {
  started: string[];
  stopped: string[];
  kept: string[];
  failed: { spec: string; error: string }[];
}

export interface ForwardStatus {
  direction: 'forward' | 'reverse';
  protocol: 'tcp' | 'udp';
  spec: string;
  /** Where it listens ("" host = every address), as bound. */
  listen: { host: string; port: number } | null;
  target: string;
  counters: Record<string, number>;
}

type RunningForward = TcpForward | UdpForward;

export class ForwardSet {
  private readonly running = new Map<string, RunningForward>();
  private queue: Promise<unknown> = Promise.resolve();
  private closed = false;

  constructor(private readonly ctx: ForwardContext) {}

  /** Makes the running set equal to `specs`. Rejects with a ForwardSpecError (nothing changed)
   * when two specs would listen on the same port. */
  apply(specs: readonly ForwardSpec[]): Promise<ApplyResult> {
    try {
      checkListenConflicts(specs);
    } catch (err) {
      return Promise.reject(err);
    }
    const run = this.queue.then(() => this.applyNow(specs));
    this.queue = run.catch(() => undefined);
    return run;
  }

  private async applyNow(specs: readonly ForwardSpec[]): Promise<ApplyResult> {
    if (this.closed) throw new UserError('the forwards of this node are closed');
    const result: ApplyResult = { started: [], stopped: [], kept: [], failed: [] };
    const wanted = new Map<string, ForwardSpec>();
    for (const s of specs) wanted.set(forwardKey(s), s);
    for (const [key, fwd] of this.running) {
      if (wanted.has(key)) continue;
      await fwd.stop();
      this.running.delete(key);
      result.stopped.push(key);
      log.info(`stopped ${key}`);
    }
    for (const [key, spec] of wanted) {
      if (this.running.has(key)) {
        result.kept.push(key);
        continue;
      }
      const fwd = spec.protocol === 'tcp' ? new TcpForward(spec, this.ctx) : new UdpForward(spec, this.ctx);
      try {
        await fwd.start();
      } catch (err) {
        await fwd.stop();
        result.failed.push({ spec: key, error: (err as Error).message });
        log.warn(`cannot start ${key}: ${(err as Error).message}`);
        continue;
      }
      this.running.set(key, fwd);
      result.started.push(key);
      log.info(`started ${key}`);
    }
    return result;
  }

  /** Each running forward, its address and counters. */
  status(): ForwardStatus[] {
    return [...this.running.values()].map((f) => ({
      direction: f.spec.direction,
      protocol: f.spec.protocol,
      spec: f.spec.text,
      listen: f.address,
      target: `${f.spec.targetHost}:${f.spec.targetPort}`,
      counters: f.counters.snapshot(f.active),
    }));
  }

  /** The running forward with this spec's identity, if any (for tests and status). */
  get(spec: ForwardSpec): RunningForward | undefined {
    return this.running.get(forwardKey(spec));
  }

  get size(): number {
    return this.running.size;
  }

  /** Stops every forward. */
  async close(): Promise<void> {
    await this.queue;
    this.closed = true;
    for (const f of this.running.values()) await f.stop();
    this.running.clear();
  }
}
