// NewReno congestion control (RFC 5681, RFC 6582) with the window counted in bytes:
// - initial window RFC 6928 (min(10*MSS, max(2*MSS, 14600))),
// - slow start: cwnd grows by the bytes acknowledged, at most 2*MSS per ACK (RFC 3465, L = 2),
// - congestion avoidance: one MSS per cwnd of bytes acknowledged (appropriate byte counting),
// - loss found by duplicate ACKs or SACK: ssthresh = max(FlightSize/2, 2*MSS) and cwnd = ssthresh
//   for the recovery episode (the sender then keeps `pipe` under cwnd, RFC 6675 style); a full ACK
//   ends recovery with cwnd = min(ssthresh, FlightSize + MSS) (RFC 6582 3.2 step 3, option 1),
// - retransmission timeout: ssthresh as above (only for the first timeout of a series),
//   cwnd = 1 MSS (the loss window),
// - restart after idle (RFC 5681 4.1): after more than one RTO without sending, cwnd is cut to
//   the initial window.
// The sender's loss recovery (which bytes to retransmit) lives in sender.ts.

/** cwnd never grows past this (it cannot be used anyway: windows are below 2^30). */
const MAX_CWND = 1 << 30;
/** RFC 3465: slow start grows by at most L * MSS per ACK. */
const ABC_LIMIT = 2;

export class NewReno {
  cwnd = 0;
  ssthresh = MAX_CWND;
  private acked = 0;

  /** Sets the initial window for a connection whose MSS is now known. */
  init(mss: number): void {
    this.cwnd = initialWindow(mss);
    this.ssthresh = MAX_CWND;
    this.acked = 0;
  }

  /** `bytes` newly acknowledged outside recovery. */
  onAck(bytes: number, mss: number): void {
    if (this.cwnd < this.ssthresh) {
      this.cwnd = Math.min(MAX_CWND, this.cwnd + Math.min(bytes, ABC_LIMIT * mss));
      return;
    }
    this.acked += bytes;
    if (this.acked >= this.cwnd) {
      this.acked -= this.cwnd;
      this.cwnd = Math.min(MAX_CWND, this.cwnd + mss);
    }
  }

  /** Loss detected by duplicate ACKs / SACK: enter fast recovery. */
  onEnterRecovery(flight: number, mss: number): void {
    this.ssthresh = Math.max(Math.floor(flight / 2), 2 * mss);
    this.cwnd = this.ssthresh;
    this.acked = 0;
  }

  /** A full ACK (covering everything sent before recovery began). */
  onExitRecovery(flight: number, mss: number): void {
    this.cwnd = Math.max(mss, Math.min(this.ssthresh, flight + mss));
  }

  /** Retransmission timeout; `first` when it is the first of a series of timeouts. */
  onTimeout(flight: number, mss: number, first: boolean): void {
    if (first) this.ssthresh = Math.max(Math.floor(flight / 2), 2 * mss);
    this.cwnd = mss;
    this.acked = 0;
  }

  /** Sending resumes after an idle period longer than the RTO. */
  onIdleRestart(mss: number): void {
    this.cwnd = Math.min(this.cwnd, initialWindow(mss));
  }
}

/** RFC 6928 initial window in bytes. */
export function initialWindow(mss: number): number {
  return Math.min(10 * mss, Math.max(2 * mss, 14600));
}
