// How many of something one source may hold at once, and everyone together: the control
// server's TLS connections, and Noise handshakes being read and answered. A source is the auth
// limiter's key (an IPv4 address, or an IPv6 /64). A source is forgotten when it holds nothing,
// so the table never has more entries than the total cap.

export type GateRefusal = 'source' | 'total';

export class SourceGate {
  private readonly held = new Map<string, number>();
  private total = 0;

  /** At most `perSource` slots for one source, `overall` in all. */
  constructor(readonly perSource: number, readonly overall: number) {}

  /** Takes a slot for `source`: null, or which cap is full (then nothing was taken). */
  acquire(source: string): GateRefusal | null {
    if (this.total >= this.overall) return 'total';
    const n = this.held.get(source) ?? 0;
    if (n >= this.perSource) return 'source';
    this.held.set(source, n + 1);
    this.total++;
    return null;
  }

  /** Gives back a slot taken by acquire. */
  release(source: string): void {
    const n = this.held.get(source);
    if (n === undefined) return;
    if (n <= 1) this.held.delete(source);
    else this.held.set(source, n - 1);
    this.total--;
  }

  /** Slots held now (all sources). */
  get size(): number {
    return this.total;
  }

  /** Slots `source` holds now. */
  heldBy(source: string): number {
    return this.held.get(source) ?? 0;
  }
}
