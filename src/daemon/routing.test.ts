import { test } from 'node:test';
import assert from 'node:assert/strict';
import { overlayNatRuleset } from './routing.js';
import { MapFieldError } from '../mesh/index.js';

test('the NAT rules are data: prefixes as (address, length), the interface as one string', () => {
  const r = overlayNatRuleset('meshtun0', { ipv4Pool: '100.64.0.0/10', ulaPrefix: 'fd12:3456:789a::/48' }) as { nftables: Record<string, { rule?: { expr: unknown[] } }>[] };
  const rules = r.nftables.map((c) => c.add?.rule).filter((x) => x !== undefined);
  assert.equal(rules.length, 2);
  assert.deepEqual(rules[0]!.expr, [
    { match: { op: '==', left: { payload: { protocol: 'ip', field: 'saddr' } }, right: { prefix: { addr: '100.64.0.0', len: 10 } } } },
    { match: { op: '!=', left: { meta: { key: 'oifname' } }, right: 'meshtun0' } },
    { masquerade: null },
  ]);
  assert.deepEqual((rules[1]!.expr[0] as { match: { right: unknown } }).match.right, { prefix: { addr: 'fd12:3456:789a::', len: 48 } });
});

test('a prefix or interface name that is not one is refused before nft sees it', () => {
  assert.throws(() => overlayNatRuleset('meshtun0', { ipv4Pool: '100.64.0.0/10 drop; table ip x {', ulaPrefix: 'fd12:3456:789a::/48' }), MapFieldError);
  assert.throws(() => overlayNatRuleset('meshtun0', { ipv4Pool: '100.64.0.0/10', ulaPrefix: 'fd12::/48\n' }), MapFieldError);
  assert.throws(() => overlayNatRuleset('a"; drop', { ipv4Pool: '100.64.0.0/10', ulaPrefix: 'fd12:3456:789a::/48' }), MapFieldError);
});
