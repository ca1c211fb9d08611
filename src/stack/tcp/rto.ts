// Retransmission timeout estimation (RFC 6298): SRTT and RTTVAR from RTT samples, RTO =
// SRTT + max(G, 4 * RTTVAR) bounded by [minRto, maxRto], doubled on each expiry (exponential
// backoff). Samples come from timestamps (RFC 7323: valid even for retransmitted data) or, without
// timestamps, from one timed segment per flight that was never retransmitted (Karn's rule); the
// caller (sender/receiver code) picks them. A valid sample ends the backoff.

/** Clock granularity G in ms. */
const GRANULARITY_MS = 1;
/** RFC 6298: alpha = 1/8, beta = 1/4. */
const ALPHA = 0.125;
const BETA = 0.25;
const K = 4;

export class RtoEstimator {
  srtt = 0;
  rttvar = 0;
  hasSample = false;
  /** The RTO before backoff, in ms. */
  private base: number;
  /** Number of doublings since the last valid sample. */
  backoffs = 0;

  constructor(private readonly initialMs: number, private readonly minMs: number, private readonly maxMs: number) {
    this.base = initialMs;
  }

  /** The current timeout in ms (with backoff applied). */
  get rto(): number {
    let v = this.base;
    for (let i = 0; i < this.backoffs && v < this.maxMs; i++) v *= 2;
    return Math.min(v, this.maxMs);
  }

  sample(rttMs: number): void {
    const r = Math.max(0, rttMs);
    if (!this.hasSample) {
      this.srtt = r;
      this.rttvar = r / 2;
      this.hasSample = true;
    } else {
      this.rttvar = (1 - BETA) * this.rttvar + BETA * Math.abs(this.srtt - r);
      this.srtt = (1 - ALPHA) * this.srtt + ALPHA * r;
    }
    this.base = Math.min(this.maxMs, Math.max(this.minMs, this.srtt + Math.max(GRANULARITY_MS, K * this.rttvar)));
    this.backoffs = 0;
  }

  /** The timer expired: double the timeout (RFC 6298 5.5). */
  backoff(): void {
    if (this.rto < this.maxMs) this.backoffs++;
  }

  /** RFC 6298 5.7: after a SYN timed out and no sample was taken, the RTO restarts at 3 s; here
   * simply the initial value. */
  reset(): void {
    this.base = this.initialMs;
    this.backoffs = 0;
    this.hasSample = false;
  }
}
