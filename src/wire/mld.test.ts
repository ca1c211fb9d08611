import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  MldPacket, MldRepr, MldRecordCursor, MldRecordType, parseMld, emitMld, mldLength, writeMldv2Record,
  mldv2MaxResponseDelay, mldv2MaxResponseCode, mldv2QueryInterval, mldv2Qqic, MLDV2_REPORT_HEADER_LEN,
} from './mld.js';
import { Icmpv6Type, fillIcmpv6Checksum } from './icmpv6.js';
import { IpProtocol } from './ipv4.js';
import { Status } from './status.js';
import { formatIpv6Address, parseIpv6Address } from './address.js';
import { fuzzParser, readHexPackets } from './fuzz-harness.js';

const ETH = 14;
const IP6 = 40;
const SRC = 8;
const DST = 24;

/** MLD messages behind the hop-by-hop header (router alert) of an Ethernet + IPv6 frame. */
interface Captured { name: string; ip: Buffer; at: number; len: number }
const captured: Captured[] = [
  ...readHexPackets('testdata/captures/mld.hex'),
  ...readHexPackets('testdata/captures/ipv6-hbh.hex'),
].flatMap(({ name, bytes }) => {
  const ip = bytes.subarray(ETH);
  assert.equal(ip[6], IpProtocol.HopByHop, name);
  assert.equal(ip[IP6], IpProtocol.Icmpv6, name);
  const at = IP6 + (ip[IP6 + 1]! + 1) * 8;
  return [{ name, ip, at, len: IP6 + ip.readUInt16BE(4) - at }];
});
const parse = (c: Captured, r: MldRepr, verify = true) => parseMld(c.ip, c.at, c.len, r, c.ip, SRC, c.ip, DST, verify);
const addr = (text: string): Buffer => {
  const b = Buffer.alloc(16);
  assert.ok(parseIpv6Address(text, b));
  return b;
};
const ofType = (type: number, len?: number) => captured.filter((c) => c.ip[c.at] === type && (len === undefined || c.len === len));

/** Every record of a report as "type group [sources]". */
function records(c: Captured): string[] {
  const v = new MldPacket().reset(c.ip, c.at, c.len);
  const cur = v.records(new MldRecordCursor());
  const out: string[] = [];
  while (cur.next()) {
    let s = `${cur.recordType} ${formatIpv6Address(c.ip, cur.multicastAddressOffset)}`;
    for (let i = 0; i < cur.numberOfSources; i++) s += ` ${formatIpv6Address(c.ip, cur.sourceOffset(i))}`;
    out.push(s);
  }
  assert.equal(cur.status, Status.Ok);
  return out;
}

test('mld: deconstruct captured MLDv2 reports with every record type', () => {
  const reports = ofType(Icmpv6Type.Mldv2Report);
  assert.ok(reports.length >= 30);
  const all = reports.flatMap(records);
  const types = new Set(all.map((s) => Number(s.split(' ')[0])));
  assert.deepEqual([...types].sort(), [1, 2, 3, 4, 5, 6]); // IS_IN, IS_EX, TO_IN, TO_EX, ALLOW, BLOCK
  // The source-specific join and leave of scripts/capture-icmp.sh:
  assert.ok(all.includes(`${MldRecordType.AllowNewSources} ff35::1:3 fd00:cafe:10::99`));
  assert.ok(all.includes(`${MldRecordType.BlockOldSources} ff35::1:3 fd00:cafe:10::99`));
  assert.ok(all.includes(`${MldRecordType.ChangeToExclude} ff05::1:3`));
  const five = reports.find((c) => records(c).length === 5)!;
  const v = new MldPacket().reset(five.ip, five.at, five.len);
  assert.equal(v.check(), Status.Ok);
  assert.equal(v.version, 2);
  assert.equal(v.numberOfRecords, 5);
  assert.ok(v.verifyChecksum(five.ip, SRC, five.ip, DST));
  assert.equal(formatIpv6Address(five.ip, DST), 'ff02::16');
});

test('mld: deconstruct captured queries (v2 general, group, group-and-source; v1)', () => {
  const r = new MldRepr();
  const general = ofType(Icmpv6Type.MldQuery, 28).find((c) => c.ip[c.at + 8] === 0)!;
  const v = new MldPacket().reset(general.ip, general.at, general.len);
  assert.deepEqual([v.version, v.maxResponseCode, v.maxResponseDelay, v.qrv, v.qqic, v.queryInterval, v.numberOfSources],
    [2, 1000, 1000, 2, 3, 3, 0]); // the bridge querier: 1 s response interval, 3 s query interval
  assert.equal(formatIpv6Address(general.ip, v.multicastAddressOffset), '::');

  const gsq = ofType(Icmpv6Type.MldQuery, 44)[0]!;
  assert.equal(parse(gsq, r), Status.Ok);
  assert.equal(r.version, 2);
  assert.equal(formatIpv6Address(r.multicastAddress), 'ff35::1:3');
  assert.equal(r.numberOfSources, 1);
  assert.equal(formatIpv6Address(r.sourcesBuf, r.sourcesOffset), 'fd00:cafe:10::99');

  const suppressed = ofType(Icmpv6Type.MldQuery, 28).find((c) => c.ip[c.at + 24] === 0x0a)!;
  assert.equal(parse(suppressed, r), Status.Ok);
  assert.deepEqual([r.suppressRouterSide, r.qrv, formatIpv6Address(r.multicastAddress)], [true, 2, 'ff05::1:3']);

  const v1 = ofType(Icmpv6Type.MldQuery, 24);
  assert.ok(v1.length >= 2);
  for (const c of v1) {
    assert.equal(parse(c, r), Status.Ok);
    assert.deepEqual([r.version, r.maxResponseCode], [1, 1000]);
  }
  assert.ok(v1.some((c) => (parse(c, r), formatIpv6Address(r.multicastAddress) === 'ff05::1:4')));
});

test('mld: deconstruct captured MLDv1 report and done', () => {
  const r = new MldRepr();
  const report = ofType(Icmpv6Type.MldReport).find((c) => formatIpv6Address(c.ip, DST) === 'ff05::1:4')!;
  assert.equal(parse(report, r), Status.Ok);
  assert.deepEqual([r.type, r.version, r.maxResponseCode, formatIpv6Address(r.multicastAddress)], [Icmpv6Type.MldReport, 1, 0, 'ff05::1:4']);
  const done = ofType(Icmpv6Type.MldDone)[0]!;
  assert.equal(parse(done, r), Status.Ok);
  assert.equal(formatIpv6Address(done.ip, DST), 'ff02::2'); // all routers
  assert.equal(formatIpv6Address(r.multicastAddress), 'ff05::1:4');
});

test('mld: construct an MLDv1 report', () => {
  const want = Buffer.from(
    '83' + '00' + // type 131: MLDv1 report, code 0
    '8015' + // checksum (fe80::1 -> ff05::1:4)
    '0000' + '0000' + // max response delay 0, reserved
    'ff050000000000000000000000010004', // multicast address ff05::1:4
    'hex');
  const r = new MldRepr();
  r.type = Icmpv6Type.MldReport;
  r.version = 1;
  addr('ff05::1:4').copy(r.multicastAddress);
  const out = Buffer.alloc(mldLength(r));
  assert.equal(emitMld(r, out, 0, addr('fe80::1'), 0, addr('ff05::1:4'), 0), 24);
  assert.deepEqual(out, want);
});

test('mld: construct an MLDv2 group-and-source-specific query', () => {
  const want = Buffer.from(
    '82' + '00' + // type 130: query, code 0
    '7ca3' + // checksum (fe80::1 -> ff35::1:3)
    '03e8' + '0000' + // max response code 1000 ms, reserved
    'ff350000000000000000000000010003' + // multicast address ff35::1:3
    '02' + // S=0, QRV=2
    '7d' + // QQIC 125 s
    '0001' + // number of sources
    'fd000000000000000000000000000099', // source fd00::99
    'hex');
  const r = new MldRepr();
  r.type = Icmpv6Type.MldQuery;
  r.version = 2;
  r.maxResponseCode = mldv2MaxResponseCode(1000);
  addr('ff35::1:3').copy(r.multicastAddress);
  r.qrv = 2;
  r.qqic = mldv2Qqic(125);
  r.numberOfSources = 1;
  r.sourcesBuf = addr('fd00::99');
  const out = Buffer.alloc(mldLength(r));
  assert.equal(emitMld(r, out, 0, addr('fe80::1'), 0, addr('ff35::1:3'), 0), 44);
  assert.deepEqual(out, want);
});

test('mld: construct an MLDv2 report with records written in place', () => {
  const want = Buffer.from(
    '8f' + '00' + // type 143: MLDv2 report, code 0
    '6e09' + // checksum (fe80::1 -> ff02::16)
    '0000' + '0002' + // reserved, 2 records
    '05' + '00' + '0001' + // ALLOW_NEW_SOURCES, no aux data, 1 source
    'ff350000000000000000000000010003' + // group ff35::1:3
    'fd000000000000000000000000000099' + // source fd00::99
    '04' + '00' + '0000' + // CHANGE_TO_EXCLUDE, no aux data, no sources
    'ff050000000000000000000000010003', // group ff05::1:3
    'hex');
  const out = Buffer.alloc(want.length);
  let at = MLDV2_REPORT_HEADER_LEN;
  at += writeMldv2Record(out, at, MldRecordType.AllowNewSources, addr('ff35::1:3'), 0, addr('fd00::99'), 0, 1);
  at += writeMldv2Record(out, at, MldRecordType.ChangeToExclude, addr('ff05::1:3'), 0, Buffer.alloc(0), 0, 0);
  const r = new MldRepr();
  r.type = Icmpv6Type.Mldv2Report;
  r.numberOfRecords = 2;
  r.recordsBuf = out;
  r.recordsOffset = MLDV2_REPORT_HEADER_LEN;
  r.recordsLength = at - MLDV2_REPORT_HEADER_LEN;
  assert.equal(emitMld(r, out, 0, addr('fe80::1'), 0, addr('ff02::16'), 0), want.length);
  assert.deepEqual(out, want);
});

test('mld: parse / emit round-trip of every captured message', () => {
  assert.ok(captured.length >= 60);
  const r = new MldRepr();
  for (const c of captured) {
    assert.equal(parse(c, r), Status.Ok, c.name);
    const out = Buffer.alloc(mldLength(r) + 2);
    assert.equal(emitMld(r, out, 2, c.ip, SRC, c.ip, DST), c.len, c.name);
    assert.deepEqual(out.subarray(2), c.ip.subarray(c.at, c.at + c.len), c.name);
  }
});

test('mld: maximum response code and QQIC encodings (RFC 3810 5.1.3, 5.1.9)', () => {
  assert.equal(mldv2MaxResponseDelay(32767), 32767);
  assert.equal(mldv2MaxResponseDelay(0x8000), 0x1000 << 3); // exp 0, mant 0
  assert.equal(mldv2MaxResponseDelay(0xffff), 0x1fff << 10); // the largest: 8,387,584 ms
  assert.equal(mldv2MaxResponseCode(32768), 0x8000);
  assert.equal(mldv2MaxResponseCode(1e9), 0xffff); // saturates
  for (const code of [0, 1, 1000, 32767, 0x8000, 0x8001, 0x9abc, 0xf123, 0xffff]) {
    assert.equal(mldv2MaxResponseCode(mldv2MaxResponseDelay(code)), code);
  }
  assert.equal(mldv2QueryInterval(125), 125);
  assert.equal(mldv2QueryInterval(0x80), 0x10 << 3);
  assert.equal(mldv2QueryInterval(0xff), 0x1f << 10);
  for (let qqic = 0; qqic < 256; qqic++) assert.equal(mldv2Qqic(mldv2QueryInterval(qqic)), qqic);
  assert.equal(mldv2Qqic(129), 0x80); // 129 s rounds down to 128
});

test('mld: truncated, malformed, bad checksum, not MLD', () => {
  const r = new MldRepr();
  const a1 = addr('fe80::1');
  const a2 = addr('ff02::16');
  const make = (hex: string) => {
    const b = Buffer.from(hex, 'hex');
    fillIcmpv6Checksum(b, 0, b.length, a1, 0, a2, 0);
    return b;
  };
  const p = (b: Buffer, len = b.length) => parseMld(b, 0, len, r, a1, 0, a2, 0);
  const v1 = make('83000000' + '00000000' + 'ff050000000000000000000000010004');
  assert.equal(p(v1), Status.Ok);
  assert.equal(parseMld(v1, 0, 23, r, a1, 0, a2, 0, false), Status.Truncated);
  assert.equal(parseMld(v1, 1, 24, r, a1, 0, a2, 0), Status.Truncated); // beyond the buffer
  const q26 = make('82000000' + '03e80000' + '00'.repeat(16) + '0203');
  assert.equal(p(q26), Status.Malformed); // 25..27 bytes is neither v1 nor v2
  const q2 = make('82000000' + '03e80000' + '00'.repeat(16) + '02030002' + '00'.repeat(16)); // 2 sources, 1 present
  assert.equal(p(q2), Status.Truncated);
  const recordHdr = (type: string, aux: string, n: string) => type + aux + n + 'ff050000000000000000000000010003';
  const rep = make('8f000000' + '00000002' + recordHdr('04', '00', '0000')); // 2 records, 1 present
  assert.equal(p(rep), Status.Truncated);
  const aux = make('8f000000' + '00000001' + recordHdr('04', '01', '0000')); // aux data word missing
  assert.equal(p(aux), Status.Truncated);
  const auxOk = make('8f000000' + '00000001' + recordHdr('07', '01', '0000') + 'abcdef01'); // unknown type 7 kept
  assert.equal(p(auxOk), Status.Ok);
  const cur = new MldPacket().reset(auxOk, 0, auxOk.length).records(new MldRecordCursor());
  assert.ok(cur.next());
  assert.deepEqual([cur.recordType, cur.auxDataLength, auxOk.readUInt32BE(cur.auxDataOffset)], [7, 4, 0xabcdef01]);
  assert.ok(!cur.next());
  const trailing = make('8f000000' + '00000000' + 'deadbeef'); // no records, trailing bytes ignored
  assert.equal(p(trailing), Status.Ok);
  assert.deepEqual([r.numberOfRecords, r.recordsLength, mldLength(r)], [0, 0, 8]);
  const bad = Buffer.from(v1);
  bad[23] ^= 1;
  assert.equal(p(bad), Status.Checksum);
  assert.equal(parseMld(bad, 0, bad.length, r, a1, 0, a2, 0, false), Status.Ok);
  const echo = make('80000000' + '00010001');
  assert.equal(p(echo), Status.Unsupported);
  assert.equal(p(v1.subarray(0, 7)), Status.Truncated);
});

test('mld: fuzz never throws, hangs or reads past len', () => {
  const r = new MldRepr();
  const cur = new MldRecordCursor();
  const a1 = addr('fe80::1');
  const a2 = addr('ff02::16');
  const n = fuzzParser(captured.map((c) => c.ip.subarray(c.at, c.at + c.len)), (b, o, l) => {
    const st = parseMld(b, o, l, r, a1, 0, a2, 0, (l & 3) === 0);
    if (st !== Status.Ok) return st;
    let d = `${r.type}:${r.version}:${r.maxResponseCode}:${r.multicastAddress.toString('hex')}:${r.suppressRouterSide}:${r.qrv}:${r.qqic}`;
    d += `:${r.numberOfSources}:${r.numberOfRecords}:${r.recordsLength}`;
    for (let i = 0; i < r.numberOfSources; i++) d += `:${r.sourcesBuf.toString('hex', r.sourcesOffset + 16 * i, r.sourcesOffset + 16 * i + 16)}`;
    if (r.type === Icmpv6Type.Mldv2Report) {
      cur.reset(r.recordsBuf, r.recordsOffset, r.recordsLength, r.numberOfRecords);
      while (cur.next()) {
        d += `|${cur.recordType}:${b.toString('hex', cur.multicastAddressOffset, cur.multicastAddressOffset + 16)}:${cur.numberOfSources}:${cur.auxDataLength}`;
        if (cur.numberOfSources > 0) d += `:${b.toString('hex', cur.sourceOffset(cur.numberOfSources - 1), cur.sourceOffset(cur.numberOfSources))}`;
      }
      d += `|${cur.status}`;
    }
    return d;
  });
  assert.ok(n > 0);
});
