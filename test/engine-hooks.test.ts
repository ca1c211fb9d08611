// The engine's hooks for a mesh that manages its own paths: datagrams that are not WireGuard go
// to the datagram handler (STUN and discovery share the socket); a peer with roaming off keeps the
// endpoint it was given while authenticated packets arrive from elsewhere, and lastReceivedFrom
// says where they came from.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Engine, parseCidr } from '../src/wireguard/index.js';
import { MemoryTun } from '../src/tun/index.js';
import { MemoryNetwork } from '../src/transport/index.js';
import { generatePrivateKey } from '../src/crypto/index.js';
import { ipv4Packet, udpDatagram } from '../src/stack/testing.js';

const tick = async (n = 6) => { for (let i = 0; i < n; i++) await new Promise((r) => setImmediate(r)); };

test('engine: other datagrams reach the datagram handler; sendDatagram answers from the same socket', async () => {
  const net = new MemoryNetwork();
  const engine = new Engine({ device: new MemoryTun('hooks-a'), bind: net.createBind('198.18.8.1') });
  engine.setPrivateKey(generatePrivateKey());
  await engine.setListenPort(51820);
  await engine.up();
  const other = net.createBind('198.18.8.2');
  await other.open(4000);
  const got: Buffer[] = [];
  other.start(() => {
    const bufs = [Buffer.alloc(100)];
    const sizes = new Uint32Array(1);
    const eps = [null];
    while (other.receiveBatch(bufs, sizes, eps) > 0) got.push(Buffer.from(bufs[0]!.subarray(0, sizes[0])));
  });
  try {
    const to = other.parseEndpoint('198.18.8.1:51820')!;
    const send = (text: string) => other.sendBatch([Buffer.from(text)], new Uint32Array([0]), new Uint32Array([text.length]), 1, to);
    send('not wireguard');
    await tick();
    assert.equal(engine.counters.dropInvalidMessage, 1, 'without a handler: dropped');
    engine.setDatagramHandler((buf, len, from) => {
      if (buf.subarray(0, len).toString() !== 'echo me') return false;
      engine.sendDatagram(Buffer.from('echoed'), 0, 6, from);
      return true;
    });
    send('echo me');
    send('something else');
    await tick();
    assert.equal(engine.counters.rxOtherDatagrams, 1);
    assert.equal(engine.counters.dropInvalidMessage, 2);
    assert.deepEqual(got.map((b) => b.toString()), ['echoed']);
    engine.setDatagramHandler(() => { throw new Error('handler bug'); });
    send('echo me');
    await tick();
    assert.equal(engine.counters.dropHandlerError, 1, 'a throwing handler is counted, not fatal');
  } finally {
    other.close();
    engine.close();
  }
});

test('engine: a peer with roaming off keeps its endpoint; lastReceivedFrom follows the packets', async () => {
  const net = new MemoryNetwork();
  const mk = async (addr: string) => {
    const tun = new MemoryTun(`hooks-${addr}`);
    const engine = new Engine({ device: tun, bind: net.createBind(addr) });
    engine.setPrivateKey(generatePrivateKey());
    await engine.setListenPort(51820);
    await engine.up();
    return { tun, engine };
  };
  const a = await mk('198.18.9.1');
  const b = await mk('198.18.9.2');
  try {
    const pb = a.engine.addPeer(b.engine.publicKey!);
    a.engine.allowedIps.insertCidr(parseCidr('100.64.9.2/32'), pb);
    a.engine.setEndpoint(pb, a.engine.bind.parseEndpoint('198.18.9.2:51820'));
    const pa = b.engine.addPeer(a.engine.publicKey!);
    b.engine.allowedIps.insertCidr(parseCidr('100.64.9.1/32'), pa);
    pa.roaming = false;
    const chosen = b.engine.bind.parseEndpoint('198.18.9.77:51820')!;
    b.engine.setEndpoint(pa, chosen);
    a.tun.inject(ipv4Packet('100.64.9.1', '100.64.9.2', 17, udpDatagram('100.64.9.1', '100.64.9.2', 1, 2, Buffer.from('hi'))));
    for (let i = 0; i < 20 && b.tun.written.length === 0; i++) await tick();
    assert.equal(b.tun.written.length, 1, 'delivered');
    assert.equal(pa.endpoint, chosen, 'the chosen endpoint stays');
    assert.equal(pa.lastReceivedFrom?.toString(), '198.18.9.1:51820');
    assert.equal(pb.lastReceivedFrom?.toString(), '198.18.9.2:51820');
  } finally {
    a.engine.close();
    b.engine.close();
  }
});
