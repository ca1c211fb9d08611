// The proxies and forwards over the real userspace stack, without namespaces: two
// UserspaceStacks joined by a MemoryLink (node 100.64.0.1 with the proxies, "peer" 100.64.0.2),
// with 2% random loss on the link. The host side is the kernel on loopback.
// Checked: curl --socks5-hostname (the name resolved by a DNS responder on the peer stack, through
// the tunnel) and curl -x fetch a file served by the peer stack with a matching SHA-256; a closed
// port on the peer is refused (RST) at once, and an address no peer covers is "network
// unreachable" (reply 3) at once; a Reverse forward lets the peer reach a loopback service; a UDP
// Forward carries a DNS query to the peer; StackTunnelNet's listen and UDP errors are UserErrors.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Server } from 'node:http';
import { UserspaceStack, MemoryLink, type TcpSocket } from '../stack/index.js';
import { DnsParsed, parseDns, emitDns, Status, DNS_FLAG_QR, type DnsMessage } from '../wire/index.js';
import { UserError } from '../util/index.js';
import { KernelTunnelNet, StackTunnelNet } from './dialer.js';
import { SystemResolver, TunnelDnsResolver } from './resolver.js';
import { Socks5Server } from './socks5.js';
import { HttpProxy } from './http-proxy.js';
import { ForwardSet } from './forwards.js';
import { parseForwardSpec } from './forward-spec.js';
import { startFileServer, freePort, curl, queryA } from './testing.js';

const FILE_SIZE = 4 * 1024 * 1024;
const kernel = new KernelTunnelNet();
let dir = '';
let data: Buffer;
let node: UserspaceStack;
let peer: UserspaceStack;
let link: MemoryLink;
let tunnel: StackTunnelNet;
let socks: Socks5Server;
let http: HttpProxy;
let local: { server: Server; port: number };
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'meshtun-stacknet-'));
  data = randomBytes(FILE_SIZE);
  writeFileSync(join(dir, 'file'), data);
  node = new UserspaceStack({ addresses: ['100.64.0.1/24'], name: 'node' });
  peer = new UserspaceStack({ addresses: ['100.64.0.2/24'], name: 'peer' });
  let seed = 12345;
  const rand = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32);
  link = new MemoryLink(node, peer, () => rand() >= 0.02);
  // Only 100.64.0.0/24 has a peer; anything else is "no route".
  tunnel = new StackTunnelNet(node, { hasRoute: (family, addr) => family === 4 && ((addr as number) >>> 8) === ((100 << 16) | (64 << 8)) });
  // The peer stack: an HTTP-ish file source on :80 and a DNS responder on :53.
  peer.listenTcp({ port: 80 }, (s: TcpSocket) => {
    s.on('error', () => undefined);
    let req = '';
    s.on('data', (d: Buffer) => {
      req += d.toString('latin1');
      if (!req.includes('\r\n\r\n')) return;
      s.write(`HTTP/1.1 200 OK\r\nContent-Length: ${data.length}\r\nConnection: close\r\n\r\n`);
      s.end(data);
    });
  });
  const dnsSock = peer.udpSocket(4).bind(53);
  const parsed = new DnsParsed();
  const out = Buffer.alloc(512);
  dnsSock.on('message', (m: Buffer, r: { address: string; port: number }) => {
    if (parseDns(m, 0, m.length, parsed) !== Status.Ok || !parsed.message) return;
    const q = parsed.message.questions![0]!;
    const hit = q.name === 'files.mesh' && q.type === 'A';
    const reply: DnsMessage = { type: 'response', id: parsed.message.id, flags: DNS_FLAG_QR | (hit ? 0 : 3), questions: [q], answers: hit ? [{ type: 'A', class: 'IN', name: q.name, ttl: 30, data: '100.64.0.2' }] : [] };
    const n = emitDns(reply, out, 0);
    dnsSock.send(out.subarray(0, n), r.port, r.address);
  });
  const resolver = new TunnelDnsResolver(tunnel, ['100.64.0.2'], { families: [4], timeoutMs: 1000 });
  socks = await Socks5Server.listen({ local: kernel, tunnel, resolver, host: '127.0.0.1', port: 0 });
  http = await HttpProxy.listen({ local: kernel, tunnel, resolver, host: '127.0.0.1', port: 0 });
  local = await startFileServer('127.0.0.1', 0, join(dir, 'file'));
});

after(async () => {
  await socks?.close();
  await http?.close();
  local?.server.close();
  link?.close();
  node?.close();
  peer?.close();
  rmSync(dir, { recursive: true, force: true });
});

test('curl through SOCKS5 (name via tunnel DNS) and the HTTP proxy over the userspace stack, 2% loss', async () => {
  for (const args of [
    ['--socks5-hostname', `127.0.0.1:${socks.address.port}`, 'http://files.mesh/'],
    ['-x', `http://127.0.0.1:${http.address.port}`, 'http://100.64.0.2/'],
  ]) {
    const out = join(dir, 'got');
    rmSync(out, { force: true });
    const r = await curl(['-o', out, ...args], 60_000);
    assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
    assert.equal(sha(readFileSync(out)), sha(data), args.join(' '));
  }
  assert.ok(link.stats.filtered > 0, 'the link dropped packets');
});

test('a closed port is refused at once; an address without a peer is network unreachable', async () => {
  const refused = await curl(['--socks5', `127.0.0.1:${socks.address.port}`, 'http://100.64.0.2:9/']);
  assert.equal(refused.code, 97);
  assert.match(refused.stderr, /\(5\)/);
  assert.ok(refused.ms < 2000, `${refused.ms} ms`);
  const noRoute = await curl(['--socks5', `127.0.0.1:${socks.address.port}`, 'http://198.19.0.1/']);
  assert.equal(noRoute.code, 97);
  assert.match(noRoute.stderr, /\(3\)/);
  const viaHttp = await curl(['-i', '-x', `http://127.0.0.1:${http.address.port}`, 'http://198.19.0.1/']);
  assert.match(viaHttp.stdout, /502 Bad Gateway \(no route into the tunnel\)/);
});

test('Reverse (peer -> loopback service) and UDP Forward (DNS to the peer) over the stack', async () => {
  const set = new ForwardSet({ local: kernel, tunnel, tunnelResolver: new SystemResolver(), localResolver: new SystemResolver(), maxConnections: 16, udpIdleMs: 10_000 });
  try {
    const dnsPort = await freePort();
    const r = await set.apply([
      parseForwardSpec(`tcp:8000=127.0.0.1:${local.port}`, 'reverse'),
      parseForwardSpec(`udp:127.0.0.1:${dnsPort}=100.64.0.2:53`, 'forward'),
    ]);
    assert.deepEqual(r.failed, []);
    // The peer connects to the node's overlay address and gets the loopback service's file.
    const got = await new Promise<Buffer>((resolve, reject) => {
      const s = peer.connectTcp({ host: '100.64.0.1', port: 8000 });
      const chunks: Buffer[] = [];
      s.on('connect', () => s.write('GET /file HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'));
      s.on('data', (d: Buffer) => chunks.push(d));
      s.on('end', () => resolve(Buffer.concat(chunks)));
      s.on('error', reject);
    });
    const body = got.subarray(got.indexOf('\r\n\r\n') + 4);
    assert.equal(sha(body), sha(data));
    assert.equal(await queryA('127.0.0.1', dnsPort, 'files.mesh'), '100.64.0.2');
    assert.equal(await queryA('127.0.0.1', dnsPort, 'nothere.mesh'), 'NXDOMAIN');
  } finally {
    await set.close();
  }
});

test('StackTunnelNet: listening twice and binding a foreign address are UserErrors', async () => {
  const l = await tunnel.listenTcp('', 9100, () => undefined);
  try {
    await assert.rejects(tunnel.listenTcp('100.64.0.1', 9100, () => undefined), (e: Error) => e instanceof UserError && /already being listened on/.test(e.message));
  } finally {
    await l.close();
  }
  await assert.rejects(tunnel.listenTcp('100.64.0.9', 9101, () => undefined), (e: Error) => e instanceof UserError && /not an address of the userspace stack/.test(e.message));
  await assert.rejects(tunnel.udpSocket(4, 53, '100.64.0.9'), (e: Error) => e instanceof UserError && /100\.64\.0\.9/.test(e.message));
  await assert.rejects(tunnel.connectTcp('files.mesh', 80), (e: Error) => e instanceof UserError && /not an IP address/.test(e.message));
});
