// Remembers the first fragments the filter let in, so the later fragments of the same datagram
// (which carry no ports) pass too and those of refused or never-seen datagrams do not. Keyed by
// source, destination, protocol and fragment identification; direct-mapped (a newer datagram
// overwrites an older one in its slot, which then loses its later fragments: they are resent or
// the datagram is lost, as with any fragment loss). Entries live `ttlMs` (reassembly gives up
// after 30 to 60 s anyway). A later fragment that arrives before its first is refused.

import { randomBytes } from 'node:crypto';
import type { PacketFlow } from './flow.js';

const KEY_WORDS = 10; // src (4), dst (4), protocol, ident
const DEFAULT_SLOTS = 1024;
export const FRAGMENT_MEMO_TTL_MS = 30_000;

export class FragmentMemo {
  private readonly keys: Int32Array;
  private readonly expires: Float64Array;
  private readonly mask: number;
  private readonly seed = randomBytes(4).readInt32LE(0);

  constructor(slots = DEFAULT_SLOTS, readonly ttlMs = FRAGMENT_MEMO_TTL_MS) {
    let n = 16;
    while (n < slots) n *= 2;
    this.mask = n - 1;
    this.keys = new Int32Array(n * KEY_WORDS);
    this.expires = new Float64Array(n);
  }

  private slotOf(f: PacketFlow): number {
    let h = this.seed ^ f.protocol ^ Math.imul(f.fragmentIdent, 0x9e3779b1);
    for (let i = 0; i < 4; i++) {
      h = Math.imul(h ^ f.src[i]!, 0x85ebca6b);
      h = Math.imul(h ^ f.dst[i]!, 0xc2b2ae35);
      h ^= h >>> 15;
    }
    return (h ^ (h >>> 13)) & this.mask;
  }

  private matches(o: number, f: PacketFlow): boolean {
    const k = this.keys;
    for (let i = 0; i < 4; i++) if (k[o + i] !== f.src[i] || k[o + 4 + i] !== f.dst[i]) return false;
    return k[o + 8] === f.protocol && k[o + 9] === (f.fragmentIdent | 0);
  }

  /** Records the first fragment `f` (let in at `now`). */
  remember(f: PacketFlow, now: number): void {
    const slot = this.slotOf(f);
    const o = slot * KEY_WORDS, k = this.keys;
    for (let i = 0; i < 4; i++) { k[o + i] = f.src[i]!; k[o + 4 + i] = f.dst[i]!; }
    k[o + 8] = f.protocol;
    k[o + 9] = f.fragmentIdent | 0;
    this.expires[slot] = now + this.ttlMs;
  }

  /** True when `f` (a later fragment) belongs to a first fragment that was let in. */
  has(f: PacketFlow, now: number): boolean {
    const slot = this.slotOf(f);
    return this.expires[slot]! > now && this.matches(slot * KEY_WORDS, f);
  }

  clear(): void { this.expires.fill(0); }
}
