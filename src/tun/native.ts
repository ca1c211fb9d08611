// Types the part of the native addon (loaded by util/native.ts) that TUN devices use. When the
// addon is missing, `tunNativeUnavailable` says why and how to fix it; nothing throws at import time.
import { nativeAddon, nativeAddonFailure, nativeAddonUnavailable } from '../util/native.js';

/** Where the addon is looked for ($MESHTUN_NATIVE, else build/Release under the package root). */
export { NATIVE_ADDON_PATH } from '../util/native.js';

/** A readiness watcher handle returned by pollStart (an opaque external). */
export type PollHandle = object;

/** Poll event bits (pollStart / pollUpdate and the callback's `events`). */
export const POLL_READABLE = 1;
export const POLL_WRITABLE = 2;

/** The TUN, control-socket and poll functions of the addon. Failures return -errno. */
export interface NativeTunApi {
  readonly errno: Readonly<Record<string, number>>;
  strerror(errno: number): string;
  close(fd: number): number;
  tunOpen(): number;
  tunSetIff(fd: number, name: string, nameOut: Buffer): number;
  tunRead(fd: number, bufs: Buffer[], offset: number, sizes: Uint32Array): number;
  tunWrite(fd: number, bufs: Buffer[], offsets: Uint32Array, sizes: Uint32Array, count: number): number;
  ctlSocket(): number;
  ifGetMtu(ctlFd: number, name: string): number;
  ifSetMtu(ctlFd: number, name: string, mtu: number): number;
  pollStart(fd: number, events: number, callback: (status: number, events: number) => void): PollHandle | number;
  pollUpdate(handle: PollHandle, events: number): number;
  pollRef(handle: PollHandle, keepAlive: boolean): number;
  pollStop(handle: PollHandle): number;
}

/** The addon, or null when it cannot be loaded (see `tunNativeUnavailable`). */
export function tunNative(): NativeTunApi | null {
  return nativeAddon<NativeTunApi>();
}

/** Why the addon is unavailable ("" when it loaded); a missing build also names --userspace. */
export function tunNativeUnavailable(): string {
  const reason = nativeAddonUnavailable();
  return nativeAddonFailure() === 'build' ? `${reason}, or use --userspace` : reason;
}
