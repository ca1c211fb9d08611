// A small leveled logger with per-key rate limiting, so a flood of bad packets cannot flood the log.

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
const ORDER: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

let threshold = ORDER[(process.env.MESHTUN_LOG as LogLevel) in ORDER ? (process.env.MESHTUN_LOG as LogLevel) : 'info'];
let sink: (line: string) => void = (line) => process.stderr.write(line + '\n');

export function setLogLevel(level: LogLevel): void {
  threshold = ORDER[level];
}

/** Redirects log lines (tests capture them). */
export function setLogSink(fn: (line: string) => void): void {
  sink = fn;
}

export function logEnabled(level: LogLevel): boolean {
  return ORDER[level] >= threshold;
}

export class Logger {
  constructor(readonly scope: string) {}
  private emit(level: LogLevel, msg: string): void {
    if (ORDER[level] < threshold) return;
    sink(`${new Date().toISOString()} ${level.padEnd(5)} ${this.scope}: ${msg}`);
  }
  debug(msg: string): void { this.emit('debug', msg); }
  info(msg: string): void { this.emit('info', msg); }
  warn(msg: string): void { this.emit('warn', msg); }
  error(msg: string): void { this.emit('error', msg); }
}

/** Allows at most `perInterval` events per key per `intervalMs`; the rest are counted as suppressed. */
export class RateLimitedLog {
  private windowStart = 0;
  private count = 0;
  suppressed = 0;
  constructor(private readonly log: Logger, private readonly perInterval = 10, private readonly intervalMs = 1000) {}
  debug(msg: () => string): void {
    this.emit('debug', msg);
  }

  warn(msg: () => string): void {
    this.emit('warn', msg);
  }

  private emit(level: LogLevel, msg: () => string): void {
    if (!logEnabled(level)) return;
    const now = Date.now();
    if (now - this.windowStart >= this.intervalMs) {
      if (this.suppressed > 0) this.log[level](`(${this.suppressed} similar messages suppressed)`);
      this.windowStart = now;
      this.count = 0;
      this.suppressed = 0;
    }
    if (this.count++ < this.perInterval) this.log[level](msg());
    else this.suppressed++;
  }
}
