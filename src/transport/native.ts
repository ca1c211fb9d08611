// Types the part of the native addon (loaded once by util/native.ts) used for UDP
// (recvmmsg/sendmmsg, GSO, GRO, PKTINFO for sticky sources, SO_MARK) and readiness watchers.
import { nativeAddon, nativeAddonUnavailable } from '../util/native.js';

/** A readiness watcher handle returned by pollStart (an opaque external). */
export type PollHandle = object;
export const POLL_READABLE = 1;
export const POLL_WRITABLE = 2;

/** The UDP and poll functions of the addon. Failures return -errno (see native/udp.c). */
export interface NativeUdpApi {
  readonly errno: Readonly<Record<string, number>>;
  /** Bytes per sender/destination address record (family, port, 16-byte address). */
  readonly ADDR_RECORD_LEN: number;
  /** Most datagrams one recvmmsg/sendmmsg call handles. */
  readonly MAX_BATCH: number;
  /** Most segments one UDP_SEGMENT sendmsg carries (udpSendGso splits bigger batches). */
  readonly GSO_MAX_SEGMENTS: number;
  /** UDP GRO receive (absent from addons built before it): super-datagrams per udpRecvGro call,
   * bytes of scratch per super-datagram, and bytes of the state buffer udpRecvGro keeps. */
  readonly GRO_SLOTS?: number;
  readonly GRO_SLOT_SIZE?: number;
  readonly GRO_STATE_LEN?: number;
  /** Bytes per local (source) address record; absent from addons built before sticky sources. */
  readonly SRC_RECORD_LEN?: number;
  strerror(errno: number): string;
  close(fd: number): number;
  udpOpen(family: 4 | 6, port: number): number;
  udpLocalPort(fd: number): number;
  /** With `locals`, each datagram's local address lands there as a source record (family 0 when
   * the kernel gave none: PKTINFO off). */
  udpRecv(fd: number, bufs: Buffer[], sizes: Uint32Array, addrs: Buffer, locals?: Buffer | null): number;
  /** Asks the kernel for each datagram's local address (IPV6_RECVPKTINFO on a dual-stack socket,
   * IP_PKTINFO on an IPv4 one): 0 | -errno. Absent from addons built before sticky sources. */
  udpSetPktinfo?(fd: number, sockFamily: 4 | 6): number;
  /** Turns UDP_GRO on or off: 0 | -errno. */
  udpSetGro?(fd: number, on: number): number;
  /** udpRecv for a UDP_GRO socket: coalesced super-datagrams land in scratch
   * (GRO_SLOTS * GRO_SLOT_SIZE bytes) and are split into bufs as separate datagrams; segments
   * that do not fit stay in state (GRO_STATE_LEN bytes, zeroed) for the next call.
   * out = [coalesced super-datagrams received, datagrams in them, 1 when segments are held]. */
  udpRecvGro?(fd: number, bufs: Buffer[], sizes: Uint32Array, addrs: Buffer, scratch: Buffer, state: Buffer, out: Uint32Array, locals?: Buffer | null): number;
  /** `src` (a source record, or null): every datagram leaves from that local address
   * (IP_PKTINFO / IPV6_PKTINFO); a source the kernel no longer has fails the send (EINVAL,
   * ENETUNREACH, EADDRNOTAVAIL or ENODEV). Addons built before sticky sources ignore it. */
  udpSend(fd: number, sockFamily: 4 | 6, bufs: Buffer[], offsets: Uint32Array, sizes: Uint32Array, count: number, addr: Buffer, addrOff: number, src?: Buffer | null, srcOff?: number): number;
  udpSendGso(fd: number, sockFamily: 4 | 6, bufs: Buffer[], offsets: Uint32Array, sizes: Uint32Array, count: number, segSize: number, addr: Buffer, addrOff: number, src?: Buffer | null, srcOff?: number): number;
  udpGsoSupported(fd: number): number;
  udpSetMark(fd: number, mark: number): number;
  udpSetBuffers(fd: number, bytes: number, out: Uint32Array): number;
  pollStart(fd: number, events: number, callback: (status: number, events: number) => void): PollHandle | number;
  pollUpdate(handle: PollHandle, events: number): number;
  pollRef(handle: PollHandle, keepAlive: boolean): number;
  pollStop(handle: PollHandle): number;
}

/** The addon, or null when it cannot be loaded (see `udpNativeUnavailable`). */
export function udpNative(): NativeUdpApi | null {
  return nativeAddon<NativeUdpApi>();
}

/** Why the addon is unavailable ("" when it loaded). */
export function udpNativeUnavailable(): string {
  return nativeAddonUnavailable();
}
