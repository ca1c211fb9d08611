// Capsule Protocol codec: RFC 9000 A.1 varint vectors, DATAGRAM capsules built by hand, the
// streaming reader fed in every possible split, unknown types skipped, the size limit, fuzz.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Status } from '../wire/index.js';
import { Prng, fuzzIterations, fuzzParser } from '../wire/fuzz-harness.js';
import {
  CapsuleReader, DatagramCapsuleRepr, MAX_CAPSULE_PAYLOAD, datagramCapsuleHeaderSize, encodeDatagramCapsules, parseDatagramCapsule,
  readVarint, readVarintBigInt, varintLength, varintSize, writeVarint, writeDatagramCapsuleHeader,
} from './capsule.js';

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');

test('capsule: RFC 9000 A.1 varint examples decode', () => {
  const cases: [string, bigint][] = [
    ['c2197c5eff14e88c', 151288809941952652n], // 8 bytes (prefix 11)
    ['9d7f3e7d', 494878333n], // 4 bytes (prefix 10)
    ['7bbd', 15293n], // 2 bytes (prefix 01)
    ['25', 37n], // 1 byte (prefix 00)
    ['4025', 37n], // the same value in 2 bytes: not the shortest, still valid
  ];
  for (const [h, v] of cases) {
    const b = hex(h);
    assert.equal(varintLength(b[0]!), b.length, h);
    assert.equal(readVarintBigInt(b, 0, b.length), v, h);
    assert.equal(readVarint(b, 0, b.length), Number(v), h);
    assert.equal(readVarint(b, 0, b.length - 1), -1, `${h} cut short`);
    assert.equal(readVarintBigInt(b, 0, b.length - 1), null, `${h} cut short`);
  }
  assert.equal(readVarint(hex('7bbd'), 0, 0), -1, 'nothing to read');
  // Inside a larger buffer, at an offset.
  assert.equal(readVarint(hex('ff ff 9d7f3e7d ff'), 2, 6), 494878333);
});

test('capsule: varints are written in their shortest form', () => {
  const cases: [number, string][] = [
    [37, '25'], [15293, '7bbd'], [494878333, '9d7f3e7d'],
    [0, '00'], [63, '3f'], [64, '4040'], [16383, '7fff'], [16384, '80004000'], [2 ** 30 - 1, 'bfffffff'],
    [2 ** 30, 'c000000040000000'], [2 ** 32, 'c000000100000000'], [Number.MAX_SAFE_INTEGER, 'c01fffffffffffff'],
  ];
  for (const [v, h] of cases) {
    const b = Buffer.alloc(8);
    const n = writeVarint(b, 0, v);
    assert.equal(b.subarray(0, n).toString('hex'), h, String(v));
    assert.equal(varintSize(v), n);
    assert.equal(readVarint(b, 0, n), v);
  }
  for (const bad of [-1, 1.5, 2 ** 53, NaN]) assert.throws(() => varintSize(bad), RangeError, String(bad));
});

test('capsule: DATAGRAM capsules with context ID 0, several in one Buffer', () => {
  const a = Buffer.from('hello');
  const b = Buffer.alloc(100, 0xab);
  const out = encodeDatagramCapsules([Buffer.concat([Buffer.from('xx'), a]), b], [2, 0], [5, 100], 2);
  assert.equal(out.toString('hex'),
    '00' + // Capsule Type: DATAGRAM
    '06' + // Capsule Length: 6 (context ID + 5 bytes)
    '00' + // Context ID 0: a UDP payload
    '68656c6c6f' + // "hello"
    '00' + // DATAGRAM
    '4065' + // Length 101 in two bytes
    '00' + // Context ID 0
    'ab'.repeat(100));
  assert.equal(datagramCapsuleHeaderSize(5), 3);
  assert.equal(datagramCapsuleHeaderSize(62), 3);
  assert.equal(datagramCapsuleHeaderSize(63), 4, 'length 64 needs two bytes');
  assert.equal(datagramCapsuleHeaderSize(65535), 6, 'length 65536 needs four');
  const h = Buffer.alloc(8);
  assert.equal(writeDatagramCapsuleHeader(h, 1, 65535), 6);
  assert.equal(h.subarray(1, 7).toString('hex'), '00' + '80010000' + '00');
  assert.throws(() => encodeDatagramCapsules([Buffer.alloc(65536)], [0], [65536], 1), RangeError);
});

test('capsule: a DATAGRAM capsule value parses into context ID and payload', () => {
  const r = new DatagramCapsuleRepr();
  assert.equal(parseDatagramCapsule(hex('00 6869'), 0, 3, r), Status.Ok);
  assert.deepEqual([r.contextId, r.payloadOffset, r.payloadLength], [0, 1, 2]);
  assert.equal(parseDatagramCapsule(hex('ff 4100 78'), 1, 3, r), Status.Ok, 'context 256, at an offset');
  assert.deepEqual([r.contextId, r.payloadOffset, r.payloadLength], [256, 3, 1]);
  assert.equal(parseDatagramCapsule(hex('00'), 0, 1, r), Status.Ok, 'an empty UDP payload');
  assert.equal(r.payloadLength, 0);
  assert.equal(parseDatagramCapsule(hex(''), 0, 0, r), Status.Truncated, 'no context ID');
  assert.equal(parseDatagramCapsule(hex('4000'), 0, 1, r), Status.Truncated, 'context ID cut off');
});

interface Got { type: number; value: string }

/** Runs a reader over `chunks`; returns what it yields and its state. The views of a chunk are
 * read only after its last next(), as the stream does (they must stay valid until the next push). */
function readAll(chunks: Buffer[], reader = new CapsuleReader()): { got: Got[]; broken: boolean; unknown: number; incomplete: boolean } {
  const got: Got[] = [];
  for (const c of chunks) {
    reader.push(c);
    const views: { type: number; view: Buffer }[] = [];
    while (reader.next()) views.push({ type: reader.type, view: reader.buf.subarray(reader.offset, reader.offset + reader.length) });
    for (const v of views) got.push({ type: v.type, value: v.view.toString('hex') });
  }
  return { got, broken: reader.broken, unknown: reader.unknownCapsules, incomplete: reader.incomplete };
}

// A stream with every case in it.
const big = Buffer.alloc(3000);
for (let i = 0; i < big.length; i++) big[i] = i * 7;
const STREAM = Buffer.concat([
  hex('00 03 00 6869'), // DATAGRAM, length 3, context 0, "hi"
  hex('2a 03 010203'), // unknown type 0x2a with 3 bytes: skipped
  hex('5f17 00'), // unknown type 0x1f17 (2-byte type), empty: skipped
  hex('00 02 02 ff'), // DATAGRAM with context ID 2 (the reader yields it; the stream drops it)
  hex('00 00'), // DATAGRAM with an empty value (no context ID: malformed for the stream)
  hex('00 4bb9 00'), big, // DATAGRAM, length 3001 (2-byte varint), context 0, 3000 bytes
  hex('80000000 c000000000000001 00'), // type 0 in 4 bytes, length 1 in 8 bytes, context 0 only
]);
const EXPECTED: Got[] = [
  { type: 0, value: '006869' },
  { type: 0, value: '02ff' },
  { type: 0, value: '' },
  { type: 0, value: '00' + big.toString('hex') },
  { type: 0, value: '00' },
];

test('capsule: the reader yields known capsules and skips unknown ones, whatever the chunking', () => {
  const whole = readAll([STREAM]);
  assert.deepEqual(whole.got, EXPECTED);
  assert.equal(whole.unknown, 2);
  assert.equal(whole.broken, false);
  assert.equal(whole.incomplete, false);
  // Every split into two chunks, and every byte alone.
  for (let i = 0; i <= STREAM.length; i++) {
    assert.deepEqual(readAll([STREAM.subarray(0, i), STREAM.subarray(i)]).got, EXPECTED, `split at ${i}`);
  }
  const bytes = [];
  for (let i = 0; i < STREAM.length; i++) bytes.push(STREAM.subarray(i, i + 1));
  const oneByOne = readAll(bytes);
  assert.deepEqual(oneByOne.got, EXPECTED);
  assert.equal(oneByOne.unknown, 2);
  // Every split into three chunks over the first 40 bytes (the headers and the skips).
  for (let i = 0; i < 40; i++) {
    for (let j = i; j < 40; j++) {
      assert.deepEqual(readAll([STREAM.subarray(0, i), STREAM.subarray(i, j), STREAM.subarray(j)]).got, EXPECTED, `split at ${i}, ${j}`);
    }
  }
  // Random chunkings.
  const rng = new Prng(11);
  for (let round = 0; round < 300; round++) {
    const chunks: Buffer[] = [];
    for (let at = 0; at < STREAM.length;) {
      const n = 1 + rng.int(rng.int(2) ? 8 : 2000);
      chunks.push(STREAM.subarray(at, at + n));
      at += n;
    }
    assert.deepEqual(readAll(chunks).got, EXPECTED, `round ${round}`);
  }
});

test('capsule: a stream cut inside a capsule is incomplete', () => {
  for (let i = 1; i < STREAM.length; i++) {
    const r = readAll([STREAM.subarray(0, i)]);
    const atBoundary = [0, 5, 10, 13, 17, 19, 3023, STREAM.length].includes(i);
    assert.equal(r.incomplete, !atBoundary, `cut at ${i}`);
  }
});

test('capsule: a capsule over the limit breaks the stream; an unknown one of any size is skipped', () => {
  const over = readAll([hex('00 80010008'), Buffer.alloc(100), hex('00 01 00')]);
  assert.equal(MAX_CAPSULE_PAYLOAD, 65543);
  assert.equal(over.broken, true, '65544 > 65535 + 8');
  assert.deepEqual(over.got, [], 'nothing after it is read');
  const atLimit = readAll([hex('00 80010007 00'), Buffer.alloc(65542), hex('00 02 00 41')]);
  assert.equal(atLimit.broken, false);
  assert.deepEqual(atLimit.got.map((g) => g.value.length / 2), [65543, 2]);
  const small = readAll([hex('00 05 00 01020304 00 03 00 0102')], new CapsuleReader({ maxPayload: 4 }));
  assert.equal(small.broken, true);
  // An unknown capsule of 2^40 bytes: skipped as it comes, never buffered.
  const huge = new CapsuleReader();
  const first = readAll([hex('2a c000010000000000'), Buffer.alloc(1 << 20)], huge);
  assert.equal(first.broken, false);
  assert.equal(first.unknown, 1);
  assert.equal(first.incomplete, true);
  // Other known types when asked for.
  const custom = readAll([hex('01 01 07 00 02 00 41')], new CapsuleReader({ knownTypes: [1] }));
  assert.deepEqual(custom.got, [{ type: 1, value: '07' }]);
  assert.equal(custom.unknown, 1);
});

test('capsule: push before the previous chunk is used up is a caller bug', () => {
  const r = new CapsuleReader();
  r.push(hex('00 01 00 00 01 00'));
  assert.equal(r.next(), true);
  assert.throws(() => r.push(hex('00')), /call next\(\) until it returns false/);
});

test('capsule: fuzzed streams never throw, hang or read past their end', () => {
  const seeds = [STREAM.subarray(0, 40), encodeDatagramCapsules([Buffer.alloc(1400, 1), Buffer.alloc(60, 2)], [0, 0], [1400, 60], 2), hex('2a c000010000000000 00 01 00')];
  const tried = fuzzParser(seeds, (buf, off, len) => {
    // A fresh reader state per input, chunked by a PRNG seeded with the length (the same both
    // times the harness calls us).
    const r = new CapsuleReader({ maxPayload: 1500 });
    const rng = new Prng(len);
    let digest = 0;
    let count = 0;
    for (let at = 0; at < len;) {
      const n = Math.min(len - at, 1 + rng.int(64));
      r.push(buf.subarray(off + at, off + at + n));
      at += n;
      while (r.next()) {
        count++;
        digest = (Math.imul(digest, 31) + r.type * 7 + r.length) | 0;
        for (let i = 0; i < r.length; i++) digest = (Math.imul(digest, 31) + r.buf[r.offset + i]!) | 0;
      }
    }
    return `${count}:${digest}:${r.broken}:${r.unknownCapsules}:${r.incomplete}`;
  }, { iterations: fuzzIterations(40_000), maxLen: 2048 });
  assert.ok(tried > 0);
});
