import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { UserError } from '../util/index.js';
import { encodeBase64Key } from '../crypto/index.js';
import { parseCidr } from '../wireguard/index.js';
import {
  normalizeRoute, normalizeRoutes, normalizeEndpoint, normalizeEndpoints, normalizeTags, cidrsOverlap, isExitRoute, publicKeyText,
  MAX_ROUTES_PER_NODE,
} from './node-fields.js';

const OVERLAY = { ipv4Pool: '100.64.0.0/10', ulaPrefix: 'fd12:3456:789a::/48' };
const userError = (re: RegExp) => (e: unknown): boolean => e instanceof UserError && re.test(e.message);

test('routes: canonical text, sorted and unique; host bits, missing lengths and overlay overlaps refused', () => {
  assert.equal(normalizeRoute(' 2001:DB8:0::/32 '), '2001:db8::/32');
  assert.deepEqual(normalizeRoutes(['192.0.2.0/24', '::/0', '0.0.0.0/0', '192.0.2.0/24', '10.0.0.0/8'], OVERLAY),
    ['0.0.0.0/0', '10.0.0.0/8', '192.0.2.0/24', '::/0']);
  assert.throws(() => normalizeRoute('192.0.2.1/24'), (e: unknown) => e instanceof UserError && e.hint === 'did you mean 192.0.2.0/24?');
  assert.throws(() => normalizeRoute('2001:db8::1/32'), userError(/host bits are set/));
  assert.throws(() => normalizeRoute('192.0.2.0'), userError(/no prefix length/));
  assert.throws(() => normalizeRoute('192.0.2.0/40'), userError(/prefix longer than 32/));
  assert.throws(() => normalizeRoutes(['100.100.0.0/16'], OVERLAY), userError(/overlaps the network's own addresses 100.64.0.0\/10/));
  assert.throws(() => normalizeRoutes(['100.0.0.0/8'], OVERLAY), userError(/overlaps/));
  assert.throws(() => normalizeRoutes(['fd12:3456:789a:1::/64'], OVERLAY), userError(/fd12:3456:789a::\/48/));
  assert.deepEqual(normalizeRoutes(['100.128.0.0/16', 'fd12:3456:789b::/48'], OVERLAY), ['100.128.0.0/16', 'fd12:3456:789b::/48']);
  const many = Array.from({ length: MAX_ROUTES_PER_NODE + 1 }, (_, i) => `10.${i}.0.0/16`);
  assert.throws(() => normalizeRoutes(many, OVERLAY), userError(/too many routes/));
  assert.throws(() => normalizeRoutes('10.0.0.0/8' as unknown as string[], OVERLAY), userError(/must be a list/));
  assert.ok(isExitRoute('::/0') && !isExitRoute('::/1'));
});

test('cidrsOverlap is containment either way, per family', () => {
  const c = (t: string) => parseCidr(t);
  assert.ok(cidrsOverlap(c('10.0.0.0/8'), c('10.1.0.0/16')));
  assert.ok(cidrsOverlap(c('10.1.0.0/16'), c('10.0.0.0/8')));
  assert.ok(!cidrsOverlap(c('10.0.0.0/16'), c('10.1.0.0/16')));
  assert.ok(cidrsOverlap(c('0.0.0.0/0'), c('192.0.2.7/32')));
  assert.ok(!cidrsOverlap(c('::/0'), c('10.0.0.0/8')));
  assert.ok(cidrsOverlap(c('2001:db8::/32'), c('2001:db8:ffff::/48')));
  assert.ok(!cidrsOverlap(c('2001:db8::/32'), c('2001:db9::/32')));
});

test('endpoints: address:port, IPv6 in brackets, order kept, duplicates dropped', () => {
  assert.equal(normalizeEndpoint('[2001:DB8:0:0::1]:51820'), '[2001:db8::1]:51820');
  assert.deepEqual(normalizeEndpoints(['198.18.0.5:51820', '[::1]:1', '198.18.0.5:51820']), ['198.18.0.5:51820', '[::1]:1']);
  for (const [t, re] of [
    ['host.example:51820', /not an address:port/], ['198.18.0.5', /not an address:port/], ['198.18.0.5:0', /port 0 is not from 1/],
    ['198.18.0.5:70000', /port 70000/], ['300.0.0.1:5', /not an IPv4 address/], ['[fe80::1%eth0]:5', /not an IPv6 address/],
    ['::1:5', /not an address:port/],
  ] as const) assert.throws(() => normalizeEndpoint(t), userError(re), t);
});

test('tags: lowercase words, sorted and unique', () => {
  assert.deepEqual(normalizeTags(['Web', 'ops', 'web', ' db-1 ']), ['db-1', 'ops', 'web']);
  for (const bad of ['', 'a b', '-x', 'x-', 'tag:web', 'x'.repeat(64)]) assert.throws(() => normalizeTags([bad]), userError(/invalid tag/), bad);
});

test('publicKeyText accepts base64 text or 32 bytes', () => {
  const k = randomBytes(32);
  assert.equal(publicKeyText(k), encodeBase64Key(k));
  assert.equal(publicKeyText(` ${encodeBase64Key(k)}\n`), encodeBase64Key(k));
  assert.throws(() => publicKeyText('abc'), userError(/invalid public key "abc": expected 32 bytes in base64/));
  assert.throws(() => publicKeyText(new Uint8Array(31)), userError(/\(31 bytes\)/));
  assert.throws(() => publicKeyText(5 as unknown as string), userError(/\(number\)/));
});
