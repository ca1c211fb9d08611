import { test } from 'node:test';
import assert from 'node:assert/strict';
import { UdpPacket, UdpRepr, parseUdp, emitUdp, udpLength, UDP_HEADER_LEN } from './udp.js';
import { Ipv4Repr, parseIpv4, IpProtocol } from './ipv4.js';
import { Ipv6Repr, parseIpv6 } from './ipv6.js';
import { pseudoHeaderSumV4, pseudoHeaderSumV6 } from './checksum.js';
import { parseIpv4Address, parseIpv6Address } from './address.js';
import { Status } from './status.js';
import { fuzzParser, readHexPackets } from './fuzz-harness.js';

const ETH = 14;

/** A captured datagram with where it starts, its IP upper-layer length and its pseudo-header sum. */
interface Datagram { pkt: Buffer; off: number; len: number; pseudo: number; ip: 4 | 6 }

/** A naive ones' complement sum of 16-bit words, independent of checksum.ts. */
function onesSum(bytes: Buffer): number {
  let s = 0;
  for (let i = 0; i < bytes.length; i += 2) s += (bytes[i]! << 8) | (bytes[i + 1] ?? 0);
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  return s;
}

/** The captures were taken on a veth, which leaves TCP/UDP checksums to offload: the field holds
 * only the folded pseudo-header sum (CHECKSUM_PARTIAL). Checks that, then returns a copy with the
 * full checksum, computed by the naive sum above. */
function completeChecksum(d: Datagram): Datagram {
  const field = d.off + 6;
  let p = d.pseudo;
  while (p > 0xffff) p = (p & 0xffff) + (p >>> 16);
  assert.equal(d.pkt.readUInt16BE(field), p, 'captured checksum field holds the pseudo-header sum');
  const pkt = Buffer.from(d.pkt);
  pkt.writeUInt16BE(0, field);
  const pseudo = Buffer.alloc(4);
  pseudo.writeUInt16BE(d.pseudo >>> 16);
  pseudo.writeUInt16BE(d.pseudo & 0xffff, 2);
  const sum = ~onesSum(Buffer.concat([pseudo, pkt.subarray(d.off, d.off + d.len)])) & 0xffff;
  pkt.writeUInt16BE(sum === 0 ? 0xffff : sum, field);
  return { ...d, pkt };
}

function loadV4(): Datagram[] {
  const ip = new Ipv4Repr();
  return readHexPackets('testdata/captures/ipv4-udp.hex').map(({ bytes }) => {
    const pkt = bytes.subarray(ETH);
    assert.equal(parseIpv4(pkt, 0, pkt.length, ip), Status.Ok);
    const pseudo = pseudoHeaderSumV4(ip.src, ip.dst, IpProtocol.Udp, ip.payloadLength);
    return completeChecksum({ pkt, off: ip.payloadOffset, len: ip.payloadLength, pseudo, ip: 4 });
  });
}

function loadV6(): Datagram[] {
  const ip = new Ipv6Repr();
  return readHexPackets('testdata/captures/ipv6-udp.hex').map(({ bytes }) => {
    const pkt = bytes.subarray(ETH);
    assert.equal(parseIpv6(pkt, 0, pkt.length, ip), Status.Ok);
    const pseudo = pseudoHeaderSumV6(ip.src, 0, ip.dst, 0, IpProtocol.Udp, ip.upperLength);
    return completeChecksum({ pkt, off: ip.upperOffset, len: ip.upperLength, pseudo, ip: 6 });
  });
}

const v4 = loadV4();
const v6 = loadV6();
const all = [...v4, ...v6];

// A hand-written datagram 198.18.0.1:1234 -> 198.18.0.2:53 carrying "hi".
const DATAGRAM_V4 = Buffer.from(
  '04d2' + // source port 1234
  '0035' + // destination port 53
  '000a' + // length 10
  '0642' + // checksum: ~(c612+0001+c612+0002+0011+000a + 04d2+0035+000a+6869) = ~f9bd
  '6869', // payload "hi"
  'hex');

test('udp: deconstruct captured IPv4 and IPv6 datagrams', () => {
  const d = v4[0]!;
  const u = new UdpPacket().reset(d.pkt, d.off, d.len);
  assert.equal(u.check(), Status.Ok);
  assert.equal(u.dstPort, 9999);
  assert.equal(u.srcPort, 0xd9a5);
  assert.equal(u.length, 1380); // 1372 bytes of 'x' + 8
  assert.equal(u.checksum, 0x9576); // completed; the capture held the partial sum 0x919d
  assert.equal(u.payloadOffset, 28);
  assert.equal(u.payloadLength, 1372);
  assert.equal(d.pkt.subarray(u.payloadOffset, u.payloadOffset + u.payloadLength).toString(), 'x'.repeat(1372));
  assert.ok(u.verifyChecksum(d.pseudo));

  const e = v6[0]!;
  const w = new UdpPacket().reset(e.pkt, e.off, e.len);
  assert.equal(w.check(), Status.Ok);
  assert.equal(w.dstPort, 9999);
  assert.equal(w.length, 1380);
  assert.equal(w.checksum, 0xdeaf); // completed; the capture held the partial sum 0x9577
  assert.equal(e.pkt[w.payloadOffset], 'y'.charCodeAt(0));
  assert.ok(w.verifyChecksum(e.pseudo));
});

test('udp: construct the hand-written IPv4 datagram from a repr', () => {
  const r = new UdpRepr();
  r.srcPort = 1234;
  r.dstPort = 53;
  r.payloadLength = 2;
  const out = Buffer.alloc(udpLength(r));
  out.write('hi', UDP_HEADER_LEN);
  const pseudo = pseudoHeaderSumV4(parseIpv4Address('198.18.0.1')!, parseIpv4Address('198.18.0.2')!, IpProtocol.Udp, udpLength(r));
  assert.equal(emitUdp(r, out, 0, pseudo), UDP_HEADER_LEN);
  assert.deepEqual(out, DATAGRAM_V4);
});

test('udp: construct an IPv6 datagram; checksum matches a naive sum', () => {
  const src = Buffer.alloc(16);
  const dst = Buffer.alloc(16);
  parseIpv6Address('fd00::1', src);
  parseIpv6Address('fd00::2', dst);
  const r = new UdpRepr();
  r.srcPort = 1234;
  r.dstPort = 53;
  r.payloadLength = 3; // odd length: the last byte is padded with zero for the sum
  const out = Buffer.alloc(udpLength(r));
  out.write('hey', UDP_HEADER_LEN);
  emitUdp(r, out, 0, pseudoHeaderSumV6(src, 0, dst, 0, IpProtocol.Udp, udpLength(r)));
  assert.deepEqual(out.subarray(0, 6), Buffer.from('04d20035000b', 'hex'));
  const pseudo = Buffer.concat([src, dst, Buffer.from('0000000b00000011', 'hex')]);
  const body = Buffer.from(out);
  body.writeUInt16BE(0, 6);
  const want = ~onesSum(Buffer.concat([pseudo, body])) & 0xffff;
  assert.equal(out.readUInt16BE(6), want);
  const back = new UdpRepr();
  assert.equal(parseUdp(out, 0, out.length, back, pseudoHeaderSumV6(src, 0, dst, 0, IpProtocol.Udp, 11), 6), Status.Ok);
  assert.equal(back.payloadLength, 3);
});

test('udp: parse / emit round-trip of every captured datagram', () => {
  assert.equal(all.length, 2);
  for (const d of all) {
    const r = new UdpRepr();
    assert.equal(parseUdp(d.pkt, d.off, d.len, r, d.pseudo, d.ip), Status.Ok);
    assert.ok(r.checksumPresent);
    assert.equal(udpLength(r), d.len);
    const out = Buffer.alloc(udpLength(r));
    d.pkt.copy(out, UDP_HEADER_LEN, r.payloadOffset, r.payloadOffset + r.payloadLength);
    emitUdp(r, out, 0, d.pseudo);
    assert.deepEqual(out, d.pkt.subarray(d.off, d.off + d.len));
  }
});

test('udp: zero checksum means none over IPv4, is an error over IPv6', () => {
  const r = new UdpRepr();
  const a = Buffer.from(v4[0]!.pkt);
  a.writeUInt16BE(0, v4[0]!.off + 6);
  assert.equal(parseUdp(a, v4[0]!.off, v4[0]!.len, r, v4[0]!.pseudo, 4), Status.Ok);
  assert.equal(r.checksumPresent, false);
  const b = Buffer.from(v6[0]!.pkt);
  b.writeUInt16BE(0, v6[0]!.off + 6);
  assert.equal(parseUdp(b, v6[0]!.off, v6[0]!.len, r, v6[0]!.pseudo, 6), Status.Checksum);
  assert.equal(parseUdp(b, v6[0]!.off, v6[0]!.len, r, v6[0]!.pseudo, 6, false), Status.Ok);
});

test('udp: a checksum that computes to zero is sent as 0xffff', () => {
  const r = new UdpRepr();
  r.srcPort = 1;
  r.dstPort = 2;
  r.payloadLength = 2;
  const pseudo = pseudoHeaderSumV4(0xc6120001, 0xc6120002, IpProtocol.Udp, 10);
  const out = Buffer.alloc(10);
  emitUdp(r, out, 0, pseudo);
  // Choose the payload word so everything sums to 0xffff: the computed checksum is then 0.
  const c = out.readUInt16BE(6);
  out.writeUInt16BE(c, 8);
  emitUdp(r, out, 0, pseudo);
  assert.equal(out.readUInt16BE(6), 0xffff);
  assert.equal(parseUdp(out, 0, 10, new UdpRepr(), pseudo, 4), Status.Ok);
});

test('udp: Length shorter than the IP payload; trailing bytes ignored, checksum still right', () => {
  const d = v4[0]!;
  const buf = Buffer.concat([d.pkt.subarray(d.off, d.off + d.len), Buffer.from('00000000', 'hex')]);
  const ipLen = buf.length;
  const ip = new Ipv4Repr();
  parseIpv4(d.pkt, 0, d.pkt.length, ip);
  const r = new UdpRepr();
  assert.equal(parseUdp(buf, 0, ipLen, r, pseudoHeaderSumV4(ip.src, ip.dst, IpProtocol.Udp, ipLen), 4), Status.Ok);
  assert.equal(r.payloadLength, 1372);
  buf[10] ^= 0x40; // a payload bit flips: caught
  assert.equal(parseUdp(buf, 0, ipLen, r, pseudoHeaderSumV4(ip.src, ip.dst, IpProtocol.Udp, ipLen), 4), Status.Checksum);
});

test('udp: truncated, malformed and bad checksum', () => {
  const r = new UdpRepr();
  const good = DATAGRAM_V4;
  const pseudo = pseudoHeaderSumV4(0xc6120001, 0xc6120002, IpProtocol.Udp, 10);
  assert.equal(parseUdp(good, 0, 10, r, pseudo, 4), Status.Ok);
  assert.equal(parseUdp(good, 0, 7, r, pseudo, 4), Status.Truncated);
  assert.equal(parseUdp(good, 0, 9, r, pseudo, 4), Status.Truncated); // Length 10 > 9
  assert.equal(parseUdp(good, 2, 10, r, pseudo, 4), Status.Truncated); // range beyond the buffer
  const short = Buffer.from(good);
  short.writeUInt16BE(7, 4); // Length below the header size
  assert.equal(parseUdp(short, 0, 10, r, pseudo, 4), Status.Malformed);
  const flipped = Buffer.from(good);
  flipped[9] ^= 1;
  assert.equal(parseUdp(flipped, 0, 10, r, pseudo, 4), Status.Checksum);
  assert.equal(parseUdp(flipped, 0, 10, r, pseudo, 4, false), Status.Ok);
  // The same bytes with the wrong addresses in the pseudo-header fail too.
  assert.equal(parseUdp(good, 0, 10, r, pseudoHeaderSumV4(0xc6120001, 0xc6120003, IpProtocol.Udp, 10), 4), Status.Checksum);
});

test('udp: fuzz never throws, hangs or reads past len', () => {
  const r = new UdpRepr();
  const d = v4[0]!;
  const seeds = [...all.map((x) => x.pkt.subarray(x.off, x.off + x.len)), DATAGRAM_V4];
  const n = fuzzParser(seeds, (b, o, l) => {
    const checked = parseUdp(b, o, l, r, d.pseudo, 6);
    const st = parseUdp(b, o, l, r, 0, 4, false);
    if (st !== Status.Ok) return `${checked}:${st}`;
    return `${checked}:${r.srcPort}:${r.dstPort}:${r.payloadLength}:${r.checksumPresent}:${r.payloadOffset - o}`;
  });
  assert.ok(n > 0);
});
