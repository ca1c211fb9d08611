import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  generatePrivateKey, publicKey, sharedSecret, privateKeyObject, publicKeyObject, generateEphemeral,
} from './x25519.js';

const h = (s: string): Buffer => Buffer.from(s, 'hex');

test('x25519: RFC 7748 section 5.2 scalar multiplication vectors', () => {
  // Vector 2's u-coordinate has its top bit set, which X25519 must ignore.
  const vectors = [
    ['a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4',
      'e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c',
      'c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552'],
    ['4b66e9d4d1b4673c5ad22691957d6af5c11b6421e0ea01d42ca4169e7918ba0d',
      'e5210f12786811d3f4b7959d0538ae2c31dbe7106fc03c3efc4cd549c715a493',
      '95cbde9476e8907d7aade45cb4b873f88b595a68799fa152e6f8f7647aac7957'],
  ] as const;
  for (const [k, u, out] of vectors) assert.equal(sharedSecret(h(k), h(u))!.toString('hex'), out);
});

test('x25519: RFC 7748 section 5.2 iterated vector (1 and 1000 iterations)', () => {
  let k: Buffer = Buffer.alloc(32);
  k[0] = 9;
  let u: Buffer = Buffer.from(k);
  for (let i = 1; i <= 1000; i++) {
    const r = sharedSecret(k, u)!;
    u = k;
    k = r;
    if (i === 1) assert.equal(k.toString('hex'), '422c8e7a6227d7bca1350b3e2bb7279f7897b87bb6854b783c60e80311ae3079');
  }
  assert.equal(k.toString('hex'), '684cf59ba83309552800ef566f2f4d3c1c3887c49360e3875f2eb94d99532c51');
});

test('x25519: RFC 7748 section 6.1 Diffie-Hellman, both directions, raw and KeyObject keys', () => {
  const alicePriv = h('77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a');
  const alicePub = '8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a';
  const bobPriv = h('5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb');
  const bobPub = 'de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f';
  const shared = '4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742';
  assert.equal(publicKey(alicePriv).toString('hex'), alicePub);
  assert.equal(publicKey(privateKeyObject(bobPriv)).toString('hex'), bobPub);
  assert.equal(sharedSecret(alicePriv, h(bobPub))!.toString('hex'), shared);
  const out = Buffer.alloc(32);
  assert.equal(sharedSecret(privateKeyObject(bobPriv), publicKeyObject(h(alicePub)), out), out);
  assert.equal(out.toString('hex'), shared);
});

test('x25519: a low-order public key gives null, not an exception', () => {
  const priv = generatePrivateKey();
  assert.equal(sharedSecret(priv, Buffer.alloc(32)), null);
  const one = Buffer.alloc(32);
  one[0] = 1;
  assert.equal(sharedSecret(priv, one), null);
});

test('x25519: generated keys are clamped and agree', () => {
  const a = generatePrivateKey();
  const b = generatePrivateKey();
  assert.equal(a.length, 32);
  assert.equal(a[0]! & 7, 0);
  assert.equal(a[31]! & 0x80, 0);
  assert.equal(a[31]! & 0x40, 0x40);
  assert.deepEqual(sharedSecret(a, publicKey(b)), sharedSecret(b, publicKey(a)));
  const e = generateEphemeral();
  assert.equal(e.publicKey.length, 32);
  assert.deepEqual(sharedSecret(e.privateKey, publicKey(a)), sharedSecret(a, e.publicKey));
});

test('x25519: an unclamped private key has the same public key as its clamped form', () => {
  const k = generatePrivateKey();
  const unclamped = Buffer.from(k);
  unclamped[0] = unclamped[0]! | 7;
  unclamped[31] = unclamped[31]! | 0x80;
  assert.deepEqual(publicKey(unclamped), publicKey(k));
});
