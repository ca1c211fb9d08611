import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  EthernetFrame, EthernetRepr, parseEthernet, emitEthernet, ethernetHeaderLength, ethernetLength, EtherType,
  formatMacAddress, parseMacAddress, isBroadcastMac, isMulticastMac, macEqual,
} from './ethernet.js';
import { Status } from './status.js';
import { fuzzParser, readHexPackets } from './fuzz-harness.js';

const CAPTURE_FILES = [
  'arp', 'ipv4-icmp', 'ipv4-tcp', 'ipv4-udp', 'ipv4-frag',
  'ipv6-icmp', 'ipv6-tcp', 'ipv6-udp', 'ipv6-hbh', 'ipv6-frag',
];
const captured = CAPTURE_FILES.flatMap((f) => readHexPackets(`testdata/captures/${f}.hex`));
const arpRequest = readHexPackets('testdata/captures/arp.hex')[0]!.bytes;

// This machine's kernel has no 802.1Q module and no bridge VLAN filtering, so no tagged frame could
// be captured. These are the captured ARP request (arp.hex, first frame) with tags inserted.
const ARP_BODY = '0001080006040001628d6d158056c6120001000000000000c6120002';
const DOT1Q = Buffer.from(
  'ffffffffffff' + // destination: broadcast
  '628d6d158056' + // source
  '8100' + // TPID 802.1Q
  'a064' + // PCP 5, DEI 0, VLAN 100
  '0806' + // EtherType ARP
  ARP_BODY,
  'hex');
const QINQ = Buffer.from(
  'ffffffffffff' + // destination: broadcast
  '628d6d158056' + // source
  '88a8' + // TPID 802.1ad (service tag)
  '30c8' + // PCP 1, DEI 1, VLAN 200
  '8100' + // TPID 802.1Q (customer tag)
  '012c' + // PCP 0, DEI 0, VLAN 300
  '0806' + // EtherType ARP
  ARP_BODY,
  'hex');

test('ethernet: deconstruct a captured ARP request frame', () => {
  const f = new EthernetFrame().reset(arpRequest, 0, arpRequest.length);
  assert.equal(f.check(), Status.Ok);
  assert.equal(formatMacAddress(f.buf, f.dstOffset), 'ff:ff:ff:ff:ff:ff');
  assert.equal(formatMacAddress(f.buf, f.srcOffset), '62:8d:6d:15:80:56');
  assert.ok(f.isBroadcast);
  assert.ok(f.isMulticast);
  assert.equal(f.tagCount, 0);
  assert.equal(f.vlanTpid, 0);
  assert.equal(f.vlanId, 0);
  assert.equal(f.ethertype, EtherType.Arp);
  assert.equal(f.headerLength, 14);
  assert.equal(f.payloadOffset, 14);
  assert.equal(f.payloadLength, 28);
  const mac = Buffer.alloc(6);
  f.copySrc(mac);
  assert.equal(formatMacAddress(mac), '62:8d:6d:15:80:56');
});

test('ethernet: deconstruct 802.1Q and QinQ tags', () => {
  const f = new EthernetFrame().reset(DOT1Q, 0, DOT1Q.length);
  assert.equal(f.check(), Status.Ok);
  assert.equal(f.tagCount, 1);
  assert.equal(f.vlanTpid, EtherType.Vlan);
  assert.equal(f.vlanId, 100);
  assert.equal(f.vlanPcp, 5);
  assert.equal(f.vlanDei, false);
  assert.equal(f.innerVlanId, 0);
  assert.equal(f.ethertype, EtherType.Arp);
  assert.equal(f.payloadOffset, 18);
  assert.equal(f.payloadLength, 28);

  const q = new EthernetFrame().reset(QINQ, 0, QINQ.length);
  assert.equal(q.check(), Status.Ok);
  assert.equal(q.tagCount, 2);
  assert.equal(q.vlanTpid, EtherType.QinQ);
  assert.equal(q.vlanId, 200);
  assert.equal(q.vlanPcp, 1);
  assert.equal(q.vlanDei, true);
  assert.equal(q.innerVlanId, 300);
  assert.equal(q.innerVlanPcp, 0);
  assert.equal(q.innerVlanDei, false);
  assert.equal(q.ethertype, EtherType.Arp);
  assert.equal(q.payloadOffset, 22);
  // The payload behind the tags is the captured ARP body.
  assert.deepEqual(QINQ.subarray(q.payloadOffset), arpRequest.subarray(14));
});

test('ethernet: construct untagged, 802.1Q and QinQ headers from a repr', () => {
  const r = new EthernetRepr();
  assert.ok(parseMacAddress('ff:ff:ff:ff:ff:ff', r.dst));
  assert.ok(parseMacAddress('62-8D-6D-15-80-56', r.src));
  r.ethertype = EtherType.Arp;
  r.payloadLength = 28;
  const plain = Buffer.alloc(ethernetLength(r));
  assert.equal(emitEthernet(r, plain, 0), 14);
  assert.deepEqual(plain.subarray(0, 14), Buffer.from(
    'ffffffffffff' + // destination
    '628d6d158056' + // source
    '0806', // ARP
    'hex'));

  r.tagCount = 1;
  r.vlanId = 100;
  r.vlanPcp = 5;
  const one = Buffer.alloc(ethernetLength(r));
  assert.equal(emitEthernet(r, one, 0), 18);
  Buffer.from(ARP_BODY, 'hex').copy(one, 18);
  assert.deepEqual(one, DOT1Q);

  r.tagCount = 2;
  r.vlanTpid = EtherType.QinQ;
  r.vlanId = 200;
  r.vlanPcp = 1;
  r.vlanDei = true;
  r.innerVlanId = 300;
  assert.equal(ethernetHeaderLength(r), 22);
  const two = Buffer.alloc(ethernetLength(r));
  assert.equal(emitEthernet(r, two, 0), 22);
  Buffer.from(ARP_BODY, 'hex').copy(two, 22);
  assert.deepEqual(two, QINQ);
});

test('ethernet: parse / emit round-trip of every captured frame and the tagged vectors', () => {
  assert.ok(captured.length > 50);
  for (const { name, bytes } of [...captured, { name: 'dot1q', bytes: DOT1Q }, { name: 'qinq', bytes: QINQ }]) {
    const r = new EthernetRepr();
    assert.equal(parseEthernet(bytes, 0, bytes.length, r), Status.Ok, name);
    assert.equal(ethernetLength(r), bytes.length, name);
    const out = Buffer.alloc(ethernetLength(r));
    const hl = emitEthernet(r, out, 0);
    bytes.copy(out, hl, r.payloadOffset);
    assert.deepEqual(out, bytes, name);
  }
});

test('ethernet: parse at an offset fills the repr in place', () => {
  const r = new EthernetRepr();
  const dst = r.dst;
  const buf = Buffer.concat([Buffer.alloc(5, 0xee), QINQ]);
  assert.equal(parseEthernet(buf, 5, QINQ.length, r), Status.Ok);
  assert.equal(r.dst, dst); // same Buffer, refilled
  assert.ok(isBroadcastMac(r.dst));
  assert.equal(r.payloadOffset, 5 + 22);
  assert.equal(r.payloadLength, 28);
  assert.equal(r.innerVlanId, 300);
  // A later untagged frame clears the tag fields.
  assert.equal(parseEthernet(arpRequest, 0, arpRequest.length, r), Status.Ok);
  assert.equal(r.tagCount, 0);
  assert.equal(r.vlanId, 0);
  assert.equal(r.innerVlanId, 0);
});

test('ethernet: truncated, malformed and unsupported frames', () => {
  const r = new EthernetRepr();
  assert.equal(parseEthernet(arpRequest, 0, 13, r), Status.Truncated);
  assert.equal(parseEthernet(arpRequest, 0, 14, r), Status.Ok); // empty payload is a valid header
  assert.equal(parseEthernet(arpRequest, 1, arpRequest.length, r), Status.Truncated); // beyond buffer
  assert.equal(parseEthernet(arpRequest, -1, 20, r), Status.Truncated);
  assert.equal(parseEthernet(DOT1Q, 0, 17, r), Status.Truncated); // tag without EtherType
  assert.equal(parseEthernet(QINQ, 0, 21, r), Status.Truncated); // second tag without EtherType

  const inner88a8 = Buffer.from(QINQ);
  inner88a8.writeUInt16BE(EtherType.QinQ, 16); // an S-tag inside a tag
  assert.equal(parseEthernet(inner88a8, 0, inner88a8.length, r), Status.Malformed);

  const triple = Buffer.concat([QINQ.subarray(0, 20), Buffer.from('8100000a', 'hex'), QINQ.subarray(20)]);
  assert.equal(parseEthernet(triple, 0, triple.length, r), Status.Unsupported);

  const llc = Buffer.from(arpRequest);
  llc.writeUInt16BE(0x05dc, 12); // an 802.3 length, not an EtherType
  assert.equal(parseEthernet(llc, 0, llc.length, r), Status.Unsupported);
});

test('ethernet: MAC address text', () => {
  const b = Buffer.alloc(8);
  assert.ok(parseMacAddress('02:00:5E:10:00:01', b, 2));
  assert.equal(formatMacAddress(b, 2), '02:00:5e:10:00:01');
  assert.ok(!isMulticastMac(b, 2));
  assert.ok(parseMacAddress('33-33-00-00-00-16', b, 0));
  assert.ok(isMulticastMac(b, 0));
  assert.ok(!isBroadcastMac(b, 0));
  for (const bad of ['', '02:00:5e:10:00', '02:00:5e:10:00:01:02', '02:00-5e:10:00:01', '2:0:5e:10:0:1', 'zz:00:5e:10:00:01', '02005e100001']) {
    assert.equal(parseMacAddress(bad, b), false, bad);
  }
  const x = Buffer.from('628d6d158056', 'hex');
  assert.ok(macEqual(x, 0, arpRequest, 6));
  assert.ok(!macEqual(x, 0, arpRequest, 0));
});

test('ethernet: fuzz never throws, hangs or reads past len', () => {
  const r = new EthernetRepr();
  const n = fuzzParser([...captured.map((p) => p.bytes), DOT1Q, QINQ], (b, o, l) => {
    const st = parseEthernet(b, o, l, r);
    if (st !== Status.Ok) return st;
    return `${r.dst.toString('hex')}:${r.src.toString('hex')}:${r.ethertype}:${r.tagCount}:${r.vlanTpid}:` +
      `${r.vlanId}:${r.vlanPcp}:${r.vlanDei}:${r.innerVlanId}:${r.payloadOffset - o}:${r.payloadLength}`;
  });
  assert.ok(n > 0);
});
