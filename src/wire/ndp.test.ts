import { test } from 'node:test';
import assert from 'node:assert/strict';
import { NdpPacket, NdpRepr, parseNdp, emitNdp, ndpLength, checkNdpIpHeader, ndpFixedLength } from './ndp.js';
import { NdpOptionCursor, NdpOption, NDP_MAX_PREFIXES, NDP_MAX_DNS_SERVERS } from './ndp-option.js';
import { Icmpv6Type, fillIcmpv6Checksum } from './icmpv6.js';
import { IpProtocol } from './ipv4.js';
import { Status } from './status.js';
import { formatIpv6Address, parseIpv6Address } from './address.js';
import { fuzzParser, readHexPackets } from './fuzz-harness.js';

const ETH = 14;
const IP6 = 40;
const SRC = 8;
const DST = 24;
const HOP_LIMIT = 7;

interface Captured { name: string; frame: Buffer; ip: Buffer; at: number; len: number }
const captured: Captured[] = [
  ...readHexPackets('testdata/captures/ndp.hex'),
  ...readHexPackets('testdata/captures/ipv6-icmp.hex'),
].flatMap(({ name, bytes }) => {
  const ip = bytes.subarray(ETH);
  if (ip[6] !== IpProtocol.Icmpv6 || ndpFixedLength(ip[IP6]!) === 0) return [];
  return [{ name, frame: bytes, ip, at: IP6, len: ip.readUInt16BE(4) }];
});
const find = (re: RegExp): Captured => {
  const hit = captured.find((c) => re.test(c.name));
  assert.ok(hit, `no captured packet matches ${re}`);
  return hit;
};
const parse = (c: Captured, r: NdpRepr, verify = true) => parseNdp(c.ip, c.at, c.len, r, c.ip, SRC, c.ip, DST, verify);
const addr = (text: string): Buffer => {
  const b = Buffer.alloc(16);
  assert.ok(parseIpv6Address(text, b));
  return b;
};
const MAC = Buffer.from('02005e005301', 'hex');

test('ndp: deconstruct the captured router advertisement from radvd', () => {
  const c = find(/router advertisement/);
  const v = new NdpPacket().reset(c.ip, c.at, c.len);
  assert.equal(v.check(), Status.Ok);
  assert.ok(v.verifyChecksum(c.ip, SRC, c.ip, DST));
  assert.equal(v.curHopLimit, 64);
  assert.equal(v.managedFlag, false);
  assert.equal(v.otherConfigFlag, true);
  assert.equal(v.routerPreference, 0);
  assert.equal(v.routerLifetime, 1800);
  assert.equal(v.reachableTime, 30000);
  assert.equal(v.retransTimer, 1000);
  const types: number[] = [];
  const cur = v.options(new NdpOptionCursor());
  while (cur.next()) types.push(cur.type);
  assert.equal(cur.status, Status.Ok);
  assert.deepEqual(types, [NdpOption.PrefixInfo, NdpOption.PrefixInfo, NdpOption.Rdnss, NdpOption.Mtu, NdpOption.SourceLinkAddr]);

  const r = new NdpRepr();
  assert.equal(parse(c, r), Status.Ok);
  assert.equal(r.prefixCount, 2);
  const [p0, p1] = r.prefixes;
  assert.deepEqual([formatIpv6Address(p0!.prefix), p0!.prefixLength, p0!.onLink, p0!.autonomous, p0!.validLifetime, p0!.preferredLifetime],
    ['fd00:cafe:10::', 64, true, true, 86400, 14400]);
  assert.deepEqual([formatIpv6Address(p1!.prefix), p1!.onLink, p1!.autonomous, p1!.validLifetime, p1!.preferredLifetime],
    ['fd00:cafe:11::', true, false, 7200, 3600]);
  assert.equal(r.dnsServerCount, 2);
  assert.deepEqual(r.dnsServers.slice(0, 2).map((s) => `${formatIpv6Address(s.address)}/${s.lifetime}`),
    ['fd00:cafe:10::53/600', 'fd00:cafe:10::54/600']);
  assert.deepEqual([r.hasMtu, r.mtu], [true, 1400]);
  assert.ok(r.hasSourceLinkAddr);
  assert.deepEqual(r.sourceLinkAddr, c.frame.subarray(6, 12)); // the Ethernet source of the frame
  assert.equal(r.skippedOptions, 0);
  assert.equal(checkNdpIpHeader(r, c.ip[HOP_LIMIT]!, c.ip, SRC, c.ip, DST), Status.Ok);
});

test('ndp: deconstruct captured solicitations, advertisements and a redirect', () => {
  const r = new NdpRepr();
  const dad = find(/:: > ff02::1:ff.*neighbor solicitation/);
  assert.equal(parse(dad, r), Status.Ok);
  assert.equal(r.type, Icmpv6Type.NeighborSolicit);
  assert.equal(r.hasSourceLinkAddr, false); // DAD probes carry no link-layer address
  assert.ok(r.hasNonce); // but Linux adds an RFC 7527 nonce
  assert.deepEqual(r.nonce, dad.ip.subarray(IP6 + 26, IP6 + 32));
  assert.equal(checkNdpIpHeader(r, 255, dad.ip, SRC, dad.ip, DST), Status.Ok);

  const ns = find(/fd00:cafe:10::1 > ff02::1:ff.*neighbor solicitation/);
  assert.equal(parse(ns, r), Status.Ok);
  assert.ok(r.hasSourceLinkAddr);
  assert.deepEqual(r.sourceLinkAddr, ns.frame.subarray(6, 12));
  assert.ok(formatIpv6Address(r.target).startsWith('fd00:cafe:10:0:')); // H's SLAAC address
  assert.equal(r.target.subarray(13).toString('hex'), ns.ip.subarray(DST + 13, DST + 16).toString('hex')); // solicited-node bits

  const na = find(/fd00:cafe:10::1 > fe80.*neighbor advertisement/);
  assert.equal(parse(na, r), Status.Ok);
  assert.deepEqual([r.router, r.solicited, r.override, r.hasTargetLinkAddr], [true, true, false, false]);
  assert.equal(formatIpv6Address(r.target), 'fd00:cafe:10::1');

  const naTlla = captured.find((c) => c.ip[IP6] === Icmpv6Type.NeighborAdvert && c.len === 32)!;
  assert.equal(parse(naTlla, r), Status.Ok);
  assert.deepEqual([r.router, r.solicited, r.override, r.hasTargetLinkAddr], [false, true, true, true]);
  assert.deepEqual(r.targetLinkAddr, naTlla.frame.subarray(6, 12));

  const rs = find(/router solicitation/);
  assert.equal(parse(rs, r), Status.Ok);
  assert.deepEqual([r.type, r.hasSourceLinkAddr], [Icmpv6Type.RouterSolicit, true]);

  for (const c of captured.filter((x) => x.ip[IP6] === Icmpv6Type.Redirect)) {
    assert.equal(parse(c, r), Status.Ok);
    assert.equal(formatIpv6Address(r.destination), 'fd00:cafe:30::1');
    assert.ok(formatIpv6Address(r.target).startsWith('fe80::'));
    assert.ok(r.hasRedirectedHeader);
    assert.equal(r.redirectedLength, 104); // the echo request: 40-byte IPv6 header + 64 bytes
    assert.equal(r.redirectedBuf[r.redirectedOffset]! >>> 4, 6);
    assert.equal(formatIpv6Address(r.redirectedBuf, r.redirectedOffset + DST), 'fd00:cafe:30::1');
    assert.equal(r.hasTargetLinkAddr, c.len === 160);
    assert.equal(checkNdpIpHeader(r, 255, c.ip, SRC, c.ip, DST), Status.Ok);
  }
});

test('ndp: construct a neighbor solicitation', () => {
  // fd00::1 -> ff02::1:ff00:2 (solicited-node multicast of the target).
  const want = Buffer.from(
    '87' + // type 135: neighbor solicitation
    '00' + // code 0
    'cc96' + // checksum
    '00000000' + // reserved
    'fd000000000000000000000000000002' + // target fd00::2
    '01' + '01' + '02005e005301', // option: source link-layer address, length 1 (8 bytes), MAC
    'hex');
  const r = new NdpRepr();
  r.type = Icmpv6Type.NeighborSolicit;
  addr('fd00::2').copy(r.target);
  r.hasSourceLinkAddr = true;
  MAC.copy(r.sourceLinkAddr);
  const out = Buffer.alloc(ndpLength(r));
  assert.equal(emitNdp(r, out, 0, addr('fd00::1'), 0, addr('ff02::1:ff00:2'), 0), 32);
  assert.deepEqual(out, want);
});

test('ndp: construct a router advertisement with prefix, RDNSS, MTU and link-layer address', () => {
  // fe80::1 -> ff02::1.
  const want = Buffer.from(
    '86' + '00' + 'e33f' + // type 134, code 0, checksum
    '40' + // current hop limit 64
    'c8' + // M=1, O=1, preference 01 (high)
    '0708' + // router lifetime 1800 s
    '00000000' + // reachable time: unspecified
    '00000000' + // retrans timer: unspecified
    '03' + '04' + // option: prefix information, length 4 (32 bytes)
    '40' + 'c0' + // prefix length 64; L=1, A=1
    'ffffffff' + // valid lifetime: infinity
    '00093a80' + // preferred lifetime 604800 s
    '00000000' + // reserved
    'fd000001000000000000000000000000' + // prefix fd00:1::
    '19' + '03' + '0000' + // option: RDNSS, length 3 (24 bytes), reserved
    '0000012c' + // lifetime 300 s
    'fd000001000000000000000000000053' + // fd00:1::53
    '05' + '01' + '0000' + '00000500' + // option: MTU, length 1, reserved, 1280
    '01' + '01' + '02005e005301', // option: source link-layer address
    'hex');
  const r = new NdpRepr();
  r.type = Icmpv6Type.RouterAdvert;
  r.curHopLimit = 64;
  r.managed = true;
  r.otherConfig = true;
  r.routerPreference = 1;
  r.routerLifetime = 1800;
  const p = r.prefixes[0]!;
  p.prefixLength = 64;
  p.onLink = true;
  p.autonomous = true;
  p.validLifetime = 0xffffffff;
  p.preferredLifetime = 604800;
  addr('fd00:1::').copy(p.prefix);
  r.prefixCount = 1;
  r.dnsServers[0]!.lifetime = 300;
  addr('fd00:1::53').copy(r.dnsServers[0]!.address);
  r.dnsServerCount = 1;
  r.hasMtu = true;
  r.mtu = 1280;
  r.hasSourceLinkAddr = true;
  MAC.copy(r.sourceLinkAddr);
  const out = Buffer.alloc(ndpLength(r));
  assert.equal(emitNdp(r, out, 0, addr('fe80::1'), 0, addr('ff02::1'), 0), 88);
  assert.deepEqual(out, want);
  const back = new NdpRepr();
  assert.equal(parseNdp(out, 0, out.length, back, addr('fe80::1'), 0, addr('ff02::1'), 0), Status.Ok);
  assert.deepEqual([back.managed, back.otherConfig, back.routerPreference, back.prefixes[0]!.validLifetime], [true, true, 1, 0xffffffff]);
});

test('ndp: parse / emit round-trip of every captured ND message', () => {
  assert.ok(captured.length >= 25);
  const r = new NdpRepr();
  for (const c of captured) {
    assert.equal(parse(c, r), Status.Ok, c.name);
    assert.equal(checkNdpIpHeader(r, c.ip[HOP_LIMIT]!, c.ip, SRC, c.ip, DST), Status.Ok, c.name);
    const out = Buffer.alloc(ndpLength(r) + 5);
    assert.equal(emitNdp(r, out, 5, c.ip, SRC, c.ip, DST), c.len, c.name);
    assert.deepEqual(out.subarray(5), c.ip.subarray(c.at, c.at + c.len), c.name);
  }
});

/** Builds an RA (fe80::1 -> ff02::1) with the given option bytes and a correct checksum. */
function raWith(options: string): Buffer {
  const b = Buffer.from('86000000' + '40000708' + '00000000' + '00000000' + options, 'hex');
  fillIcmpv6Checksum(b, 0, b.length, addr('fe80::1'), 0, addr('ff02::1'), 0);
  return b;
}
const parseRa = (b: Buffer, r: NdpRepr) => parseNdp(b, 0, b.length, r, addr('fe80::1'), 0, addr('ff02::1'), 0);

test('ndp: option walk: zero length, overrun, wrong sizes, unknown and excess options', () => {
  const r = new NdpRepr();
  assert.equal(parseRa(raWith('0100' + '000000000000'), r), Status.Malformed); // length 0
  assert.equal(parseRa(raWith('0102' + '000000000000'), r), Status.Malformed); // 16 bytes claimed, 8 present
  assert.equal(parseRa(raWith('01'), r), Status.Malformed); // a lone type byte
  assert.equal(parseRa(raWith('0501' + '0000' + '00000500' + '0302' + '00'.repeat(14)), r), Status.Malformed); // prefix info of 16 bytes
  assert.equal(parseRa(raWith('0502' + '00'.repeat(14)), r), Status.Malformed); // MTU of 16 bytes
  assert.equal(parseRa(raWith('1902' + '00'.repeat(14)), r), Status.Malformed); // RDNSS without an address
  assert.equal(parseRa(raWith('1904' + '00'.repeat(30)), r), Status.Malformed); // RDNSS with 1.5 addresses
  const pi = (n: number) => '0304' + '40c0' + '00000e10' + '00000708' + '00000000' + `fd00000${n}` + '00'.repeat(12);
  assert.equal(parseRa(raWith('0304' + '81c0' + '00'.repeat(28)), r), Status.Malformed); // prefix length 129
  // Unknown option (DNSSL) and a 16-byte link-layer address are skipped; the 5th prefix is counted.
  const many = raWith('1f02' + '00'.repeat(14) + '0102' + '00'.repeat(14) + pi(1) + pi(2) + pi(3) + pi(4) + pi(5));
  assert.equal(parseRa(many, r), Status.Ok);
  assert.deepEqual([r.prefixCount, r.skippedOptions, r.hasSourceLinkAddr], [NDP_MAX_PREFIXES, 3, false]);
  assert.equal(formatIpv6Address(r.prefixes[3]!.prefix), 'fd00:4::');
  const dns = raWith('1909' + '0000' + '00000258' + '00'.repeat(64));
  assert.equal(parseRa(dns, r), Status.Ok);
  assert.deepEqual([r.dnsServerCount, r.skippedOptions], [NDP_MAX_DNS_SERVERS, 0]);
  const tooManyDns = raWith('190b' + '0000' + '00000258' + '00'.repeat(80));
  assert.equal(parseRa(tooManyDns, r), Status.Ok);
  assert.deepEqual([r.dnsServerCount, r.skippedOptions], [NDP_MAX_DNS_SERVERS, 1]);
  // Servers with different lifetimes are emitted as separate RDNSS options.
  r.dnsServers[2]!.lifetime = 5;
  const out = Buffer.alloc(ndpLength(r));
  emitNdp(r, out, 0, addr('fe80::1'), 0, addr('ff02::1'), 0);
  const types: string[] = [];
  const cur = new NdpPacket().reset(out, 0, out.length).options(new NdpOptionCursor());
  while (cur.next()) types.push(`${cur.type}/${cur.length}`);
  assert.deepEqual(types, ['25/40', '25/24', '25/24']);
});

test('ndp: truncated, malformed fixed fields, bad checksum, not ND', () => {
  const r = new NdpRepr();
  const na = find(/fd00:cafe:10::1 > fe80.*neighbor advertisement/);
  assert.equal(parseNdp(na.ip, na.at, 23, r, na.ip, SRC, na.ip, DST, false), Status.Truncated);
  assert.equal(parseNdp(na.ip, na.at, 7, r, na.ip, SRC, na.ip, DST, false), Status.Truncated);
  assert.equal(parseNdp(na.ip, na.at, na.len + 1, r, na.ip, SRC, na.ip, DST), Status.Truncated);
  const bad = Buffer.from(na.ip);
  bad[IP6 + 4] ^= 0x20; // override flag flipped, checksum not updated
  assert.equal(parseNdp(bad, IP6, na.len, r, bad, SRC, bad, DST), Status.Checksum);
  assert.equal(parseNdp(bad, IP6, na.len, r, bad, SRC, bad, DST, false), Status.Ok);
  bad[IP6 + 1] = 1; // code 1
  assert.equal(parseNdp(bad, IP6, na.len, r, bad, SRC, bad, DST, false), Status.Malformed);
  bad[IP6 + 1] = 0;
  bad[IP6 + 8] = 0xff; // multicast target
  assert.equal(parseNdp(bad, IP6, na.len, r, bad, SRC, bad, DST, false), Status.Malformed);
  const redirect = find(/redirect/);
  const rb = Buffer.from(redirect.ip);
  rb[IP6 + 8] = 0xfd; // target neither link-local nor the destination
  assert.equal(parseNdp(rb, IP6, redirect.len, r, rb, SRC, rb, DST, false), Status.Malformed);
  rb.copy(rb, IP6 + 8, IP6 + 24, IP6 + 40); // target = destination: "it is on-link"
  assert.equal(parseNdp(rb, IP6, redirect.len, r, rb, SRC, rb, DST, false), Status.Ok);
  rb[IP6 + 24] = 0xff; // multicast destination
  assert.equal(parseNdp(rb, IP6, redirect.len, r, rb, SRC, rb, DST, false), Status.Malformed);
  const echo = Buffer.from('8000000000000001', 'hex');
  assert.equal(parseNdp(echo, 0, echo.length, r, addr('fd00::1'), 0, addr('fd00::2'), 0, false), Status.Unsupported);
});

test('ndp: IP header checks (hop limit, sources, destinations)', () => {
  const r = new NdpRepr();
  const ra = find(/router advertisement/);
  assert.equal(parse(ra, r), Status.Ok);
  assert.equal(checkNdpIpHeader(r, 64, ra.ip, SRC, ra.ip, DST), Status.Malformed); // hop limit not 255
  assert.equal(checkNdpIpHeader(r, 255, addr('fd00::1'), 0, ra.ip, DST), Status.Malformed); // RA from a global source
  const dad = find(/:: > ff02::1:ff.*neighbor solicitation/);
  assert.equal(parse(dad, r), Status.Ok);
  assert.equal(checkNdpIpHeader(r, 255, dad.ip, SRC, addr('ff02::1'), 0), Status.Malformed); // DAD not to solicited-node
  r.hasSourceLinkAddr = true;
  assert.equal(checkNdpIpHeader(r, 255, dad.ip, SRC, dad.ip, DST), Status.Malformed); // :: with a link-layer address
  const na = find(/fd00:cafe:10::1 > fe80.*neighbor advertisement/);
  assert.equal(parse(na, r), Status.Ok);
  assert.equal(checkNdpIpHeader(r, 255, na.ip, SRC, addr('ff02::1'), 0), Status.Malformed); // solicited NA to multicast
});

test('ndp: fuzz never throws, hangs or reads past len', () => {
  const r = new NdpRepr();
  const a1 = addr('fe80::1');
  const a2 = addr('ff02::1');
  const n = fuzzParser(captured.map((c) => c.ip.subarray(c.at, c.at + c.len)), (b, o, l) => {
    const st = parseNdp(b, o, l, r, a1, 0, a2, 0, (l & 3) === 0);
    if (st !== Status.Ok) return st;
    let d = `${r.type}:${r.curHopLimit}:${r.managed}:${r.otherConfig}:${r.routerLifetime}:${r.reachableTime}:${r.retransTimer}`;
    d += `:${r.router}${r.solicited}${r.override}:${r.target.toString('hex')}:${r.destination.toString('hex')}`;
    d += `:${r.hasSourceLinkAddr && r.sourceLinkAddr.toString('hex')}:${r.hasTargetLinkAddr && r.targetLinkAddr.toString('hex')}`;
    d += `:${r.hasMtu && r.mtu}:${r.hasNonce && r.nonce.toString('hex')}:${r.prefixCount}:${r.dnsServerCount}:${r.skippedOptions}:${r.redirectedLength}`;
    for (let i = 0; i < r.prefixCount; i++) d += `:${r.prefixes[i]!.prefix.toString('hex')}/${r.prefixes[i]!.prefixLength}/${r.prefixes[i]!.validLifetime}`;
    for (let i = 0; i < r.dnsServerCount; i++) d += `:${r.dnsServers[i]!.address.toString('hex')}/${r.dnsServers[i]!.lifetime}`;
    return d;
  });
  assert.ok(n > 0);
});
