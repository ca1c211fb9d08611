// The stream rungs of a mesh node (issue 11; src/mesh/relay-streams.ts does the work):
//   - a relaying node (the coordinator, members started with --relay) serves them: MASQUE
//     CONNECT-UDP on its TLS port (the coordinator's control port, or its own HTTP/2 server on
//     --relay-https-port for a relay member) and framed datagrams on TCP at its WireGuard port
//     number (or --relay-tcp-port);
//   - every member keeps RelayLinks: streams to relaying peers that UDP does not reach.
import { createServer as createNetServer, type Server as NetServer } from 'node:net';
import type { Http2SecureServer } from 'node:http2';
import { Logger } from '../util/index.js';
import { createMasqueServer } from '../transport/index.js';
import { RelayLinks, RelayStreamServer, type MeshNode, type ControlNetworkMap } from '../mesh/index.js';
import { loadOrCreateTlsCert } from '../control/index.js';
import { freeTcpPort } from './free-names.js';

const log = new Logger('relay');

/** The ports a relaying node serves its stream rungs on. */
export interface StreamPorts {
  https?: number;
  tcp?: number;
}

/** Starts the relay side: the TCP rung always, and an HTTPS server of its own unless the caller
 * serves CONNECT-UDP elsewhere (the coordinator's control server: `httpsPort` given). */
export async function startRelayStreams(opts: {
  mesh: MeshNode;
  isMember: (publicKey: string) => boolean;
  /** The port CONNECT-UDP is already served on (the coordinator's control server), or undefined
   * to run an HTTP/2 server here (on `ownHttpsPort`, or the next free from 7443). */
  httpsPort?: number;
  ownHttpsPort?: number;
  tcpPort?: number;
  tlsDir: string;
}): Promise<{ server: RelayStreamServer; ports: StreamPorts; close(): Promise<void> }> {
  const server = new RelayStreamServer(opts.mesh.engine, opts.isMember);
  const closers: (() => Promise<void> | void)[] = [() => server.close()];
  const ports: StreamPorts = {};
  const tcpPort = opts.tcpPort ?? opts.mesh.engine.bind.port;
  try {
    const tcp = createNetServer();
    await listen(tcp, tcpPort);
    server.serveTcp(tcp);
    ports.tcp = tcpPort;
    closers.push(() => new Promise<void>((r) => tcp.close(() => r())));
  } catch (e) {
    log.warn(`no TCP rung: TCP port ${tcpPort} is not available (${(e as Error).message}); give another with --relay-tcp-port`);
  }
  if (opts.httpsPort !== undefined) {
    ports.https = opts.httpsPort;
  } else {
    const { key, cert } = loadOrCreateTlsCert(opts.tlsDir);
    const h2: Http2SecureServer = createMasqueServer({ key, cert, allowHTTP1: false });
    h2.on('stream', (stream, headers) => {
      stream.on('error', () => undefined);
      if (!server.handleHttp2(stream, headers)) {
        stream.respond({ ':status': 404 });
        stream.end();
      }
    });
    h2.on('sessionError', () => undefined);
    h2.on('tlsClientError', () => undefined);
    const port = opts.ownHttpsPort ?? await freeTcpPort('0.0.0.0', 7443);
    try {
      await listen(h2, port);
      ports.https = port;
      closers.push(() => new Promise<void>((r) => h2.close(() => r())));
    } catch (e) {
      log.warn(`no HTTPS rung: TCP port ${port} is not available (${(e as Error).message}); give another with --relay-https-port`);
    }
  }
  log.info(`relaying for members without UDP: ${[ports.https ? `HTTPS (MASQUE CONNECT-UDP) on TCP ${ports.https}` : '', ports.tcp ? `framed datagrams on TCP ${ports.tcp}` : ''].filter(Boolean).join(', ') || 'no stream rung'}`);
  return {
    server, ports,
    close: async () => {
      for (const fn of closers.reverse()) await fn();
    },
  };
}

function listen(server: NetServer | Http2SecureServer, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, () => {
      server.off('error', reject);
      resolve();
    });
  });
}

/** The member side: streams to relaying peers that UDP does not reach. */
export function startRelayLinks(mesh: MeshNode, coordinatorKey: string, coordinatorHost: string | null): RelayLinks {
  return new RelayLinks({
    engine: mesh.engine,
    map: (): ControlNetworkMap | null => mesh.map,
    paths: (key) => mesh.peerPaths(key),
    offer: (key, ep) => mesh.offerStream(key, ep),
    withdraw: (key, ep) => mesh.withdrawStream(key, ep),
    extraHosts: (key) => (key === coordinatorKey && coordinatorHost ? [coordinatorHost] : []),
  });
}
