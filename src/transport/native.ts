// Types the part of the native addon (loaded once by util/native.ts) used for UDP
// (recvmmsg/sendmmsg, GSO, SO_MARK) and readiness watchers.
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
  strerror(errno: number): string;
  close(fd: number): number;
  udpOpen(family: 4 | 6, port: number): number;
  udpLocalPort(fd: number): number;
  udpRecv(fd: number, bufs: Buffer[], sizes: Uint32Array, addrs: Buffer): number;
  udpSend(fd: number, sockFamily: 4 | 6, bufs: Buffer[], offsets: Uint32Array, sizes: Uint32Array, count: number, addr: Buffer, addrOff: number): number;
  udpSendGso(fd: number, sockFamily: 4 | 6, bufs: Buffer[], offsets: Uint32Array, sizes: Uint32Array, count: number, segSize: number, addr: Buffer, addrOff: number): number;
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
