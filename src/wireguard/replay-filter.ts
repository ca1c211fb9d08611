// WireGuard's sliding-window replay filter for the 64-bit counters of transport messages
// (RFC 6479 style): a ring of 2^13 bits kept in 128 blocks of 64 bits. The block holding the
// newest counter is always live, and when the window moves forward whole blocks are zeroed, so
// 127 full blocks behind it stay valid: WINDOW_SIZE = 2^13 - 64 = 8128 counters behind the newest
// one are still accepted once each, anything older is refused. The same window as wireguard-go
// and the Linux kernel, so both ends agree on which reordered packets survive.
//
// Counters are taken as two uint32 halves (`validate(lo, hi)`), exactly as they sit on the wire
// (little-endian u64 at offset 8 of a transport message: lo = readUInt32LE(8), hi =
// readUInt32LE(12)). All arithmetic stays in 32-bit halves, so the whole 64-bit range up to
// REJECT_AFTER_MESSAGES is exact and no BigInt is made per packet. `validateNumber(n)` takes a
// JS number for callers that count locally (exact below 2^53, which a session never reaches:
// keys are rotated after REKEY_AFTER_MESSAGES = 2^60 only in theory, after 2 minutes in practice).
//
// Call `validate` only after the packet has been authenticated (decrypted), as WireGuard does;
// otherwise forged counters would move the window.

/** log2 of the bits per ring block. */
const BLOCK_BIT_LOG = 6;
/** Bits per ring block (a 64-bit word in wireguard-go; here two uint32 words). */
const BLOCK_BITS = 1 << BLOCK_BIT_LOG;
/** Blocks in the ring: 128 x 64 = 2^13 bits. */
const RING_BLOCKS = 1 << 7;
const RING_BLOCK_MASK = RING_BLOCKS - 1;
/** Total bits in the ring (2^13). */
export const REPLAY_RING_BITS = RING_BLOCKS * BLOCK_BITS;
const RING_BIT_MASK = REPLAY_RING_BITS - 1;
/** How far behind the newest accepted counter a counter may be and still be accepted once. */
export const REPLAY_WINDOW_SIZE = (RING_BLOCKS - 1) * BLOCK_BITS; // 8128
/** uint32 words per ring block. */
const WORDS_PER_BLOCK = BLOCK_BITS / 32;

/** REJECT_AFTER_MESSAGES = 2^64 - 2^13 - 1, as two uint32 halves: counters >= this are refused. */
export const REJECT_AFTER_MESSAGES_HI = 0xffffffff;
export const REJECT_AFTER_MESSAGES_LO = 0xffffdfff;

const TWO_POW_32 = 0x1_0000_0000;

/** A per-keypair replay filter. Not thread-safe; one per receiving keypair. */
export class ReplayFilter {
  /** The ring: bit (counter mod 2^13) says whether that counter was seen. */
  private readonly ring = new Uint32Array(REPLAY_RING_BITS / 32);
  /** The newest accepted counter, as uint32 halves. */
  private lastLo = 0;
  private lastHi = 0;

  /** Forgets every counter (for a new keypair). */
  reset(): void {
    this.ring.fill(0);
    this.lastLo = 0;
    this.lastHi = 0;
  }

  /** The newest counter accepted so far, as a number (exact below 2^53; for status and tests). */
  get newest(): number {
    return this.lastHi * TWO_POW_32 + this.lastLo;
  }

  /** Checks the counter `hi * 2^32 + lo` (both uint32): returns true and marks it seen when it is
   * new and inside the window; false for a replay, a counter too far behind, or one at or past
   * REJECT_AFTER_MESSAGES. Never allocates. */
  validate(counterLo: number, counterHi: number): boolean {
    const lo = counterLo >>> 0;
    const hi = counterHi >>> 0;
    if (hi === REJECT_AFTER_MESSAGES_HI && lo >= REJECT_AFTER_MESSAGES_LO) return false;
    const lastLo = this.lastLo;
    const lastHi = this.lastHi;
    if (hi > lastHi || (hi === lastHi && lo > lastLo)) {
      // Moving forward: zero the blocks the window enters (at most the whole ring).
      // d = counter - last, as halves with a borrow.
      const dHi = hi - lastHi - (lo < lastLo ? 1 : 0);
      const dLo = (lo - lastLo) >>> 0;
      let blocks: number;
      if (dHi !== 0 || dLo >= REPLAY_RING_BITS) {
        blocks = RING_BLOCKS;
      } else {
        // (counter >> 6) - (last >> 6) = ((last mod 64) + d) >> 6, d < 2^13 here.
        blocks = ((lastLo & (BLOCK_BITS - 1)) + dLo) >>> BLOCK_BIT_LOG;
        if (blocks > RING_BLOCKS) blocks = RING_BLOCKS;
      }
      // (last >> 6) mod 128 depends only on the low half, since 2^13 divides 2^32.
      const current = lastLo >>> BLOCK_BIT_LOG;
      const ring = this.ring;
      for (let i = 1; i <= blocks; i++) {
        const w = ((current + i) & RING_BLOCK_MASK) * WORDS_PER_BLOCK;
        ring[w] = 0;
        ring[w + 1] = 0;
      }
      this.lastLo = lo;
      this.lastHi = hi;
    } else {
      // At or behind the newest: refuse when last - counter > WINDOW_SIZE.
      const dHi = lastHi - hi - (lastLo < lo ? 1 : 0);
      const dLo = (lastLo - lo) >>> 0;
      if (dHi !== 0 || dLo > REPLAY_WINDOW_SIZE) return false;
    }
    const bit = lo & RING_BIT_MASK;
    const word = bit >>> 5;
    const mask = 1 << (bit & 31);
    const old = this.ring[word]!;
    if ((old & mask) !== 0) return false;
    this.ring[word] = old | mask;
    return true;
  }

  /** `validate` for a counter held as a JS number (a non-negative integer, exact below 2^53).
   * Non-integers and negative numbers are refused. */
  validateNumber(counter: number): boolean {
    if (!(counter >= 0) || !Number.isInteger(counter)) return false;
    const hi = Math.floor(counter / TWO_POW_32);
    if (hi > 0xffffffff) return false;
    return this.validate(counter >>> 0, hi);
  }
}
