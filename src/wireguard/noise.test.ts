import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generatePrivateKey, ChaChaPolyKey } from '../crypto/index.js';
import { fuzzParser } from '../wire/fuzz-harness.js';
import {
  LocalIdentity, Handshake, HandshakeState, createInitiation, consumeInitiation, createResponse,
  consumeResponse, deriveKeys, writeTai64n, HANDSHAKE_INITIATION_RATE_MS,
} from './noise.js';
import { INITIATION, RESPONSE, messageType, MessageType } from './messages.js';

const WALL = Date.UTC(2026, 0, 1, 12, 0, 0);

interface Pair {
  alice: LocalIdentity; bob: LocalIdentity;
  aliceSeesBob: Handshake; bobSeesAlice: Handshake;
}

function pair(psk?: Buffer): Pair {
  const alice = new LocalIdentity(generatePrivateKey());
  const bob = new LocalIdentity(generatePrivateKey());
  return {
    alice, bob,
    aliceSeesBob: new Handshake(alice, bob.publicKey, psk),
    bobSeesAlice: new Handshake(bob, alice.publicKey, psk),
  };
}

/** Runs a full handshake alice -> bob; returns both sides' keys. */
function handshake(p: Pair, nowMs = 1000, wallMs = WALL) {
  const init = Buffer.alloc(INITIATION.SIZE);
  assert.equal(createInitiation(p.aliceSeesBob, 0x11111111, wallMs, init), true);
  assert.equal(messageType(init, 0, init.length), MessageType.Initiation);
  const byKey = (k: Buffer) => (k.equals(p.alice.publicKey) ? p.bobSeesAlice : undefined);
  const hsB = consumeInitiation(p.bob, init, init.length, byKey, nowMs);
  assert.equal(hsB, p.bobSeesAlice);
  const resp = Buffer.alloc(RESPONSE.SIZE);
  assert.equal(createResponse(hsB!, 0x22222222, resp), true);
  assert.equal(messageType(resp, 0, resp.length), MessageType.Response);
  const byIndex = (i: number) => (i === 0x11111111 ? p.aliceSeesBob : undefined);
  const hsA = consumeResponse(p.alice, resp, resp.length, byIndex);
  assert.equal(hsA, p.aliceSeesBob);
  const a = deriveKeys(hsA!)!;
  const b = deriveKeys(hsB!)!;
  return { a, b, init, resp };
}

function assertKeysMatch(a: ReturnType<typeof deriveKeys>, b: ReturnType<typeof deriveKeys>): void {
  assert.ok(a && b);
  assert.equal(a.isInitiator, true);
  assert.equal(b.isInitiator, false);
  assert.deepEqual(a.sendKey, b.receiveKey);
  assert.deepEqual(a.receiveKey, b.sendKey);
  assert.notDeepEqual(a.sendKey, a.receiveKey);
  assert.equal(a.localIndex, 0x11111111);
  assert.equal(a.remoteIndex, 0x22222222);
  assert.equal(b.localIndex, 0x22222222);
  assert.equal(b.remoteIndex, 0x11111111);
  // And the keys actually carry data.
  const sealed = Buffer.alloc(64);
  const n = new ChaChaPolyKey(a.sendKey).seal(0, Buffer.from('hello bob'), 0, 9, sealed, 0);
  const out = Buffer.alloc(9);
  assert.equal(new ChaChaPolyKey(b.receiveKey).open(0, sealed, 0, n, out, 0), true);
  assert.equal(out.toString(), 'hello bob');
}

test('noise: both sides derive matching keys (no preshared key)', () => {
  const p = pair();
  const { a, b } = handshake(p);
  assertKeysMatch(a, b);
  // Secrets are wiped and the state reset after deriveKeys.
  assert.equal(p.aliceSeesBob.state, HandshakeState.Zeroed);
  assert.ok(p.aliceSeesBob.chainKey.every((x) => x === 0));
  assert.ok(p.bobSeesAlice.hash.every((x) => x === 0));
  assert.equal(deriveKeys(p.aliceSeesBob), undefined);
});

test('noise: both sides derive matching keys with a preshared key; a PSK mismatch fails the response', () => {
  const psk = generatePrivateKey();
  const { a, b } = handshake(pair(psk));
  assertKeysMatch(a, b);

  const p = pair(psk);
  p.bobSeesAlice.setPresharedKey(generatePrivateKey());
  const init = Buffer.alloc(INITIATION.SIZE);
  createInitiation(p.aliceSeesBob, 1, WALL, init);
  const hsB = consumeInitiation(p.bob, init, init.length, () => p.bobSeesAlice, 0);
  assert.ok(hsB, 'the PSK is not used in the initiation');
  const resp = Buffer.alloc(RESPONSE.SIZE);
  createResponse(hsB!, 2, resp);
  assert.equal(consumeResponse(p.alice, resp, resp.length, () => p.aliceSeesBob), undefined);
  assert.equal(p.aliceSeesBob.state, HandshakeState.InitiationCreated);
});

test('noise: a replayed initiation is rejected; a newer one is accepted', () => {
  const p = pair();
  const init = Buffer.alloc(INITIATION.SIZE);
  createInitiation(p.aliceSeesBob, 7, WALL, init);
  const lookup = () => p.bobSeesAlice;
  assert.ok(consumeInitiation(p.bob, init, init.length, lookup, 1000));
  // Same bytes again, long after the flood window: the timestamp is not newer.
  assert.equal(consumeInitiation(p.bob, init, init.length, lookup, 5000), undefined);
  // Same 16.8 ms timestamp slot: also a replay.
  createInitiation(p.aliceSeesBob, 8, WALL + 1, init);
  assert.equal(consumeInitiation(p.bob, init, init.length, lookup, 6000), undefined);
  // An older timestamp: rejected.
  createInitiation(p.aliceSeesBob, 9, WALL - 1000, init);
  assert.equal(consumeInitiation(p.bob, init, init.length, lookup, 7000), undefined);
  // A newer one: accepted.
  createInitiation(p.aliceSeesBob, 10, WALL + 1000, init);
  assert.equal(consumeInitiation(p.bob, init, init.length, lookup, 8000)?.remoteIndex, 10);
});

test('noise: initiations from one peer faster than every 20 ms are rejected', () => {
  const p = pair();
  const init = Buffer.alloc(INITIATION.SIZE);
  const lookup = () => p.bobSeesAlice;
  createInitiation(p.aliceSeesBob, 1, WALL, init);
  assert.ok(consumeInitiation(p.bob, init, init.length, lookup, 1000));
  createInitiation(p.aliceSeesBob, 2, WALL + 1000, init);
  assert.equal(consumeInitiation(p.bob, init, init.length, lookup, 1000 + HANDSHAKE_INITIATION_RATE_MS), undefined);
  assert.ok(consumeInitiation(p.bob, init, init.length, lookup, 1000 + HANDSHAKE_INITIATION_RATE_MS + 1));
});

test('noise: unknown peers, wrong receivers, tampered bytes and wrong states are refused', () => {
  const p = pair();
  const init = Buffer.alloc(INITIATION.SIZE);
  createInitiation(p.aliceSeesBob, 1, WALL, init);
  assert.equal(consumeInitiation(p.bob, init, init.length, () => undefined, 0), undefined, 'unknown peer');
  const eve = new LocalIdentity(generatePrivateKey());
  assert.equal(consumeInitiation(eve, init, init.length, () => p.bobSeesAlice, 0), undefined, 'not for eve');
  assert.equal(consumeInitiation(p.bob, init, 147, () => p.bobSeesAlice, 0), undefined, 'short');
  for (const at of [0, 1, 3, 8, 39, 40, 87, 88, 115]) {
    const bad = Buffer.from(init);
    bad[at] = bad[at]! ^ 0x20;
    assert.equal(consumeInitiation(p.bob, bad, bad.length, () => p.bobSeesAlice, 0), undefined, `byte ${at}`);
  }
  const resp = Buffer.alloc(RESPONSE.SIZE);
  assert.equal(createResponse(p.aliceSeesBob, 2, resp), false, 'initiator cannot respond');
  const hsB = consumeInitiation(p.bob, init, init.length, () => p.bobSeesAlice, 100)!;
  assert.ok(hsB);
  assert.equal(createResponse(hsB, 2, resp), true);
  assert.equal(consumeResponse(p.alice, resp, resp.length, () => undefined), undefined, 'unknown index');
  const wrongIndex = Buffer.from(resp);
  wrongIndex.writeUInt32LE(99, RESPONSE.RECEIVER);
  assert.equal(consumeResponse(p.alice, wrongIndex, resp.length, () => p.aliceSeesBob), undefined, 'index mismatch');
  for (const at of [12, 43, 44, 59]) {
    const bad = Buffer.from(resp);
    bad[at] = bad[at]! ^ 1;
    assert.equal(consumeResponse(p.alice, bad, bad.length, () => p.aliceSeesBob), undefined, `byte ${at}`);
  }
  assert.equal(consumeResponse(p.alice, resp, resp.length, () => p.aliceSeesBob), p.aliceSeesBob);
  assert.equal(consumeResponse(p.alice, resp, resp.length, () => p.aliceSeesBob), undefined, 'response replayed');
});

test('noise: a low-order peer key makes the handshake unusable instead of throwing', () => {
  const alice = new LocalIdentity(generatePrivateKey());
  const hs = new Handshake(alice, Buffer.alloc(32));
  assert.equal(hs.usable, false);
  assert.equal(createInitiation(hs, 1, WALL, Buffer.alloc(INITIATION.SIZE)), false);
});

test('noise: changing the local identity recomputes the static-static secret', () => {
  const p = pair();
  p.bobSeesAlice = new Handshake(new LocalIdentity(generatePrivateKey()), p.alice.publicKey);
  p.bobSeesAlice.setLocalIdentity(p.bob);
  const { a, b } = handshake(p);
  assertKeysMatch(a, b);
});

test('noise: TAI64N timestamps as wireguard-go writes them', () => {
  const ts = Buffer.alloc(12);
  writeTai64n(Date.UTC(2022, 2, 16, 0, 0, 0, 999), ts);
  // seconds: 2^62 + 10 + 1647388800; nanoseconds 999,000,000 rounded down to a multiple of 2^24.
  assert.equal(ts.readBigUInt64BE(0), (1n << 62n) + 10n + 1647388800n);
  assert.equal(ts.readUInt32BE(8), 999_000_000 & ~0xffffff);
  assert.equal(ts.readUInt32BE(8) % (1 << 24), 0);
});

test('noise: consumeInitiation and consumeResponse never throw on mutated input', () => {
  const p = pair();
  const init = Buffer.alloc(INITIATION.SIZE);
  createInitiation(p.aliceSeesBob, 1, WALL, init);
  const resp = Buffer.alloc(RESPONSE.SIZE);
  let now = 0;
  const n = fuzzParser([init, resp], (b, o, l) => {
    const msg = Buffer.from(b.subarray(o, o + l));
    now += 100;
    // Each call starts from the same state (the harness parses every input twice).
    p.bobSeesAlice.lastTimestamp.fill(0);
    const a = consumeInitiation(p.bob, msg, l, () => p.bobSeesAlice, now);
    const r = consumeResponse(p.alice, msg, l, () => p.aliceSeesBob);
    return `${a ? 1 : 0}${r ? 1 : 0}`;
  }, { iterations: 3000, maxLen: 200 });
  assert.ok(n > 0);
});
