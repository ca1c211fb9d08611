import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { ManualClock } from '../wireguard/index.js';
import {
  Status, IpProtocol, Ipv4Repr, parseIpv4, Ipv6Repr, parseIpv6, Icmpv4Repr, parseIcmpv4, Icmpv6Repr, parseIcmpv6,
  Icmpv4Quote, parseIcmpv4Quote, Icmpv6Quote, parseIcmpv6Quote, formatIpv4Address,
} from '../wire/index.js';
import { UserspaceStack } from './stack.js';
import { MemoryLink } from './memory-link.js';
import { StackError } from './errors.js';
import {
  echoPacket, udpPacket, ipv4Packet, ipv6Packet, inject, drain, turns, v4, v6, icmpv4Error, icmpv6Error,
} from './testing.js';

const A4 = '100.64.0.1';
const B4 = '100.64.0.2';
const A6 = 'fd00::1';
const B6 = 'fd00::2';

function stackB(opts: { clock?: ManualClock; mtu?: number } = {}): UserspaceStack {
  return new UserspaceStack({ addresses: [`${B4}/24`, `${B6}/64`], ...opts });
}

function pair(mtu = 1420) {
  const a = new UserspaceStack({ addresses: [`${A4}/24`, `${A6}/64`], mtu, name: 'a' });
  const b = new UserspaceStack({ addresses: [`${B4}/24`, `${B6}/64`], mtu, name: 'b' });
  const link = new MemoryLink(a, b);
  return { a, b, link, close: () => { link.close(); a.close(); b.close(); } };
}

function parse4(pkt: Buffer) {
  const ip = new Ipv4Repr();
  assert.equal(parseIpv4(pkt, 0, pkt.length, ip), Status.Ok);
  return ip;
}

function parse6(pkt: Buffer) {
  const ip = new Ipv6Repr();
  assert.equal(parseIpv6(pkt, 0, pkt.length, ip), Status.Ok);
  return ip;
}

test('stack: answers an IPv4 echo request with a reply carrying the same data', () => {
  const s = stackB();
  const payload = randomBytes(100);
  assert.equal(inject(s, echoPacket(A4, B4, 0x1234, 7, payload)), 1);
  const out = drain(s);
  assert.equal(out.length, 1);
  const ip = parse4(out[0]!);
  assert.equal(formatIpv4Address(ip.src), B4);
  assert.equal(formatIpv4Address(ip.dst), A4);
  assert.equal(ip.protocol, IpProtocol.Icmp);
  const icmp = new Icmpv4Repr();
  assert.equal(parseIcmpv4(out[0]!, ip.payloadOffset, ip.payloadLength, icmp), Status.Ok, 'reply checksum verifies');
  assert.equal(icmp.type, 0);
  assert.equal(icmp.ident, 0x1234);
  assert.equal(icmp.seqNo, 7);
  assert.deepEqual(out[0]!.subarray(icmp.payloadOffset, icmp.payloadOffset + icmp.payloadLength), payload);
  assert.equal(s.counters.echoRequestsIn, 1);
  assert.equal(s.counters.echoRepliesOut, 1);
  s.close();
});

test('stack: answers an IPv6 echo request (unicast and to ff02::1)', () => {
  const s = stackB();
  const payload = randomBytes(64);
  inject(s, echoPacket(A6, B6, 99, 1, payload), echoPacket(A6, 'ff02::1', 99, 2, payload));
  const out = drain(s);
  assert.equal(out.length, 2);
  for (const [i, pkt] of out.entries()) {
    const ip = parse6(pkt);
    assert.deepEqual(ip.src, v6(B6));
    assert.deepEqual(ip.dst, v6(A6));
    const icmp = new Icmpv6Repr();
    assert.equal(parseIcmpv6(pkt, ip.upperOffset, ip.upperLength, icmp, ip.src, 0, ip.dst, 0), Status.Ok, 'checksum verifies');
    assert.equal(icmp.type, 129);
    assert.equal(icmp.seqNo, i + 1);
    assert.deepEqual(pkt.subarray(icmp.payloadOffset, icmp.payloadOffset + icmp.payloadLength), payload);
  }
  s.close();
});

test('stack: drops bad packets and counts each reason', () => {
  const s = stackB();
  const good = echoPacket(A4, B4, 1, 1, Buffer.alloc(8));
  const badHeaderSum = Buffer.from(good);
  badHeaderSum[10] ^= 0xff;
  const badIcmpSum = Buffer.from(good);
  badIcmpSum[22] ^= 0xff;
  const badUdpSum = udpPacket(A4, B4, 1000, 2000, Buffer.from('x'));
  badUdpSum[27] ^= 0x01;
  inject(s,
    badHeaderSum,
    badIcmpSum,
    echoPacket(A4, '100.64.0.77', 1, 1, Buffer.alloc(8)), // not ours
    echoPacket(A4, '100.64.0.255', 1, 1, Buffer.alloc(8)), // broadcast echo: ignored
    echoPacket('224.0.0.1', B4, 1, 1, Buffer.alloc(8)), // multicast source
    good.subarray(0, 10), // truncated
    Buffer.from([0x20, 0, 0, 0]), // version 2
    echoPacket(A6, 'fd00::99', 1, 1, Buffer.alloc(8)), // not ours
    badUdpSum,
  );
  assert.equal(drain(s).length, 0);
  const c = s.counters;
  assert.equal(c.rxPackets, 9);
  assert.equal(c.rxV4Checksum, 1);
  assert.equal(c.icmpChecksum, 1);
  assert.equal(c.rxNotForUs, 2);
  assert.equal(c.icmpIgnored, 1);
  assert.equal(c.rxBadSource, 1);
  assert.equal(c.rxV4Truncated, 1);
  assert.equal(c.rxBadVersion, 1);
  assert.equal(c.udpChecksum, 1);
  s.close();
});

test('stack: UDP to a closed port gets ICMP port unreachable quoting it (v4 and v6), broadcast does not', () => {
  const s = stackB();
  const d4 = udpPacket(A4, B4, 5555, 9, Buffer.from('hello'));
  const d6 = udpPacket(A6, B6, 5555, 9, Buffer.from('hello'));
  inject(s, d4, d6, udpPacket(A4, '100.64.0.255', 5555, 9, Buffer.from('bcast')));
  const out = drain(s);
  assert.equal(out.length, 2);
  const ip = parse4(out[0]!);
  const icmp = new Icmpv4Repr();
  assert.equal(parseIcmpv4(out[0]!, ip.payloadOffset, ip.payloadLength, icmp), Status.Ok);
  assert.deepEqual([icmp.type, icmp.code], [3, 3]);
  const q = new Icmpv4Quote();
  assert.equal(parseIcmpv4Quote(icmp.payloadBuf, icmp.payloadOffset, icmp.payloadLength, q), Status.Ok);
  assert.deepEqual([formatIpv4Address(q.src), q.srcPort, q.dstPort], [A4, 5555, 9]);

  const ip6 = parse6(out[1]!);
  const icmp6 = new Icmpv6Repr();
  assert.equal(parseIcmpv6(out[1]!, ip6.upperOffset, ip6.upperLength, icmp6, ip6.src, 0, ip6.dst, 0), Status.Ok);
  assert.deepEqual([icmp6.type, icmp6.code], [1, 4]);
  const q6 = new Icmpv6Quote();
  assert.equal(parseIcmpv6Quote(icmp6.payloadBuf, icmp6.payloadOffset, icmp6.payloadLength, q6), Status.Ok);
  assert.deepEqual([q6.srcPort, q6.dstPort], [5555, 9]);
  assert.equal(s.counters.udpNoPort, 3);
  assert.equal(s.counters.icmpErrorsOut, 2);
  s.close();
});

test('stack: unknown protocols get protocol unreachable / parameter problem', () => {
  const s = stackB();
  inject(s, ipv4Packet(A4, B4, 253, Buffer.alloc(12)), ipv6Packet(A6, B6, 253, Buffer.alloc(12)));
  const out = drain(s);
  assert.equal(out.length, 2);
  const ip = parse4(out[0]!);
  assert.deepEqual([out[0]![ip.payloadOffset], out[0]![ip.payloadOffset + 1]], [3, 2]);
  const ip6 = parse6(out[1]!);
  assert.deepEqual([out[1]![ip6.upperOffset], out[1]![ip6.upperOffset + 1]], [4, 1]);
  assert.equal(out[1]!.readUInt32BE(ip6.upperOffset + 4), 6, 'pointer names the Next Header field');
  assert.equal(s.counters.rxUnknownProtocol, 2);
  s.close();
});

test('stack: ICMP errors are rate limited by a token bucket', () => {
  const clock = new ManualClock();
  const s = new UserspaceStack({ addresses: [`${B4}/24`], clock, limits: { icmpErrorsPerSecond: 10, icmpErrorBurst: 5 } });
  for (let i = 0; i < 20; i++) inject(s, udpPacket(A4, B4, 1000 + i, 9, Buffer.from('x')));
  assert.equal(drain(s).length, 5);
  assert.equal(s.counters.icmpErrorsRateLimited, 15);
  clock.advance(300); // three tokens
  for (let i = 0; i < 20; i++) inject(s, udpPacket(A4, B4, 1000 + i, 9, Buffer.from('x')));
  assert.equal(drain(s).length, 3);
  s.close();
});

test('stack: an unfinished fragmented datagram times out with ICMP time exceeded (reassembly)', () => {
  const clock = new ManualClock();
  const s = stackB({ clock });
  const first = ipv4Packet(A4, B4, IpProtocol.Udp, udpPacket(A4, B4, 1, 9, randomBytes(2000)).subarray(20, 1020), { ident: 77, mf: true });
  inject(s, first);
  assert.equal(s.reassembler.pending, 1);
  clock.advance(30_000);
  assert.equal(s.reassembler.pending, 0);
  const out = drain(s);
  assert.equal(out.length, 1);
  const ip = parse4(out[0]!);
  assert.equal(formatIpv4Address(ip.dst), A4);
  assert.deepEqual([out[0]![ip.payloadOffset], out[0]![ip.payloadOffset + 1]], [11, 1]);
  assert.deepEqual(out[0]!.subarray(ip.payloadOffset + 8, ip.payloadOffset + 28), first.subarray(0, 20), 'quotes the first fragment');
  s.close();
});

test('stack: readable notification once per burst, and again for leftovers', async () => {
  const s = stackB();
  let calls = 0;
  s.start(() => { calls++; });
  for (let i = 0; i < 100; i++) inject(s, echoPacket(A4, B4, 1, i, Buffer.alloc(8)));
  assert.equal(s.pendingOutput, 100);
  await turns(2);
  assert.equal(calls, 1);
  const bufs = Array.from({ length: 64 }, () => Buffer.alloc(2000));
  assert.equal(s.readBatch(bufs, new Uint32Array(64), 16), 64);
  await turns(2);
  assert.equal(calls, 2, 'leftovers are announced again');
  assert.equal(s.readBatch(bufs, new Uint32Array(64), 16), 36);
  await turns(2);
  assert.equal(calls, 2);
  s.close();
});

test('stack: ping between two stacks over a memory link (v4, v6), timeouts and closing', async () => {
  const { a, b, link, close } = pair();
  try {
    const rtt4 = await a.icmp.ping(4, v4(B4), { timeoutMs: 2000 });
    assert.ok(rtt4 >= 0 && rtt4 < 2000);
    const rtt6 = await b.icmp.ping(6, v6(A6), { timeoutMs: 2000, payload: randomBytes(3000) });
    assert.ok(rtt6 >= 0);
    assert.ok(b.counters.txFragments >= 3, 'a 3000-byte IPv6 ping is fragmented at the source');
    assert.equal(a.reassembler.counters.reassembled, 1);
    // Nobody has 100.64.0.9: no answer.
    await assert.rejects(a.icmp.ping(4, v4('100.64.0.9'), { timeoutMs: 50 }), (e: StackError) => e.code === 'ETIMEDOUT');
    // Replies lost on the link: also a timeout.
    link.filter = (_p, fromA) => fromA;
    await assert.rejects(a.icmp.ping(4, v4(B4), { timeoutMs: 50 }), (e: StackError) => e.code === 'ETIMEDOUT');
    const pending = a.icmp.ping(6, v6(B6), { timeoutMs: 5000 });
    a.close();
    await assert.rejects(pending, (e: StackError) => e.code === 'ECANCELED');
  } finally {
    close();
  }
});

test('stack: ping to our own address goes through loopback', async () => {
  const s = stackB();
  assert.ok((await s.icmp.ping(4, v4(B4))) >= 0);
  assert.ok((await s.icmp.ping(6, v6(B6))) >= 0);
  assert.equal(s.pendingOutput, 0, 'nothing went to the device');
  assert.equal(s.counters.loopbackPackets, 4);
  s.close();
});

test('stack: an ICMP host unreachable quoting our echo request fails the ping', async () => {
  const s = stackB();
  const p = s.icmp.ping(4, v4('100.64.0.50'), { timeoutMs: 5000 });
  const [req] = drain(s);
  assert.ok(req);
  inject(s, icmpv4Error('100.64.0.1', B4, 3, 1, req));
  await assert.rejects(p, (e: StackError) => e.code === 'EHOSTUNREACH');
  const p6 = s.icmp.ping(6, v6('fd00::50'), { timeoutMs: 5000 });
  const [req6] = drain(s);
  inject(s, icmpv6Error(A6, B6, 1, 3, req6!));
  await assert.rejects(p6, (e: StackError) => e.code === 'EHOSTUNREACH');
  s.close();
});

test('stack: big datagrams are fragmented to the MTU and reassembled by the peer (v4, v6)', async () => {
  const { a, b, close } = pair(1280);
  try {
    for (const family of [4, 6] as const) {
      const rx = b.udp.createSocket(family).bind(7000);
      const tx = a.udp.createSocket(family);
      const data = randomBytes(20_000);
      const got = new Promise<Buffer>((resolve) => rx.once('message', (m: Buffer) => resolve(m)));
      const before = a.counters.txFragments;
      tx.send(data, 7000, family === 4 ? B4 : B6);
      assert.deepEqual(await got, data);
      assert.equal(a.counters.txFragments - before, family === 4 ? 16 : 17);
      rx.close();
      tx.close();
    }
  } finally {
    close();
  }
});

test('stack: fragments carry the right offsets and flags, and never exceed the MTU', () => {
  const s = new UserspaceStack({ addresses: [`${A4}/24`, `${A6}/64`], mtu: 1000 });
  const payload = randomBytes(2500);
  assert.equal(s.sendIp(4, v4(A4), v4(B4), 253, payload, 0, payload.length), true);
  const out = drain(s);
  assert.equal(out.length, 3);
  const ips = out.map(parse4);
  assert.deepEqual(ips.map((ip) => [ip.fragmentOffset, ip.moreFragments, ip.payloadLength]), [[0, true, 976], [976, true, 976], [1952, false, 548]]);
  assert.ok(out.every((p) => p.length <= 1000));
  assert.equal(new Set(ips.map((ip) => ip.ident)).size, 1);
  // Don't fragment: refused.
  assert.equal(s.sendIp(4, v4(A4), v4(B4), 253, payload, 0, payload.length, { dontFragment: true }), false);
  assert.equal(s.counters.txTooBig, 1);
  assert.equal(s.sendIp(6, v6(A6), v6(B6), 253, payload, 0, payload.length), true);
  const out6 = drain(s);
  assert.equal(out6.length, 3);
  assert.ok(out6.every((p) => p.length <= 1000));
  s.close();
});

test('stack: path MTU learned from fragmentation-needed and packet-too-big', () => {
  const s = stackB();
  assert.equal(s.pathMtu(4, v4(A4)), 1420);
  const sent = udpPacket(B4, A4, 4000, 5000, Buffer.alloc(1300));
  inject(s, icmpv4Error('100.64.0.254', B4, 3, 4, sent, 1000));
  assert.equal(s.pathMtu(4, v4(A4)), 1000);
  assert.equal(s.ipOutput.mtu(4, v4(A4)), 1000);
  assert.equal(s.pathMtu(4, v4('100.64.0.3')), 1420, 'other destinations keep the device MTU');
  // No MTU in the message (old router): the RFC 1191 plateau below the quoted length.
  inject(s, icmpv4Error('100.64.0.254', B4, 3, 4, udpPacket(B4, '100.64.0.4', 1, 2, Buffer.alloc(1200))));
  assert.equal(s.pathMtu(4, v4('100.64.0.4')), 1006);
  // IPv6 packet too big, clamped to 1280.
  inject(s, icmpv6Error('fd00::fe', B6, 2, 0, udpPacket(B6, A6, 4000, 5000, Buffer.alloc(1300)), 1300));
  assert.equal(s.pathMtu(6, v6(A6)), 1300);
  inject(s, icmpv6Error('fd00::fe', B6, 2, 0, udpPacket(B6, 'fd00::3', 4000, 5000, Buffer.alloc(1300)), 600));
  assert.equal(s.pathMtu(6, v6('fd00::3')), 1280);
  assert.equal(s.counters.pmtuUpdates, 4);
  // Errors quoting packets that were not ours are ignored.
  inject(s, icmpv4Error('100.64.0.254', B4, 3, 4, udpPacket('100.64.0.9', A4, 1, 2, Buffer.alloc(100)), 600));
  assert.equal(s.counters.icmpErrorsBadQuote, 1);
  assert.equal(s.pathMtu(4, v4(A4)), 1000);
  s.close();
});

test('stack: port unreachable reaches the sending UDP socket as ECONNREFUSED', async () => {
  const { a, close } = pair();
  try {
    const sock = a.udp.createSocket(4);
    const err = new Promise<StackError>((resolve) => sock.on('error', resolve));
    sock.send(Buffer.from('anyone?'), 9999, B4);
    const e = await err;
    assert.equal(e.code, 'ECONNREFUSED');
    assert.equal(e.address, B4);
    assert.equal(e.port, 9999);
    // Without an 'error' listener it is only counted.
    const quiet = a.udp.createSocket(6);
    quiet.send(Buffer.from('anyone?'), 9999, B6);
    await turns(6);
    assert.equal(a.counters.udpIcmpErrorsIgnored, 1);
  } finally {
    close();
  }
});

test('stack: random and mutated packets never throw', () => {
  const s = stackB();
  const seeds = [
    echoPacket(A4, B4, 1, 1, randomBytes(40)), echoPacket(A6, B6, 1, 1, randomBytes(40)),
    udpPacket(A4, B4, 1, 9, randomBytes(30)), udpPacket(A6, B6, 1, 9, randomBytes(30)),
    icmpv4Error(A4, B4, 3, 4, udpPacket(B4, A4, 1, 2, randomBytes(40)), 900),
    icmpv6Error(A6, B6, 2, 0, udpPacket(B6, A6, 1, 2, randomBytes(40)), 1300),
    ipv4Packet(A4, B4, 17, randomBytes(64), { mf: true, ident: 3 }),
  ];
  s.udp.createSocket(4).bind(9);
  for (let i = 0; i < 50_000; i++) {
    let pkt: Buffer;
    if (i % 5 === 0) {
      pkt = randomBytes(Math.floor(Math.random() * 120));
      if (pkt.length > 0) pkt[0] = (Math.random() < 0.5 ? 0x45 : 0x60) | (pkt[0]! & 0x0f);
    } else {
      pkt = Buffer.from(seeds[i % seeds.length]!);
      for (let k = 0; k < 1 + (i % 4); k++) pkt[Math.floor(Math.random() * pkt.length)] = Math.floor(Math.random() * 256);
      if (i % 7 === 0) pkt = pkt.subarray(0, Math.floor(Math.random() * pkt.length));
    }
    inject(s, pkt);
    if (i % 64 === 0) drain(s);
  }
  assert.equal(s.counters.rxPackets, 50_000);
  s.close();
});
