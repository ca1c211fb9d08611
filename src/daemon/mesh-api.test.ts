// The mesh API over a real MeshNode: node "a" (memory TUN) follows a map naming peer "web" (an
// engine whose device is the userspace stack, answering ping) and "ghost" (a key the node cannot
// use, so no route). Name resolution (name, name.mesh, name.<network>, addresses, -6), the
// errors (unknown name listing the known ones, this node itself, wrong family, no route, bad
// fields), /v1/mesh/peers before and after traffic, ping, traceroute, and the status block.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Engine, parseCidr } from '../wireguard/index.js';
import { MemoryTun } from '../tun/index.js';
import { MemoryNetwork } from '../transport/index.js';
import { generatePrivateKey, encodeBase64Key } from '../crypto/index.js';
import { UserspaceStack } from '../stack/index.js';
import { UserError } from '../util/index.js';
import { MeshNode, type ControlMapNode, type ControlNetworkMap } from '../mesh/index.js';
import { MeshApi, type MeshPeersReply, type MeshPingReply, type MeshTraceReply } from './mesh-api.js';
import { interfaceStatus } from './api-server.js';

const node = (name: string, key: string, ipv4: string, ipv6: string, endpoints: string[] = []): ControlMapNode => ({
  id: `id-${name}`, name, publicKey: key, ipv4, ipv6, tags: [], endpoints, routes: [], exitNode: false, allowedIps: [],
});

async function setup() {
  const net = new MemoryNetwork();
  const a = new Engine({ device: new MemoryTun('mapi-a'), bind: net.createBind('198.18.0.1') });
  const b = new Engine({ device: new UserspaceStack({ addresses: ['100.64.0.2/10', 'fd00::2/64'], name: 'mapi-web' }), bind: net.createBind('198.18.0.2') });
  for (const e of [a, b]) {
    e.setPrivateKey(generatePrivateKey());
    await e.setListenPort(51820);
    await e.up();
  }
  const pa = b.addPeer(a.publicKey!);
  for (const c of ['100.64.0.1/32', 'fd00::1/128']) b.allowedIps.insertCidr(parseCidr(c), pa);
  b.setEndpoint(pa, b.bind.parseEndpoint('198.18.0.1:51820'));
  const map: ControlNetworkMap = {
    version: 1,
    network: { id: 'n1', name: 'home', ipv4Pool: '100.64.0.0/10', ulaPrefix: 'fd00::/48' },
    self: node('a', encodeBase64Key(a.publicKey!), '100.64.0.1', 'fd00::1'),
    peers: [
      node('web', encodeBase64Key(b.publicKey!), '100.64.0.2', 'fd00::2', ['198.18.0.2:51820']),
      node('ghost', 'not-a-key', '100.64.0.66', 'fd00::66'),
    ],
  };
  const mesh = new MeshNode(a);
  mesh.apply(map);
  const api = new MeshApi(mesh);
  return { api, mesh, a, close: () => { api.close(); mesh.stop(); a.close(); b.close(); } };
}

const isUserError = (re: RegExp) => (e: unknown) => e instanceof UserError && re.test(`${e.message} ${e.hint ?? ''}`);

test('mesh api: targets resolve by name, name.mesh, name.<network>, address; mistakes are named', async () => {
  const { api, close } = await setup();
  try {
    assert.deepEqual(api.resolve('web'), { name: 'web', address: '100.64.0.2', family: 4 });
    assert.deepEqual(api.resolve('WEB.mesh'), { name: 'web', address: '100.64.0.2', family: 4 });
    assert.deepEqual(api.resolve('web.home.', 6), { name: 'web', address: 'fd00::2', family: 6 });
    assert.deepEqual(api.resolve('fd00::2'), { name: 'web', address: 'fd00::2', family: 6 });
    assert.deepEqual(api.resolve('100.64.0.99'), { name: null, address: '100.64.0.99', family: 4 });
    assert.throws(() => api.resolve('laptop'), isUserError(/unknown node "laptop" in network "home" known nodes: ghost, web/));
    assert.throws(() => api.resolve('a.mesh'), isUserError(/"a" is this node itself/));
    assert.throws(() => api.resolve('100.64.0.2', 6), isUserError(/is an IPv4 address, not IPv6/));
    assert.throws(() => api.resolve(''), isUserError(/name the node/));
    assert.equal(api.nameOf('FD00::2'), 'web');
    assert.equal(api.nameOf(null), null);
  } finally {
    close();
  }
});

test('mesh api: peers, ping, traceroute and the status block through the routes', async () => {
  const { api, a, mesh, close } = await setup();
  try {
    const routes = api.routes((method, url) => (url === '/v1/other' ? { status: 200, body: { other: method } } : undefined));
    const call = async (method: string, url: string, body: unknown = {}) => (await routes(method, url, body))?.body;
    const before = await call('GET', '/v1/mesh/peers') as MeshPeersReply;
    assert.equal(before.network, 'home');
    assert.deepEqual(before.self, { name: 'a', ipv4: '100.64.0.1', ipv6: 'fd00::1' });
    assert.deepEqual(before.peers.map((p) => p.name), ['web', 'ghost']);
    const web0 = before.peers[0]!;
    assert.equal(web0.online, false);
    assert.equal(web0.endpoint, '198.18.0.2:51820');
    assert.equal(web0.path.kind, 'none', 'nothing came back from it yet');
    assert.equal(web0.path.endpoint, '198.18.0.2:51820');

    const p4 = await call('POST', '/v1/mesh/ping', { target: 'web', count: 2, intervalMs: 10, timeoutMs: 3000 }) as MeshPingReply;
    assert.equal(p4.summary.received, 2, JSON.stringify(p4));
    assert.equal(p4.source, '100.64.0.1');
    assert.equal(p4.name, 'web');
    const p6 = await call('POST', '/v1/mesh/ping', { target: 'web.mesh', count: 1, family: 6 }) as MeshPingReply;
    assert.deepEqual([p6.address, p6.source, p6.summary.received], ['fd00::2', 'fd00::1', 1]);

    const after = await call('GET', '/v1/mesh/peers') as MeshPeersReply;
    const web = after.peers[0]!;
    assert.equal(web.online, true);
    assert.ok(web.rxBytes > 0 && web.txBytes > 0);
    assert.ok(web.latestHandshake > 0 && Math.abs(web.lastReceived - Date.now()) < 60_000);
    assert.equal(after.peers[1]!.online, false);
    // web answers no discovery (a plain WireGuard peer), but its authenticated packets came back
    // from its endpoint: that is a working direct path.
    mesh.disco.tick();
    const direct = (await call('GET', '/v1/mesh/peers') as MeshPeersReply).peers[0]!.path;
    assert.equal(direct.kind, 'direct');
    assert.equal(direct.endpoint, '198.18.0.2:51820');
    assert.equal(direct.transport, 'udp');
    assert.ok(direct.since !== null && Date.parse(direct.since) > 0);

    const tr = await call('POST', '/v1/mesh/traceroute', { target: 'web', timeoutMs: 3000 }) as MeshTraceReply;
    assert.equal(tr.reached, true);
    assert.deepEqual(tr.hops.map((h) => [h.hop, h.address, h.name, h.reached]), [[1, '100.64.0.2', 'web', true]]);

    const status = api.status(() => ({ ...interfaceStatus('mapi-a', a), mesh: { role: 'member' } }))();
    assert.deepEqual(status.mesh, { role: 'member', network: 'home', node: 'a', ipv4: '100.64.0.1', ipv6: 'fd00::1', peers: { online: 1, total: 2 } });
    assert.equal(status.interface, 'mapi-a');

    assert.deepEqual(await call('GET', '/v1/other'), { other: 'GET' });
    assert.equal(await routes('GET', '/v1/nothing', {}), undefined);
  } finally {
    close();
  }
});

test('mesh api: no route, bad fields', async () => {
  const { api, close } = await setup();
  try {
    await assert.rejects(api.ping({ target: 'ghost', count: 1 }), isUserError(/no route to ghost \(100\.64\.0\.66\)/));
    await assert.rejects(api.traceroute({ target: '100.64.0.200' }), isUserError(/no route to 100\.64\.0\.200/));
    await assert.rejects(api.ping({ target: 'web', count: 0 }), isUserError(/"count" must be a whole number from 1/));
    await assert.rejects(api.ping({ target: 'web', family: 5 }), isUserError(/"family" must be 4 or 6/));
    await assert.rejects(api.traceroute({ target: 'web', maxHops: 'x' }), isUserError(/"maxHops"/));
    await assert.rejects(api.ping({}), isUserError(/name the node/));
  } finally {
    close();
  }
});
