import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fuzzParser, fuzzIterations } from '../wire/fuzz-harness.js';
import {
  LanBeaconKeys, LanBeaconResult, BeaconReplayGuard, parseLanBeacon, emitLanBeacon, lanBeaconLength, newLanBeaconRepr, LAN_BEACON,
  LAN_BEACON_MAX_SIZE, LAN_BEACON_MAX_SKEW_MS, type LanBeaconRepr,
} from './lan-beacon.js';

const NETWORK = 'net_0123456789abcdef';
const DISCOVERY_KEY = Buffer.alloc(32, 0x42);
const KEY_A = 'HIgo9xNzJMWLKASShiTqIybxZ0U3wGLiUeJ1PKf8ykw=';
const T = 1767225600000; // 2026-01-01T00:00:00Z
const keys = new LanBeaconKeys(NETWORK, DISCOVERY_KEY);

const VECTOR = Buffer.from([
  '4d546c62', // magic "MTlb"
  '01', // version 1
  '02', // two addresses
  'ca6c', // WireGuard port 51820
  '27c3ae9d608d4eee', // network tag: HMAC-BLAKE2s(0x42 x 32, "meshtun lan network v1 net_0123456789abcdef")[0..8]
  '1c8828f7137324c58b2804928624ea2326f1674537c062e251e2753ca7fcca4c', // sender's public key (KEY_A)
  '0000019b76daa800', // time 1767225600000 ms
  '04c6120a02', // IPv4 198.18.10.2
  '06fd000018000000000000000000000002', // IPv6 fd00:18::2
  '0b167664596df611f11ebb812b157f95', // keyed BLAKE2s-128 of all the above
].join(''), 'hex');

function beacon(over: Partial<LanBeaconRepr> = {}, k: LanBeaconKeys = keys): Buffer {
  const repr: LanBeaconRepr = { publicKey: Buffer.from(KEY_A, 'base64'), port: 51820, timeMs: T, addresses: ['198.18.10.2', 'fd00:18::2'], ...over };
  const b = Buffer.alloc(lanBeaconLength(repr));
  assert.equal(emitLanBeacon(k, repr, b, 0), b.length);
  return b;
}

function parse(b: Buffer, k: LanBeaconKeys = keys): { result: LanBeaconResult; repr: LanBeaconRepr } {
  const repr = newLanBeaconRepr();
  return { result: parseLanBeacon(k, b, 0, b.length, repr), repr };
}

test('construct: the beacon of the vector, byte for byte', () => {
  assert.deepEqual(beacon(), VECTOR);
  assert.equal(keys.networkTag.toString('hex'), '27c3ae9d608d4eee');
});

test('parse: fields of the vector, the MAC verified; at an offset inside a larger buffer too', () => {
  const { result, repr } = parse(VECTOR);
  assert.equal(result, LanBeaconResult.Ok);
  assert.equal(repr.publicKey.toString('base64'), KEY_A);
  assert.equal(repr.port, 51820);
  assert.equal(repr.timeMs, T);
  assert.deepEqual(repr.addresses, ['198.18.10.2', 'fd00:18::2']);
  const big = Buffer.alloc(VECTOR.length + 40, 0xee);
  VECTOR.copy(big, 17);
  const out = newLanBeaconRepr();
  assert.equal(parseLanBeacon(keys, big, 17, VECTOR.length, out), LanBeaconResult.Ok);
  assert.deepEqual(out.addresses, ['198.18.10.2', 'fd00:18::2']);
  assert.equal(VECTOR.readUInt16BE(LAN_BEACON.PORT), 51820);
});

test('no addresses, and eight IPv6 addresses (the largest beacon)', () => {
  assert.deepEqual(parse(beacon({ addresses: [] })).repr.addresses, []);
  const many = Array.from({ length: 8 }, (_, i) => `fd00:18::${i + 1}`);
  const b = beacon({ addresses: many });
  assert.equal(b.length, LAN_BEACON_MAX_SIZE);
  assert.deepEqual(parse(b).repr.addresses, many);
  assert.throws(() => beacon({ addresses: [...many, 'fd00:18::9'] }), RangeError);
  assert.throws(() => beacon({ addresses: ['198.18.10.256'] }), RangeError);
  assert.throws(() => beacon({ port: 0 }), RangeError);
});

test('tampering with any byte is refused: tag bytes as another network, the rest as a bad MAC or malformed', () => {
  for (let i = 0; i < VECTOR.length; i++) {
    for (const bit of [0x01, 0x80]) {
      const b = Buffer.from(VECTOR);
      b[i] = b[i]! ^ bit;
      const { result } = parse(b);
      assert.notEqual(result, LanBeaconResult.Ok, `byte ${i} bit ${bit}`);
      if (i >= LAN_BEACON.NETWORK && i < LAN_BEACON.SENDER) assert.equal(result, LanBeaconResult.OtherNetwork, `byte ${i}`);
      if (i >= LAN_BEACON.SENDER) assert.ok(result === LanBeaconResult.BadMac || result === LanBeaconResult.Malformed, `byte ${i}: ${result}`);
    }
  }
  // The address list and the port are covered by the MAC.
  const b = Buffer.from(VECTOR);
  b[LAN_BEACON.ADDRESSES + 4] = 3; // 198.18.10.2 -> 198.18.10.3
  assert.equal(parse(b).result, LanBeaconResult.BadMac);
});

test('another network: other key or other id; a forger with the tag but not the key fails the MAC', () => {
  assert.equal(parse(VECTOR, new LanBeaconKeys(NETWORK, Buffer.alloc(32, 0x43))).result, LanBeaconResult.OtherNetwork);
  assert.equal(parse(VECTOR, new LanBeaconKeys('net_0123456789abcdeg', DISCOVERY_KEY)).result, LanBeaconResult.OtherNetwork);
  // Someone who saw a beacon knows the tag; without the discovery key the MAC is wrong.
  const forger = new LanBeaconKeys(NETWORK, Buffer.alloc(32, 0x99));
  (forger as { networkTag: Buffer }).networkTag = Buffer.from(keys.networkTag);
  assert.equal(parse(beacon({ addresses: ['198.18.10.66'] }, forger)).result, LanBeaconResult.BadMac);
  assert.equal(LanBeaconKeys.fromBase64(NETWORK, Buffer.alloc(31).toString('base64')), null);
  assert.deepEqual(LanBeaconKeys.fromBase64(NETWORK, DISCOVERY_KEY.toString('base64'))!.macKey, keys.macKey);
});

test('structure: truncated at every length, bytes after the MAC, bad count or family, other versions, not a beacon', () => {
  for (let n = 0; n < VECTOR.length; n++) {
    const r = parse(VECTOR.subarray(0, n)).result;
    assert.ok(r === LanBeaconResult.Truncated || r === LanBeaconResult.Malformed, `length ${n}: ${r}`);
  }
  assert.equal(parse(Buffer.concat([VECTOR, Buffer.from([0])])).result, LanBeaconResult.Malformed);
  const v2 = Buffer.from(VECTOR);
  v2[LAN_BEACON.VERSION] = 2;
  assert.equal(parse(v2).result, LanBeaconResult.Unsupported);
  const count = Buffer.from(VECTOR);
  count[LAN_BEACON.COUNT] = 9;
  assert.equal(parse(count).result, LanBeaconResult.Malformed);
  const family = Buffer.from(VECTOR);
  family[LAN_BEACON.ADDRESSES] = 5;
  assert.equal(parse(family).result, LanBeaconResult.Malformed);
  assert.equal(parse(Buffer.from('not a beacon at all, just text of some length........................')).result, LanBeaconResult.Malformed);
});

test('replay guard: each beacon once, in any order; stale beyond 60 s either way', () => {
  const g = new BeaconReplayGuard();
  assert.equal(g.check('a', T, T), 'ok');
  assert.equal(g.check('a', T, T + 5), 'replay');
  assert.equal(g.check('a', T + 2, T + 5), 'ok');
  assert.equal(g.check('a', T + 1, T + 5), 'ok', 'an older one that arrives late (another family) is still new');
  assert.equal(g.check('a', T + 1, T + 6), 'replay');
  assert.equal(g.check('b', T, T), 'ok', 'per sender');
  assert.equal(g.check('a', T - LAN_BEACON_MAX_SKEW_MS - 1, T), 'stale');
  assert.equal(g.check('a', T + LAN_BEACON_MAX_SKEW_MS + 1, T), 'stale');
  assert.equal(g.check('a', Number.NaN, T), 'stale');
  // A full history: anything older than all of it is refused as a replay.
  const h = new BeaconReplayGuard();
  for (let i = 0; i < BeaconReplayGuard.SEEN_PER_SENDER + 10; i++) assert.equal(h.check('a', T + 100 + i, T + 200), 'ok');
  assert.equal(h.check('a', T + 100, T + 200), 'replay');
  assert.equal(h.check('a', T + 50, T + 200), 'replay');
  // Senders are bounded.
  const s = new BeaconReplayGuard();
  for (let i = 0; i < BeaconReplayGuard.MAX_SENDERS + 5; i++) s.check(`k${i}`, T, T);
  assert.equal(s.size, BeaconReplayGuard.MAX_SENDERS);
});

test('fuzz: random and mutated beacons never throw and never read past their length', () => {
  const seeds = [VECTOR, beacon({ addresses: [] }), beacon({ addresses: Array.from({ length: 8 }, (_, i) => `fd00::${i}`) }), beacon({ addresses: ['198.18.0.1'] })];
  const out = newLanBeaconRepr();
  const n = fuzzParser(seeds, (buf, off, len) => {
    const r = parseLanBeacon(keys, buf, off, len, out);
    return r === LanBeaconResult.Ok ? `ok ${out.publicKey.toString('hex')} ${out.port} ${out.timeMs} ${out.addresses.join(',')}` : r;
  }, { iterations: fuzzIterations(60_000), maxLen: 512 });
  assert.ok(n > 0);
});
