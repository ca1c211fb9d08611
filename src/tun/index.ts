// TUN devices: the Linux kernel TUN through the native addon, and an in-memory device for tests.
export {
  LinuxTun, checkInterfaceName, DEFAULT_TUN_MTU, MIN_TUN_MTU, MAX_TUN_MTU, MAX_INTERFACE_NAME_LEN,
  type LinuxTunStats,
} from './linux.js';
export { MemoryTun, MEMORY_TUN_QUEUE_LIMIT, type MemoryTunStats } from './memory.js';
export { tunNative, tunNativeUnavailable, NATIVE_ADDON_PATH } from './native.js';
