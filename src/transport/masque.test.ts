// MASQUE CONNECT-UDP over HTTP/2 on loopback TLS: the path template, request checks, an echo of
// 10,000 datagrams, refusals (status and text reach the caller), the client waiting for the
// server's SETTINGS (seen on the wire by a raw TLS server), a server without extended CONNECT,
// shared sessions, close in both directions, unknown capsules and context IDs, an oversize
// capsule, and backpressure drops when the server stops reading.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import tls from 'node:tls';
import type { AddressInfo } from 'node:net';
import {
  ConnectUdpRefusedError, ExtendedConnectUnsupportedError, StreamOptionsError, StreamTimeoutError, connectUdp, connectUdpPath, masqueSessionCount,
  parseConnectUdpPath, parseConnectUdpRequest, type DatagramStream,
} from './index.js';
import { echoDatagrams, startTestMasqueServer, testTlsCert } from './testing.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
async function until(cond: () => boolean, ms = 3000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond() && Date.now() < end) await sleep(5);
  assert.ok(cond(), 'condition not met in time');
}

function assertSame(sent: Buffer[], received: Buffer[]): void {
  assert.equal(received.length, sent.length, 'every datagram came back');
  for (let i = 0; i < sent.length; i++) {
    if (!sent[i]!.equals(received[i]!)) assert.fail(`datagram ${i} differs: sent ${sent[i]!.length} bytes, got ${received[i]!.length}`);
  }
}

test('masque: the RFC 9298 default path, IPv6 percent-encoded', () => {
  assert.equal(connectUdpPath('198.18.0.1', 51820), '/.well-known/masque/udp/198.18.0.1/51820/');
  assert.equal(connectUdpPath('2001:db8::42', 443), '/.well-known/masque/udp/2001%3Adb8%3A%3A42/443/');
  assert.equal(connectUdpPath('[fd00::1]', 7), '/.well-known/masque/udp/fd00%3A%3A1/7/');
  assert.equal(connectUdpPath('relay.example.org', 443), '/.well-known/masque/udp/relay.example.org/443/');
  for (const [host, port] of [['a b', 1], ['', 1], ['fe80::1%eth0', 1], ['x/y', 1], ['198.18.0.1', 0], ['198.18.0.1', 65536], ['198.18.0.1', 1.5]] as const) {
    assert.throws(() => connectUdpPath(host, port), StreamOptionsError, `${host} ${port}`);
  }
  assert.deepEqual(parseConnectUdpPath('/.well-known/masque/udp/2001%3Adb8%3A%3A42/443/'), { host: '2001:db8::42', port: 443 });
  assert.deepEqual(parseConnectUdpPath('/.well-known/masque/udp/2001%3adb8%3a%3a42/443/'), { host: '2001:db8::42', port: 443 });
  assert.deepEqual(parseConnectUdpPath('/.well-known/masque/udp/198.18.0.1/51820/'), { host: '198.18.0.1', port: 51820 });
  assert.deepEqual(parseConnectUdpPath('/.well-known/masque/udp/relay.example.org/1/'), { host: 'relay.example.org', port: 1 });
  for (const bad of [
    '/.well-known/masque/udp/198.18.0.1/51820', // no trailing slash
    '/.well-known/masque/udp/198.18.0.1/51820/x', // an extra segment
    '/.well-known/masque/udp/198.18.0.1/51820/?q=1', // a query
    '/.well-known/masque/udp//51820/', // no host
    '/.well-known/masque/udp/%zz/51820/', // bad percent-encoding
    '/.well-known/masque/udp/a%2Fb/51820/', // a slash inside the host
    '/.well-known/masque/udp/a..b/51820/', // not a DNS name
    '/.well-known/masque/udp/fe80%3A%3A1%25eth0/1/', // a zone id
    '/.well-known/masque/udp/198.18.0.1/0/', '/.well-known/masque/udp/198.18.0.1/65536/', '/.well-known/masque/udp/198.18.0.1/+1/',
    '/.well-known/masque/ip/198.18.0.1/17/', '/', '',
  ]) {
    assert.equal(parseConnectUdpPath(bad), null, bad);
  }
});

test('masque: request checks give the status and reason to refuse with', () => {
  const good = {
    ':method': 'CONNECT', ':protocol': 'connect-udp', ':scheme': 'https', ':authority': 'relay:443',
    ':path': '/.well-known/masque/udp/198.18.0.1/51820/', 'capsule-protocol': '?1',
  };
  assert.deepEqual(parseConnectUdpRequest(good), { ok: true, target: { host: '198.18.0.1', port: 51820 } });
  assert.equal(parseConnectUdpRequest({ ...good, 'capsule-protocol': '?1;x=2' }).ok, true, 'parameters allowed');
  const refusals: [Record<string, string | undefined>, number, RegExp][] = [
    [{ ':method': 'GET' }, 405, /method GET/],
    [{ ':protocol': undefined }, 501, /plain CONNECT/],
    [{ ':protocol': 'connect-ip' }, 501, /connect-ip is not supported/],
    [{ ':scheme': 'http' }, 400, /:scheme must be https/],
    [{ ':authority': undefined }, 400, /:authority/],
    [{ ':path': '/.well-known/masque/udp/198.18.0.1/0/' }, 400, /:path/],
    [{ 'capsule-protocol': undefined }, 400, /capsule-protocol/],
    [{ 'capsule-protocol': '?0' }, 400, /capsule-protocol/],
  ];
  for (const [change, status, reason] of refusals) {
    const h: Record<string, string | undefined> = { ...good, ...change };
    for (const k of Object.keys(h)) if (h[k] === undefined) delete h[k];
    const r = parseConnectUdpRequest(h);
    assert.equal(r.ok, false, JSON.stringify(change));
    if (!r.ok) {
      assert.equal(r.status, status, JSON.stringify(change));
      assert.match(r.reason, reason);
    }
  }
});

test('masque: CONNECT-UDP echo carries 10,000 datagrams of 1..1500 bytes intact and in order', async () => {
  const srv = await startTestMasqueServer({ token: 'secret' });
  try {
    const ds = await connectUdp({ authority: srv.authority, target: { host: '198.18.0.7', port: 51820 }, headers: { 'x-meshtun-token': 'secret' }, timeoutMs: 5000 });
    assert.equal(ds.transport, 'https');
    assert.equal(ds.remoteAddress, '127.0.0.1');
    assert.equal(ds.remotePort, srv.port);
    const req = srv.requests[0]!;
    assert.equal(req[':method'], 'CONNECT');
    assert.equal(req[':protocol'], 'connect-udp');
    assert.equal(req[':path'], '/.well-known/masque/udp/198.18.0.7/51820/');
    assert.equal(req['capsule-protocol'], '?1');
    const { sent, received } = await echoDatagrams(ds, 10_000, 1);
    assertSame(sent, received);
    const bytes = sent.reduce((n, b) => n + b.length, 0);
    const server = await srv.stream(0);
    for (const c of [ds.counters, server.counters]) {
      assert.equal(c.txDatagrams, 10_000);
      assert.equal(c.rxDatagrams, 10_000);
      assert.equal(c.txBytes, bytes);
      assert.equal(c.rxBytes, bytes);
      assert.equal(c.dropBackpressure + c.malformed + c.unknownCapsules + c.handlerErrors, 0);
    }
    ds.close();
    assert.equal(await ds.closed, null);
    assert.equal(await server.closed, null, 'the server side closes when the client ends the stream');
    await until(() => masqueSessionCount() === 0);
  } finally {
    await srv.close();
  }
});

test('masque: a refusal rejects with its status and text; a bad path is answered 400', async () => {
  const srv = await startTestMasqueServer({ token: 'secret' });
  try {
    await assert.rejects(connectUdp({ authority: srv.authority, target: { host: '198.18.0.7', port: 51820 }, timeoutMs: 5000 }), (e: unknown) => {
      assert.ok(e instanceof ConnectUdpRefusedError);
      assert.equal(e.status, 403);
      assert.equal(e.reason, 'not a member');
      assert.match(e.message, /refused CONNECT-UDP to 198\.18\.0\.7:51820: 403 not a member/);
      return true;
    });
    await until(() => masqueSessionCount() === 0);
    // A client that sends a path of another form.
    const session = http2.connect(srv.authority, { rejectUnauthorized: false });
    await new Promise((resolve) => session.once('remoteSettings', resolve));
    const req = session.request({ ':method': 'CONNECT', ':protocol': 'connect-udp', ':scheme': 'https', ':path': '/.well-known/masque/udp/198.18.0.7/99999/', 'capsule-protocol': '?1' });
    const [status, body] = await new Promise<[number, string]>((resolve) => {
      let text = '';
      let st = 0;
      req.on('response', (h) => { st = Number(h[':status']); });
      req.setEncoding('utf8');
      req.on('data', (s: string) => { text += s; });
      req.on('end', () => resolve([st, text]));
    });
    assert.equal(status, 400);
    assert.match(body, /:path ".*99999\/" is not \/\.well-known\/masque\/udp\/<host>\/<port>\//);
    session.close();
    assert.equal(srv.streams.length, 0, 'nothing was accepted');
  } finally {
    await srv.close();
  }
});

/** The HTTP/2 frame types a raw server received after the client preface. */
function frameTypes(bytes: Buffer): number[] {
  const types: number[] = [];
  let at = 24; // "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
  while (at + 9 <= bytes.length) {
    const len = bytes.readUIntBE(at, 3);
    types.push(bytes[at + 3]!);
    at += 9 + len;
  }
  return types;
}
const FRAME_HEADERS = 0x1;
// SETTINGS (type 4), length 6, stream 0: SETTINGS_ENABLE_CONNECT_PROTOCOL (0x8) = 1.
const SETTINGS_CONNECT = Buffer.from('000006' + '04' + '00' + '00000000' + '0008' + '00000001', 'hex');

test('masque: the client sends CONNECT only after the server\'s SETTINGS', async () => {
  // A TLS server speaking just enough HTTP/2: it records what the client sends and sends its own
  // SETTINGS only when told to.
  const conns: { socket: tls.TLSSocket; got: Buffer }[] = [];
  const server = tls.createServer({ ...testTlsCert(), ALPNProtocols: ['h2'] }, (socket) => {
    const c = { socket, got: Buffer.alloc(0) };
    conns.push(c);
    socket.on('data', (d: Buffer) => { c.got = Buffer.concat([c.got, d]); });
    socket.on('error', () => {});
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const authority = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
  try {
    // No SETTINGS at all: the client times out waiting for them and never sends HEADERS.
    await assert.rejects(connectUdp({ authority, target: { host: '198.18.0.7', port: 1 }, timeoutMs: 400 }), (e: unknown) => {
      assert.ok(e instanceof StreamTimeoutError);
      assert.match(e.message, /no TLS connection and SETTINGS from the server within 400 ms/);
      return true;
    });
    assert.equal(conns.length, 1);
    assert.ok(conns[0]!.got.subarray(0, 24).toString() === 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'the client preface arrived');
    assert.ok(!frameTypes(conns[0]!.got).includes(FRAME_HEADERS), 'no request was sent');
    // SETTINGS after 300 ms: the request follows them, not before.
    const pending = connectUdp({ authority, target: { host: '198.18.0.7', port: 1 }, timeoutMs: 5000 });
    pending.catch(() => {});
    await until(() => conns.length === 2);
    await sleep(300);
    const c = conns[1]!;
    assert.ok(!frameTypes(c.got).includes(FRAME_HEADERS), 'no request before the SETTINGS');
    c.socket.write(SETTINGS_CONNECT);
    await until(() => frameTypes(c.got).includes(FRAME_HEADERS));
    c.socket.destroy();
    await assert.rejects(pending);
  } finally {
    for (const c of conns) c.socket.destroy();
    await new Promise((resolve) => server.close(resolve));
  }
});

test('masque: a server without extended CONNECT is reported as such', async () => {
  const server = http2.createSecureServer(testTlsCert());
  let streams = 0;
  server.on('stream', () => { streams++; });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  try {
    const authority = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
    await assert.rejects(connectUdp({ authority, target: { host: '198.18.0.7', port: 1 }, timeoutMs: 5000 }), (e: unknown) => {
      assert.ok(e instanceof ExtendedConnectUnsupportedError);
      assert.match(e.message, /does not offer extended CONNECT \(RFC 8441\)/);
      return true;
    });
    assert.equal(streams, 0);
  } finally {
    await new Promise((resolve) => server.close(resolve));
  }
});

test('masque: bad options are named', () => {
  assert.throws(() => connectUdp({ authority: 'http://127.0.0.1:1', target: { host: '198.18.0.7', port: 1 } }), /expected https:\/\/host:port/);
  assert.throws(() => connectUdp({ authority: 'https://127.0.0.1:1/x', target: { host: '198.18.0.7', port: 1 } }), StreamOptionsError);
  assert.throws(() => connectUdp({ authority: 'https://127.0.0.1:1', target: { host: '198.18.0.7', port: 0 } }), /target port 0/);
  assert.throws(() => connectUdp({ authority: 'https://127.0.0.1:1', target: { host: '198.18.0.7', port: 1 }, headers: { ':path': '/' } }), /pseudo-header/);
});

test('masque: streams to one proxy share a connection; the server closing a stream closes ours', async () => {
  const srv = await startTestMasqueServer();
  try {
    const target = { host: '198.18.0.7', port: 51820 };
    const [a, b] = await Promise.all([connectUdp({ authority: srv.authority, target }), connectUdp({ authority: srv.authority, target })]);
    assert.equal(srv.sessions, 1);
    assert.equal(masqueSessionCount(), 1);
    const c = await connectUdp({ authority: srv.authority, target: { host: 'fd00::7', port: 9 } });
    assert.equal(srv.sessions, 1, 'a third stream, still one connection');
    assert.equal(srv.requests[2]![':path'], '/.well-known/masque/udp/fd00%3A%3A7/9/');
    a.close();
    await a.closed;
    (await srv.stream(1)).close(); // the server ends b's stream
    assert.equal(await b.closed, null);
    assert.equal(b.isClosed, true);
    assert.equal(b.send([Buffer.alloc(10)], [0], [10], 1), 0);
    assert.equal(b.counters.dropClosed, 1);
    assert.equal(masqueSessionCount(), 1, 'c still uses the connection');
    c.close();
    await c.closed;
    await until(() => masqueSessionCount() === 0);
  } finally {
    await srv.close();
  }
});

/** A raw CONNECT-UDP stream (node's client, no DatagramStream) to write hand-made bytes. */
async function rawConnectUdp(authority: string): Promise<{ session: http2.ClientHttp2Session; req: http2.ClientHttp2Stream }> {
  const session = http2.connect(authority, { rejectUnauthorized: false });
  session.on('error', () => {});
  await new Promise((resolve) => session.once('remoteSettings', resolve));
  const req = session.request({ ':method': 'CONNECT', ':protocol': 'connect-udp', ':scheme': 'https', ':path': '/.well-known/masque/udp/198.18.0.7/1/', 'capsule-protocol': '?1' });
  req.on('error', () => {});
  await new Promise((resolve) => req.once('response', resolve));
  return { session, req };
}

test('masque: unknown capsules and context IDs are skipped and counted; an oversize capsule aborts the stream', async () => {
  const srv = await startTestMasqueServer({ echo: false });
  try {
    const { session, req } = await rawConnectUdp(srv.authority);
    const server = await srv.stream(0);
    const got: string[] = [];
    server.onDatagrams((bufs, sizes, n) => { for (let i = 0; i < n; i++) got.push(bufs[i]!.subarray(0, sizes[i]!).toString()); });
    req.write(Buffer.from(
      '2a03010203' + // unknown capsule type 0x2a, 3 bytes
      '00020578' + // DATAGRAM, context ID 5: not ours
      '0000' + // DATAGRAM without a context ID
      '0001' + '00' + // DATAGRAM, context 0, empty UDP payload
      '0003006f6b', // DATAGRAM, context 0, "ok"
      'hex'));
    await until(() => got.length === 1);
    assert.deepEqual(got, ['ok']);
    const c = server.counters;
    assert.deepEqual([c.unknownCapsules, c.unknownContext, c.malformed, c.emptyDatagrams, c.rxDatagrams], [1, 1, 1, 1, 1]);
    req.write(Buffer.from('00' + '80010008', 'hex')); // DATAGRAM of 65544 bytes: over the limit
    const err = await server.closed;
    assert.match(String(err), /over the size limit/);
    assert.equal(server.counters.malformed, 2);
    await new Promise((resolve) => req.once('close', resolve));
    session.close();
  } finally {
    await srv.close();
  }
});

test('masque: when the server stops reading, sends are dropped and counted', async () => {
  const srv = await startTestMasqueServer({ echo: false });
  let ds: DatagramStream | null = null;
  try {
    ds = await connectUdp({ authority: srv.authority, target: { host: '198.18.0.7', port: 1 }, writeBufferLimit: 64 * 1024 });
    const bufs = Array.from({ length: 64 }, () => Buffer.alloc(1400, 0x55));
    const offsets = new Uint32Array(64);
    const sizes = new Uint32Array(64).fill(1400);
    let offered = 0;
    for (let round = 0; round < 2000 && ds.counters.dropBackpressure === 0; round++) {
      offered += 64;
      ds.send(bufs, offsets, sizes, 64);
      await new Promise((resolve) => setImmediate(resolve));
    }
    const c = ds.counters;
    assert.ok(c.dropBackpressure > 0, 'a drop was counted');
    assert.equal(c.txDatagrams + c.dropBackpressure, offered, 'every datagram is sent or counted');
    assert.ok(ds.queuedBytes >= 64 * 1024, `the stream holds ${ds.queuedBytes} bytes`);
    // Queued bytes stay bounded: the limit plus one batch.
    assert.ok(ds.queuedBytes < 64 * 1024 + 64 * 1405, `queued ${ds.queuedBytes}`);
  } finally {
    ds?.close();
    await srv.close();
  }
});
