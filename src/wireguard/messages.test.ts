import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fuzzParser } from '../wire/fuzz-harness.js';
import {
  MessageType, messageType, INITIATION, RESPONSE, COOKIE_REPLY, TRANSPORT, KEEPALIVE_SIZE, InitiationView,
  ResponseView, CookieReplyView, TransportView, writeTransportHeader, paddedLength, MAC1_FROM_END, MAC2_FROM_END,
} from './messages.js';

test('messages: sizes and offsets of the whitepaper', () => {
  assert.equal(INITIATION.SIZE, 4 + 4 + 32 + (32 + 16) + (12 + 16) + 16 + 16);
  assert.equal(RESPONSE.SIZE, 4 + 4 + 4 + 32 + 16 + 16 + 16);
  assert.equal(COOKIE_REPLY.SIZE, 4 + 4 + 24 + 32);
  assert.equal(TRANSPORT.CONTENT, 16);
  assert.equal(KEEPALIVE_SIZE, 32);
  assert.equal(INITIATION.MAC1, INITIATION.SIZE - MAC1_FROM_END);
  assert.equal(RESPONSE.MAC2, RESPONSE.SIZE - MAC2_FROM_END);
});

test('messages: messageType needs [type,0,0,0] and the exact size', () => {
  const m = (t: number, len: number, reserved = 0) => {
    const b = Buffer.alloc(len);
    if (len > 0) b[0] = t;
    if (len > 1) b[1] = reserved;
    return messageType(b, 0, len);
  };
  assert.equal(m(1, 148), MessageType.Initiation);
  assert.equal(m(1, 149), MessageType.Invalid);
  assert.equal(m(2, 92), MessageType.Response);
  assert.equal(m(2, 148), MessageType.Invalid);
  assert.equal(m(3, 64), MessageType.CookieReply);
  assert.equal(m(4, 32), MessageType.Transport);
  assert.equal(m(4, 1500), MessageType.Transport);
  assert.equal(m(4, 31), MessageType.Invalid);
  assert.equal(m(5, 148), MessageType.Invalid);
  assert.equal(m(1, 148, 1), MessageType.Invalid);
  assert.equal(m(1, 3), MessageType.Invalid);
  assert.equal(messageType(Buffer.alloc(10), 8, 4), MessageType.Invalid, 'range past the end');
});

test('messages: views read and write fields in place', () => {
  const b = Buffer.alloc(200);
  writeTransportHeader(b, 10, 0xdeadbeef, 2 ** 40 + 7);
  const t = new TransportView().reset(b, 10);
  assert.equal(messageType(b, 10, 48), MessageType.Transport);
  assert.equal(t.receiverIndex, 0xdeadbeef);
  assert.equal(t.counterLo, 7);
  assert.equal(t.counterHi, 256);
  assert.equal(t.counter, 2 ** 40 + 7);
  assert.equal(b.readBigUInt64LE(18), 2n ** 40n + 7n);
  t.counter = 5;
  assert.equal(t.counterHi, 0);
  assert.equal(t.contentOffset, 26);

  const i = new InitiationView().reset(b);
  i.senderIndex = 0x01020304;
  assert.deepEqual([...b.subarray(4, 8)], [4, 3, 2, 1]);
  assert.equal(i.ephemeral.length, 32);
  assert.equal(i.sealedStatic.byteOffset - b.byteOffset, 40);
  assert.equal(i.mac2.byteOffset - b.byteOffset, 132);
  const r = new ResponseView().reset(b);
  r.receiverIndex = 9;
  assert.equal(b.readUInt32LE(8), 9);
  assert.equal(r.sealedEmpty.length, 16);
  const c = new CookieReplyView().reset(b);
  assert.equal(c.nonce.length, 24);
  assert.equal(c.sealedCookie.length, 32);
});

test('messages: padding to 16 bytes, capped at the MTU', () => {
  assert.equal(paddedLength(0, 1420), 0);
  assert.equal(paddedLength(1, 1420), 16);
  assert.equal(paddedLength(84, 1420), 96);
  assert.equal(paddedLength(1419, 1420), 1420);
  assert.equal(paddedLength(1420, 1420), 1420);
  assert.equal(paddedLength(17, 0), 32);
});

test('messages: messageType never throws or reads past its range', () => {
  const seeds = [Buffer.alloc(148), Buffer.alloc(92), Buffer.alloc(64), Buffer.alloc(32)];
  seeds[0]![0] = 1; seeds[1]![0] = 2; seeds[2]![0] = 3; seeds[3]![0] = 4;
  assert.ok(fuzzParser(seeds, (b, o, l) => messageType(b, o, l), { iterations: 20000, maxLen: 300 }) > 0);
});
