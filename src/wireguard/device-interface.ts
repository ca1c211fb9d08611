// The boundary interfaces the engine declares and the lower layers implement:
//   Device   (implemented in src/tun/: Linux TUN through the native addon, memory for tests,
//             and by src/stack/ for the userspace network stack)
//   Bind     (implemented in src/transport/: UDP, later TCP-framed, HTTPS/MASQUE, relay)
//   Endpoint (a remote transport address, immutable and pooled by its Bind)
// The engine reads packets in batches at an `offset`, so the WireGuard transport header can be
// written in front of the IP packet in place, without a copy.

import type { Peer } from './peer.js';

/** A source of and sink for IP packets (a TUN device or a userspace stack). */
export interface Device {
  /** Interface name (e.g. "mt0"), or a label for non-kernel devices. */
  readonly name: string;
  /** Current MTU in bytes. */
  readonly mtu: number;
  /** Registers the callback run whenever packets may be readable; the callee then calls
   * `readBatch` until it returns 0. Called once, before any read. */
  start(onReadable: () => void): void;
  /** Reads up to `bufs.length` packets without blocking; packet i is copied to
   * bufs[i][offset ...] and its length stored in sizes[i]. Returns how many were read (0: none). */
  readBatch(bufs: Buffer[], sizes: Uint32Array, offset: number): number;
  /** Writes `count` packets: packet i is bufs[i][offsets[i], offsets[i] + sizes[i]). Never blocks;
   * returns how many were accepted (the rest are dropped by the caller, who counts them). */
  writeBatch(bufs: Buffer[], offsets: Uint32Array, sizes: Uint32Array, count: number): number;
  /** Sets the MTU (kernel devices change the interface too). */
  setMtu(mtu: number): void;
  /** Stops reading and releases the device. Idempotent. */
  close(): void;
}

/** A remote transport address. Immutable; a Bind returns the same object for the same address,
 * so the engine may compare endpoints with === and keep them without copying. */
export interface Endpoint {
  /** 4 or 6. */
  readonly family: 4 | 6;
  /** Text form of the address, e.g. "198.18.0.1" or "fd00::1". */
  readonly address: string;
  readonly port: number;
  /** "198.18.0.1:51820" or "[fd00::1]:51820", as wg(8) prints it. */
  toString(): string;
  /** Optional, for endpoints that carry packets onwards themselves (a mesh relay): sees each data
   * packet sent to this endpoint just before it is sealed, with the transport header written at
   * buf[0, 16) and the IP packet at buf[16, 16+len). Must not keep or change the buffer. */
  beforeSeal?(buf: Buffer, len: number): void;
  /** Optional: an endpoint that carries datagrams itself (a mesh relay through another peer)
   * sends them with this instead of the engine's Bind; same contract as Bind.sendBatch. */
  send?(bufs: Buffer[], offsets: Uint32Array, sizes: Uint32Array, count: number): number;
  /** Optional: the largest IP packet this endpoint's path carries without fragmenting (a relay
   * adds its own headers). A larger packet that may not be fragmented (IPv4 with DF, any IPv6) is
   * not sent: the engine counts it and hands it to `tooBig`, which answers the sender (an ICMP
   * "packet too big" with this size). 0 or absent: no limit. */
  readonly maxPacket?: number;
  tooBig?(buf: Buffer, off: number, len: number): void;
  /** Optional: whether a message that arrived from this endpoint and authenticated as `peer`'s
   * may count as that peer's (a mesh relay endpoint claims one source node: a datagram that
   * opens with another peer's session is refused, counted as dropEndpointMismatch, before it
   * touches the replay window or the peer's endpoint). Absent: any peer. */
  admits?(peer: Peer): boolean;
}

/** A datagram transport for WireGuard messages (UDP, or a fallback tunnelled over TCP/HTTPS). */
export interface Bind {
  /** Opens (binds) on `port` (0: any); returns the actual port. May be called again after close. */
  open(port: number): Promise<number>;
  /** The bound port, or 0 when closed. */
  readonly port: number;
  /** Registers the callback run whenever datagrams may be readable; the callee then calls
   * `receiveBatch` until it returns 0. */
  start(onReadable: () => void): void;
  /** Receives up to `bufs.length` datagrams without blocking: datagram i is copied to bufs[i] at 0,
   * its length stored in sizes[i] and its sender in endpoints[i]. Returns the count (0: none). */
  receiveBatch(bufs: Buffer[], sizes: Uint32Array, endpoints: (Endpoint | null)[]): number;
  /** Sends `count` datagrams to `endpoint`: datagram i is bufs[i][offsets[i], offsets[i]+sizes[i]).
   * Never blocks; returns how many were sent. */
  sendBatch(bufs: Buffer[], offsets: Uint32Array, sizes: Uint32Array, count: number, endpoint: Endpoint): number;
  /** Optional (UDP GSO): sends the same datagrams as sendBatch in as few system calls as the
   * kernel allows; every datagram but the last is exactly `segmentSize` bytes, the last may be
   * shorter. Falls back to sendBatch by itself when the path cannot offload. */
  sendSegments?(bufs: Buffer[], offsets: Uint32Array, sizes: Uint32Array, count: number, segmentSize: number, endpoint: Endpoint): number;
  /** Parses "host:port" / "[v6]:port" with a literal address into a pooled Endpoint, or null. */
  parseEndpoint(text: string): Endpoint | null;
  /** Sets SO_MARK (fwmark) on the socket where supported; 0 clears it. */
  setMark(mark: number): void;
  /** Closes the socket. Idempotent. */
  close(): void;
}

/** Time for the protocol's timers, injectable so tests drive it instead of waiting. */
export interface Clock {
  /** Monotonic milliseconds. */
  now(): number;
  /** Wall-clock milliseconds since the epoch (handshake timestamps, "latest handshake"). */
  wallNow(): number;
  /** Runs `fn` after `ms`; returns a handle for `clearTimer`. */
  setTimer(fn: () => void, ms: number): unknown;
  clearTimer(handle: unknown): void;
}
