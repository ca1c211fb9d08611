// TCP-framed rung on loopback: the frame reader (vectors, every split, fuzz), an echo of 10,000
// datagrams, the hello (also when datagrams follow it in the same segment), hello timeouts,
// empty frames, a stream cut inside a frame, datagrams too big for a frame, refused connections,
// and backpressure drops when the server stops reading.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { Prng, fuzzIterations, fuzzParser } from '../wire/fuzz-harness.js';
import {
  FrameReader, StreamConnectError, TcpHelloError, acceptTcpFramed, connectTcpFramed, type DatagramStream,
} from './index.js';
import { echoDatagrams } from './testing.js';

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
async function until(cond: () => boolean, ms = 3000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond() && Date.now() < end) await sleep(5);
  assert.ok(cond(), 'condition not met in time');
}

function readFrames(chunks: Buffer[]): { got: string[]; incomplete: boolean } {
  const r = new FrameReader();
  const got: string[] = [];
  for (const c of chunks) {
    r.push(c);
    // The views of a chunk are read after its last next() (they stay valid until the next push).
    const views: Buffer[] = [];
    while (r.next()) views.push(r.buf.subarray(r.offset, r.offset + r.length));
    for (const v of views) got.push(v.toString('hex'));
  }
  return { got, incomplete: r.incomplete };
}

const big = Buffer.alloc(65535);
for (let i = 0; i < big.length; i++) big[i] = i * 13;
const STREAM = Buffer.concat([
  hex('0002 6869'), // length 2, "hi"
  hex('0000'), // an empty frame
  hex('0003 010203'), // length 3
  hex('ffff'), big, // the largest frame
  hex('0001 ff'),
]);
const EXPECTED = ['6869', '', '010203', big.toString('hex'), 'ff'];

test('tcp-framed: the frame reader yields every frame whatever the chunking', () => {
  assert.deepEqual(readFrames([STREAM]).got, EXPECTED);
  for (let i = 0; i <= STREAM.length; i += i < 40 || i > STREAM.length - 40 ? 1 : 997) {
    assert.deepEqual(readFrames([STREAM.subarray(0, i), STREAM.subarray(i)]).got, EXPECTED, `split at ${i}`);
  }
  for (let i = 0; i < 20; i++) {
    for (let j = i; j < 20; j++) assert.deepEqual(readFrames([STREAM.subarray(0, i), STREAM.subarray(i, j), STREAM.subarray(j)]).got, EXPECTED, `${i}, ${j}`);
  }
  const head = STREAM.subarray(0, 20);
  const bytes = [];
  for (let i = 0; i < head.length; i++) bytes.push(head.subarray(i, i + 1));
  assert.deepEqual(readFrames([...bytes, STREAM.subarray(20)]).got, EXPECTED, 'byte by byte');
  const rng = new Prng(3);
  for (let round = 0; round < 200; round++) {
    const chunks: Buffer[] = [];
    for (let at = 0; at < STREAM.length;) {
      const n = 1 + rng.int(rng.int(2) ? 5 : 20000);
      chunks.push(STREAM.subarray(at, at + n));
      at += n;
    }
    assert.deepEqual(readFrames(chunks).got, EXPECTED, `round ${round}`);
  }
  // Cut inside the length, inside the payload, and at frame boundaries.
  assert.equal(readFrames([hex('00')]).incomplete, true);
  assert.equal(readFrames([hex('0002 68')]).incomplete, true);
  assert.equal(readFrames([hex('0002 6869')]).incomplete, false);
  assert.equal(readFrames([hex('0002 6869 00')]).incomplete, true);
  assert.equal(readFrames([]).incomplete, false);
});

test('tcp-framed: fuzzed streams never throw, hang or read past their end', () => {
  const seeds = [STREAM.subarray(0, 64), hex('0578' + '00'.repeat(1400) + '0010' + '11'.repeat(16)), hex('ffff 00')];
  const tried = fuzzParser(seeds, (buf, off, len) => {
    const r = new FrameReader();
    const rng = new Prng(len);
    let digest = 0;
    let count = 0;
    for (let at = 0; at < len;) {
      const n = Math.min(len - at, 1 + rng.int(64));
      r.push(buf.subarray(off + at, off + at + n));
      at += n;
      while (r.next()) {
        count++;
        digest = (Math.imul(digest, 31) + r.length) | 0;
        for (let i = 0; i < r.length; i++) digest = (Math.imul(digest, 31) + r.buf[r.offset + i]!) | 0;
      }
    }
    return `${count}:${digest}:${r.incomplete}`;
  }, { iterations: fuzzIterations(40_000) });
  assert.ok(tried > 0);
});

interface TestTcpServer { port: number; streams: DatagramStream[]; hellos: (Buffer | null)[]; errors: Error[]; close(): Promise<void> }

/** A TCP-framed server on 127.0.0.1 that echoes (or, with echo false, never reads). */
async function startServer(opts: { echo?: boolean; readHello?: boolean; helloTimeoutMs?: number } = {}): Promise<TestTcpServer> {
  const t: TestTcpServer = { port: 0, streams: [], hellos: [], errors: [], close: async () => {} };
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    acceptTcpFramed(socket, { readHello: opts.readHello, helloTimeoutMs: opts.helloTimeoutMs }).then(({ hello, stream }) => {
      t.hellos.push(hello);
      t.streams.push(stream);
      if (opts.echo ?? true) {
        const offsets = new Uint32Array(64);
        stream.onDatagrams((bufs, sizes, n) => { stream.send(bufs, offsets, sizes, n); });
      }
    }, (e: Error) => { t.errors.push(e); });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.port = (server.address() as AddressInfo).port;
  t.close = () => new Promise((resolve) => {
    for (const s of sockets) s.destroy();
    server.close(() => resolve());
  });
  return t;
}

test('tcp-framed: an echo carries 10,000 datagrams of 1..1500 bytes intact and in order', async () => {
  const srv = await startServer();
  try {
    const ds = await connectTcpFramed({ host: '127.0.0.1', port: srv.port, timeoutMs: 5000 });
    assert.equal(ds.transport, 'tcp');
    const { sent, received } = await echoDatagrams(ds, 10_000, 2);
    assert.equal(received.length, sent.length);
    for (let i = 0; i < sent.length; i++) if (!sent[i]!.equals(received[i]!)) assert.fail(`datagram ${i} differs`);
    const bytes = sent.reduce((n, b) => n + b.length, 0);
    await until(() => srv.streams.length === 1);
    for (const c of [ds.counters, srv.streams[0]!.counters]) {
      assert.deepEqual([c.txDatagrams, c.rxDatagrams, c.txBytes, c.rxBytes], [10_000, 10_000, bytes, bytes]);
      assert.equal(c.dropBackpressure + c.malformed + c.emptyDatagrams, 0);
    }
    ds.close();
    assert.equal(await ds.closed, null);
    assert.equal(await srv.streams[0]!.closed, null, 'the server side closes too');
  } finally {
    await srv.close();
  }
});

test('tcp-framed: the hello comes first; datagrams in the same segment follow it', async () => {
  const srv = await startServer({ readHello: true });
  try {
    const ds = await connectTcpFramed({ host: '127.0.0.1', port: srv.port, hello: Buffer.from('member:alice') });
    const { sent, received } = await echoDatagrams(ds, 100, 3);
    assert.equal(received.length, 100);
    assert.ok(sent.every((b, i) => b.equals(received[i]!)));
    assert.equal(srv.hellos[0]!.toString(), 'member:alice');
    ds.close();
    // A raw client: hello, an empty frame and two datagrams in one write.
    const got: string[] = [];
    const raw = net.connect(srv.port, '127.0.0.1');
    raw.on('data', (d: Buffer) => got.push(d.toString('hex')));
    await new Promise((resolve) => raw.once('connect', resolve));
    raw.write(hex('0003 6b6579' + '0000' + '0002 6869' + '0001 21'));
    await until(() => got.join('') === '00026869000121');
    assert.equal(srv.hellos[1]!.toString(), 'key');
    const c = srv.streams[1]!.counters;
    assert.deepEqual([c.rxDatagrams, c.emptyDatagrams], [2, 1]);
    raw.end();
    assert.equal(await srv.streams[1]!.closed, null);
  } finally {
    await srv.close();
  }
});

test('tcp-framed: no hello in time, or a close before it, is refused', async () => {
  const srv = await startServer({ readHello: true, helloTimeoutMs: 200 });
  try {
    const raw = net.connect(srv.port, '127.0.0.1');
    raw.on('error', () => {});
    await new Promise((resolve) => raw.once('connect', resolve));
    raw.write(hex('0005 68')); // a hello that never ends
    await new Promise((resolve) => raw.once('close', resolve));
    assert.equal(srv.errors.length, 1);
    assert.ok(srv.errors[0] instanceof TcpHelloError);
    assert.match(srv.errors[0]!.message, /sent no hello frame within 200 ms/);
    const early = net.connect(srv.port, '127.0.0.1');
    await new Promise((resolve) => early.once('connect', resolve));
    early.end();
    await until(() => srv.errors.length === 2);
    assert.match(srv.errors[1]!.message, /closed before its hello frame/);
    assert.equal(srv.streams.length, 0);
  } finally {
    await srv.close();
  }
});

test('tcp-framed: a stream cut inside a frame is counted; too-big datagrams are dropped', async () => {
  const srv = await startServer();
  try {
    const raw = net.connect(srv.port, '127.0.0.1');
    await new Promise((resolve) => raw.once('connect', resolve));
    raw.end(hex('0001 41' + '0005 6869')); // one datagram, then 2 of 5 bytes and the end
    await until(() => srv.streams.length === 1);
    assert.equal(await srv.streams[0]!.closed, null);
    assert.deepEqual([srv.streams[0]!.counters.rxDatagrams, srv.streams[0]!.counters.malformed], [1, 1]);

    const ds = await connectTcpFramed({ host: '127.0.0.1', port: srv.port });
    const got: number[] = [];
    ds.onDatagrams((_bufs, sizes, n) => { for (let i = 0; i < n; i++) got.push(sizes[i]!); });
    const max = Buffer.alloc(65536, 7);
    assert.equal(ds.send([max, max], [0, 0], [65536, 65535], 2), 1, 'the 65536-byte one is dropped');
    assert.equal(ds.counters.dropTooBig, 1);
    await until(() => got.length === 1);
    assert.deepEqual(got, [65535]);
    ds.close();
    await ds.closed;
  } finally {
    await srv.close();
  }
});

test('tcp-framed: a refused connection rejects with the address', async () => {
  const srv = await startServer();
  const port = srv.port;
  await srv.close();
  await assert.rejects(connectTcpFramed({ host: '127.0.0.1', port, timeoutMs: 2000 }), (e: unknown) => {
    assert.ok(e instanceof StreamConnectError);
    assert.match(e.message, new RegExp(`tcp://127\\.0\\.0\\.1:${port}: could not connect: .*ECONNREFUSED`));
    return true;
  });
  assert.throws(() => connectTcpFramed({ host: '127.0.0.1', port: 0 }), /invalid TCP port 0/);
  assert.throws(() => connectTcpFramed({ host: '127.0.0.1', port: 1, hello: Buffer.alloc(65536) }), /hello frame has 65536 bytes/);
});

test('tcp-framed: when the server stops reading, sends are dropped and counted', async () => {
  const srv = await startServer({ echo: false });
  let ds: DatagramStream | null = null;
  try {
    ds = await connectTcpFramed({ host: '127.0.0.1', port: srv.port, writeBufferLimit: 64 * 1024 });
    const bufs = Array.from({ length: 64 }, () => Buffer.alloc(1400, 0x55));
    const offsets = new Uint32Array(64);
    const sizes = new Uint32Array(64).fill(1400);
    let offered = 0;
    // The kernel's socket buffers (some MB on loopback) fill first.
    for (let round = 0; round < 20_000 && ds.counters.dropBackpressure === 0; round++) {
      offered += 64;
      ds.send(bufs, offsets, sizes, 64);
      if (round % 8 === 0) await new Promise((resolve) => setImmediate(resolve));
    }
    const c = ds.counters;
    assert.ok(c.dropBackpressure > 0, 'a drop was counted');
    assert.equal(c.txDatagrams + c.dropBackpressure, offered);
    assert.ok(ds.queuedBytes >= 64 * 1024 && ds.queuedBytes < 64 * 1024 + 64 * 1402, `queued ${ds.queuedBytes}`);
  } finally {
    ds?.close();
    await srv.close();
  }
});
