import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  Ipv6Packet, Ipv6Repr, parseIpv6, emitIpv6, ipv6Length, walkIpv6Extensions, emitIpv6FragmentHeader,
  IPV6_HEADER_LEN, IPV6_MAX_EXT_HEADERS,
} from './ipv6.js';
import { IpProtocol } from './ipv4.js';
import { formatIpv6Address, parseIpv6Address } from './address.js';
import { Status } from './status.js';
import { fuzzParser, readHexPackets } from './fuzz-harness.js';

const ETH = 14;
const load = (f: string) => readHexPackets(`testdata/captures/${f}.hex`).map((p) => p.bytes.subarray(ETH));
const tcp = load('ipv6-tcp');
const hbh = load('ipv6-hbh');
const frag = load('ipv6-frag');
const captured = [...load('ipv6-icmp'), ...tcp, ...load('ipv6-udp'), ...hbh, ...frag];

// A hand-written fixed header, field by field.
const HEADER = Buffer.from(
  '6' + // version 6
  'b8' + // traffic class: DSCP 46 (EF), ECN 0
  '12345' + // flow label
  '0008' + // payload length 8
  '11' + // next header UDP
  'ff' + // hop limit 255
  'fd000000000000000000000000000001' + // source fd00::1
  'fd000000000000000000000000000002', // destination fd00::2
  'hex');

/** An IPv6 packet from fd00::1 to fd00::2 whose payload is `payloadHex`, first header `nh`. */
function packet(nh: number, payloadHex: string): Buffer {
  const payload = Buffer.from(payloadHex, 'hex');
  const r = new Ipv6Repr();
  parseIpv6Address('fd00::1', r.src);
  parseIpv6Address('fd00::2', r.dst);
  r.nextHeader = nh;
  r.payloadLength = payload.length;
  const out = Buffer.alloc(ipv6Length(r));
  emitIpv6(r, out, 0);
  payload.copy(out, IPV6_HEADER_LEN);
  return out;
}

const UDP8 = '1234567800080000'; // a UDP header with no payload

test('ipv6: deconstruct a captured TCP SYN', () => {
  const pkt = tcp[0]!;
  const v = new Ipv6Packet().reset(pkt, 0, pkt.length);
  assert.equal(v.check(), Status.Ok);
  assert.equal(v.version, 6);
  assert.equal(v.trafficClass, 0);
  assert.equal(v.flowLabel, 0x22be);
  assert.equal(v.payloadLength, 40); // 20 TCP header + 20 options
  assert.equal(v.nextHeader, IpProtocol.Tcp);
  assert.equal(v.hopLimit, 64);
  assert.equal(formatIpv6Address(pkt, v.srcOffset), 'fd00:cafe::1');
  assert.equal(formatIpv6Address(pkt, v.dstOffset), 'fd00:cafe::2');
  assert.equal(v.payloadOffset, 40);
  const r = new Ipv6Repr();
  assert.equal(parseIpv6(pkt, 0, pkt.length, r), Status.Ok);
  assert.equal(r.upperProtocol, IpProtocol.Tcp);
  assert.equal(r.upperOffset, 40);
  assert.equal(r.upperLength, 40);
  assert.equal(r.extHeadersLength, 0);
});

test('ipv6: deconstruct captured MLD reports with a hop-by-hop router alert', () => {
  assert.ok(hbh.length >= 2);
  const r = new Ipv6Repr();
  for (const pkt of hbh) {
    assert.equal(parseIpv6(pkt, 0, pkt.length, r), Status.Ok);
    assert.equal(r.nextHeader, IpProtocol.HopByHop);
    assert.equal(r.hopLimit, 1);
    assert.equal(formatIpv6Address(r.dst), 'ff02::16');
    assert.ok(r.hasHopByHop);
    assert.ok(r.routerAlert);
    assert.equal(r.upperProtocol, IpProtocol.Icmpv6);
    assert.equal(r.upperOffset, 48); // 40 fixed + 8 hop-by-hop
    assert.equal(r.extHeadersLength, 8);
    assert.equal(r.upperLength, 48);
    assert.equal(pkt[r.upperOffset], 143); // MLDv2 report
  }
});

test('ipv6: deconstruct captured fragments of a 3000-byte ping', () => {
  const r = new Ipv6Repr();
  const seen: string[] = [];
  for (const pkt of frag) {
    assert.equal(parseIpv6(pkt, 0, pkt.length, r), Status.Ok);
    assert.ok(r.hasFragment);
    assert.equal(r.fragmentHeaderOffset, 40);
    assert.equal(r.upperProtocol, IpProtocol.Icmpv6);
    assert.equal(r.upperOffset, 48);
    seen.push(`${r.fragmentIdent.toString(16)}:${r.fragmentOffset}:${r.moreFragments}:${r.upperLength}`);
  }
  assert.deepEqual(seen, [
    '21be2291:0:true:1448', '21be2291:1448:true:1448', '21be2291:2896:false:112',
    'aabba3bd:0:true:1448', 'aabba3bd:1448:true:1448', 'aabba3bd:2896:false:112',
  ]);
  // 3000 data + 8 ICMPv6 header = 3008 = 2896 + 112.
});

test('ipv6: construct the hand-written header from a repr', () => {
  const r = new Ipv6Repr();
  r.trafficClass = 0xb8;
  r.flowLabel = 0x12345;
  r.payloadLength = 8;
  r.nextHeader = IpProtocol.Udp;
  r.hopLimit = 255;
  assert.ok(parseIpv6Address('fd00::1', r.src));
  assert.ok(parseIpv6Address('fd00::2', r.dst));
  const out = Buffer.alloc(IPV6_HEADER_LEN);
  assert.equal(emitIpv6(r, out, 0), IPV6_HEADER_LEN);
  assert.deepEqual(out, HEADER);
  const v = new Ipv6Packet().reset(out, 0, out.length);
  assert.equal(v.dscp, 46);
  assert.equal(v.ecn, 0);
});

test('ipv6: construct a fragment header', () => {
  const out = Buffer.alloc(8);
  assert.equal(emitIpv6FragmentHeader(out, 0, IpProtocol.Icmpv6, 1448, true, 0x21be2291), 8);
  assert.deepEqual(out, Buffer.from(
    '3a' + // next header ICMPv6
    '00' + // reserved
    '05a9' + // offset 1448 / 8 = 181 (0x0b5) << 3, M = 1
    '21be2291', // identification
    'hex'));
  assert.deepEqual(out, frag[1]!.subarray(40, 48)); // as the kernel wrote it
});

test('ipv6: parse / emit round-trip of every captured packet', () => {
  assert.ok(captured.length > 30);
  for (const pkt of captured) {
    const r = new Ipv6Repr();
    assert.equal(parseIpv6(pkt, 0, pkt.length, r), Status.Ok);
    const out = Buffer.alloc(ipv6Length(r));
    assert.equal(emitIpv6(r, out, 0), IPV6_HEADER_LEN);
    pkt.copy(out, IPV6_HEADER_LEN, r.payloadOffset, r.payloadOffset + r.payloadLength);
    assert.deepEqual(out, pkt.subarray(0, out.length));
  }
});

test('ipv6: a chain of every walked header type', () => {
  const pkt = packet(IpProtocol.HopByHop,
    '3c' + '00' + '01' + '04' + '00000000' + // hop-by-hop -> dst opts; PadN with 4 zero bytes
    '2b' + '00' + '00' + '0103' + '000000' + // dst opts -> routing; Pad1, then PadN with 3 bytes
    '2c' + '02' + '04' + '02' + '00000000' + // routing -> fragment; length 2 (24 bytes), type 4 (SRH), 2 left
    '00000000000000000000000000000000' + // one 16-byte segment
    '11' + '00' + '0000' + 'deadbeef' + // fragment -> UDP; offset 0, M 0 (atomic), ident
    UDP8);
  const r = new Ipv6Repr();
  assert.equal(parseIpv6(pkt, 0, pkt.length, r), Status.Ok);
  assert.ok(r.hasHopByHop);
  assert.ok(!r.routerAlert);
  assert.ok(r.hasRouting);
  assert.equal(r.routingType, 4);
  assert.equal(r.routingSegmentsLeft, 2);
  assert.ok(r.hasFragment);
  assert.equal(r.fragmentOffset, 0);
  assert.equal(r.moreFragments, false);
  assert.equal(r.fragmentIdent, 0xdeadbeef);
  assert.equal(r.fragmentHeaderOffset, 40 + 8 + 8 + 24);
  assert.equal(r.upperProtocol, IpProtocol.Udp);
  assert.equal(r.upperOffset, 40 + 8 + 8 + 24 + 8);
  assert.equal(r.upperLength, 8);
  assert.equal(r.extHeadersLength, 48);
  assert.equal(pkt.readUInt16BE(r.upperOffset), 0x1234);
});

test('ipv6: the walk stops at ESP, AH and no-next-header', () => {
  const r = new Ipv6Repr();
  for (const nh of [IpProtocol.Esp, IpProtocol.Ah, IpProtocol.Ipv6NoNext]) {
    const pkt = packet(IpProtocol.Ipv6Opts, nh.toString(16).padStart(2, '0') + '00' + '010400000000' + 'ffffffffffff');
    assert.equal(parseIpv6(pkt, 0, pkt.length, r), Status.Ok, `next header ${nh}`);
    assert.equal(r.upperProtocol, nh);
    assert.equal(r.upperOffset, 48);
    assert.equal(r.upperLength, 6);
  }
  // No next header with an empty payload.
  const empty = packet(IpProtocol.Ipv6NoNext, '');
  assert.equal(parseIpv6(empty, 0, empty.length, r), Status.Ok);
  assert.equal(r.upperProtocol, IpProtocol.Ipv6NoNext);
  assert.equal(r.upperLength, 0);
});

test('ipv6: a non-first fragment is data after its header', () => {
  // Looks like a hop-by-hop header after the fragment header, but offset 8 means it is data.
  const pkt = packet(IpProtocol.Ipv6Frag, '00' + '00' + '0008' + '00000001' + 'ff00ffffffffffff');
  const r = new Ipv6Repr();
  assert.equal(parseIpv6(pkt, 0, pkt.length, r), Status.Ok);
  assert.equal(r.upperProtocol, IpProtocol.HopByHop);
  assert.equal(r.fragmentOffset, 8);
  assert.equal(r.upperOffset, 48);
  assert.equal(r.upperLength, 8);
});

test('ipv6: walkExtensions=false and walking a payload directly', () => {
  const pkt = hbh[0]!;
  const r = new Ipv6Repr();
  assert.equal(parseIpv6(pkt, 0, pkt.length, r, false), Status.Ok);
  assert.equal(r.upperProtocol, IpProtocol.HopByHop);
  assert.equal(r.upperOffset, 40);
  assert.ok(!r.routerAlert);
  assert.equal(walkIpv6Extensions(pkt, 40, pkt.length - 40, pkt[6]!, r), Status.Ok);
  assert.equal(r.upperProtocol, IpProtocol.Icmpv6);
  assert.ok(r.routerAlert);
});

test('ipv6: long chains stop at the limit without hanging', () => {
  const dstOpts = (n: number) => Array.from({ length: n }, (_, i) => (i === n - 1 ? '11' : '3c') + '00010400000000').join('');
  const r = new Ipv6Repr();
  const ok = packet(IpProtocol.Ipv6Opts, dstOpts(IPV6_MAX_EXT_HEADERS) + UDP8);
  assert.equal(parseIpv6(ok, 0, ok.length, r), Status.Ok);
  assert.equal(r.upperProtocol, IpProtocol.Udp);
  assert.equal(r.extHeadersLength, IPV6_MAX_EXT_HEADERS * 8);
  const long = packet(IpProtocol.Ipv6Opts, dstOpts(IPV6_MAX_EXT_HEADERS + 1) + UDP8);
  assert.equal(parseIpv6(long, 0, long.length, r), Status.Unsupported);
  const huge = packet(IpProtocol.Ipv6Opts, dstOpts(8000));
  assert.equal(parseIpv6(huge, 0, huge.length, r), Status.Unsupported);
});

test('ipv6: options inside hop-by-hop and destination options are checked', () => {
  const r = new Ipv6Repr();
  const cases: [string, string, Status][] = [
    ['only Pad1', '11' + '00' + '000000000000', Status.Ok],
    ['unknown option that fits', '11' + '00' + '3e04aabbccdd', Status.Ok],
    ['PadN runs past the header', '11' + '00' + '0105' + '00000000', Status.Malformed],
    ['option type without length byte', '11' + '00' + '0000000000' + '3e', Status.Malformed],
    ['jumbo payload', '11' + '00' + 'c204' + '00010000', Status.Unsupported],
    ['router alert with 3 data bytes', '11' + '00' + '0503000000' + '00', Status.Malformed],
  ];
  for (const [what, hdr, want] of cases) {
    const p = packet(IpProtocol.HopByHop, hdr + UDP8);
    assert.equal(parseIpv6(p, 0, p.length, r), want, `hop-by-hop: ${what}`);
    const d = packet(IpProtocol.Ipv6Opts, hdr + UDP8);
    const wantDst = what.startsWith('router alert') ? Status.Ok : want; // router alert is a hop-by-hop option
    assert.equal(parseIpv6(d, 0, d.length, r), wantDst, `destination options: ${what}`);
  }
});

test('ipv6: truncated and malformed', () => {
  const pkt = Buffer.from(tcp[0]!);
  const r = new Ipv6Repr();
  assert.equal(parseIpv6(pkt, 0, 39, r), Status.Truncated);
  assert.equal(parseIpv6(pkt, 0, 79, r), Status.Truncated); // payload length 40 needs 80 bytes
  assert.equal(parseIpv6(pkt, 1, pkt.length, r), Status.Truncated); // range beyond the buffer
  const v4 = Buffer.from(pkt);
  v4[0] = 0x45;
  assert.equal(parseIpv6(v4, 0, v4.length, r), Status.Malformed);
  const padded = Buffer.concat([pkt, Buffer.alloc(6)]); // trailing Ethernet padding is fine
  assert.equal(parseIpv6(padded, 0, padded.length, r), Status.Ok);
  assert.equal(r.upperLength, 40);

  const cases: [string, Buffer, Status][] = [
    ['hop-by-hop header cut short', packet(IpProtocol.HopByHop, '110001020000'), Status.Truncated],
    ['hop-by-hop length beyond the payload', packet(IpProtocol.HopByHop, '1102' + '010400000000' + UDP8), Status.Truncated],
    ['fragment header cut short', packet(IpProtocol.Ipv6Frag, '11000000000000'), Status.Truncated],
    ['routing header cut short', packet(IpProtocol.Ipv6Route, '1100000100'), Status.Truncated],
    ['hop-by-hop after another header', packet(IpProtocol.Ipv6Opts, '00000104000000001100010400000000' + UDP8), Status.Malformed],
    ['two fragment headers', packet(IpProtocol.Ipv6Frag, '2c000001000000011100000100000001' + UDP8), Status.Malformed],
  ];
  for (const [what, p, want] of cases) {
    assert.equal(parseIpv6(p, 0, p.length, r), want, what);
  }
});

test('ipv6: fuzz never throws, hangs or reads past len', () => {
  const r = new Ipv6Repr();
  const seeds = [
    ...captured,
    packet(IpProtocol.HopByHop, '3c00010400000000' + '2c00010400000000' + '1100000100000001' + UDP8),
    packet(IpProtocol.Ipv6Route, '11020402' + '00'.repeat(20) + UDP8),
  ];
  const n = fuzzParser(seeds, (b, o, l) => {
    const st = parseIpv6(b, o, l, r);
    if (st !== Status.Ok) return st;
    return `${r.src.toString('hex')}:${r.dst.toString('hex')}:${r.trafficClass}:${r.flowLabel}:${r.payloadLength}:` +
      `${r.nextHeader}:${r.hopLimit}:${r.upperProtocol}:${r.upperOffset - o}:${r.upperLength}:${r.routerAlert}:` +
      `${r.hasRouting}:${r.routingSegmentsLeft}:${r.hasFragment}:${r.fragmentOffset}:${r.moreFragments}:${r.fragmentIdent}`;
  });
  assert.ok(n > 0);
});
