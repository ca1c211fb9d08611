import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  Dhcpv4Packet, Dhcpv4Repr, parseDhcpv4, emitDhcpv4, dhcpv4Length, DhcpMessageType, DhcpOption,
  BOOTP_REPLY, BOOTP_REQUEST, DHCPV4_FIELD, OVERLOAD_FILE, OVERLOAD_SNAME,
} from './dhcpv4.js';
import { Status } from './status.js';
import { formatIpv4Address, parseIpv4Address } from './address.js';
import { fuzzIterations, fuzzParser, readHexPackets } from './fuzz-harness.js';
import { UserError } from '../util/index.js';

/** The UDP payload of a captured Ethernet frame (IPv4 without extension headers). */
function udpPayload(frame: Buffer): Buffer {
  return frame.subarray(14 + (frame[14]! & 15) * 4 + 8);
}

const captured = readHexPackets('testdata/captures/dhcpv4.hex').map((p) => ({
  name: p.name, frame: p.bytes, msg: udpPayload(p.bytes),
}));
const byName = (word: string, nth = 0) => captured.filter((p) => p.name.includes(` ${word} `))[nth]!;
const ip = (text: string) => parseIpv4Address(text)!;

test('dhcpv4: the capture has two full DISCOVER/OFFER/REQUEST/ACK exchanges and a RELEASE', () => {
  const types = captured.map((p) => new Dhcpv4Packet().reset(p.msg, 0, p.msg.length).messageType);
  const D = DhcpMessageType;
  assert.deepEqual(types, [D.Discover, D.Offer, D.Request, D.Ack, D.Discover, D.Offer, D.Request, D.Ack, D.Release]);
});

test('dhcpv4: deconstruct a captured DISCOVER (busybox udhcpc)', () => {
  const { msg, frame } = byName('DISCOVER');
  const v = new Dhcpv4Packet().reset(msg, 0, msg.length);
  assert.equal(v.check(), Status.Ok);
  assert.equal(v.op, BOOTP_REQUEST);
  assert.equal(v.htype, 1);
  assert.equal(v.hlen, 6);
  assert.equal(v.broadcast, false);
  assert.deepEqual(msg.subarray(v.chaddrOffset, v.chaddrOffset + 6), frame.subarray(6, 12)); // = Ethernet source
  const r = new Dhcpv4Repr();
  assert.equal(parseDhcpv4(msg, 0, msg.length, r), Status.Ok);
  assert.equal(r.messageType, DhcpMessageType.Discover);
  assert.equal(r.xid, v.xid);
  assert.equal(r.maxMessageSize, 576);
  assert.deepEqual([...r.parameterRequestList.subarray(0, r.parameterRequestCount)], [1, 3, 6, 12, 15, 28, 42]);
  assert.equal(r.hostNameText(), 'mtclient');
  assert.equal(r.clientId.subarray(0, r.clientIdLength).toString('hex'), '01aabbccddeeff');
  assert.equal(r.requestedIp, -1);
  assert.equal(r.leaseTime, -1);
  // Option 60 (vendor class) is not interpreted: kept raw.
  assert.equal(r.extra[0], 60);
  assert.equal(r.extra.toString('latin1', 2, 2 + r.extra[1]!), 'udhcp 1.35.0');
  assert.equal(r.extraLength, 14);
});

test('dhcpv4: deconstruct a captured ACK (dnsmasq)', () => {
  const { msg } = byName('ACK');
  const r = new Dhcpv4Repr();
  assert.equal(parseDhcpv4(msg, 0, msg.length, r), Status.Ok);
  assert.equal(r.op, BOOTP_REPLY);
  assert.equal(r.messageType, DhcpMessageType.Ack);
  const req = new Dhcpv4Repr();
  assert.equal(parseDhcpv4(byName('REQUEST').msg, 0, byName('REQUEST').msg.length, req), Status.Ok);
  assert.equal(r.yiaddr, req.requestedIp); // the address the client asked for
  assert.ok(r.yiaddr >= ip('198.18.5.100') && r.yiaddr <= ip('198.18.5.150')); // --dhcp-range
  assert.equal(r.xid, req.xid);
  assert.equal(formatIpv4Address(r.siaddr), '198.18.5.1');
  assert.equal(r.ciaddr, 0);
  assert.equal(formatIpv4Address(r.serverId), '198.18.5.1');
  assert.equal(r.leaseTime, 3600); // --dhcp-range=...,1h
  assert.equal(r.renewalTime, 1800);
  assert.equal(r.rebindingTime, 3150);
  assert.equal(formatIpv4Address(r.subnetMask), '255.255.255.0');
  assert.deepEqual([...r.routers.subarray(0, r.routerCount)].map(formatIpv4Address), ['198.18.5.1']);
  assert.deepEqual([...r.dnsServers.subarray(0, r.dnsServerCount)].map(formatIpv4Address), ['198.18.5.1']);
  assert.equal(r.domainNameText(), 'lab.test');
  assert.equal(r.hostNameText(), 'mtclient');
  assert.equal(r.snameText(), '');
  assert.equal(r.extra[0], 28); // broadcast address, not interpreted
  const v = new Dhcpv4Packet().reset(msg, 0, msg.length);
  const at = v.findOption(DhcpOption.LeaseTime);
  assert.equal(msg[at + 1], 4);
  assert.equal(msg.readUInt32BE(at + 2), 3600);
  assert.equal(v.findOption(DhcpOption.ClientId), -1);
});

test('dhcpv4: deconstruct the RELEASE (ISC dhclient)', () => {
  const { msg } = byName('RELEASE');
  const r = new Dhcpv4Repr();
  assert.equal(parseDhcpv4(msg, 0, msg.length, r), Status.Ok);
  const ack = new Dhcpv4Repr();
  assert.equal(parseDhcpv4(byName('ACK', 1).msg, 0, byName('ACK', 1).msg.length, ack), Status.Ok);
  assert.equal(r.ciaddr, ack.yiaddr); // releases the address dhclient was given
  assert.equal(r.hostNameText(), 'mtdhclient');
  assert.equal(formatIpv4Address(r.serverId), '198.18.5.1');
});

// An OFFER built by hand, field by field: what a meshtun DHCP server would send.
const OFFER = Buffer.from(
  '02' + '01' + '06' + '00' + // op BOOTREPLY, htype Ethernet, hlen 6, hops 0
  '12345678' + // xid
  '0000' + '8000' + // secs 0, flags: broadcast
  '00000000' + // ciaddr 0.0.0.0
  'c6120564' + // yiaddr 198.18.5.100
  'c6120501' + // siaddr 198.18.5.1
  '00000000' + // giaddr 0.0.0.0
  '02000000abcd' + '00'.repeat(10) + // chaddr 02:00:00:00:ab:cd + 10 bytes padding
  '00'.repeat(64) + '00'.repeat(128) + // sname, file: empty
  '63825363' + // magic cookie
  '350102' + // 53 message type: OFFER
  '3604c6120501' + // 54 server id 198.18.5.1
  '330400000e10' + // 51 lease time 3600 s
  '3a0400000708' + // 58 renewal (T1) 1800 s
  '3b0400000c4e' + // 59 rebinding (T2) 3150 s
  '0104ffffff00' + // 1 subnet mask 255.255.255.0
  '0304c6120501' + // 3 router 198.18.5.1
  '0608c6120501c6120502' + // 6 DNS servers 198.18.5.1, 198.18.5.2
  '0c036d7431' + // 12 host name "mt1"
  '0f086c61622e74657374' + // 15 domain name "lab.test"
  'ff', // end (305 bytes in all: above the 300-byte BOOTP minimum, so no padding)
  'hex');

function offerRepr(): Dhcpv4Repr {
  const r = new Dhcpv4Repr();
  r.op = BOOTP_REPLY;
  r.xid = 0x12345678;
  r.broadcast = true;
  r.yiaddr = ip('198.18.5.100');
  r.siaddr = ip('198.18.5.1');
  r.chaddr.set([2, 0, 0, 0, 0xab, 0xcd]);
  r.messageType = DhcpMessageType.Offer;
  r.serverId = ip('198.18.5.1');
  r.leaseTime = 3600;
  r.renewalTime = 1800;
  r.rebindingTime = 3150;
  r.subnetMask = ip('255.255.255.0');
  r.routers[0] = ip('198.18.5.1');
  r.routerCount = 1;
  r.dnsServers.set([ip('198.18.5.1'), ip('198.18.5.2')]);
  r.dnsServerCount = 2;
  r.setHostName('mt1');
  r.setDomainName('lab.test');
  return r;
}

test('dhcpv4: construct the hand-written OFFER from a repr', () => {
  const r = offerRepr();
  assert.equal(OFFER.length, 305);
  assert.equal(dhcpv4Length(r), 305);
  const out = Buffer.alloc(315, 0xee);
  assert.equal(emitDhcpv4(r, out, 5), 305);
  assert.deepEqual(out.subarray(5, 310), OFFER);
  assert.equal(out[4], 0xee);
  assert.equal(out[310], 0xee);
  // A short message is padded with zeros to the BOOTP minimum of 300 bytes.
  r.dnsServerCount = 0; r.hostNameLength = 0; r.domainNameLength = 0;
  assert.equal(dhcpv4Length(r), 300);
  out.fill(0xee);
  emitDhcpv4(r, out, 0);
  assert.equal(out[240 + 3 + 6 * 6], 0xff); // end after the six 4-byte options
  assert.ok(out.subarray(240 + 3 + 6 * 6 + 1, 300).every((x) => x === 0));
  const back = new Dhcpv4Repr();
  assert.equal(parseDhcpv4(OFFER, 0, OFFER.length, back), Status.Ok);
  assert.equal(back.broadcast, true);
  assert.equal(back.dnsServerCount, 2);
  assert.equal(formatIpv4Address(back.dnsServers[1]!), '198.18.5.2');
});

test('dhcpv4: parse / emit round-trip of every captured message, byte for byte', () => {
  const r = new Dhcpv4Repr();
  for (const { name, msg } of captured) {
    assert.equal(parseDhcpv4(msg, 0, msg.length, r), Status.Ok, name);
    assert.equal(dhcpv4Length(r), msg.length, name);
    const out = Buffer.alloc(msg.length);
    assert.equal(emitDhcpv4(r, out, 0), msg.length);
    assert.deepEqual(out, msg, name);
  }
});

test('dhcpv4: a parsed message edited and emitted keeps old options and gains new ones', () => {
  const { msg } = byName('ACK');
  const r = new Dhcpv4Repr();
  assert.equal(parseDhcpv4(msg, 0, msg.length, r), Status.Ok);
  r.leaseTime = 7200;
  r.dnsServers[1] = ip('198.18.5.9');
  r.dnsServerCount = 2;
  r.clientId.set([1, 2, 3]);
  r.clientIdLength = 3;
  r.hostNameLength = 0; // removed
  const out = Buffer.alloc(dhcpv4Length(r));
  emitDhcpv4(r, out, 0);
  const back = new Dhcpv4Repr();
  assert.equal(parseDhcpv4(out, 0, out.length, back), Status.Ok);
  assert.equal(back.leaseTime, 7200);
  assert.equal(back.dnsServerCount, 2);
  assert.equal(formatIpv4Address(back.dnsServers[1]!), '198.18.5.9');
  assert.equal(back.clientIdLength, 3);
  assert.equal(back.hostNameLength, 0);
  assert.equal(back.domainNameText(), 'lab.test');
  assert.equal(back.extra[0], 28);
});

/** A REQUEST whose options overflow into file (overload 1) and sname (overload 2). */
function overloaded(): Buffer {
  const b = Buffer.alloc(300);
  Buffer.from('010106000000000100000000', 'hex').copy(b, 0); // op, htype, hlen, hops, xid 1, secs, flags
  b.writeUInt32BE(0x63825363, DHCPV4_FIELD.COOKIE);
  Buffer.from(
    '350103' + // 53 message type REQUEST
    '340103' + // 52 overload: file and sname
    'ff', 'hex').copy(b, DHCPV4_FIELD.OPTIONS);
  Buffer.from(
    '3204c6120564' + // 50 requested IP 198.18.5.100 (in file)
    '00' + // pad
    'ff', 'hex').copy(b, DHCPV4_FIELD.FILE);
  Buffer.from(
    '0c026869' + // 12 host name "hi" (in sname)
    'ff', 'hex').copy(b, DHCPV4_FIELD.SNAME);
  return b;
}

test('dhcpv4: options overloaded into file and sname are read, found and round-trip', () => {
  const b = overloaded();
  const r = new Dhcpv4Repr();
  assert.equal(parseDhcpv4(b, 0, b.length, r), Status.Ok);
  assert.equal(r.overload, OVERLOAD_FILE | OVERLOAD_SNAME);
  assert.equal(formatIpv4Address(r.requestedIp), '198.18.5.100');
  assert.equal(r.hostNameText(), 'hi');
  assert.equal(r.snameText(), ''); // not text when overloaded
  const v = new Dhcpv4Packet().reset(b, 0, b.length);
  assert.equal(v.findOption(DhcpOption.RequestedIp), DHCPV4_FIELD.FILE);
  assert.equal(v.findOption(DhcpOption.HostName), DHCPV4_FIELD.SNAME);
  const out = Buffer.alloc(dhcpv4Length(r));
  emitDhcpv4(r, out, 0);
  assert.deepEqual(out, b);
  // An option in an overloaded field that overruns it is malformed, as is overload inside it.
  const bad = overloaded();
  bad[DHCPV4_FIELD.SNAME + 1] = 70;
  assert.equal(parseDhcpv4(bad, 0, bad.length, r), Status.Malformed);
  const nested = overloaded();
  Buffer.from('340101', 'hex').copy(nested, DHCPV4_FIELD.SNAME);
  assert.equal(parseDhcpv4(nested, 0, nested.length, r), Status.Malformed);
});

/** The hand-written OFFER with its options replaced by `hex` (which must include the end). */
function withOptions(hex: string): Buffer {
  return Buffer.concat([OFFER.subarray(0, DHCPV4_FIELD.OPTIONS), Buffer.from(hex, 'hex')]);
}

test('dhcpv4: truncated messages', () => {
  const r = new Dhcpv4Repr();
  assert.equal(parseDhcpv4(OFFER, 0, 239, r), Status.Truncated); // no room for the cookie
  assert.equal(parseDhcpv4(OFFER, 0, 0, r), Status.Truncated);
  assert.equal(parseDhcpv4(OFFER, 0, 262, r), Status.Truncated); // cut inside an option
  assert.equal(parseDhcpv4(withOptions('350102'), 0, 243, r), Status.Truncated); // no end option
  assert.equal(parseDhcpv4(withOptions('35'), 0, 241, r), Status.Truncated); // no length byte
  assert.equal(parseDhcpv4(OFFER, 10, OFFER.length, r), Status.Truncated); // range beyond buffer
  assert.equal(parseDhcpv4(OFFER, 0, 240 + 3 + 6 + 1, r), Status.Truncated); // end lies later
});

test('dhcpv4: malformed messages and option lengths', () => {
  const r = new Dhcpv4Repr();
  const cases: [string, Buffer][] = [
    ['lease time of 3 bytes', withOptions('350102330300000eff')],
    ['router list of 6 bytes', withOptions('350102' + '0306c6120501c612ff')],
    ['message type 0', withOptions('350100ff')],
    ['message type of 2 bytes', withOptions('35020102ff')],
    ['overload 4', withOptions('350102340104ff')],
    ['empty host name', withOptions('3501020c00ff')],
    ['client id of 1 byte', withOptions('3501023d0101ff')],
    ['max message size of 4 bytes', withOptions('350102' + '390400000240' + 'ff')],
  ];
  for (const [what, b] of cases) assert.equal(parseDhcpv4(b, 0, b.length, r), Status.Malformed, what);
  const cookie = Buffer.from(OFFER);
  cookie[DHCPV4_FIELD.COOKIE + 3] = 0x64;
  assert.equal(parseDhcpv4(cookie, 0, cookie.length, r), Status.Malformed);
  const op = Buffer.from(OFFER);
  op[0] = 3;
  assert.equal(parseDhcpv4(op, 0, op.length, r), Status.Malformed);
  const hlen = Buffer.from(OFFER);
  hlen[2] = 17;
  assert.equal(parseDhcpv4(hlen, 0, hlen.length, r), Status.Malformed);
});

test('dhcpv4: repeated options and lists beyond the repr capacity are Unsupported', () => {
  const r = new Dhcpv4Repr();
  const twice = withOptions('350102' + '330400000e10' + '330400000e10' + 'ff');
  assert.equal(parseDhcpv4(twice, 0, twice.length, r), Status.Unsupported);
  const many = withOptions('350102' + '0644' + 'c6120501'.repeat(17) + 'ff');
  assert.equal(parseDhcpv4(many, 0, many.length, r), Status.Unsupported);
  const sixteen = withOptions('350102' + '0640' + 'c6120501'.repeat(16) + 'ff');
  assert.equal(parseDhcpv4(sixteen, 0, sixteen.length, r), Status.Ok);
  assert.equal(r.dnsServerCount, 16);
});

test('dhcpv4: more options than the order can record still parse, and emit in the default order', () => {
  const padded = withOptions('350105' + '00'.repeat(300) + '330400000e10' + 'ff');
  const r = new Dhcpv4Repr();
  assert.equal(parseDhcpv4(padded, 0, padded.length, r), Status.Ok);
  assert.equal(r.orderCount, 0);
  assert.equal(r.leaseTime, 3600);
  const out = Buffer.alloc(dhcpv4Length(r));
  emitDhcpv4(r, out, 0);
  assert.equal(out.subarray(240, 250).toString('hex'), '350105' + '330400000e10' + 'ff');
  assert.equal(out.length, padded.length); // padded with zeros to the parsed length
});

test('dhcpv4: host names that do not fit an option are a user error', () => {
  const r = new Dhcpv4Repr();
  assert.throws(() => r.setHostName(''), UserError);
  assert.throws(() => r.setDomainName('x'.repeat(256)), /must be 1 to 255 bytes/);
});

test('dhcpv4: fuzz never throws, hangs or reads past len', () => {
  const r = new Dhcpv4Repr();
  const v = new Dhcpv4Packet();
  const seeds = [...captured.map((p) => p.msg), OFFER, overloaded()];
  const n = fuzzParser(seeds, (b, o, l) => {
    const st = parseDhcpv4(b, o, l, r);
    const at = l >= 240 ? v.reset(b, o, l).findOption(DhcpOption.HostName) : -1;
    const found = l >= 240 ? `${v.messageType}:${at < 0 ? -1 : at - o}` : '';
    if (st !== Status.Ok) return `${st}:${found}`;
    // Whatever parses must emit and parse back to the same fields.
    const out = Buffer.alloc(dhcpv4Length(r));
    emitDhcpv4(r, out, 0);
    const again = new Dhcpv4Repr();
    const st2 = parseDhcpv4(out, 0, out.length, again);
    if (st2 !== Status.Ok || again.leaseTime !== r.leaseTime || again.hostNameLength !== r.hostNameLength ||
        again.extraLength !== r.extraLength || again.messageType !== r.messageType) {
      throw new Error(`re-parse mismatch: status ${st2}`);
    }
    return `${st}:${found}:${r.xid}:${r.messageType}:${r.extraLength}:${r.dnsServerCount}:${r.orderCount}`;
  }, { iterations: fuzzIterations(30_000) });
  assert.ok(n > 0);
});
