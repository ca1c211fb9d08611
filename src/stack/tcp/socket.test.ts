// TcpSocket as a stream: back-pressure, pipe() to and from net.Socket, destroy/end semantics,
// half-open, idle timeout, listener close, and drops of damaged segments.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { systemClock } from '../../wireguard/clock.js';
import { TcpFlag } from '../../wire/tcp.js';
import type { IpAddr, IpFamily, IpOutput } from '../types.js';
import { TcpLayer } from './layer.js';
import { makePair, establish, inject, recordSegments, V4_CLIENT, V4_SERVER } from './test-pair.js';
import { runUntil, runFor, SimClock } from './sim-link.js';
import type { TcpSocket } from './socket.js';
import type { TcpSocketError } from './errors.js';
import type { TcpConnection } from './connection.js';

function connOf(s: TcpSocket): TcpConnection {
  return (s as unknown as { conn: TcpConnection }).conn;
}

test('write back-pressure: writes stall while the peer does not read, memory stays bounded, drain follows reads', async () => {
  const p = makePair({ clientLimits: { sendBufferSize: 32768 }, serverLimits: { receiveBufferSize: 16384 } });
  const { client, server } = await establish(p);
  server.pause();
  const chunk = Buffer.alloc(8192, 3);
  let accepted = 0;
  let drains = 0;
  const pump = (): void => {
    while (client.write(chunk)) accepted += chunk.length;
    accepted += chunk.length;
  };
  client.on('drain', () => { drains++; pump(); });
  pump();
  await runFor(p.link, 10_000);
  // Stalled: what was accepted fits in send buffer + peer's receive buffer + the stream's buffer.
  const stalledAt = accepted;
  await runFor(p.link, 10_000);
  assert.equal(accepted, stalledAt, 'no more writes accepted while the peer does not read');
  assert.ok(accepted <= 32768 + 16384 + client.writableHighWaterMark + 2 * chunk.length, `accepted ${accepted}`);
  assert.ok(connOf(client).sndBuf.length <= 32768);
  assert.ok(connOf(server).rcvBuf.length + server.readableLength <= 16384);
  const drainsBefore = drains;
  let got = 0;
  server.on('data', (d: Buffer) => { got += d.length; });
  server.resume();
  assert.ok(await runUntil(p.link, () => drains > drainsBefore && got > stalledAt, 60_000));
});

test('destroy() with unread data resets the peer; end() closes it cleanly', async () => {
  const p = makePair();
  const seen = recordSegments(p);
  const a = await establish(p, 80);
  a.client.write('unread');
  await runFor(p.link, 100);
  let err: TcpSocketError | null = null;
  a.client.on('error', (e: TcpSocketError) => { err = e; });
  a.server.destroy(); // 'unread' was never read
  await runFor(p.link, 100);
  assert.ok(seen.some((s) => s.from === 1 && (s.flags & TcpFlag.Rst) !== 0));
  assert.equal((err as TcpSocketError | null)?.code, 'ECONNRESET');

  const b = await establish(p, 81);
  let ended = false;
  b.client.on('end', () => { ended = true; });
  b.client.resume();
  b.server.end('last words');
  let got = '';
  b.client.on('data', (d: Buffer) => { got += d.toString(); });
  assert.ok(await runUntil(p.link, () => ended, 5000));
  assert.equal(got, 'last words');
});

test('allowHalfOpen false (the default): the peer FIN ends our side too', async () => {
  const p = makePair();
  p.server.listen(4, null, 80).on('connection', (s: TcpSocket) => { s.resume(); });
  const c = p.client.connect({ family: 4, localAddr: p.clientAddr, remoteAddr: p.serverAddr, remotePort: 80, allowHalfOpen: true });
  let ended = false;
  let closed = false;
  c.on('end', () => { ended = true; });
  c.on('close', () => { closed = true; });
  c.resume();
  c.end('x');
  assert.ok(await runUntil(p.link, () => ended && closed, 10_000));
});

test('setTimeout emits timeout after idle time', async () => {
  const p = makePair();
  const { client } = await establish(p);
  let timeouts = 0;
  client.setTimeout(1000, () => { timeouts++; });
  await runFor(p.link, 900);
  assert.equal(timeouts, 0);
  await runFor(p.link, 200);
  assert.equal(timeouts, 1);
  client.setTimeout(0);
  await runFor(p.link, 3000);
  assert.equal(timeouts, 1);
});

test('damaged and truncated segments are dropped and counted', async () => {
  const p = makePair();
  const { client } = await establish(p);
  const bad = Buffer.alloc(40);
  bad.writeUInt16BE(client.localPort, 0);
  bad.writeUInt16BE(80, 2);
  bad[12] = 5 << 4;
  bad[13] = TcpFlag.Ack;
  p.server.input(4, V4_CLIENT, V4_SERVER, bad, 0, 40); // checksum 0: wrong
  p.server.input(4, V4_CLIENT, V4_SERVER, bad, 0, 10); // shorter than a header
  assert.equal(p.server.counters.badChecksum, 1);
  assert.equal(p.server.counters.malformed, 1);
});

test('a closed listener refuses new connections; SYNs then get RST', async () => {
  const p = makePair();
  const l = p.server.listen(4, null, 80);
  let closed = false;
  l.close(() => { closed = true; });
  await runFor(p.link, 1);
  assert.ok(closed);
  const c = p.client.connect({ family: 4, localAddr: p.clientAddr, remoteAddr: p.serverAddr, remotePort: 80 });
  let err: TcpSocketError | null = null;
  c.on('error', (e: TcpSocketError) => { err = e; });
  await runFor(p.link, 100);
  assert.equal((err as TcpSocketError | null)?.code, 'ECONNREFUSED');
});

test('a SYN in ESTABLISHED does not reset the connection; data keeps flowing', async () => {
  const p = makePair();
  const seen = recordSegments(p);
  const { client, server } = await establish(p);
  const c = seen.filter((s) => s.from === 0).pop()!;
  inject(p, 0, { srcPort: client.localPort, dstPort: 80, seq: c.seq, ack: 0, flags: TcpFlag.Syn });
  let got = '';
  server.on('data', (d: Buffer) => { got += d.toString(); });
  client.write('still here');
  assert.ok(await runUntil(p.link, () => got === 'still here', 5000));
});

/** A real-time link (systemClock): packets delivered from setImmediate. */
class ImmediateLink {
  readonly layers: TcpLayer[] = [];
  private queue: { to: number; family: IpFamily; src: IpAddr; dst: IpAddr; bytes: Buffer }[] = [];
  private scheduled = false;
  output(side: number): IpOutput {
    return {
      sendIp: (family, src, dst, _proto, buf, off, len) => {
        this.queue.push({ to: 1 - side, family, src, dst, bytes: Buffer.from(buf.subarray(off, off + len)) });
        if (!this.scheduled) {
          this.scheduled = true;
          setImmediate(() => this.flush());
        }
        return true;
      },
      mtu: () => 1500,
    };
  }
  private flush(): void {
    this.scheduled = false;
    const q = this.queue;
    this.queue = [];
    for (const p of q) this.layers[p.to]!.input(p.family, p.src, p.dst, p.bytes, 0, p.bytes.length);
  }
}

test('pipe(): TcpSocket <-> net.Socket proxy with back-pressure both ways (real clock)', async () => {
  // A net echo server on loopback, a TcpLayer listener that proxies to it, a TcpLayer client.
  const echo = net.createServer((s) => s.pipe(s));
  await new Promise<void>((r) => echo.listen(0, '127.0.0.1', () => r()));
  const echoPort = (echo.address() as net.AddressInfo).port;
  const link = new ImmediateLink();
  const limits = { sendBufferSize: 65536, receiveBufferSize: 65536 };
  const a = new TcpLayer({ clock: systemClock, output: link.output(0), limits });
  const b = new TcpLayer({ clock: systemClock, output: link.output(1), limits });
  link.layers.push(a, b);
  // A proxy keeps each direction open until that direction ends (as with net, allowHalfOpen).
  b.listen(4, null, 8080, { allowHalfOpen: true }).on('connection', (s: TcpSocket) => {
    const up = net.connect(echoPort, '127.0.0.1');
    s.pipe(up);
    up.pipe(s);
  });
  const data = Buffer.alloc(4 << 20);
  for (let i = 0; i < data.length; i++) data[i] = (i * 31 + (i >> 11)) & 255;
  const c = a.connect({ family: 4, localAddr: V4_CLIENT, remoteAddr: V4_SERVER, remotePort: 8080, allowHalfOpen: true });
  const got: Buffer[] = [];
  let gotLen = 0;
  try {
    await new Promise<void>((resolve, reject) => {
      c.on('error', reject);
      c.on('data', (d: Buffer) => {
        got.push(d);
        gotLen += d.length;
        if (gotLen === data.length) resolve();
      });
      c.end(data);
    });
    assert.ok(Buffer.concat(got).equals(data));
  } finally {
    c.destroy();
    a.close();
    b.close();
    await new Promise<void>((r) => echo.close(() => r()));
  }
});

test('loopback: an IpOutput that delivers synchronously back into the same layer works', async () => {
  const clock = new SimClock();
  let layer: TcpLayer | null = null;
  let packets = 0;
  const out: IpOutput = {
    sendIp: (family, src, dst, _proto, buf, off, len) => {
      packets++;
      layer!.input(family, src, dst, buf, off, len); // addressed to ourselves: straight back in
      return true;
    },
    mtu: () => 65535,
  };
  layer = new TcpLayer({ clock, output: out });
  const self = V4_CLIENT;
  const got: Buffer[] = [];
  let serverEnded = false;
  layer.listen(4, null, 7).on('connection', (s: TcpSocket) => {
    s.on('data', (d: Buffer) => got.push(d));
    s.on('end', () => { serverEnded = true; s.end(); });
  });
  const c = layer.connect({ family: 4, localAddr: self, remoteAddr: self, remotePort: 7 });
  let closed = false;
  c.on('close', () => { closed = true; });
  c.resume();
  const data = Buffer.alloc(300_000, 0x42);
  c.end(data);
  for (let i = 0; i < 10_000 && !(closed && serverEnded); i++) {
    await new Promise((r) => setImmediate(r));
    clock.advance(Math.max(0, Math.min(clock.nextTimerAt() - clock.now(), 1000)));
  }
  assert.ok(closed && serverEnded);
  assert.ok(Buffer.concat(got).equals(data));
  assert.ok(packets > 0);
  // Nothing was processed half-way: no ACK ahead of SND.NXT, nothing resent.
  assert.equal(layer.counters.ackTooNew, 0);
  assert.equal(layer.counters.retransmittedSegments, 0);
});
