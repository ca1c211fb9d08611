import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  Icmpv6Packet, Icmpv6Repr, Icmpv6Quote, parseIcmpv6, emitIcmpv6, icmpv6Length, parseIcmpv6Quote,
  icmpv6ChecksumVerifies, fillIcmpv6Checksum, icmpv6IsError, icmpv6QuoteLength,
  Icmpv6Type, Icmpv6DstUnreachable, Icmpv6TimeExceeded, Icmpv6ParamProblem, ICMPV6_HEADER_LEN,
} from './icmpv6.js';
import { IpProtocol } from './ipv4.js';
import { Status } from './status.js';
import { formatIpv6Address, parseIpv6Address } from './address.js';
import { fuzzParser, readHexPackets } from './fuzz-harness.js';

const ETH = 14;
const IP6 = 40;
const SRC = 8;
const DST = 24;

/** An ICMPv6 message inside an Ethernet + IPv6 frame (walking a hop-by-hop header by hand). */
interface Captured { name: string; ip: Buffer; at: number; len: number }
function icmpv6Of(name: string, frame: Buffer): Captured | null {
  const ip = frame.subarray(ETH);
  let nh = ip[6]!;
  let at = IP6;
  if (nh === IpProtocol.HopByHop) { nh = ip[at]!; at += (ip[at + 1]! + 1) * 8; }
  if (nh !== IpProtocol.Icmpv6) return null;
  return { name, ip, at, len: IP6 + ip.readUInt16BE(4) - at };
}
const all = [
  ...readHexPackets('testdata/captures/ipv6-icmp.hex'),
  ...readHexPackets('testdata/captures/icmpv6-extra.hex'),
].map((p) => icmpv6Of(p.name, p.bytes)).filter((c): c is Captured => c !== null);
// This codec's kinds: echo and errors (ND and MLD have their own files and tests).
const captured = all.filter((c) => icmpv6IsError(c.ip[c.at]!) || c.ip[c.at] === 128 || c.ip[c.at] === 129);
const find = (re: RegExp): Captured => {
  const hit = captured.find((c) => re.test(c.name));
  assert.ok(hit, `no captured packet matches ${re}`);
  return hit;
};
const parse = (c: Captured, r: Icmpv6Repr, verify = true) =>
  parseIcmpv6(c.ip, c.at, c.len, r, c.ip, SRC, c.ip, DST, verify);

const A1 = Buffer.alloc(16);
const A2 = Buffer.alloc(16);
parseIpv6Address('fd00::1', A1);
parseIpv6Address('fd00::2', A2);

test('icmpv6: deconstruct a captured echo request', () => {
  const c = find(/icmpv6 type 128/);
  const v = new Icmpv6Packet().reset(c.ip, c.at, c.len);
  assert.equal(v.check(), Status.Ok);
  assert.equal(v.msgType, Icmpv6Type.EchoRequest);
  assert.equal(v.code, 0);
  assert.equal(v.seqNo, 1);
  assert.equal(v.payloadLength, 56); // ping -s 56
  assert.ok(v.verifyChecksum(c.ip, SRC, c.ip, DST));
  assert.ok(!v.verifyChecksum(A1, 0, c.ip, DST)); // another source address
});

test('icmpv6: deconstruct captured errors and their quoted packets', () => {
  const r = new Icmpv6Repr();
  const q = new Icmpv6Quote();

  const ptb = find(/packet too big/);
  assert.equal(parse(ptb, r), Status.Ok);
  assert.equal(r.type, Icmpv6Type.PacketTooBig);
  assert.equal(r.mtu, 1280);
  // ping -s 1400 went out as a first fragment of 1400 bytes (the RA set the link MTU to 1400).
  assert.equal(r.payloadLength, icmpv6QuoteLength(1400));
  assert.equal(r.payloadLength, 1232);
  assert.equal(parseIcmpv6Quote(r.payloadBuf, r.payloadOffset, r.payloadLength, q), Status.Ok);
  assert.equal(formatIpv6Address(ptb.ip, q.dstOffset), 'fd00:cafe:20::2');
  assert.equal(q.payloadLength, 1360);
  assert.equal(q.transportOffset, r.payloadOffset + IP6 + 8); // after the fragment header
  assert.ok(q.upperLayerFound && q.hasEchoIdent && !q.hasPorts);
  assert.equal(q.protocol, IpProtocol.Icmpv6);
  assert.equal(q.echoIdent, ptb.ip.readUInt16BE(q.transportOffset + 4));

  const port = find(/icmpv6 type 1\b/); // UDP to a closed port (capture-testdata.sh)
  assert.equal(parse(port, r), Status.Ok);
  assert.deepEqual([r.type, r.code], [Icmpv6Type.DstUnreachable, Icmpv6DstUnreachable.PortUnreachable]);
  assert.equal(parseIcmpv6Quote(r.payloadBuf, r.payloadOffset, r.payloadLength, q), Status.Ok);
  assert.deepEqual([q.protocol, q.hasPorts, q.dstPort], [IpProtocol.Udp, true, 9999]);
  assert.equal(formatIpv6Address(port.ip, q.srcOffset), 'fd00:cafe::1');

  const te = find(/time exceeded/);
  assert.equal(parse(te, r), Status.Ok);
  assert.deepEqual([r.type, r.code], [Icmpv6Type.TimeExceeded, Icmpv6TimeExceeded.HopLimitExceeded]);
  assert.equal(parseIcmpv6Quote(r.payloadBuf, r.payloadOffset, r.payloadLength, q), Status.Ok);
  assert.equal(q.hopLimit, 1);

  const pp = find(/parameter problem/);
  assert.equal(parse(pp, r), Status.Ok);
  assert.deepEqual([r.type, r.code, r.pointer], [Icmpv6Type.ParamProblem, Icmpv6ParamProblem.UnrecognizedNextHeader, 6]);
  assert.equal(parseIcmpv6Quote(r.payloadBuf, r.payloadOffset, r.payloadLength, q), Status.Ok);
  assert.deepEqual([q.protocol, q.upperLayerFound, q.hasPorts], [253, true, false]);

  assert.equal(parse(find(/unreachable route/), r), Status.Ok);
  assert.equal(r.code, Icmpv6DstUnreachable.NoRoute);
  assert.equal(parse(find(/unreachable prohibited/), r), Status.Ok);
  assert.equal(r.code, Icmpv6DstUnreachable.AdminProhibited);
});

test('icmpv6: construct an echo request from a repr', () => {
  // Pseudo-header: fd00::1 -> fd00::2, length 12, next header 58.
  const want = Buffer.from(
    '80' + // type 128: echo request
    '00' + // code 0
    '92b1' + // checksum over pseudo-header + message
    '1234' + // identifier
    '0001' + // sequence number
    '6d657368', // data "mesh"
    'hex');
  const r = new Icmpv6Repr();
  r.ident = 0x1234;
  r.seqNo = 1;
  r.payloadBuf = Buffer.from('mesh');
  r.payloadLength = 4;
  const out = Buffer.alloc(icmpv6Length(r));
  assert.equal(emitIcmpv6(r, out, 0, A1, 0, A2, 0), 12);
  assert.deepEqual(out, want);
  assert.ok(icmpv6ChecksumVerifies(out, 0, out.length, A1, 0, A2, 0));
  assert.ok(!icmpv6ChecksumVerifies(out, 0, out.length, A2, 0, A2, 0));
});

test('icmpv6: construct packet too big with a quoted packet', () => {
  const quote = Buffer.from(
    '60000000' + // version 6, traffic class 0, flow label 0
    '0578' + '11' + '40' + // payload length 1400, next header UDP, hop limit 64
    'fd000000000000000000000000000002' + // source fd00::2
    'fd000000000000000000000000000003' + // destination fd00::3
    '3039' + '270f' + '0578' + '0000', // UDP 12345 -> 9999, length 1400, checksum 0
    'hex');
  const want = Buffer.from(
    '02' + // type 2: packet too big
    '00' + // code 0
    '3109' + // checksum (fd00::1 -> fd00::2)
    '00000500' + // MTU 1280
    quote.toString('hex'),
    'hex');
  const r = new Icmpv6Repr();
  r.type = Icmpv6Type.PacketTooBig;
  r.mtu = 1280;
  r.payloadBuf = quote;
  r.payloadLength = quote.length;
  const out = Buffer.alloc(icmpv6Length(r));
  emitIcmpv6(r, out, 0, A1, 0, A2, 0);
  assert.deepEqual(out, want);
  const back = new Icmpv6Repr();
  assert.equal(parseIcmpv6(out, 0, out.length, back, A1, 0, A2, 0), Status.Ok);
  assert.equal(back.mtu, 1280);
  const q = new Icmpv6Quote();
  assert.equal(parseIcmpv6Quote(out, ICMPV6_HEADER_LEN, quote.length, q), Status.Ok);
  assert.deepEqual([q.srcPort, q.dstPort, q.payloadLength], [12345, 9999, 1400]);
});

test('icmpv6: parse / emit round-trip of every captured echo and error', () => {
  assert.ok(captured.length >= 15);
  const r = new Icmpv6Repr();
  for (const c of captured) {
    assert.equal(parse(c, r), Status.Ok, c.name);
    const out = Buffer.alloc(icmpv6Length(r) + 1);
    assert.equal(emitIcmpv6(r, out, 1, c.ip, SRC, c.ip, DST), c.len);
    assert.deepEqual(out.subarray(1), c.ip.subarray(c.at, c.at + c.len), c.name);
  }
});

test('icmpv6: quotes walk extension headers', () => {
  const q = new Icmpv6Quote();
  const hdr = (nh: number, plen: number) => {
    const b = Buffer.alloc(IP6);
    b[0] = 0x60; b.writeUInt16BE(plen, 4); b[6] = nh; b[7] = 64;
    A1.copy(b, SRC); A2.copy(b, DST);
    return b;
  };
  const hbh = Buffer.from('2c00' + '010400000000', 'hex'); // next: fragment; PadN
  const fragFirst = Buffer.from('11000001' + 'deadbeef', 'hex'); // next: UDP; offset 0, M=1
  const udp = Buffer.from('1f90' + '0035' + '0010' + '0000', 'hex'); // 8080 -> 53
  const pkt = Buffer.concat([hdr(IpProtocol.HopByHop, 24), hbh, fragFirst, udp]);
  assert.equal(parseIcmpv6Quote(pkt, 0, pkt.length, q), Status.Ok);
  assert.deepEqual([q.protocol, q.upperLayerFound, q.srcPort, q.dstPort, q.transportOffset], [IpProtocol.Udp, true, 8080, 53, 56]);
  // Cut inside the fragment header: the walk stops there.
  assert.equal(parseIcmpv6Quote(pkt, 0, 52, q), Status.Ok);
  assert.deepEqual([q.protocol, q.upperLayerFound, q.hasPorts], [IpProtocol.Ipv6Frag, false, false]);
  // A later fragment carries no transport header.
  const later = Buffer.from(pkt);
  later.writeUInt16BE(0x00b9, 50);
  assert.equal(parseIcmpv6Quote(later, 0, later.length, q), Status.Ok);
  assert.deepEqual([q.protocol, q.upperLayerFound], [IpProtocol.Ipv6Frag, false]);
  // Header length running past the quote.
  const long = Buffer.from(pkt);
  long[41] = 9;
  assert.equal(parseIcmpv6Quote(long, 0, long.length, q), Status.Ok);
  assert.equal(q.upperLayerFound, false);
  // A loop of destination options headers is cut off.
  const loop = Buffer.concat([hdr(IpProtocol.Ipv6Opts, 80), Buffer.from('3c00010400000000'.repeat(10), 'hex')]);
  assert.equal(parseIcmpv6Quote(loop, 0, loop.length, q), Status.Malformed);
  assert.equal(parseIcmpv6Quote(pkt, 0, 39, q), Status.Truncated);
  const v4 = Buffer.from(pkt);
  v4[0] = 0x45;
  assert.equal(parseIcmpv6Quote(v4, 0, v4.length, q), Status.Malformed);
});

test('icmpv6: truncated, bad checksum, ND/MLD/unknown types are Unsupported', () => {
  const c = find(/packet too big/);
  const r = new Icmpv6Repr();
  assert.equal(parseIcmpv6(c.ip, c.at, 7, r, c.ip, SRC, c.ip, DST), Status.Truncated);
  assert.equal(parseIcmpv6(c.ip, c.at, c.len + 1, r, c.ip, SRC, c.ip, DST), Status.Truncated);
  const bad = Buffer.from(c.ip);
  bad[c.at + 7] ^= 0x10; // MTU changed, checksum not updated
  assert.equal(parseIcmpv6(bad, c.at, c.len, r, bad, SRC, bad, DST), Status.Checksum);
  assert.equal(parseIcmpv6(bad, c.at, c.len, r, bad, SRC, bad, DST, false), Status.Ok);
  assert.equal(r.mtu, 1280 ^ 0x10);
  bad[SRC + 15] ^= 1; // a different source address breaks the pseudo-header sum
  assert.equal(parseIcmpv6(c.ip, c.at, c.len, r, bad, SRC, c.ip, DST), Status.Checksum);
  const ns = all.find((x) => x.ip[x.at] === Icmpv6Type.NeighborSolicit)!;
  assert.equal(parseIcmpv6(ns.ip, ns.at, ns.len, r, ns.ip, SRC, ns.ip, DST), Status.Unsupported);
  assert.equal(r.type, Icmpv6Type.NeighborSolicit);
  const unknown = Buffer.from('c8000000' + '00000000', 'hex'); // type 200
  fillIcmpv6Checksum(unknown, 0, unknown.length, A1, 0, A2, 0);
  assert.equal(parseIcmpv6(unknown, 0, unknown.length, r, A1, 0, A2, 0), Status.Unsupported);
  assert.equal(r.type, 200);
});

test('icmpv6: view setters and fillChecksum', () => {
  const c = find(/icmpv6 type 129/);
  const ip = Buffer.from(c.ip);
  const v = new Icmpv6Packet().reset(ip, c.at, c.len);
  v.msgType = Icmpv6Type.EchoRequest;
  v.seqNo = 0x1ffff;
  assert.ok(!v.verifyChecksum(ip, SRC, ip, DST));
  v.fillChecksum(ip, SRC, ip, DST);
  assert.ok(v.verifyChecksum(ip, SRC, ip, DST));
  const r = new Icmpv6Repr();
  assert.equal(parseIcmpv6(ip, c.at, c.len, r, ip, SRC, ip, DST), Status.Ok);
  assert.deepEqual([r.type, r.seqNo], [Icmpv6Type.EchoRequest, 0xffff]);
});

test('icmpv6: fuzz never throws, hangs or reads past len', () => {
  const r = new Icmpv6Repr();
  const q = new Icmpv6Quote();
  const n = fuzzParser(captured.map((c) => c.ip.subarray(c.at, c.at + c.len)), (b, o, l) => {
    const st = parseIcmpv6(b, o, l, r, A1, 0, A2, 0, (l & 3) === 0);
    if (st !== Status.Ok) return st;
    let d = `${r.type}:${r.code}:${r.ident}:${r.seqNo}:${r.mtu}:${r.pointer}:${r.payloadOffset - o}:${r.payloadLength}`;
    if (icmpv6IsError(r.type)) {
      const qs = parseIcmpv6Quote(r.payloadBuf, r.payloadOffset, r.payloadLength, q);
      d += `|${qs}`;
      if (qs === Status.Ok) {
        d += `:${formatIpv6Address(b, q.srcOffset)}:${formatIpv6Address(b, q.dstOffset)}:${q.protocol}:${q.upperLayerFound}`;
        d += `:${q.transportOffset - o}:${q.transportLength}:${q.srcPort}:${q.dstPort}:${q.echoIdent}`;
      }
    }
    return d;
  });
  assert.ok(n > 0);
});
