// The engine end to end over in-memory devices and binds (the device is not the point here):
// data both ways over IPv4/IPv6, rekeying under a driven clock, replay and forgery drops,
// unknown keys, roaming, and cookie replies under a handshake flood.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Engine, ManualClock, createInitiation, CookieGenerator, LocalIdentity, Handshake, INITIATION, REKEY_AFTER_TIME, type Peer } from '../src/wireguard/index.js';
import { MemoryTun } from '../src/tun/index.js';
import { MemoryNetwork, type MemoryBind, type MemoryDatagram } from '../src/transport/index.js';
import { generatePrivateKey } from '../src/crypto/index.js';
import { Ipv4Repr, emitIpv4, IpProtocol, parseIpv4Address, internetChecksum, parseIpv6Address } from '../src/wire/index.js';

const tick = async (n = 4) => { for (let i = 0; i < n; i++) await new Promise((r) => setImmediate(r)); };

function icmpEcho(src: string, dst: string, seq: number, payload = 56): Buffer {
  const r = new Ipv4Repr();
  r.src = parseIpv4Address(src)!;
  r.dst = parseIpv4Address(dst)!;
  r.protocol = IpProtocol.Icmp;
  r.payloadLength = 8 + payload;
  const pkt = Buffer.alloc(20 + 8 + payload);
  emitIpv4(r, pkt, 0);
  pkt[20] = 8; // echo request
  pkt.writeUInt16BE(0x1234, 24);
  pkt.writeUInt16BE(seq, 26);
  for (let i = 0; i < payload; i++) pkt[28 + i] = (seq + i) & 255;
  pkt.writeUInt16BE(internetChecksum(pkt, 20, 8 + payload), 22);
  return pkt;
}

function udp6(src: string, dst: string, payload: number): Buffer {
  const pkt = Buffer.alloc(40 + 8 + payload);
  pkt[0] = 0x60;
  pkt.writeUInt16BE(8 + payload, 4);
  pkt[6] = 17;
  pkt[7] = 64;
  parseIpv6Address(src, pkt, 8);
  parseIpv6Address(dst, pkt, 24);
  pkt.writeUInt16BE(5000, 40);
  pkt.writeUInt16BE(6000, 42);
  pkt.writeUInt16BE(8 + payload, 44);
  pkt.fill(0xab, 48);
  return pkt;
}

interface Node { engine: Engine; tun: MemoryTun; bind: MemoryBind; key: Buffer; pub: Buffer }

async function makeNode(net: MemoryNetwork, address: string, clock?: ManualClock): Promise<Node> {
  const tun = new MemoryTun(`mem-${address}`);
  const bind = net.createBind(address);
  const engine = new Engine({ device: tun, bind, ...(clock ? { clock } : {}) });
  const key = generatePrivateKey();
  engine.setPrivateKey(key);
  await engine.setListenPort(51820);
  await engine.up();
  return { engine, tun, bind, key, pub: engine.publicKey! };
}

function connect(a: Node, b: Node, aAllowed: string[], bAllowed: string[], opts: { aKnowsEndpoint?: boolean; bKnowsEndpoint?: boolean } = {}): [Peer, Peer] {
  const pb = a.engine.addPeer(b.pub);
  for (const c of bAllowed) a.engine.allowedIps.insertCidr(parseCidrText(c), pb);
  if (opts.aKnowsEndpoint !== false) a.engine.setEndpoint(pb, a.engine.bind.parseEndpoint(`${b.bind.address}:51820`));
  const pa = b.engine.addPeer(a.pub);
  for (const c of aAllowed) b.engine.allowedIps.insertCidr(parseCidrText(c), pa);
  if (opts.bKnowsEndpoint) b.engine.setEndpoint(pa, b.engine.bind.parseEndpoint(`${a.bind.address}:51820`));
  return [pb, pa];
}

import { parseCidr } from '../src/wireguard/index.js';
const parseCidrText = (t: string) => parseCidr(t);

async function pair(clock?: ManualClock, net = new MemoryNetwork()) {
  const a = await makeNode(net, '198.18.0.1', clock);
  const b = await makeNode(net, '198.18.0.2', clock);
  const [peerB, peerA] = connect(a, b, ['100.64.0.1/32', 'fd00::1/128'], ['100.64.0.2/32', 'fd00::2/128']);
  return { a, b, net, peerB, peerA, close: () => { a.engine.close(); b.engine.close(); } };
}

test('engine: IPv4 and IPv6 packets cross both ways after a handshake', async () => {
  const { a, b, close } = await pair();
  try {
    const p1 = icmpEcho('100.64.0.1', '100.64.0.2', 1);
    a.tun.inject(p1);
    await tick(10);
    const got = b.tun.takeWritten();
    assert.equal(got.length, 1, 'the first packet waits for the handshake, then arrives');
    assert.deepEqual(got[0], p1);
    const p2 = icmpEcho('100.64.0.2', '100.64.0.1', 2, 1372);
    b.tun.inject(p2);
    const p3 = udp6('fd00::2', 'fd00::1', 1000);
    b.tun.inject(p3);
    await tick(10);
    const back = a.tun.takeWritten();
    assert.equal(back.length, 2);
    assert.deepEqual(back[0], p2);
    assert.deepEqual(back[1], p3);
    assert.equal(a.engine.counters.handshakesCompleted, 1);
    assert.equal(b.engine.counters.handshakesCompleted, 1);
    assert.equal(a.engine.counters.totalDrops(), 0);
    assert.equal(b.engine.counters.totalDrops(), 0);
    const cfg = a.engine.getConfig();
    assert.equal(cfg.peers.length, 1);
    assert.ok(cfg.peers[0]!.lastHandshakeWallMs > 0);
    assert.ok(Number(cfg.peers[0]!.txBytes) > 0 && Number(cfg.peers[0]!.rxBytes) > 0);
  } finally {
    close();
  }
});

test('engine: a packet to an address no peer owns is dropped and counted', async () => {
  const { a, close } = await pair();
  try {
    a.tun.inject(icmpEcho('100.64.0.1', '100.64.9.9', 1));
    await tick();
    assert.equal(a.engine.counters.dropNoRoute, 1);
  } finally {
    close();
  }
});

test('engine: a flow survives two rekeys under a driven clock', async () => {
  const clock = new ManualClock();
  const { a, b, close } = await pair(clock);
  try {
    let seq = 0;
    const exchange = async () => {
      const out = icmpEcho('100.64.0.1', '100.64.0.2', ++seq);
      a.tun.inject(out);
      await tick(10);
      const got = b.tun.takeWritten();
      assert.deepEqual(got, [out], `packet ${seq} arrives`);
      const back = icmpEcho('100.64.0.2', '100.64.0.1', ++seq);
      b.tun.inject(back);
      await tick(10);
      assert.deepEqual(a.tun.takeWritten(), [back], `packet ${seq} arrives`);
    };
    await exchange();
    assert.equal(a.engine.counters.handshakesInitiated, 1);
    // Keep traffic flowing every 5 s for 2 x REKEY_AFTER_TIME + a bit: two rekeys.
    for (let t = 0; t < (2 * REKEY_AFTER_TIME + 20_000) / 5000; t++) {
      clock.advance(5000);
      await exchange();
    }
    assert.ok(a.engine.counters.handshakesCompleted >= 3, `rekeyed (${a.engine.counters.handshakesCompleted} handshakes)`);
    assert.equal(a.engine.counters.totalDrops(), 0);
    assert.equal(b.engine.counters.totalDrops(), 0);
  } finally {
    close();
  }
});

test('engine: replayed and forged transport packets are dropped and counted', async () => {
  const captured: MemoryDatagram[] = [];
  const net = new MemoryNetwork({
    filter: (d) => {
      if (d.data[0] === 4 && d.data.length > 32) captured.push({ ...d, data: Buffer.from(d.data) });
      return true;
    },
  });
  const { a, b, close } = await pair(undefined, net);
  try {
    a.tun.inject(icmpEcho('100.64.0.1', '100.64.0.2', 1));
    await tick(10);
    assert.equal(b.tun.takeWritten().length, 1);
    const data = captured.find((d) => d.to.address === '198.18.0.2')!;
    assert.ok(data, 'captured a data packet');
    // Replay it.
    net.send({ ...data, data: Buffer.from(data.data) });
    await tick();
    assert.equal(b.engine.counters.dropReplay, 1);
    assert.equal(b.tun.takeWritten().length, 0);
    // Forge it (flip a ciphertext bit).
    const forged = Buffer.from(data.data);
    forged[40] ^= 1;
    forged.writeUInt32LE(forged.readUInt32LE(8) + 100, 8);
    net.send({ ...data, data: forged });
    await tick();
    assert.equal(b.engine.counters.dropDecryptFailed, 1);
    // Garbage.
    net.send({ ...data, data: Buffer.from('not a wireguard packet at all') });
    await tick();
    assert.equal(b.engine.counters.dropInvalidMessage, 1);
    assert.equal(b.tun.takeWritten().length, 0);
  } finally {
    close();
  }
});

test('engine: a handshake from an unknown key is ignored', async () => {
  const net = new MemoryNetwork();
  const { b, close } = await pair(undefined, net);
  const c = await makeNode(net, '198.18.0.3');
  try {
    const peer = c.engine.addPeer(b.pub);
    c.engine.allowedIps.insertCidr(parseCidr('100.64.0.2/32'), peer);
    c.engine.setEndpoint(peer, c.engine.bind.parseEndpoint('198.18.0.2:51820'));
    c.tun.inject(icmpEcho('100.64.0.3', '100.64.0.2', 1));
    await tick(10);
    assert.equal(b.engine.counters.rxHandshakeInitiations, 1);
    assert.equal(b.engine.counters.dropHandshakeRejected, 1);
    assert.equal(c.engine.counters.rxHandshakeResponses, 0);
    assert.equal(b.tun.takeWritten().length, 0);
  } finally {
    close();
    c.engine.close();
  }
});

test('engine: the endpoint follows the peer when its address changes (roaming)', async () => {
  const net = new MemoryNetwork();
  const { a, b, peerA, close } = await pair(undefined, net);
  try {
    a.tun.inject(icmpEcho('100.64.0.1', '100.64.0.2', 1));
    await tick(10);
    assert.equal(b.tun.takeWritten().length, 1);
    assert.equal(peerA.endpoint?.toString(), '198.18.0.1:51820');
    // A moves: its socket now has another address.
    a.engine.bind.close();
    (a.bind as unknown as { address: string }).address = '198.18.1.1';
    await a.engine.bind.open(51820);
    a.tun.inject(icmpEcho('100.64.0.1', '100.64.0.2', 2));
    await tick(10);
    assert.equal(b.tun.takeWritten().length, 1);
    assert.equal(peerA.endpoint?.toString(), '198.18.1.1:51820');
    b.tun.inject(icmpEcho('100.64.0.2', '100.64.0.1', 3));
    await tick(10);
    assert.equal(a.tun.takeWritten().length, 1, 'the reply reaches the new address');
  } finally {
    close();
  }
});

test('engine: under a flood of initiations the responder sends cookie replies and a legitimate peer still connects', async () => {
  const clock = new ManualClock();
  const net = new MemoryNetwork();
  const { a, b, close } = await pair(clock, net);
  const attacker = net.createBind('198.18.0.66');
  await attacker.open(40000);
  attacker.start(() => { while (attacker.receiveBatch([Buffer.alloc(2048)], new Uint32Array(1), [null]) > 0); });
  const evil = new LocalIdentity(generatePrivateKey());
  const hs = new Handshake(evil, b.pub, null);
  const macs = new CookieGenerator(b.pub);
  const bEndpoint = attacker.parseEndpoint('198.18.0.2:51820')!;
  const flood = async (n: number) => {
    for (let i = 0; i < n; i++) {
      const msg = Buffer.alloc(INITIATION.SIZE);
      createInitiation(hs, i + 1, clock.wallNow() + i * 100, msg);
      macs.addMacs(msg, INITIATION.SIZE, clock.now());
      attacker.sendBatch([msg], new Uint32Array([0]), new Uint32Array([INITIATION.SIZE]), 1, bEndpoint);
    }
    await tick(6);
  };
  try {
    await flood(200);
    assert.ok(b.engine.counters.cookieRepliesSent > 0, 'under load, cookie replies are sent');
    // A legitimate peer connects while the flood goes on.
    a.tun.inject(icmpEcho('100.64.0.1', '100.64.0.2', 1));
    await tick(10);
    assert.ok(a.engine.counters.rxCookieReplies >= 1, 'A got a cookie reply');
    for (let round = 0; round < 4 && b.tun.written.length === 0; round++) {
      clock.advance(5500); // A retransmits with mac2 from its cookie
      await flood(100);
      await tick(10);
    }
    assert.equal(b.tun.takeWritten().length, 1, 'the staged packet arrives once the handshake completes');
    assert.ok(b.engine.counters.dropHandshakeNeedCookie > 100);
  } finally {
    close();
    attacker.close();
  }
});

test('engine: a run of full-size packets goes out as one UDP GSO send when the bind offers it', async () => {
  const net = new MemoryNetwork();
  const { a, b, close } = await pair(undefined, net);
  const calls: { count: number; segment: number }[] = [];
  const bind = a.engine.bind as MemoryBind & { sendSegments?: unknown };
  bind.sendSegments = (bufs: Buffer[], offsets: Uint32Array, sizes: Uint32Array, count: number, segment: number, ep: Parameters<MemoryBind['sendBatch']>[4]) => {
    calls.push({ count, segment });
    for (let i = 0; i < count - 1; i++) assert.equal(sizes[i], segment);
    assert.ok(sizes[count - 1]! <= segment);
    return bind.sendBatch(bufs, offsets, sizes, count, ep);
  };
  try {
    a.tun.inject(icmpEcho('100.64.0.1', '100.64.0.2', 0));
    await tick(10);
    b.tun.takeWritten();
    const sent = [];
    for (let i = 1; i <= 20; i++) sent.push(icmpEcho('100.64.0.1', '100.64.0.2', i, 1372));
    sent.push(icmpEcho('100.64.0.1', '100.64.0.2', 21, 100)); // a shorter last one
    for (const p of sent) a.tun.inject(p);
    await tick(10);
    assert.deepEqual(b.tun.takeWritten(), sent, 'all arrive, in order');
    assert.ok(calls.some((c) => c.count === 21), `one segmented send of 21 (${JSON.stringify(calls)})`);
  } finally {
    close();
  }
});
