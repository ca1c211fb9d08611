import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { UserError } from '../util/index.js';
import { encodeBase64Key } from '../crypto/index.js';
import { generateJoinToken } from './tokens.js';
import { formatJoinString, parseJoinString, encodeUrlKey, decodeUrlKey, formatHostPort } from './join-string.js';

test('join strings round trip: host, IPv4, IPv6, key and token', () => {
  for (const host of ['coord.example.net', '198.18.0.1', '2001:db8::7']) {
    const key = randomBytes(32);
    const token = generateJoinToken().text;
    const s = formatJoinString({ host, port: 7443, publicKey: key, token });
    assert.match(s, /^meshtun:\/\/[^/]+\/[A-Za-z0-9_-]{43}\?token=mtj1_/);
    const j = parseJoinString(s);
    assert.deepEqual(j, { host, port: 7443, publicKey: key, token });
    const noToken = formatJoinString({ host, port: 1, publicKey: key });
    assert.deepEqual(parseJoinString(noToken, { token }), { host, port: 1, publicKey: key, token });
  }
  assert.equal(formatHostPort('::1', 80), '[::1]:80');
});

test('the key may be URL-safe or standard base64, padded or not; the scheme may be left out', () => {
  // A key whose base64 has both "+" and "/".
  let key: Buffer;
  do key = randomBytes(32); while (!/[+]/.test(encodeBase64Key(key)) || !/[/]/.test(encodeBase64Key(key)));
  assert.deepEqual(decodeUrlKey(encodeUrlKey(key)), key);
  assert.deepEqual(decodeUrlKey(encodeBase64Key(key)), key);
  assert.equal(decodeUrlKey('abc'), null);
  const std = `198.18.0.9:443/${encodeBase64Key(key)}`;
  assert.deepEqual(parseJoinString(std).publicKey, key);
  assert.equal(parseJoinString(`meshtun://h:9/${encodeUrlKey(key)}/`).host, 'h');
  assert.equal(parseJoinString(`MESHTUN://H.Example:9/${encodeUrlKey(key)}`).host, 'h.example');
  assert.equal(parseJoinString(`meshtun://h/${encodeUrlKey(key)}`, { defaultPort: 7443 }).port, 7443);
});

test('join string mistakes are refused with the part that is wrong', () => {
  const key = encodeUrlKey(randomBytes(32));
  const token = generateJoinToken().text;
  const cases: Array<[string, RegExp, object?]> = [
    ['', /it is empty/],
    ['https://h:1/' + key, /scheme is "https:\/\/", not "meshtun:\/\/"/],
    ['meshtun://h:7443', /coordinator public key is missing \(needed to authenticate/],
    ['meshtun://h/' + key, /port is missing/],
    ['meshtun://h:0/' + key, /port "0" is not a number from 1 to 65535/],
    ['meshtun://h:99999/' + key, /port "99999"/],
    ['meshtun://h:/' + key, /port "" is not/],
    ['meshtun://:7443/' + key, /host is missing/],
    ['meshtun://300.1.1.1:7443/' + key, /"300.1.1.1" is not an IPv4 address/],
    ['meshtun://2001:db8::1:7443/' + key, /put it in brackets/],
    ['meshtun://[2001:db8::zz]:7443/' + key, /not an IPv6 address in brackets/],
    ['meshtun://bad_host!:7443/' + key, /not a host name or address/],
    ['meshtun://h:7443/', /public key is missing after/],
    ['meshtun://h:7443/' + key.slice(1), /is not a coordinator public key/],
    ['meshtun://h:7443/' + key + '?tokne=' + token, /unknown parameter "tokne"/],
    ['meshtun://h:7443/' + key + '?token=' + token.slice(0, -1), /has a typo/],
    ['meshtun://h:7443/' + key, /no join token was given/, { requireToken: true }],
    ['meshtun://h:7443/' + key + '?token=' + token, /name different tokens/, { token: generateJoinToken().text }],
  ];
  for (const [s, re, opts] of cases) {
    assert.throws(() => parseJoinString(s, opts), (e: unknown) => e instanceof UserError && re.test(e.message), s);
  }
  // The same token given twice is fine.
  assert.equal(parseJoinString('meshtun://h:7443/' + key + '?token=' + token, { token: token.toUpperCase() }).token, token);
});

test('parseJoinString throws only UserErrors, whatever the input', () => {
  const good = formatJoinString({ host: '2001:db8::7', port: 7443, publicKey: randomBytes(32), token: generateJoinToken().text });
  const pool = 'meshtun:/?[]@#%&=+_-.0123456789abcxyzMTJ';
  for (let i = 0; i < 3000; i++) {
    const chars = [...good];
    for (let k = 0; k < 1 + (i % 5); k++) {
      const p = Math.floor(Math.random() * chars.length);
      const c = pool[Math.floor(Math.random() * pool.length)]!;
      if (i % 3 === 0) chars.splice(p, 1);
      else if (i % 3 === 1) chars.splice(p, 0, c);
      else chars[p] = c;
    }
    try {
      parseJoinString(chars.join(''));
    } catch (e) {
      assert.ok(e instanceof UserError, `${chars.join('')}: ${(e as Error).stack}`);
    }
  }
});
