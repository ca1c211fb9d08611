// Exceptions never kill the data plane (issue 9, item 4), and bytes from a peer never crash the
// relay or the userspace stack:
// - a packet filter, a frame handler, an inbound tap, an endpoint and a device that throw: the
//   packet is dropped and counted (dropHandlerError), the engine keeps moving the next packets;
// - fuzz: random and mutated plaintexts sealed by a real peer's session reach a real Engine with
//   a MeshNode's relay (frames, sent with sendFrame) and a UserspaceStack (IP packets, read from
//   the peer's device); nothing throws, and every packet the stack gets is counted by it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Engine, TRANSPORT_HEADER_SIZE, parseCidr, type Peer } from '../src/wireguard/index.js';
import { MemoryTun } from '../src/tun/index.js';
import { MemoryNetwork } from '../src/transport/index.js';
import { generatePrivateKey, encodeBase64Key } from '../src/crypto/index.js';
import { UserspaceStack } from '../src/stack/index.js';
import { ipv4Packet, ipv6Packet, udpDatagram } from '../src/stack/testing.js';
import { MeshNode, RelayFrameType, writeRelayHeader, RELAY_HEADER_SIZE, type ControlMapNode } from '../src/mesh/index.js';
import { internetChecksum, pseudoHeaderSumV4, pseudoHeaderSumV6, checksumAdd, checksumFinish } from '../src/wire/index.js';
import { Prng, mutate, fuzzIterations, readHexPackets } from '../src/wire/fuzz-harness.js';

const tick = async (n = 6) => { for (let i = 0; i < n; i++) await new Promise((r) => setImmediate(r)); };

async function engineOn(net: MemoryNetwork, underlay: string, device: MemoryTun | UserspaceStack): Promise<Engine> {
  const engine = new Engine({ device, bind: net.createBind(underlay) });
  engine.setPrivateKey(generatePrivateKey());
  await engine.setListenPort(51820);
  await engine.up();
  return engine;
}

function pair(a: Engine, aAddr: string, b: Engine, bAddr: string, aAllowedAtB: string[], bAllowedAtA: string[]): { pb: Peer; pa: Peer } {
  const pb = a.addPeer(b.publicKey!);
  for (const c of bAllowedAtA) a.allowedIps.insertCidr(parseCidr(c), pb);
  a.setEndpoint(pb, a.bind.parseEndpoint(`${bAddr}:51820`));
  const pa = b.addPeer(a.publicKey!);
  for (const c of aAllowedAtB) b.allowedIps.insertCidr(parseCidr(c), pa);
  b.setEndpoint(pa, b.bind.parseEndpoint(`${aAddr}:51820`));
  return { pb, pa };
}

/** Recomputes the IPv4 header checksum and a TCP / UDP / ICMP checksum of the packet at buf[0,
 * len), where the headers are plausible enough to find them. */
function fixChecksums(buf: Buffer, len: number): void {
  let proto: number;
  let off: number;
  let pseudo = 0;
  if (buf[0]! >> 4 === 4) {
    const ihl = (buf[0]! & 15) * 4;
    if (ihl < 20 || ihl > len) return;
    buf.writeUInt16BE(0, 10);
    buf.writeUInt16BE(internetChecksum(buf, 0, ihl), 10);
    proto = buf[9]!;
    off = ihl;
    if ((buf.readUInt16BE(6) & 0x3fff) !== 0) return; // a fragment: no transport checksum here
    if (proto !== 1) pseudo = pseudoHeaderSumV4(buf.readUInt32BE(12), buf.readUInt32BE(16), proto, len - off);
  } else {
    proto = buf[6]!;
    off = 40;
    if (proto === 58 || proto === 6 || proto === 17) pseudo = pseudoHeaderSumV6(buf, 8, buf, 24, proto, len - off);
  }
  const at = proto === 6 ? 16 : proto === 17 ? 6 : proto === 1 || proto === 58 ? 2 : -1;
  if (at < 0 || off + at + 2 > len) return;
  buf.writeUInt16BE(0, off + at);
  buf.writeUInt16BE(checksumFinish(checksumAdd(pseudo, buf, off, len - off)), off + at);
}

const ping4 = (src: string, dst: string, text: string) => ipv4Packet(src, dst, 17, udpDatagram(src, dst, 1000, 2000, Buffer.from(text)));

test('engine: a throwing filter, frame handler, tap, endpoint or device drops that packet, counted; the engine goes on', async () => {
  const net = new MemoryNetwork();
  const ta = new MemoryTun('robust-a');
  const tb = new MemoryTun('robust-b');
  const a = await engineOn(net, '198.18.3.1', ta);
  const b = await engineOn(net, '198.18.3.2', tb);
  const { pb } = pair(a, '198.18.3.1', b, '198.18.3.2', ['100.64.3.1/32'], ['100.64.3.2/32']);
  const delivered = (text: string) => tb.takeWritten().some((p) => p.includes(Buffer.from(text)));
  try {
    ta.inject(ping4('100.64.3.1', '100.64.3.2', 'first'));
    for (let i = 0; i < 20 && tb.written.length === 0; i++) await tick();
    assert.ok(delivered('first'));

    // Inbound filter throws once.
    let throwIn = 1;
    b.setPacketFilter({ inbound: () => { if (throwIn-- > 0) throw new Error('inbound filter bug'); return true; }, outbound: () => true });
    ta.inject(ping4('100.64.3.1', '100.64.3.2', 'in-throws'));
    ta.inject(ping4('100.64.3.1', '100.64.3.2', 'in-after'));
    await tick();
    const w = tb.takeWritten();
    assert.equal(w.some((p) => p.includes(Buffer.from('in-throws'))), false);
    assert.ok(w.some((p) => p.includes(Buffer.from('in-after'))), 'the next packet passes');
    assert.equal(b.counters.dropHandlerError, 1);

    // Outbound filter throws once.
    let throwOut = 1;
    a.setPacketFilter({ inbound: () => true, outbound: () => { if (throwOut-- > 0) throw new Error('outbound filter bug'); return true; } });
    ta.inject(ping4('100.64.3.1', '100.64.3.2', 'out-throws'));
    ta.inject(ping4('100.64.3.1', '100.64.3.2', 'out-after'));
    await tick();
    const w2 = tb.takeWritten();
    assert.equal(w2.some((p) => p.includes(Buffer.from('out-throws'))), false);
    assert.ok(w2.some((p) => p.includes(Buffer.from('out-after'))));
    assert.equal(a.counters.dropHandlerError, 1);
    a.setPacketFilter(null);
    b.setPacketFilter(null);

    // A frame handler that throws.
    b.setFrameHandler(() => { throw new Error('frame handler bug'); });
    const frame = Buffer.alloc(TRANSPORT_HEADER_SIZE + 64);
    frame[TRANSPORT_HEADER_SIZE] = 0x01;
    assert.ok(a.sendFrame(pb, frame, 20));
    ta.inject(ping4('100.64.3.1', '100.64.3.2', 'after-frame'));
    await tick();
    assert.equal(b.counters.dropHandlerError, 2);
    assert.ok(delivered('after-frame'));
    b.setFrameHandler(null);

    // An inbound tap that throws.
    let throwTap = 1;
    b.setInboundTap(() => { if (throwTap-- > 0) throw new Error('tap bug'); });
    ta.inject(ping4('100.64.3.1', '100.64.3.2', 'tap-throws'));
    ta.inject(ping4('100.64.3.1', '100.64.3.2', 'tap-after'));
    await tick();
    const w3 = tb.takeWritten();
    assert.equal(w3.some((p) => p.includes(Buffer.from('tap-throws'))), false);
    assert.ok(w3.some((p) => p.includes(Buffer.from('tap-after'))));
    assert.equal(b.counters.dropHandlerError, 3);
    b.setInboundTap(null);

    // The device throws on write: that batch is lost, the next one is written.
    const realWrite = tb.writeBatch.bind(tb);
    let throwWrite = 1;
    tb.writeBatch = (bufs, offsets, sizes, count) => { if (throwWrite-- > 0) throw new Error('device bug'); return realWrite(bufs, offsets, sizes, count); };
    ta.inject(ping4('100.64.3.1', '100.64.3.2', 'dev-throws'));
    await tick();
    ta.inject(ping4('100.64.3.1', '100.64.3.2', 'dev-after'));
    await tick();
    assert.ok(delivered('dev-after'));
    assert.equal(b.counters.dropHandlerError, 4);

    // An endpoint whose send throws (a relay endpoint with a bug).
    const realEndpoint = pb.endpoint;
    pb.endpoint = { family: 4, address: '0.0.0.0', port: 0, toString: () => 'broken', send: () => { throw new Error('endpoint bug'); } };
    ta.inject(ping4('100.64.3.1', '100.64.3.2', 'ep-throws'));
    await tick();
    assert.equal(a.counters.dropHandlerError, 2);
    pb.endpoint = realEndpoint;
    ta.inject(ping4('100.64.3.1', '100.64.3.2', 'ep-after'));
    await tick();
    assert.ok(delivered('ep-after'));
    assert.ok(a.isRunning && b.isRunning);
  } finally {
    a.close();
    b.close();
  }
});

test('fuzz: random and mutated relay frames from a real peer never throw at a relay; all are counted', async () => {
  const net = new MemoryNetwork();
  const ta = new MemoryTun('fuzz-frame-a');
  const tb = new MemoryTun('fuzz-frame-b');
  const a = await engineOn(net, '198.18.4.1', ta);
  const b = await engineOn(net, '198.18.4.2', tb);
  const node = (e: Engine, name: string, ip: string, underlay: string): ControlMapNode => ({
    id: `node_${name.repeat(16)}`, name, publicKey: encodeBase64Key(e.publicKey!), ipv4: ip, ipv6: `fd00:4::${name === 'a' ? 1 : 2}`,
    tags: [], endpoints: [`${underlay}:51820`], routes: [], exitNode: false, allowedIps: [],
  });
  const na = node(a, 'a', '100.64.4.1', '198.18.4.1');
  const nb = node(b, 'b', '100.64.4.2', '198.18.4.2');
  const network = { id: 'net_0000000000000000', name: 'fuzz', ipv4Pool: '100.64.0.0/10', ulaPrefix: 'fd00:4::/48' };
  const ma = new MeshNode(a);
  const mb = new MeshNode(b);
  ma.apply({ version: 1, network, self: na, peers: [nb] });
  // b relays between a and a node behind it (so some frames take the forwarding path).
  const far = { ...node(a, 'c', '100.64.4.3', '198.18.4.3'), publicKey: encodeBase64Key(Buffer.alloc(32, 9)) };
  mb.apply({ version: 1, network, self: nb, peers: [na, far], relayPaths: [[na.id, nb.id, far.id]] });
  try {
    const pb = a.getPeer(b.publicKey!)!;
    ta.inject(ping4('100.64.4.1', '100.64.4.2', 'hello'));
    for (let i = 0; i < 20 && !pb.current; i++) await tick();
    assert.ok(pb.current, 'a-b session up');
    tb.takeWritten();
    // Seeds: well-formed Forward and TimeExceeded frames between a, b and c.
    const seeds: Buffer[] = [];
    for (const [type, src, dst] of [[RelayFrameType.Forward, 0x64400401, 0x64400403], [RelayFrameType.Forward, 0x64400401, 0x64400402], [RelayFrameType.TimeExceeded, 0x64400401, 0x64400402]] as const) {
      const f = Buffer.alloc(RELAY_HEADER_SIZE + 48, 0);
      writeRelayHeader(f, 0, type, 8, src, dst, 48);
      f.writeUInt32LE(4, RELAY_HEADER_SIZE);
      seeds.push(f);
    }
    const rng = new Prng(99);
    const n = fuzzIterations(20_000);
    const scratch = Buffer.alloc(400);
    const buf = Buffer.alloc(TRANSPORT_HEADER_SIZE + 512);
    const framesBefore = b.counters.rxFrames;
    let sent = 0;
    for (let i = 0; i < n; i++) {
      let len: number;
      if (rng.int(4) === 0) {
        len = 1 + rng.int(300);
        for (let j = 0; j < len; j++) scratch[j] = rng.int(256);
      } else {
        len = mutate(rng, seeds[rng.int(seeds.length)]!, scratch);
      }
      if (len === 0) continue;
      scratch[0] = scratch[0]! & 0x0f; // a frame: high nibble 0
      scratch.copy(buf, TRANSPORT_HEADER_SIZE, 0, len);
      if (a.sendFrame(pb, buf, len)) sent++;
      if (i % 128 === 127) await tick(2);
    }
    await tick(20);
    assert.equal(b.counters.rxFrames - framesBefore, sent, 'every frame reached b\'s relay');
    assert.equal(b.counters.dropHandlerError, 0, 'the relay never threw');
    const c = mb.relay.counters;
    const counted = c.forwarded + c.delivered + c.dropMalformed + c.dropNoRoute + c.dropNotPaired + c.dropWrongNeighbour + c.dropUnexpectedSource
      + c.dropHopLimit + c.dropTimeExceededUnmatched + c.dropQueueFull + c.timeExceededDelivered;
    assert.ok(counted >= sent, `every frame is counted: ${counted} of ${sent} (${JSON.stringify(c)})`);
    assert.equal(tb.written.length, 0, 'no frame became a packet on b\'s device');
  } finally {
    ma.stop();
    mb.stop();
    mb.relay.close();
    a.close();
    b.close();
  }
});

test('fuzz: random and mutated IP packets from a real peer through a real Engine into the userspace stack never throw; all are counted', async () => {
  const net = new MemoryNetwork();
  const ta = new MemoryTun('fuzz-stack-a');
  const stack = new UserspaceStack({ addresses: ['100.64.5.2/24', 'fd00:5::2/64'], mtu: 1420, name: 'fuzz-stack' });
  const a = await engineOn(net, '198.18.5.1', ta);
  const b = await engineOn(net, '198.18.5.2', stack);
  // Any source is allowed from a, so every plaintext reaches the stack.
  const { pb } = pair(a, '198.18.5.1', b, '198.18.5.2', ['0.0.0.0/0', '::/0'], ['0.0.0.0/0', '::/0']);
  const udp = stack.udpSocket(4);
  await udp.bind(53);
  let datagrams = 0;
  udp.on('message', () => { datagrams++; });
  const listener = stack.listenTcp({ port: 22 });
  listener.on('connection', (s) => { s.on('data', () => undefined); s.on('error', () => undefined); });
  try {
    ta.inject(ping4('100.64.5.1', '100.64.5.2', 'hello'));
    for (let i = 0; i < 20 && !pb.current; i++) await tick();
    assert.ok(pb.current, 'session up');
    // Real captured packets (Ethernet frames: the IP packet follows the 14-byte header).
    const seeds: Buffer[] = [];
    for (const f of ['ipv4-tcp', 'ipv4-udp', 'ipv4-icmp', 'ipv4-frag', 'ipv6-tcp', 'ipv6-udp', 'ipv6-icmp', 'ipv6-frag', 'ipv6-hbh', 'ndp', 'mld', 'dns']) {
      for (const p of readHexPackets(`testdata/captures/${f}.hex`)) {
        const type = p.bytes.readUInt16BE(12);
        if (type === 0x0800 || type === 0x86dd) seeds.push(p.bytes.subarray(14));
      }
    }
    // Packets to the stack's own addresses: UDP to the bound port, TCP to the listener, IPv6, a fragment.
    seeds.push(ipv4Packet('100.64.5.1', '100.64.5.2', 17, udpDatagram('100.64.5.1', '100.64.5.2', 999, 53, Buffer.from('query'))));
    seeds.push(ipv6Packet('fd00:5::1', 'fd00:5::2', 17, udpDatagram('fd00:5::1', 'fd00:5::2', 999, 53, Buffer.from('q6'))));
    const syn = Buffer.alloc(20);
    syn.writeUInt16BE(4000, 0); syn.writeUInt16BE(22, 2); syn.writeUInt32BE(1, 4); syn[12] = 0x50; syn[13] = 0x02; syn.writeUInt16BE(65535, 14);
    seeds.push(ipv4Packet('100.64.5.1', '100.64.5.2', 6, syn));
    seeds.push(ipv4Packet('100.64.5.1', '100.64.5.2', 17, udpDatagram('100.64.5.1', '100.64.5.2', 1, 53, Buffer.alloc(64)), { mf: true }));
    assert.ok(seeds.length >= 5);
    const rng = new Prng(4242);
    const n = fuzzIterations(20_000);
    const scratch = Buffer.alloc(1500);
    const stackBefore = stack.counters.rxPackets;
    let sent = 0;
    for (let i = 0; i < n; i++) {
      let len = mutate(rng, seeds[rng.int(seeds.length)]!, scratch);
      if (rng.int(8) === 0) {
        len = 20 + rng.int(200);
        for (let j = 0; j < len; j++) scratch[j] = rng.int(256);
      }
      if (len < 20) continue;
      // Keep an IP version and a length field that covers the packet, so it passes the engine's
      // checks and reaches the stack (the engine's own checks have their fuzz test). They go into
      // a's device: a seals them for b (every destination routes to b).
      if (rng.int(2) === 0) {
        scratch[0] = 0x40 | (scratch[0]! & 0x0f);
        scratch.writeUInt16BE(len, 2);
        scratch.writeUInt32BE(0x64400502, 16);
      } else if (len >= 40) {
        scratch[0] = 0x60 | (scratch[0]! & 0x0f);
        scratch.writeUInt16BE(len - 40, 4);
      } else continue;
      // Most of the time, fix the checksums so the mutation reaches past them into the layers above.
      if (rng.int(4) !== 0) fixChecksums(scratch, len);
      ta.inject(Buffer.from(scratch.subarray(0, len)));
      sent++;
      if (i % 64 === 63) await tick(2);
    }
    await tick(20);
    const got = stack.counters.rxPackets - stackBefore;
    assert.ok(got > sent * 0.9, `the stack got ${got} of ${sent} packets`);
    assert.equal(b.counters.dropHandlerError, 0, 'nothing escaped the stack');
    // The stack's own code threw on none of the packets (a throw would be caught and counted).
    assert.ok(datagrams > 0, 'some datagrams reached the socket');
    assert.equal(stack.counters.rxInputError, 0);
    console.log(`# stack fuzz: ${sent} packets sent, ${got} reached the stack, ${datagrams} datagrams delivered to a socket`);
    assert.ok(b.isRunning);
  } finally {
    listener.close();
    a.close();
    b.close();
  }
});

test('userspace stack: a packet whose handling throws is dropped and counted; the next one is handled', () => {
  const stack = new UserspaceStack({ addresses: ['100.64.6.2/24'], mtu: 1420, name: 'guard-stack' });
  try {
    const realInput = stack.input.bind(stack);
    let throwOnce = 1;
    stack.input = (buf, off, len) => { if (throwOnce-- > 0) throw new Error('input bug'); realInput(buf, off, len); };
    const echo = Buffer.alloc(28);
    echo[0] = 8; echo.writeUInt16BE(0x1234, 4); echo.writeUInt16BE(1, 6);
    echo.writeUInt16BE(internetChecksum(echo, 0, 28), 2);
    const pkt = ipv4Packet('100.64.6.1', '100.64.6.2', 1, echo);
    const n = stack.writeBatch([pkt, pkt], new Uint32Array([0, 0]), new Uint32Array([pkt.length, pkt.length]), 2);
    assert.equal(n, 2);
    assert.equal(stack.counters.rxInputError, 1);
    const out = [Buffer.alloc(1600)];
    const sizes = new Uint32Array(1);
    assert.equal(stack.readBatch(out, sizes, 0), 1, 'the second echo request was answered');
    assert.equal(out[0]![20], 0, 'an echo reply');
  } finally {
    stack.close();
  }
});
