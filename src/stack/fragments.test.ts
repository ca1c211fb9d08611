import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { ManualClock } from '../wireguard/index.js';
import { parseIpv4, Ipv4Repr, parseIpv6, Ipv6Repr, Status, IpProtocol } from '../wire/index.js';
import { Reassembler } from './fragments.js';
import { ipv4Packet, ipv6Fragment, v4 } from './testing.js';
import type { IpFamily } from './types.js';

const SRC = '100.64.0.1';
const DST = '100.64.0.2';

/** Splits `data` into IPv4 fragment packets of at most `size` data bytes (multiple of 8). */
function fragmentsV4(data: Buffer, size: number, ident = 7, protocol = IpProtocol.Udp): Buffer[] {
  const out: Buffer[] = [];
  for (let at = 0; at < data.length; at += size) {
    const chunk = data.subarray(at, Math.min(at + size, data.length));
    out.push(ipv4Packet(SRC, DST, protocol, chunk, { ident, fragOffset: at, mf: at + size < data.length }));
  }
  return out;
}

function insertV4(r: Reassembler, pkt: Buffer) {
  const ip = new Ipv4Repr();
  assert.equal(parseIpv4(pkt, 0, pkt.length, ip), Status.Ok);
  return r.insertV4(pkt, 0, ip.payloadOffset, ip.src, ip.dst, ip.protocol, ip.ident, ip.fragmentOffset, ip.moreFragments, ip.payloadOffset, ip.payloadLength);
}

function insertV6(r: Reassembler, pkt: Buffer) {
  const ip = new Ipv6Repr();
  assert.equal(parseIpv6(pkt, 0, pkt.length, ip), Status.Ok);
  const dataOff = ip.fragmentHeaderOffset + 8;
  return r.insertV6(pkt, 0, ip.fragmentHeaderOffset, ip.fragmentIdent, ip.fragmentOffset, ip.moreFragments, dataOff, pkt.length - dataOff);
}

/** The payload of a reassembled packet, checked to be a whole unfragmented IPv4 packet. */
function payloadV4(done: { buf: Buffer; off: number; len: number }): Buffer {
  const ip = new Ipv4Repr();
  assert.equal(parseIpv4(done.buf, done.off, done.len, ip), Status.Ok, 'reassembled header parses with a valid checksum');
  assert.equal(ip.moreFragments, false);
  assert.equal(ip.fragmentOffset, 0);
  assert.equal(ip.src, v4(SRC));
  assert.equal(ip.protocol, IpProtocol.Udp);
  return Buffer.from(done.buf.subarray(ip.payloadOffset, ip.payloadOffset + ip.payloadLength));
}

test('fragments: IPv4 in order, out of order and reversed give back the datagram', () => {
  const data = randomBytes(5000);
  for (const order of ['forward', 'shuffled', 'reverse']) {
    const r = new Reassembler(new ManualClock());
    const frags = fragmentsV4(data, 1400);
    if (order === 'reverse') frags.reverse();
    if (order === 'shuffled') frags.push(frags.shift()!, frags.shift()!);
    let done = null;
    for (let i = 0; i < frags.length; i++) {
      done = insertV4(r, frags[i]!);
      if (i < frags.length - 1) assert.equal(done, null, `${order}: complete too early`);
    }
    assert.ok(done, `${order}: not completed`);
    assert.deepEqual(payloadV4(done), data);
    assert.equal(r.pending, 0);
    assert.equal(r.bytes, 0);
    assert.equal(r.counters.reassembled, 1);
  }
});

test('fragments: exact duplicates are ignored, overlaps drop the datagram', () => {
  const data = randomBytes(3000);
  const r = new Reassembler(new ManualClock());
  const f = fragmentsV4(data, 1000);
  assert.equal(insertV4(r, f[0]!), null);
  assert.equal(insertV4(r, f[0]!), null);
  assert.equal(r.counters.duplicates, 1);
  // A fragment overlapping the first one with different bytes: the datagram is discarded.
  const evil = ipv4Packet(SRC, DST, IpProtocol.Udp, randomBytes(1000), { ident: 7, fragOffset: 504, mf: true });
  assert.equal(insertV4(r, evil), null);
  assert.equal(r.counters.overlaps, 1);
  assert.equal(r.pending, 0);
  // The rest alone never completes.
  assert.equal(insertV4(r, f[1]!), null);
  assert.equal(insertV4(r, f[2]!), null);
  assert.equal(r.counters.reassembled, 0);
});

test('fragments: IPv6 reassembly, and RFC 5722 overlap rejection', () => {
  const data = randomBytes(4000);
  const r = new Reassembler(new ManualClock());
  const frags = [0, 1232, 2464, 3696].map((at) => ipv6Fragment('fd00::1', 'fd00::2', IpProtocol.Udp, 0xabcdef, at, at + 1232 < data.length,
    data.subarray(at, Math.min(at + 1232, data.length))));
  assert.equal(insertV6(r, frags[3]!), null);
  assert.equal(insertV6(r, frags[1]!), null);
  assert.equal(insertV6(r, frags[0]!), null);
  const done = insertV6(r, frags[2]!);
  assert.ok(done);
  const ip = new Ipv6Repr();
  assert.equal(parseIpv6(done.buf, done.off, done.len, ip), Status.Ok);
  assert.equal(ip.hasFragment, false);
  assert.equal(ip.upperProtocol, IpProtocol.Udp);
  assert.deepEqual(Buffer.from(done.buf.subarray(ip.upperOffset, ip.upperOffset + ip.upperLength)), data);

  const r2 = new Reassembler(new ManualClock());
  insertV6(r2, frags[0]!);
  const overlapping = ipv6Fragment('fd00::1', 'fd00::2', IpProtocol.Udp, 0xabcdef, 1224, true, randomBytes(16));
  assert.equal(insertV6(r2, overlapping), null);
  assert.equal(r2.counters.overlaps, 1);
  assert.equal(r2.pending, 0);
});

test('fragments: datagrams are told apart by addresses, protocol and ident', () => {
  const r = new Reassembler(new ManualClock());
  const a = randomBytes(2000);
  const b = randomBytes(2000);
  const fa = fragmentsV4(a, 1000, 1);
  const fb = fragmentsV4(b, 1000, 2);
  assert.equal(insertV4(r, fa[0]!), null);
  assert.equal(insertV4(r, fb[1]!), null);
  assert.equal(r.pending, 2);
  const doneB = insertV4(r, fb[0]!);
  assert.ok(doneB);
  assert.deepEqual(payloadV4(doneB), b);
  const doneA = insertV4(r, fa[1]!);
  assert.ok(doneA);
  assert.deepEqual(payloadV4(doneA), a);
});

test('fragments: malformed and oversized fragments are refused and counted', () => {
  const r = new Reassembler(new ManualClock());
  // A non-last fragment whose length is not a multiple of 8.
  assert.equal(insertV4(r, ipv4Packet(SRC, DST, IpProtocol.Udp, randomBytes(1001), { fragOffset: 0, mf: true })), null);
  assert.equal(r.counters.malformed, 1);
  // Data past the end that an earlier last fragment set.
  insertV4(r, ipv4Packet(SRC, DST, IpProtocol.Udp, randomBytes(100), { ident: 3, fragOffset: 800, mf: false }));
  assert.equal(insertV4(r, ipv4Packet(SRC, DST, IpProtocol.Udp, randomBytes(1000), { ident: 3, fragOffset: 1000, mf: true })), null);
  assert.equal(r.counters.malformed, 2);
  // An IPv4 datagram that would exceed 65535 bytes.
  assert.equal(insertV4(r, ipv4Packet(SRC, DST, IpProtocol.Udp, randomBytes(104), { ident: 4, fragOffset: 65424, mf: false })), null);
  assert.equal(r.counters.tooBig, 1);
  // IPv6: offset + length over 65535.
  assert.equal(insertV6(r, ipv6Fragment('fd00::1', 'fd00::2', IpProtocol.Udp, 9, 65528, false, randomBytes(16))), null);
  assert.equal(r.counters.tooBig, 2);
});

test('fragments: timeouts drop datagrams and quote the first fragment (30 s IPv4, 60 s IPv6)', () => {
  const clock = new ManualClock();
  const quotes: { family: IpFamily; quote: Buffer }[] = [];
  const r = new Reassembler(clock, {}, (family, q, len) => quotes.push({ family, quote: Buffer.from(q.subarray(0, len)) }));
  const f4 = fragmentsV4(randomBytes(3000), 1000, 11);
  insertV4(r, f4[0]!);
  insertV4(r, f4[2]!);
  // A second datagram that never saw its first fragment: dropped silently.
  insertV4(r, fragmentsV4(randomBytes(3000), 1000, 12)[1]!);
  insertV6(r, ipv6Fragment('fd00::1', 'fd00::2', IpProtocol.Udp, 5, 0, true, randomBytes(1000)));
  assert.equal(r.pending, 3);
  clock.advance(29_999);
  assert.equal(r.pending, 3);
  clock.advance(1);
  assert.equal(r.pending, 1);
  assert.equal(r.counters.timeouts, 2);
  assert.equal(quotes.length, 1);
  assert.equal(quotes[0]!.family, 4);
  // The quote is the first fragment's header (MF set) and data from its start.
  assert.deepEqual(quotes[0]!.quote.subarray(0, 20), f4[0]!.subarray(0, 20));
  assert.deepEqual(quotes[0]!.quote.subarray(20, 28), f4[0]!.subarray(20, 28));
  clock.advance(30_000);
  assert.equal(r.pending, 0);
  assert.equal(quotes.length, 2);
  assert.equal(quotes[1]!.family, 6);
  assert.equal(quotes[1]!.quote[6], IpProtocol.Ipv6Frag, 'IPv6 quote keeps the fragment header');
  assert.equal(r.bytes, 0);
});

test('fragments: the concurrency and byte limits evict the oldest datagram', () => {
  const clock = new ManualClock();
  const r = new Reassembler(clock, { maxDatagrams: 3, maxBytes: 1 << 20 });
  const firsts = [1, 2, 3, 4].map((id) => fragmentsV4(randomBytes(2000), 1000, id));
  for (const f of firsts) insertV4(r, f[0]!);
  assert.equal(r.pending, 3);
  assert.equal(r.counters.evicted, 1);
  // Datagram 1 was evicted; 2..4 still complete, and 1's second half starts a new datagram.
  for (const f of firsts.slice(1)) assert.ok(insertV4(r, f[1]!));
  assert.equal(insertV4(r, firsts[0]![1]!), null);
  assert.equal(r.pending, 1);

  const small = new Reassembler(clock, { maxBytes: 12_000 });
  insertV4(small, fragmentsV4(randomBytes(8000), 1000, 21)[0]!); // holds 60 + max(2000, 4096)
  insertV4(small, fragmentsV4(randomBytes(8000), 1000, 22)[0]!);
  insertV4(small, fragmentsV4(randomBytes(8000), 1000, 23)[0]!);
  insertV4(small, fragmentsV4(randomBytes(8000), 1000, 24)[0]!);
  assert.ok(small.bytes <= 12_000, `held ${small.bytes} bytes`);
  assert.ok(small.counters.evicted >= 1);
});

test('fragments: too many separate ranges drop the datagram', () => {
  const r = new Reassembler(new ManualClock(), { maxRanges: 4 });
  for (let i = 0; i < 4; i++) insertV4(r, ipv4Packet(SRC, DST, IpProtocol.Udp, randomBytes(8), { ident: 5, fragOffset: i * 16, mf: true }));
  assert.equal(r.pending, 1);
  insertV4(r, ipv4Packet(SRC, DST, IpProtocol.Udp, randomBytes(8), { ident: 5, fragOffset: 4 * 16, mf: true }));
  assert.equal(r.counters.tooManyRanges, 1);
  assert.equal(r.pending, 0);
});

test('fragments: random fragment streams never throw and never exceed the limits', () => {
  const clock = new ManualClock();
  const r = new Reassembler(clock, { maxDatagrams: 8, maxBytes: 200_000 });
  const ip = new Ipv4Repr();
  for (let i = 0; i < 20_000; i++) {
    const len = 8 * (1 + Math.floor(Math.random() * 200));
    const off = 8 * Math.floor(Math.random() * 400);
    const pkt = ipv4Packet(SRC, DST, IpProtocol.Udp, randomBytes(len), { ident: i % 13, fragOffset: off, mf: Math.random() < 0.8 });
    if (parseIpv4(pkt, 0, pkt.length, ip) !== Status.Ok) continue;
    const done = r.insertV4(pkt, 0, 20, ip.src, ip.dst, ip.protocol, ip.ident, ip.fragmentOffset, ip.moreFragments, 20, ip.payloadLength);
    if (done) assert.equal(parseIpv4(done.buf, done.off, done.len, ip), Status.Ok);
    assert.ok(r.pending <= 8 && r.bytes <= 200_000);
    if (i % 1000 === 0) clock.advance(10_000);
  }
  r.clear();
  assert.equal(r.pending, 0);
});
