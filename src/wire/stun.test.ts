import { test } from 'node:test';
import assert from 'node:assert/strict';
import { crc32 as zlibCrc32 } from 'node:zlib';
import {
  StunMessage, StunRepr, StunClass, StunMethod, StunAttr, StunErrorCode, parseStun, emitStun, stunLength, stunFingerprint, stunText,
  stunMessageType, stunMethodOf, stunClassOf, STUN_HEADER_LEN, STUN_MAX_UNKNOWN,
} from './stun.js';
import { crc32 } from './crc32.js';
import { formatIpv4Address, formatIpv6Address, parseIpv4Address, parseIpv6Address } from './address.js';
import { Status } from './status.js';
import { fuzzParser } from './fuzz-harness.js';

const hex = (lines: string[]) => Buffer.from(lines.join('').replace(/\s+/g, ''), 'hex');
const TRANSACTION_ID = Buffer.from('b7e7a701bc34d686fa87dfae', 'hex');

// RFC 5769 2.1: sample request (software "STUN test client", username "evtj:h6vY").
const SAMPLE_REQUEST = hex([
  '0001 0058', // Binding request, length 88
  '2112a442', // magic cookie
  'b7e7a701 bc34d686 fa87dfae', // transaction id
  '8022 0010', // SOFTWARE, 16 bytes
  '5354554e 20746573 7420636c 69656e74', // "STUN test client"
  '0024 0004', // PRIORITY (ICE, comprehension-required, unknown here)
  '6e0001ff', // priority value
  '8029 0008', // ICE-CONTROLLED (comprehension-optional)
  '932ff9b1 51263b36', // tie breaker
  '0006 0009', // USERNAME, 9 bytes
  '6576746a 3a683676 59202020', // "evtj:h6vY" and 3 bytes of padding
  '0008 0014', // MESSAGE-INTEGRITY, 20 bytes
  '9aeaa70c bfd8cb56 781ef2b5 b2d3f249 c1b571a2', // HMAC-SHA1
  '8028 0004', // FINGERPRINT
  'e57a3bcf', // CRC-32 xor 0x5354554e
]);

// RFC 5769 2.2: sample IPv4 response (mapped 192.0.2.1:32853).
const SAMPLE_RESPONSE_V4 = hex([
  '0101 003c', // Binding success response, length 60
  '2112a442', // magic cookie
  'b7e7a701 bc34d686 fa87dfae', // transaction id
  '8022 000b', // SOFTWARE, 11 bytes
  '74657374 20766563 746f7220', // "test vector" and one byte of padding
  '0020 0008', // XOR-MAPPED-ADDRESS, 8 bytes
  '0001 a147', // family IPv4, port 32853 xor 0x2112
  'e112a643', // 192.0.2.1 xor 0x2112a442
  '0008 0014', // MESSAGE-INTEGRITY
  '2b91f599 fd9e90c3 8c7489f9 2af9ba53 f06be7d7', // HMAC-SHA1
  '8028 0004', // FINGERPRINT
  'c07d4c96', // CRC-32 xor 0x5354554e
]);

// RFC 5769 2.3: sample IPv6 response (mapped [2001:db8:1234:5678:11:2233:4455:6677]:32853).
const SAMPLE_RESPONSE_V6 = hex([
  '0101 0048', // Binding success response, length 72
  '2112a442', // magic cookie
  'b7e7a701 bc34d686 fa87dfae', // transaction id
  '8022 000b', // SOFTWARE, 11 bytes
  '74657374 20766563 746f7220', // "test vector" and one byte of padding
  '0020 0014', // XOR-MAPPED-ADDRESS, 20 bytes
  '0002 a147', // family IPv6, port 32853 xor 0x2112
  '0113a9fa a5d3f179 bc25f4b5 bed2b9d9', // address xor (cookie | transaction id)
  '0008 0014', // MESSAGE-INTEGRITY
  'a382954e 4be67bf1 1784c97c 8292c275 bfe3ed41', // HMAC-SHA1
  '8028 0004', // FINGERPRINT
  'c8fb0b4c', // CRC-32 xor 0x5354554e
]);

// A minimal Binding request as meshtun's client sends it: header and FINGERPRINT.
const MESHTUN_REQUEST = hex([
  '0001 0008', // Binding request, length 8
  '2112a442', // magic cookie
  'b7e7a701 bc34d686 fa87dfae', // transaction id
  '8028 0004', // FINGERPRINT
  '00000000', // filled in below
]);
MESHTUN_REQUEST.writeUInt32BE(stunFingerprint(MESHTUN_REQUEST, 0, 20), 24);

const v6 = (text: string) => {
  const b = Buffer.alloc(16);
  assert.ok(parseIpv6Address(text, b, 0));
  return b;
};

test('stun: crc32 matches zlib and the check value', () => {
  assert.equal(crc32(Buffer.from('123456789'), 0, 9), 0xcbf43926);
  for (const v of [SAMPLE_REQUEST, SAMPLE_RESPONSE_V4, SAMPLE_RESPONSE_V6]) assert.equal(crc32(v, 0, v.length), zlibCrc32(v));
});

test('stun: message type interleaves method and class', () => {
  assert.equal(stunMessageType(StunMethod.Binding, StunClass.Request), 0x0001);
  assert.equal(stunMessageType(StunMethod.Binding, StunClass.Indication), 0x0011);
  assert.equal(stunMessageType(StunMethod.Binding, StunClass.Success), 0x0101);
  assert.equal(stunMessageType(StunMethod.Binding, StunClass.Error), 0x0111);
  assert.equal(stunMessageType(0x003, StunClass.Request), 0x0003); // TURN Allocate
  for (let m = 0; m < 0x1000; m += 37) {
    for (const c of [0, 1, 2, 3] as const) {
      const t = stunMessageType(m, c);
      assert.equal(t & 0xc000, 0);
      assert.equal(stunMethodOf(t), m);
      assert.equal(stunClassOf(t), c);
    }
  }
});

test('stun: deconstruct the RFC 5769 sample request', () => {
  const m = new StunMessage().reset(SAMPLE_REQUEST, 0, SAMPLE_REQUEST.length);
  assert.equal(m.check(), Status.Ok);
  assert.equal(m.messageClass, StunClass.Request);
  assert.equal(m.method, StunMethod.Binding);
  assert.equal(m.length, 0x58);
  assert.ok(m.transactionIdEquals(TRANSACTION_ID));
  const r = new StunRepr();
  assert.equal(parseStun(SAMPLE_REQUEST, 0, SAMPLE_REQUEST.length, r), Status.Ok);
  assert.equal(r.messageClass, StunClass.Request);
  assert.deepEqual(r.transactionId, TRANSACTION_ID);
  assert.equal(stunText(SAMPLE_REQUEST, r.softwareOffset, r.softwareLength), 'STUN test client');
  assert.equal(r.fingerprint, true, 'FINGERPRINT present and verified');
  assert.equal(r.hasIntegrity, true);
  assert.equal(r.mapped.family, 0);
  // PRIORITY is comprehension-required and unknown to a plain STUN codec; USERNAME is known.
  assert.equal(r.unrecognizedCount, 1);
  assert.equal(r.unrecognized[0], 0x0024);
  // The fingerprint function gives the vector's value.
  assert.equal(stunFingerprint(SAMPLE_REQUEST, 0, SAMPLE_REQUEST.length - 8), 0xe57a3bcf);
});

test('stun: deconstruct the RFC 5769 IPv4 and IPv6 responses', () => {
  const r = new StunRepr();
  assert.equal(parseStun(SAMPLE_RESPONSE_V4, 0, SAMPLE_RESPONSE_V4.length, r), Status.Ok);
  assert.equal(r.messageClass, StunClass.Success);
  assert.equal(r.method, StunMethod.Binding);
  assert.equal(r.mapped.family, 4);
  assert.equal(formatIpv4Address(r.mapped.ipv4), '192.0.2.1');
  assert.equal(r.mapped.port, 32853);
  assert.equal(r.mappedPlain, false);
  assert.equal(r.fingerprint, true);
  assert.equal(stunText(SAMPLE_RESPONSE_V4, r.softwareOffset, r.softwareLength), 'test vector');
  assert.equal(stunFingerprint(SAMPLE_RESPONSE_V4, 0, SAMPLE_RESPONSE_V4.length - 8), 0xc07d4c96);

  assert.equal(parseStun(SAMPLE_RESPONSE_V6, 0, SAMPLE_RESPONSE_V6.length, r), Status.Ok);
  assert.equal(r.mapped.family, 6);
  assert.equal(formatIpv6Address(r.mapped.ipv6), '2001:db8:1234:5678:11:2233:4455:6677');
  assert.equal(r.mapped.port, 32853);
  assert.equal(r.fingerprint, true);
  assert.equal(r.unrecognizedCount, 0);
  assert.equal(stunFingerprint(SAMPLE_RESPONSE_V6, 0, SAMPLE_RESPONSE_V6.length - 8), 0xc8fb0b4c);
});

test('stun: construct XOR-MAPPED-ADDRESS exactly as the vectors have it', () => {
  const r = new StunRepr();
  r.messageClass = StunClass.Success;
  TRANSACTION_ID.copy(r.transactionId);
  r.mapped.setIpv4(parseIpv4Address('192.0.2.1')!, 32853);
  const out = Buffer.alloc(stunLength(r));
  assert.equal(emitStun(r, out, 0), 32);
  assert.deepEqual(out.subarray(0, 20), hex(['0101 000c 2112a442', 'b7e7a701 bc34d686 fa87dfae']));
  assert.deepEqual(out.subarray(20), SAMPLE_RESPONSE_V4.subarray(36, 48));

  r.mapped.setIpv6(v6('2001:db8:1234:5678:11:2233:4455:6677'), 0, 32853);
  const out6 = Buffer.alloc(stunLength(r) + 3);
  assert.equal(emitStun(r, out6, 3), 44);
  assert.deepEqual(out6.subarray(3 + 20), SAMPLE_RESPONSE_V6.subarray(36, 60));
});

test('stun: construct a request with SOFTWARE and FINGERPRINT; zlib agrees on the CRC', () => {
  const r = new StunRepr();
  TRANSACTION_ID.copy(r.transactionId);
  r.software = Buffer.from('meshtun');
  r.fingerprint = true;
  const out = Buffer.alloc(stunLength(r));
  assert.equal(emitStun(r, out, 0), 20 + 12 + 8);
  assert.deepEqual(out, Buffer.concat([
    hex(['0001 0014 2112a442', 'b7e7a701 bc34d686 fa87dfae', '8022 0007', '6d657368 74756e00', '8028 0004']),
    (() => { const b = Buffer.alloc(4); b.writeUInt32BE((zlibCrc32(out.subarray(0, 32)) ^ 0x5354554e) >>> 0); return b; })(),
  ]));
  const back = new StunRepr();
  assert.equal(parseStun(out, 0, out.length, back), Status.Ok);
  assert.equal(back.fingerprint, true);
  assert.equal(stunText(out, back.softwareOffset, back.softwareLength), 'meshtun');
  assert.equal(parseStun(MESHTUN_REQUEST, 0, MESHTUN_REQUEST.length, back), Status.Ok);
  assert.equal(back.fingerprint, true);
  assert.equal(back.softwareLength, -1);
});

test('stun: error response with ERROR-CODE and UNKNOWN-ATTRIBUTES round-trips', () => {
  const r = new StunRepr();
  r.messageClass = StunClass.Error;
  TRANSACTION_ID.copy(r.transactionId);
  r.errorCode = StunErrorCode.UnknownAttribute;
  r.reason = Buffer.from('Unknown Attribute');
  r.unknownAttributes[0] = 0x0024;
  r.unknownAttributes[1] = 0x0025;
  r.unknownAttributeCount = 2;
  r.fingerprint = true;
  const out = Buffer.alloc(stunLength(r));
  emitStun(r, out, 0);
  assert.equal(out.readUInt16BE(0), 0x0111);
  // ERROR-CODE: class 4 in byte 2, number 20 in byte 3; 17-byte reason padded to 20.
  assert.deepEqual(out.subarray(20, 28), hex(['0009 0015', '0000 0414']));
  const back = new StunRepr();
  assert.equal(parseStun(out, 0, out.length, back), Status.Ok);
  assert.equal(back.messageClass, StunClass.Error);
  assert.equal(back.errorCode, 420);
  assert.equal(stunText(out, back.reasonOffset, back.reasonLength), 'Unknown Attribute');
  assert.equal(back.unknownAttributeCount, 2);
  assert.deepEqual([...back.unknownAttributes.subarray(0, 2)], [0x0024, 0x0025]);
});

test('stun: parse / emit round-trip of a success response, plain MAPPED-ADDRESS too', () => {
  const r = new StunRepr();
  r.messageClass = StunClass.Success;
  TRANSACTION_ID.copy(r.transactionId);
  r.mapped.setIpv6(v6('fd00::1:2'), 0, 51820);
  r.fingerprint = true;
  const back = new StunRepr();
  for (const plain of [false, true]) {
    r.mappedPlain = plain;
    const out = Buffer.alloc(stunLength(r));
    emitStun(r, out, 0);
    assert.equal(out.readUInt16BE(20), plain ? StunAttr.MappedAddress : StunAttr.XorMappedAddress);
    assert.equal(parseStun(out, 0, out.length, back), Status.Ok);
    assert.ok(back.mapped.equals(r.mapped));
    assert.equal(back.mappedPlain, plain);
  }
});

// A response without FINGERPRINT, with MAPPED-ADDRESS and two XOR-MAPPED-ADDRESS attributes.
const MIXED_RESPONSE = hex([
  '0101 0024 2112a442', 'b7e7a701 bc34d686 fa87dfae',
  '0001 0008 0001 0050 0a000001', // MAPPED-ADDRESS 10.0.0.1:80
  '0020 0008 0001 a147 e112a643', // XOR-MAPPED-ADDRESS 192.0.2.1:32853
  '0020 0008 0001 a148 e112a644', // a second one: ignored
]);

test('stun: XOR-MAPPED-ADDRESS wins over MAPPED-ADDRESS; the first of a repeated one counts', () => {
  const msg = MIXED_RESPONSE;
  const r = new StunRepr();
  assert.equal(parseStun(msg, 0, msg.length, r), Status.Ok);
  assert.equal(formatIpv4Address(r.mapped.ipv4), '192.0.2.1');
  assert.equal(r.mapped.port, 32853);
  assert.equal(r.mappedPlain, false);
});

test('stun: attributes after MESSAGE-INTEGRITY are ignored; unknown optional ones skipped', () => {
  const msg = hex([
    '0101 002c 2112a442', 'b7e7a701 bc34d686 fa87dfae',
    '8099 0001 ff000000', // unknown, comprehension-optional: skipped
    '0008 0014 00000000 00000000 00000000 00000000 00000000', // MESSAGE-INTEGRITY (not checked)
    '0020 0008 0001 a147 e112a643', // after MESSAGE-INTEGRITY: ignored
  ]);
  const r = new StunRepr();
  assert.equal(parseStun(msg, 0, msg.length, r), Status.Ok);
  assert.equal(r.hasIntegrity, true);
  assert.equal(r.mapped.family, 0);
  assert.equal(r.unrecognizedCount, 0);
});

test('stun: many unknown comprehension-required attributes are counted, the first kept', () => {
  const parts = ['0001 0000 2112a442', 'b7e7a701 bc34d686 fa87dfae'];
  for (let i = 0; i < STUN_MAX_UNKNOWN + 3; i++) parts.push(`7f${(i + 0x10).toString(16)} 0000`);
  const msg = hex(parts);
  msg.writeUInt16BE(msg.length - 20, 2);
  const r = new StunRepr();
  assert.equal(parseStun(msg, 0, msg.length, r), Status.Ok);
  assert.equal(r.unrecognizedCount, STUN_MAX_UNKNOWN + 3);
  assert.equal(r.unrecognized[0], 0x7f10);
  assert.equal(r.unrecognized[STUN_MAX_UNKNOWN - 1], 0x7f10 + STUN_MAX_UNKNOWN - 1);
});

test('stun: truncated, malformed, unsupported and bad fingerprint', () => {
  const r = new StunRepr();
  const v = SAMPLE_RESPONSE_V4;
  assert.equal(parseStun(v, 0, 19, r), Status.Truncated);
  assert.equal(parseStun(v, 0, v.length - 4, r), Status.Truncated, 'shorter than the length field');
  assert.equal(parseStun(v, 4, v.length, r), Status.Truncated, 'range beyond the buffer');
  assert.equal(parseStun(Buffer.concat([v, Buffer.alloc(4)]), 0, v.length + 4, r), Status.Malformed, 'bytes after the message');
  const edit = (fn: (b: Buffer) => void) => { const b = Buffer.from(v); fn(b); return parseStun(b, 0, b.length, r); };
  assert.equal(edit((b) => { b[0] |= 0x80; }), Status.Malformed, 'top bits set');
  assert.equal(edit((b) => { b.writeUInt32BE(0x2112a443, 4); }), Status.Unsupported, 'no magic cookie (RFC 3489)');
  assert.equal(edit((b) => { b.writeUInt16BE(0x3d, 2); }), Status.Malformed, 'length not a multiple of 4');
  assert.equal(edit((b) => { b[v.length - 1] ^= 1; }), Status.Checksum, 'fingerprint');
  assert.equal(edit((b) => { b[44] ^= 1; }), Status.Checksum, 'a flipped bit in the address');
  assert.equal(edit((b) => { b.writeUInt16BE(0x0400, 22); }), Status.Truncated, 'attribute longer than the message');
  assert.equal(edit((b) => { b[41] = 3; }), Status.Malformed, 'address family 3');
  assert.equal(edit((b) => { b.writeUInt16BE(0x0004, 38); }), Status.Malformed, 'address of 4 bytes');
  // FINGERPRINT that is not last.
  const notLast = hex(['0101 0014 2112a442', 'b7e7a701 bc34d686 fa87dfae', '8028 0004 00000000', '0020 0008 0001 a147 e112a643']);
  assert.equal(parseStun(notLast, 0, notLast.length, r), Status.Malformed);
  // A header-only attribute cut short.
  const cut = hex(['0101 0004 2112a442', 'b7e7a701 bc34d686 fa87dfae', '0020 0008']);
  assert.equal(parseStun(cut, 0, cut.length, r), Status.Truncated);
  // ERROR-CODE with a class outside 3-6 or a number above 99.
  const err = (cls: number, num: number) => hex(['0111 0008 2112a442', 'b7e7a701 bc34d686 fa87dfae', `0009 0004 0000 ${cls.toString(16).padStart(2, '0')}${num.toString(16).padStart(2, '0')}`]);
  assert.equal(parseStun(err(4, 20), 0, 28, r), Status.Ok);
  assert.equal(r.errorCode, 420);
  assert.equal(parseStun(err(2, 0), 0, 28, r), Status.Malformed);
  assert.equal(parseStun(err(4, 100), 0, 28, r), Status.Malformed);
  // The header alone is a valid, empty message.
  assert.equal(parseStun(SAMPLE_REQUEST, 0, STUN_HEADER_LEN, r), Status.Truncated, 'length field says 88');
  const empty = hex(['0001 0000 2112a442', 'b7e7a701 bc34d686 fa87dfae']);
  assert.equal(parseStun(empty, 0, 20, r), Status.Ok);
});

test('stun: fuzz never throws, hangs or reads past len', () => {
  const r = new StunRepr();
  const seeds = [SAMPLE_REQUEST, SAMPLE_RESPONSE_V4, SAMPLE_RESPONSE_V6, MESHTUN_REQUEST, MIXED_RESPONSE];
  const n = fuzzParser(seeds, (b, o, l) => {
    const st = parseStun(b, o, l, r);
    if (st !== Status.Ok) return st;
    const m = r.mapped;
    return `${r.messageClass}:${r.method}:${r.transactionId.toString('hex')}:${m.family}:${m.port}:${m.ipv4}:${m.ipv6.toString('hex')}:${r.errorCode}:` +
      `${r.reasonLength}:${r.softwareLength}:${r.softwareLength < 0 ? 0 : r.softwareOffset - o}:${r.unrecognizedCount}:${r.unknownAttributeCount}:${r.hasIntegrity}:${r.fingerprint}`;
  });
  assert.ok(n > 0);
});
