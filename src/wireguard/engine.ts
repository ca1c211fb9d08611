// The WireGuard engine: owns peers, keypairs, timers and the allowed-ips table, and moves
// packets between a Device (IP packets) and a Bind (UDP datagrams).
//
// Send pipeline (Device -> Bind), per readable event:
//   1. readBatch from the device into pooled buffers at offset TRANSPORT_HEADER_SIZE;
//   2. route each packet by destination address through the allowed-ips trie to a peer, then ask
//      the packet filter (if one is set: setPacketFilter) whether it may go;
//   3. for each run of packets to one peer: if it has a usable keypair, pad, write the transport
//      headers, encrypt the run in place with one sealBatch call, and sendBatch to its endpoint;
//      otherwise copy the packets to the peer's staging queue and start a handshake;
//   4. update the peer's timers (deadlines only; no timer object per packet).
// Receive pipeline (Bind -> Device), per readable event:
//   1. receiveBatch datagrams with their sender endpoints;
//   2. handshake messages: mac1, cookie/rate limit under load, Noise, then keypair rotation;
//   3. transport messages: index -> keypair; each run of consecutive messages for one keypair is
//      decrypted in place with one openBatch call; then per message in order: replay check, roam
//      the endpoint, check the inner source address against the peer's allowed-ips, the packet
//      filter's inbound verdict (if one is set), batch to writeBatch.
// Every packet not delivered bumps a counter in `counters`.

import { randomInt } from 'node:crypto';
import { Logger, RateLimitedLog, UserError } from '../util/index.js';
import { encodeBase64Key, encodeHex, wipe } from '../crypto/index.js';
import type { Bind, Clock, Device, Endpoint } from './device-interface.js';
import type { PacketFilter } from './packet-filter.js';

/** Handles a meshtun frame received from `peer` at buf[off, off+len) (see Engine.setFrameHandler). */
export type FrameHandler = (peer: Peer, buf: Buffer, off: number, len: number) => void;
/** See Engine.setDatagramHandler. */
export type DatagramHandler = (buf: Buffer, len: number, from: Endpoint) => boolean;
/** Observes an IP packet at buf[off, off+len) on its way to the device. */
export type InboundTap = (buf: Buffer, off: number, len: number) => void;
import { systemClock } from './clock.js';
import { AllowedIps } from './allowed-ips.js';
import { EngineCounters } from './counters.js';
import { Keypair } from './keypair.js';
import { Peer } from './peer.js';
import { PeerTimers, TimerKind } from './timers.js';
import { HandshakeRateLimiter } from './ratelimiter.js';
import {
  MessageType, messageType, paddedLength, writeTransportHeader, TRANSPORT, TRANSPORT_HEADER_SIZE, TAG_LEN,
  INITIATION, RESPONSE, COOKIE_REPLY,
} from './messages.js';
import {
  LocalIdentity, Handshake, createInitiation, consumeInitiation, createResponse, consumeResponse, deriveKeys,
} from './noise.js';
import { CookieChecker, CookieGenerator, endpointCookieBytes } from './cookie.js';
import { IndexTable } from './index-table.js';
import {
  REKEY_AFTER_MESSAGES, REKEY_AFTER_TIME, REJECT_AFTER_TIME, REKEY_TIMEOUT, KEEPALIVE_TIMEOUT,
  MAX_TIMER_HANDSHAKES, REKEY_TIMEOUT_JITTER_MAX, MAX_STAGED_PACKETS,
  UNDER_LOAD_HANDSHAKES_PER_SECOND, UNDER_LOAD_AFTER_TIME,
} from './constants.js';
import type { UapiDevice, UapiDeviceState, UapiSetOp } from './uapi.js';
import { UapiError, UAPI_ERRNO } from './uapi.js';
import { engineUapiState, applyUapiOps } from './engine-uapi.js';

/** Packets per device read or socket receive. */
export const BATCH_SIZE = 64;
/** Buffer size: any IP packet (65535) plus header, padding and tag. */
const BUFFER_SIZE = 65535 + TRANSPORT_HEADER_SIZE + 16 + TAG_LEN;
/** Batches handled per readable event before yielding to the event loop. */
const BATCHES_PER_EVENT = 8;
/** Two initiations sent this close together are taken as crossing (see initiationHandshake). */
const CROSSING_WINDOW_MS = 1_000;
/** After ignoring a crossing initiation, our own is sent again this soon unless it completed. */
const CROSSED_RETRY_MS = 500;
/** Splits a 64-bit counter into uint32 halves for the batched AEAD. */
const TWO_POW_32 = 0x1_0000_0000;

type IndexOwner = { peer: Peer; keypair: Keypair<Peer> | null };

/** True when the IP packet at buf[off, off+len) may not be fragmented on its way: IPv4 with the
 * DF bit, or IPv6 (only its source fragments). */
function mayNotFragment(buf: Buffer, off: number, len: number): boolean {
  const v = buf[off]! >>> 4;
  return v === 6 || (v === 4 && len >= 20 && (buf[off + 6]! & 0x40) !== 0);
}

/** True when datagrams of sizes[0..count) can go out as UDP GSO segments: all the size of the
 * first, the last possibly shorter (bulk TCP through the tunnel: full-size packets). */
function segmentable(sizes: Uint32Array, count: number): boolean {
  const seg = sizes[0]!;
  for (let i = 1; i < count - 1; i++) if (sizes[i] !== seg) return false;
  return sizes[count - 1]! <= seg;
}

export interface EngineOptions {
  device: Device;
  bind: Bind;
  clock?: Clock;
  /** A name for logs (the interface name). */
  name?: string;
}

export class Engine implements UapiDevice {
  readonly counters = new EngineCounters();
  readonly allowedIps = new AllowedIps<Peer>();
  readonly device: Device;
  readonly bind: Bind;
  readonly clock: Clock;
  private readonly log: Logger;
  private readonly dropLog: RateLimitedLog;
  private readonly errorLog: RateLimitedLog;

  private identity: LocalIdentity | null = null;
  private cookieChecker: CookieChecker | null = null;
  private readonly peers = new Map<string, Peer>();
  private readonly indices = new IndexTable<IndexOwner>();
  private configuredPort = 0;
  private mark = 0;
  private running = false;
  private closed = false;
  /** Optional firewall on both paths; null costs one branch per packet. */
  private filter: PacketFilter | null = null;
  /** Optional handler of meshtun frames (see setFrameHandler); null: they are dropped. */
  private frameHandler: FrameHandler | null = null;
  private datagramHandler: DatagramHandler | null = null;
  private readonly emptyBuf = Buffer.alloc(0);
  private frameBatchEnd: (() => void) | null = null;
  /** Frames handed to the frame handler in the current receive batch. */
  private framesInBatch = 0;
  /** Optional observer of every packet delivered to the device (see setInboundTap). */
  private inboundTap: InboundTap | null = null;

  // Load detection for cookies: handshakes seen in the current one-second window.
  private handshakeWindowStart = 0;
  private handshakesInWindow = 0;
  private underLoadUntil = -Infinity;
  private readonly limiter: HandshakeRateLimiter;

  // Pooled buffers and batch arrays (allocated once).
  private readonly tunBufs: Buffer[] = [];
  private readonly tunSizes = new Uint32Array(BATCH_SIZE);
  private readonly udpBufs: Buffer[] = [];
  private readonly udpSizes = new Uint32Array(BATCH_SIZE);
  private readonly udpEndpoints: (Endpoint | null)[] = new Array(BATCH_SIZE).fill(null);
  private readonly sendBufs: Buffer[] = new Array(BATCH_SIZE);
  private readonly sendOffsets = new Uint32Array(BATCH_SIZE);
  private readonly sendSizes = new Uint32Array(BATCH_SIZE);
  private readonly writeBufs: Buffer[] = new Array(BATCH_SIZE);
  private readonly writeOffsets = new Uint32Array(BATCH_SIZE);
  private readonly writeSizes = new Uint32Array(BATCH_SIZE);
  private readonly batchPeers: (Peer | null)[] = new Array(BATCH_SIZE).fill(null);
  private readonly handshakeBuf = Buffer.alloc(INITIATION.SIZE);
  private readonly oneBuf: Buffer[] = [Buffer.alloc(0)];
  // sendFrame's own arrays: it may run inside a Bind's sendBatch called from transmit (a relayed
  // peer's datagram wrapped into a frame to the next hop), so it must not touch sendBufs or oneBuf.
  private readonly frameBufs: Buffer[] = [Buffer.alloc(0)];
  private readonly frameLengths = new Uint32Array(1);
  private readonly frameSendBufs: Buffer[] = new Array(BATCH_SIZE);
  private readonly frameOffsets = new Uint32Array(BATCH_SIZE);
  private readonly frameSizes = new Uint32Array(BATCH_SIZE);
  private readonly frameSealLengths = new Uint32Array(BATCH_SIZE);
  private readonly frameCounterLo = new Uint32Array(BATCH_SIZE);
  private readonly frameCounterHi = new Uint32Array(BATCH_SIZE);
  // injectOutbound / deliverInbound scratch.
  private readonly injectBuf = Buffer.alloc(BUFFER_SIZE);
  private readonly injectSizes = new Uint32Array(1);
  private readonly deliverBuf: Buffer[] = [Buffer.alloc(0)];
  private readonly deliverOffset = new Uint32Array(1);
  private readonly deliverSize = new Uint32Array(1);
  private readonly oneOffset = new Uint32Array(1);
  private readonly oneSize = new Uint32Array(1);
  // Batched AEAD scratch (allocated once). Seal: one run's IP packets at TRANSPORT_HEADER_SIZE with
  // their padded lengths and 64-bit counters as uint32 halves (the buffers are sendBufs).
  private readonly sealOffsets = new Uint32Array(BATCH_SIZE).fill(TRANSPORT_HEADER_SIZE);
  private readonly sealLengths = new Uint32Array(BATCH_SIZE);
  private readonly sealCounterLo = new Uint32Array(BATCH_SIZE);
  private readonly sealCounterHi = new Uint32Array(BATCH_SIZE);
  // Open: a group of consecutive transport messages for one keypair; openSlots[j] is the
  // datagram's index in udpBufs, openOk[j] whether its tag verified.
  private readonly openBufs: Buffer[] = new Array(BATCH_SIZE);
  private readonly openOffsets = new Uint32Array(BATCH_SIZE).fill(TRANSPORT_HEADER_SIZE);
  private readonly openLengths = new Uint32Array(BATCH_SIZE);
  private readonly openCounterLo = new Uint32Array(BATCH_SIZE);
  private readonly openCounterHi = new Uint32Array(BATCH_SIZE);
  private readonly openSlots = new Uint32Array(BATCH_SIZE);
  private readonly openOk = new Uint8Array(BATCH_SIZE);
  /** Packets queued in writeBufs for the device during one receiveBatch. */
  private writes = 0;

  private readonly onDeviceReadable = () => this.readDevice();
  private readonly onBindReadable = () => this.readBind();

  constructor(opts: EngineOptions) {
    this.device = opts.device;
    this.bind = opts.bind;
    this.clock = opts.clock ?? systemClock;
    this.log = new Logger(`wg ${opts.name ?? this.device.name}`);
    this.dropLog = new RateLimitedLog(this.log);
    this.errorLog = new RateLimitedLog(this.log, 5, 10_000);
    this.limiter = new HandshakeRateLimiter(this.clock);
    for (let i = 0; i < BATCH_SIZE; i++) {
      this.tunBufs.push(Buffer.alloc(BUFFER_SIZE));
      this.udpBufs.push(Buffer.alloc(BUFFER_SIZE));
    }
  }

  // ---- configuration ----

  get publicKey(): Buffer | null {
    return this.identity ? this.identity.publicKey : null;
  }

  /** Sets (or with null, removes) the private key; handshakes with every peer restart. */
  setPrivateKey(key: Buffer | null): void {
    if (key && this.identity && key.equals(this.identity.privateKey)) return;
    if (this.identity) this.identity.wipe();
    this.identity = key ? new LocalIdentity(key) : null;
    this.cookieChecker = this.identity ? new CookieChecker(this.identity.publicKey) : null;
    for (const peer of [...this.peers.values()]) {
      if (this.identity && peer.publicKey.equals(this.identity.publicKey)) {
        // A peer with our own public key is meaningless; wg removes it too.
        this.removePeer(peer.publicKey);
        continue;
      }
      this.expireSessions(peer);
      if (this.identity === null) peer.handshake = null;
      else if (peer.handshake) peer.handshake.setLocalIdentity(this.identity);
      else peer.handshake = this.newHandshake(peer.publicKey, peer.presharedKey);
    }
  }

  /** (Re)binds the socket on `port` (0: any). Returns the bound port. */
  async setListenPort(port: number): Promise<number> {
    this.configuredPort = port;
    if (!this.running) return port;
    this.bind.close();
    const actual = await this.bind.open(port);
    if (this.mark) this.bind.setMark(this.mark);
    return actual;
  }

  setFwmark(mark: number): void {
    this.mark = mark;
    if (this.running) this.bind.setMark(mark);
  }

  /** The peer with this public key, creating it when missing. */
  addPeer(publicKey: Buffer): Peer {
    const id = encodeHex(publicKey);
    let peer = this.peers.get(id);
    if (peer) return peer;
    if (this.identity && publicKey.equals(this.identity.publicKey)) {
      throw new UapiError(UAPI_ERRNO.EINVAL, 'a peer cannot have the interface\'s own public key');
    }
    peer = new Peer(Buffer.from(publicKey), id, this.newHandshake(publicKey, null), new CookieGenerator(publicKey));
    const p = peer;
    peer.timers = new PeerTimers(this.clock, [
      () => this.guarded(() => this.expiredRetransmitHandshake(p)),
      () => this.guarded(() => this.expiredSendKeepalive(p)),
      () => this.guarded(() => this.expiredNewHandshake(p)),
      () => this.guarded(() => this.expiredZeroKeyMaterial(p)),
      () => this.guarded(() => this.expiredPersistentKeepalive(p)),
    ]);
    this.peers.set(id, peer);
    return peer;
  }

  getPeer(publicKey: Buffer): Peer | undefined {
    return this.peers.get(encodeHex(publicKey));
  }

  listPeers(): Peer[] {
    return [...this.peers.values()];
  }

  removePeer(publicKey: Buffer): boolean {
    const peer = this.peers.get(encodeHex(publicKey));
    if (!peer) return false;
    peer.timers.stop();
    this.expireSessions(peer);
    this.allowedIps.removeByPeer(peer);
    this.peers.delete(peer.id);
    return true;
  }

  setPresharedKey(peer: Peer, psk: Buffer | null): void {
    peer.presharedKey = psk ? Buffer.from(psk) : null;
    peer.handshake?.setPresharedKey(peer.presharedKey);
  }

  setPersistentKeepalive(peer: Peer, seconds: number): void {
    const was = peer.persistentKeepalive;
    peer.persistentKeepalive = seconds;
    // As wireguard-go: turning it on for a running interface sends one right away.
    if (seconds > 0 && was === 0 && this.running) this.sendKeepalive(peer);
  }

  setEndpoint(peer: Peer, endpoint: Endpoint | null): void {
    peer.endpoint = endpoint;
  }

  /** Sets (or with null, removes) the filter every packet into and out of the tunnel goes
   * through: outbound after routing, inbound after the source address check. */
  setPacketFilter(filter: PacketFilter | null): void {
    this.filter = filter;
  }

  get packetFilter(): PacketFilter | null {
    return this.filter;
  }

  /** Sets (or with null, removes) the handler of meshtun frames: decrypted transport payloads
   * whose first byte's high nibble is 0 (no IP packet starts so). They carry meshtun's own
   * peer-to-peer messages (relay frames for multi-hop); WireGuard peers never send them. The
   * handler gets the frame in place in a receive buffer it may reuse (sendFrame it onwards) until
   * it returns, or, if it keeps a reference, until `onBatchEnd`, which runs at the end of every
   * receive batch that had frames (so a relay can send the batch's frames on together).
   * Without a handler such payloads count as dropInvalidInnerPacket. */
  setFrameHandler(handler: FrameHandler | null, onBatchEnd: (() => void) | null = null): void {
    this.frameHandler = handler;
    this.frameBatchEnd = onBatchEnd;
  }

  /** Sets (or with null, removes) the handler of datagrams on the engine's socket that are not
   * WireGuard messages (meshtun's STUN and discovery messages share the socket, told apart by
   * their first bytes). It returns true when it took the datagram (counted as rxOtherDatagrams),
   * false to have it dropped as dropInvalidMessage. It gets the datagram in a receive buffer it
   * must not keep, and the sender's endpoint (which it may keep). */
  setDatagramHandler(handler: DatagramHandler | null): void {
    this.datagramHandler = handler;
  }

  private otherDatagram(buf: Buffer, len: number, ep: Endpoint): boolean {
    try {
      if (!this.datagramHandler!(buf, len, ep)) return false;
    } catch (e) {
      this.handlerError(e, 1);
      return true;
    }
    this.counters.rxOtherDatagrams++;
    return true;
  }

  /** Sends one datagram that is not a WireGuard message (STUN, discovery) from the engine's
   * socket to `endpoint` (a UDP endpoint of the Bind, or an endpoint that sends by itself, such as
   * a stream transport). True when it was sent. */
  sendDatagram(buf: Buffer, off: number, len: number, endpoint: Endpoint): boolean {
    if (!this.running) return false;
    this.oneBuf[0] = buf;
    this.oneOffset[0] = off;
    this.oneSize[0] = len;
    const sent = endpoint.send !== undefined ? endpoint.send(this.oneBuf, this.oneOffset, this.oneSize, 1) : this.bind.sendBatch(this.oneBuf, this.oneOffset, this.oneSize, 1, endpoint);
    this.oneBuf[0] = this.emptyBuf;
    if (sent < 1) this.counters.dropSendFailed++;
    return sent === 1;
  }

  /** Sets (or clears) an observer of every IP packet written to the device from the tunnel
   * (after the filter), and of those given to deliverInbound. It must not keep the buffer. */
  setInboundTap(tap: InboundTap | null): void {
    this.inboundTap = tap;
  }

  private newHandshake(remoteStatic: Buffer, psk: Buffer | null): Handshake | null {
    return this.identity ? new Handshake(this.identity, remoteStatic, psk) : null;
  }

  // ---- lifecycle ----

  /** Binds the socket and starts moving packets. */
  async up(): Promise<void> {
    if (this.running) return;
    if (this.closed) throw new UserError('this interface was closed; create a new one');
    await this.bind.open(this.configuredPort);
    if (this.mark) this.bind.setMark(this.mark);
    this.running = true;
    this.device.start(this.onDeviceReadable);
    this.bind.start(this.onBindReadable);
    for (const peer of this.peers.values()) {
      if (peer.persistentKeepalive > 0) this.sendKeepalive(peer);
    }
  }

  /** Stops everything and wipes key material. Idempotent. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.running = false;
    for (const peer of this.peers.values()) {
      peer.timers.stop();
      this.expireSessions(peer);
    }
    this.bind.close();
    this.device.close();
    if (this.identity) this.identity.wipe();
  }

  get isRunning(): boolean {
    return this.running;
  }

  // ---- send pipeline ----

  private readDevice(): void {
    for (let b = 0; b < BATCHES_PER_EVENT && this.running; b++) {
      const n = this.device.readBatch(this.tunBufs, this.tunSizes, TRANSPORT_HEADER_SIZE);
      if (n <= 0) return;
      try {
        this.routeBatch(n);
      } catch (e) {
        // Something on the send path threw (an endpoint's send, beforeSeal, tooBig): what was
        // left of the batch is dropped, counted, and the engine goes on.
        this.batchPeers.fill(null);
        this.handlerError(e, 1);
      }
    }
  }

  /** Counts `packets` dropped because handling them threw, and logs the error (rate limited). */
  private handlerError(e: unknown, packets: number): void {
    this.counters.dropHandlerError += packets;
    this.errorLog.warn(() => `dropped ${packets} packet(s): their handler threw: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
  }

  /** Runs `fn` (a timer action, a queued hand-over), counting and logging a throw. */
  private guarded(fn: () => void): void {
    try {
      fn();
    } catch (e) {
      this.handlerError(e, 1);
    }
  }

  /** Routes packets tunBufs[0..n) to peers and sends each run of same-peer packets. */
  private routeBatch(n: number): void {
    const bufs = this.tunBufs;
    const sizes = this.tunSizes;
    const peers = this.batchPeers;
    const filter = this.filter;
    for (let i = 0; i < n; i++) {
      const buf = bufs[i]!;
      const len = sizes[i]!;
      const version = len > 0 ? buf[TRANSPORT_HEADER_SIZE]! >>> 4 : 0;
      let peer: Peer | undefined;
      if (version === 4 && len >= 20) {
        peer = this.allowedIps.lookupV4(buf.readUInt32BE(TRANSPORT_HEADER_SIZE + 16));
      } else if (version === 6 && len >= 40) {
        peer = this.allowedIps.lookupV6(buf, TRANSPORT_HEADER_SIZE + 24);
      } else {
        this.counters.dropInvalidOutgoing++;
        peers[i] = null;
        continue;
      }
      if (peer === undefined) {
        this.counters.dropNoRoute++;
        peers[i] = null;
        continue;
      }
      if (filter !== null) {
        let pass: boolean;
        try {
          pass = filter.outbound(buf, TRANSPORT_HEADER_SIZE, len);
        } catch (e) {
          this.handlerError(e, 1);
          peers[i] = null;
          continue;
        }
        if (!pass) {
          this.counters.dropFilteredOutbound++;
          peers[i] = null;
          continue;
        }
      }
      peers[i] = peer;
    }
    let runStart = 0;
    while (runStart < n) {
      const peer = peers[runStart];
      let runEnd = runStart + 1;
      while (runEnd < n && peers[runEnd] === peer) runEnd++;
      if (peer) this.sendRun(peer, bufs, sizes, runStart, runEnd);
      runStart = runEnd;
    }
    peers.fill(null, 0, n);
  }

  /** Encrypts and sends bufs[start..end) (IP packets at TRANSPORT_HEADER_SIZE) to `peer`, or
   * stages copies of them when there is no usable session. */
  private sendRun(peer: Peer, bufs: Buffer[], sizes: Uint32Array, start: number, end: number): void {
    const kp = this.usableKeypair(peer);
    if (kp === null || peer.endpoint === null) {
      for (let i = start; i < end; i++) this.stage(peer, bufs[i]!, sizes[i]!);
      this.sendInitiation(peer, false);
      return;
    }
    const mtu = this.device.mtu;
    const ep = peer.endpoint;
    const beforeSeal = ep.beforeSeal;
    const maxPacket = ep.maxPacket ?? 0;
    let count = 0;
    let bytes = 0;
    for (let i = start; i < end; i++) {
      const buf = bufs[i]!;
      const len = sizes[i]!;
      if (maxPacket > 0 && len > maxPacket && mayNotFragment(buf, TRANSPORT_HEADER_SIZE, len)) {
        this.counters.dropTooBigForPath++;
        ep.tooBig?.(buf, TRANSPORT_HEADER_SIZE, len);
        continue;
      }
      const plen = paddedLength(len, mtu);
      if (plen > len) buf.fill(0, TRANSPORT_HEADER_SIZE + len, TRANSPORT_HEADER_SIZE + plen);
      const counter = kp.sendCounter++;
      writeTransportHeader(buf, 0, kp.remoteIndex, counter);
      if (beforeSeal !== undefined) beforeSeal.call(ep, buf, len);
      this.sealLengths[count] = plen;
      this.sealCounterLo[count] = counter >>> 0;
      this.sealCounterHi[count] = Math.floor(counter / TWO_POW_32) >>> 0;
      const total = TRANSPORT_HEADER_SIZE + plen + TAG_LEN;
      this.sendBufs[count] = buf;
      this.sendOffsets[count] = 0;
      this.sendSizes[count] = total;
      count++;
      bytes += total;
    }
    if (count === 0) return;
    // One call encrypts the whole run in place (sendBufs[i] at TRANSPORT_HEADER_SIZE).
    kp.send.sealBatch(this.sendBufs, this.sealOffsets, this.sealLengths, this.sealCounterLo, this.sealCounterHi, count);
    this.transmit(peer, count, bytes, true);
    this.keepKeyFreshSending(peer, kp);
  }

  /** Sends sendBufs[0..count) to the peer's endpoint and runs the send-side timer events. */
  private transmit(peer: Peer, count: number, bytes: number, isData: boolean): void {
    const ep = peer.endpoint!;
    const sent = ep.send !== undefined
      ? ep.send(this.sendBufs, this.sendOffsets, this.sendSizes, count)
      : this.bind.sendSegments !== undefined && count > 1 && segmentable(this.sendSizes, count)
        ? this.bind.sendSegments(this.sendBufs, this.sendOffsets, this.sendSizes, count, this.sendSizes[0]!, ep)
        : this.bind.sendBatch(this.sendBufs, this.sendOffsets, this.sendSizes, count, ep);
    this.afterTransmit(peer, count, sent, bytes, isData);
    for (let i = 0; i < count; i++) this.sendBufs[i] = undefined as unknown as Buffer;
  }

  /** Counters and the send-side timer events after `sent` of `count` datagrams went out. */
  private afterTransmit(peer: Peer, count: number, sent: number, bytes: number, isData: boolean): void {
    if (sent < count) this.counters.dropSendFailed += count - sent;
    this.counters.txPackets += sent;
    this.counters.txBytes += bytes;
    peer.txBytes += bytes;
    // timersAnyAuthenticatedPacketSent + timersAnyAuthenticatedPacketTraversal + timersDataSent
    peer.timers.clear(TimerKind.SendKeepalive);
    if (peer.persistentKeepalive > 0) peer.timers.set(TimerKind.PersistentKeepalive, peer.persistentKeepalive * 1000);
    if (isData && !peer.timers.isPending(TimerKind.NewHandshake)) {
      peer.timers.set(TimerKind.NewHandshake, KEEPALIVE_TIMEOUT + REKEY_TIMEOUT);
    }
  }

  /** Sends a meshtun frame (see setFrameHandler) at buf[TRANSPORT_HEADER_SIZE, +len) to `peer`;
   * see sendFrames. True when it went out now. */
  sendFrame(peer: Peer, buf: Buffer, len: number): boolean {
    this.frameBufs[0] = buf;
    this.frameLengths[0] = len;
    const sent = this.sendFrames(peer, this.frameBufs, this.frameLengths, 1);
    this.frameBufs[0] = this.oneBuf[0]!;
    return sent === 1;
  }

  /** Sends `count` (at most BATCH_SIZE) meshtun frames to `peer`, encrypting each in place: frame i
   * is bufs[i][TRANSPORT_HEADER_SIZE, +lengths[i]), with TRANSPORT_HEADER_SIZE bytes in front and
   * room for padding and the tag after it. One sealBatch, one send call (GSO when the sizes allow).
   * Without a session the frames are staged (copied) and a handshake starts. Returns how many
   * went out now. Uses arrays of its own: it runs inside an endpoint's send called from transmit. */
  sendFrames(peer: Peer, bufs: Buffer[], lengths: Uint32Array, count: number): number {
    if (!this.running || count <= 0) return 0;
    if (count > BATCH_SIZE) throw new RangeError(`sendFrames: at most ${BATCH_SIZE} frames at once`);
    for (let i = 0; i < count; i++) {
      const buf = bufs[i]!;
      const len = lengths[i]!;
      if (len <= 0 || buf[TRANSPORT_HEADER_SIZE]! >>> 4 !== 0 || buf.length < TRANSPORT_HEADER_SIZE + len + 16 + TAG_LEN) {
        throw new RangeError('sendFrames: not a frame, or no room for the header, padding and tag');
      }
    }
    const kp = this.usableKeypair(peer);
    const ep = peer.endpoint;
    if (kp === null || ep === null) {
      for (let i = 0; i < count; i++) this.stage(peer, bufs[i]!, lengths[i]!);
      this.sendInitiation(peer, false);
      return 0;
    }
    const mtu = this.device.mtu;
    let bytes = 0;
    for (let i = 0; i < count; i++) {
      const buf = bufs[i]!;
      const len = lengths[i]!;
      const plen = paddedLength(len, mtu);
      if (plen > len) buf.fill(0, TRANSPORT_HEADER_SIZE + len, TRANSPORT_HEADER_SIZE + plen);
      const counter = kp.sendCounter++;
      writeTransportHeader(buf, 0, kp.remoteIndex, counter);
      this.frameSealLengths[i] = plen;
      this.frameCounterLo[i] = counter >>> 0;
      this.frameCounterHi[i] = Math.floor(counter / TWO_POW_32) >>> 0;
      const total = TRANSPORT_HEADER_SIZE + plen + TAG_LEN;
      this.frameSendBufs[i] = buf;
      this.frameSizes[i] = total;
      bytes += total;
    }
    kp.send.sealBatch(this.frameSendBufs, this.sealOffsets, this.frameSealLengths, this.frameCounterLo, this.frameCounterHi, count);
    const sent = ep.send !== undefined
      ? ep.send(this.frameSendBufs, this.frameOffsets, this.frameSizes, count)
      : this.bind.sendSegments !== undefined && count > 1 && segmentable(this.frameSizes, count)
        ? this.bind.sendSegments(this.frameSendBufs, this.frameOffsets, this.frameSizes, count, this.frameSizes[0]!, ep)
        : this.bind.sendBatch(this.frameSendBufs, this.frameOffsets, this.frameSizes, count, ep);
    for (let i = 0; i < count; i++) this.frameSendBufs[i] = undefined as unknown as Buffer;
    this.counters.txFrames += count;
    this.afterTransmit(peer, count, sent, bytes, true);
    this.keepKeyFreshSending(peer, kp);
    return sent;
  }

  /** Sends an IP packet at buf[off, off+len) into the tunnel as if read from the device
   * (routing, filter, session), copying it first: probes such as `meshtun ping` use it.
   * False when it has no route, is filtered, or is not an IP packet. */
  injectOutbound(buf: Buffer, off: number, len: number): boolean {
    if (!this.running || len <= 0 || len > 65535) return false;
    buf.copy(this.injectBuf, TRANSPORT_HEADER_SIZE, off, off + len);
    this.injectSizes[0] = len;
    const before = this.counters.dropNoRoute + this.counters.dropFilteredOutbound + this.counters.dropInvalidOutgoing;
    const tun = this.tunBufs;
    // routeBatch works on tunBufs; swap in the scratch buffer for this one packet.
    const saved = tun[0]!;
    tun[0] = this.injectBuf;
    const savedSize = this.tunSizes[0]!;
    this.tunSizes[0] = len;
    try {
      this.routeBatch(1);
    } catch (e) {
      this.batchPeers[0] = null;
      this.handlerError(e, 1);
      return false;
    } finally {
      tun[0] = saved;
      this.tunSizes[0] = savedSize;
    }
    return this.counters.dropNoRoute + this.counters.dropFilteredOutbound + this.counters.dropInvalidOutgoing === before;
  }

  /** Writes a locally made IP packet (an ICMP error about a relayed packet, say) to the device,
   * through the inbound tap. True when the device took it. */
  deliverInbound(buf: Buffer, off: number, len: number): boolean {
    if (!this.running) return false;
    this.deliverBuf[0] = buf;
    this.deliverOffset[0] = off;
    this.deliverSize[0] = len;
    let ok: boolean;
    try {
      if (this.inboundTap !== null) this.inboundTap(buf, off, len);
      ok = this.device.writeBatch(this.deliverBuf, this.deliverOffset, this.deliverSize, 1) === 1;
    } catch (e) {
      this.handlerError(e, 1);
      return false;
    } finally {
      this.deliverBuf[0] = this.oneBuf[0]!;
    }
    if (!ok) this.counters.dropDeviceWriteFailed++;
    return ok;
  }

  /** The current keypair if it may still send (not too old, counter not exhausted). */
  private usableKeypair(peer: Peer): Keypair<Peer> | null {
    const kp = peer.sendKeypair();
    if (kp === null) return null;
    if (kp.sendCounter >= REKEY_AFTER_MESSAGES * 2 || this.clock.now() - kp.created >= REJECT_AFTER_TIME) return null;
    return kp;
  }

  private keepKeyFreshSending(peer: Peer, kp: Keypair<Peer>): void {
    if (kp.sendCounter > REKEY_AFTER_MESSAGES || (kp.isInitiator && this.clock.now() - kp.created > REKEY_AFTER_TIME)) {
      this.sendInitiation(peer, false);
    }
  }

  private stage(peer: Peer, buf: Buffer, len: number): void {
    if (peer.staged.length >= MAX_STAGED_PACKETS) {
      peer.staged.shift();
      peer.stagedLengths.shift();
      this.counters.dropStagedOverflow++;
    }
    const copy = Buffer.allocUnsafe(TRANSPORT_HEADER_SIZE + len + 16 + TAG_LEN);
    buf.copy(copy, TRANSPORT_HEADER_SIZE, TRANSPORT_HEADER_SIZE, TRANSPORT_HEADER_SIZE + len);
    peer.staged.push(copy);
    peer.stagedLengths.push(len);
  }

  /** Sends the staged packets if a session is usable (after a handshake completes). */
  private flushStaged(peer: Peer): void {
    if (peer.staged.length === 0) return;
    if (this.usableKeypair(peer) === null || peer.endpoint === null) return;
    const bufs = peer.staged;
    const lens = peer.stagedLengths;
    peer.staged = [];
    peer.stagedLengths = [];
    for (let start = 0; start < bufs.length; start += BATCH_SIZE) {
      const end = Math.min(bufs.length, start + BATCH_SIZE);
      const sizes = this.tunSizesScratch;
      for (let i = start; i < end; i++) sizes[i - start] = lens[i]!;
      this.sendRun(peer, bufs.slice(start, end), sizes, 0, end - start);
    }
  }
  private readonly tunSizesScratch = new Uint32Array(BATCH_SIZE);

  /** Sends a keepalive (an empty transport message), or starts a handshake if there is no session. */
  sendKeepalive(peer: Peer): void {
    if (peer.staged.length > 0) {
      this.flushStaged(peer);
      if (peer.staged.length === 0) return;
    }
    const kp = this.usableKeypair(peer);
    if (kp === null || peer.endpoint === null) {
      this.sendInitiation(peer, false);
      return;
    }
    const buf = this.handshakeBuf;
    const counter = kp.sendCounter++;
    writeTransportHeader(buf, 0, kp.remoteIndex, counter);
    kp.send.seal(counter, buf, TRANSPORT_HEADER_SIZE, 0, buf, TRANSPORT_HEADER_SIZE);
    this.sendBufs[0] = buf;
    this.sendOffsets[0] = 0;
    this.sendSizes[0] = TRANSPORT_HEADER_SIZE + TAG_LEN;
    this.transmit(peer, 1, TRANSPORT_HEADER_SIZE + TAG_LEN, false);
  }

  // ---- handshakes ----

  /** Sends a handshake initiation unless one went out less than REKEY_TIMEOUT ago (retries are
   * driven by the retransmit timer). */
  sendInitiation(peer: Peer, isRetry: boolean): void {
    if (!this.running || peer.handshake === null || !peer.handshake.usable) return;
    if (!isRetry) {
      if (this.clock.now() - peer.lastInitiationSent < REKEY_TIMEOUT) return;
      peer.handshakeAttempts = 0;
    }
    if (peer.endpoint === null) {
      this.dropLog.debug(() => `peer ${encodeBase64Key(peer.publicKey)} has no endpoint; cannot start a handshake`);
      this.counters.dropNoEndpoint++;
      return;
    }
    peer.lastInitiationSent = this.clock.now();
    if (peer.handshakeIndex !== 0) this.indices.remove(peer.handshakeIndex);
    peer.handshakeIndex = this.indices.newIndex({ peer, keypair: null });
    const buf = this.handshakeBuf;
    if (!createInitiation(peer.handshake, peer.handshakeIndex, this.clock.wallNow(), buf)) return;
    peer.cookies.addMacs(buf, INITIATION.SIZE, this.clock.now());
    this.sendControl(peer.endpoint, buf, INITIATION.SIZE);
    this.counters.handshakesInitiated++;
    // timersHandshakeInitiated: retransmit after REKEY_TIMEOUT plus jitter.
    peer.timers.set(TimerKind.RetransmitHandshake, REKEY_TIMEOUT + randomInt(REKEY_TIMEOUT_JITTER_MAX));
    this.afterControlSent(peer);
  }

  private sendControl(endpoint: Endpoint, buf: Buffer, len: number): void {
    this.oneBuf[0] = buf;
    this.oneOffset[0] = 0;
    this.oneSize[0] = len;
    const sent = endpoint.send !== undefined ? endpoint.send(this.oneBuf, this.oneOffset, this.oneSize, 1) : this.bind.sendBatch(this.oneBuf, this.oneOffset, this.oneSize, 1, endpoint);
    if (sent < 1) this.counters.dropSendFailed++;
  }

  /** timersAnyAuthenticatedPacketSent + Traversal for handshake messages. */
  private afterControlSent(peer: Peer): void {
    peer.timers.clear(TimerKind.SendKeepalive);
    if (peer.persistentKeepalive > 0) peer.timers.set(TimerKind.PersistentKeepalive, peer.persistentKeepalive * 1000);
  }

  /** timersAnyAuthenticatedPacketReceived + Traversal. */
  private afterAuthenticatedReceive(peer: Peer): void {
    peer.lastReceived = this.clock.now();
    peer.timers.clear(TimerKind.NewHandshake);
    if (peer.persistentKeepalive > 0) peer.timers.set(TimerKind.PersistentKeepalive, peer.persistentKeepalive * 1000);
  }

  private isUnderLoad(): boolean {
    const now = this.clock.now();
    if (now - this.handshakeWindowStart >= 1000) {
      this.handshakeWindowStart = now;
      this.handshakesInWindow = 0;
    }
    if (++this.handshakesInWindow > UNDER_LOAD_HANDSHAKES_PER_SECOND) this.underLoadUntil = now + UNDER_LOAD_AFTER_TIME;
    return now < this.underLoadUntil;
  }

  /** mac1, then under load mac2 / cookie reply and the per-source rate limit. True: go on. */
  private admitHandshake(buf: Buffer, len: number, ep: Endpoint): boolean {
    if (this.identity === null || this.cookieChecker === null) {
      this.counters.dropNoPrivateKey++;
      return false;
    }
    if (!this.cookieChecker.checkMac1(buf, len)) {
      this.counters.dropHandshakeBadMac1++;
      return false;
    }
    if (this.isUnderLoad()) {
      const src = endpointCookieBytes(ep);
      const now = this.clock.now();
      if (!this.cookieChecker.checkMac2(buf, len, src, now)) {
        const reply = this.handshakeBuf;
        if (this.cookieChecker.createReply(buf, len, src, now, reply)) {
          this.sendControl(ep, reply, COOKIE_REPLY.SIZE);
          this.counters.cookieRepliesSent++;
        }
        this.counters.dropHandshakeNeedCookie++;
        return false;
      }
      if (!this.limiter.allowEndpoint(ep)) {
        this.counters.dropHandshakeRateLimited++;
        return false;
      }
    }
    return true;
  }

  private handleInitiation(buf: Buffer, len: number, ep: Endpoint): void {
    this.counters.rxHandshakeInitiations++;
    if (!this.admitHandshake(buf, len, ep)) return;
    const hs = consumeInitiation(this.identity!, buf, len, (pub) => this.initiationHandshake(pub), this.clock.now());
    const peer = hs ? this.peerOfHandshake(hs) : undefined;
    if (!hs || !peer) {
      this.counters.dropHandshakeRejected++;
      this.dropLog.debug(() => `rejected a handshake initiation from ${ep.toString()}`);
      return;
    }
    if (ep.admits !== undefined && !ep.admits(peer)) {
      this.counters.dropEndpointMismatch++;
      return;
    }
    peer.lastReceivedFrom = ep;
    if (peer.roaming || peer.endpoint === null) peer.endpoint = ep;
    const owner: IndexOwner = { peer, keypair: null };
    const localIndex = this.indices.newIndex(owner);
    const out = this.handshakeBuf;
    const keys = createResponse(hs, localIndex, out) ? deriveKeys(hs) : undefined;
    if (!keys) {
      this.indices.remove(localIndex);
      this.counters.dropHandshakeRejected++;
      return;
    }
    peer.cookies.addMacs(out, RESPONSE.SIZE, this.clock.now());
    const kp = new Keypair<Peer>(peer, keys.sendKey, keys.receiveKey, false, localIndex, keys.remoteIndex, this.clock.now());
    wipe(keys.sendKey);
    wipe(keys.receiveKey);
    owner.keypair = kp;
    // Responder: the new keypair waits in `next` until the initiator's first message confirms it.
    this.dropKeypair(peer.next);
    peer.next = kp;
    this.dropKeypair(peer.previous);
    peer.previous = null;
    this.sendControl(ep, out, RESPONSE.SIZE);
    // timersSessionDerived, then sent/traversal.
    peer.timers.set(TimerKind.ZeroKeyMaterial, REJECT_AFTER_TIME * 3);
    this.afterAuthenticatedReceive(peer);
    this.afterControlSent(peer);
  }

  /** The handshake an initiation from `pub` may use, or undefined to refuse it. Crossing
   * initiations (both ends started within CROSSING_WINDOW_MS) would each reset the other's state
   * and fail both; the end with the larger public key keeps its own, so the other's response to
   * it completes the handshake at once instead of after a retry (and resends its own after
   * CROSSED_RETRY_MS if no response comes: the other end may have refused it). */
  private initiationHandshake(pub: Buffer): Handshake | undefined {
    const peer = this.getPeer(pub);
    if (!peer || !peer.handshake) return undefined;
    if (peer.handshakeIndex !== 0 && this.clock.now() - peer.lastInitiationSent < CROSSING_WINDOW_MS &&
        Buffer.compare(this.identity!.publicKey, pub) > 0) {
      this.counters.handshakesCrossed++;
      // Ours should complete when their response to it arrives. It may never: they may have
      // refused it (they did not know us yet when it arrived). Then retry soon, not in 5 s.
      peer.timers.set(TimerKind.RetransmitHandshake, CROSSED_RETRY_MS);
      return undefined;
    }
    return peer.handshake;
  }

  private handleResponse(buf: Buffer, len: number, ep: Endpoint): void {
    this.counters.rxHandshakeResponses++;
    if (!this.admitHandshake(buf, len, ep)) return;
    const hs = consumeResponse(this.identity!, buf, len, (idx) => {
      const owner = this.indices.lookup(idx);
      return owner && owner.keypair === null && owner.peer.handshakeIndex === idx ? owner.peer.handshake ?? undefined : undefined;
    });
    const peer = hs ? this.peerOfHandshake(hs) : undefined;
    if (!hs || !peer) {
      this.counters.dropHandshakeRejected++;
      this.dropLog.debug(() => `rejected a handshake response from ${ep.toString()}`);
      return;
    }
    if (ep.admits !== undefined && !ep.admits(peer)) {
      this.counters.dropEndpointMismatch++;
      return;
    }
    const keys = deriveKeys(hs);
    if (!keys) {
      this.counters.dropHandshakeRejected++;
      return;
    }
    peer.lastReceivedFrom = ep;
    if (peer.roaming || peer.endpoint === null) peer.endpoint = ep;
    const localIndex = peer.handshakeIndex;
    peer.handshakeIndex = 0;
    const kp = new Keypair<Peer>(peer, keys.sendKey, keys.receiveKey, true, localIndex, keys.remoteIndex, this.clock.now());
    wipe(keys.sendKey);
    wipe(keys.receiveKey);
    this.indices.replace(localIndex, { peer, keypair: kp });
    // Initiator: the new keypair is current at once.
    if (peer.next) {
      this.dropKeypair(peer.previous);
      peer.previous = peer.next;
      peer.next = null;
      this.dropKeypair(peer.current);
    } else {
      this.dropKeypair(peer.previous);
      peer.previous = peer.current;
    }
    peer.current = kp;
    this.handshakeComplete(peer);
    peer.timers.set(TimerKind.ZeroKeyMaterial, REJECT_AFTER_TIME * 3);
    this.afterAuthenticatedReceive(peer);
    // Confirm the session to the responder: staged data, or a keepalive.
    this.sendKeepalive(peer);
  }

  private handleCookieReply(buf: Buffer, len: number): void {
    this.counters.rxCookieReplies++;
    const owner = this.indices.lookup(buf.readUInt32LE(COOKIE_REPLY.RECEIVER));
    if (!owner || !owner.peer.cookies.consumeReply(buf, len, this.clock.now())) {
      this.counters.dropCookieReplyInvalid++;
    }
  }

  private handshakeComplete(peer: Peer): void {
    peer.timers.clear(TimerKind.RetransmitHandshake);
    peer.handshakeAttempts = 0;
    peer.lastHandshakeWall = this.clock.wallNow();
    this.counters.handshakesCompleted++;
  }

  private peerOfHandshake(hs: Handshake): Peer | undefined {
    const peer = this.peers.get(encodeHex(hs.remoteStatic));
    return peer && peer.handshake === hs ? peer : undefined;
  }

  private dropKeypair(kp: Keypair<Peer> | null): void {
    if (kp === null) return;
    this.indices.remove(kp.localIndex);
    kp.wipe();
  }

  /** Drops every keypair and the handshake in flight (keys zeroed). */
  private expireSessions(peer: Peer): void {
    this.dropKeypair(peer.previous);
    this.dropKeypair(peer.current);
    this.dropKeypair(peer.next);
    peer.previous = peer.current = peer.next = null;
    if (peer.handshakeIndex !== 0) this.indices.remove(peer.handshakeIndex);
    peer.handshakeIndex = 0;
    peer.handshake?.clear();
  }

  // ---- timers ----

  private expiredRetransmitHandshake(peer: Peer): void {
    if (peer.handshakeAttempts > MAX_TIMER_HANDSHAKES) {
      this.log.debug(`handshake with ${encodeBase64Key(peer.publicKey)} gave up after ${MAX_TIMER_HANDSHAKES + 2} attempts`);
      peer.timers.clear(TimerKind.SendKeepalive);
      this.counters.dropStagedOverflow += peer.staged.length;
      peer.staged = [];
      peer.stagedLengths = [];
      if (!peer.timers.isPending(TimerKind.ZeroKeyMaterial)) peer.timers.set(TimerKind.ZeroKeyMaterial, REJECT_AFTER_TIME * 3);
      return;
    }
    peer.handshakeAttempts++;
    this.sendInitiation(peer, true);
  }

  private expiredSendKeepalive(peer: Peer): void {
    this.sendKeepalive(peer);
    if (peer.needAnotherKeepalive) {
      peer.needAnotherKeepalive = false;
      peer.timers.set(TimerKind.SendKeepalive, KEEPALIVE_TIMEOUT);
    }
  }

  private expiredNewHandshake(peer: Peer): void {
    // We sent data and heard nothing back for KEEPALIVE_TIMEOUT + REKEY_TIMEOUT.
    this.sendInitiation(peer, false);
  }

  private expiredZeroKeyMaterial(peer: Peer): void {
    this.expireSessions(peer);
  }

  private expiredPersistentKeepalive(peer: Peer): void {
    if (peer.persistentKeepalive > 0) this.sendKeepalive(peer);
  }

  // ---- receive pipeline ----

  private readBind(): void {
    for (let b = 0; b < BATCHES_PER_EVENT && this.running; b++) {
      const n = this.bind.receiveBatch(this.udpBufs, this.udpSizes, this.udpEndpoints);
      if (n <= 0) return;
      this.receiveBatchGuarded(n);
    }
  }

  /** receiveBatch, with anything that throws past the per-packet guards (a device write, the
   * end-of-batch hook) counted and the batch state reset. */
  private receiveBatchGuarded(n: number): void {
    try {
      this.receiveBatch(n);
    } catch (e) {
      this.handlerError(e, Math.max(1, this.writes));
      for (let i = 0; i < BATCH_SIZE; i++) {
        this.writeBufs[i] = undefined as unknown as Buffer;
        this.openBufs[i] = undefined as unknown as Buffer;
      }
      this.writes = 0;
      this.framesInBatch = 0;
    }
  }

  /** Handles datagrams that arrived some other way than the Bind (relayed inside a frame through
   * another peer) exactly as received ones: datagram i is bufs[i][0, sizes[i]) from endpoints[i]
   * (copied). Must not be called from inside the engine's own receive processing (a frame
   * handler): queue them and call this later. */
  receiveDatagrams(bufs: Buffer[], sizes: number[], endpoints: Endpoint[], count: number): void {
    if (!this.running) return;
    let n = 0;
    for (let i = 0; i < count; i++) {
      const len = sizes[i]!;
      if (len > BUFFER_SIZE) continue;
      bufs[i]!.copy(this.udpBufs[n]!, 0, 0, len);
      this.udpSizes[n] = len;
      this.udpEndpoints[n] = endpoints[i]!;
      n++;
      if (n === BATCH_SIZE) {
        this.receiveBatchGuarded(n);
        n = 0;
      }
    }
    if (n > 0) this.receiveBatchGuarded(n);
    for (let i = 0; i < BATCH_SIZE; i++) this.udpEndpoints[i] = null;
  }

  /** Handles datagrams udpBufs[0..n). Consecutive transport messages for the same keypair (the
   * usual case: all of them) are decrypted with one openBatch call, then each is checked and
   * delivered in order exactly as one at a time; any other message first finishes the group. */
  private receiveBatch(n: number): void {
    this.writes = 0;
    let group = 0;
    let groupKp: Keypair<Peer> | null = null;
    for (let i = 0; i < n; i++) {
      const buf = this.udpBufs[i]!;
      const len = this.udpSizes[i]!;
      const ep = this.udpEndpoints[i]!;
      this.counters.rxPackets++;
      this.counters.rxBytes += len;
      const type = messageType(buf, 0, len);
      if (type === MessageType.Transport) {
        let kp = this.transportKeypair(buf);
        if (group > 0 && kp !== groupKp) {
          // Delivering the group changes keypair state (a confirmed `next` becomes current), so
          // the index is looked up again afterwards, as it would be one packet at a time.
          this.openGroup(groupKp!, group);
          group = 0;
          kp = this.transportKeypair(buf);
        }
        if (kp === null) {
          this.counters.dropUnknownIndex++;
          continue;
        }
        if (this.clock.now() - kp.created >= REJECT_AFTER_TIME) {
          this.counters.dropExpiredKeypair++;
          continue;
        }
        groupKp = kp;
        this.openBufs[group] = buf;
        this.openLengths[group] = len - TRANSPORT_HEADER_SIZE;
        this.openCounterLo[group] = buf.readUInt32LE(TRANSPORT.COUNTER);
        this.openCounterHi[group] = buf.readUInt32LE(TRANSPORT.COUNTER + 4);
        this.openSlots[group] = i;
        group++;
        continue;
      }
      if (group > 0) {
        this.openGroup(groupKp!, group);
        group = 0;
      }
      switch (type) {
        case MessageType.Initiation: this.handleInitiation(buf, len, ep); break;
        case MessageType.Response: this.handleResponse(buf, len, ep); break;
        case MessageType.CookieReply: this.handleCookieReply(buf, len); break;
        default:
          if (this.datagramHandler !== null && this.otherDatagram(buf, len, ep)) break;
          this.counters.dropInvalidMessage++;
          this.dropLog.debug(() => `dropped a ${len}-byte datagram from ${ep.toString()}: not a WireGuard message`);
      }
    }
    if (group > 0) this.openGroup(groupKp!, group);
    if (this.framesInBatch > 0) {
      this.framesInBatch = 0;
      if (this.frameBatchEnd !== null) this.guarded(this.frameBatchEnd);
    }
    const writes = this.writes;
    if (writes > 0) {
      let ok = 0;
      try {
        ok = this.device.writeBatch(this.writeBufs, this.writeOffsets, this.writeSizes, writes);
      } catch (e) {
        // A device that throws (the userspace stack guards each packet itself) loses the batch.
        this.handlerError(e, writes);
        ok = writes;
      }
      if (ok < writes) this.counters.dropDeviceWriteFailed += writes - ok;
      for (let i = 0; i < writes; i++) this.writeBufs[i] = undefined as unknown as Buffer;
    }
    this.writes = 0;
  }

  /** The live keypair a transport message is addressed to, or null. */
  private transportKeypair(buf: Buffer): Keypair<Peer> | null {
    const kp = this.indices.lookup(buf.readUInt32LE(TRANSPORT.RECEIVER))?.keypair;
    return kp && kp.live ? kp : null;
  }

  /** Decrypts openBufs[0..count) (all for `kp`) in place with one call, then checks and queues
   * each for the device in order. */
  private openGroup(kp: Keypair<Peer>, count: number): void {
    kp.receive.openBatch(this.openBufs, this.openOffsets, this.openLengths, this.openCounterLo, this.openCounterHi, count, this.openOk);
    for (let j = 0; j < count; j++) {
      const slot = this.openSlots[j]!;
      const buf = this.udpBufs[slot]!;
      this.openBufs[j] = undefined as unknown as Buffer;
      const ipLen = this.receiveTransport(kp, this.openOk[j] === 1, buf, this.udpSizes[slot]!, this.udpEndpoints[slot]!,
        this.openCounterLo[j]!, this.openCounterHi[j]!);
      if (ipLen > 0) {
        this.writeBufs[this.writes] = buf;
        this.writeOffsets[this.writes] = TRANSPORT_HEADER_SIZE;
        this.writeSizes[this.writes] = ipLen;
        this.writes++;
      }
    }
  }

  /** After decryption (`opened`: the tag verified) of a transport message for `kp` with
   * counter (hi, lo): replay check, keypair confirmation, roaming, timers and the inner packet's
   * checks. Returns the inner IP packet length to deliver, or 0. */
  private receiveTransport(kp: Keypair<Peer>, opened: boolean, buf: Buffer, len: number, ep: Endpoint, lo: number, hi: number): number {
    const sealedLen = len - TRANSPORT_HEADER_SIZE;
    if (!opened) {
      this.counters.dropDecryptFailed++;
      return 0;
    }
    if (ep.admits !== undefined && !ep.admits(kp.peer)) {
      this.counters.dropEndpointMismatch++;
      return 0;
    }
    if (!kp.replay.validate(lo, hi)) {
      this.counters.dropReplay++;
      return 0;
    }
    const peer = kp.peer;
    if (kp === peer.next) this.confirmNext(peer);
    peer.lastReceivedFrom = ep;
    if (peer.roaming) peer.endpoint = ep; // roaming: follow the latest authenticated packet
    peer.rxBytes += len;
    this.keepKeyFreshReceiving(peer, kp);
    this.afterAuthenticatedReceive(peer);
    const plainLen = sealedLen - TAG_LEN;
    if (plainLen === 0) {
      this.counters.rxKeepalives++;
      return 0;
    }
    // timersDataReceived
    if (!peer.timers.isPending(TimerKind.SendKeepalive)) peer.timers.set(TimerKind.SendKeepalive, KEEPALIVE_TIMEOUT);
    else peer.needAnotherKeepalive = true;
    this.counters.rxDataPackets++;
    const ip = TRANSPORT_HEADER_SIZE;
    const version = buf[ip]! >>> 4;
    let ipLen: number;
    let from: Peer | undefined;
    if (version === 4 && plainLen >= 20) {
      ipLen = buf.readUInt16BE(ip + 2);
      if (ipLen < 20 || ipLen > plainLen) { this.counters.dropInvalidInnerPacket++; return 0; }
      from = this.allowedIps.lookupV4(buf.readUInt32BE(ip + 12));
    } else if (version === 6 && plainLen >= 40) {
      ipLen = 40 + buf.readUInt16BE(ip + 4);
      if (ipLen > plainLen) { this.counters.dropInvalidInnerPacket++; return 0; }
      from = this.allowedIps.lookupV6(buf, ip + 8);
    } else if (version === 0 && this.frameHandler !== null) {
      this.counters.rxFrames++;
      this.framesInBatch++;
      try {
        this.frameHandler(peer, buf, ip, plainLen);
      } catch (e) {
        this.handlerError(e, 1);
      }
      return 0;
    } else {
      this.counters.dropInvalidInnerPacket++;
      return 0;
    }
    if (from !== peer) {
      this.counters.dropSourceNotAllowed++;
      this.dropLog.debug(() => `dropped a packet from peer ${encodeBase64Key(peer.publicKey)}: its source address is not in the peer's allowed-ips`);
      return 0;
    }
    const filter = this.filter;
    try {
      if (filter !== null && !filter.inbound(buf, ip, ipLen)) {
        this.counters.dropFilteredInbound++;
        return 0;
      }
      if (this.inboundTap !== null) this.inboundTap(buf, ip, ipLen);
    } catch (e) {
      this.handlerError(e, 1);
      return 0;
    }
    return ipLen;
  }

  /** The initiator used the keypair we derived as responder: it becomes current. */
  private confirmNext(peer: Peer): void {
    this.dropKeypair(peer.previous);
    peer.previous = peer.current;
    peer.current = peer.next;
    peer.next = null;
    this.handshakeComplete(peer);
    this.flushStaged(peer);
  }

  private keepKeyFreshReceiving(peer: Peer, kp: Keypair<Peer>): void {
    if (kp.isInitiator && kp === peer.current && this.clock.now() - kp.created > REJECT_AFTER_TIME - KEEPALIVE_TIMEOUT - REKEY_TIMEOUT) {
      this.sendInitiation(peer, false);
    }
  }

  // ---- UAPI (wg(8)): see engine-uapi.ts ----

  /** The private key (a copy), or null. */
  get privateKey(): Buffer | null {
    return this.identity ? Buffer.from(this.identity.privateKey) : null;
  }

  /** The bound port while running, else the configured one. */
  get listenPort(): number {
    return this.running ? this.bind.port : this.configuredPort;
  }

  get fwmark(): number {
    return this.mark;
  }

  getConfig(): UapiDeviceState {
    return engineUapiState(this);
  }

  applyConfig(ops: UapiSetOp[]): Promise<void> {
    return applyUapiOps(this, ops);
  }
}
