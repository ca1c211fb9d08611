// The engine's packet filter hook with the mesh ACL filter: two engines over memory devices, node B
// enforcing "only TCP/22 from tag ops" (node A carries tag ops) on what it receives. Checks the
// verdicts end to end (delivered packets, drops counted as dropFilteredInbound), that replies to
// allowed flows and to B's own flows pass, and that no filter means every packet passes.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Engine, parseCidr, type PacketFilter } from '../src/wireguard/index.js';
import { MemoryTun } from '../src/tun/index.js';
import { MemoryNetwork, type MemoryBind } from '../src/transport/index.js';
import { generatePrivateKey } from '../src/crypto/index.js';
import { ipv4Packet, ipv6Packet, udpPacket, echoPacket } from '../src/stack/testing.js';
import { AclFilter, compilePolicy, parsePolicy, type AclNode } from '../src/mesh/acl/index.js';

const SYN = 0x02, ACK = 0x10;
const A4 = '100.64.0.1', B4 = '100.64.0.2', A6 = 'fd00::1', B6 = 'fd00::2';

const tick = async (n = 10) => { for (let i = 0; i < n; i++) await new Promise((r) => setImmediate(r)); };

/** A TCP segment (checksum left zero: neither the engine nor the filter checks it). */
function tcp(src: string, dst: string, sport: number, dport: number, flags: number): Buffer {
  const h = Buffer.alloc(20);
  h.writeUInt16BE(sport, 0);
  h.writeUInt16BE(dport, 2);
  h.writeUInt32BE(1000, 4);
  h[12] = 5 << 4;
  h[13] = flags;
  h.writeUInt16BE(65535, 14);
  return src.includes(':') ? ipv6Packet(src, dst, 6, h) : ipv4Packet(src, dst, 6, h);
}

interface Node { engine: Engine; tun: MemoryTun; bind: MemoryBind }

async function makeNode(net: MemoryNetwork, address: string): Promise<Node> {
  const tun = new MemoryTun(`acl-${address}`);
  const bind = net.createBind(address);
  const engine = new Engine({ device: tun, bind });
  engine.setPrivateKey(generatePrivateKey());
  await engine.setListenPort(51820);
  await engine.up();
  return { engine, tun, bind };
}

const NODES: AclNode[] = [
  { name: 'node-a', addresses: [A4, A6], tags: ['ops'] },
  { name: 'node-b', addresses: [B4, B6] },
];
const SSH_FROM_OPS = `{
  "tags": ["tag:ops"],
  "acls": [ { "src": ["tag:ops"], "dst": ["*:22"], "proto": "tcp" } ],
}`;

/** A and B peered with each other (each knows the other's endpoint); B filters with `filter`. */
async function pair(filter: PacketFilter | null) {
  const net = new MemoryNetwork();
  const a = await makeNode(net, '198.18.0.1');
  const b = await makeNode(net, '198.18.0.2');
  const pb = a.engine.addPeer(b.engine.publicKey!);
  for (const c of [`${B4}/32`, `${B6}/128`]) a.engine.allowedIps.insertCidr(parseCidr(c), pb);
  a.engine.setEndpoint(pb, a.bind.parseEndpoint('198.18.0.2:51820'));
  const pa = b.engine.addPeer(a.engine.publicKey!);
  for (const c of [`${A4}/32`, `${A6}/128`]) b.engine.allowedIps.insertCidr(parseCidr(c), pa);
  b.engine.setEndpoint(pa, b.bind.parseEndpoint('198.18.0.1:51820'));
  b.engine.setPacketFilter(filter);
  const close = () => { a.engine.close(); b.engine.close(); };
  /** Injects `pkt` into `from`'s device; returns what `to`'s device got. */
  const send = async (from: Node, to: Node, pkt: Buffer): Promise<Buffer[]> => {
    from.tun.inject(pkt);
    await tick();
    return to.tun.takeWritten();
  };
  return { a, b, send, close };
}

function aclPair() {
  const acl = new AclFilter({ policy: compilePolicy(parsePolicy(SSH_FROM_OPS, 'test.hujson'), NODES) });
  return { acl, p: pair(acl) };
}

test('engine-acl: AclFilter is a PacketFilter', () => {
  const f: PacketFilter = new AclFilter();
  assert.equal(typeof f.inbound, 'function');
});

test('engine-acl: TCP/22 from ops reaches B, its SYN-ACK comes back; port 80 is dropped and counted', async () => {
  const { acl, p } = aclPair();
  const { a, b, send, close } = await p;
  try {
    const syn = tcp(A4, B4, 40000, 22, SYN);
    const got = await send(a, b, syn);
    assert.equal(got.length, 1, 'the SSH SYN is delivered');
    assert.deepEqual(got[0], syn);
    assert.equal(b.engine.counters.dropFilteredInbound, 0);

    const synAck = tcp(B4, A4, 22, 40000, SYN | ACK);
    const back = await send(b, a, synAck);
    assert.equal(back.length, 1, 'the reply goes back to A');
    assert.deepEqual(back[0], synAck);
    const ack = tcp(A4, B4, 40000, 22, ACK);
    assert.equal((await send(a, b, ack)).length, 1, 'the rest of the connection passes');

    const web = await send(a, b, tcp(A4, B4, 40001, 80, SYN));
    assert.equal(web.length, 0, 'a SYN to port 80 is dropped');
    assert.equal(b.engine.counters.dropFilteredInbound, 1);
    assert.equal(b.engine.counters.dropFilteredOutbound, 0, 'B never blocks what it sends');
    assert.ok(acl.counters.inDroppedNoRule >= 1);

    // IPv6 too.
    assert.equal((await send(a, b, tcp(A6, B6, 40002, 22, SYN))).length, 1);
    assert.equal((await send(a, b, tcp(A6, B6, 40003, 443, SYN))).length, 0);
    assert.equal(b.engine.counters.dropFilteredInbound, 2);
  } finally {
    close();
  }
});

test('engine-acl: UDP and ICMP from A are blocked at B', async () => {
  const { p } = aclPair();
  const { a, b, send, close } = await p;
  try {
    assert.equal((await send(a, b, udpPacket(A4, B4, 5000, 53, Buffer.from('q')))).length, 0);
    assert.equal((await send(a, b, udpPacket(A4, B4, 5000, 22, Buffer.from('q')))).length, 0, 'the rule is TCP only');
    assert.equal((await send(a, b, echoPacket(A4, B4, 7, 1, Buffer.alloc(32)))).length, 0);
    assert.equal((await send(a, b, echoPacket(A6, B6, 7, 1, Buffer.alloc(32)))).length, 0);
    assert.equal(b.engine.counters.dropFilteredInbound, 4);
    assert.equal(a.engine.counters.totalDrops(), 0);
  } finally {
    close();
  }
});

test('engine-acl: flows B starts are allowed out and their replies pass back in', async () => {
  const { p } = aclPair();
  const { a, b, send, close } = await p;
  try {
    // B to A over TCP/80: B's SYN goes out (nothing blocks B's sends), A's SYN-ACK comes back.
    const syn = tcp(B4, A4, 50000, 80, SYN);
    assert.deepEqual(await send(b, a, syn), [syn]);
    const synAck = tcp(A4, B4, 80, 50000, SYN | ACK);
    assert.deepEqual(await send(a, b, synAck), [synAck], 'the reply to B\'s flow passes');
    // B pings A; the echo reply passes.
    const req = echoPacket(B4, A4, 9, 1, Buffer.alloc(16));
    assert.equal((await send(b, a, req)).length, 1);
    const rep = echoPacket(A4, B4, 9, 1, Buffer.alloc(16), true);
    assert.equal((await send(a, b, rep)).length, 1);
    // UDP query from B, answer from A.
    assert.equal((await send(b, a, udpPacket(B4, A4, 6000, 53, Buffer.from('q')))).length, 1);
    assert.equal((await send(a, b, udpPacket(A4, B4, 53, 6000, Buffer.from('r')))).length, 1);
    assert.equal(b.engine.counters.dropFilteredInbound, 0);
    // A reusing the tuple to start its own connection is judged as new (and refused).
    assert.equal((await send(a, b, tcp(A4, B4, 80, 50000, SYN))).length, 0);
    assert.equal(b.engine.counters.dropFilteredInbound, 1);
  } finally {
    close();
  }
});

test('engine-acl: an outbound false from the filter drops before sending, counted', async () => {
  let inbound = 0;
  const denyOut: PacketFilter = { outbound: () => false, inbound: () => { inbound++; return true; } };
  const { a, b, send, close } = await pair(denyOut);
  try {
    assert.equal((await send(a, b, tcp(A4, B4, 1, 2, SYN))).length, 1, 'inbound allowed');
    assert.equal(inbound, 1);
    assert.equal((await send(b, a, tcp(B4, A4, 2, 1, SYN | ACK))).length, 0);
    assert.equal(b.engine.counters.dropFilteredOutbound, 1);
    b.engine.setPacketFilter(null);
    assert.equal(b.engine.packetFilter, null);
    assert.equal((await send(b, a, tcp(B4, A4, 2, 1, SYN | ACK))).length, 1, 'removing the filter lets it through');
  } finally {
    close();
  }
});

test('engine-acl: no filter: everything passes, nothing counted as filtered', async () => {
  const { a, b, send, close } = await pair(null);
  try {
    assert.equal((await send(a, b, tcp(A4, B4, 40001, 80, SYN))).length, 1);
    assert.equal((await send(a, b, udpPacket(A4, B4, 5000, 53, Buffer.from('q')))).length, 1);
    assert.equal((await send(a, b, echoPacket(A6, B6, 7, 1, Buffer.alloc(32)))).length, 1);
    assert.equal((await send(b, a, echoPacket(B4, A4, 7, 1, Buffer.alloc(32)))).length, 1);
    assert.equal(a.engine.counters.totalDrops() + b.engine.counters.totalDrops(), 0);
  } finally {
    close();
  }
});
