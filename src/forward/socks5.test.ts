// SOCKS5 proxy tests on loopback, with the kernel TunnelNet on both sides: curl
// --socks5-hostname fetches a file (SHA-256 compared) by a name the tunnel DNS resolver answers;
// a closed port is refused at once (reply 0x05); username/password; reply codes for network
// errors (a stub tunnel); BIND (0x07) and an unknown address type (0x08); UDP ASSOCIATE with a
// node client against a UDP echo server; the connection limit.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, type Socket } from 'node:net';
import { createSocket } from 'node:dgram';
import type { Server } from 'node:http';
import { KernelTunnelNet, DialError, type TunnelNet } from './dialer.js';
import { TunnelDnsResolver, SystemResolver } from './resolver.js';
import { Socks5Server } from './socks5.js';
import { SocksReply } from './socks5-protocol.js';
import { startFileServer, startDnsResponder, freePort, curl } from './testing.js';

const kernel = new KernelTunnelNet();
const FILE_SIZE = 8 * 1024 * 1024;
let dir = '';
let fileSha = '';
let web: { server: Server; port: number };
let dns: Awaited<ReturnType<typeof startDnsResponder>>;
let resolver: TunnelDnsResolver;
let proxy: Socks5Server;

const sha = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'meshtun-socks-'));
  const data = randomBytes(FILE_SIZE);
  fileSha = sha(data);
  writeFileSync(join(dir, 'file'), data);
  web = await startFileServer('127.0.0.1', 0, join(dir, 'file'));
  dns = await startDnsResponder('127.0.0.1', 0, { 'files.test': '127.0.0.1' });
  // The "tunnel DNS server" is on a non-standard port here, so talk to it through a TunnelNet
  // whose UDP sockets rewrite port 53.
  resolver = new TunnelDnsResolver(redirectDns(kernel, dns.port), ['127.0.0.1'], { timeoutMs: 500 });
  proxy = await Socks5Server.listen({ local: kernel, tunnel: kernel, resolver, host: '127.0.0.1', port: 0 });
});

after(async () => {
  await proxy?.close();
  web?.server.close();
  dns?.socket.close();
  rmSync(dir, { recursive: true, force: true });
});

/** A TunnelNet whose UDP sends to port 53 go to `port` instead (and answers look like port 53). */
function redirectDns(net: TunnelNet, port: number): TunnelNet {
  return {
    kind: 'redirect',
    connectTcp: (h, p, o) => net.connectTcp(h, p, o),
    listenTcp: (h, p, cb) => net.listenTcp(h, p, cb),
    async udpSocket(family, bindPort, host) {
      const s = await net.udpSocket(family, bindPort, host);
      const send = s.send.bind(s);
      s.send = (msg, p, addr, cb) => send(msg, p === 53 ? port : p, addr, cb);
      const on = s.on.bind(s) as (ev: string, l: (...a: unknown[]) => void) => unknown;
      (s as unknown as { on: unknown }).on = (ev: string, l: (...a: unknown[]) => void) => {
        const wrapped = (m: unknown, r: { port: number }): void => l(m, { ...r, port: r.port === port ? 53 : r.port });
        on(ev, ev === 'message' ? wrapped as (...a: unknown[]) => void : l);
        return s;
      };
      return s;
    },
  };
}

test('curl --socks5-hostname fetches a file by a name resolved through the tunnel DNS', async () => {
  const r = await curl(['--socks5-hostname', `127.0.0.1:${proxy.address.port}`, '-o', '-', `http://files.test:${web.port}/file`, '-w', ''], 60_000);
  assert.equal(r.code, 0, r.stderr);
  assert.ok(dns.queries() >= 1, 'the name went to the tunnel DNS server');
  const out = await curl(['--socks5-hostname', `127.0.0.1:${proxy.address.port}`, '-o', join(dir, 'got'), `http://files.test:${web.port}/file`]);
  assert.equal(out.code, 0, out.stderr);
  const { readFileSync } = await import('node:fs');
  assert.equal(sha(readFileSync(join(dir, 'got'))), fileSha);
  assert.ok(proxy.counters.bytesFromTarget >= FILE_SIZE * 2);
});

test('curl --socks5 (IP address) works, and an unknown name is host unreachable (0x04)', async () => {
  const ok = await curl(['--socks5', `127.0.0.1:${proxy.address.port}`, `http://127.0.0.1:${web.port}/hello`]);
  assert.equal(ok.code, 0, ok.stderr);
  assert.match(ok.stdout, /^hello GET/);
  const bad = await curl(['--socks5-hostname', `127.0.0.1:${proxy.address.port}`, `http://nothere.test:${web.port}/hello`]);
  assert.equal(bad.code, 97, bad.stderr);
  assert.match(bad.stderr, /\(4\)/, 'reply 4: host unreachable');
});

test('a closed port is refused at once with reply 0x05', async () => {
  const closed = await freePort();
  const r = await curl(['--socks5', `127.0.0.1:${proxy.address.port}`, `http://127.0.0.1:${closed}/`]);
  assert.equal(r.code, 97, r.stderr);
  assert.match(r.stderr, /\(5\)/, 'reply 5: connection refused');
  assert.ok(r.ms < 2000, `took ${r.ms} ms`);
  assert.equal((await rawRequest(proxy.address.port, connectRequest('127.0.0.1', closed)))[1], SocksReply.ConnectionRefused);
});

/** Sends a no-auth greeting and `request` at once; resolves with the reply after the method
 * selection. */
async function rawRequest(port: number, request: Buffer, greeting = Buffer.from([5, 1, 0])): Promise<Buffer> {
  const s = connect(port, '127.0.0.1');
  const got = await readAll(s, Buffer.concat([greeting, request]));
  return got.subarray(2);
}

function connectRequest(host: string, port: number, cmd = 1): Buffer {
  const b = Buffer.alloc(10);
  b[0] = 5; b[1] = cmd; b[2] = 0; b[3] = 1;
  host.split('.').forEach((x, i) => { b[4 + i] = Number(x); });
  b.writeUInt16BE(port, 8);
  return b;
}

/** Writes `data` and collects everything `s` receives until it closes (or 3 s pass). */
async function readAll(s: Socket, data: Buffer): Promise<Buffer> {
  const chunks: Buffer[] = [];
  s.on('data', (d: Buffer) => chunks.push(d));
  s.on('error', () => undefined);
  const closed = new Promise<void>((resolve) => {
    const t = setTimeout(() => { s.destroy(); resolve(); }, 3000);
    s.on('close', () => { clearTimeout(t); resolve(); });
  });
  await new Promise<void>((resolve) => s.once('connect', () => resolve()));
  s.write(data);
  await closed;
  return Buffer.concat(chunks);
}

test('BIND is not supported (0x07), an unknown address type is 0x08, no acceptable method is 0xff', async () => {
  const bind = await rawRequest(proxy.address.port, connectRequest('127.0.0.1', web.port, 2));
  assert.equal(bind[1], SocksReply.CommandNotSupported);
  const atyp = await rawRequest(proxy.address.port, Buffer.from([5, 1, 0, 9, 1, 2, 3, 4, 0, 80]));
  assert.equal(atyp[1], SocksReply.AddressTypeNotSupported);
  const s = connect(proxy.address.port, '127.0.0.1');
  const reply = await readAll(s, Buffer.from([5, 1, 2]));
  assert.deepEqual([...reply], [5, 0xff]);
});

test('network errors map to SOCKS reply codes', async () => {
  const cases: [string, number][] = [
    ['ENETUNREACH', SocksReply.NetworkUnreachable], ['EHOSTUNREACH', SocksReply.HostUnreachable],
    ['ETIMEDOUT', SocksReply.TtlExpired], ['ECONNREFUSED', SocksReply.ConnectionRefused], ['EWHATEVER', SocksReply.GeneralFailure],
  ];
  for (const [code, rep] of cases) {
    const failing: TunnelNet = { ...kernel, kind: 'stub', connectTcp: () => Promise.reject(new DialError(code, code)), listenTcp: kernel.listenTcp.bind(kernel), udpSocket: kernel.udpSocket.bind(kernel) };
    const p = await Socks5Server.listen({ local: kernel, tunnel: failing, resolver: new SystemResolver(), host: '127.0.0.1', port: 0 });
    try {
      const r = await rawRequest(p.address.port, connectRequest('100.64.0.1', 80));
      assert.equal(r[1], rep, `${code} -> reply ${rep}`);
    } finally {
      await p.close();
    }
  }
});

test('username/password (RFC 1929): right credentials pass, wrong ones and no-auth clients are turned away', async () => {
  const p = await Socks5Server.listen({ local: kernel, tunnel: kernel, resolver, host: '127.0.0.1', port: 0, username: 'alice', password: 's3cret' });
  try {
    const good = await curl(['--socks5', `127.0.0.1:${p.address.port}`, '--proxy-user', 'alice:s3cret', `http://127.0.0.1:${web.port}/hello`]);
    assert.equal(good.code, 0, good.stderr);
    assert.match(good.stdout, /^hello/);
    const wrong = await curl(['--socks5', `127.0.0.1:${p.address.port}`, '--proxy-user', 'alice:nope', `http://127.0.0.1:${web.port}/hello`]);
    assert.notEqual(wrong.code, 0);
    const none = await curl(['--socks5', `127.0.0.1:${p.address.port}`, `http://127.0.0.1:${web.port}/hello`]);
    assert.notEqual(none.code, 0);
    assert.equal(p.counters.authFailures, 2);
    // On the wire: a client offering only "no authentication" gets method 0xff; a wrong password
    // gets status 1 to its sub-negotiation, and neither gets to send a request.
    const noAuth = await readAll(connect(p.address.port, '127.0.0.1'), Buffer.concat([Buffer.from([5, 1, 0]), connectRequest('127.0.0.1', web.port)]));
    assert.deepEqual([...noAuth], [5, 0xff]);
    const userPass = (user: string, pass: string) => Buffer.concat([Buffer.from([1, user.length]), Buffer.from(user), Buffer.from([pass.length]), Buffer.from(pass)]);
    const wrongPass = await readAll(connect(p.address.port, '127.0.0.1'), Buffer.concat([Buffer.from([5, 1, 2]), userPass('alice', 'S3cret'), connectRequest('127.0.0.1', web.port)]));
    assert.deepEqual([...wrongPass], [5, 2, 1, 1]);
    const rightPass = await readAll(connect(p.address.port, '127.0.0.1'), Buffer.concat([Buffer.from([5, 1, 2]), userPass('alice', 's3cret'), connectRequest('127.0.0.1', web.port), Buffer.from('GET /hello HTTP/1.0\r\n\r\n')]));
    assert.deepEqual([...rightPass.subarray(0, 5)], [5, 2, 1, 0, 5]);
    assert.equal(rightPass[5], SocksReply.Succeeded);
    assert.match(rightPass.subarray(14).toString(), /^HTTP\/1\.1 200/);
    assert.equal(p.counters.authFailures, 4);
  } finally {
    await p.close();
  }
});

test('UDP ASSOCIATE relays datagrams to a UDP echo server and back, by address and by name', async () => {
  const echo = createSocket('udp4');
  echo.on('message', (m, r) => echo.send(m, r.port, r.address));
  await new Promise<void>((resolve) => echo.bind(0, '127.0.0.1', () => resolve()));
  const echoPort = echo.address().port;
  const ctrl = connect(proxy.address.port, '127.0.0.1');
  const client = createSocket('udp4');
  try {
    await new Promise<void>((resolve) => ctrl.once('connect', () => resolve()));
    await new Promise<void>((resolve) => client.bind(0, '127.0.0.1', () => resolve()));
    const replies: Buffer[] = [];
    ctrl.on('data', (d: Buffer) => replies.push(d));
    ctrl.write(Buffer.from([5, 1, 0]));
    await until(() => Buffer.concat(replies).length >= 2);
    const req = connectRequest('127.0.0.1', client.address().port, 3);
    ctrl.write(req);
    await until(() => Buffer.concat(replies).length >= 12);
    const rep = Buffer.concat(replies).subarray(2);
    assert.equal(rep[1], SocksReply.Succeeded);
    const relayPort = rep.readUInt16BE(8);
    const got: Buffer[] = [];
    client.on('message', (m) => got.push(m));
    // By address.
    const payload = randomBytes(1000);
    const h1 = Buffer.from([0, 0, 0, 1, 127, 0, 0, 1, 0, 0]);
    h1.writeUInt16BE(echoPort, 8);
    client.send(Buffer.concat([h1, payload]), relayPort, '127.0.0.1');
    await until(() => got.length >= 1);
    assert.deepEqual(got[0]!.subarray(0, 10), h1, 'the reply header names the echo server');
    assert.ok(got[0]!.subarray(10).equals(payload));
    // By name (resolved through the tunnel DNS).
    const name = Buffer.from('files.test');
    const h2 = Buffer.concat([Buffer.from([0, 0, 0, 3, name.length]), name, Buffer.from([echoPort >> 8, echoPort & 255])]);
    client.send(Buffer.concat([h2, Buffer.from('by name')]), relayPort, '127.0.0.1');
    await until(() => got.length >= 2);
    assert.equal(got[1]!.subarray(10).toString(), 'by name');
    // A fragment (FRAG != 0) is dropped.
    const before = proxy.counters.datagramsDropped;
    const frag = Buffer.from(h1);
    frag[2] = 1;
    client.send(Buffer.concat([frag, payload]), relayPort, '127.0.0.1');
    await until(() => proxy.counters.datagramsDropped > before);
  } finally {
    ctrl.destroy();
    client.close();
    echo.close();
  }
});

test('connections beyond maxConnections are refused and counted', async () => {
  const p = await Socks5Server.listen({ local: kernel, tunnel: kernel, resolver, host: '127.0.0.1', port: 0, maxConnections: 2 });
  const socks: Socket[] = [];
  try {
    for (let i = 0; i < 2; i++) {
      const s = connect(p.address.port, '127.0.0.1');
      s.on('error', () => undefined);
      socks.push(s);
      await new Promise<void>((resolve) => s.once('connect', () => resolve()));
    }
    await until(() => p.active === 2);
    const third = connect(p.address.port, '127.0.0.1');
    third.on('error', () => undefined);
    await new Promise<void>((resolve) => third.once('close', () => resolve()));
    await until(() => p.counters.refused === 1);
    socks[0]!.destroy();
    await until(() => p.active === 1);
    const ok = await curl(['--socks5', `127.0.0.1:${p.address.port}`, `http://127.0.0.1:${web.port}/hello`]);
    assert.equal(ok.code, 0, ok.stderr);
  } finally {
    for (const s of socks) s.destroy();
    await p.close();
  }
});

async function until(fn: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!fn()) {
    if (Date.now() > end) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 10));
  }
}
