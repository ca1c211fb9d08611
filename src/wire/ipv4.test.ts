import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Ipv4Packet, Ipv4Repr, parseIpv4, emitIpv4, ipv4Length, ipv4HeaderLength, IpProtocol } from './ipv4.js';
import { Status } from './status.js';
import { formatIpv4Address, parseIpv4Address } from './address.js';
import { fuzzParser, readHexPackets } from './fuzz-harness.js';

const ETH = 14;
const captured = [
  ...readHexPackets('testdata/captures/ipv4-icmp.hex'),
  ...readHexPackets('testdata/captures/ipv4-tcp.hex'),
  ...readHexPackets('testdata/captures/ipv4-udp.hex'),
  ...readHexPackets('testdata/captures/ipv4-frag.hex'),
].map((p) => p.bytes.subarray(ETH));

// A hand-written header, field by field.
const HEADER = Buffer.from(
  '45' + // version 4, IHL 5
  '00' + // DSCP 0, ECN 0
  '0054' + // total length 84
  'abcd' + // identification
  '4000' + // DF, offset 0
  '40' + // TTL 64
  '01' + // protocol ICMP
  '0000' + // checksum (filled below)
  'c6120001' + // 198.18.0.1
  'c6120002', // 198.18.0.2
  'hex');

test('ipv4: deconstruct a captured ICMP echo request', () => {
  const pkt = captured[0]!;
  const v = new Ipv4Packet().reset(pkt, 0, pkt.length);
  assert.equal(v.check(), Status.Ok);
  assert.equal(v.version, 4);
  assert.equal(v.headerLength, 20);
  assert.equal(v.protocol, IpProtocol.Icmp);
  assert.equal(formatIpv4Address(v.src), '198.18.0.1');
  assert.equal(formatIpv4Address(v.dst), '198.18.0.2');
  assert.equal(v.totalLength, 1400); // ping -s 1372: 1372 + 8 ICMP + 20 IP
  assert.ok(v.verifyChecksum());
});

test('ipv4: construct the hand-written header from a repr', () => {
  const r = new Ipv4Repr();
  r.src = parseIpv4Address('198.18.0.1')!;
  r.dst = parseIpv4Address('198.18.0.2')!;
  r.protocol = IpProtocol.Icmp;
  r.ttl = 64;
  r.ident = 0xabcd;
  r.dontFragment = true;
  r.payloadLength = 64;
  const out = Buffer.alloc(ipv4HeaderLength(r));
  assert.equal(emitIpv4(r, out, 0), 20);
  const want = Buffer.from(HEADER);
  want.writeUInt16BE(0, 10);
  // checksum computed independently: sum words by hand
  let s = 0;
  for (let i = 0; i < 20; i += 2) s += want.readUInt16BE(i);
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  want.writeUInt16BE(~s & 0xffff, 10);
  assert.deepEqual(out, want);
});

test('ipv4: parse / emit round-trip of every captured packet', () => {
  for (const pkt of captured) {
    const r = new Ipv4Repr();
    assert.equal(parseIpv4(pkt, 0, pkt.length, r), Status.Ok);
    assert.equal(ipv4Length(r), new Ipv4Packet().reset(pkt, 0, pkt.length).totalLength);
    const out = Buffer.alloc(ipv4Length(r));
    const hl = emitIpv4(r, out, 0);
    pkt.copy(out, hl, r.payloadOffset, r.payloadOffset + r.payloadLength);
    assert.deepEqual(out, pkt.subarray(0, out.length));
  }
});

test('ipv4: fragments keep offset and MF', () => {
  const r = new Ipv4Repr();
  const frags = captured.filter((p) => (p.readUInt16BE(6) & 0x3fff) !== 0);
  assert.ok(frags.length >= 2);
  const offsets = frags.map((p) => (parseIpv4(p, 0, p.length, r), `${r.fragmentOffset}:${r.moreFragments}`));
  assert.ok(offsets.includes('0:true'));
  assert.ok(offsets.some((o) => o.endsWith(':false') && !o.startsWith('0:')));
});

test('ipv4: options are carried and validated', () => {
  const r = new Ipv4Repr();
  r.protocol = IpProtocol.Udp;
  r.options.set([0x94, 0x04, 0x00, 0x00]); // router alert
  r.optionsLength = 4;
  const out = Buffer.alloc(ipv4HeaderLength(r));
  emitIpv4(r, out, 0);
  const back = new Ipv4Repr();
  assert.equal(parseIpv4(out, 0, out.length, back), Status.Ok);
  assert.equal(back.optionsLength, 4);
  assert.deepEqual(back.options.subarray(0, 4), Buffer.from([0x94, 4, 0, 0]));
  out[21] = 0x09; // option length runs past the header
  out.writeUInt16BE(0, 10);
  new Ipv4Packet().reset(out, 0, out.length).fillChecksum();
  assert.equal(parseIpv4(out, 0, out.length, back), Status.Malformed);
});

test('ipv4: truncated, malformed and bad checksum', () => {
  const pkt = Buffer.from(captured[0]!);
  const r = new Ipv4Repr();
  assert.equal(parseIpv4(pkt, 0, 19, r), Status.Truncated);
  assert.equal(parseIpv4(pkt, 0, 100, r), Status.Truncated); // total length 1400 > 100
  const bad = Buffer.from(pkt);
  bad[0] = 0x65; // version 6
  assert.equal(parseIpv4(bad, 0, bad.length, r), Status.Malformed);
  bad[0] = 0x44; // IHL 4
  assert.equal(parseIpv4(bad, 0, bad.length, r), Status.Malformed);
  const ck = Buffer.from(pkt);
  ck[8] ^= 1; // TTL changed, checksum not updated
  assert.equal(parseIpv4(ck, 0, ck.length, r), Status.Checksum);
  assert.equal(parseIpv4(ck, 0, ck.length, r, false), Status.Ok);
  assert.equal(parseIpv4(pkt, 10, pkt.length, r), Status.Truncated); // range beyond buffer
});

test('ipv4: fuzz never throws, hangs or reads past len', () => {
  const r = new Ipv4Repr();
  const n = fuzzParser(captured, (b, o, l) => {
    const st = parseIpv4(b, o, l, r);
    return st === Status.Ok ? `${st}:${r.src}:${r.dst}:${r.payloadLength}:${r.optionsLength}` : st;
  });
  assert.ok(n > 0);
});
