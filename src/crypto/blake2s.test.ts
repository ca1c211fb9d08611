import { test } from 'node:test';
import assert from 'node:assert/strict';
import { blake2s } from '@noble/hashes/blake2.js';
import { hash, hmac, mac16 } from './blake2s.js';

const BLOCK = 64;

test('blake2s: RFC 7693 appendix B, BLAKE2s-256("abc"), also split across parts', () => {
  const want = '508c5e8c327c14e2e1a72ba34eeb452f37458b209ed63a294d999b4c86675982';
  assert.equal(hash(Buffer.from('abc')).toString('hex'), want);
  assert.equal(hash(Buffer.from('a'), Buffer.from(''), Buffer.from('bc')).toString('hex'), want);
  assert.equal(hash().toString('hex'), '69217a3079908094e11121d042354a7c1f55b6482ca1a51e1b250dfd1ed0eef9');
});

/** RFC 7693 appendix E's deterministic input generator (a Fibonacci sequence over uint32). */
function selftestSeq(len: number, seed: number): Uint8Array {
  const out = new Uint8Array(len);
  let a = Math.imul(0xdead4bad, seed) >>> 0;
  let b = 1;
  for (let i = 0; i < len; i++) {
    const t = (a + b) >>> 0;
    a = b;
    b = t;
    out[i] = t >>> 24;
  }
  return out;
}

test('blake2s: RFC 7693 appendix E self-test grand hash (keyed 16-byte outputs through mac16)', () => {
  const parts: Uint8Array[] = [];
  for (const outlen of [16, 20, 28, 32]) {
    for (const inlen of [0, 3, 64, 65, 255, 1024]) {
      const input = selftestSeq(inlen, inlen);
      parts.push(outlen === 32 ? hash(input) : blake2s(input, { dkLen: outlen }));
      const key = selftestSeq(outlen, outlen);
      parts.push(outlen === 16 ? mac16(key, input) : blake2s(input, { key, dkLen: outlen }));
    }
  }
  assert.equal(hash(...parts).toString('hex'), '6a411f08ce25adcdfb02aba641451cec53c598b24f4fc787fbdc88797f4c1dfe');
});

test('blake2s: keyed KAT (blake2s-kat, key 00..1f, empty input) and mac16 into a buffer', () => {
  const key = Uint8Array.from({ length: 32 }, (_, i) => i);
  assert.equal(Buffer.from(blake2s(new Uint8Array(0), { key })).toString('hex'),
    '48a8997da407876b3d79c0d92325ad3b89cbb754d86ab71aee047ad345fd2c49');
  const out = Buffer.alloc(20, 0xee);
  const m = mac16(key, Buffer.from('abc'), out, 2);
  assert.deepEqual(m, mac16(key, Buffer.from('abc')));
  assert.equal(out[0], 0xee);
  assert.equal(out[18], 0xee);
  assert.deepEqual(out.subarray(2, 18), m);
});

test('blake2s: hmac is RFC 2104 over BLAKE2s-256 with 64-byte blocks (as the whitepaper defines it)', () => {
  const manual = (key: Buffer, msg: Buffer): Buffer => {
    const k = Buffer.alloc(BLOCK);
    (key.length > BLOCK ? hash(key) : key).copy(k);
    const ipad = Buffer.from(k.map((x) => x ^ 0x36));
    const opad = Buffer.from(k.map((x) => x ^ 0x5c));
    return hash(opad, hash(ipad, msg));
  };
  for (const keyLen of [0, 1, 32, 64, 65, 100]) {
    const key = Buffer.from(selftestSeq(keyLen, keyLen + 7));
    const msg = Buffer.from(selftestSeq(77, keyLen));
    assert.deepEqual(hmac(key, msg.subarray(0, 10), msg.subarray(10)), manual(key, msg), `key length ${keyLen}`);
  }
});
