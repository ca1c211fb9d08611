import { test } from 'node:test';
import assert from 'node:assert/strict';
import { UserError } from '../util/index.js';
import { UserspaceStack } from './stack.js';
import { MemoryLink } from './memory-link.js';
import { PrefixSet } from './prefix-set.js';
import type { TcpSocket } from './tcp/index.js';
import type { UdpRemoteInfo } from './udp.js';
import type { ForwardedDatagram } from './forwarding.js';
import { v4, v6 } from './testing.js';

function pair() {
  const a = new UserspaceStack({ addresses: ['100.64.0.1/24', 'fd00::1/64'], name: 'a' });
  const b = new UserspaceStack({ addresses: ['100.64.0.2/24', 'fd00::2/64'], name: 'b' });
  const link = new MemoryLink(a, b);
  return { a, b, close: () => { link.close(); a.close(); b.close(); } };
}

function readAll(sock: TcpSocket): Promise<string> {
  return new Promise((resolve, reject) => {
    let s = '';
    sock.on('data', (d: Buffer) => { s += d.toString(); });
    sock.on('end', () => resolve(s));
    sock.on('error', reject);
  });
}

test('prefix set: IPv4 and IPv6 matching, bad prefixes throw and keep the old set', () => {
  const p = new PrefixSet(['198.19.5.0/24', 'fd00:5::/64']);
  assert.equal(p.size, 2);
  assert.ok(p.matchV4(v4('198.19.5.200')));
  assert.ok(!p.matchV4(v4('198.19.6.1')));
  assert.ok(p.matchV6(v6('fd00:5::9')));
  assert.ok(!p.matchV6(v6('fd00:6::9')));
  assert.throws(() => p.set(['198.19.5.0/33']), UserError);
  assert.throws(() => p.set(['nope/8']), UserError);
  assert.ok(p.matchV4(v4('198.19.5.1')));
  p.set(['0.0.0.0/0', '::/0']);
  assert.ok(p.matchV4(v4('203.0.113.9')) && p.matchV6(v6('2001:db8::1')));
  p.set([]);
  assert.ok(!p.matchV4(v4('203.0.113.9')));
});

test('forwarding: TCP to a forwarded destination reaches the forwarding listener with its original destination (IPv4 and IPv6)', async () => {
  const { a, b, close } = pair();
  try {
    b.setForwardPrefixes(['198.19.5.0/24', 'fd00:5::/64']);
    const normal = b.listenTcp({ port: 80 });
    let normalHits = 0;
    normal.on('connection', () => { normalHits++; });
    const seen: string[] = [];
    b.listenForwarded({}, (s) => {
      seen.push(`${s.localAddress}:${s.localPort}`);
      s.end(`hello from ${s.localAddress}`);
    });
    for (const host of ['198.19.5.10', 'fd00:5::10']) {
      const c = a.connectTcp({ host, port: 80 });
      assert.equal(await readAll(c), `hello from ${host}`);
    }
    assert.deepEqual(seen, ['198.19.5.10:80', 'fd00:5::10:80']);
    assert.equal(normalHits, 0);
    // Our own address still goes to the port listener.
    const own = new Promise<void>((resolve) => normal.once('connection', (s: TcpSocket) => { s.end(); resolve(); }));
    a.connectTcp({ host: '100.64.0.2', port: 80 }).on('data', () => undefined).on('error', () => undefined);
    await own;
  } finally {
    close();
  }
});

test('forwarding: UDP to a forwarded destination goes to the handler; replies come from the original destination; echo is answered', async () => {
  const { a, b, close } = pair();
  try {
    b.setForwardPrefixes(['198.19.5.0/24']);
    const got: ForwardedDatagram[] = [];
    b.udpForwarding.onDatagram = (d) => {
      got.push(d);
      assert.equal(b.udpForwarding.sendFrom(d.dstAddress, d.dstPort, d.srcAddress, d.srcPort, Buffer.concat([Buffer.from('re:'), d.data])), null);
    };
    const sock = a.udpSocket(4);
    const reply = new Promise<[Buffer, UdpRemoteInfo]>((resolve) => sock.once('message', (m: Buffer, r: UdpRemoteInfo) => resolve([m, r])));
    sock.send('hi', 5353, '198.19.5.7');
    const [msg, rinfo] = await reply;
    assert.equal(msg.toString(), 're:hi');
    assert.equal(rinfo.address, '198.19.5.7');
    assert.equal(rinfo.port, 5353);
    assert.equal(got.length, 1);
    assert.equal(got[0]!.srcAddress, '100.64.0.1');
    assert.equal(got[0]!.dstAddress, '198.19.5.7');
    assert.ok(await a.ping(4, '198.19.5.7') >= 0);
    // Outside the prefixes: not for us.
    const before = b.counters.rxNotForUs;
    sock.send('x', 5353, '198.19.6.7');
    await new Promise((r) => setImmediate(r));
    assert.equal(b.counters.rxNotForUs, before + 1);
    sock.close();
  } finally {
    close();
  }
});

test('forwarding: one forwarding listener at a time', () => {
  const { b, close } = pair();
  try {
    const l = b.listenForwarded();
    assert.throws(() => b.listenForwarded(), UserError);
    l.close();
    b.listenForwarded().close();
  } finally {
    close();
  }
});
