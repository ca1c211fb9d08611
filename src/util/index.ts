export { UserError, ConfigError, PlatformError } from './errors.js';
export { Logger, RateLimitedLog, setLogLevel, setLogSink, logEnabled, type LogLevel } from './log.js';
