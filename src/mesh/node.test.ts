// MeshNode: two engines over a MemoryNetwork, each following a fake map source: peers appear,
// traffic flows, a changed endpoint is applied, a removed node's peer goes away, and a silent
// source (coordinator down) leaves the data plane alone.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Engine } from '../wireguard/index.js';
import { MemoryTun } from '../tun/index.js';
import { MemoryNetwork } from '../transport/index.js';
import { generatePrivateKey, encodeBase64Key } from '../crypto/index.js';
import { Ipv4Repr, emitIpv4, IpProtocol, parseIpv4Address } from '../wire/index.js';
import { MeshNode, MESH_PERSISTENT_KEEPALIVE, type MapSource } from './node.js';
import type { ControlMapNode, ControlNetworkMap } from './control-types.js';

const tick = async (n = 10) => { for (let i = 0; i < n; i++) await new Promise((r) => setImmediate(r)); };

function udp4(src: string, dst: string): Buffer {
  const r = new Ipv4Repr();
  r.src = parseIpv4Address(src)!;
  r.dst = parseIpv4Address(dst)!;
  r.protocol = IpProtocol.Udp;
  r.payloadLength = 8 + 4;
  const pkt = Buffer.alloc(20 + 12);
  emitIpv4(r, pkt, 0);
  pkt.writeUInt16BE(1000, 20);
  pkt.writeUInt16BE(2000, 22);
  pkt.writeUInt16BE(12, 24);
  return pkt;
}

class FakeSource implements MapSource {
  listener: ((m: ControlNetworkMap) => void) | null = null;
  removed: ((m: string) => void) | null = null;
  subscribeMap(onMap: (m: ControlNetworkMap) => void, onRemoved?: (m: string) => void): () => void {
    this.listener = onMap;
    this.removed = onRemoved ?? null;
    return () => { this.listener = null; };
  }
}

async function makeNode(net: MemoryNetwork, address: string, ipv4: string, ipv6: string) {
  const tun = new MemoryTun(`mesh-${address}`);
  const bind = net.createBind(address);
  const engine = new Engine({ device: tun, bind });
  engine.setPrivateKey(generatePrivateKey());
  await engine.setListenPort(51820);
  await engine.up();
  const self: ControlMapNode = {
    id: `node-${address}`, name: `n${address.split('.').pop()}`, publicKey: encodeBase64Key(engine.publicKey!), ipv4, ipv6, tags: [],
    endpoints: [`${address}:51820`], routes: [], exitNode: false, allowedIps: [],
  };
  const source = new FakeSource();
  const mesh = new MeshNode(engine);
  mesh.follow(source);
  return { tun, engine, self, source, mesh };
}

function mapFor(version: number, self: ControlMapNode, peers: ControlMapNode[]): ControlNetworkMap {
  return { version, network: { id: 'net-1', name: 'test', ipv4Pool: '100.64.0.0/10', ulaPrefix: 'fd12:3456:789a::/48' }, self, peers };
}

test('mesh node: peers follow the map; traffic flows; removal cuts a node off; a silent source changes nothing', async () => {
  const net = new MemoryNetwork();
  const a = await makeNode(net, '198.18.0.1', '100.64.0.1', 'fd12:3456:789a::1');
  const b = await makeNode(net, '198.18.0.2', '100.64.0.2', 'fd12:3456:789a::2');
  const c = await makeNode(net, '198.18.0.3', '100.64.0.3', 'fd12:3456:789a::3');
  try {
    // One side first (two simultaneous first initiations cross and both wait for a retry).
    b.source.listener!(mapFor(1, b.self, [a.self]));
    await tick();
    a.source.listener!(mapFor(1, a.self, [b.self]));
    assert.equal(a.engine.listPeers().length, 1);
    const cfg = a.engine.getConfig().peers[0]!;
    assert.deepEqual(cfg.allowedIps.sort(), ['100.64.0.2/32', 'fd12:3456:789a::2/128']);
    assert.equal(cfg.endpoint, '198.18.0.2:51820');
    assert.equal(cfg.persistentKeepalive, MESH_PERSISTENT_KEEPALIVE);

    // Both ends may start a handshake at once (crossing initiations): the packet crosses once
    // one of them completes (the engine retries a crossed one after 500 ms).
    a.tun.inject(udp4('100.64.0.1', '100.64.0.2'));
    await tick();
    for (let i = 0; i < 40 && b.tun.written.length === 0; i++) {
      await new Promise((r) => setTimeout(r, 50));
      if (i % 10 === 9) a.tun.inject(udp4('100.64.0.1', '100.64.0.2'));
      await tick();
    }
    assert.ok(b.tun.takeWritten().length >= 1, `a packet crosses after the handshake ${JSON.stringify([...a.engine.counters.entries()].filter(([, v]) => v))} ${JSON.stringify([...b.engine.counters.entries()].filter(([, v]) => v))}`);

    // C joins: both maps grow; an approved route is included in C's allowed IPs.
    const cWithRoute = { ...c.self, routes: ['198.19.5.0/24'] };
    const r = a.mesh.apply(mapFor(2, a.self, [b.self, cWithRoute]));
    assert.deepEqual(r.added, [c.self.name]);
    assert.deepEqual(r.updated, []);
    assert.ok(a.engine.getConfig().peers.some((p) => p.allowedIps.includes('198.19.5.0/24')));

    // B reports another endpoint: it becomes a candidate and is probed at once; the path that
    // answers stays in use until it stops answering (disco.ts).
    const bMoved = { ...b.self, endpoints: ['198.18.0.22:51820'] };
    const pingsBefore = a.mesh.disco.counters.pingsSent;
    assert.deepEqual(a.mesh.apply(mapFor(3, a.self, [bMoved, cWithRoute])).updated, [b.self.name]);
    const bPaths = a.mesh.peerPaths(b.self.publicKey)!;
    assert.ok(bPaths.candidates.has('198.18.0.22:51820'), 'the new endpoint is a candidate');
    assert.ok(a.mesh.disco.counters.pingsSent > pingsBefore, 'and was pinged');
    assert.equal(a.engine.getConfig().peers.find((p) => p.allowedIps.includes('100.64.0.2/32'))!.endpoint, '198.18.0.2:51820', 'the working path stays');

    // The coordinator goes silent: nothing happens to the data plane; an older map is ignored.
    a.mesh.apply(mapFor(2, a.self, [b.self]));
    assert.equal(a.engine.listPeers().length, 2);

    // B is removed: its peer goes away and its packets no longer route.
    const removed = a.mesh.apply(mapFor(4, a.self, [cWithRoute]));
    assert.deepEqual(removed.removed, [b.self.name]);
    assert.equal(a.engine.listPeers().length, 1);
    const before = a.engine.counters.dropNoRoute;
    a.tun.inject(udp4('100.64.0.1', '100.64.0.2'));
    await tick();
    assert.equal(a.engine.counters.dropNoRoute, before + 1);

    // Told it was removed itself: every peer goes.
    a.source.removed!('removed by the admin');
    assert.equal(a.engine.listPeers().length, 0);
  } finally {
    for (const n of [a, b, c]) { n.mesh.stop(); n.engine.close(); }
  }
});

test('mesh node: unusable map entries are skipped, not thrown', async () => {
  const net = new MemoryNetwork();
  const a = await makeNode(net, '198.18.0.1', '100.64.0.1', 'fd12:3456:789a::1');
  try {
    const bad: ControlMapNode = { ...a.self, id: 'x', name: 'bad', publicKey: 'not-a-key' };
    const odd: ControlMapNode = {
      ...a.self, id: 'y', name: 'odd', publicKey: encodeBase64Key(Buffer.alloc(32, 7)), endpoints: ['nonsense'], allowedIps: ['300.1.1.1/99', '100.64.0.9/32'],
    };
    const r = a.mesh.apply(mapFor(1, a.self, [bad, odd, a.self]));
    assert.deepEqual(r.added, ['odd']);
    const p = a.engine.getConfig().peers[0]!;
    assert.deepEqual(p.allowedIps, ['100.64.0.9/32']);
    assert.equal(p.endpoint, null);
  } finally {
    a.mesh.stop();
    a.engine.close();
  }
});

test('mesh node: the chosen exit node gets 0.0.0.0/0 and ::/0 only while the map says it is one', async () => {
  const net = new MemoryNetwork();
  const engine = new Engine({ device: new MemoryTun('mesh-exit'), bind: net.createBind('198.18.0.1') });
  engine.setPrivateKey(generatePrivateKey());
  await engine.setListenPort(51820);
  await engine.up();
  const self: ControlMapNode = {
    id: 's', name: 'self', publicKey: encodeBase64Key(engine.publicKey!), ipv4: '100.64.0.1', ipv6: 'fd12:3456:789a::1', tags: [],
    endpoints: [], routes: [], exitNode: false, allowedIps: [],
  };
  const peer = (name: string, fill: number, exitNode: boolean): ControlMapNode => ({
    id: name, name, publicKey: encodeBase64Key(Buffer.alloc(32, fill)), ipv4: `100.64.0.${fill}`, ipv6: '', tags: [], endpoints: [],
    routes: [`198.19.${fill}.0/24`], exitNode, allowedIps: [`100.64.0.${fill}/32`, `198.19.${fill}.0/24`],
  });
  const mesh = new MeshNode(engine, { exitNode: 'router' });
  const allowedOf = (ip: string) => engine.getConfig().peers.find((p) => p.allowedIps.includes(ip))!.allowedIps.slice().sort();
  try {
    mesh.apply(mapFor(1, self, [peer('router', 2, false), peer('other', 3, true)]));
    assert.deepEqual(allowedOf('100.64.0.2/32'), ['100.64.0.2/32', '198.19.2.0/24'], 'not approved as exit node yet');
    mesh.apply(mapFor(2, self, [peer('router', 2, true), peer('other', 3, true)]));
    assert.deepEqual(allowedOf('100.64.0.2/32'), ['0.0.0.0/0', '100.64.0.2/32', '198.19.2.0/24', '::/0']);
    assert.ok(!allowedOf('100.64.0.3/32').includes('0.0.0.0/0'), 'an exit node this node did not choose gets no default route');
    mesh.apply(mapFor(3, self, [peer('router', 2, false)]));
    assert.ok(!allowedOf('100.64.0.2/32').includes('0.0.0.0/0'), 'withdrawn with the approval');
  } finally {
    mesh.stop();
    engine.close();
  }
});

test('mesh node: an endpoint inside the overlay or a subnet routed through the mesh is never a path (no tunnel inside itself)', async () => {
  const net = new MemoryNetwork();
  const engine = new Engine({ device: new MemoryTun('mesh-loop'), bind: net.createBind('198.18.0.1') });
  engine.setPrivateKey(generatePrivateKey());
  await engine.setListenPort(51820);
  await engine.up();
  const self: ControlMapNode = {
    id: 's', name: 'self', publicKey: encodeBase64Key(engine.publicKey!), ipv4: '100.64.0.1', ipv6: 'fd12:3456:789a::1', tags: [],
    endpoints: [], routes: [], exitNode: false, allowedIps: [],
  };
  // The router reports its LAN address (inside the subnet it routes) first, then its real one;
  // another peer reports an overlay address.
  const router: ControlMapNode = {
    id: 'r', name: 'router', publicKey: encodeBase64Key(Buffer.alloc(32, 2)), ipv4: '100.64.0.2', ipv6: '', tags: [],
    endpoints: ['198.19.2.1:51820', '198.18.0.2:51820'], routes: ['198.19.2.0/24'], exitNode: false, allowedIps: ['100.64.0.2/32', '198.19.2.0/24'],
  };
  const odd: ControlMapNode = { ...router, id: 'o', name: 'odd', publicKey: encodeBase64Key(Buffer.alloc(32, 3)), ipv4: '100.64.0.3', endpoints: ['100.64.0.3:51820'], routes: [], allowedIps: [] };
  const mesh = new MeshNode(engine);
  try {
    mesh.apply(mapFor(1, self, [router, odd]));
    assert.equal(engine.getPeer(Buffer.alloc(32, 2))!.endpoint!.toString(), '198.18.0.2:51820', 'the routed LAN address is skipped');
    assert.equal(engine.getPeer(Buffer.alloc(32, 3))!.endpoint, null, 'an overlay address is no path');
    assert.ok(mesh.disco.counters.skippedTunnelled >= 2, 'and neither is pinged');
    assert.equal(mesh.isTunnelled('198.19.2.77'), true);
    assert.equal(mesh.isTunnelled('198.18.0.2'), false);
  } finally {
    mesh.stop();
    engine.close();
  }
});
