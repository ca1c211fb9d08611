// Multi-hop forwarding (relay-frame.ts has the frame format). When node A cannot reach node D
// directly, A's peer D gets a RelayEndpoint "D via B": the engine seals A's packets for D with the
// A-D session keys as always, and the endpoint, instead of a UDP socket, wraps each sealed datagram
// in a Forward frame and sends it to B inside the A-B session (Engine.sendFrames). B's engine
// decrypts the A-B message, finds a frame (Engine.setFrameHandler), lowers the hop limit and sends
// the frame on inside the B-D session; D finds a frame addressed to itself and hands the inner
// datagram to its engine as if it had come from the network, from the endpoint "A via B"
// (Engine.receiveDatagrams), so its replies travel back the same way. B never holds a key of the
// A-D session: it moves sealed datagrams.
//
// The next hop toward a node is whatever the engine's peer for that node uses: its direct UDP
// endpoint, or for a node that is itself relayed, its relay. A frame whose hop limit runs out at a
// relay becomes a TimeExceeded frame back to its source; the source finds the packet it sent
// (it keeps the first bytes of packets whose TTL could run out, by session counter) and writes an
// ICMP Time Exceeded from the relay's overlay address to its own host, so traceroute shows the
// relay. Every frame that is not forwarded or delivered is counted in RelayCounters.
import { Logger, RateLimitedLog } from '../util/index.js';
import { BATCH_SIZE, TRANSPORT_HEADER_SIZE, type Endpoint, type Engine, type Peer } from '../wireguard/index.js';
import {
  RELAY_FRAME, RELAY_HEADER_SIZE, RELAY_QUOTE_SIZE, ICMP_QUOTE_MAX, MAX_RELAY_HOPS, MAX_RELAY_PAYLOAD, RelayFrameType,
  writeRelayHeader, hopLimitOf, buildIcmpError,
} from './relay-frame.js';

/** Datagrams arrived through relays waiting for the engine (handed over on the next turn). The
 * engine reads up to 8 batches of BATCH_SIZE per wake-up, all of which may be frames for us. */
const RECEIVE_QUEUE = 8 * BATCH_SIZE * 2;
/** Size of the buffers frames are built in at the source (a full-MTU datagram and more). */
const TX_SLOT_SIZE = 2048 + TRANSPORT_HEADER_SIZE + RELAY_HEADER_SIZE + 64;
/** Queue slot size: a full-MTU WireGuard datagram fits; larger ones get their own buffer. */
const SLOT_SIZE = 2048;
/** Scratch size for TimeExceeded frames: the headers, the quote, padding and tag. */
const SCRATCH_SIZE = TRANSPORT_HEADER_SIZE + RELAY_HEADER_SIZE + RELAY_QUOTE_SIZE + 64;
/** Hop limits remembered per relayed peer, indexed by session counter (a send batch is 64). */
const HOP_RING = 256;
/** Packets remembered per relayed peer for Time Exceeded (those whose TTL may run out). */
const QUOTE_RING = 32;
/** What one relay adds to a packet: the frame header and a second WireGuard header and tag. */
export const RELAY_OVERHEAD = RELAY_HEADER_SIZE + TRANSPORT_HEADER_SIZE + 16;
/** The least maxPacket a relayed path claims (IPv6's minimum MTU). */
const MIN_RELAYED_PACKET = 1280;
const WG_TRANSPORT_TYPE = 4;
const TIME_EXCEEDED = { kind: 'time-exceeded' } as const;
const WG_RECEIVER = 4;
const WG_COUNTER = 8;

/** How much a relay forwards for each source node. */
export interface RelayLimits {
  /** Sustained rate per source node (bytes of frames per second). */
  bytesPerSecond: number;
  /** Burst per source node (bytes). */
  burstBytes: number;
}

/** 1 Gbit/s per source node with a 4 MB burst: far above what one node's tunnel needs through a
 * relay here, low enough that one node cannot take a relay's whole capacity. */
export const DEFAULT_RELAY_LIMITS: Readonly<RelayLimits> = { bytesPerSecond: 125_000_000, burstBytes: 4 * 1024 * 1024 };
/** Source nodes tracked (the table is cleared when full: a fresh budget is no gain for anyone). */
const MAX_RELAY_BUDGETS = 65_536;

interface RelayBudget {
  tokens: number;
  last: number;
  bytes: number;
  frames: number;
  dropped: number;
}

/** What a Relay needs to know about the network (MeshNode answers from its map). */
export interface RelayDirectory {
  /** This node's overlay IPv4 address as a number, or null before the first map. */
  selfAddress(): number | null;
  /** The engine peer of the node with this overlay IPv4 address. */
  peerByAddress(address: number): Peer | undefined;
  /** The overlay IPv6 address (16 bytes) of the node with this IPv4 address, for ICMPv6 errors. */
  ipv6ByAddress(address: number): Uint8Array | null;
  /** The overlay addresses of the node behind engine peer `peer` (IPv4 as a number). */
  addressesOfPeer(peer: Peer): { ipv4: number | null; ipv6: Uint8Array | null };
  /** Where a frame from node `source` to node `dest` (overlay IPv4s) may come from and goes next,
   * when this node relays for that pair (the coordinator put both on a path through it); else
   * undefined. */
  relayRoute(source: number, dest: number): RelayRoute | undefined;
  /** True when this node reaches node `source` through neighbour `from`, so frames from `source`
   * addressed to this node may arrive from it. */
  relayedFrom(source: number, from: Peer): boolean;
}

/** One direction of a relayed pair at a relay: the neighbour on the source's side and the one
 * on the destination's side. */
export interface RelayRoute {
  readonly from: Peer;
  readonly next: Peer;
}

export class RelayCounters {
  /** Frames this node passed on toward another node. */
  forwarded = 0;
  /** Datagrams that arrived through relays and went to this node's engine. */
  delivered = 0;
  /** Datagrams this node sent to relayed peers (wrapped into frames). */
  sent = 0;
  /** Frames dropped because the hop limit ran out here. */
  dropHopLimit = 0;
  /** TimeExceeded frames this node sent back to sources. */
  timeExceededSent = 0;
  /** ICMP Time Exceeded written to the host for a packet that expired at a relay. */
  timeExceededDelivered = 0;
  /** TimeExceeded frames for packets this node no longer remembers. */
  dropTimeExceededUnmatched = 0;
  /** Frames shorter than the header, of an unknown type, or with a bad payload. */
  dropMalformed = 0;
  /** Frames for a node this node has no peer for (or that would go back where they came from). */
  dropNoRoute = 0;
  /** Frames between two nodes the coordinator did not pair through this node (no open relay). */
  dropNotPaired = 0;
  /** Frames of a paired pair that came from another neighbour than the one on the source's side
   * of the path (a forged source). */
  dropWrongNeighbour = 0;
  /** Frames addressed to this node claiming a source this node does not reach through the
   * neighbour they came from. */
  dropUnexpectedSource = 0;
  /** ICMP "packet too big" answers to this node's host for packets larger than a relayed path
   * carries (the engine counts the packets as dropTooBigForPath). */
  tooBigSent = 0;
  /** Relayed datagrams dropped because the queue to the engine was full. */
  dropQueueFull = 0;
  /** Frames not relayed because their source node went over its relay rate (RelayLimits). */
  dropRateLimited = 0;
  /** Frames the engine could not send at once (staged for a handshake, or the socket refused). */
  sendDeferred = 0;
}

/** A peer reached through another peer: "remote via via". Interned per (via, remote) by Relay. */
export class RelayEndpoint implements Endpoint {
  readonly family = 4 as const;
  // Hop limit per session counter of the datagrams being sent (set in beforeSeal, read in send).
  private readonly hopCounter = new Uint32Array(HOP_RING);
  private readonly hopLimit = new Uint8Array(HOP_RING);
  // Packets whose TTL may run out at a relay: receiver index + counter -> first bytes.
  private readonly quoteReceiver = new Uint32Array(QUOTE_RING);
  private readonly quoteCounter = new Uint32Array(QUOTE_RING);
  private readonly quoteLength = new Uint16Array(QUOTE_RING);
  private readonly quotes: Buffer = Buffer.alloc(QUOTE_RING * ICMP_QUOTE_MAX);
  private quoteNext = 0;

  /** Bytes of end-to-end datagrams sent to and received from the remote through this relay. */
  txBytes = 0;
  rxBytes = 0;

  /** @internal use Relay.endpoint. */
  constructor(private readonly relay: Relay, readonly via: Peer, readonly remote: number) {}

  /** The underlay address the datagrams really go to (the relay's), as wg(8) shows it. */
  get address(): string {
    return this.via.endpoint?.address ?? '0.0.0.0';
  }

  get port(): number {
    return this.via.endpoint?.port ?? 0;
  }

  toString(): string {
    return this.via.endpoint && !(this.via.endpoint instanceof RelayEndpoint) ? this.via.endpoint.toString() : '0.0.0.0:0';
  }

  /** The largest inner packet that crosses one relay without fragmenting on the underlay: what
   * a direct path carries (the device MTU) less the frame header and the second WireGuard header. */
  get maxPacket(): number {
    return this.relay.maxRelayedPacket();
  }

  tooBig(buf: Buffer, off: number, len: number): void {
    this.relay.answerTooBig(this.via, buf, off, len, this.maxPacket);
  }

  beforeSeal(buf: Buffer, len: number): void {
    const counter = buf.readUInt32LE(WG_COUNTER);
    const hop = hopLimitOf(buf, TRANSPORT_HEADER_SIZE, len);
    const slot = counter & (HOP_RING - 1);
    this.hopCounter[slot] = counter;
    this.hopLimit[slot] = hop;
    if (hop < MAX_RELAY_HOPS) {
      const q = this.quoteNext;
      this.quoteNext = (q + 1) % QUOTE_RING;
      this.quoteReceiver[q] = buf.readUInt32LE(WG_RECEIVER);
      this.quoteCounter[q] = counter;
      const n = Math.min(len, ICMP_QUOTE_MAX);
      this.quoteLength[q] = n;
      buf.copy(this.quotes, q * ICMP_QUOTE_MAX, TRANSPORT_HEADER_SIZE, TRANSPORT_HEADER_SIZE + n);
    }
  }

  /** The hop limit for the sealed datagram at buf[off]: from beforeSeal for data, else the most. */
  hopLimitFor(buf: Buffer, off: number, len: number): number {
    if (len < TRANSPORT_HEADER_SIZE || buf.readUInt32LE(off) !== WG_TRANSPORT_TYPE) return MAX_RELAY_HOPS;
    const counter = buf.readUInt32LE(off + WG_COUNTER);
    const slot = counter & (HOP_RING - 1);
    return this.hopCounter[slot] === counter && this.hopLimit[slot] !== 0 ? this.hopLimit[slot]! : MAX_RELAY_HOPS;
  }

  /** The remembered packet for (receiver index, counter) copied to out[0]: its length, or 0. */
  findQuote(receiver: number, counter: number, out: Buffer): number {
    for (let q = 0; q < QUOTE_RING; q++) {
      if (this.quoteLength[q] !== 0 && this.quoteReceiver[q] === receiver && this.quoteCounter[q] === counter) {
        const n = this.quoteLength[q]!;
        this.quotes.copy(out, 0, q * ICMP_QUOTE_MAX, q * ICMP_QUOTE_MAX + n);
        return n;
      }
    }
    return 0;
  }

  send(bufs: Buffer[], offsets: Uint32Array, sizes: Uint32Array, count: number): number {
    return this.relay.forwardDatagrams(this, bufs, offsets, sizes, count);
  }

  /** A datagram relayed from node `remote` must open with the session of the peer that is that
   * node: a frame claiming one source cannot carry another peer's messages. */
  admits(peer: Peer): boolean {
    return this.relay.addressOfPeer(peer) === this.remote;
  }
}

const log = new Logger('relay');

export class Relay {
  readonly counters = new RelayCounters();
  private readonly endpoints = new Map<string, RelayEndpoint>();
  private readonly scratch = Buffer.alloc(SCRATCH_SIZE);
  // Frames being built at the source (one send batch at most).
  private readonly txBufs: Buffer[] = [];
  private readonly txLengths = new Uint32Array(BATCH_SIZE);
  // Frames of the current receive batch waiting to go on (in the engine's receive buffers, in
  // place), sent per next hop when the batch ends.
  private readonly pendingPeers: Peer[] = [];
  private readonly pendingBufs: Buffer[] = [];
  private readonly pendingLengths = new Uint32Array(BATCH_SIZE);
  private readonly runBufs: Buffer[] = new Array(BATCH_SIZE);
  private readonly runLengths = new Uint32Array(BATCH_SIZE);
  private pending = 0;
  private readonly icmp = Buffer.alloc(ICMP_QUOTE_MAX + 64);
  private readonly quote = Buffer.alloc(ICMP_QUOTE_MAX);
  private readonly dropLog = new RateLimitedLog(log);
  // Receive queue: datagrams that arrived in frames, for Engine.receiveDatagrams.
  private readonly queueBufs: Buffer[] = [];
  private readonly queueSizes: number[] = [];
  private readonly queueEndpoints: Endpoint[] = [];
  private queued = 0;
  private flushScheduled = false;
  private closed = false;

  /** Per source node (overlay IPv4): its relay budget and what was relayed for it. */
  private readonly budgets = new Map<number, RelayBudget>();
  private readonly limits: RelayLimits;

  constructor(private readonly engine: Engine, private readonly dir: RelayDirectory, limits: Partial<RelayLimits> = {}) {
    this.limits = { ...DEFAULT_RELAY_LIMITS, ...limits };
    for (let i = 0; i < RECEIVE_QUEUE; i++) {
      this.queueBufs.push(Buffer.alloc(SLOT_SIZE));
      this.queueSizes.push(0);
    }
    for (let i = 0; i < BATCH_SIZE; i++) this.txBufs.push(Buffer.alloc(TX_SLOT_SIZE));
    engine.setFrameHandler((peer, buf, off, len) => this.handleFrame(peer, buf, off, len), () => this.flushPending());
  }

  /** The endpoint for reaching the node with overlay IPv4 `remote` through peer `via`. */
  endpoint(via: Peer, remote: number): RelayEndpoint {
    const key = `${via.id}/${remote >>> 0}`;
    let ep = this.endpoints.get(key);
    if (!ep) {
      ep = new RelayEndpoint(this, via, remote >>> 0);
      this.endpoints.set(key, ep);
    }
    return ep;
  }

  /** The overlay IPv4 address (a number) of the node behind `peer`, or null. */
  addressOfPeer(peer: Peer): number | null {
    return this.dir.addressesOfPeer(peer).ipv4;
  }

  /** See RelayEndpoint.maxPacket. */
  maxRelayedPacket(): number {
    return Math.max(MIN_RELAYED_PACKET, this.engine.device.mtu - RELAY_OVERHEAD);
  }

  /** Tells this node's host that the packet at buf[off, off+len) is too big for the path through
   * relay `via` (ICMP Fragmentation Needed / ICMPv6 Packet Too Big with `mtu`, from the relay's
   * overlay address: the host drops ICMP from its own addresses), on the next turn. The host then
   * sends smaller packets to that destination (TCP lowers its segment size). */
  answerTooBig(via: Peer, buf: Buffer, off: number, len: number, mtu: number): void {
    const from = this.dir.addressesOfPeer(via);
    const out = Buffer.alloc(ICMP_QUOTE_MAX + 64);
    const n = buildIcmpError(out, buf, off, len, from.ipv4, from.ipv6, { kind: 'too-big', mtu });
    if (n === 0) return;
    this.counters.tooBigSent++;
    setImmediate(() => { if (!this.closed) this.engine.deliverInbound(out, 0, n); });
  }

  /** Charges `len` bytes relayed for node `source` to its budget (a token bucket refilled at
   * limits.bytesPerSecond up to limits.burstBytes): false when it is spent. No allocation once the
   * node has a budget. */
  private admitRelayed(source: number, len: number): boolean {
    let b = this.budgets.get(source);
    const now = this.engine.clock.now();
    if (b === undefined) {
      if (this.budgets.size >= MAX_RELAY_BUDGETS) this.budgets.clear();
      b = { tokens: this.limits.burstBytes, last: now, bytes: 0, frames: 0, dropped: 0 };
      this.budgets.set(source, b);
    }
    const refill = ((now - b.last) / 1000) * this.limits.bytesPerSecond;
    b.tokens = Math.min(this.limits.burstBytes, b.tokens + refill);
    b.last = now;
    if (b.tokens < len) {
      b.dropped++;
      return false;
    }
    b.tokens -= len;
    b.bytes += len;
    b.frames++;
    return true;
  }

  /** What was relayed per source node (overlay IPv4 as a number): bytes, frames, dropped. */
  relayedBySource(): { source: number; bytes: number; frames: number; dropped: number }[] {
    return [...this.budgets].map(([source, b]) => ({ source, bytes: b.bytes, frames: b.frames, dropped: b.dropped }));
  }

  /** The relay endpoints that reach the node behind `peer` (through any relay). */
  endpointsOf(peer: Peer): RelayEndpoint[] {
    const ip = this.dir.addressesOfPeer(peer).ipv4;
    const out: RelayEndpoint[] = [];
    if (ip === null) return out;
    for (const ep of this.endpoints.values()) if (ep.remote === ip >>> 0) out.push(ep);
    return out;
  }

  /** Forgets the endpoints through `via` (its node left the map). */
  forgetVia(via: Peer): void {
    for (const [k, ep] of this.endpoints) if (ep.via === via) this.endpoints.delete(k);
  }

  close(): void {
    this.closed = true;
    this.engine.setFrameHandler(null);
    this.endpoints.clear();
  }

  /** Wraps the sealed datagrams bufs[i][offsets[i], +sizes[i]) for ep.remote into Forward frames
   * and sends them to ep.via in one batch. Returns how many went out. */
  forwardDatagrams(ep: RelayEndpoint, bufs: Buffer[], offsets: Uint32Array, sizes: Uint32Array, count: number): number {
    const self = this.dir.selfAddress();
    if (self === null || ep.via.endpoint instanceof RelayEndpoint) {
      this.counters.dropNoRoute += count;
      return 0;
    }
    let n = 0;
    for (let i = 0; i < count; i++) {
      const len = sizes[i]!;
      const off = offsets[i]!;
      if (len > MAX_RELAY_PAYLOAD) {
        this.counters.dropMalformed++;
        continue;
      }
      let t = this.txBufs[n]!;
      // A datagram larger than a slot (a jumbo inner packet) gets a buffer of its own once.
      if (TRANSPORT_HEADER_SIZE + RELAY_HEADER_SIZE + len + 32 > t.length) t = this.txBufs[n] = Buffer.alloc(TRANSPORT_HEADER_SIZE + RELAY_HEADER_SIZE + len + 64);
      writeRelayHeader(t, TRANSPORT_HEADER_SIZE, RelayFrameType.Forward, ep.hopLimitFor(bufs[i]!, off, len), self, ep.remote, len);
      ep.txBytes += len;
      bufs[i]!.copy(t, TRANSPORT_HEADER_SIZE + RELAY_HEADER_SIZE, off, off + len);
      this.txLengths[n] = RELAY_HEADER_SIZE + len;
      n++;
    }
    if (n === 0) return 0;
    this.counters.sent += n;
    const sent = this.engine.sendFrames(ep.via, this.txBufs, this.txLengths, n);
    if (sent < n) this.counters.sendDeferred += n - sent;
    return sent;
  }

  private send(peer: Peer, buf: Buffer, frameLen: number): boolean {
    if (peer.endpoint instanceof RelayEndpoint) {
      // A relay is always a direct neighbour; a relayed one would nest frames.
      this.counters.dropNoRoute++;
      return false;
    }
    const ok = this.engine.sendFrame(peer, buf, frameLen);
    if (!ok) this.counters.sendDeferred++;
    return ok;
  }

  /** The engine's frame handler: frame at buf[off, off+len) from neighbour `from`. */
  handleFrame(from: Peer, buf: Buffer, off: number, len: number): void {
    if (len < RELAY_HEADER_SIZE) {
      this.counters.dropMalformed++;
      return;
    }
    const type = buf[off + RELAY_FRAME.TYPE]!;
    const payload = buf.readUInt16BE(off + RELAY_FRAME.LENGTH);
    if ((type !== RelayFrameType.Forward && type !== RelayFrameType.TimeExceeded) || RELAY_HEADER_SIZE + payload > len) {
      this.counters.dropMalformed++;
      return;
    }
    // What follows the payload is the hop session's padding.
    len = RELAY_HEADER_SIZE + payload;
    const source = buf.readUInt32BE(off + RELAY_FRAME.SOURCE);
    const dest = buf.readUInt32BE(off + RELAY_FRAME.DEST);
    const self = this.dir.selfAddress();
    if (self !== null && dest === self) {
      if (type === RelayFrameType.Forward) {
        if (!this.dir.relayedFrom(source, from)) {
          this.counters.dropUnexpectedSource++;
          this.dropLog.debug(() => `refused a relayed frame claiming to come from ${formatAddress(source)}: not reached through that neighbour`);
          return;
        }
        this.deliver(from, source, buf, off + RELAY_HEADER_SIZE, len - RELAY_HEADER_SIZE);
      } else {
        this.timeExceeded(from, source, buf, off + RELAY_HEADER_SIZE, len - RELAY_HEADER_SIZE);
      }
      return;
    }
    // No open relay: only between two nodes of a path through this node, only from the neighbour
    // on the source's side, only on to the neighbour on the other side.
    const route = this.dir.relayRoute(source, dest);
    if (route === undefined) {
      this.counters.dropNotPaired++;
      this.dropLog.debug(() => `refused to relay a frame from ${formatAddress(source)} to ${formatAddress(dest)}: not paired through this node`);
      return;
    }
    if (route.from !== from) {
      this.counters.dropWrongNeighbour++;
      this.dropLog.debug(() => `refused to relay a frame claiming to come from ${formatAddress(source)}: it came from another neighbour`);
      return;
    }
    const hop = buf[off + RELAY_FRAME.HOP_LIMIT]!;
    if (hop <= 1) {
      this.counters.dropHopLimit++;
      if (type === RelayFrameType.Forward) this.sendTimeExceeded(from, source, buf, off + RELAY_HEADER_SIZE, len - RELAY_HEADER_SIZE);
      return;
    }
    const hopPeer = route.next;
    if (off !== TRANSPORT_HEADER_SIZE || hopPeer.endpoint instanceof RelayEndpoint || this.pending >= BATCH_SIZE) {
      this.counters.dropNoRoute++;
      return;
    }
    if (!this.admitRelayed(source, len)) {
      this.counters.dropRateLimited++;
      return;
    }
    buf[off + RELAY_FRAME.HOP_LIMIT] = hop - 1;
    this.counters.forwarded++;
    // The frame sits right after the (consumed) transport header of the message it came in:
    // exactly where sendFrames wants it. It goes when the engine's receive batch ends.
    this.pendingPeers[this.pending] = hopPeer;
    this.pendingBufs[this.pending] = buf;
    this.pendingLengths[this.pending] = len;
    this.pending++;
  }

  /** Sends the frames of the receive batch on, a batch per run of frames to one next hop. */
  flushPending(): void {
    const n = this.pending;
    this.pending = 0;
    let start = 0;
    while (start < n) {
      const peer = this.pendingPeers[start]!;
      let end = start + 1;
      while (end < n && this.pendingPeers[end] === peer) end++;
      for (let i = start; i < end; i++) {
        this.runBufs[i - start] = this.pendingBufs[i]!;
        this.runLengths[i - start] = this.pendingLengths[i]!;
      }
      const sent = this.engine.sendFrames(peer, this.runBufs, this.runLengths, end - start);
      if (sent < end - start) this.counters.sendDeferred += end - start - sent;
      start = end;
    }
    for (let i = 0; i < n; i++) this.pendingBufs[i] = undefined as unknown as Buffer;
    this.runBufs.fill(undefined as unknown as Buffer);
  }

  /** A Forward frame for us: queue its datagram for the engine, from "source via from". */
  private deliver(from: Peer, source: number, buf: Buffer, off: number, len: number): void {
    if (len <= 0) {
      this.counters.dropMalformed++;
      return;
    }
    if (this.queued >= RECEIVE_QUEUE) {
      this.counters.dropQueueFull++;
      return;
    }
    const i = this.queued++;
    if (len > this.queueBufs[i]!.length) this.queueBufs[i] = Buffer.alloc(len);
    buf.copy(this.queueBufs[i]!, 0, off, off + len);
    this.queueSizes[i] = len;
    const ep = this.endpoint(from, source);
    ep.rxBytes += len;
    this.queueEndpoints[i] = ep;
    this.counters.delivered++;
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(() => this.flush());
    }
  }

  private flush(): void {
    this.flushScheduled = false;
    if (this.closed) return;
    const n = this.queued;
    this.queued = 0;
    this.engine.receiveDatagrams(this.queueBufs, this.queueSizes, this.queueEndpoints, n);
    for (let i = 0; i < n; i++) {
      if (this.queueBufs[i]!.length > SLOT_SIZE) this.queueBufs[i] = Buffer.alloc(SLOT_SIZE);
    }
  }

  /** Our hop limit ran out on a datagram from `source` that came from neighbour `back`: tell the
   * source, through that neighbour, quoting the datagram's header. */
  private sendTimeExceeded(back: Peer, source: number, buf: Buffer, off: number, len: number): void {
    const self = this.dir.selfAddress();
    if (self === null || len < RELAY_QUOTE_SIZE || buf.readUInt32LE(off) !== WG_TRANSPORT_TYPE) return;
    const s = this.scratch;
    writeRelayHeader(s, TRANSPORT_HEADER_SIZE, RelayFrameType.TimeExceeded, MAX_RELAY_HOPS, self, source, RELAY_QUOTE_SIZE);
    buf.copy(s, TRANSPORT_HEADER_SIZE + RELAY_HEADER_SIZE, off, off + RELAY_QUOTE_SIZE);
    this.counters.timeExceededSent++;
    this.send(back, s, RELAY_HEADER_SIZE + RELAY_QUOTE_SIZE);
  }

  /** A TimeExceeded frame for us from relay `relayAddress`, arrived from neighbour `from`: an
   * ICMP error to our host. */
  private timeExceeded(from: Peer, relayAddress: number, buf: Buffer, off: number, len: number): void {
    if (len < RELAY_QUOTE_SIZE) {
      this.counters.dropMalformed++;
      return;
    }
    const receiver = buf.readUInt32LE(off + WG_RECEIVER);
    const counter = buf.readUInt32LE(off + WG_COUNTER);
    let n = 0;
    // Only a packet sent through the neighbour the answer came back from.
    for (const ep of this.endpoints.values()) {
      if (ep.via !== from) continue;
      n = ep.findQuote(receiver, counter, this.quote);
      if (n > 0) break;
    }
    const out = this.icmp;
    const len2 = n > 0 ? buildIcmpError(out, this.quote, 0, n, relayAddress, this.dir.ipv6ByAddress(relayAddress), TIME_EXCEEDED) : 0;
    if (len2 === 0) {
      this.counters.dropTimeExceededUnmatched++;
      return;
    }
    if (this.engine.deliverInbound(out, 0, len2)) this.counters.timeExceededDelivered++;
  }
}

function formatAddress(a: number): string {
  return `${a >>> 24}.${(a >>> 16) & 255}.${(a >>> 8) & 255}.${a & 255}`;
}
