// A small sorted set of disjoint sequence-number ranges [start, end), merged on insert. Used for
// the receiver's out-of-order data (and the SACK blocks it reports) and the sender's SACK
// scoreboard. Fixed capacity, typed arrays, no allocation after construction; each range keeps
// a "last touched" stamp so the receiver can report the most recent blocks first (RFC 2018).

import { seqGe, seqGt, seqLe, seqLt, seqMax, seqMin } from './seq.js';

export class SeqRangeSet {
  readonly start: Uint32Array;
  readonly end: Uint32Array;
  private readonly stamp: Float64Array;
  private tick = 0;
  count = 0;
  /** Sum of the ranges' lengths. */
  bytes = 0;

  constructor(readonly maxRanges: number) {
    this.start = new Uint32Array(maxRanges);
    this.end = new Uint32Array(maxRanges);
    this.stamp = new Float64Array(maxRanges);
  }

  clear(): void {
    this.count = 0;
    this.bytes = 0;
  }

  /** Adds [s, e) (s before e), merging with overlapping or touching ranges. Returns false and
   * changes nothing when the result would exceed `maxRanges` ranges or `maxBytes` bytes. */
  insert(s: number, e: number, maxBytes: number): boolean {
    const n = this.count;
    // First range that ends at or after s (could merge), last range that starts at or before e.
    let i = 0;
    while (i < n && seqLt(this.end[i]!, s)) i++;
    let j = i;
    let ns = s;
    let ne = e;
    let merged = 0;
    while (j < n && seqLe(this.start[j]!, e)) {
      ns = seqMin(ns, this.start[j]!);
      ne = seqMax(ne, this.end[j]!);
      merged += (this.end[j]! - this.start[j]!) >>> 0;
      j++;
    }
    const newCount = n - (j - i) + 1;
    const newBytes = this.bytes - merged + ((ne - ns) >>> 0);
    if (newCount > this.maxRanges || newBytes > maxBytes) return false;
    const removed = j - i;
    if (removed === 0) {
      // Open a slot at i.
      this.start.copyWithin(i + 1, i, n);
      this.end.copyWithin(i + 1, i, n);
      this.stamp.copyWithin(i + 1, i, n);
    } else if (removed > 1) {
      this.start.copyWithin(i + 1, j, n);
      this.end.copyWithin(i + 1, j, n);
      this.stamp.copyWithin(i + 1, j, n);
    }
    this.start[i] = ns;
    this.end[i] = ne;
    this.stamp[i] = ++this.tick;
    this.count = newCount;
    this.bytes = newBytes;
    return true;
  }

  /** Forgets everything before `seq`: whole ranges are dropped, a straddling one is trimmed. */
  trimBelow(seq: number): void {
    let k = 0;
    while (k < this.count && seqLe(this.end[k]!, seq)) {
      this.bytes -= (this.end[k]! - this.start[k]!) >>> 0;
      k++;
    }
    if (k > 0) this.removeFirst(k);
    if (this.count > 0 && seqLt(this.start[0]!, seq)) {
      this.bytes -= (seq - this.start[0]!) >>> 0;
      this.start[0] = seq;
    }
  }

  /** Drops the highest range (to make room when a set overflows). */
  dropLast(): void {
    if (this.count === 0) return;
    this.count--;
    this.bytes -= (this.end[this.count]! - this.start[this.count]!) >>> 0;
  }

  removeFirst(k: number): void {
    const n = this.count;
    this.start.copyWithin(0, k, n);
    this.end.copyWithin(0, k, n);
    this.stamp.copyWithin(0, k, n);
    this.count = n - k;
  }

  /** True when `seq` lies inside a range. */
  contains(seq: number): boolean {
    for (let k = 0; k < this.count; k++) {
      if (seqLt(seq, this.start[k]!)) return false;
      if (seqLt(seq, this.end[k]!)) return true;
    }
    return false;
  }

  /** Bytes of [from, to) covered by ranges. */
  coveredIn(from: number, to: number): number {
    let sum = 0;
    for (let k = 0; k < this.count; k++) {
      const s = seqMax(this.start[k]!, from);
      const e = seqMin(this.end[k]!, to);
      if (seqGt(e, s)) sum += (e - s) >>> 0;
      if (seqGe(this.start[k]!, to)) break;
    }
    return sum;
  }

  /** Writes up to `max` ranges as (start, end) pairs into `out`, most recently touched first;
   * returns how many. */
  mostRecent(out: Uint32Array, max: number): number {
    const n = Math.min(max, this.count);
    let lastStamp = Infinity;
    for (let b = 0; b < n; b++) {
      let best = -1;
      for (let k = 0; k < this.count; k++) {
        const st = this.stamp[k]!;
        if (st < lastStamp && (best < 0 || st > this.stamp[best]!)) best = k;
      }
      if (best < 0) return b;
      lastStamp = this.stamp[best]!;
      out[2 * b] = this.start[best]!;
      out[2 * b + 1] = this.end[best]!;
    }
    return n;
  }
}
