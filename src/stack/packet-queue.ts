// The queue of packets the stack has built and the device reader (the WireGuard engine) has not
// read yet, with a pool of packet buffers so that sending allocates nothing once warm.
//
//   acquire(size) -> a pooled buffer to build one packet in (null when the queue is full)
//   commit(buf, len) -> queued; release(buf) -> back to the pool unused
//   readInto(bufs, sizes, offset) -> copies queued packets out, returns buffers to the pool
//
// The queue is a ring of fixed capacity; the pool holds at most that many buffers. Buffers are
// `bufferSize` long (the MTU); a bigger packet (loopback, which has no MTU) gets a one-off buffer.

export class PacketQueue {
  private readonly ringBufs: (Buffer | null)[];
  private readonly ringLens: Int32Array;
  private head = 0;
  private count = 0;
  private reserved = 0;
  private readonly pool: Buffer[] = [];
  private size: number;

  constructor(readonly capacity: number, bufferSize: number) {
    this.ringBufs = new Array<Buffer | null>(capacity).fill(null);
    this.ringLens = new Int32Array(capacity);
    this.size = bufferSize;
  }

  /** Packets waiting to be read. */
  get length(): number { return this.count; }
  /** Packets that can still be acquired (queued + acquired-not-committed count against it). */
  get free(): number { return this.capacity - this.count - this.reserved; }
  get bufferSize(): number { return this.size; }

  /** Changes the pooled buffer size (on an MTU change); smaller pooled buffers are dropped. */
  setBufferSize(size: number): void {
    if (size > this.size) this.pool.length = 0;
    this.size = size;
  }

  /** A buffer of at least `size` bytes to build a packet in, or null when the queue is full.
   * Must be followed by commit or release. */
  acquire(size: number): Buffer | null {
    if (this.count + this.reserved >= this.capacity) return null;
    this.reserved++;
    if (size > this.size) return Buffer.allocUnsafe(size);
    const b = this.pool.pop();
    return b !== undefined && b.length >= size ? b : Buffer.allocUnsafe(this.size);
  }

  /** Queues buf[0, len) (a buffer from acquire). */
  commit(buf: Buffer, len: number): void {
    this.reserved--;
    const tail = (this.head + this.count) % this.capacity;
    this.ringBufs[tail] = buf;
    this.ringLens[tail] = len;
    this.count++;
  }

  /** Returns an acquired buffer unused. */
  release(buf: Buffer): void {
    this.reserved--;
    this.recycle(buf);
  }

  /** Takes the oldest packet out of the queue (the caller must `recycle` its buffer), or null. */
  shift(): Buffer | null {
    if (this.count === 0) return null;
    const b = this.ringBufs[this.head]!;
    this.ringBufs[this.head] = null;
    this.head = (this.head + 1) % this.capacity;
    this.count--;
    return b;
  }

  /** Length of the oldest queued packet (valid when length > 0). */
  get headLength(): number { return this.ringLens[this.head]!; }

  /** Returns a buffer taken with `shift` to the pool. */
  recycle(buf: Buffer): void {
    if (buf.length === this.size && this.pool.length < this.capacity) this.pool.push(buf);
  }

  /** Copies up to bufs.length packets to bufs[i][offset...], sizes in sizes[i]. A packet that
   * does not fit its buffer is dropped and counted in `tooSmall`. Returns how many were copied. */
  readInto(bufs: Buffer[], sizes: Uint32Array, offset: number, tooSmall: { txReadTooSmall: number }): number {
    let n = 0;
    const max = Math.min(bufs.length, sizes.length);
    while (n < max && this.count > 0) {
      const len = this.headLength;
      const b = this.shift()!;
      const dst = bufs[n]!;
      if (len > dst.length - offset) {
        tooSmall.txReadTooSmall++;
      } else {
        b.copy(dst, offset, 0, len);
        sizes[n++] = len;
      }
      this.recycle(b);
    }
    return n;
  }

  /** Drops every queued packet. */
  clear(): void {
    while (this.count > 0) this.recycle(this.shift()!);
  }
}
