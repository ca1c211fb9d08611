// Loads the native addon for UDP (recvmmsg/sendmmsg, GSO, SO_MARK) and readiness watchers, and
// types that part of it. The same module object as src/tun/native.ts gets (createRequire caches
// by path); transport may not import tun, so the few lines of loading live in both.
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

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

const ADDON_PATH = process.env.MESHTUN_NATIVE
  ?? fileURLToPath(new URL('../../../build/Release/meshtun_native.node', import.meta.url));

let loaded: NativeUdpApi | null | undefined;
let reason = '';

/** The addon, or null when it cannot be loaded (see `udpNativeUnavailable`). */
export function udpNative(): NativeUdpApi | null {
  if (loaded !== undefined) return loaded;
  loaded = null;
  if (process.platform !== 'linux') {
    reason = `the native addon was not built: it is Linux only (this is ${process.platform})`;
    return null;
  }
  try {
    loaded = createRequire(import.meta.url)(ADDON_PATH) as NativeUdpApi;
  } catch (e) {
    const why = (e as NodeJS.ErrnoException).code === 'MODULE_NOT_FOUND'
      ? `${ADDON_PATH} does not exist`
      : (e as Error).message.split('\n')[0];
    reason = `the native addon was not built: ${why}; run \`npm rebuild\` in the meshtun folder (needs a C compiler, make and python3)`;
  }
  return loaded;
}

/** Why the addon is unavailable ("" when it loaded). */
export function udpNativeUnavailable(): string {
  udpNative();
  return reason;
}
