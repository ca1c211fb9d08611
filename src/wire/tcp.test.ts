import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  TcpPacket, TcpRepr, TcpFlag, parseTcp, emitTcp, tcpHeaderLength, tcpLength, TCP_HEADER_LEN,
} from './tcp.js';
import { Ipv4Repr, parseIpv4, IpProtocol } from './ipv4.js';
import { Ipv6Repr, parseIpv6 } from './ipv6.js';
import { pseudoHeaderSumV4, pseudoHeaderSumV6 } from './checksum.js';
import { parseIpv6Address } from './address.js';
import { Status } from './status.js';
import { fuzzParser, readHexPackets } from './fuzz-harness.js';

const ETH = 14;
const CHECKSUM_AT = 16;

/** A captured segment: where it starts, its length from the IP header, its pseudo-header sum. */
interface Segment { pkt: Buffer; off: number; len: number; pseudo: number }

/** A naive ones' complement sum of 16-bit words, independent of checksum.ts. */
function onesSum(bytes: Buffer): number {
  let s = 0;
  for (let i = 0; i < bytes.length; i += 2) s += (bytes[i]! << 8) | (bytes[i + 1] ?? 0);
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  return s;
}

function fold(sum: number): number {
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return sum;
}

/** The expected checksum field for a segment, by the naive sum. */
function naiveChecksum(seg: Buffer, pseudoSum: number): number {
  const copy = Buffer.from(seg);
  copy.writeUInt16BE(0, CHECKSUM_AT);
  return ~fold(onesSum(copy) + fold(pseudoSum)) & 0xffff;
}

/** The captures were taken on a veth, which leaves TCP checksums to offload: the field holds only
 * the folded pseudo-header sum (CHECKSUM_PARTIAL). Checks that, then returns a copy with the full
 * checksum by the naive sum. */
function completeChecksum(s: Segment): Segment {
  assert.equal(s.pkt.readUInt16BE(s.off + CHECKSUM_AT), fold(s.pseudo), 'captured field holds the pseudo-header sum');
  const pkt = Buffer.from(s.pkt);
  pkt.writeUInt16BE(naiveChecksum(pkt.subarray(s.off, s.off + s.len), s.pseudo), s.off + CHECKSUM_AT);
  return { ...s, pkt };
}

const v4: Segment[] = readHexPackets('testdata/captures/ipv4-tcp.hex').map(({ bytes }) => {
  const pkt = bytes.subarray(ETH);
  const ip = new Ipv4Repr();
  assert.equal(parseIpv4(pkt, 0, pkt.length, ip), Status.Ok);
  const pseudo = pseudoHeaderSumV4(ip.src, ip.dst, IpProtocol.Tcp, ip.payloadLength);
  return completeChecksum({ pkt, off: ip.payloadOffset, len: ip.payloadLength, pseudo });
});
const v6: Segment[] = readHexPackets('testdata/captures/ipv6-tcp.hex').map(({ bytes }) => {
  const pkt = bytes.subarray(ETH);
  const ip = new Ipv6Repr();
  assert.equal(parseIpv6(pkt, 0, pkt.length, ip), Status.Ok);
  const pseudo = pseudoHeaderSumV6(ip.src, 0, ip.dst, 0, IpProtocol.Tcp, ip.upperLength);
  return completeChecksum({ pkt, off: ip.upperOffset, len: ip.upperLength, pseudo });
});
const all = [...v4, ...v6];

const SRC = 0xc6120001; // 198.18.0.1
const DST = 0xc6120002; // 198.18.0.2

// A hand-written SYN with every option emitTcp writes, in the layout Linux uses.
const SYN_HEADER =
  '89681f90' + // source port 35176, destination port 8080
  'a9f09d8b' + // sequence number
  '00000000' + // acknowledgment number
  'a' + '0' + '02' + // data offset 10 (40 bytes), reserved, flags SYN
  'faf0' + // window 64240
  '0000' + // checksum (filled in the test)
  '0000' + // urgent pointer
  '020405b4' + // MSS 1460
  '0402' + '080a' + '4149e47f' + '00000000' + // SACK permitted; timestamps val, ecr
  '01' + '03030a'; // NOP; window scale 10

// A hand-written ACK carrying three SACK blocks and timestamps.
const SACK_HEADER =
  '1f908968' + // source port 8080, destination port 35176
  '00001000' + // sequence number
  '00002000' + // acknowledgment number
  'd' + '0' + '10' + // data offset 13 (52 bytes), reserved, flags ACK
  '0100' + // window 256
  '0000' + // checksum (filled in the test)
  '0000' + // urgent pointer
  '0101' + '080a' + '00000011' + '00000022' + // NOP NOP; timestamps val 0x11, ecr 0x22
  '0101' + '0512' + // NOP NOP; SACK with 2 blocks (2 + 2 * 8 = 18)
  '00003000' + '00003100' + // block 1
  '00004000' + '00004200'; // block 2

test('tcp: deconstruct a captured SYN with options', () => {
  const s = v4[0]!;
  const t = new TcpPacket().reset(s.pkt, s.off, s.len);
  assert.equal(t.check(), Status.Ok);
  assert.equal(t.srcPort, 35176);
  assert.equal(t.dstPort, 8080);
  assert.equal(t.seqNumber, 2851118475);
  assert.equal(t.ackNumber, 0);
  assert.equal(t.headerLength, 40);
  assert.equal(t.flags, TcpFlag.Syn);
  assert.ok(t.hasFlag(TcpFlag.Syn) && !t.hasFlag(TcpFlag.Ack));
  assert.equal(t.window, 64240);
  assert.equal(t.urgentPointer, 0);
  assert.equal(t.payloadLength, 0);
  assert.deepEqual(s.pkt.subarray(t.optionsOffset, t.payloadOffset), Buffer.from(SYN_HEADER.slice(40), 'hex'));
  assert.ok(t.verifyChecksum(s.pseudo));

  const r = new TcpRepr();
  assert.equal(parseTcp(s.pkt, s.off, s.len, r, s.pseudo), Status.Ok);
  assert.ok(r.hasMss);
  assert.equal(r.mss, 1460);
  assert.ok(r.sackPermitted);
  assert.ok(r.hasTimestamps);
  assert.equal(r.tsVal, 1095361663);
  assert.equal(r.tsEcr, 0);
  assert.ok(r.hasWindowScale);
  assert.equal(r.windowScale, 10);
  assert.equal(r.sackCount, 0);
});

test('tcp: deconstruct a captured IPv6 data segment', () => {
  const s = v6.find((x) => new TcpPacket().reset(x.pkt, x.off, x.len).payloadLength > 0)!;
  const r = new TcpRepr();
  assert.equal(parseTcp(s.pkt, s.off, s.len, r, s.pseudo), Status.Ok);
  assert.equal(r.flags, TcpFlag.Psh | TcpFlag.Ack);
  assert.equal(r.dstPort, 8081);
  assert.equal(r.payloadLength, 83);
  assert.equal(r.payloadOffset, s.off + 32);
  assert.equal(s.pkt.subarray(r.payloadOffset, r.payloadOffset + 4).toString(), 'GET ');
  assert.ok(r.hasTimestamps && !r.hasMss && !r.hasWindowScale && !r.sackPermitted);
});

test('tcp: construct the hand-written SYN from a repr', () => {
  const r = new TcpRepr();
  r.srcPort = 35176;
  r.dstPort = 8080;
  r.seqNumber = 0xa9f09d8b;
  r.flags = TcpFlag.Syn;
  r.window = 64240;
  r.hasMss = true;
  r.mss = 1460;
  r.sackPermitted = true;
  r.hasTimestamps = true;
  r.tsVal = 0x4149e47f;
  r.hasWindowScale = true;
  r.windowScale = 10;
  assert.equal(tcpHeaderLength(r), 40);
  const out = Buffer.alloc(tcpLength(r));
  const pseudo = pseudoHeaderSumV4(SRC, DST, IpProtocol.Tcp, tcpLength(r));
  assert.equal(emitTcp(r, out, 0, pseudo), 40);
  const want = Buffer.from(SYN_HEADER, 'hex');
  want.writeUInt16BE(naiveChecksum(want, pseudo), CHECKSUM_AT);
  assert.deepEqual(out, want);
  // Same header as the kernel's captured SYN apart from the checksum over other addresses.
  assert.deepEqual(out.subarray(0, 16), v4[0]!.pkt.subarray(v4[0]!.off, v4[0]!.off + 16));
});

test('tcp: construct the hand-written SACK segment with a payload', () => {
  const r = new TcpRepr();
  r.srcPort = 8080;
  r.dstPort = 35176;
  r.seqNumber = 0x1000;
  r.ackNumber = 0x2000;
  r.flags = TcpFlag.Ack;
  r.window = 256;
  r.hasTimestamps = true;
  r.tsVal = 0x11;
  r.tsEcr = 0x22;
  r.sackBlocks.set([0x3000, 0x3100, 0x4000, 0x4200]);
  r.sackCount = 2;
  r.payloadLength = 3;
  const out = Buffer.alloc(tcpLength(r));
  out.write('abc', tcpHeaderLength(r));
  const src = Buffer.alloc(16);
  const dst = Buffer.alloc(16);
  parseIpv6Address('fd00::1', src);
  parseIpv6Address('fd00::2', dst);
  const pseudo = pseudoHeaderSumV6(src, 0, dst, 0, IpProtocol.Tcp, tcpLength(r));
  assert.equal(emitTcp(r, out, 0, pseudo), 52);
  const want = Buffer.concat([Buffer.from(SACK_HEADER, 'hex'), Buffer.from('abc')]);
  want.writeUInt16BE(naiveChecksum(want, pseudo), CHECKSUM_AT);
  assert.deepEqual(out, want);

  const back = new TcpRepr();
  assert.equal(parseTcp(out, 0, out.length, back, pseudo), Status.Ok);
  assert.equal(back.sackCount, 2);
  assert.deepEqual([...back.sackBlocks.subarray(0, 4)], [0x3000, 0x3100, 0x4000, 0x4200]);
  assert.equal(back.payloadLength, 3);
});

test('tcp: SACK blocks: four fit without timestamps, three with', () => {
  const r = new TcpRepr();
  r.flags = TcpFlag.Ack;
  r.sackBlocks.set([1, 2, 3, 4, 5, 6, 7, 8]);
  r.sackCount = 4;
  assert.equal(tcpHeaderLength(r), 20 + 4 + 32);
  const out = Buffer.alloc(tcpLength(r));
  emitTcp(r, out, 0, 0);
  const back = new TcpRepr();
  assert.equal(parseTcp(out, 0, out.length, back, 0), Status.Ok);
  assert.equal(back.sackCount, 4);
  assert.deepEqual([...back.sackBlocks], [1, 2, 3, 4, 5, 6, 7, 8]);
  r.hasTimestamps = true;
  assert.equal(tcpHeaderLength(r), 20 + 12 + 4 + 24);
  const out2 = Buffer.alloc(tcpLength(r));
  emitTcp(r, out2, 0, 0);
  assert.equal(parseTcp(out2, 0, out2.length, back, 0), Status.Ok);
  assert.equal(back.sackCount, 3);
  assert.ok(back.hasTimestamps);
});

test('tcp: parse / emit round-trip of every captured segment', () => {
  assert.equal(all.length, 24);
  for (const s of all) {
    const r = new TcpRepr();
    assert.equal(parseTcp(s.pkt, s.off, s.len, r, s.pseudo), Status.Ok);
    assert.equal(tcpLength(r), s.len);
    const out = Buffer.alloc(tcpLength(r));
    const hl = tcpHeaderLength(r);
    s.pkt.copy(out, hl, r.payloadOffset, r.payloadOffset + r.payloadLength);
    assert.equal(emitTcp(r, out, 0, s.pseudo), hl);
    assert.deepEqual(out, s.pkt.subarray(s.off, s.off + s.len));
  }
});

/** A bare 20-byte header followed by `optionsHex`, data offset set to fit; checksum not filled. */
function withOptions(optionsHex: string): Buffer {
  const opts = Buffer.from(optionsHex, 'hex');
  const b = Buffer.alloc(TCP_HEADER_LEN + opts.length);
  b.writeUInt16BE(1, 0);
  b.writeUInt16BE(2, 2);
  b[12] = ((TCP_HEADER_LEN + opts.length) / 4) << 4;
  b[13] = TcpFlag.Ack;
  opts.copy(b, TCP_HEADER_LEN);
  return b;
}

test('tcp: unknown options are skipped, EOL ends the list', () => {
  const r = new TcpRepr();
  const cases: [string, string, (r: TcpRepr) => boolean][] = [
    ['MPTCP-like kind 30 then MSS', '1e04abcd020405b4', (x) => x.hasMss && x.mss === 1460],
    ['TFO cookie kind 34 (len 10) then NOPs', '220a0102030405060708' + '0101', (x) => !x.hasMss && x.sackCount === 0],
    ['EOL then junk is ignored', '00ffffff', (x) => !x.hasMss],
    ['MSS then EOL then junk', '020405b400ff0000', (x) => x.mss === 1460],
  ];
  for (const [what, hex, check] of cases) {
    const b = withOptions(hex);
    assert.equal(parseTcp(b, 0, b.length, r, 0, false), Status.Ok, what);
    assert.ok(check(r), what);
  }
});

test('tcp: malformed options', () => {
  const r = new TcpRepr();
  const cases: [string, string][] = [
    ['length 0', '1e000000'],
    ['length 1', '1e010000'],
    ['length past the header', '1e090000'],
    ['kind without a length byte', '010101' + '1e'],
    ['MSS of length 3', '02030501'],
    ['window scale of length 4', '03040a00'],
    ['SACK-permitted of length 3', '04030000'],
    ['SACK with no blocks', '05020000'],
    ['SACK with a partial block', '050e' + '000000010000000200000003' + '0000'],
    ['timestamps of length 8', '080800000001000000020000'],
  ];
  for (const [what, hex] of cases) {
    const b = withOptions(hex);
    assert.equal(b.length % 4, 0, what);
    assert.equal(parseTcp(b, 0, b.length, r, 0, false), Status.Malformed, what);
  }
});

test('tcp: flags, including NS', () => {
  const r = new TcpRepr();
  r.flags = TcpFlag.Ns | TcpFlag.Cwr | TcpFlag.Ece | TcpFlag.Urg | TcpFlag.Fin;
  r.urgentPointer = 7;
  const out = Buffer.alloc(tcpLength(r));
  emitTcp(r, out, 0, 0);
  assert.equal(out.readUInt16BE(12), 0x5000 | 0x1e1);
  const back = new TcpRepr();
  assert.equal(parseTcp(out, 0, out.length, back, 0), Status.Ok);
  assert.equal(back.flags, r.flags);
  assert.equal(back.urgentPointer, 7);
});

test('tcp: truncated, malformed and bad checksum', () => {
  const s = v4[0]!;
  const seg = Buffer.from(s.pkt.subarray(s.off, s.off + s.len));
  const r = new TcpRepr();
  assert.equal(parseTcp(seg, 0, seg.length, r, s.pseudo), Status.Ok);
  assert.equal(parseTcp(seg, 0, 19, r, s.pseudo), Status.Truncated);
  assert.equal(parseTcp(seg, 0, 39, r, s.pseudo, false), Status.Truncated); // data offset 40 > 39
  assert.equal(parseTcp(seg, 1, seg.length, r, s.pseudo), Status.Truncated); // range beyond the buffer
  const small = Buffer.from(seg);
  small[12] = 0x40; // data offset 4 (16 bytes)
  assert.equal(parseTcp(small, 0, small.length, r, s.pseudo, false), Status.Malformed);
  const flipped = Buffer.from(seg);
  flipped[4] ^= 0x80; // sequence number changed
  assert.equal(parseTcp(flipped, 0, flipped.length, r, s.pseudo), Status.Checksum);
  assert.equal(parseTcp(flipped, 0, flipped.length, r, s.pseudo, false), Status.Ok);
  assert.equal(parseTcp(seg, 0, seg.length, r, s.pseudo + 1), Status.Checksum); // wrong pseudo-header
  // The view fills the checksum back.
  new TcpPacket().reset(flipped, 0, flipped.length).fillChecksum(s.pseudo);
  assert.equal(parseTcp(flipped, 0, flipped.length, r, s.pseudo), Status.Ok);
});

test('tcp: a repr is refilled in place; old options do not leak into the next parse', () => {
  const r = new TcpRepr();
  const blocks = r.sackBlocks;
  const syn = v4[0]!;
  assert.equal(parseTcp(syn.pkt, syn.off, syn.len, r, syn.pseudo), Status.Ok);
  assert.ok(r.hasMss);
  const ack = v4[2]!;
  assert.equal(parseTcp(ack.pkt, ack.off, ack.len, r, ack.pseudo), Status.Ok);
  assert.ok(!r.hasMss && !r.hasWindowScale && !r.sackPermitted && r.hasTimestamps);
  assert.equal(r.sackBlocks, blocks);
});

test('tcp: fuzz never throws, hangs or reads past len', () => {
  const r = new TcpRepr();
  const seeds = [
    ...all.map((s) => s.pkt.subarray(s.off, s.off + s.len)),
    Buffer.from(SACK_HEADER, 'hex'),
    withOptions('1e04abcd220a010203040506070801010000'),
  ];
  const pseudo = all[0]!.pseudo;
  const n = fuzzParser(seeds, (b, o, l) => {
    const checked = parseTcp(b, o, l, r, pseudo);
    const st = parseTcp(b, o, l, r, 0, false);
    if (st !== Status.Ok) return `${checked}:${st}`;
    return `${checked}:${r.srcPort}:${r.dstPort}:${r.seqNumber}:${r.ackNumber}:${r.flags}:${r.window}:` +
      `${r.hasMss}:${r.mss}:${r.hasWindowScale}:${r.windowScale}:${r.sackPermitted}:${r.hasTimestamps}:${r.tsVal}:` +
      `${r.tsEcr}:${r.sackCount}:${r.sackBlocks.subarray(0, 2 * r.sackCount).join(',')}:${r.payloadLength}`;
  });
  assert.ok(n > 0);
});
