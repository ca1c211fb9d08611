import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createCipheriv, randomBytes, randomInt } from 'node:crypto';
import {
  ChaChaPolyKey, aeadSeal, aeadOpen, hchacha20, xaeadSeal, xaeadOpen, AEAD_TAG_SIZE,
  aeadImplementation, aeadNativeUnavailable, type AeadImplementation,
} from './aead.js';

/** Both implementations when the addon is built; the ChaChaPolyKey tests run once per entry. */
const NATIVE_SKIP = aeadNativeUnavailable() || false;
const IMPLS: AeadImplementation[] = NATIVE_SKIP ? ['node:crypto'] : ['native', 'node:crypto'];

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

for (const impl of IMPLS) {
  test(`aead [${impl}]: WireGuard nonce layout: counter n is nonce 00000000 || LE64(n)`, async () => {
    const { createCipheriv } = await import('node:crypto');
    const key = KEY_80;
    const k = new ChaChaPolyKey(key, impl);
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

  test(`aead [${impl}]: ChaChaPolyKey seals and opens ranges, in place, and rejects tampering without throwing`, () => {
    const key = Buffer.alloc(32, 3);
    const k = new ChaChaPolyKey(key, impl);
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
    assert.equal(new ChaChaPolyKey(Buffer.alloc(32, 4), impl).open(42, buf, 16, n, out, 3), false, 'wrong key');
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

  test(`aead [${impl}]: empty plaintext (keepalive) is just a tag`, () => {
    const k = new ChaChaPolyKey(Buffer.alloc(32, 9), impl);
    const dst = Buffer.alloc(16);
    assert.equal(k.seal(7, Buffer.alloc(0), 0, 0, dst, 0), 16);
    assert.equal(k.open(7, dst, 0, 16, Buffer.alloc(0), 0), true);
    assert.equal(k.open(8, dst, 0, 16, Buffer.alloc(0), 0), false);
    assert.deepEqual(aeadOpen(Buffer.alloc(32, 9), 7, dst, Buffer.alloc(0)), Buffer.alloc(0));
  });

  test(`aead [${impl}]: wipe makes the key unusable for opening old messages`, () => {
    const k = new ChaChaPolyKey(Buffer.alloc(32, 1), impl);
    const dst = Buffer.alloc(20);
    k.seal(0, Buffer.from('abcd'), 0, 4, dst, 0);
    k.wipe();
    assert.equal(k.open(0, dst, 0, 20, Buffer.alloc(4), 0), false);
    const out = Buffer.alloc(24, 0xee);
    assert.equal(k.seal(1, Buffer.from('abcd'), 0, 4, out, 2), 20);
    assert.deepEqual(out, Buffer.concat([Buffer.alloc(2, 0xee), Buffer.alloc(20), Buffer.alloc(2, 0xee)]), 'a wiped key seals to zeros');
  });

  test(`aead [${impl}]: a failed in-place open leaves the ciphertext as it was`, () => {
    const k = new ChaChaPolyKey(Buffer.alloc(32, 5), impl);
    const buf = Buffer.alloc(16 + 300 + AEAD_TAG_SIZE);
    randomBytes(300).copy(buf, 16);
    k.seal(9, buf, 16, 300, buf, 16);
    buf[16 + 300] = buf[16 + 300]! ^ 0x40; // tag
    const before = Buffer.from(buf);
    assert.equal(k.open(9, buf, 16, 300 + AEAD_TAG_SIZE, buf, 16), false);
    assert.deepEqual(buf, before);
  });
}

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

// ---- native and node:crypto agree, single and batched ----

// RFC 8439 appendix A.5: its nonce 00000000 01020304 05060708 has WireGuard's form, with the
// 64-bit counter 0x0807060504030201 (beyond 2^53, so only the two-halves API can name it).
const A5_KEY = h('1c9240a5eb55d38af333888604f6b5f0473917c1402b80099dca5cbc207075c0');
const A5_COUNTER_LO = 0x04030201;
const A5_COUNTER_HI = 0x08070605;
const A5_AAD = h('f33388860000000000004e91');
const A5_PLAIN = Buffer.from('Internet-Drafts are draft documents valid for a maximum of six months and may be updated, '
  + 'replaced, or obsoleted by other documents at any time. It is inappropriate to use Internet-Drafts as reference '
  + 'material or to cite them other than as /\u201cwork in progress./\u201d', 'utf8');
const A5_CT = h('64a0861575861af460f062c79be643bd5e805cfd345cf389f108670ac76c8cb24c6cfc18755d43eea09ee94e382d26b0'
  + 'bdb7b73c321b0100d4f03b7f355894cf332f830e710b97ce98c8a84abd0b948114ad176e008d33bd60f982b1ff37c8559797a06ef4f0'
  + 'ef61c186324e2b3506383606907b6a7c02b0f9f6157b53c867e4b9166c767b804d46a59b5216cde7a4e99040c5a40433225ee282a1b0'
  + 'a06c523eaf4534d7f83fa1155b0047718cbc546a0d072b04b3564eea1b422273f548271a0bb2316053fa76991955ebd63159434ecebb'
  + '4e466dae5a1073a6727627097a1049e617d91d361094fa68f0ff77987130305beaba2eda04df997b714d6c6f2c29a6ad5cb4022b0270'
  + '9b');
const A5_TAG = h('eead9d67890cbb22392336fea1851f38');

for (const impl of IMPLS) {
  test(`aead [${impl}]: RFC 8439 appendix A.5 vector through seal64 / open64`, () => {
    assert.equal(A5_PLAIN.length, 265);
    const k = new ChaChaPolyKey(A5_KEY, impl);
    const buf = Buffer.alloc(8 + A5_PLAIN.length + AEAD_TAG_SIZE);
    A5_PLAIN.copy(buf, 8);
    assert.equal(k.seal64(A5_COUNTER_LO, A5_COUNTER_HI, buf, 8, A5_PLAIN.length, buf, 8, A5_AAD), A5_PLAIN.length + 16);
    assert.deepEqual(buf.subarray(8), Buffer.concat([A5_CT, A5_TAG]));
    const sealed = Buffer.concat([A5_CT, A5_TAG]);
    const out = Buffer.alloc(A5_PLAIN.length);
    assert.equal(k.open64(A5_COUNTER_LO, A5_COUNTER_HI, sealed, 0, sealed.length, out, 0, A5_AAD), true);
    assert.deepEqual(out, A5_PLAIN);
    assert.equal(k.open64(A5_COUNTER_LO, A5_COUNTER_HI, sealed, 0, sealed.length, out, 0), false, 'without the AAD');
    assert.equal(k.open64(A5_COUNTER_LO + 1, A5_COUNTER_HI, sealed, 0, sealed.length, out, 0, A5_AAD), false, 'other counter');
  });
}

/** A random counter: small, around 2^32, or anywhere in 64 bits, as (lo, hi). */
function randomCounter(): [number, number] {
  switch (randomInt(3)) {
    case 0: return [randomInt(1000), 0];
    case 1: return [randomInt(2 ** 32 - 4, 2 ** 32) >>> 0, randomInt(2)];
    default: return [randomBytes(4).readUInt32LE(0), randomBytes(4).readUInt32LE(0)];
  }
}

const BATCH = 64;
const HEADER = 16; // packets sit after a 16-byte header, as in the engine

interface Batch {
  bufs: Buffer[]; plain: Buffer[]; offsets: Uint32Array; lengths: Uint32Array; lo: Uint32Array; hi: Uint32Array;
}

/** count packets of random length 0..1500 at offset HEADER, with random counters. */
function randomBatch(count: number): Batch {
  const b: Batch = {
    bufs: [], plain: [], offsets: new Uint32Array(count), lengths: new Uint32Array(count),
    lo: new Uint32Array(count), hi: new Uint32Array(count),
  };
  for (let i = 0; i < count; i++) {
    const len = i === 0 ? 0 : i === 1 ? 1500 : randomInt(1501);
    const p = randomBytes(len);
    const buf = Buffer.alloc(HEADER + len + AEAD_TAG_SIZE + 8, 0xa5);
    p.copy(buf, HEADER);
    b.bufs.push(buf);
    b.plain.push(p);
    b.offsets[i] = HEADER;
    b.lengths[i] = len;
    [b.lo[i], b.hi[i]] = randomCounter();
  }
  return b;
}

const pairs: [AeadImplementation, AeadImplementation][] = NATIVE_SKIP
  ? [['node:crypto', 'node:crypto']]
  : [['native', 'node:crypto'], ['node:crypto', 'native'], ['native', 'native']];

for (const [sealer, opener] of pairs) {
  test(`aead: ${sealer} seal, ${opener} open: random lengths 0..1500 and 64-bit counters, single and batch`, () => {
    const key = randomBytes(32);
    const s = new ChaChaPolyKey(key, sealer);
    const o = new ChaChaPolyKey(key, opener);
    for (let round = 0; round < 5; round++) {
      const b = randomBatch(BATCH);
      // Single calls for half the rounds, one batch for the others; the bytes must be the same.
      if (round % 2 === 0) {
        for (let i = 0; i < BATCH; i++) {
          assert.equal(s.seal64(b.lo[i]!, b.hi[i]!, b.bufs[i]!, HEADER, b.lengths[i]!, b.bufs[i]!, HEADER), b.lengths[i]! + 16);
        }
      } else {
        assert.equal(s.sealBatch(b.bufs, b.offsets, b.lengths, b.lo, b.hi, BATCH), BATCH);
      }
      for (let i = 0; i < BATCH; i++) {
        const nonce = Buffer.alloc(12);
        nonce.writeUInt32LE(b.lo[i]!, 4);
        nonce.writeUInt32LE(b.hi[i]!, 8);
        const want = aeadSealRaw(key, nonce, b.plain[i]!);
        assert.deepEqual(b.bufs[i]!.subarray(HEADER, HEADER + want.length), want, `packet ${i} (${b.lengths[i]} bytes)`);
        assert.equal(b.bufs[i]![HEADER + want.length], 0xa5, 'nothing written past the tag');
        b.lengths[i] = b.lengths[i]! + AEAD_TAG_SIZE;
      }
      const ok = new Uint8Array(BATCH).fill(7);
      assert.equal(o.openBatch(b.bufs, b.offsets, b.lengths, b.lo, b.hi, BATCH, ok), BATCH);
      for (let i = 0; i < BATCH; i++) {
        assert.equal(ok[i], 1);
        assert.deepEqual(b.bufs[i]!.subarray(HEADER, HEADER + b.plain[i]!.length), b.plain[i]);
      }
    }
  });
}

/** node:crypto's ChaCha20-Poly1305 with an explicit nonce: ciphertext || tag. */
function aeadSealRaw(key: Buffer, nonce: Buffer, plain: Buffer): Buffer {
  const c = createCipheriv('chacha20-poly1305', key, nonce, { authTagLength: 16 });
  return Buffer.concat([c.update(plain), c.final(), c.getAuthTag()]);
}

for (const impl of IMPLS) {
  test(`aead [${impl}]: openBatch of 64 marks tampered, wrong-counter and short packets ok=0 without throwing`, () => {
    const key = randomBytes(32);
    const k = new ChaChaPolyKey(key, impl);
    const b = randomBatch(BATCH);
    k.sealBatch(b.bufs, b.offsets, b.lengths, b.lo, b.hi, BATCH);
    const bad = new Set<number>();
    for (let i = 0; i < BATCH; i++) {
      b.lengths[i] = b.lengths[i]! + AEAD_TAG_SIZE;
      switch (i % 8) {
        case 3: b.bufs[i]![HEADER + b.lengths[i]! - 1] ^= 1; bad.add(i); break; // tag
        case 5: if (b.lengths[i]! > 16) { b.bufs[i]![HEADER] ^= 0x80; bad.add(i); } break; // ciphertext
        case 6: b.lo[i] = (b.lo[i]! + 1) >>> 0; bad.add(i); break; // counter
        case 7: b.lengths[i] = randomInt(16); bad.add(i); break; // shorter than a tag
      }
    }
    const before = b.bufs.map((x) => Buffer.from(x));
    const ok = new Uint8Array(BATCH);
    assert.equal(k.openBatch(b.bufs, b.offsets, b.lengths, b.lo, b.hi, BATCH, ok), BATCH - bad.size);
    for (let i = 0; i < BATCH; i++) {
      if (bad.has(i)) {
        assert.equal(ok[i], 0, `packet ${i} must fail`);
        assert.deepEqual(b.bufs[i], before[i], `failed packet ${i} is left as it was`);
      } else {
        assert.equal(ok[i], 1, `packet ${i} must verify`);
        assert.deepEqual(b.bufs[i]!.subarray(HEADER, HEADER + b.plain[i]!.length), b.plain[i]);
      }
    }
  });

  test(`aead [${impl}]: batches larger than the native limit fall back to packet-by-packet calls`, () => {
    const k = new ChaChaPolyKey(randomBytes(32), impl);
    const b = randomBatch(200);
    assert.equal(k.sealBatch(b.bufs, b.offsets, b.lengths, b.lo, b.hi, 200), 200);
    for (let i = 0; i < 200; i++) b.lengths[i] = b.lengths[i]! + AEAD_TAG_SIZE;
    const ok = new Uint8Array(200);
    assert.equal(k.openBatch(b.bufs, b.offsets, b.lengths, b.lo, b.hi, 200, ok), 200);
    assert.deepEqual(b.bufs[57]!.subarray(HEADER, HEADER + b.plain[57]!.length), b.plain[57]);
  });
}

test('aead: native batch calls refuse ranges that do not fit (a caller bug), before touching any packet', { skip: NATIVE_SKIP }, () => {
  const k = new ChaChaPolyKey(randomBytes(32), 'native');
  const b = randomBatch(4);
  const before = b.bufs.map((x) => Buffer.from(x));
  b.lengths[3] = b.bufs[3]!.length; // no room for the tag
  assert.throws(() => k.sealBatch(b.bufs, b.offsets, b.lengths, b.lo, b.hi, 4), RangeError);
  assert.deepEqual(b.bufs, before);
  assert.throws(() => k.sealBatch(b.bufs, b.offsets, b.lengths, b.lo, b.hi.subarray(0, 2), 4), RangeError);
});

test('aead: MESHTUN_PURE_TS_CRYPTO=1 makes new keys use node:crypto; otherwise native when built', () => {
  const script = `import('${new URL('./aead.js', import.meta.url).href}').then((m) => {
    console.log(m.aeadImplementation() + ' ' + new m.ChaChaPolyKey(Buffer.alloc(32)).implementation);
  });`;
  const run = (pure: string): string => execFileSync(process.execPath, ['--input-type=module', '-e', script], {
    encoding: 'utf8', env: { ...process.env, MESHTUN_PURE_TS_CRYPTO: pure },
  }).trim();
  assert.equal(run('1'), 'node:crypto node:crypto');
  const want = NATIVE_SKIP ? 'node:crypto' : 'native';
  assert.equal(run('0'), `${want} ${want}`);
  assert.equal(aeadImplementation(), process.env.MESHTUN_PURE_TS_CRYPTO === '1' ? 'node:crypto' : want);
});
