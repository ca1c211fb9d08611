// Loads the native addon (build/Release/meshtun_native.node, built by `npm install` from native/)
// and types the part of it that TUN devices use. When the addon is missing, `tunNativeUnavailable`
// says why and how to fix it; nothing throws at import time.
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

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

/** Where the addon is looked for: $MESHTUN_NATIVE, else build/Release under the package root
 * (this file runs from dist/src/tun/). */
export const NATIVE_ADDON_PATH = process.env.MESHTUN_NATIVE
  ?? fileURLToPath(new URL('../../../build/Release/meshtun_native.node', import.meta.url));

let loaded: NativeTunApi | null | undefined;
let reason = '';

function load(): NativeTunApi | null {
  if (loaded !== undefined) return loaded;
  if (process.platform !== 'linux') {
    reason = `the native addon was not built: it is Linux only (this is ${process.platform})`;
    loaded = null;
    return null;
  }
  try {
    loaded = createRequire(import.meta.url)(NATIVE_ADDON_PATH) as NativeTunApi;
  } catch (e) {
    const why = (e as NodeJS.ErrnoException).code === 'MODULE_NOT_FOUND'
      ? `${NATIVE_ADDON_PATH} does not exist`
      : (e as Error).message.split('\n')[0];
    reason = `the native addon was not built: ${why}; run \`npm rebuild\` in the meshtun folder ` +
      '(needs a C compiler, make and python3), or use --userspace';
    loaded = null;
  }
  return loaded;
}

/** The addon, or null when it cannot be loaded (see `tunNativeUnavailable`). */
export function tunNative(): NativeTunApi | null {
  return load();
}

/** Why the addon is unavailable ("" when it loaded). */
export function tunNativeUnavailable(): string {
  load();
  return reason;
}
