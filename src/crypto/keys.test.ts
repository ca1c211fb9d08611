import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  encodeBase64Key, decodeBase64Key, encodeHex, decodeHex, decodeHexKey, constantTimeEqual, isZero, wipe,
} from './keys.js';

test('keys: base64 round trip and the wg text form', () => {
  const key = Buffer.from('77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a', 'hex');
  const text = encodeBase64Key(key);
  assert.equal(text, 'dwdtCnMYpX08FsFyUbJmRd9ML4frwJkqsXf7pR25LCo=');
  assert.deepEqual(decodeBase64Key(text), key);
  assert.equal(encodeBase64Key(key.subarray(0, 32)), text);
});

test('keys: bad base64 keys decode to null', () => {
  const good = 'dwdtCnMYpX08FsFyUbJmRd9ML4frwJkqsXf7pR25LCo=';
  for (const bad of ['', good.slice(1), good + '=', good.slice(0, 43) + 'A', good.replace('d', '!'),
    ' ' + good.slice(1), good.slice(0, 42) + 'p=', // last character has nonzero unused bits
    'dwdtCnMYpX08FsFyUbJmRd9ML4frwJkqsXf7pR25LC==', good.replace('w', '-')]) {
    assert.equal(decodeBase64Key(bad), null, JSON.stringify(bad));
  }
});

test('keys: hex encode/decode', () => {
  assert.equal(encodeHex(Buffer.from([0, 0xab, 0xff])), '00abff');
  assert.deepEqual(decodeHex('00ABff'), Buffer.from([0, 0xab, 0xff]));
  assert.equal(decodeHex('abc'), null);
  assert.equal(decodeHex('zz'), null);
  assert.equal(decodeHexKey('00'.repeat(31)), null);
  assert.deepEqual(decodeHexKey('11'.repeat(32)), Buffer.alloc(32, 0x11));
});

test('keys: constant-time compare, isZero and wipe', () => {
  assert.equal(constantTimeEqual(Buffer.from('abc'), Buffer.from('abc')), true);
  assert.equal(constantTimeEqual(Buffer.from('abc'), Buffer.from('abd')), false);
  assert.equal(constantTimeEqual(Buffer.from('abc'), Buffer.from('ab')), false);
  const b = Buffer.from('secret');
  assert.equal(isZero(b), false);
  wipe(b);
  assert.equal(isZero(b), true);
  wipe(null);
});
