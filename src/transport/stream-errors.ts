// Errors of the stream transports (MASQUE CONNECT-UDP over HTTP/2, TCP-framed). They reject the
// promises that open a stream; bytes that arrive on an open stream never throw (they are dropped
// and counted, see DatagramStreamCounters).
import { UserError } from '../util/index.js';

/** Thrown when opening a stream transport takes longer than its `timeoutMs`; names the step that
 * was waiting (TCP/TLS connect, the server's SETTINGS, the response, the hello). */
export class StreamTimeoutError extends Error {
  override name = 'StreamTimeoutError';
  constructor(readonly target: string, readonly step: string, readonly timeoutMs: number) {
    super(`${target}: no ${step} within ${timeoutMs} ms`);
  }
}

/** Thrown when the connection of a stream transport fails or closes before the stream is open
 * (refused, reset, TLS failure, the server went away). `cause` holds node's error, if any. */
export class StreamConnectError extends Error {
  override name = 'StreamConnectError';
  constructor(readonly target: string, what: string, options?: { cause?: unknown }) {
    super(`${target}: ${what}`, options);
  }
}

/** Thrown when an HTTP/2 server does not announce extended CONNECT (RFC 8441,
 * SETTINGS_ENABLE_CONNECT_PROTOCOL) in its SETTINGS, so it cannot take CONNECT-UDP. */
export class ExtendedConnectUnsupportedError extends Error {
  override name = 'ExtendedConnectUnsupportedError';
  constructor(readonly authority: string) {
    super(`${authority} does not offer extended CONNECT (RFC 8441): it cannot carry CONNECT-UDP; ` +
      'a node:http2 server needs settings: { enableConnectProtocol: true } (createMasqueServer does that)');
  }
}

/** Thrown when a proxy answers CONNECT-UDP with a status other than 2xx; `status` is that status
 * and `reason` the text of the response (its body, or its proxy-status header). */
export class ConnectUdpRefusedError extends Error {
  override name = 'ConnectUdpRefusedError';
  constructor(readonly authority: string, readonly target: string, readonly status: number, readonly reason: string) {
    super(`${authority} refused CONNECT-UDP to ${target}: ${status}${reason ? ` ${reason}` : ''}`);
  }
}

/** Thrown when a TCP-framed client closes, or sends no complete hello frame within the time
 * allowed, before its stream is accepted. */
export class TcpHelloError extends Error {
  override name = 'TcpHelloError';
  constructor(readonly remote: string, what: string) {
    super(`tcp-framed connection from ${remote}: ${what}`);
  }
}

/** Thrown when the options given to connectUdp / connectTcpFramed / acceptTcpFramed are wrong
 * (bad authority URL, port, target host, hello too long). */
export class StreamOptionsError extends UserError {
  override name = 'StreamOptionsError';
}
