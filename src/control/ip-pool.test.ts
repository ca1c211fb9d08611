import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { UserError } from '../util/index.js';
import { formatIpv4Address, parseIpv4Address, formatIpv6Address } from '../wire/index.js';
import {
  parseIpv4Pool, formatIpv4Pool, isAssignableIpv4, assignableIpv4Count, firstAssignableIpv4, preferredIpv4,
  allocateIpv4, PoolExhaustedError, networkUlaPrefix, formatUlaPrefix, parseUlaPrefix, nodeIpv6, nodeIpv6Text,
  ipv4PoolContains, DEFAULT_IPV4_POOL,
} from './ip-pool.js';

const ip = (t: string): number => parseIpv4Address(t)!;

test('parseIpv4Pool accepts prefixes /8 to /30 and explains mistakes', () => {
  assert.deepEqual(parseIpv4Pool(DEFAULT_IPV4_POOL), { network: ip('100.64.0.0'), prefixLen: 10 });
  assert.equal(formatIpv4Pool(parseIpv4Pool(' 10.77.0.0/16 ')), '10.77.0.0/16');
  const bad: Array<[string, RegExp]> = [
    ['10.0.0.1/24', /host bits are set/],
    ['10.0.0.0', /no prefix length/],
    ['10.0.0.0/31', /\/31 is outside \/8 to \/30/],
    ['10.0.0.0/7', /outside/],
    ['fd00::/48', /not an IPv4 prefix/],
    ['ten/8', /not an address/],
  ];
  for (const [t, re] of bad) assert.throws(() => parseIpv4Pool(t), (e: unknown) => e instanceof UserError && re.test(e.message), t);
  assert.throws(() => parseIpv4Pool('10.0.0.1/24'), (e: UserError) => e.hint === 'did you mean 10.0.0.0/24?');
});

test('assignable addresses skip network, broadcast and, in wide pools, .0 and .255', () => {
  const wide = parseIpv4Pool('100.64.0.0/10');
  assert.equal(isAssignableIpv4(wide, ip('100.64.0.0')), false);
  assert.equal(isAssignableIpv4(wide, ip('100.64.0.1')), true);
  assert.equal(isAssignableIpv4(wide, ip('100.64.1.0')), false);
  assert.equal(isAssignableIpv4(wide, ip('100.64.1.255')), false);
  assert.equal(isAssignableIpv4(wide, ip('100.127.255.255')), false);
  assert.equal(isAssignableIpv4(wide, ip('100.128.0.1')), false);
  const half = parseIpv4Pool('10.0.0.128/25');
  assert.equal(isAssignableIpv4(half, ip('10.0.0.128')), false);
  assert.equal(isAssignableIpv4(half, ip('10.0.0.129')), true);
  assert.equal(isAssignableIpv4(half, ip('10.0.0.255')), false);
  assert.equal(isAssignableIpv4(half, ip('10.0.0.1')), false);
  assert.equal(ipv4PoolContains(half, ip('10.0.0.200')), true);
  assert.equal(firstAssignableIpv4(wide), ip('100.64.0.1'));
});

test('assignableIpv4Count matches an enumeration of the pool', () => {
  for (const t of ['10.1.0.0/20', '10.1.2.0/24', '10.1.2.16/28', '10.1.2.4/30', '10.0.0.0/23']) {
    const pool = parseIpv4Pool(t);
    let n = 0;
    for (let i = 0; i < 2 ** (32 - pool.prefixLen); i++) if (isAssignableIpv4(pool, pool.network + i)) n++;
    assert.equal(assignableIpv4Count(pool), n, t);
  }
});

test('preferredIpv4 in the default pool is the address daemon/node-identity derives from the key', () => {
  const pool = parseIpv4Pool(DEFAULT_IPV4_POOL);
  for (let i = 0; i < 50; i++) {
    const key = randomBytes(32);
    const h = createHash('sha256').update('meshtun node address').update(key).digest();
    let v4 = (((100 << 24) | (64 << 16)) | (h.readUInt32BE(0) & 0x3fffff)) >>> 0;
    if ((v4 & 255) === 0 || (v4 & 255) === 255) v4 = (v4 ^ 1) >>> 0;
    assert.equal(preferredIpv4(pool, key), v4);
    assert.ok(isAssignableIpv4(pool, v4));
  }
});

test('allocateIpv4 fills a /24 without duplicates, skips reserved addresses, then reports exhaustion', () => {
  const pool = parseIpv4Pool('10.9.8.0/24');
  const reserved = [firstAssignableIpv4(pool)];
  const taken = new Set<number>();
  for (let i = 0; i < 253; i++) {
    const a = allocateIpv4(pool, randomBytes(32), { isTaken: (x) => taken.has(x), reserved });
    assert.ok(isAssignableIpv4(pool, a), formatIpv4Address(a));
    assert.ok(!taken.has(a), `duplicate ${formatIpv4Address(a)}`);
    assert.notEqual(a, reserved[0]);
    taken.add(a);
  }
  // Full: found by probing, and at once when the count is given.
  assert.throws(() => allocateIpv4(pool, randomBytes(32), { isTaken: (x) => taken.has(x), reserved }),
    (e: unknown) => e instanceof PoolExhaustedError && /10\.9\.8\.0\/24 is full \(253 addresses/.test(e.message));
  let probes = 0;
  assert.throws(() => allocateIpv4(pool, randomBytes(32), { isTaken: (x) => { probes++; return taken.has(x); }, takenCount: 253, reserved }),
    PoolExhaustedError);
  assert.equal(probes, 0);
});

test('allocateIpv4 gives a re-joining node its previous address when free, else another', () => {
  const pool = parseIpv4Pool('100.64.0.0/10');
  const key = randomBytes(32);
  const prev = ip('100.64.3.7');
  assert.equal(allocateIpv4(pool, key, { isTaken: () => false, previous: prev }), prev);
  const other = allocateIpv4(pool, key, { isTaken: (a) => a === prev, previous: prev });
  assert.notEqual(other, prev);
  assert.equal(other, preferredIpv4(pool, key));
  // A previous address outside the pool (the pool changed) is ignored.
  assert.equal(allocateIpv4(pool, key, { isTaken: () => false, previous: ip('10.0.0.5') }), preferredIpv4(pool, key));
  // Taken preferred address: the next free one upward.
  const pref = preferredIpv4(pool, key);
  const next = allocateIpv4(pool, key, { isTaken: (a) => a === pref });
  let expected = pref + 1;
  while (!isAssignableIpv4(pool, expected)) expected = expected + 1 >= pool.network + 2 ** 22 ? pool.network : expected + 1;
  assert.equal(formatIpv4Address(next), formatIpv4Address(expected));
});

test('allocateIpv4 wraps around the end of the pool', () => {
  const pool = parseIpv4Pool('192.168.7.252/30');
  // Two assignable addresses: .253 and .254.
  const first = allocateIpv4(pool, randomBytes(32), { isTaken: () => false });
  const second = allocateIpv4(pool, randomBytes(32), { isTaken: (a) => a === first });
  assert.deepEqual([first, second].sort(), [ip('192.168.7.253'), ip('192.168.7.254')]);
});

test('network ULA /48 and key-derived IPv6 addresses', () => {
  const p1 = networkUlaPrefix('net_one');
  const p2 = networkUlaPrefix('net_two');
  assert.equal(p1[0], 0xfd);
  assert.deepEqual(networkUlaPrefix('net_one'), p1);
  assert.notDeepEqual(p1, p2);
  const text = formatUlaPrefix(p1);
  assert.match(text, /^fd[0-9a-f]{2}:[0-9a-f]{1,4}:[0-9a-f]{1,4}::\/48$/);
  assert.deepEqual(parseUlaPrefix(text), p1);
  assert.throws(() => parseUlaPrefix('fc00::/48'), /expected fdxx/);
  assert.throws(() => parseUlaPrefix('fd00::1/48'), /expected fdxx/);
  const key = randomBytes(32);
  const a = nodeIpv6(p1, key);
  assert.deepEqual(a.subarray(0, 6), p1.subarray(0, 6));
  assert.deepEqual(a.subarray(6, 8), new Uint8Array(2));
  // Interface id = bytes 4..12 of the node address hash (as in daemon/node-identity.ts).
  const h = createHash('sha256').update('meshtun node address').update(key).digest();
  assert.deepEqual(Buffer.from(a.subarray(8)), h.subarray(4, 12));
  assert.equal(nodeIpv6Text('net_one', key), formatIpv6Address(a, 0));
  assert.notEqual(nodeIpv6Text('net_one', randomBytes(32)), nodeIpv6Text('net_one', key));
});
