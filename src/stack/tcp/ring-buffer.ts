// A byte ring buffer for a connection's send or receive queue. Positions are offsets from the
// oldest byte (the head). Bytes may also be written past the in-order end (out-of-order data
// that the reassembly ranges describe) without counting in `length` until `extend` says so.
// Storage starts small and doubles up to `capacity`, so idle connections cost little memory;
// the ring never holds more than `capacity` bytes.
// Copies use Buffer.copy (memcpy speed, ~12x a JS byte loop for a full segment); for a sub-range
// Node makes one short-lived Uint8Array view per call, the only per-segment allocation left on
// the data path (about 100 bytes, freed by the next scavenge).

const INITIAL_STORAGE = 16 * 1024;

export class RingBuffer {
  private buf: Buffer;
  private head = 0;
  /** In-order bytes held, from the head. */
  length = 0;

  constructor(readonly capacity: number) {
    this.buf = Buffer.allocUnsafe(Math.min(capacity, INITIAL_STORAGE));
  }

  /** Bytes that can still be appended. */
  get free(): number {
    return this.capacity - this.length;
  }

  /** Appends up to `len` bytes of src[off..]; returns how many fitted. */
  append(src: Buffer, off: number, len: number): number {
    const n = Math.min(len, this.capacity - this.length);
    if (n <= 0) return 0;
    this.writeAt(this.length, src, off, n);
    this.length += n;
    return n;
  }

  /** Copies src[off, off+len) to position `pos` (pos + len <= capacity); `length` is unchanged. */
  writeAt(pos: number, src: Buffer, off: number, len: number): void {
    this.reserve(pos + len);
    const size = this.buf.length;
    let at = this.head + pos;
    if (at >= size) at -= size;
    const first = Math.min(len, size - at);
    src.copy(this.buf, at, off, off + first);
    if (first < len) src.copy(this.buf, 0, off + first, off + len);
  }

  /** Counts `n` more bytes (already written with writeAt) as in-order data. */
  extend(n: number): void {
    this.length += n;
  }

  /** Copies positions [pos, pos+len) into dst at dstOff. */
  copyOut(pos: number, dst: Buffer, dstOff: number, len: number): void {
    const size = this.buf.length;
    let at = this.head + pos;
    if (at >= size) at -= size;
    const first = Math.min(len, size - at);
    this.buf.copy(dst, dstOff, at, at + first);
    if (first < len) this.buf.copy(dst, dstOff + first, 0, len - first);
  }

  /** Drops `n` bytes from the head. */
  consume(n: number): void {
    if (n <= 0) return;
    // The head moves even when the ring empties: out-of-order bytes may sit past the end.
    this.length -= n;
    this.head += n;
    if (this.head >= this.buf.length) this.head -= this.buf.length;
  }

  /** Grows storage so positions [0, end) fit; keeps the data's positions. */
  private reserve(end: number): void {
    const size = this.buf.length;
    if (end <= size) return;
    let next = size;
    while (next < end) next *= 2;
    next = Math.min(next, this.capacity);
    const grown = Buffer.allocUnsafe(next);
    // Everything up to the old storage size may hold data (in order or out of order).
    const first = size - this.head;
    this.buf.copy(grown, 0, this.head, size);
    if (this.head > 0) this.buf.copy(grown, first, 0, this.head);
    this.buf = grown;
    this.head = 0;
  }
}
