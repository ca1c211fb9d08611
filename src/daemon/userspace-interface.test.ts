// UserspaceInterface in one process: two rootless interfaces (A 100.64.0.1, B 100.64.0.2) on an
// in-memory UDP network, sockets in a temp dir. A's SOCKS5 proxy reaches B's Reverse forward,
// which reaches a web server on loopback: a file arrives whole through proxy, both WireGuard
// engines, both userspace stacks and the forward. Then: the local API serves the status with the
// proxy and forward counters; reload() applies a changed file (a peer removed: "network
// unreachable" at once; a Forward added; the peer back); a broken file changes nothing; a file
// without Address is refused.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'node:http';
import type { Server } from 'node:http';
import { MemoryNetwork } from '../transport/index.js';
import { generatePrivateKey, publicKey, encodeBase64Key } from '../crypto/index.js';
import { ConfigError } from '../util/index.js';
import { startFileServer, freePort, curl } from '../forward/testing.js';
import { UserspaceInterface, type UserspaceStatus } from './userspace-interface.js';
import { readWgQuickConfig, parseWgQuickConfig } from './wg-quick-config.js';

const kA = generatePrivateKey();
const kB = generatePrivateKey();
let dir = '';
let data: Buffer;
let web: { server: Server; port: number };
let socksPort = 0;
let a: UserspaceInterface;
let b: UserspaceInterface;
const sha = (x: Buffer) => createHash('sha256').update(x).digest('hex');

const confA = (extra = '', peer = true) => `[Interface]
PrivateKey = ${encodeBase64Key(kA)}
ListenPort = 51820
Address = 100.64.0.1/24

[Meshtun]
Socks5 = 127.0.0.1:${socksPort}
HttpProxy = off
${extra}
${peer ? `[Peer]
PublicKey = ${encodeBase64Key(publicKey(kB))}
AllowedIPs = 100.64.0.2/32
Endpoint = 198.18.0.2:51820
` : ''}`;

const paths = (name: string) => ({ uapi: join(dir, `${name}.sock`), api: join(dir, `${name}.api`), pid: join(dir, `${name}.pid`) });

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'meshtun-usif-'));
  data = randomBytes(2 * 1024 * 1024);
  writeFileSync(join(dir, 'file'), data);
  web = await startFileServer('127.0.0.1', 0, join(dir, 'file'));
  socksPort = await freePort();
  const net = new MemoryNetwork();
  writeFileSync(join(dir, 'ua0.conf'), confA());
  writeFileSync(join(dir, 'ub0.conf'), `[Interface]
PrivateKey = ${encodeBase64Key(kB)}
ListenPort = 51820
Address = 100.64.0.2/24

[Meshtun]
Socks5 = off
HttpProxy = off
Reverse = tcp:80=127.0.0.1:${web.port}

[Peer]
PublicKey = ${encodeBase64Key(publicKey(kA))}
AllowedIPs = 100.64.0.1/32
`);
  a = await UserspaceInterface.fromWgQuick('ua0', readWgQuickConfig(join(dir, 'ua0.conf')), { bind: net.createBind('198.18.0.1'), paths: paths('ua0') });
  b = await UserspaceInterface.fromWgQuick('ub0', readWgQuickConfig(join(dir, 'ub0.conf')), { bind: net.createBind('198.18.0.2'), paths: paths('ub0') });
});

after(async () => {
  await a?.stop();
  await b?.stop();
  web?.server.close();
  rmSync(dir, { recursive: true, force: true });
});

async function fetchFile(): Promise<{ code: number; sha: string; stderr: string; ms: number }> {
  const out = join(dir, 'got');
  rmSync(out, { force: true });
  const r = await curl(['--socks5', `127.0.0.1:${socksPort}`, '-o', out, 'http://100.64.0.2/file'], 30_000);
  return { code: r.code, sha: r.code === 0 ? sha(readFileSync(out)) : '', stderr: r.stderr, ms: r.ms };
}

function apiGet(path: string, socketPath: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath, path }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => { body += d.toString(); });
      res.on('end', () => resolve(body));
    });
    req.on('error', reject);
    req.end();
  });
}

test('A\'s SOCKS5 proxy -> tunnel -> B\'s Reverse forward -> a loopback web server', async () => {
  assert.deepEqual(a.proxyUrls(), [`socks5://127.0.0.1:${socksPort}`]);
  const r = await fetchFile();
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.sha, sha(data));
});

test('the local API serves the status with proxies, forwards and stack counters', async () => {
  const st = JSON.parse(await apiGet('/v1/status', a.paths.api)) as UserspaceStatus;
  assert.equal(st.mode, 'userspace');
  assert.deepEqual(st.addresses, ['100.64.0.1/24']);
  assert.equal(st.proxies[0]!.kind, 'socks5');
  assert.ok(st.proxies[0]!.counters.bytesFromTarget! >= data.length);
  assert.ok(st.stack.rxPackets! > 0);
  const sb = b.status();
  assert.equal(sb.forwards.length, 1);
  assert.equal(sb.forwards[0]!.direction, 'reverse');
  assert.ok(sb.forwards[0]!.counters.connections! >= 1);
  assert.match(await apiGet('/metrics', b.paths.api), /meshtun_peer_rx_bytes_total/);
});

test('reload(): a removed peer is unreachable at once, a new Forward starts, the peer comes back', async () => {
  writeFileSync(join(dir, 'ua0.conf'), confA('', false));
  let r = await a.reload();
  assert.equal(r.peers.removed.length, 1);
  const gone = await fetchFile();
  assert.equal(gone.code, 97);
  assert.match(gone.stderr, /\(3\)/, 'SOCKS reply 3: network unreachable');
  assert.ok(gone.ms < 2000);

  const fwdPort = await freePort();
  writeFileSync(join(dir, 'ua0.conf'), confA(`Forward = tcp:127.0.0.1:${fwdPort}=100.64.0.2:80\n`));
  r = await a.reload();
  assert.equal(r.peers.added.length, 1);
  assert.equal(r.forwards.started.length, 1);
  assert.deepEqual(r.proxies, [], 'the proxy settings did not change: the proxy kept running');
  const back = await fetchFile();
  assert.equal(back.code, 0, back.stderr);
  assert.equal(back.sha, sha(data));
  const hello = await curl([`http://127.0.0.1:${fwdPort}/hello`], 10_000);
  assert.match(hello.stdout, /^hello GET/);
});

test('reload() of a broken file throws a ConfigError and changes nothing', async () => {
  writeFileSync(join(dir, 'ua0.conf'), confA('Forward = nonsense\n'));
  await assert.rejects(a.reload(), (e: Error) => e instanceof ConfigError && /ua0\.conf:\d+: Forward "nonsense"/.test(e.message));
  const still = await fetchFile();
  assert.equal(still.code, 0, still.stderr);
});

test("Policy = a local ACL: B cannot ping A, A's own flows to B still work; reload drops it", async () => {
  writeFileSync(join(dir, 'acl.hujson'), '{ "acls": [ { "src": ["100.64.0.2"], "dst": ["100.64.0.1:22"], "proto": "tcp" } ] }');
  writeFileSync(join(dir, 'ua0.conf'), confA('Policy = acl.hujson\n'));
  await a.reload();
  const before = a.engine.counters.dropFilteredInbound;
  await assert.rejects(b.stack.ping(4, '100.64.0.1', { timeoutMs: 800 }), /ETIMEDOUT|no reply/i);
  assert.ok(a.engine.counters.dropFilteredInbound > before, 'the echo request was filtered and counted');
  const own = await fetchFile();
  assert.equal(own.code, 0, `A's own flow through the filter: ${own.stderr}`);
  assert.equal(own.sha, sha(data));
  writeFileSync(join(dir, 'acl.hujson'), '{ "acls": [ { "src": ["100.64.0.2"], "dst": ["tag:nope:22"] } ] }');
  await assert.rejects(a.reload(), /acl\.hujson/, 'a bad policy refuses the reload');
  writeFileSync(join(dir, 'ua0.conf'), confA());
  await a.reload();
  assert.equal(a.engine.packetFilter, null);
  assert.ok((await b.stack.ping(4, '100.64.0.1', { timeoutMs: 2000 })) >= 0);
});

test('userspace mode needs an Address', async () => {
  const cfg = parseWgQuickConfig(`[Interface]\nPrivateKey = ${encodeBase64Key(kA)}\n`, 'nx0.conf');
  await assert.rejects(UserspaceInterface.fromWgQuick('nx0', cfg, { paths: paths('nx0') }), /nx0\.conf: userspace mode needs the node's overlay address: add "Address = /);
});
