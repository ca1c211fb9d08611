// The connection-tracking table of the ACL filter: flows keyed by their 5-tuple (family,
// protocol, both addresses, both ports; the ICMP echo identifier stands in for both ports), with
// who initiated them, what has been seen, and when they expire.
//
// Layout: open addressing with linear probing over typed arrays (no objects per flow, nothing
// allocated per packet). A key is 10 int32 words: endpoint A's address (4 words), endpoint B's
// (4), A's port << 16 | B's port, family << 8 | protocol, where A is the lesser endpoint, so both
// directions of a flow find the same slot. The hash is murmur3-style over the words with a random
// per-table seed (a peer cannot aim for collisions). Capacity is a power of two at least twice the
// flow limit. Removal shifts later entries back (no tombstones). Expired flows are removed when
// found, by a sweep of a few slots per insert, and first when the table is full; if none has
// expired, the flow closest to expiring among the next EVICT_SCAN is evicted (counted).

import { randomBytes } from 'node:crypto';
import { UserError } from '../../util/index.js';
import { IpProtocol, formatIpv4Address, formatIpv6Address } from '../../wire/index.js';
import { FlowKind, PacketFlow } from './flow.js';

export interface ConntrackLimits {
  /** Flows tracked at most; beyond, the flow closest to expiring is evicted. */
  maxFlows: number;
  /** TCP before the responder has answered (SYN sent). */
  tcpUnrepliedMs: number;
  /** TCP once both sides have spoken, until a FIN or RST. */
  tcpEstablishedMs: number;
  /** TCP after a FIN from either side. */
  tcpClosingMs: number;
  /** TCP after a RST. */
  tcpClosedMs: number;
  /** UDP (and other protocols) before a reply. */
  udpUnrepliedMs: number;
  /** UDP (and other protocols) after a reply. */
  udpRepliedMs: number;
  /** ICMP echo. */
  icmpEchoMs: number;
}

export const DEFAULT_CONNTRACK_LIMITS: Readonly<ConntrackLimits> = {
  maxFlows: 32_768,
  tcpUnrepliedMs: 60_000,
  tcpEstablishedMs: 7_440_000, // 2 h 4 min: outlives the default 2 h TCP keepalive
  tcpClosingMs: 120_000,
  tcpClosedMs: 10_000,
  udpUnrepliedMs: 30_000,
  udpRepliedMs: 120_000,
  icmpEchoMs: 30_000,
};

const KEY_WORDS = 10;
const K_PORTS = 8;
const K_META = 9;
const EVICT_SCAN = 32;
const SWEEP_PER_INSERT = 2;
const TCP_FIN = 0x01;
const TCP_SYN = 0x02;
const TCP_RST = 0x04;
const TCP_ACK = 0x10;

// Per-slot state bits.
const USED = 0x80;
/** The remote side initiated the flow (it was admitted by a rule, or when there was no policy). */
const REMOTE_ORIGIN = 0x01;
const INITIATOR_IS_B = 0x02;
const SEEN_REPLY = 0x04;
const FIN_INITIATOR = 0x08;
const FIN_RESPONDER = 0x10;
const RST_SEEN = 0x20;
const CLOSING = FIN_INITIATOR | FIN_RESPONDER | RST_SEEN;

/** A tracked flow, as `snapshot` lists it (for status pages; allocates). */
export interface FlowInfo {
  family: 4 | 6;
  protocol: number;
  initiator: string;
  responder: string;
  remoteInitiated: boolean;
  replied: boolean;
  closing: boolean;
  expiresInMs: number;
}

export class FlowTable {
  readonly limits: Readonly<ConntrackLimits>;
  readonly capacity: number;
  count = 0;
  /** Flows evicted to make room (none had expired). */
  evicted = 0;
  /** Flows removed because they expired. */
  expired = 0;
  private readonly mask: number;
  private readonly keys: Int32Array;
  private readonly hashes: Int32Array;
  private readonly state: Uint8Array;
  private readonly expires: Float64Array;
  private readonly seed: number;
  private cursor = 0;
  // The key of the last `lookup` (fields, not an object: nothing allocated per packet).
  private readonly key = new Int32Array(KEY_WORDS);
  private keyHash = 0;
  private keySwapped = false;

  constructor(limits: Partial<ConntrackLimits> = {}) {
    const l = { ...DEFAULT_CONNTRACK_LIMITS, ...limits };
    for (const [k, v] of Object.entries(l)) {
      if (!Number.isFinite(v) || v <= 0) throw new UserError(`conntrack: ${k} ${String(v)} must be a positive number`);
    }
    if (!Number.isInteger(l.maxFlows) || l.maxFlows > 1 << 24) throw new UserError(`conntrack: maxFlows ${l.maxFlows} must be a whole number up to ${1 << 24}`);
    this.limits = l;
    let cap = 16;
    while (cap < l.maxFlows * 2) cap *= 2;
    this.capacity = cap;
    this.mask = cap - 1;
    this.keys = new Int32Array(cap * KEY_WORDS);
    this.hashes = new Int32Array(cap);
    this.state = new Uint8Array(cap);
    this.expires = new Float64Array(cap);
    this.seed = randomBytes(4).readInt32LE(0);
  }

  /** Writes the normalized key of `flow` (or of its quote, for ICMP errors: pass `flow.inner`). */
  private setKey(flow: PacketFlow): void {
    const k = this.key, s = flow.src, d = flow.dst;
    // Endpoint order: compare addresses word by word, then ports.
    let cmp = 0;
    for (let i = 0; i < 4 && cmp === 0; i++) cmp = s[i]! < d[i]! ? -1 : s[i]! > d[i]! ? 1 : 0;
    if (cmp === 0) cmp = flow.srcPort - flow.dstPort;
    const swapped = cmp > 0;
    const a = swapped ? d : s, b = swapped ? s : d;
    k[0] = a[0]!; k[1] = a[1]!; k[2] = a[2]!; k[3] = a[3]!;
    k[4] = b[0]!; k[5] = b[1]!; k[6] = b[2]!; k[7] = b[3]!;
    k[K_PORTS] = swapped ? (flow.dstPort << 16) | flow.srcPort : (flow.srcPort << 16) | flow.dstPort;
    k[K_META] = (flow.family << 8) | flow.protocol;
    this.keySwapped = swapped;
    let h = this.seed;
    for (let i = 0; i < KEY_WORDS; i++) {
      let w = Math.imul(k[i]!, 0xcc9e2d51);
      w = (w << 15) | (w >>> 17);
      h ^= Math.imul(w, 0x1b873593);
      h = (h << 13) | (h >>> 19);
      h = (Math.imul(h, 5) + 0xe6546b64) | 0;
    }
    h ^= h >>> 16;
    h = Math.imul(h, 0x85ebca6b);
    h ^= h >>> 13;
    h = Math.imul(h, 0xc2b2ae35);
    this.keyHash = h ^ (h >>> 16);
  }

  private keyAt(slot: number): boolean {
    const k = this.key, keys = this.keys, o = slot * KEY_WORDS;
    for (let i = 0; i < KEY_WORDS; i++) if (keys[o + i] !== k[i]) return false;
    return true;
  }

  /** The slot of `flow`'s flow, or -1 (an expired one is removed). Sets up `insert` and
   * `fromInitiator` for this flow. Allocates nothing. */
  lookup(flow: PacketFlow, now: number): number {
    this.setKey(flow);
    const h = this.keyHash;
    for (let i = h & this.mask; ; i = (i + 1) & this.mask) {
      if (this.state[i] === 0) return -1;
      if (this.hashes[i] === h && this.keyAt(i)) {
        if (this.expires[i]! <= now) {
          this.remove(i);
          this.expired++;
          return -1;
        }
        return i;
      }
    }
  }

  /** True when the packet last looked up was sent by the flow's initiator. */
  fromInitiator(slot: number): boolean {
    return ((this.state[slot]! & INITIATOR_IS_B) !== 0) === this.keySwapped;
  }

  /** True when the flow at `slot` was initiated by the remote side. */
  remoteInitiated(slot: number): boolean {
    return (this.state[slot]! & REMOTE_ORIGIN) !== 0;
  }

  /** Adds the flow last looked up (lookup returned -1), its packet sent by the initiator. Makes
   * room first when the table is full. Returns the slot. */
  insert(flow: PacketFlow, now: number, remoteInitiated: boolean): number {
    this.sweep(now, SWEEP_PER_INSERT);
    if (this.count >= this.limits.maxFlows) this.makeRoom(now);
    const h = this.keyHash;
    let i = h & this.mask;
    while (this.state[i] !== 0) i = (i + 1) & this.mask;
    this.keys.set(this.key, i * KEY_WORDS);
    this.hashes[i] = h;
    this.state[i] = USED | (remoteInitiated ? REMOTE_ORIGIN : 0) | (this.keySwapped ? INITIATOR_IS_B : 0);
    this.count++;
    this.update(i, flow, now);
    return i;
  }

  /** Records a packet of the flow at `slot` (the one last looked up): state and expiry. */
  update(slot: number, flow: PacketFlow, now: number): void {
    const l = this.limits;
    let st = this.state[slot]!;
    const fromInit = ((st & INITIATOR_IS_B) !== 0) === this.keySwapped;
    let timeout: number;
    if (flow.kind === FlowKind.Tcp) {
      const tf = flow.tcpFlags;
      if ((tf & TCP_SYN) !== 0 && (tf & TCP_ACK) === 0 && fromInit && (st & CLOSING) !== 0) {
        st &= ~(CLOSING | SEEN_REPLY); // the tuple reused for a new connection
      }
      if (!fromInit) st |= SEEN_REPLY;
      if ((tf & TCP_RST) !== 0) st |= RST_SEEN;
      if ((tf & TCP_FIN) !== 0) st |= fromInit ? FIN_INITIATOR : FIN_RESPONDER;
      timeout = (st & RST_SEEN) !== 0 ? l.tcpClosedMs : (st & CLOSING) !== 0 ? l.tcpClosingMs
        : (st & SEEN_REPLY) !== 0 ? l.tcpEstablishedMs : l.tcpUnrepliedMs;
    } else {
      if (!fromInit) st |= SEEN_REPLY;
      timeout = flow.kind === FlowKind.EchoRequest || flow.kind === FlowKind.EchoReply ? l.icmpEchoMs
        : (st & SEEN_REPLY) !== 0 ? l.udpRepliedMs : l.udpUnrepliedMs;
    }
    this.state[slot] = st;
    this.expires[slot] = now + timeout;
  }

  /** Removes the flow at `slot`, shifting back later entries of its probe run. */
  remove(slot: number): void {
    const mask = this.mask, keys = this.keys, hashes = this.hashes, state = this.state, expires = this.expires;
    let hole = slot;
    for (let j = (slot + 1) & mask; state[j] !== 0; j = (j + 1) & mask) {
      const home = hashes[j]! & mask;
      // The entry at j may move into the hole unless its home lies cyclically in (hole, j].
      const stays = hole <= j ? home > hole && home <= j : home > hole || home <= j;
      if (stays) continue;
      keys.copyWithin(hole * KEY_WORDS, j * KEY_WORDS, (j + 1) * KEY_WORDS);
      hashes[hole] = hashes[j]!;
      state[hole] = state[j]!;
      expires[hole] = expires[j]!;
      hole = j;
    }
    state[hole] = 0;
    this.count--;
  }

  /** Looks at `n` slots from the sweep cursor and removes expired flows. */
  sweep(now: number, n: number): void {
    for (let k = 0; k < n; k++) {
      const i = this.cursor;
      if (this.state[i] !== 0 && this.expires[i]! <= now) {
        this.remove(i); // an entry may shift into i: look at it again next time
        this.expired++;
      } else {
        this.cursor = (i + 1) & this.mask;
      }
    }
  }

  private makeRoom(now: number): void {
    let victim = -1;
    let seen = 0;
    for (let i = this.cursor, k = 0; k < this.capacity && seen < EVICT_SCAN; k++, i = (i + 1) & this.mask) {
      if (this.state[i] === 0) continue;
      seen++;
      if (this.expires[i]! <= now) {
        this.remove(i);
        this.expired++;
        return;
      }
      if (victim < 0 || this.expires[i]! < this.expires[victim]!) victim = i;
    }
    if (victim < 0) return;
    this.cursor = (victim + 1) & this.mask;
    this.remove(victim);
    this.evicted++;
  }

  /** Removes remote-initiated flows that `keep` rejects (it gets the flow as its initiator sent
   * it: src = initiator). Returns how many were removed. For policy changes; not per packet. */
  prune(keep: (flow: PacketFlow) => boolean, now: number): number {
    const f = new PacketFlow(false);
    let removed = 0;
    for (let i = 0; i < this.capacity;) {
      const st = this.state[i]!;
      if (st === 0) { i++; continue; }
      if (this.expires[i]! <= now) {
        this.remove(i);
        this.expired++;
        continue; // another entry may have shifted into i
      }
      if ((st & REMOTE_ORIGIN) !== 0) {
        this.flowAt(i, f);
        if (!keep(f)) {
          this.remove(i);
          removed++;
          continue;
        }
      }
      i++;
    }
    return removed;
  }

  /** Fills `f` with the flow at `slot` as its initiator sent it. */
  private flowAt(slot: number, f: PacketFlow): void {
    const o = slot * KEY_WORDS, k = this.keys;
    const initB = (this.state[slot]! & INITIATOR_IS_B) !== 0;
    const meta = k[o + K_META]!;
    f.family = (meta >>> 8) === 6 ? 6 : 4;
    f.protocol = meta & 0xff;
    for (let w = 0; w < 4; w++) {
      f.src[w] = k[o + (initB ? 4 : 0) + w]!;
      f.dst[w] = k[o + (initB ? 0 : 4) + w]!;
    }
    const portA = k[o + K_PORTS]! >>> 16, portB = k[o + K_PORTS]! & 0xffff;
    f.srcPort = initB ? portB : portA;
    f.dstPort = initB ? portA : portB;
    const p = f.protocol;
    f.kind = p === IpProtocol.Tcp ? FlowKind.Tcp : p === IpProtocol.Udp ? FlowKind.Udp
      : p === IpProtocol.Icmp || p === IpProtocol.Icmpv6 ? FlowKind.EchoRequest : FlowKind.Other;
  }

  /** Forgets every flow. */
  clear(): void {
    this.state.fill(0);
    this.count = 0;
  }

  /** The tracked flows, for status pages and tests. Allocates. */
  snapshot(now: number): FlowInfo[] {
    const out: FlowInfo[] = [];
    const f = new PacketFlow(false);
    for (let i = 0; i < this.capacity; i++) {
      const st = this.state[i]!;
      if (st === 0 || this.expires[i]! <= now) continue;
      this.flowAt(i, f);
      const ep = (w: Int32Array, port: number) => `${formatWords(f.family, w)}${f.kind === FlowKind.EchoRequest ? `#${port}` : port ? `:${port}` : ''}`;
      out.push({
        family: f.family, protocol: f.protocol, initiator: ep(f.src, f.srcPort), responder: ep(f.dst, f.dstPort),
        remoteInitiated: (st & REMOTE_ORIGIN) !== 0, replied: (st & SEEN_REPLY) !== 0, closing: (st & CLOSING) !== 0,
        expiresInMs: this.expires[i]! - now,
      });
    }
    return out;
  }
}

function formatWords(family: 4 | 6, w: Int32Array): string {
  if (family === 4) return formatIpv4Address(w[0]! >>> 0);
  const b = Buffer.alloc(16);
  for (let i = 0; i < 4; i++) b.writeInt32BE(w[i]!, 4 * i);
  return `[${formatIpv6Address(b)}]`;
}
