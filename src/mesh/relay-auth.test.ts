import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generatePrivateKey, publicKey } from '../crypto/index.js';
import { makeRelayAuth, RelayAuthChecker, RELAY_AUTH_SIZE } from './relay-auth.js';

test('relay auth: a member\'s token is accepted once, for its relay and transport, within the time window', () => {
  const mPriv = generatePrivateKey();
  const mPub = publicKey(mPriv);
  const rPriv = generatePrivateKey();
  const rPub = publicKey(rPriv);
  const members = new Set([mPub.toString('base64')]);
  const isMember = (k: string) => members.has(k);
  const now = 1_800_000_000_000;
  const checker = new RelayAuthChecker(rPriv, rPub);
  const t = makeRelayAuth(mPriv, mPub, rPub, 'https', now)!;
  assert.equal(t.length, RELAY_AUTH_SIZE);
  assert.deepEqual(checker.check(t, 'https', now + 1000, isMember), { ok: true, publicKey: mPub.toString('base64') });
  assert.deepEqual(checker.check(t, 'https', now + 1000, isMember), { ok: false, reason: 'replay' });
  const t2 = makeRelayAuth(mPriv, mPub, rPub, 'https', now)!;
  assert.deepEqual(checker.check(t2, 'tcp', now, isMember), { ok: false, reason: 'badMac' }, 'bound to the transport');
  const other = publicKey(generatePrivateKey());
  const t3 = makeRelayAuth(mPriv, mPub, other, 'https', now)!;
  assert.deepEqual(checker.check(t3, 'https', now, isMember), { ok: false, reason: 'badMac' }, 'bound to the relay');
  assert.deepEqual(checker.check(makeRelayAuth(mPriv, mPub, rPub, 'https', now - 10 * 60_000)!, 'https', now, isMember), { ok: false, reason: 'stale' });
  // Someone who only knows the member's public key cannot make a token for it.
  const forged = Buffer.from(makeRelayAuth(generatePrivateKey(), mPub, rPub, 'https', now)!);
  assert.deepEqual(checker.check(forged, 'https', now, isMember), { ok: false, reason: 'badMac' });
  // A valid token of a non-member.
  const xPriv = generatePrivateKey();
  assert.deepEqual(checker.check(makeRelayAuth(xPriv, publicKey(xPriv), rPub, 'https', now)!, 'https', now, isMember), { ok: false, reason: 'notMember' });
  for (const bad of [null, Buffer.alloc(0), Buffer.alloc(RELAY_AUTH_SIZE), Buffer.alloc(200, 1)]) assert.equal(checker.check(bad, 'https', now, isMember).ok, false);
  // Every single-bit flip is refused.
  for (let i = 0; i < RELAY_AUTH_SIZE * 8; i += 7) {
    const f = Buffer.from(makeRelayAuth(mPriv, mPub, rPub, 'tcp', now)!);
    f[i >> 3]! ^= 1 << (i & 7);
    assert.equal(checker.check(f, 'tcp', now, isMember).ok, false, `bit ${i}`);
  }
  assert.equal(checker.accepted, 1);
});
