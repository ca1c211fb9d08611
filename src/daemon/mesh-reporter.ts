// What a mesh node tells its coordinator about itself, kept current: its underlay endpoints (they
// change when the machine moves networks or an interface gets a new address), the routes it
// advertises, the state of its direct paths to peers (mesh/node.ts) and its NAT type (STUN,
// mesh-nat.ts). A report goes out when any of them changed (checked every CHECK_MS, and at once
// when MeshNode says paths changed or a STUN probe found something new), and every REFRESH_MS
// regardless, so a coordinator that restarted (its path table lives in memory)
// hears everything again soon. A failed report is retried at the next check.
import { Logger } from '../util/index.js';
import type { NatType, PathState, ReportRequest } from '../mesh/index.js';

export const REPORT_CHECK_MS = 5_000;
export const REPORT_REFRESH_MS = 30_000;

const log = new Logger('mesh');

export interface MeshReporterOptions {
  /** Sends a report (to the control channel, or straight to the in-process coordinator). */
  send: (req: ReportRequest) => Promise<void>;
  endpoints: () => string[];
  advertisedRoutes: string[];
  paths: () => Record<string, PathState>;
  /** The node's NAT type from STUN (mesh-nat.ts); undefined: not known yet, left out. */
  nat?: () => NatType | undefined;
  /** The node offers relaying (`--relay`, and always the coordinator's own node). */
  relay?: boolean;
  /** Round-trip times of the direct paths per peer node id (MeshNode.pathRtts). */
  rtts?: () => Record<string, number>;
  /** Where a relaying node serves its stream rungs (issue 11). */
  relayPorts?: { https?: number; tcp?: number };
  checkMs?: number;
  refreshMs?: number;
  now?: () => number;
}

export class MeshReporter {
  private timer: NodeJS.Timeout | null = null;
  private lastSent = '';
  private lastSentAt = -Infinity;
  private inFlight = false;
  private again = false;
  private failures = 0;
  /** Reports sent (accepted). */
  sent = 0;

  constructor(private readonly opts: MeshReporterOptions) {}

  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => this.check(), this.opts.checkMs ?? REPORT_CHECK_MS);
    this.timer.unref();
    this.check();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  /** Reports now if anything changed (MeshNode's path states did). */
  poke(): void {
    this.check();
  }

  /** Builds the report and sends it when it changed or a refresh is due. */
  check(): void {
    if (this.inFlight) {
      this.again = true;
      return;
    }
    const now = (this.opts.now ?? Date.now)();
    const nat = this.opts.nat?.();
    const req: ReportRequest = {
      endpoints: this.opts.endpoints(), advertisedRoutes: this.opts.advertisedRoutes, paths: this.opts.paths(), ...(nat ? { nat } : {}),
      ...(this.opts.relay !== undefined ? { relay: this.opts.relay } : {}), ...(this.opts.rtts ? { rtts: this.opts.rtts() } : {}),
      ...(this.opts.relayPorts ? { relayPorts: this.opts.relayPorts } : {}),
    };
    const text = JSON.stringify(req);
    if (text === this.lastSent && now - this.lastSentAt < (this.opts.refreshMs ?? REPORT_REFRESH_MS)) return;
    if (this.lastSent !== '' && text !== this.lastSent) {
      const prev = JSON.parse(this.lastSent) as ReportRequest;
      if (JSON.stringify(prev.endpoints) !== JSON.stringify(req.endpoints)) log.info(`underlay endpoints changed: ${req.endpoints!.join(', ') || 'none'}`);
    }
    this.inFlight = true;
    this.opts.send(req).then(() => {
      this.lastSent = text;
      this.lastSentAt = now;
      this.sent++;
      if (this.failures > 0) log.info('reporting to the coordinator again');
      this.failures = 0;
    }, (e: Error) => {
      if (this.failures++ === 0) log.warn(`cannot report to the coordinator (${e.message}); retrying every ${(this.opts.checkMs ?? REPORT_CHECK_MS) / 1000} s`);
    }).finally(() => {
      this.inFlight = false;
      if (this.again) {
        this.again = false;
        this.check();
      }
    });
  }
}
