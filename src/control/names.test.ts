import { test } from 'node:test';
import assert from 'node:assert/strict';
import { UserError } from '../util/index.js';
import {
  normalizeNodeName, normalizeNetworkName, nameFromHostname, uniqueName, isValidNodeName, MAX_NAME_LENGTH,
} from './names.js';

test('normalizeNodeName lowercases and trims valid labels', () => {
  assert.equal(normalizeNodeName('  Web-1 '), 'web-1');
  assert.equal(normalizeNodeName('a'), 'a');
  assert.equal(normalizeNodeName('x'.repeat(63)), 'x'.repeat(63));
  assert.equal(normalizeNodeName('1st-floor'), '1st-floor');
});

test('normalizeNodeName refuses bad names with a message saying why', () => {
  const cases: Array<[string, RegExp]> = [
    ['', /invalid node name "": it is empty/],
    ['web_1', /"_" is not allowed/],
    ['web.lab', /"\." is not allowed/],
    ['-web', /starts or ends with "-"/],
    ['web-', /starts or ends with "-"/],
    ['x'.repeat(64), /64 characters, more than 63/],
    ['caf\u00e9', /"\u00e9" is not allowed/],
    ['1234', /digits only/],
  ];
  for (const [text, re] of cases) {
    assert.throws(() => normalizeNodeName(text), (e: unknown) => e instanceof UserError && re.test(e.message), text);
  }
});

test('normalizeNetworkName refuses reserved top-level names', () => {
  assert.equal(normalizeNetworkName('Home'), 'home');
  assert.throws(() => normalizeNetworkName('mesh'), /"mesh" is reserved/);
  assert.throws(() => normalizeNetworkName('LOCAL'), /reserved/);
  assert.throws(() => normalizeNetworkName('my net'), /invalid network name "my net": " " is not allowed/);
});

test('nameFromHostname makes a valid label out of any host name', () => {
  assert.equal(nameFromHostname('Laptop.example.com'), 'laptop');
  assert.equal(nameFromHostname('My_Box (2)'), 'my-box-2');
  assert.equal(nameFromHostname('---'), 'node');
  assert.equal(nameFromHostname(''), 'node');
  assert.equal(nameFromHostname(undefined), 'node');
  assert.equal(nameFromHostname('12345'), 'node-12345');
  const long = nameFromHostname('a'.repeat(62) + '-b' + 'c'.repeat(10));
  assert.equal(long.length <= MAX_NAME_LENGTH, true);
  assert.ok(isValidNodeName(long));
  for (const h of ['\u00fc\u00fc\u00fc', 'a--b', 'x'.repeat(300), '  spaced  out  ', 'ok-']) {
    assert.ok(isValidNodeName(nameFromHostname(h)), h);
  }
});

test('uniqueName adds -2, -3... and keeps the result a valid label', () => {
  const taken = new Set(['web', 'web-2']);
  assert.equal(uniqueName('db', (n) => taken.has(n)), 'db');
  assert.equal(uniqueName('web', (n) => taken.has(n)), 'web-3');
  const long = 'y'.repeat(63);
  const got = uniqueName(long, (n) => n === long);
  assert.equal(got, 'y'.repeat(61) + '-2');
  assert.ok(isValidNodeName(got));
  // A stem that would end in "-" after shortening loses the hyphen.
  const dashy = 'z'.repeat(60) + '-ab';
  const got2 = uniqueName(dashy, (n) => n === dashy);
  assert.equal(got2, 'z'.repeat(60) + '-2');
});
