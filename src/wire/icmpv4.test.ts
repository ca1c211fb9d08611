import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  Icmpv4Packet, Icmpv4Repr, Icmpv4Quote, parseIcmpv4, emitIcmpv4, icmpv4Length, parseIcmpv4Quote,
  Icmpv4Type, Icmpv4DstUnreachable, Icmpv4Redirect, icmpv4IsError, icmpv4QuoteLength, ICMPV4_HEADER_LEN,
} from './icmpv4.js';
import { IpProtocol } from './ipv4.js';
import { Status } from './status.js';
import { formatIpv4Address, parseIpv4Address } from './address.js';
import { fuzzParser, readHexPackets } from './fuzz-harness.js';

const ETH = 14;

/** The ICMP message inside an Ethernet + IPv4 frame, found by hand (IHL, Total Length). */
function icmpOf(frame: Buffer): Buffer {
  const ip = frame.subarray(ETH);
  const hl = (ip[0]! & 0x0f) * 4;
  return ip.subarray(hl, ip.readUInt16BE(2));
}

const base = readHexPackets('testdata/captures/ipv4-icmp.hex');
const extra = readHexPackets('testdata/captures/icmpv4-extra.hex');
const captured = [...base, ...extra].map((p) => ({ name: p.name, msg: icmpOf(p.bytes) }));
const byName = (re: RegExp): Buffer => {
  const hit = captured.find((p) => re.test(p.name));
  assert.ok(hit, `no captured packet matches ${re}`);
  return hit.msg;
};

test('icmpv4: deconstruct a captured echo request (ping -s 1372)', () => {
  const msg = captured[0]!.msg;
  const v = new Icmpv4Packet().reset(msg, 0, msg.length);
  assert.equal(v.check(), Status.Ok);
  assert.equal(v.msgType, Icmpv4Type.EchoRequest);
  assert.equal(v.code, 0);
  assert.equal(v.ident, 0x7aca);
  assert.equal(v.seqNo, 1);
  assert.equal(v.payloadLength, 1372);
  assert.equal(v.payloadOffset, ICMPV4_HEADER_LEN);
  assert.ok(v.verifyChecksum());
});

test('icmpv4: deconstruct captured errors and their quoted datagrams', () => {
  const r = new Icmpv4Repr();
  const q = new Icmpv4Quote();

  const port = byName(/icmp type 3/); // UDP to a closed port, from capture-testdata.sh
  assert.equal(parseIcmpv4(port, 0, port.length, r), Status.Ok);
  assert.equal(r.type, Icmpv4Type.DstUnreachable);
  assert.equal(r.code, Icmpv4DstUnreachable.PortUnreachable);
  assert.equal(r.payloadLength, 576 - 20 - 8); // Linux quotes up to the 576-byte limit
  assert.equal(r.payloadLength, icmpv4QuoteLength(1400));
  assert.equal(parseIcmpv4Quote(r.payloadBuf, r.payloadOffset, r.payloadLength, q), Status.Ok);
  assert.equal(q.protocol, IpProtocol.Udp);
  assert.equal(formatIpv4Address(q.src), '198.18.0.1');
  assert.equal(formatIpv4Address(q.dst), '198.18.0.2');
  assert.equal(q.totalLength, 1400);
  assert.ok(q.hasPorts);
  assert.equal(q.dstPort, 9999);

  const frag = byName(/need to frag/);
  assert.equal(parseIcmpv4(frag, 0, frag.length, r), Status.Ok);
  assert.equal(r.code, Icmpv4DstUnreachable.FragRequired);
  assert.equal(r.nextHopMtu, 1280);
  assert.equal(parseIcmpv4Quote(r.payloadBuf, r.payloadOffset, r.payloadLength, q), Status.Ok);
  assert.equal(formatIpv4Address(q.dst), '198.18.20.2');
  assert.equal(q.totalLength, 1428);
  assert.ok(q.hasEchoIdent && !q.hasPorts);
  assert.equal(q.echoType, Icmpv4Type.EchoRequest);
  const big = byName(/echo request.*length 1408/); // the ping that caused it
  assert.equal(q.echoIdent, new Icmpv4Packet().reset(big, 0, big.length).ident);

  const redirect = byName(/redirect/);
  assert.equal(parseIcmpv4(redirect, 0, redirect.length, r), Status.Ok);
  assert.equal(r.type, Icmpv4Type.Redirect);
  assert.equal(r.code, Icmpv4Redirect.Host);
  assert.equal(formatIpv4Address(r.gateway), '198.18.10.2');
  assert.ok(icmpv4IsError(r.type));

  const ttl = byName(/time exceeded/);
  assert.equal(parseIcmpv4(ttl, 0, ttl.length, r), Status.Ok);
  assert.equal(r.type, Icmpv4Type.TimeExceeded);
  assert.equal(parseIcmpv4Quote(r.payloadBuf, r.payloadOffset, r.payloadLength, q), Status.Ok);
  assert.equal(q.ttl, 1);

  const pp = byName(/parameter problem/);
  assert.equal(parseIcmpv4(pp, 0, pp.length, r), Status.Ok);
  assert.equal(r.type, Icmpv4Type.ParamProblem);
  assert.equal(r.pointer, 21); // the length byte of the record-route option
  assert.equal(parseIcmpv4Quote(r.payloadBuf, r.payloadOffset, r.payloadLength, q), Status.Ok);
  assert.equal(q.headerLength, 24);
  assert.deepEqual([q.hasPorts, q.srcPort, q.dstPort], [true, 40000, 9]);

  const codes = captured.filter((p) => p.msg[0] === Icmpv4Type.DstUnreachable).map((p) => p.msg[1]).sort((a, b) => a! - b!);
  assert.deepEqual(codes, [0, 1, 2, 3, 4, 13]); // net, host, protocol, port, frag needed, admin prohibited
});

test('icmpv4: construct an echo request from a repr', () => {
  const want = Buffer.from(
    '08' + // type 8: echo request
    '00' + // code 0
    '04fd' + // checksum
    '1234' + // identifier
    '0001' + // sequence number
    '6d657368', // data "mesh"
    'hex');
  const r = new Icmpv4Repr();
  r.type = Icmpv4Type.EchoRequest;
  r.ident = 0x1234;
  r.seqNo = 1;
  r.payloadBuf = Buffer.from('mesh');
  r.payloadOffset = 0;
  r.payloadLength = 4;
  const out = Buffer.alloc(icmpv4Length(r));
  assert.equal(emitIcmpv4(r, out, 0), 12);
  assert.deepEqual(out, want);
});

test('icmpv4: construct fragmentation needed with a quoted datagram', () => {
  const quote = Buffer.from(
    '4500' + '0578' + '0000' + '4000' + '4011' + '0000' + 'c6120001' + 'c6120002' + // IPv4: UDP, 1400 bytes, DF
    '3039' + '270f' + '0564' + '0000', // UDP 12345 -> 9999, length 1380
    'hex');
  const want = Buffer.from(
    '03' + // type 3: destination unreachable
    '04' + // code 4: fragmentation needed and DF set
    '449d' + // checksum
    '0000' + // unused
    '0500' + // next-hop MTU 1280
    quote.toString('hex'),
    'hex');
  const r = new Icmpv4Repr();
  r.type = Icmpv4Type.DstUnreachable;
  r.code = Icmpv4DstUnreachable.FragRequired;
  r.nextHopMtu = 1280;
  // The quote written in place first, then the header: emit must not copy over itself.
  const out = Buffer.alloc(ICMPV4_HEADER_LEN + quote.length);
  quote.copy(out, ICMPV4_HEADER_LEN);
  r.payloadBuf = out;
  r.payloadOffset = ICMPV4_HEADER_LEN;
  r.payloadLength = quote.length;
  emitIcmpv4(r, out, 0);
  assert.deepEqual(out, want);
  const q = new Icmpv4Quote();
  assert.equal(parseIcmpv4Quote(out, 8, quote.length, q), Status.Ok);
  assert.deepEqual([q.src, q.dst, q.srcPort, q.dstPort], [parseIpv4Address('198.18.0.1'), parseIpv4Address('198.18.0.2'), 12345, 9999]);
});

test('icmpv4: parse / emit round-trip of every captured message', () => {
  assert.ok(captured.length >= 20);
  const r = new Icmpv4Repr();
  for (const { name, msg } of captured) {
    assert.equal(parseIcmpv4(msg, 0, msg.length, r), Status.Ok, name);
    assert.equal(icmpv4Length(r), msg.length, name);
    const out = Buffer.alloc(icmpv4Length(r) + 3);
    assert.equal(emitIcmpv4(r, out, 3), msg.length);
    assert.deepEqual(out.subarray(3), msg, name);
  }
});

test('icmpv4: view setters and fillChecksum', () => {
  const msg = Buffer.from(captured[0]!.msg);
  const v = new Icmpv4Packet().reset(msg, 0, msg.length);
  v.msgType = Icmpv4Type.EchoReply;
  v.seqNo = 7;
  v.ident = 0x10001; // masked to 16 bits
  assert.ok(!v.verifyChecksum());
  v.fillChecksum();
  assert.ok(v.verifyChecksum());
  const r = new Icmpv4Repr();
  assert.equal(parseIcmpv4(msg, 0, msg.length, r), Status.Ok);
  assert.deepEqual([r.type, r.ident, r.seqNo], [Icmpv4Type.EchoReply, 1, 7]);
});

test('icmpv4: truncated, bad checksum, unknown type', () => {
  const msg = Buffer.from(byName(/need to frag/));
  const r = new Icmpv4Repr();
  assert.equal(parseIcmpv4(msg, 0, 7, r), Status.Truncated);
  assert.equal(parseIcmpv4(msg, 4, msg.length, r), Status.Truncated); // range beyond the buffer
  assert.equal(parseIcmpv4(msg, -1, 8, r), Status.Truncated);
  const bad = Buffer.from(msg);
  bad[7] ^= 0x01; // MTU changed, checksum not updated
  assert.equal(parseIcmpv4(bad, 0, bad.length, r), Status.Checksum);
  assert.equal(parseIcmpv4(bad, 0, bad.length, r, false), Status.Ok);
  assert.equal(r.nextHopMtu, 1281);
  const ts = Buffer.from('0d00000012340001' + '00'.repeat(12), 'hex'); // timestamp request
  new Icmpv4Packet().reset(ts, 0, ts.length).fillChecksum();
  assert.equal(parseIcmpv4(ts, 0, ts.length, r), Status.Unsupported);
  assert.deepEqual([r.type, r.code, r.payloadLength], [Icmpv4Type.Timestamp, 0, 12]);
});

test('icmpv4: malformed and short quotes', () => {
  const msg = byName(/need to frag/);
  const q = new Icmpv4Quote();
  const start = ICMPV4_HEADER_LEN;
  assert.equal(parseIcmpv4Quote(msg, start, 19, q), Status.Truncated);
  assert.equal(parseIcmpv4Quote(msg, start, 20, q), Status.Ok); // header only: no ports, no ident
  assert.ok(!q.hasEchoIdent && !q.hasPorts && q.transportLength === 0);
  assert.equal(parseIcmpv4Quote(msg, msg.length - 10, 20, q), Status.Truncated);
  const bad = Buffer.from(msg.subarray(start));
  bad[0] = 0x65; // version 6
  assert.equal(parseIcmpv4Quote(bad, 0, bad.length, q), Status.Malformed);
  bad[0] = 0x44; // IHL 4
  assert.equal(parseIcmpv4Quote(bad, 0, bad.length, q), Status.Malformed);
  bad[0] = 0x4f; // IHL 15 = 60 bytes, quote is 28
  assert.equal(parseIcmpv4Quote(bad, 0, 28, q), Status.Truncated);
  const frag = Buffer.from(byName(/icmp type 3/).subarray(start));
  frag.writeUInt16BE(0x00b9, 6); // a non-first fragment: no transport header in it
  assert.equal(parseIcmpv4Quote(frag, 0, frag.length, q), Status.Ok);
  assert.deepEqual([q.fragmentOffset, q.hasPorts], [0xb9 * 8, false]);
});

test('icmpv4: fuzz never throws, hangs or reads past len', () => {
  const r = new Icmpv4Repr();
  const q = new Icmpv4Quote();
  const n = fuzzParser(captured.map((p) => p.msg), (b, o, l) => {
    const st = parseIcmpv4(b, o, l, r, (l & 1) === 0);
    if (st !== Status.Ok) return st;
    let d = `${r.type}:${r.code}:${r.ident}:${r.seqNo}:${r.nextHopMtu}:${r.pointer}:${r.gateway}:${r.payloadOffset - o}:${r.payloadLength}`;
    if (icmpv4IsError(r.type)) {
      const qs = parseIcmpv4Quote(r.payloadBuf, r.payloadOffset, r.payloadLength, q);
      d += `|${qs}`;
      if (qs === Status.Ok) d += `:${q.src}:${q.dst}:${q.protocol}:${q.totalLength}:${q.srcPort}:${q.dstPort}:${q.echoIdent}:${q.transportLength}`;
    }
    return d;
  });
  assert.ok(n > 0);
});
