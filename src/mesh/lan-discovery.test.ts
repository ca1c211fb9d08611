// LanDiscovery with real sockets on loopback (IPv4 multicast works on lo when the interface is
// named by address): two members find each other, another network's beacons and forged,
// stale and replayed ones are refused and counted, an address change is announced at once.
// The real multicast path between hosts (both families) is test/lan-discovery-netns.test.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { randomBytes } from 'node:crypto';
import { networkInterfaces, type NetworkInterfaceInfo } from 'node:os';
import { LanDiscovery, sameSubnet, type LanDiscoveryOptions } from './lan-discovery.js';
import { LanBeaconKeys, emitLanBeacon, lanBeaconLength, type LanBeaconRepr } from './lan-beacon.js';

const NETWORK = 'net_0123456789abcdef';

/** A port and group of this run only, so concurrent runs on one host do not hear each other. */
function channel(): { port: number; groupV4: string } {
  return { port: 20000 + Math.floor(Math.random() * 40000), groupV4: `239.255.${1 + Math.floor(Math.random() * 250)}.${1 + Math.floor(Math.random() * 250)}` };
}

function loopback(extra: { address: string; cidr: string }[] = []): () => NodeJS.Dict<NetworkInterfaceInfo[]> {
  const lo = (networkInterfaces().lo ?? []).filter((i) => i.family === 'IPv4');
  return () => ({
    lo: [...lo, ...extra.map((e) => ({ address: e.address, cidr: e.cidr, netmask: '255.255.255.0', family: 'IPv4' as const, mac: '00:00:00:00:00:00', internal: true }))],
  });
}

interface Member {
  lan: LanDiscovery;
  key: string;
  learned: [string, string][];
}

function member(ch: { port: number; groupV4: string }, wgPort: number, over: Partial<LanDiscoveryOptions> = {}): Member {
  const pk = randomBytes(32);
  const learned: [string, string][] = [];
  const lan = new LanDiscovery({
    publicKey: pk, wireguardPort: () => wgPort, onEndpoint: (k, ep, source) => { assert.equal(source, 'lan'); learned.push([k, ep]); },
    port: ch.port, groupV4: ch.groupV4, families: [4], includeLoopback: true, interfaces: loopback(), beaconIntervalMs: 200, addressCheckMs: 50, ...over,
  });
  return { lan, key: pk.toString('base64'), learned };
}

async function until(what: string, fn: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!fn()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const refusals = (m: Member) => {
  const c = m.lan.counters;
  return c.refusedMalformed + c.refusedVersion + c.refusedOtherNetwork + c.refusedBadMac + c.refusedStale + c.refusedReplay;
};

test('two members on one link learn each other\'s WireGuard endpoint; their own beacons are skipped', async (t) => {
  const ch = channel();
  const key = randomBytes(32).toString('base64');
  const a = member(ch, 40001);
  const b = member(ch, 40002);
  t.after(() => Promise.all([a.lan.close(), b.lan.close()]));
  assert.equal(a.lan.active, false, 'idle until it has a network');
  a.lan.setNetwork(NETWORK, key);
  b.lan.setNetwork(NETWORK, key);
  await until('a and b learn each other', () => a.learned.length > 0 && b.learned.length > 0);
  assert.deepEqual(a.learned[0], [b.key, '127.0.0.1:40002']);
  assert.deepEqual(b.learned[0], [a.key, '127.0.0.1:40001']);
  await until('more beacons', () => a.lan.counters.accepted >= 3 && a.lan.counters.own >= 3);
  assert.equal(a.learned.length, 1, 'an endpoint is handed on once, not with every beacon');
  assert.equal(refusals(a), 0);
  const c = a.lan.counters;
  assert.equal(c.received, c.accepted + c.own + refusals(a), 'every datagram lands in one counter');
  assert.equal(c.socketErrors, 0);
  assert.ok(c.sent >= 3);
});

test('another network\'s beacons are refused and teach nothing; a new key takes effect at once', async (t) => {
  const ch = channel();
  const a = member(ch, 40001);
  const other = member(ch, 40009);
  t.after(() => Promise.all([a.lan.close(), other.lan.close()]));
  a.lan.setNetwork(NETWORK, randomBytes(32).toString('base64'));
  other.lan.setNetwork(NETWORK, randomBytes(32).toString('base64'));
  await until('a hears the other network', () => a.lan.counters.refusedOtherNetwork >= 2);
  assert.deepEqual(a.learned, []);
  assert.deepEqual(other.learned, []);
  // The coordinator's key reaches both (the same network now): they find each other.
  const shared = randomBytes(32).toString('base64');
  a.lan.setNetwork(NETWORK, shared);
  other.lan.setNetwork(NETWORK, shared);
  await until('a learns the other', () => a.learned.length > 0);
  assert.deepEqual(a.learned[0], [other.key, '127.0.0.1:40009']);
});

test('forged, stale, replayed and malformed datagrams are refused by reason; nothing is learned from them', async (t) => {
  const ch = channel();
  const keyBytes = randomBytes(32);
  const a = member(ch, 40001, { beaconIntervalMs: 60_000 });
  t.after(() => a.lan.close());
  a.lan.setNetwork(NETWORK, keyBytes.toString('base64'));
  await until('a is listening', () => a.lan.counters.own >= 1);
  const tx = createSocket('udp4');
  t.after(() => tx.close());
  await new Promise<void>((r) => tx.bind(0, '127.0.0.1', () => r()));
  tx.setMulticastInterface('127.0.0.1');
  const send = (b: Buffer) => new Promise<void>((r) => tx.send(b, ch.port, ch.groupV4, () => r()));
  const keys = new LanBeaconKeys(NETWORK, keyBytes);
  const make = (over: Partial<LanBeaconRepr>, k = keys) => {
    const repr: LanBeaconRepr = { publicKey: randomBytes(32), port: 40005, timeMs: Date.now(), addresses: ['127.0.0.1'], ...over };
    const b = Buffer.alloc(lanBeaconLength(repr));
    emitLanBeacon(k, repr, b, 0);
    return b;
  };
  const good = make({});
  await send(good);
  await until('the good beacon', () => a.lan.counters.accepted === 1);
  assert.equal(a.learned.length, 1);
  await send(good); // replayed
  await send(make({ timeMs: Date.now() - 120_000 })); // stale
  await send(make({ timeMs: Date.now() + 120_000 })); // from the future
  const forged = make({ port: 40006 });
  forged[forged.length - 1]! ^= 1;
  await send(forged); // bad MAC
  await send(Buffer.from('hello')); // not a beacon
  await send(make({}, new LanBeaconKeys('net_zzzzzzzzzzzzzzzz', keyBytes))); // another network id
  const c = a.lan.counters;
  await until('all counted', () => c.refusedReplay + c.refusedStale + c.refusedBadMac + c.refusedMalformed + c.refusedOtherNetwork === 6);
  assert.deepEqual(
    { replay: c.refusedReplay, stale: c.refusedStale, badMac: c.refusedBadMac, malformed: c.refusedMalformed, other: c.refusedOtherNetwork },
    { replay: 1, stale: 2, badMac: 1, malformed: 1, other: 1 });
  assert.equal(a.learned.length, 1, 'only the good beacon taught anything');
});

test('an address change is announced at once; receivers take only endpoints on their own subnets', async (t) => {
  const ch = channel();
  const key = randomBytes(32).toString('base64');
  const extraA: { address: string; cidr: string }[] = [];
  const a = member(ch, 40001, { beaconIntervalMs: 60_000, interfaces: loopback(extraA) });
  const b = member(ch, 40002, { beaconIntervalMs: 60_000, interfaces: loopback([{ address: '198.18.99.5', cidr: '198.18.99.5/24' }]) });
  t.after(() => Promise.all([a.lan.close(), b.lan.close()]));
  a.lan.setNetwork(NETWORK, key);
  b.lan.setNetwork(NETWORK, key);
  await until('b learns a', () => b.learned.length >= 1);
  assert.deepEqual(b.learned.map((l) => l[1]), ['127.0.0.1:40001']);
  // a gains an address on b's subnet (and one on no subnet of b's): b hears of the first well
  // before the next periodic beacon (60 s).
  extraA.push({ address: '198.18.99.1', cidr: '198.18.99.1/24' }, { address: '203.0.113.7', cidr: '203.0.113.7/24' });
  const t0 = Date.now();
  await until('b learns a\'s new address', () => b.learned.some((l) => l[1] === '198.18.99.1:40001'), 3000);
  assert.ok(Date.now() - t0 < 3000);
  assert.ok(!b.learned.some((l) => l[1].startsWith('203.0.113.7')), 'not on any subnet of b');
  assert.ok(!a.learned.some((l) => l[1].startsWith('198.18.99.5')), 'a has no address on 198.18.99.0/24 (b\'s beacons were only sent at start)');
});

test('no interface: the service keeps running without sockets and starts once one appears', async (t) => {
  const ch = channel();
  let ifs: NodeJS.Dict<NetworkInterfaceInfo[]> = {};
  const key = randomBytes(32).toString('base64');
  const a = member(ch, 40001, { interfaces: () => ifs });
  const b = member(ch, 40002);
  t.after(() => Promise.all([a.lan.close(), b.lan.close()]));
  a.lan.setNetwork(NETWORK, key);
  b.lan.setNetwork(NETWORK, key);
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(a.lan.counters.sent, 0);
  assert.equal(a.lan.active, true);
  ifs = loopback()();
  await until('a appears to b', () => b.learned.length > 0);
});

test('sameSubnet compares the prefix of the local address', () => {
  const l4 = { ifname: 'eth0', family: 4 as const, address: '198.18.10.2', prefixLen: 24, linkLocal: false };
  assert.equal(sameSubnet(4, '198.18.10.200', l4), true);
  assert.equal(sameSubnet(4, '198.18.11.2', l4), false);
  assert.equal(sameSubnet(6, 'fd00::1', l4), false);
  const l6 = { ifname: 'eth0', family: 6 as const, address: 'fd00:18::2', prefixLen: 64, linkLocal: false };
  assert.equal(sameSubnet(6, 'fd00:18::ffff:1', l6), true);
  assert.equal(sameSubnet(6, 'fd00:19::2', l6), false);
});
