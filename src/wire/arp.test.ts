import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ArpPacket, ArpRepr, ArpOperation, parseArp, emitArp, arpLength, ARP_LEN } from './arp.js';
import { formatMacAddress, parseMacAddress } from './ethernet.js';
import { formatIpv4Address, parseIpv4Address } from './address.js';
import { Status } from './status.js';
import { fuzzParser, readHexPackets } from './fuzz-harness.js';

const ETH = 14;
const captured = readHexPackets('testdata/captures/arp.hex').map((p) => p.bytes.subarray(ETH));

// A hand-written reply, field by field.
const REPLY = Buffer.from(
  '0001' + // hardware type: Ethernet
  '0800' + // protocol type: IPv4
  '06' + // hardware address length
  '04' + // protocol address length
  '0002' + // operation: reply
  '020000000002' + // sender MAC 02:00:00:00:00:02
  'c6120002' + // sender IP 198.18.0.2
  '020000000001' + // target MAC 02:00:00:00:00:01
  'c6120001', // target IP 198.18.0.1
  'hex');

test('arp: deconstruct the captured request and reply', () => {
  const [req, rep] = captured as [Buffer, Buffer];
  const v = new ArpPacket().reset(req, 0, req.length);
  assert.equal(v.check(), Status.Ok);
  assert.equal(v.hardwareType, 1);
  assert.equal(v.protocolType, 0x0800);
  assert.equal(v.hardwareLength, 6);
  assert.equal(v.protocolLength, 4);
  assert.equal(v.operation, ArpOperation.Request);
  assert.equal(formatMacAddress(req, v.senderMacOffset), '62:8d:6d:15:80:56');
  assert.equal(formatIpv4Address(v.senderIp), '198.18.0.1');
  assert.equal(formatMacAddress(req, v.targetMacOffset), '00:00:00:00:00:00');
  assert.equal(formatIpv4Address(v.targetIp), '198.18.0.2');

  const w = new ArpPacket().reset(rep, 0, rep.length);
  assert.equal(w.check(), Status.Ok);
  assert.equal(w.operation, ArpOperation.Reply);
  assert.equal(formatMacAddress(rep, w.senderMacOffset), '5a:7f:c0:6e:d3:15');
  assert.equal(formatIpv4Address(w.senderIp), '198.18.0.2');
  assert.equal(formatMacAddress(rep, w.targetMacOffset), '62:8d:6d:15:80:56');
  assert.equal(formatIpv4Address(w.targetIp), '198.18.0.1');
});

test('arp: construct the hand-written reply from a repr', () => {
  const r = new ArpRepr();
  r.operation = ArpOperation.Reply;
  parseMacAddress('02:00:00:00:00:02', r.senderMac);
  r.senderIp = parseIpv4Address('198.18.0.2')!;
  parseMacAddress('02:00:00:00:00:01', r.targetMac);
  r.targetIp = parseIpv4Address('198.18.0.1')!;
  const out = Buffer.alloc(arpLength(r) + 4, 0xaa);
  assert.equal(emitArp(r, out, 2), ARP_LEN);
  assert.deepEqual(out.subarray(2, 2 + ARP_LEN), REPLY);
  assert.equal(out[0], 0xaa); // nothing written outside
  assert.equal(out[out.length - 1], 0xaa);
});

test('arp: parse / emit round-trip of every captured packet', () => {
  assert.equal(captured.length, 2);
  for (const pkt of [...captured, REPLY]) {
    const r = new ArpRepr();
    assert.equal(parseArp(pkt, 0, pkt.length, r), Status.Ok);
    const out = Buffer.alloc(arpLength(r));
    emitArp(r, out, 0);
    assert.deepEqual(out, pkt.subarray(0, ARP_LEN));
  }
});

test('arp: Ethernet padding after the packet is ignored', () => {
  const padded = Buffer.concat([REPLY, Buffer.alloc(18)]); // a 60-byte frame's ARP payload
  const r = new ArpRepr();
  assert.equal(parseArp(padded, 0, padded.length, r), Status.Ok);
  assert.equal(formatIpv4Address(r.targetIp), '198.18.0.1');
});

test('arp: truncated and unsupported', () => {
  const r = new ArpRepr();
  assert.equal(parseArp(REPLY, 0, 7, r), Status.Truncated);
  assert.equal(parseArp(REPLY, 0, 27, r), Status.Truncated);
  assert.equal(parseArp(REPLY, 1, 28, r), Status.Truncated); // range beyond the buffer
  const cases: [number, string, string][] = [
    [0, '0006', 'hardware type 6 (IEEE 802)'],
    [2, '86dd', 'protocol type IPv6'],
    [4, '08', 'hardware length 8'],
    [5, '10', 'protocol length 16'],
    [6, '0003', 'operation 3 (RARP request)'],
  ];
  for (const [at, hex, what] of cases) {
    const bad = Buffer.from(REPLY);
    bad.write(hex, at, 'hex');
    assert.equal(parseArp(bad, 0, bad.length, r), Status.Unsupported, what);
  }
  // An unsupported type is reported before a short length: the 8-byte prefix says what it is.
  const ipv6Arp = Buffer.from('000186dd06100001', 'hex');
  assert.equal(parseArp(ipv6Arp, 0, ipv6Arp.length, r), Status.Unsupported);
});

test('arp: fuzz never throws, hangs or reads past len', () => {
  const r = new ArpRepr();
  const n = fuzzParser([...captured, REPLY], (b, o, l) => {
    const st = parseArp(b, o, l, r);
    if (st !== Status.Ok) return st;
    return `${r.operation}:${r.senderMac.toString('hex')}:${r.senderIp}:${r.targetMac.toString('hex')}:${r.targetIp}`;
  });
  assert.ok(n > 0);
});
