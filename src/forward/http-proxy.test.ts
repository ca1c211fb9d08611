// HTTP proxy tests on loopback with the kernel TunnelNet on both sides: curl -x fetches a file
// in absolute form (SHA-256 compared) and through CONNECT (-p); the origin sees an origin-form
// request with its Host and "Connection: close"; a POST body arrives whole; a closed port gives
// 502 with the reason; origin-form requests to the proxy itself and https:// absolute URLs get 400.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer, type Server } from 'node:http';
import { connect } from 'node:net';
import { KernelTunnelNet } from './dialer.js';
import { SystemResolver } from './resolver.js';
import { HttpProxy, splitHostPort } from './http-proxy.js';
import { startFileServer, freePort, curl } from './testing.js';

const kernel = new KernelTunnelNet();
const FILE_SIZE = 8 * 1024 * 1024;
let dir = '';
let fileSha = '';
let web: { server: Server; port: number };
let proxy: HttpProxy;
let proxyUrl = '';

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'meshtun-http-'));
  const data = randomBytes(FILE_SIZE);
  fileSha = sha(data);
  writeFileSync(join(dir, 'file'), data);
  web = await startFileServer('127.0.0.1', 0, join(dir, 'file'));
  proxy = await HttpProxy.listen({ local: kernel, tunnel: kernel, resolver: new SystemResolver(), host: '127.0.0.1', port: 0 });
  proxyUrl = `http://127.0.0.1:${proxy.address.port}`;
});

after(async () => {
  await proxy?.close();
  web?.server.close();
  rmSync(dir, { recursive: true, force: true });
});

test('curl -x fetches a file in absolute form with a matching SHA-256', async () => {
  const out = join(dir, 'abs');
  const r = await curl(['-x', proxyUrl, '-o', out, `http://127.0.0.1:${web.port}/file`]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(sha(readFileSync(out)), fileSha);
  assert.ok(proxy.counters.bytesFromTarget >= FILE_SIZE);
});

test('curl -p -x (CONNECT) fetches the same file through a tunnel', async () => {
  const out = join(dir, 'connect');
  const r = await curl(['-p', '-x', proxyUrl, '-o', out, `http://127.0.0.1:${web.port}/file`]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(sha(readFileSync(out)), fileSha);
});

test('the origin gets an origin-form request with its Host and Connection: close; hop-by-hop headers are dropped', async () => {
  let seen: { url?: string; headers?: Record<string, unknown> } = {};
  const origin = createServer((req, res) => {
    seen = { url: req.url, headers: req.headers };
    res.writeHead(200, { 'x-origin': 'yes', 'keep-alive': 'timeout=5' }).end('ok');
  });
  await new Promise<void>((resolve) => origin.listen(0, '127.0.0.1', () => resolve()));
  const port = (origin.address() as { port: number }).port;
  try {
    const r = await curl(['-i', '-x', proxyUrl, '-H', 'Proxy-Connection: keep-alive', '-H', 'X-Keep: 1', `http://127.0.0.1:${port}/a/b?c=d`]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(seen.url, '/a/b?c=d');
    assert.equal(seen.headers?.host, `127.0.0.1:${port}`);
    assert.equal(seen.headers?.connection, 'close');
    assert.equal(seen.headers?.['proxy-connection'], undefined);
    assert.equal(seen.headers?.['x-keep'], '1');
    assert.match(r.stdout, /^x-origin: yes/mi);
    assert.doesNotMatch(r.stdout, /^keep-alive:/mi);
    assert.match(r.stdout, /\r\n\r\nok$/);
  } finally {
    origin.close();
  }
});

test('a POST body (chunked from the client) reaches the origin whole', async () => {
  const body = randomBytes(300_000);
  writeFileSync(join(dir, 'body'), body);
  const out = join(dir, 'echoed');
  const r = await curl(['-x', proxyUrl, '-H', 'Transfer-Encoding: chunked', '--data-binary', `@${join(dir, 'body')}`, '-o', out, `http://127.0.0.1:${web.port}/echo`]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(sha(readFileSync(out)), sha(body));
});

test('an unreachable origin gives 502 with the reason, quickly', async () => {
  const closed = await freePort();
  const r = await curl(['-i', '-x', proxyUrl, `http://127.0.0.1:${closed}/`]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^HTTP\/1\.1 502 Bad Gateway \(connection refused\)/);
  assert.match(r.stdout, /^x-meshtun-error: ECONNREFUSED/mi);
  assert.ok(r.ms < 2000, `took ${r.ms} ms`);
  const c = await curl(['-p', '-x', proxyUrl, `http://127.0.0.1:${closed}/`]);
  assert.notEqual(c.code, 0);
  assert.match(c.stderr, /502/);
});

test('requests that are not for a proxy get 400', async () => {
  const r = await curl(['-i', `${proxyUrl}/index.html`]);
  assert.match(r.stdout, /^HTTP\/1\.1 400/);
  assert.match(r.stdout, /absolute-form/);
  const s = await curl(['-i', '--request-target', 'https://127.0.0.1/', proxyUrl]);
  assert.match(s.stdout, /^HTTP\/1\.1 400/);
  assert.match(s.stdout, /use CONNECT/);
});

test('a client that never finishes its request head is dropped after headersTimeoutMs', async () => {
  const p = await HttpProxy.listen({ local: kernel, tunnel: kernel, resolver: new SystemResolver(), host: '127.0.0.1', port: 0, headersTimeoutMs: 300 });
  try {
    const s = connect(p.address.port, '127.0.0.1');
    s.on('error', () => undefined);
    await new Promise<void>((resolve) => s.once('connect', () => resolve()));
    s.write('GET http://127.0.0.1/ HTTP/1.1\r\nHost: x\r\n');
    const t0 = Date.now();
    await new Promise<void>((resolve) => s.once('close', () => resolve()));
    assert.ok(Date.now() - t0 < 3000);
    assert.equal(p.counters.errors, 1);
    for (let i = 0; i < 100 && p.active !== 0; i++) await new Promise((r) => setTimeout(r, 10));
    assert.equal(p.active, 0);
  } finally {
    await p.close();
  }
});

test('Basic credentials (Proxy-Authorization): none or wrong get 407 with Proxy-Authenticate, the right ones get through', async () => {
  const p = await HttpProxy.listen({ local: kernel, tunnel: kernel, resolver: new SystemResolver(), host: '127.0.0.1', port: 0, username: 'alice', password: 's3:cret' });
  const url = `http://127.0.0.1:${p.address.port}`;
  try {
    const none = await curl(['-i', '-x', url, `http://127.0.0.1:${web.port}/hello`]);
    assert.equal(none.code, 0, none.stderr);
    assert.match(none.stdout, /^HTTP\/1\.1 407 Proxy Authentication Required/);
    assert.match(none.stdout, /^proxy-authenticate: Basic realm="meshtun"/mi);
    assert.doesNotMatch(none.stdout, /hello GET/);
    const wrong = await curl(['-i', '-x', url, '--proxy-user', 'alice:s3:creT', `http://127.0.0.1:${web.port}/hello`]);
    assert.match(wrong.stdout, /^HTTP\/1\.1 407/);
    const good = await curl(['-i', '-x', url, '--proxy-user', 'alice:s3:cret', `http://127.0.0.1:${web.port}/hello`]);
    assert.equal(good.code, 0, good.stderr);
    assert.match(good.stdout, /^HTTP\/1\.1 200/);
    assert.match(good.stdout, /hello GET/);
    // CONNECT too: refused without credentials (the tunnel is never opened), fine with them.
    const connectNone = await curl(['-p', '-x', url, `http://127.0.0.1:${web.port}/hello`]);
    assert.notEqual(connectNone.code, 0);
    assert.match(connectNone.stderr, /407/);
    const connectGood = await curl(['-p', '-x', url, '--proxy-user', 'alice:s3:cret', `http://127.0.0.1:${web.port}/hello`]);
    assert.equal(connectGood.code, 0, connectGood.stderr);
    assert.match(connectGood.stdout, /^hello GET/);
    assert.equal(p.counters.authFailures, 3);
    assert.equal(p.counters.bytesToTarget > 0, true);
  } finally {
    await p.close();
  }
});

test('splitHostPort', () => {
  assert.deepEqual(splitHostPort('100.64.0.1:443'), { host: '100.64.0.1', port: 443 });
  assert.deepEqual(splitHostPort('[fd00::1]:22'), { host: 'fd00::1', port: 22 });
  assert.deepEqual(splitHostPort('example.com:80'), { host: 'example.com', port: 80 });
  assert.equal(splitHostPort('fd00::1:22'), null);
  assert.equal(splitHostPort('host:0'), null);
  assert.equal(splitHostPort('host:65536'), null);
  assert.equal(splitHostPort('host'), null);
});
