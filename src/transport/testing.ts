// Helpers for the stream transports' tests and benches: a throwaway TLS key and self-signed
// certificate (the openssl CLI: node:crypto cannot write X.509), and an HTTP/2 CONNECT-UDP server
// that echoes datagrams. Not part of the public API (not exported from index.ts).
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import type { IncomingHttpHeaders, Http2SecureServer, ServerHttp2Stream } from 'node:http2';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Prng } from '../wire/fuzz-harness.js';
import type { DatagramStream } from './datagram-stream.js';
import { createMasqueServer, parseConnectUdpRequest, refuseConnectUdp, respondConnectUdp } from './masque.js';

let cached: { key: Buffer; cert: Buffer } | null = null;

/** A P-256 key and a self-signed certificate for CN=meshtun-test (made once per process). */
export function testTlsCert(): { key: Buffer; cert: Buffer } {
  if (cached !== null) return cached;
  const dir = mkdtempSync(join(tmpdir(), 'meshtun-tls-'));
  try {
    execFileSync('openssl', [
      'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
      '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'), '-days', '2', '-subj', '/CN=meshtun-test',
    ], { stdio: 'pipe' });
    cached = { key: readFileSync(join(dir, 'key.pem')), cert: readFileSync(join(dir, 'cert.pem')) };
    return cached;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export interface TestMasqueServer {
  server: Http2SecureServer;
  port: number;
  authority: string;
  /** Every accepted stream, in order. */
  streams: DatagramStream[];
  /** The headers of every request seen. */
  requests: IncomingHttpHeaders[];
  /** Sessions (connections) seen. */
  sessions: number;
  /** Resolves with the n-th accepted stream (0-based). */
  stream(n: number): Promise<DatagramStream>;
  close(): Promise<void>;
}

export interface TestMasqueServerOptions {
  /** Echo every datagram back (default true); false: never read (the peer backs up). */
  echo?: boolean;
  /** A header value every request must carry as x-meshtun-token; others get 403 "not a member". */
  token?: string;
  writeBufferLimit?: number;
}

/** A CONNECT-UDP server on 127.0.0.1 (a free port). */
export async function startTestMasqueServer(opts: TestMasqueServerOptions = {}): Promise<TestMasqueServer> {
  const server = createMasqueServer(testTlsCert());
  let waiters: { n: number; resolve: (s: DatagramStream) => void }[] = [];
  const t: TestMasqueServer = {
    server, port: 0, authority: '', streams: [], requests: [], sessions: 0,
    stream: (n) => (t.streams[n] !== undefined ? Promise.resolve(t.streams[n]!) : new Promise((resolve) => { waiters.push({ n, resolve }); })),
    close: () => new Promise((resolve) => {
      for (const s of t.streams) s.close();
      server.close(() => resolve());
    }),
  };
  server.on('session', () => { t.sessions++; });
  server.on('stream', (stream: ServerHttp2Stream, headers: IncomingHttpHeaders) => {
    t.requests.push(headers);
    const req = parseConnectUdpRequest(headers);
    if (!req.ok) return refuseConnectUdp(stream, req.status, req.reason);
    if (opts.token !== undefined && headers['x-meshtun-token'] !== opts.token) return refuseConnectUdp(stream, 403, 'not a member');
    const ds = respondConnectUdp(stream, { writeBufferLimit: opts.writeBufferLimit });
    if (opts.echo ?? true) {
      const offsets = new Uint32Array(64);
      ds.onDatagrams((bufs, sizes, count) => { ds.send(bufs, offsets, sizes, count); });
    }
    t.streams.push(ds);
    const ready = waiters.filter((w) => t.streams[w.n] !== undefined);
    waiters = waiters.filter((w) => t.streams[w.n] === undefined);
    for (const w of ready) w.resolve(t.streams[w.n]!);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.port = (server.address() as AddressInfo).port;
  t.authority = `https://127.0.0.1:${t.port}`;
  return t;
}

/** Sends `count` datagrams of seeded random sizes 1..1500 and contents through `stream`, in
 * batches of up to 32, keeping at most `window` unanswered, and collects what comes back (an
 * echo) until all have or `timeoutMs` passes. Returns what was sent and what came back, in order. */
export async function echoDatagrams(stream: DatagramStream, count: number, seed: number, window = 2000, timeoutMs = 30_000): Promise<{ sent: Buffer[]; received: Buffer[] }> {
  const rng = new Prng(seed);
  const sent: Buffer[] = [];
  for (let i = 0; i < count; i++) {
    const d = Buffer.alloc(1 + rng.int(1500));
    rng.fill(d, 0, d.length);
    sent.push(d);
  }
  const received: Buffer[] = [];
  stream.onDatagrams((bufs, sizes, n) => {
    for (let i = 0; i < n; i++) received.push(Buffer.from(bufs[i]!.subarray(0, sizes[i]!)));
  });
  const offsets = new Uint32Array(32);
  const sizes = new Uint32Array(32);
  const deadline = Date.now() + timeoutMs;
  let next = 0;
  while (received.length < count && Date.now() < deadline && !stream.isClosed) {
    if (next < count && next - received.length < window) {
      const n = Math.min(32, count - next);
      const batch = sent.slice(next, next + n);
      for (let i = 0; i < n; i++) sizes[i] = batch[i]!.length;
      const ok = stream.send(batch, offsets, sizes, n);
      if (ok !== n) throw new Error(`send took ${ok} of ${n} datagrams (counters ${JSON.stringify(stream.counters)})`);
      next += n;
    }
    await new Promise((resolve) => setImmediate(resolve));
  }
  return { sent, received };
}
