// Errors for mistakes made by a user (config, CLI arguments, API calls). Network bytes never
// throw: codecs return a Status instead (see src/wire/status.ts).

/** Thrown when something a user gave us (a file, an argument, an API call) is wrong. The message
 * says what was wrong and how to fix it; the CLI prints it without a stack trace. */
export class UserError extends Error {
  override name = 'UserError';
  constructor(message: string, readonly hint?: string) {
    super(message);
  }
}

/** Thrown when a config file has a mistake; names the file and line. */
export class ConfigError extends UserError {
  override name = 'ConfigError';
  constructor(readonly file: string, readonly line: number, what: string) {
    super(line > 0 ? `${file}:${line}: ${what}` : `${file}: ${what}`);
  }
}

/** Thrown when the platform lacks something meshtun needs (no /dev/net/tun, addon not built). */
export class PlatformError extends UserError {
  override name = 'PlatformError';
}
