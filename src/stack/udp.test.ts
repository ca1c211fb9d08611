import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { UserError } from '../util/index.js';
import { IpProtocol } from '../wire/index.js';
import { UserspaceStack } from './stack.js';
import { MemoryLink } from './memory-link.js';
import { StackError } from './errors.js';
import type { UdpRemoteInfo, UdpSocket } from './udp.js';
import { inject, drain, turns, udpPacket, udpDatagram, ipv4Packet, ipv6Packet } from './testing.js';

function pair() {
  const a = new UserspaceStack({ addresses: ['100.64.0.1/24', 'fd00::1/64'], name: 'a' });
  const b = new UserspaceStack({ addresses: ['100.64.0.2/24', 'fd00::2/64'], name: 'b' });
  const link = new MemoryLink(a, b);
  return { a, b, close: () => { link.close(); a.close(); b.close(); } };
}

function nextMessage(sock: UdpSocket): Promise<[Buffer, UdpRemoteInfo]> {
  return new Promise((resolve) => sock.once('message', (m: Buffer, r: UdpRemoteInfo) => resolve([m, r])));
}

test('udp: echo between two stacks over IPv4 and IPv6, with node:dgram-shaped rinfo', async () => {
  const { a, b, close } = pair();
  try {
    for (const [family, server, client] of [[4, '100.64.0.2', '100.64.0.1'], [6, 'fd00::2', 'fd00::1']] as const) {
      const srv = b.udp.createSocket(family);
      srv.on('message', (m: Buffer, r: UdpRemoteInfo) => srv.send(Buffer.concat([Buffer.from('echo:'), m]), r.port, r.address));
      let listening = false;
      srv.bind(5353, undefined, () => { listening = true; });
      const cli = a.udp.createSocket(family);
      const sent = new Promise<number>((resolve, reject) => cli.send('ping', 5353, server, (err, n) => (err ? reject(err) : resolve(n))));
      assert.equal(await sent, 4);
      const [msg, rinfo] = await nextMessage(cli);
      assert.equal(msg.toString(), 'echo:ping');
      assert.deepEqual(rinfo, { address: server, family: family === 4 ? 'IPv4' : 'IPv6', port: 5353, size: 9 });
      assert.ok(listening);
      const addr = cli.address();
      assert.equal(addr.address, family === 4 ? '0.0.0.0' : '::');
      assert.ok(addr.port >= 49152);
      assert.deepEqual(srv.address(), { address: family === 4 ? '0.0.0.0' : '::', family: family === 4 ? 'IPv4' : 'IPv6', port: 5353 });
      void client;
      srv.close();
      cli.close();
    }
    assert.equal(a.counters.udpOut, 2);
    assert.equal(b.counters.udpIn, 2);
  } finally {
    close();
  }
});

test('udp: bind rules (in use, specific vs any, addresses not ours, bad arguments)', () => {
  const s = new UserspaceStack({ addresses: ['100.64.0.2/24', '100.64.0.3/24', 'fd00::2/64'] });
  const x = s.udp.createSocket(4).bind(1000, '100.64.0.2');
  s.udp.createSocket(4).bind(1000, '100.64.0.3');
  assert.throws(() => s.udp.createSocket(4).bind(1000, '100.64.0.2'), (e: StackError) => e.code === 'EADDRINUSE');
  assert.throws(() => s.udp.createSocket(4).bind(1000), (e: StackError) => e.code === 'EADDRINUSE');
  s.udp.createSocket(6).bind(1000); // the other family's table
  assert.throws(() => s.udp.createSocket(4).bind(1001, '100.64.0.9'), (e: StackError) => e.code === 'EADDRNOTAVAIL');
  assert.throws(() => s.udp.createSocket(4).bind(1001, 'fd00::2'), UserError);
  assert.throws(() => s.udp.createSocket(4).bind(70000), UserError);
  assert.throws(() => s.udp.createSocket(4).send('x', 53, 'example.com'), /names are resolved by the caller/);
  assert.throws(() => s.udp.createSocket(4).send('x', 0, '100.64.0.1'), UserError);
  x.close();
  s.udp.createSocket(4).bind(1000, '100.64.0.2'); // free again after close
  s.close();
});

test('udp: delivery prefers the socket bound to the exact address; broadcast goes to any-address sockets', async () => {
  const s = new UserspaceStack({ addresses: ['100.64.0.2/24', '100.64.0.3/24'] });
  const specific = s.udp.createSocket(4).bind(2000, '100.64.0.2');
  const any = s.udp.createSocket(4);
  const gotSpecific: string[] = [];
  const gotAny: string[] = [];
  specific.on('message', (m: Buffer) => gotSpecific.push(m.toString()));
  assert.throws(() => any.bind(2000), (e: StackError) => e.code === 'EADDRINUSE');
  any.bind(2001);
  any.on('message', (m: Buffer) => gotAny.push(m.toString()));
  inject(s,
    udpPacket('100.64.0.1', '100.64.0.2', 1, 2000, Buffer.from('a')),
    udpPacket('100.64.0.1', '100.64.0.3', 1, 2000, Buffer.from('b')), // port unreachable: bound on .2 only
    udpPacket('100.64.0.1', '100.64.0.255', 1, 2001, Buffer.from('c')),
    udpPacket('100.64.0.1', '255.255.255.255', 1, 2001, Buffer.from('d')),
    udpPacket('100.64.0.1', '100.64.0.3', 1, 2001, Buffer.from('e')),
  );
  await turns(2);
  assert.deepEqual(gotSpecific, ['a']);
  assert.deepEqual(gotAny, ['c', 'd', 'e']);
  assert.equal(drain(s).length, 1, 'one port unreachable');
  s.close();
});

test('udp: receive queue limits drop and count, close stops delivery', async () => {
  const s = new UserspaceStack({ addresses: ['100.64.0.2/24'], limits: { udp: { queueDatagrams: 4, queueBytes: 1 << 20 } } });
  const sock = s.udp.createSocket(4).bind(3000);
  const got: Buffer[] = [];
  sock.on('message', (m: Buffer) => got.push(m));
  for (let i = 0; i < 10; i++) inject(s, udpPacket('100.64.0.1', '100.64.0.2', 1, 3000, Buffer.from([i])));
  await turns(2);
  assert.deepEqual(got.map((m) => m[0]), [0, 1, 2, 3]);
  assert.equal(s.counters.udpQueueFull, 6);
  // Bytes limit.
  const s2 = new UserspaceStack({ addresses: ['100.64.0.2/24'], limits: { udp: { queueDatagrams: 100, queueBytes: 2500 } } });
  const sock2 = s2.udp.createSocket(4).bind(3000);
  let n2 = 0;
  sock2.on('message', () => { n2++; });
  for (let i = 0; i < 5; i++) inject(s2, udpPacket('100.64.0.1', '100.64.0.2', 1, 3000, Buffer.alloc(1000)));
  await turns(2);
  assert.equal(n2, 2);
  // Queued then closed: nothing is emitted after close.
  inject(s2, udpPacket('100.64.0.1', '100.64.0.2', 1, 3000, Buffer.alloc(10)));
  let closed = false;
  sock2.close(() => { closed = true; });
  await turns(2);
  assert.equal(n2, 2);
  assert.ok(closed);
  s.close();
  s2.close();
});

test('udp: checksums (v4 zero means none, v6 zero is an error) and malformed lengths', async () => {
  const s = new UserspaceStack({ addresses: ['100.64.0.2/24', 'fd00::2/64'] });
  const got: string[] = [];
  s.udp.createSocket(4).bind(4000).on('message', (m: Buffer) => got.push(m.toString()));
  s.udp.createSocket(6).bind(4000).on('message', (m: Buffer) => got.push(m.toString()));
  const noSum4 = udpDatagram('100.64.0.1', '100.64.0.2', 1, 4000, Buffer.from('nosum4'));
  noSum4.writeUInt16BE(0, 6);
  const noSum6 = udpDatagram('fd00::1', 'fd00::2', 1, 4000, Buffer.from('nosum6'));
  noSum6.writeUInt16BE(0, 6);
  const shortLen = udpDatagram('100.64.0.1', '100.64.0.2', 1, 4000, Buffer.from('short'));
  shortLen.writeUInt16BE(4, 4);
  inject(s,
    ipv4Packet('100.64.0.1', '100.64.0.2', IpProtocol.Udp, noSum4),
    ipv6Packet('fd00::1', 'fd00::2', IpProtocol.Udp, noSum6),
    ipv4Packet('100.64.0.1', '100.64.0.2', IpProtocol.Udp, shortLen),
    ipv4Packet('100.64.0.1', '100.64.0.2', IpProtocol.Udp, Buffer.alloc(5)),
  );
  await turns(2);
  assert.deepEqual(got, ['nosum4']);
  assert.equal(s.counters.udpChecksum, 1);
  assert.equal(s.counters.udpMalformed, 1);
  assert.equal(s.counters.udpTruncated, 1);
  s.close();
});

test('udp: send errors go to the callback (EMSGSIZE, ENOBUFS, ENETUNREACH)', async () => {
  const s = new UserspaceStack({ addresses: ['100.64.0.2/24'], limits: { sendQueuePackets: 2 } });
  const sock = s.udp.createSocket(4);
  const send = (buf: Buffer, port: number, addr: string) => new Promise<Error | null>((resolve) => sock.send(buf, port, addr, (e) => resolve(e)));
  assert.equal((await send(Buffer.alloc(65508), 9, '100.64.0.1') as StackError).code, 'EMSGSIZE');
  assert.equal(await send(Buffer.alloc(10), 9, '100.64.0.1'), null);
  assert.equal(await send(Buffer.alloc(10), 9, '100.64.0.1'), null);
  assert.equal((await send(Buffer.alloc(10), 9, '100.64.0.1') as StackError).code, 'ENOBUFS');
  assert.equal(s.counters.txQueueFull, 1);
  const v6 = s.udp.createSocket(6);
  const e6 = await new Promise<Error | null>((resolve) => v6.send('x', 9, 'fd00::1', (e) => resolve(e)));
  assert.equal((e6 as StackError).code, 'ENETUNREACH');
  s.close();
});

test('udp: closing the stack closes its sockets', async () => {
  const s = new UserspaceStack({ addresses: ['100.64.0.2/24'] });
  const sock = s.udp.createSocket(4).bind(53);
  const closed = new Promise<void>((resolve) => sock.once('close', () => resolve()));
  s.close();
  await closed;
  assert.ok(sock.isClosed);
  assert.throws(() => sock.send(randomBytes(4), 53, '100.64.0.1'), UserError);
});
