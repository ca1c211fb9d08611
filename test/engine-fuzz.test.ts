// Bytes from the network never crash the engine: random and mutated datagrams (from real
// handshake and transport messages) go through the receive path, and every one that is not
// delivered is counted under some drop reason.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Engine, parseCidr } from '../src/wireguard/index.js';
import { MemoryTun } from '../src/tun/index.js';
import { MemoryNetwork } from '../src/transport/index.js';
import { generatePrivateKey } from '../src/crypto/index.js';
import { Prng, mutate, fuzzIterations } from '../src/wire/fuzz-harness.js';

const tick = async (n = 4) => { for (let i = 0; i < n; i++) await new Promise((r) => setImmediate(r)); };

test('engine: random and mutated datagrams never throw and are all counted', async () => {
  const seeds: Buffer[] = [];
  const net = new MemoryNetwork({ filter: (d) => { if (seeds.length < 64) seeds.push(Buffer.from(d.data)); return true; } });
  const mk = async (addr: string) => {
    const tun = new MemoryTun();
    const bind = net.createBind(addr);
    const engine = new Engine({ device: tun, bind });
    engine.setPrivateKey(generatePrivateKey());
    await engine.setListenPort(51820);
    await engine.up();
    return { tun, bind, engine };
  };
  const a = await mk('198.18.0.1');
  const b = await mk('198.18.0.2');
  const pb = a.engine.addPeer(b.engine.publicKey!);
  a.engine.allowedIps.insertCidr(parseCidr('0.0.0.0/0'), pb);
  a.engine.setEndpoint(pb, a.engine.bind.parseEndpoint('198.18.0.2:51820'));
  const pa = b.engine.addPeer(a.engine.publicKey!);
  b.engine.allowedIps.insertCidr(parseCidr('100.64.0.1/32'), pa);
  try {
    // Real traffic first, to collect seeds: initiation, response, keepalive, data.
    const pkt = Buffer.alloc(84);
    pkt[0] = 0x45; pkt.writeUInt16BE(84, 2); pkt[8] = 64; pkt[9] = 1;
    pkt.writeUInt32BE(0x64400001, 12); pkt.writeUInt32BE(0x64400002, 16);
    a.tun.inject(pkt);
    await tick(10);
    assert.ok(seeds.length >= 3, 'collected real messages as seeds');
    const attacker = net.createBind('198.18.0.9');
    await attacker.open(1);
    const to = attacker.parseEndpoint('198.18.0.2:51820')!;
    const rng = new Prng(1234);
    const scratch = Buffer.alloc(1600);
    const n = fuzzIterations(20_000);
    const before = b.engine.counters.rxPackets;
    for (let i = 0; i < n; i++) {
      const len = mutate(rng, seeds[rng.int(seeds.length)]!, scratch);
      attacker.sendBatch([scratch], new Uint32Array([0]), new Uint32Array([len]), 1, to);
      if (i % 256 === 255) await tick(2);
    }
    await tick(10);
    const c = b.engine.counters;
    const received = c.rxPackets - before;
    assert.equal(received, n, 'every datagram reached the engine');
    const delivered = b.tun.takeWritten().length;
    // Every datagram is accounted for: delivered, a keepalive, a handshake message that did
    // something, or a drop with a reason.
    const handled = c.rxKeepalives + c.rxHandshakeInitiations + c.rxHandshakeResponses + c.rxCookieReplies;
    assert.ok(c.totalDrops() + delivered + handled >= n, `accounted ${c.totalDrops()} drops + ${delivered} delivered + ${handled} handshake/keepalive of ${n}`);
    assert.ok(c.dropInvalidMessage > 0 && c.dropDecryptFailed + c.dropUnknownIndex > 0);
    attacker.close();
  } finally {
    a.engine.close();
    b.engine.close();
  }
});
