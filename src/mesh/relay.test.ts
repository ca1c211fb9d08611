// Multi-hop through MeshNode and Relay: three engines over a MemoryNetwork, A and D with no path to
// each other (D's reported endpoint is an address nobody listens on), B reaching both. With the
// map's `via`, A's packets for D go through B sealed with the A-D session: D's device gets them,
// B's device gets nothing and B holds no keypair of that session. A packet whose TTL runs out at B
// comes back to A's device as an ICMP / ICMPv6 Time Exceeded from B's overlay address. Malformed
// frames and frames with nowhere to go are counted, never thrown on. Path states: a peer that
// answers is "direct", one that never does is "failed" after every endpoint was tried.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Engine, ManualClock, TRANSPORT_HEADER_SIZE } from '../wireguard/index.js';
import { MemoryTun } from '../tun/index.js';
import { MemoryNetwork } from '../transport/index.js';
import { generatePrivateKey, encodeBase64Key } from '../crypto/index.js';
import { ipv4Packet, ipv6Packet, udpDatagram } from '../stack/testing.js';
import { MeshNode } from './node.js';
import { RelayEndpoint, type RelayLimits } from './relay.js';
import { RelayFrameType, writeRelayHeader, RELAY_HEADER_SIZE, MAX_RELAY_HOPS } from './relay-frame.js';
import type { ControlMapNode, ControlNetworkMap, PathState } from './control-types.js';

/** A UDP/IPv4 packet with this TTL. */
function u4(src: string, dst: string, sport: number, dport: number, payload: Buffer, ttl = 64): Buffer {
  return ipv4Packet(src, dst, 17, udpDatagram(src, dst, sport, dport, payload), { ttl });
}

function u6(src: string, dst: string, sport: number, dport: number, payload: Buffer, hopLimit = 64): Buffer {
  return ipv6Packet(src, dst, 17, udpDatagram(src, dst, sport, dport, payload), hopLimit);
}

const tick = async (n = 20) => { for (let i = 0; i < n; i++) await new Promise((r) => setImmediate(r)); };

interface N { tun: MemoryTun; engine: Engine; self: ControlMapNode; mesh: MeshNode; states: Record<string, PathState>[] }

async function makeNode(net: MemoryNetwork, name: string, underlay: string, ipv4: string, ipv6: string, reported = underlay, clock?: ManualClock, relayLimits?: Partial<RelayLimits>): Promise<N> {
  const tun = new MemoryTun(`relay-${name}`);
  const engine = new Engine({ device: tun, bind: net.createBind(underlay), ...(clock ? { clock } : {}) });
  engine.setPrivateKey(generatePrivateKey());
  await engine.setListenPort(51820);
  await engine.up();
  const self: ControlMapNode = {
    id: `id-${name}`, name, publicKey: encodeBase64Key(engine.publicKey!), ipv4, ipv6, tags: [],
    endpoints: [`${reported}:51820`], routes: [], exitNode: false, allowedIps: [],
  };
  const states: Record<string, PathState>[] = [];
  const mesh = new MeshNode(engine, { onPathStates: (s) => states.push(s), ...(relayLimits ? { relayLimits } : {}) });
  return { tun, engine, self, mesh, states };
}

function mapFor(self: ControlMapNode, peers: ControlMapNode[]): ControlNetworkMap {
  return { version: 1, network: { id: 'net-1', name: 'test', ipv4Pool: '100.64.0.0/10', ulaPrefix: 'fd00:1:2::/48' }, self, peers };
}

/** A, B, D where D reports an unreachable endpoint; A and D reach each other via B. */
async function triangle() {
  const net = new MemoryNetwork();
  const a = await makeNode(net, 'a', '198.18.0.1', '100.64.0.1', 'fd00:1:2::1');
  const b = await makeNode(net, 'b', '198.18.0.2', '100.64.0.2', 'fd00:1:2::2');
  const d = await makeNode(net, 'd', '198.18.0.4', '100.64.0.4', 'fd00:1:2::4', '198.19.9.9');
  // A cannot reach D's reported endpoint; D does not know A's real one either.
  const aForD = { ...a.self, endpoints: ['198.19.9.1:51820'] };
  a.mesh.apply(mapFor(a.self, [b.self, { ...d.self, via: b.self.id }]));
  // B knows D at its real address (the LAN between them).
  b.mesh.apply({ ...mapFor(b.self, [a.self, { ...d.self, endpoints: ['198.18.0.4:51820'] }]), relayPaths: [['id-a', 'id-b', 'id-d']] });
  d.mesh.apply(mapFor(d.self, [{ ...aForD, via: b.self.id }, { ...b.self }]));
  const close = () => { for (const n of [a, b, d]) { n.mesh.stop(); n.engine.close(); } };
  return { a, b, d, close };
}

test('relay: A reaches D through B end to end; B cannot read it', async () => {
  const { a, b, d, close } = await triangle();
  try {
    const peerD = a.engine.getPeer(d.engine.publicKey!)!;
    assert.ok(peerD.endpoint instanceof RelayEndpoint);
    assert.equal(a.mesh.pathOf(d.self.publicKey)?.kind, 'relay');
    assert.equal(a.mesh.pathOf(d.self.publicKey)?.via, 'b');
    const payload = Buffer.from('end-to-end through b');
    for (let i = 0; i < 20 && d.tun.written.length === 0; i++) {
      a.tun.inject(u4('100.64.0.1', '100.64.0.4', 1000, 2000, payload, 64));
      await tick();
    }
    const got = d.tun.takeWritten();
    assert.ok(got.length >= 1, 'D received the packet');
    assert.ok(got[0]!.includes(payload));
    // And back: D's peer A roamed to "A via B".
    d.tun.inject(u4('100.64.0.4', '100.64.0.1', 2000, 1000, Buffer.from('reply'), 64));
    await tick();
    assert.ok(a.tun.takeWritten().some((p) => p.includes(Buffer.from('reply'))));
    // IPv6 too.
    a.tun.inject(u6('fd00:1:2::1', 'fd00:1:2::4', 1, 2, Buffer.from('v6 through b')));
    await tick();
    assert.ok(d.tun.takeWritten().some((p) => p.includes(Buffer.from('v6 through b'))));
    // A burst goes through in batches, nothing dropped on the way.
    for (let i = 0; i < 300; i++) a.tun.inject(u4('100.64.0.1', '100.64.0.4', 1000, 2000, Buffer.alloc(1200, i & 255), 64));
    for (let i = 0; i < 20 && d.tun.written.length < 300; i++) await tick();
    assert.equal(d.tun.takeWritten().length, 300);
    assert.equal(d.mesh.relay.counters.dropQueueFull, 0);
    assert.equal(b.mesh.relay.counters.dropNoRoute, 0);
    // B moved frames but never delivered anything, and has no keypair of the A-D session.
    assert.ok(b.mesh.relay.counters.forwarded >= 303);
    assert.equal(b.tun.written.length, 0);
    // B's keypairs are those of its own sessions with A and D: the A-D session's index (D's
    // local index, in every A-to-D message) is not among them.
    const bIndices = new Set<number>();
    for (const p of b.engine.listPeers()) for (const kp of [p.previous, p.current, p.next]) if (kp) bIndices.add(kp.localIndex);
    const aToD = peerD.current!;
    assert.ok(aToD, 'A has a session with D');
    assert.equal(bIndices.has(aToD.remoteIndex), false);
    assert.deepEqual(b.engine.listPeers().map((p) => p.publicKey.toString('base64')).sort(), [a.self.publicKey, d.self.publicKey].sort());
    assert.equal(b.engine.counters.dropInvalidInnerPacket, 0);
  } finally {
    close();
  }
});

test('relay: a TTL that runs out at B comes back as Time Exceeded from B (v4 and v6)', async () => {
  const { a, b, d, close } = await triangle();
  try {
    // Establish the A-D session first.
    for (let i = 0; i < 20 && d.tun.written.length === 0; i++) {
      a.tun.inject(u4('100.64.0.1', '100.64.0.4', 1000, 2000, Buffer.from('x'), 64));
      await tick();
    }
    d.tun.takeWritten();
    a.tun.takeWritten();
    a.tun.inject(u4('100.64.0.1', '100.64.0.4', 33434, 33435, Buffer.alloc(24), 1));
    await tick();
    const te = a.tun.takeWritten();
    assert.equal(te.length, 1, 'one ICMP error');
    const p = te[0]!;
    assert.equal(p[9], 1); // ICMP
    assert.equal(p.subarray(12, 16).join('.'), '100.64.0.2'); // from B
    assert.equal(p.subarray(16, 20).join('.'), '100.64.0.1');
    assert.equal(p[20], 11); // time exceeded
    assert.equal(p.readUInt16BE(20 + 8 + 20 + 2), 33435, 'quotes the UDP header');
    assert.equal(d.tun.written.length, 0, 'D never got it');
    assert.equal(b.mesh.relay.counters.timeExceededSent, 1);
    // TTL 2 reaches D.
    a.tun.inject(u4('100.64.0.1', '100.64.0.4', 33434, 33436, Buffer.alloc(24), 2));
    await tick();
    assert.equal(d.tun.takeWritten().length, 1);
    // IPv6 hop limit 1.
    a.tun.inject(u6('fd00:1:2::1', 'fd00:1:2::4', 33434, 33437, Buffer.alloc(8), 1));
    await tick();
    const te6 = a.tun.takeWritten();
    assert.equal(te6.length, 1);
    assert.equal(te6[0]![6], 58);
    assert.equal(te6[0]![40], 3);
    assert.equal(a.mesh.relay.counters.timeExceededDelivered, 2);
  } finally {
    close();
  }
});

test('relay: a packet too big for the relayed path gets ICMP "too big" when it may not be fragmented', async () => {
  const { a, d, close } = await triangle();
  try {
    for (let i = 0; i < 20 && d.tun.written.length === 0; i++) {
      a.tun.inject(u4('100.64.0.1', '100.64.0.4', 1000, 2000, Buffer.from('x'), 64));
      await tick();
    }
    d.tun.takeWritten();
    a.tun.takeWritten();
    const max = a.mesh.relay.maxRelayedPacket();
    assert.equal(max, a.engine.device.mtu - 44);
    const big = ipv4Packet('100.64.0.1', '100.64.0.4', 17, udpDatagram('100.64.0.1', '100.64.0.4', 5, 6, Buffer.alloc(max)), { df: true });
    a.tun.inject(big);
    await tick();
    const err = a.tun.takeWritten();
    assert.equal(err.length, 1);
    assert.deepEqual([err[0]![20], err[0]![21], err[0]!.readUInt16BE(26)], [3, 4, max], 'fragmentation needed, next-hop MTU');
    assert.equal(err[0]!.subarray(12, 16).join('.'), '100.64.0.2', 'from the relay');
    assert.equal(a.engine.counters.dropTooBigForPath, 1);
    assert.equal(d.tun.written.length, 0);
    // Without DF it goes (the underlay fragments it); IPv6 always gets Packet Too Big.
    a.tun.inject(ipv4Packet('100.64.0.1', '100.64.0.4', 17, udpDatagram('100.64.0.1', '100.64.0.4', 5, 6, Buffer.alloc(max)), { df: false }));
    a.tun.inject(u6('fd00:1:2::1', 'fd00:1:2::4', 5, 6, Buffer.alloc(max)));
    await tick();
    assert.equal(d.tun.takeWritten().length, 1);
    const ptb = a.tun.takeWritten();
    assert.equal(ptb.length, 1);
    assert.deepEqual([ptb[0]![40], ptb[0]!.readUInt32BE(44)], [2, max]);
    assert.equal(a.mesh.relay.counters.tooBigSent, 2);
  } finally {
    close();
  }
});

test('relay: a chain of two relays (a -> b -> c -> d): traffic both ways, Time Exceeded from each hop', async () => {
  const net = new MemoryNetwork();
  const a = await makeNode(net, 'a', '198.18.1.1', '100.64.1.1', 'fd00:1:2::11', '198.19.9.1');
  const b = await makeNode(net, 'b', '198.18.1.2', '100.64.1.2', 'fd00:1:2::12');
  const c = await makeNode(net, 'c', '198.18.1.3', '100.64.1.3', 'fd00:1:2::13');
  const d = await makeNode(net, 'd', '198.18.1.4', '100.64.1.4', 'fd00:1:2::14', '198.19.9.4');
  const real = (n: N, ip: string) => ({ ...n.self, endpoints: [`${ip}:51820`] });
  try {
    a.mesh.apply(mapFor(a.self, [b.self, { ...c.self, via: 'id-b' }, { ...d.self, via: 'id-b' }]));
    const relayPaths = [['id-a', 'id-b', 'id-c', 'id-d']];
    b.mesh.apply({ ...mapFor(b.self, [real(a, '198.18.1.1'), c.self, { ...d.self, via: 'id-c' }]), relayPaths });
    c.mesh.apply({ ...mapFor(c.self, [{ ...a.self, via: 'id-b' }, b.self, real(d, '198.18.1.4')]), relayPaths });
    d.mesh.apply(mapFor(d.self, [{ ...a.self, via: 'id-c' }, { ...b.self, via: 'id-c' }, c.self]));
    for (let i = 0; i < 30 && d.tun.written.length === 0; i++) {
      a.tun.inject(u4('100.64.1.1', '100.64.1.4', 1000, 2000, Buffer.from('two relays'), 64));
      await tick();
    }
    assert.ok(d.tun.takeWritten().some((p) => p.includes(Buffer.from('two relays'))), 'd got it');
    d.tun.inject(u4('100.64.1.4', '100.64.1.1', 2000, 1000, Buffer.from('and back'), 64));
    await tick();
    assert.ok(a.tun.takeWritten().some((p) => p.includes(Buffer.from('and back'))), 'a got the reply');
    assert.ok(b.mesh.relay.counters.forwarded > 0 && c.mesh.relay.counters.forwarded > 0);
    // TTL 1 expires at b, TTL 2 at c, TTL 3 reaches d.
    const from: string[] = [];
    for (const ttl of [1, 2]) {
      a.tun.inject(u4('100.64.1.1', '100.64.1.4', 33434, 33434 + ttl, Buffer.alloc(16), ttl));
      await tick();
      const got = a.tun.takeWritten();
      assert.equal(got.length, 1, `an ICMP error for TTL ${ttl}`);
      assert.equal(got[0]![20], 11);
      from.push(got[0]!.subarray(12, 16).join('.'));
    }
    assert.deepEqual(from, ['100.64.1.2', '100.64.1.3']);
    a.tun.inject(u4('100.64.1.1', '100.64.1.4', 33434, 33437, Buffer.alloc(16), 3));
    await tick();
    assert.equal(d.tun.takeWritten().length, 1);
  } finally {
    for (const n of [a, b, c, d]) { n.mesh.stop(); n.engine.close(); }
  }
});

test('relay: malformed frames and frames with nowhere to go are counted', async () => {
  const { a, b, close } = await triangle();
  try {
    const handle = (buf: Buffer, len: number) => b.mesh.relay.handleFrame(b.engine.getPeer(a.engine.publicKey!)!, buf, TRANSPORT_HEADER_SIZE, len);
    const buf = Buffer.alloc(256);
    handle(buf, 5);
    buf[TRANSPORT_HEADER_SIZE] = 9;
    handle(buf, 40);
    assert.equal(b.mesh.relay.counters.dropMalformed, 2);
    // To a node nobody paired with A through B.
    writeRelayHeader(buf, TRANSPORT_HEADER_SIZE, RelayFrameType.Forward, MAX_RELAY_HOPS, 0x64400001, 0x64400063, 40);
    handle(buf, RELAY_HEADER_SIZE + 40);
    assert.equal(b.mesh.relay.counters.dropNotPaired, 1);
    // "From D" but out of A: D's side of the path is D itself.
    writeRelayHeader(buf, TRANSPORT_HEADER_SIZE, RelayFrameType.Forward, MAX_RELAY_HOPS, 0x64400004, 0x64400001, 40);
    handle(buf, RELAY_HEADER_SIZE + 40);
    assert.equal(b.mesh.relay.counters.dropWrongNeighbour, 1);
    assert.equal(b.mesh.relay.counters.forwarded, 0);
    // Random frames never throw.
    for (let i = 0; i < 2000; i++) {
      const len = 1 + Math.floor(Math.random() * 200);
      const r = Buffer.alloc(TRANSPORT_HEADER_SIZE + len + 64);
      for (let j = 0; j < len; j++) r[TRANSPORT_HEADER_SIZE + j] = Math.floor(Math.random() * 256);
      r[TRANSPORT_HEADER_SIZE] = Math.random() < 0.5 ? 1 : 2;
      handle(r, len);
    }
    await tick();
  } finally {
    close();
  }
});

test('relay: each source node has a relay budget; frames over it are dropped and counted per node', async () => {
  const clock = new ManualClock();
  const net = new MemoryNetwork();
  const a = await makeNode(net, 'a', '198.18.3.1', '100.64.3.1', 'fd00:1:2::31', '198.19.9.1', clock);
  const b = await makeNode(net, 'b', '198.18.3.2', '100.64.3.2', 'fd00:1:2::32', '198.18.3.2', clock, { bytesPerSecond: 2_000, burstBytes: 6_000 });
  const d = await makeNode(net, 'd', '198.18.3.4', '100.64.3.4', 'fd00:1:2::34', '198.19.9.4', clock);
  const real = (n: N, ip: string) => ({ ...n.self, endpoints: [`${ip}:51820`] });
  try {
    a.mesh.apply(mapFor(a.self, [b.self, { ...d.self, via: 'id-b' }]));
    b.mesh.apply({ ...mapFor(b.self, [real(a, '198.18.3.1'), real(d, '198.18.3.4')]), relayPaths: [['id-a', 'id-b', 'id-d']] });
    d.mesh.apply(mapFor(d.self, [{ ...a.self, via: 'id-b' }, b.self]));
    for (let i = 0; i < 30 && d.tun.written.length === 0; i++) {
      clock.advance(600); // handshake retries (a crossed one is resent after 500 ms)
      a.tun.inject(u4('100.64.3.1', '100.64.3.4', 1000, 2000, Buffer.from('first'), 64));
      await tick();
    }
    assert.ok(d.tun.takeWritten().length >= 1, 'the pair is relayed');
    clock.advance(10_000);
    // 20 packets of ~1.2 kB at once: the 6 kB burst lets about four through.
    for (let i = 0; i < 20; i++) a.tun.inject(u4('100.64.3.1', '100.64.3.4', 1000, 2000, Buffer.alloc(1_150, i), 64));
    await tick();
    const got = d.tun.takeWritten().length;
    assert.ok(got >= 3 && got <= 5, `${got} of 20 through`);
    assert.equal(b.mesh.relay.counters.dropRateLimited, 20 - got);
    const forA = b.mesh.relayedByNode().find((r) => r.node === 'a')!;
    assert.equal(forA.dropped, 20 - got);
    assert.ok(forA.bytes > 0 && forA.frames >= got);
    // A second later the budget has grown by 2 kB (plus what the burst left): two or three more.
    clock.advance(1_000);
    const dropped = b.mesh.relay.counters.dropRateLimited;
    for (let i = 0; i < 5; i++) a.tun.inject(u4('100.64.3.1', '100.64.3.4', 1000, 2000, Buffer.alloc(900, i), 64));
    await tick();
    const more = d.tun.takeWritten().length;
    assert.ok(more >= 2 && more <= 3, `${more} of 5 through`);
    assert.equal(b.mesh.relay.counters.dropRateLimited - dropped, 5 - more);
  } finally {
    for (const n of [a, b, d]) { n.mesh.stop(); n.engine.close(); }
  }
});

/** Sends `payload` to `to` as a relay frame (source, dest) inside `from`'s session with it. */
function sendFrame(from: N, to: N, source: string, dest: string, payload: Buffer): boolean {
  const buf = Buffer.alloc(TRANSPORT_HEADER_SIZE + RELAY_HEADER_SIZE + payload.length + 64);
  const addr = (t: string) => t.split('.').reduce((x, o) => x * 256 + Number(o), 0);
  writeRelayHeader(buf, TRANSPORT_HEADER_SIZE, RelayFrameType.Forward, MAX_RELAY_HOPS, addr(source), addr(dest), payload.length);
  payload.copy(buf, TRANSPORT_HEADER_SIZE + RELAY_HEADER_SIZE);
  return from.engine.sendFrame(from.engine.getPeer(to.engine.publicKey!)!, buf, RELAY_HEADER_SIZE + payload.length);
}

test('relay: no open relay: only paired nodes, only from the side of the source, only sessions of the claimed source', async () => {
  const net = new MemoryNetwork();
  const a = await makeNode(net, 'a', '198.18.2.1', '100.64.2.1', 'fd00:1:2::21', '198.19.9.1');
  const b = await makeNode(net, 'b', '198.18.2.2', '100.64.2.2', 'fd00:1:2::22');
  const d = await makeNode(net, 'd', '198.18.2.4', '100.64.2.4', 'fd00:1:2::24', '198.19.9.4');
  const e = await makeNode(net, 'e', '198.18.2.5', '100.64.2.5', 'fd00:1:2::25');
  const real = (n: N, ip: string) => ({ ...n.self, endpoints: [`${ip}:51820`] });
  try {
    // A and D are paired through B; E is a member next to B and D, paired with nobody.
    a.mesh.apply(mapFor(a.self, [b.self, { ...d.self, via: 'id-b' }, e.self]));
    b.mesh.apply({ ...mapFor(b.self, [real(a, '198.18.2.1'), real(d, '198.18.2.4'), e.self]), relayPaths: [['id-a', 'id-b', 'id-d']] });
    d.mesh.apply(mapFor(d.self, [{ ...a.self, via: 'id-b' }, b.self, e.self]));
    e.mesh.apply(mapFor(e.self, [b.self, real(d, '198.18.2.4')]));
    // The paired pair works.
    for (let i = 0; i < 30 && d.tun.written.length === 0; i++) {
      a.tun.inject(u4('100.64.2.1', '100.64.2.4', 1000, 2000, Buffer.from('paired'), 64));
      await tick();
    }
    assert.ok(d.tun.takeWritten().some((p) => p.includes(Buffer.from('paired'))));
    // Sessions E-B and E-D and B-D up (frames are sent once a session exists).
    for (let i = 0; i < 30 && !(e.engine.getPeer(b.engine.publicKey!)?.current && e.engine.getPeer(d.engine.publicKey!)?.current && b.engine.getPeer(d.engine.publicKey!)?.current); i++) {
      e.engine.sendKeepalive(e.engine.getPeer(b.engine.publicKey!)!);
      e.engine.sendKeepalive(e.engine.getPeer(d.engine.publicKey!)!);
      b.engine.sendKeepalive(b.engine.getPeer(d.engine.publicKey!)!);
      await tick();
    }
    const forwarded = b.mesh.relay.counters.forwarded;
    const delivered = d.mesh.relay.counters.delivered;
    const junk = Buffer.alloc(48, 7);
    // E asks B to relay to D: not paired.
    assert.ok(sendFrame(e, b, '100.64.2.5', '100.64.2.4', junk));
    // E forges A as the source: B hears it from E, not from A's side.
    assert.ok(sendFrame(e, b, '100.64.2.1', '100.64.2.4', junk));
    // E sends D a frame "from A" itself: D reaches A through B, not E.
    assert.ok(sendFrame(e, d, '100.64.2.1', '100.64.2.4', junk));
    await tick();
    assert.equal(b.mesh.relay.counters.dropNotPaired, 1);
    assert.equal(b.mesh.relay.counters.dropWrongNeighbour, 1);
    assert.equal(d.mesh.relay.counters.dropUnexpectedSource, 1);
    assert.equal(b.mesh.relay.counters.forwarded, forwarded, 'B relayed none of them');
    assert.equal(d.mesh.relay.counters.delivered, delivered, 'D took none of them');
    // B, the relay, wraps a datagram of its own session with D as if it came from A: D opens it
    // with the B-D session, which is not A's, and refuses it.
    const peerDatB = b.engine.getPeer(d.engine.publicKey!)!;
    const realEndpoint = peerDatB.endpoint;
    let captured: Buffer | null = null;
    peerDatB.endpoint = {
      family: 4, address: '0.0.0.0', port: 0, toString: () => 'capture',
      send: (bufs: Buffer[], offsets: Uint32Array, sizes: Uint32Array) => { captured = Buffer.from(bufs[0]!.subarray(offsets[0]!, offsets[0]! + sizes[0]!)); return 1; },
    };
    b.tun.inject(u4('100.64.2.2', '100.64.2.4', 1, 2, Buffer.from('b says it is a'), 64));
    await tick();
    peerDatB.endpoint = realEndpoint;
    assert.ok(captured, 'captured a B-D datagram');
    const mismatch = d.engine.counters.dropEndpointMismatch;
    assert.ok(sendFrame(b, d, '100.64.2.1', '100.64.2.4', captured));
    await tick();
    assert.equal(d.engine.counters.dropEndpointMismatch, mismatch + 1);
    assert.equal(d.tun.takeWritten().some((p) => p.includes(Buffer.from('b says it is a'))), false, 'not delivered');
    assert.equal(d.engine.getPeer(b.engine.publicKey!)!.endpoint!.toString(), '198.18.2.2:51820', 'B\'s endpoint at D did not roam');
    // A and D still talk.
    a.tun.inject(u4('100.64.2.1', '100.64.2.4', 1000, 2000, Buffer.from('still paired'), 64));
    await tick();
    assert.ok(d.tun.takeWritten().some((p) => p.includes(Buffer.from('still paired'))));
  } finally {
    for (const n of [a, b, d, e]) { n.mesh.stop(); n.engine.close(); }
  }
});

test('paths: a peer that answers discovery pings is direct; one that never does fails after a sweep', async () => {
  const clock = new ManualClock();
  const net = new MemoryNetwork();
  const a = await makeNode(net, 'a', '198.18.0.1', '100.64.0.1', 'fd00:1:2::1', '198.18.0.1', clock);
  const b = await makeNode(net, 'b', '198.18.0.2', '100.64.0.2', 'fd00:1:2::2', '198.18.0.2', clock);
  const gone = { ...b.self, id: 'id-gone', name: 'gone', publicKey: encodeBase64Key(Buffer.from(generatePrivateKey().map((x, i) => (x + i) & 255))), ipv4: '100.64.0.9', endpoints: ['198.19.0.9:51820', '198.19.0.10:51820'] };
  try {
    b.mesh.apply(mapFor(b.self, [a.self]));
    a.mesh.apply(mapFor(a.self, [b.self, gone]));
    await tick();
    a.mesh.checkPaths();
    assert.equal(a.mesh.pathStates()['id-b'], 'direct', 'b answered the first ping');
    const pb = a.mesh.pathOf(b.self.publicKey)!;
    assert.equal(pb.kind, 'direct');
    assert.equal(pb.endpoint, '198.18.0.2:51820');
    assert.equal(pb.transport, 'udp');
    assert.equal(a.mesh.pathStates()['id-gone'], undefined, 'still trying');
    const goneKey = Buffer.from(gone.publicKey, 'base64');
    assert.equal(a.engine.getPeer(goneKey)!.endpoint!.toString(), '198.19.0.9:51820', 'handshakes go to the first candidate meanwhile');
    assert.equal(a.mesh.pathOf(gone.publicKey)!.kind, 'none');
    for (let t = 0; t < 6_000; t += 250) {
      clock.advance(250);
      a.mesh.disco.tick();
      await tick(2);
    }
    a.mesh.checkPaths();
    assert.equal(a.mesh.pathStates()['id-gone'], 'failed', 'a whole sweep without an answer');
    assert.deepEqual(a.states.at(-1), { 'id-b': 'direct', 'id-gone': 'failed' });
    // Both of gone's candidates got every ping of the sweep.
    const goneTried = [...a.mesh.peerPaths(gone.publicKey)!.candidates.values()].map((c) => c.text).sort();
    assert.deepEqual(goneTried, ['198.19.0.10:51820', '198.19.0.9:51820']);
    assert.equal(a.mesh.pathStates()['id-b'], 'direct');
  } finally {
    for (const n of [a, b]) { n.mesh.stop(); n.engine.close(); }
  }
});
