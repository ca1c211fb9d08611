export { UserError, ConfigError, PlatformError } from './errors.js';
export { Logger, RateLimitedLog, setLogLevel, setLogSink, logEnabled, type LogLevel } from './log.js';
export { nativeAddon, nativeAddonUnavailable, nativeAddonFailure, NATIVE_ADDON_PATH, type NativeAddonFailure } from './native.js';
export { withPrivateUmask, withSocketUmask, SOCKET_UMASK, mkdirPrivate, writePrivateFile, PRIVATE_UMASK, PRIVATE_FILE_MODE, PRIVATE_DIR_MODE } from './private-files.js';
