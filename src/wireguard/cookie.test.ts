import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generatePrivateKey, hash, mac16 } from '../crypto/index.js';
import { fuzzParser } from '../wire/fuzz-harness.js';
import { LocalIdentity, Handshake, createInitiation, createResponse, consumeInitiation } from './noise.js';
import { CookieChecker, CookieGenerator, COOKIE_REFRESH_TIME_MS, endpointCookieBytes } from './cookie.js';
import { INITIATION, RESPONSE, COOKIE_REPLY, MessageType, messageType } from './messages.js';
import type { Endpoint } from './device-interface.js';

const WALL = Date.UTC(2026, 0, 1);
const SRC = Buffer.from([198, 18, 0, 1, 0x1f, 0x90]); // 198.18.0.1:36895 (port little-endian)

function setup() {
  const alice = new LocalIdentity(generatePrivateKey());
  const bob = new LocalIdentity(generatePrivateKey());
  const hs = new Handshake(alice, bob.publicKey);
  const init = Buffer.alloc(INITIATION.SIZE);
  assert.ok(createInitiation(hs, 42, WALL, init));
  return { alice, bob, hs, init, gen: new CookieGenerator(bob.publicKey), checker: new CookieChecker(bob.publicKey) };
}

test('cookie: mac1 is keyed BLAKE2s-128 under HASH("mac1----" || receiver key) over the bytes before it', () => {
  const { bob, init, gen, checker } = setup();
  assert.equal(gen.addMacs(init, init.length, 0), true);
  const want = mac16(hash(Buffer.from('mac1----'), bob.publicKey), init.subarray(0, INITIATION.MAC1));
  assert.deepEqual(init.subarray(INITIATION.MAC1, INITIATION.MAC2), want);
  assert.ok(init.subarray(INITIATION.MAC2).every((x) => x === 0), 'no cookie: mac2 is zeros');
  assert.equal(checker.checkMac1(init, init.length), true);
});

test('cookie: a wrong mac1 is rejected (other receiver key, changed bytes, bad length)', () => {
  const { init, gen, checker } = setup();
  gen.addMacs(init, init.length, 0);
  const eve = new CookieChecker(new LocalIdentity(generatePrivateKey()).publicKey);
  assert.equal(eve.checkMac1(init, init.length), false);
  for (const at of [4, 50, INITIATION.MAC1, INITIATION.MAC1 + 15]) {
    const bad = Buffer.from(init);
    bad[at] = bad[at]! ^ 1;
    assert.equal(checker.checkMac1(bad, bad.length), false, `byte ${at}`);
  }
  // mac2 is not covered by mac1.
  const mac2Changed = Buffer.from(init);
  mac2Changed[INITIATION.MAC2] = 1;
  assert.equal(checker.checkMac1(mac2Changed, init.length), true);
  assert.equal(checker.checkMac1(init, init.length - 1), false);
  assert.equal(checker.checkMac1(Buffer.alloc(INITIATION.SIZE), INITIATION.SIZE), false);
});

test('cookie: round trip under load: reply, mac2 on the retry, expiry after 2 minutes', () => {
  const { alice, bob, hs, init, gen, checker } = setup();
  let now = 10_000;
  gen.addMacs(init, init.length, now);
  assert.equal(checker.checkMac1(init, init.length), true);
  assert.equal(checker.checkMac2(init, init.length, SRC, now), false, 'no cookie yet');

  const reply = Buffer.alloc(COOKIE_REPLY.SIZE);
  assert.equal(checker.createReply(init, init.length, SRC, now, reply), true);
  assert.equal(messageType(reply, 0, reply.length), MessageType.CookieReply);
  assert.equal(reply.readUInt32LE(COOKIE_REPLY.RECEIVER), 42, 'addressed to the initiation sender index');

  // A tampered reply is refused; the real one accepted once.
  const bad = Buffer.from(reply);
  bad[40] = bad[40]! ^ 1;
  assert.equal(gen.consumeReply(bad, bad.length, now), false);
  assert.equal(gen.consumeReply(reply, reply.length, now), true);
  assert.equal(gen.consumeReply(reply, reply.length, now), false, 'only once per mac1 sent');
  assert.equal(gen.hasFreshCookie(now), true);

  // The next initiation carries mac2, which the checker accepts from the same source only.
  now += 5000;
  assert.ok(createInitiation(hs, 43, WALL + 5000, init));
  gen.addMacs(init, init.length, now);
  assert.equal(checker.checkMac1(init, init.length), true);
  assert.equal(checker.checkMac2(init, init.length, SRC, now), true);
  const otherSrc = Buffer.from(SRC);
  otherSrc[3] = 2;
  assert.equal(checker.checkMac2(init, init.length, otherSrc, now), false);
  // And the message still is a valid initiation for bob.
  const bobHs = new Handshake(bob, alice.publicKey);
  assert.ok(consumeInitiation(bob, init, init.length, () => bobHs, now));

  // Cookies go stale after 2 minutes on the sender; the responder's secret too.
  assert.equal(gen.hasFreshCookie(now - 5000 + COOKIE_REFRESH_TIME_MS), false);
  assert.equal(checker.checkMac2(init, init.length, SRC, 10_000 + COOKIE_REFRESH_TIME_MS + 1), false);
  gen.addMacs(init, init.length, 10_000 + COOKIE_REFRESH_TIME_MS);
  assert.ok(init.subarray(INITIATION.MAC2).every((x) => x === 0), 'stale cookie: mac2 zeros');
});

test('cookie: a reply for a response works the same way (macs at the end of 92 bytes)', () => {
  const alice = new LocalIdentity(generatePrivateKey());
  const bob = new LocalIdentity(generatePrivateKey());
  const init = Buffer.alloc(INITIATION.SIZE);
  createInitiation(new Handshake(alice, bob.publicKey), 1, WALL, init);
  const bobHs = consumeInitiation(bob, init, init.length, (k) => new Handshake(bob, k), 0)!;
  const resp = Buffer.alloc(RESPONSE.SIZE);
  assert.ok(createResponse(bobHs, 2, resp));
  const gen = new CookieGenerator(alice.publicKey);
  const checker = new CookieChecker(alice.publicKey);
  gen.addMacs(resp, resp.length, 0);
  assert.equal(checker.checkMac1(resp, resp.length), true);
  const reply = Buffer.alloc(COOKIE_REPLY.SIZE);
  assert.ok(checker.createReply(resp, resp.length, SRC, 0, reply));
  assert.equal(reply.readUInt32LE(COOKIE_REPLY.RECEIVER), 2);
  assert.ok(gen.consumeReply(reply, reply.length, 1));
  gen.addMacs(resp, resp.length, 2);
  assert.ok(checker.checkMac2(resp, resp.length, SRC, 3));
});

test('cookie: endpoint address bytes are IP then little-endian port, cached per endpoint', () => {
  const v4: Endpoint = { family: 4, address: '198.18.0.1', port: 51820, toString: () => '198.18.0.1:51820' };
  const b = endpointCookieBytes(v4);
  assert.equal(b.toString('hex'), 'c6120001' + '6cca');
  assert.equal(endpointCookieBytes(v4), b);
  const v6: Endpoint = { family: 6, address: 'fd00::1', port: 1, toString: () => '[fd00::1]:1' };
  assert.equal(endpointCookieBytes(v6).toString('hex'), 'fd000000000000000000000000000001' + '0100');
});

test('cookie: checker and generator never throw on mutated input', () => {
  const { bob, init, gen, checker } = setup();
  gen.addMacs(init, init.length, 0);
  const reply = Buffer.alloc(COOKIE_REPLY.SIZE);
  checker.createReply(init, init.length, SRC, 0, reply);
  const n = fuzzParser([init, reply], (b, o, l) => {
    const msg = Buffer.from(b.subarray(o, o + l));
    // A fresh generator per call that has just sent `init` (the harness parses each input twice).
    const gen = new CookieGenerator(bob.publicKey);
    gen.addMacs(Buffer.from(init), init.length, 0);
    return `${checker.checkMac1(msg, l)}${checker.checkMac2(msg, l, SRC, 1)}${gen.consumeReply(msg, l, 1)}`;
  }, { iterations: 3000, maxLen: 200 });
  assert.ok(n > 0);
});
