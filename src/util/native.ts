// The one loader of the native addon (build/Release/meshtun_native.node, built by `npm install`
// from native/). Each layer types the part of the addon it uses (tun/native.ts, transport/native.ts,
// crypto/aead.ts) and asks for it here, so the path, the MESHTUN_NATIVE override and the wording of
// "why it is missing" live in one place. Nothing throws at import time or when the addon is absent.
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

/** Where the addon is looked for: $MESHTUN_NATIVE, else build/Release under the package root
 * (this file runs from dist/src/util/). */
export const NATIVE_ADDON_PATH = process.env.MESHTUN_NATIVE
  ?? fileURLToPath(new URL('../../../build/Release/meshtun_native.node', import.meta.url));

/** Why the addon did not load: not Linux, or it is not built / failed to load. */
export type NativeAddonFailure = 'platform' | 'build';

let loaded: object | null | undefined;
let reason = '';
let failure: NativeAddonFailure | null = null;

function load(): object | null {
  if (loaded !== undefined) return loaded;
  loaded = null;
  if (process.platform !== 'linux') {
    failure = 'platform';
    reason = `the native addon was not built: it is Linux only (this is ${process.platform})`;
    return null;
  }
  try {
    loaded = createRequire(import.meta.url)(NATIVE_ADDON_PATH) as object;
  } catch (e) {
    const why = (e as NodeJS.ErrnoException).code === 'MODULE_NOT_FOUND'
      ? `${NATIVE_ADDON_PATH} does not exist`
      : (e as Error).message.split('\n')[0];
    failure = 'build';
    reason = `the native addon was not built: ${why}; run \`npm rebuild\` in the meshtun folder ` +
      '(needs a C compiler, make and python3)';
  }
  return loaded;
}

/** The addon's exports typed as T by the caller (who knows which part it uses), or null when it
 * cannot be loaded (see `nativeAddonUnavailable`). Loaded once; later calls return the same object. */
export function nativeAddon<T extends object>(): T | null {
  return load() as T | null;
}

/** Why the addon is unavailable ("" when it loaded). */
export function nativeAddonUnavailable(): string {
  load();
  return reason;
}

/** The kind of failure, or null when the addon loaded. */
export function nativeAddonFailure(): NativeAddonFailure | null {
  load();
  return failure;
}
