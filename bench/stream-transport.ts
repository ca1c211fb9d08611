// Throughput of the stream rungs on loopback: 1400-byte datagrams from a client to a server over
// TCP-framed and over MASQUE CONNECT-UDP (HTTP/2 + TLS), in batches of 64 (the engine's batch).
// The server runs in a worker thread (its own event loop and core) and counts what arrives; the
// client keeps the stream's unsent bytes under half its write-buffer limit, so it measures the
// transport rather than drops (drops are printed anyway). Numbers are payload only (no framing,
// TLS or TCP headers). Prints, does not assert.
// Run: npm run bench:stream   (or, after a build: node dist/bench/stream-transport.js [seconds])
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import {
  DEFAULT_WRITE_BUFFER_LIMIT, acceptTcpFramed, connectTcpFramed, connectUdp, createMasqueServer, parseConnectUdpRequest, refuseConnectUdp,
  respondConnectUdp, type DatagramStream,
} from '../src/transport/index.js';
import { testTlsCert } from '../src/transport/testing.js';
import { fmt } from './measure.js';

const DATAGRAM = 1400;
const BATCH = 64;
const SECONDS = Number(process.argv[2] ?? '3');
const WARMUP_SECONDS = 0.5;
/** Batches written per event-loop turn at most (so reads and writes get their turn). */
const BATCHES_PER_TURN = 16;

type Kind = 'tcp' | 'https';
interface ServerData { kind: Kind; key: Buffer; cert: Buffer }
interface Stats { rx: number; rxBytes: number }

// ---- the server (worker thread) ----

function runServer(data: ServerData): void {
  let rx = 0;
  let rxBytes = 0;
  const count = (stream: DatagramStream): void => {
    stream.onDatagrams((_bufs, sizes, n) => {
      rx += n;
      for (let i = 0; i < n; i++) rxBytes += sizes[i]!;
    });
  };
  const port = parentPort!;
  const listening = (address: AddressInfo | string | null): void => { port.postMessage({ port: (address as AddressInfo).port }); };
  if (data.kind === 'tcp') {
    const server = net.createServer((socket) => { void acceptTcpFramed(socket).then(({ stream }) => count(stream)); });
    server.listen(0, '127.0.0.1', () => listening(server.address()));
  } else {
    const server = createMasqueServer({ key: data.key, cert: data.cert });
    server.on('stream', (stream, headers) => {
      const req = parseConnectUdpRequest(headers);
      if (!req.ok) return refuseConnectUdp(stream, req.status, req.reason);
      count(respondConnectUdp(stream));
    });
    server.listen(0, '127.0.0.1', () => listening(server.address()));
  }
  port.on('message', (m: string) => {
    if (m === 'stats') {
      port.postMessage({ rx, rxBytes } satisfies Stats);
    } else if (m === 'exit') {
      process.exit(0);
    }
  });
}

// ---- the client (main thread) ----

function ask(worker: Worker): Promise<Stats> {
  return new Promise((resolve) => {
    worker.once('message', resolve);
    worker.postMessage('stats');
  });
}

async function measure(kind: Kind): Promise<void> {
  const { key, cert } = testTlsCert();
  const worker = new Worker(new URL(import.meta.url), { workerData: { kind, key, cert } satisfies ServerData });
  const { port } = await new Promise<{ port: number }>((resolve) => worker.once('message', resolve));
  const stream = kind === 'tcp'
    ? await connectTcpFramed({ host: '127.0.0.1', port })
    : await connectUdp({ authority: `https://127.0.0.1:${port}`, target: { host: '198.18.0.2', port: 51820 } });
  const bufs = Array.from({ length: BATCH }, (_, i) => Buffer.alloc(DATAGRAM, i));
  const offsets = new Uint32Array(BATCH);
  const sizes = new Uint32Array(BATCH).fill(DATAGRAM);
  let running = true;
  const pump = (): void => {
    if (!running) return;
    for (let b = 0; b < BATCHES_PER_TURN && stream.queuedBytes < DEFAULT_WRITE_BUFFER_LIMIT / 2; b++) stream.send(bufs, offsets, sizes, BATCH);
    setImmediate(pump);
  };
  pump();
  await new Promise((resolve) => setTimeout(resolve, WARMUP_SECONDS * 1000));
  const s0 = await ask(worker);
  const c0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  await new Promise((resolve) => setTimeout(resolve, SECONDS * 1000));
  const s1 = await ask(worker);
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  const c1 = process.cpuUsage(c0);
  running = false;
  const n = s1.rx - s0.rx;
  const bits = (s1.rxBytes - s0.rxBytes) * 8;
  // process.cpuUsage() covers the whole process (Node 20 has no per-thread figure): both ends.
  const totalCpu = (c1.user + c1.system) / 1e6;
  const c = stream.counters;
  const name = kind === 'tcp' ? 'tcp-framed' : 'masque h2';
  console.log(`${name.padEnd(11)} ${fmt(n / seconds).padStart(10)} datagrams/s  ${fmt(bits / seconds / 1e9, 2).padStart(5)} Gbit/s  ` +
    `cpu ${fmt(totalCpu / seconds, 2)} cores (both ends)  ` +
    `sent ${fmt(c.txDatagrams)}, dropped ${fmt(c.dropBackpressure)} (backpressure)`);
  stream.close();
  await stream.closed;
  worker.postMessage('exit');
  await new Promise((resolve) => worker.once('exit', resolve));
}

if (isMainThread) {
  console.log(`stream transports on loopback: ${DATAGRAM}-byte datagrams, batches of ${BATCH}, ${SECONDS} s each (payload rates)`);
  for (const kind of ['tcp', 'https'] as const) await measure(kind);
} else {
  runServer(workerData as ServerData);
}
