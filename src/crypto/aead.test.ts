import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  ChaChaPolyKey, aeadSeal, aeadOpen, hchacha20, xaeadSeal, xaeadOpen, AEAD_TAG_SIZE,
} from './aead.js';

const h = (s: string): Buffer => Buffer.from(s, 'hex');
const SUNSCREEN = Buffer.from("Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, sunscreen would be it.");
const KEY_80 = h('808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f');
const AAD = h('50515253c0c1c2c3c4c5c6c7');

// RFC 8439 section 2.8.2. Its nonce 07000000 40414243 44454647 is "constant || IV": WireGuard's
// form is 4 zero bytes || 64-bit LE counter, so this vector is reached through the raw cipher only.
const RFC8439_CT = h('d31a8d34648e60db7b86afbc53ef7ec2a4aded51296e08fea9e2b5a736ee62d63dbea45e8ca9671282fafb69'
  + 'da92728b1a71de0a9e060b2905d6a5b67ecd3b3692ddbd7f2d778b8c9803aee328091b58fab324e4fad675945585808b4831d7bc'
  + '3ff4def08e4b7a9de576d26586cec64b6116');
const RFC8439_TAG = h('1ae10b594f09e26a7e902ecbd0600691');

test('aead: RFC 8439 section 2.8.2 vector on the node:crypto cipher this module builds on', async () => {
  const { createCipheriv } = await import('node:crypto');
  const c = createCipheriv('chacha20-poly1305', KEY_80, h('070000004041424344454647'), { authTagLength: 16 });
  c.setAAD(AAD, { plaintextLength: SUNSCREEN.length });
  const ct = Buffer.concat([c.update(SUNSCREEN), c.final()]);
  assert.deepEqual(ct, RFC8439_CT);
  assert.deepEqual(c.getAuthTag(), RFC8439_TAG);
});

test('aead: WireGuard nonce layout: counter n is nonce 00000000 || LE64(n)', async () => {
  const { createCipheriv } = await import('node:crypto');
  const key = KEY_80;
  const k = new ChaChaPolyKey(key);
  for (const counter of [0, 1, 0x01020304, 2 ** 32 + 5, 2 ** 52 + 3]) {
    const nonce = Buffer.alloc(12);
    nonce.writeBigUInt64LE(BigInt(counter), 4);
    const c = createCipheriv('chacha20-poly1305', key, nonce, { authTagLength: 16 });
    const want = Buffer.concat([c.update(SUNSCREEN), c.final(), c.getAuthTag()]);
    const dst = Buffer.alloc(SUNSCREEN.length + AEAD_TAG_SIZE);
    assert.equal(k.seal(counter, SUNSCREEN, 0, SUNSCREEN.length, dst, 0), dst.length);
    assert.deepEqual(dst, want, `counter ${counter}`);
    const withAd = aeadSeal(key, counter, SUNSCREEN, AAD);
    assert.deepEqual(aeadOpen(key, counter, withAd, AAD), SUNSCREEN);
  }
});

test('aead: ChaChaPolyKey seals and opens ranges, in place, and rejects tampering without throwing', () => {
  const key = Buffer.alloc(32, 3);
  const k = new ChaChaPolyKey(key);
  const buf = Buffer.alloc(200, 0xcc);
  const payload = Buffer.from('an ICMP echo request, more or less');
  payload.copy(buf, 16);
  const n = k.seal(42, buf, 16, payload.length, buf, 16); // in place
  assert.equal(n, payload.length + AEAD_TAG_SIZE);
  assert.equal(buf[15], 0xcc);
  assert.equal(buf[16 + n], 0xcc);
  const sealed = Buffer.from(buf.subarray(16, 16 + n));

  const out = Buffer.alloc(100);
  assert.equal(k.open(42, buf, 16, n, out, 3), true);
  assert.deepEqual(out.subarray(3, 3 + payload.length), payload);
  assert.equal(k.open(43, buf, 16, n, out, 3), false, 'wrong counter');
  assert.equal(new ChaChaPolyKey(Buffer.alloc(32, 4)).open(42, buf, 16, n, out, 3), false, 'wrong key');
  for (const at of [0, 5, n - 1]) {
    const bad = Buffer.from(sealed);
    bad[at] = bad[at]! ^ 1;
    const dst = Buffer.alloc(64, 0x55);
    assert.equal(k.open(42, bad, 0, bad.length, dst, 0), false, `flipped byte ${at}`);
    assert.ok(dst.every((x) => x === 0x55), 'nothing written on failure');
  }
  assert.equal(k.open(42, sealed, 0, 15, out, 0), false, 'shorter than a tag');
  assert.equal(k.open(42, sealed, 10, sealed.length, out, 0), false, 'range past the end');
  // In-place open.
  assert.equal(k.open(42, buf, 16, n, buf, 16), true);
  assert.deepEqual(buf.subarray(16, 16 + payload.length), payload);
});

test('aead: empty plaintext (keepalive) is just a tag', () => {
  const k = new ChaChaPolyKey(Buffer.alloc(32, 9));
  const dst = Buffer.alloc(16);
  assert.equal(k.seal(7, Buffer.alloc(0), 0, 0, dst, 0), 16);
  assert.equal(k.open(7, dst, 0, 16, Buffer.alloc(0), 0), true);
  assert.equal(k.open(8, dst, 0, 16, Buffer.alloc(0), 0), false);
  assert.deepEqual(aeadOpen(Buffer.alloc(32, 9), 7, dst, Buffer.alloc(0)), Buffer.alloc(0));
});

test('aead: wipe makes the key unusable for opening old messages', () => {
  const k = new ChaChaPolyKey(Buffer.alloc(32, 1));
  const dst = Buffer.alloc(20);
  k.seal(0, Buffer.from('abcd'), 0, 4, dst, 0);
  k.wipe();
  assert.equal(k.open(0, dst, 0, 20, Buffer.alloc(4), 0), false);
});

test('aead: HChaCha20, draft-irtf-cfrg-xchacha section 2.2.1', () => {
  const key = Buffer.from(Array.from({ length: 32 }, (_, i) => i));
  assert.equal(hchacha20(key, h('000000090000004a0000000031415927')).toString('hex'),
    '82413b4227b27bfed30e42508a877d73a0f9e4d58a74a853c12ec41326d3ecdc');
});

test('aead: XChaCha20-Poly1305, draft-irtf-cfrg-xchacha appendix A.3.1', () => {
  const nonce = h('404142434445464748494a4b4c4d4e4f5051525354555657');
  const ct = h('bd6d179d3e83d43b9576579493c0e939572a1700252bfaccbed2902c21396cbb731c7f1b0b4aa6440bf3a82f4eda7e39'
    + 'ae64c6708c54c216cb96b72e1213b4522f8c9ba40db5d945b11b69b982c1bb9e3f3fac2bc369488f76b2383565d3fff921f9664c9763'
    + '7da9768812f615c68b13b52e');
  const tag = h('c0875924c1c7987947deafd8780acf49');
  const sealed = xaeadSeal(KEY_80, nonce, SUNSCREEN, AAD);
  assert.deepEqual(sealed, Buffer.concat([ct, tag]));
  assert.deepEqual(xaeadOpen(KEY_80, nonce, sealed, AAD), SUNSCREEN);
  const bad = Buffer.from(sealed);
  bad[bad.length - 1] = bad[bad.length - 1]! ^ 0x80;
  assert.equal(xaeadOpen(KEY_80, nonce, bad, AAD), null);
  assert.equal(xaeadOpen(KEY_80, nonce, sealed, Buffer.from('other ad')), null);
  assert.equal(xaeadOpen(KEY_80, nonce.subarray(1), sealed, AAD), null);
  assert.equal(xaeadOpen(KEY_80, nonce, sealed.subarray(0, 10), AAD), null);
});
