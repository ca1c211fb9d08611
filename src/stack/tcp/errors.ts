// Errors a TcpSocket emits, shaped like Node's net errors (err.code, err.errno, err.syscall) so
// code written for net.Socket handles them unchanged.

export type TcpErrorCode =
  | 'ECONNREFUSED' | 'ECONNRESET' | 'ETIMEDOUT' | 'EHOSTUNREACH' | 'ENETUNREACH' | 'EPIPE'
  | 'EMFILE' | 'EADDRNOTAVAIL' | 'EADDRINUSE';

/** errno values as Linux numbers them, negated the way libuv reports them. */
const ERRNO: Record<TcpErrorCode, number> = {
  ECONNREFUSED: -111,
  ECONNRESET: -104,
  ETIMEDOUT: -110,
  EHOSTUNREACH: -113,
  ENETUNREACH: -101,
  EPIPE: -32,
  EMFILE: -24,
  EADDRNOTAVAIL: -99,
  EADDRINUSE: -98,
};

/** Thrown (emitted as 'error') when a TCP connection fails: refused, reset by the peer, timed
 * out, or could not be created. */
export class TcpSocketError extends Error {
  override name = 'TcpSocketError';
  readonly errno: number;
  constructor(readonly code: TcpErrorCode, readonly syscall: string, readonly address?: string, readonly port?: number) {
    super(`${syscall} ${code}${address !== undefined ? ` ${address}${port !== undefined ? `:${port}` : ''}` : ''}`);
    this.errno = ERRNO[code];
  }
}
