import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { UserError } from '../util/index.js';
import { encodeBase32, decodeBase32, canonicalBase32, randomId, BASE32_ALPHABET } from './base32.js';
import {
  generateJoinToken, parseJoinToken, parseJoinTokenArgument, hashTokenSecret, verifyTokenSecret, parseDuration,
  TOKEN_LENGTH, TOKEN_PREFIX,
} from './tokens.js';

test('base32 round trip, aliases and bad characters', () => {
  for (let n = 0; n <= 40; n += 5) {
    const b = randomBytes(n);
    const t = encodeBase32(b);
    assert.equal(t.length, (n / 5) * 8);
    assert.deepEqual(decodeBase32(t), b);
    assert.deepEqual(decodeBase32(t.toUpperCase()), b);
  }
  // Known vector: five 0xff bytes are eight "z"; 00 44 32 14 c7 counts 0..7.
  assert.equal(encodeBase32(Buffer.from('ffffffffff', 'hex')), 'zzzzzzzz');
  assert.equal(encodeBase32(Buffer.from('00443214c7', 'hex')), '01234567');
  assert.deepEqual(decodeBase32('oL234567'), Buffer.from('00443214c7', 'hex'));
  assert.equal(canonicalBase32('OiL'), '011');
  assert.equal(decodeBase32('u1234567'), null);
  assert.equal(decodeBase32('1234567'), null);
  assert.throws(() => encodeBase32(new Uint8Array(3)), RangeError);
  assert.match(randomId('net'), /^net_[0-9a-hjkmnp-tv-z]{16}$/);
  assert.equal(new Set(BASE32_ALPHABET).size, 32);
});

test('a generated token parses back to its id and a secret that verifies against the stored hash', () => {
  for (let i = 0; i < 100; i++) {
    const t = generateJoinToken();
    assert.equal(t.text.length, TOKEN_LENGTH);
    assert.match(t.text, /^mtj1_[0-9a-z]{8}_[0-9a-z]{32}_[0-9a-z]{6}$/);
    const r = parseJoinToken(t.text);
    assert.ok(r.ok);
    assert.equal(r.id, t.id);
    assert.equal(r.text, t.text);
    assert.ok(verifyTokenSecret(r.secret, t.secretHash));
    assert.ok(!verifyTokenSecret(randomBytes(20), t.secretHash));
    assert.ok(!verifyTokenSecret(r.secret, t.secretHash.subarray(1)));
    // Upper case, confusable letters and a pasted line break still parse.
    const messy = 'MTJ1_' + t.text.slice(5).toUpperCase().replace(/0/g, 'O').replace(/1/g, 'l');
    const m = parseJoinToken(` ${messy.slice(0, 20)}\n  ${messy.slice(20)} `);
    assert.ok(m.ok, messy);
    assert.equal(m.text, t.text);
  }
  assert.equal(hashTokenSecret(Buffer.alloc(20)).length, 32);
});

test('every single-character substitution in a token is reported as a typo', () => {
  const t = generateJoinToken().text;
  let typos = 0;
  for (let i = TOKEN_PREFIX.length + 1; i < t.length; i++) {
    if (t[i] === '_') continue;
    for (const c of BASE32_ALPHABET) {
      if (c === t[i]) continue;
      const r = parseJoinToken(t.slice(0, i) + c + t.slice(i + 1));
      assert.ok(!r.ok && r.kind === 'typo', `position ${i} -> ${c}`);
      typos++;
    }
  }
  assert.ok(typos > 1000);
});

test('parse failures say typo or malformed, and why', () => {
  const t = generateJoinToken().text;
  const cases: Array<[unknown, 'typo' | 'malformed', RegExp]> = [
    [undefined, 'malformed', /no join token/],
    ['', 'malformed', /empty/],
    ['hello', 'malformed', /not a meshtun join token/],
    ['mtj2_abc', 'malformed', /mtj2 is not known/],
    [t.slice(0, -1), 'typo', /checksum part has 5 characters where 6 are expected \(a character is missing\)/],
    [t.slice(0, 20) + 'x' + t.slice(20), 'typo', /secret part has 33 characters.*extra character/],
    [t.slice(0, 10) + 'u' + t.slice(11), 'typo', /"u" \(character 11\) cannot appear/],
    ['mtj1_' + t.slice(5).replace(/_/g, ''), 'typo', /1 part after "mtj1_"/],
    [t.slice(0, -1) + (t.endsWith('a') ? 'b' : 'a'), 'typo', /checksum does not match/],
  ];
  for (const [text, kind, re] of cases) {
    const r = parseJoinToken(text);
    assert.ok(!r.ok, String(text));
    assert.equal(r.kind, kind, String(text));
    assert.match(r.message, re);
  }
  assert.throws(() => parseJoinTokenArgument(t.slice(0, -1)), (e: unknown) => e instanceof UserError && /has a typo/.test(e.message));
  assert.equal(parseJoinTokenArgument(t).text, t);
});

test('parseJoinToken never throws on random or mutated input', () => {
  const t = generateJoinToken().text;
  for (let i = 0; i < 2000; i++) {
    const chars = [...t];
    const n = 1 + (i % 4);
    for (let k = 0; k < n; k++) {
      const p = Math.floor(Math.random() * chars.length);
      const op = Math.floor(Math.random() * 3);
      if (op === 0) chars.splice(p, 1);
      else if (op === 1) chars.splice(p, 0, String.fromCharCode(Math.floor(Math.random() * 0x3000)));
      else chars[p] = String.fromCharCode(Math.floor(Math.random() * 128));
    }
    const r = parseJoinToken(chars.join(''));
    if (!r.ok) assert.ok(r.kind === 'typo' || r.kind === 'malformed');
  }
  for (const x of [null, 42, {}, [], 'mtj1_', 'mtj1____', 'MTJ1_' + 'z'.repeat(100)]) parseJoinToken(x);
});

test('parseDuration reads lifetimes and explains mistakes', () => {
  assert.equal(parseDuration('24h'), 24 * 3600_000);
  assert.equal(parseDuration('7d'), 7 * 86_400_000);
  assert.equal(parseDuration(' 1H30m '), 5400_000);
  assert.equal(parseDuration('2w'), 14 * 86_400_000);
  assert.equal(parseDuration('45s'), 45_000);
  assert.equal(parseDuration('never'), null);
  const bad: Array<[string, RegExp]> = [
    ['24', /a unit is missing: 24h\? 24d\?/],
    ['24x', /not a duration/],
    ['', /empty/],
    ['0h', /longer than zero/],
    ['4000d', /longer than ten years/],
    ['-1h', /not a duration/],
    ['1.5h', /not a duration/],
  ];
  for (const [t, re] of bad) {
    assert.throws(() => parseDuration(t), (e: unknown) => e instanceof UserError && /^invalid expiry/.test(e.message) && re.test(e.message), t);
  }
});
