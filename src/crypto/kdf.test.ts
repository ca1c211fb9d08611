import { test } from 'node:test';
import assert from 'node:assert/strict';
import { hkdfSync } from 'node:crypto';
import { kdf1, kdf2, kdf3 } from './kdf.js';
import { hmac } from './blake2s.js';

test('kdf: KDF1..3 are HKDF-BLAKE2s with the chaining key as salt and empty info', () => {
  const ck = Buffer.from('000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f', 'hex');
  for (const input of [Buffer.alloc(0), Buffer.from('input key material'), Buffer.alloc(32, 7)]) {
    const okm = Buffer.from(hkdfSync('blake2s256', input, ck, Buffer.alloc(0), 96));
    assert.deepEqual(kdf1(ck, input), okm.subarray(0, 32));
    assert.deepEqual(Buffer.concat(kdf2(ck, input)), okm.subarray(0, 64));
    assert.deepEqual(Buffer.concat(kdf3(ck, input)), okm);
  }
});

test('kdf: matches the whitepaper definition step by step', () => {
  const ck = Buffer.alloc(32, 0xaa);
  const input = Buffer.from('x');
  const t0 = hmac(ck, input);
  const t1 = hmac(t0, Buffer.of(1));
  const t2 = hmac(t0, t1, Buffer.of(2));
  const t3 = hmac(t0, t2, Buffer.of(3));
  assert.deepEqual(kdf3(ck, input), [t1, t2, t3]);
});
