// The engine's batched AEAD paths: a device read of many packets is sealed with one sealBatch
// call and arrives in order; a receive batch that mixes two keypairs (the new one confirmed in
// the middle of the batch), forged, replayed, unknown-index and non-WireGuard datagrams is
// grouped per keypair for openBatch and still delivers exactly what one-at-a-time processing
// would, in the same order, with the same drop counters. Runs on whichever AEAD implementation
// is the default (run it again with MESHTUN_PURE_TS_CRYPTO=1 for the node:crypto path).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Engine, ManualClock, KEEPALIVE_TIMEOUT, REKEY_TIMEOUT, parseCidr, type Peer } from '../src/wireguard/index.js';
import { MemoryTun } from '../src/tun/index.js';
import { MemoryNetwork, type MemoryBind, type MemoryDatagram } from '../src/transport/index.js';
import { generatePrivateKey } from '../src/crypto/index.js';
import { Ipv4Repr, emitIpv4, IpProtocol, parseIpv4Address } from '../src/wire/index.js';

const tick = async (n = 10) => { for (let i = 0; i < n; i++) await new Promise((r) => setImmediate(r)); };

const TRANSPORT_TYPE = 4;
const RECEIVER_OFFSET = 4;
const KEEPALIVE_SIZE = 32; // 16-byte header + 16-byte tag
/** Data sent and nothing heard back for this long: the sender starts a handshake. */
const NEW_HANDSHAKE_AFTER = KEEPALIVE_TIMEOUT + REKEY_TIMEOUT;

/** A UDP/IPv4 packet from 100.64.0.1 to 100.64.0.2 whose payload names `seq`. */
function packet(seq: number, payload = 100 + seq * 37): Buffer {
  const r = new Ipv4Repr();
  r.src = parseIpv4Address('100.64.0.1')!;
  r.dst = parseIpv4Address('100.64.0.2')!;
  r.protocol = IpProtocol.Udp;
  r.payloadLength = 8 + payload;
  const pkt = Buffer.alloc(20 + 8 + payload);
  emitIpv4(r, pkt, 0);
  pkt.writeUInt16BE(4000, 20);
  pkt.writeUInt16BE(5000, 22);
  pkt.writeUInt16BE(8 + payload, 24);
  for (let i = 0; i < payload; i++) pkt[28 + i] = (seq * 7 + i) & 255;
  return pkt;
}

interface Node { engine: Engine; tun: MemoryTun; bind: MemoryBind; pub: Buffer }

async function makeNode(net: MemoryNetwork, address: string, clock: ManualClock): Promise<Node> {
  const tun = new MemoryTun(`memb-${address}`);
  const bind = net.createBind(address);
  const engine = new Engine({ device: tun, bind, clock });
  engine.setPrivateKey(generatePrivateKey());
  await engine.setListenPort(51820);
  await engine.up();
  return { engine, tun, bind, pub: engine.publicKey! };
}

async function pair(net: MemoryNetwork, clock: ManualClock): Promise<{ a: Node; b: Node; peerA: Peer }> {
  const a = await makeNode(net, '198.18.0.1', clock);
  const b = await makeNode(net, '198.18.0.2', clock);
  const pb = a.engine.addPeer(b.pub);
  a.engine.allowedIps.insertCidr(parseCidr('100.64.0.2/32'), pb);
  a.engine.setEndpoint(pb, a.engine.bind.parseEndpoint('198.18.0.2:51820'));
  const peerA = b.engine.addPeer(a.pub);
  b.engine.allowedIps.insertCidr(parseCidr('100.64.0.1/32'), peerA);
  return { a, b, peerA };
}

test('engine batch: 40 packets read at once are sealed as one run and arrive complete and in order', async () => {
  const clock = new ManualClock();
  const net = new MemoryNetwork();
  const { a, b } = await pair(net, clock);
  try {
    a.tun.inject(packet(0));
    await tick();
    assert.deepEqual(b.tun.takeWritten(), [packet(0)], 'the handshake completes and the first packet arrives');
    const sent = Array.from({ length: 40 }, (_, i) => packet(i + 1));
    for (const p of sent) a.tun.inject(p);
    await tick();
    assert.deepEqual(b.tun.takeWritten(), sent);
    assert.equal(b.engine.counters.totalDrops(), 0);
  } finally {
    a.engine.close();
    b.engine.close();
  }
});

test('engine batch: one receive batch mixing two keypairs, forgeries, replays and garbage is handled as one at a time', async () => {
  const clock = new ManualClock();
  let capturing = false;
  const captured: MemoryDatagram[] = [];
  const net = new MemoryNetwork({
    filter: (d) => {
      if (!capturing || d.data[0] !== TRANSPORT_TYPE) return true;
      // a -> b: held back, b sees it only in the batch built below; b -> a: lost.
      if (d.to.address === '198.18.0.2') captured.push({ ...d, data: Buffer.from(d.data) });
      return false;
    },
  });
  const { a, b } = await pair(net, clock);
  try {
    a.tun.inject(packet(0));
    await tick();
    assert.equal(b.tun.takeWritten().length, 1, 'first session up');

    // Hold back a's transport messages (and lose b's): two data packets on the first keypair, then
    // a new handshake (handshake messages pass), then the confirming keepalive and data on the
    // second keypair.
    capturing = true;
    a.tun.inject(packet(1));
    a.tun.inject(packet(2));
    await tick();
    // Nothing reaches a, so after KEEPALIVE_TIMEOUT + REKEY_TIMEOUT it starts a new handshake.
    for (let t = 0; t < NEW_HANDSHAKE_AFTER + 5000; t += 1000) {
      clock.advance(1000);
      await tick();
    }
    a.tun.inject(packet(3));
    await tick(20);
    a.tun.inject(packet(4));
    await tick(20);
    capturing = false;

    const firstIndex = captured[0]!.data.readUInt32LE(RECEIVER_OFFSET);
    const data = captured.filter((d) => d.data.length > KEEPALIVE_SIZE);
    assert.equal(data.length, 4, 'four data packets held back');
    const seqOf = new Map(data.map((d, i) => [d, i + 1])); // a sends in order: packets 1..4
    const old = data.filter((d) => d.data.readUInt32LE(RECEIVER_OFFSET) === firstIndex);
    const fresh = captured.filter((d) => d.data.readUInt32LE(RECEIVER_OFFSET) !== firstIndex);
    assert.ok(old.length >= 2, `two packets on the first keypair (${old.length})`);
    assert.ok(fresh.length >= 2, `two messages on the second keypair (${fresh.length})`);
    const handshakesBefore = b.engine.counters.handshakesCompleted;

    // One delivery round = one receiveBatch at b. Sequential semantics: everything verifies and
    // is delivered in this order, except the forgery, the replay, the unknown index and garbage.
    const forged = Buffer.from(fresh[fresh.length - 1]!.data);
    forged[forged.length - 20] ^= 1;
    const unknown = Buffer.from(old[0]!.data);
    unknown.writeUInt32LE((firstIndex ^ 0x5a5a5a5a) >>> 0, RECEIVER_OFFSET);
    const batch: Buffer[] = [
      old[0]!.data, // first keypair
      ...fresh.slice(0, -1).map((d) => d.data), // the second keypair: the first one confirms it at b
      old[1]!.data, // first keypair again (now `previous` at b, still accepted)
      forged, // second keypair, bad tag
      Buffer.from('not a wireguard message'),
      Buffer.from(old[0]!.data), // replay
      unknown, // unknown receiver index
      fresh[fresh.length - 1]!.data, // the genuine one after its forgery
      ...old.slice(2).map((d) => d.data),
    ];
    const from = captured[0]!.from, to = captured[0]!.to;
    for (const d of batch) net.send({ from, to, data: d });
    await tick(20);

    // Expected: the held-back data packets themselves (not the copies: forgery, replay, unknown
    // index), in batch order; keepalives carry nothing.
    const expected: Buffer[] = [];
    for (const d of batch) {
      const seq = seqOf.get(captured.find((c) => c.data === d)!);
      if (seq !== undefined) expected.push(packet(seq));
    }
    assert.equal(expected.length, 4);
    assert.deepEqual(b.tun.takeWritten(), expected);
    assert.equal(b.engine.counters.dropDecryptFailed, 1, 'the forgery');
    assert.equal(b.engine.counters.dropReplay, 1, 'the replay');
    assert.equal(b.engine.counters.dropUnknownIndex, 1, 'the unknown index');
    assert.equal(b.engine.counters.dropInvalidMessage, 1, 'the garbage');
    assert.equal(b.engine.counters.handshakesCompleted, handshakesBefore + 1, 'the second keypair was confirmed mid-batch');
    // The new keypair carries traffic on.
    a.tun.inject(packet(5));
    await tick();
    assert.deepEqual(b.tun.takeWritten(), [packet(5)]);
  } finally {
    a.engine.close();
    b.engine.close();
  }
});
