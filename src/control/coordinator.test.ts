import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ManualClock } from '../wireguard/index.js';
import { UserError } from '../util/index.js';
import { generatePrivateKey, publicKey, encodeBase64Key } from '../crypto/index.js';
import { formatIpv6Address } from '../wire/index.js';
import { Coordinator } from './coordinator.js';
import { networkUlaPrefix, nodeIpv6 } from './ip-pool.js';
import type { JoinRequest, JoinResult } from './join.js';

interface Ctx { after(fn: () => void): void }

function setup(t: Ctx, opts: { pool?: string } = {}): { coord: Coordinator; clock: ManualClock; dir: string; selfKey: string } {
  const dir = mkdtempSync(join(tmpdir(), 'meshtun-coord-'));
  const clock = new ManualClock();
  const coord = Coordinator.open(dir, { clock });
  t.after(() => {
    coord.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const selfKey = newKey();
  coord.createNetwork({ name: 'home', ipv4Pool: opts.pool, self: { publicKey: selfKey } });
  return { coord, clock, dir, selfKey };
}

function newKey(): string {
  return encodeBase64Key(publicKey(generatePrivateKey()));
}

function joined(r: JoinResult): Extract<JoinResult, { ok: true }> {
  if (!r.ok) assert.fail(`join refused: ${r.reason}: ${r.message}`);
  return r;
}

function refused(r: JoinResult): Extract<JoinResult, { ok: false }> {
  if (r.ok) assert.fail(`join was admitted as ${r.node.name}`);
  return r;
}

function req(token: string, over: Partial<JoinRequest> = {}): JoinRequest {
  return { publicKey: newKey(), token, hostname: 'laptop.lan', sourceAddress: '198.18.0.10:40000', ...over };
}

test('a new network: pool, ULA from the id, the coordinator node at the first address', (t) => {
  const { coord, selfKey } = setup(t);
  const net = coord.network();
  assert.equal(net.name, 'home');
  assert.equal(net.ipv4Pool, '100.64.0.0/10');
  assert.match(net.id, /^net_/);
  assert.equal(net.ulaPrefix, `${formatIpv6Address(networkUlaPrefix(net.id), 0).replace(/::$/, '')}::/48`);
  assert.equal(net.version, 1);
  const [self] = coord.nodes();
  assert.deepEqual([self!.name, self!.ipv4, self!.publicKey, self!.tokenId], ['coordinator', '100.64.0.1', selfKey, null]);
  assert.equal(coord.network('home').id, net.id);
  assert.equal(coord.network(net.id).name, 'home');
  assert.deepEqual(coord.events().map((e) => e.kind), ['node.joined', 'network.created']);
  assert.throws(() => coord.createNetwork({ name: 'home' }), /a network named "home" already exists/);
  // A LAN discovery key of its own, sent in every map.
  assert.equal(net.discoveryKey.length, 32);
  assert.equal(coord.networkMap(selfKey).network.discoveryKey, net.discoveryKey.toString('base64'));
  assert.throws(() => coord.createNetwork({ name: 'mesh' }), /reserved/);
  assert.throws(() => coord.createNetwork({ name: 'lab', ipv4Pool: '10.0.0.0/33' }), UserError);
  assert.throws(() => coord.network('nope'), /no network "nope"/);
  const lab = coord.createNetwork({ name: 'lab', ipv4Pool: '10.77.0.0/16' });
  assert.equal(lab.discoveryKey.length, 32);
  assert.ok(!lab.discoveryKey.equals(net.discoveryKey), 'each network has its own discovery key');
  assert.throws(() => coord.network(), /there are 2 networks \(home, lab\): say which one/);
});

test('join with a token: addresses, name from the host name, tags, the network map, a change announced', (t) => {
  const { coord, selfKey } = setup(t);
  const changes: Array<[string, number]> = [];
  coord.onChange((id, v) => changes.push([id, v]));
  const tok = coord.createToken(undefined, { tags: ['Web', 'ops'] });
  assert.match(tok.token, /^mtj1_/);
  assert.equal(tok.state, 'valid');
  const key = newKey();
  const r = joined(coord.join(req(tok.token, { publicKey: key, endpoints: ['198.18.0.10:51820'] })));
  const net = coord.network();
  assert.equal(r.rejoined, false);
  assert.equal(r.node.name, 'laptop');
  assert.deepEqual(r.node.tags, ['ops', 'web']);
  assert.match(r.node.ipv4, /^100\.(6[4-9]|[7-9]\d|1[01]\d|12[0-7])\.\d+\.\d+$/);
  assert.notEqual(r.node.ipv4, '100.64.0.1');
  assert.equal(r.node.ipv6, formatIpv6Address(nodeIpv6(networkUlaPrefix(net.id), Buffer.from(key, 'base64')), 0));
  assert.equal(r.map.version, 2);
  assert.equal(r.map.self.publicKey, key);
  assert.deepEqual(r.map.self.allowedIps, [`${r.node.ipv4}/32`, `${r.node.ipv6}/128`]);
  assert.deepEqual(r.map.peers.map((p) => [p.name, p.publicKey, p.ipv4]), [['coordinator', selfKey, '100.64.0.1']]);
  assert.deepEqual(changes, [[net.id, 2]]);
  // The coordinator's map now lists the new node.
  const cmap = coord.networkMap(selfKey);
  assert.deepEqual(cmap.peers.map((p) => [p.name, p.endpoints]), [['laptop', ['198.18.0.10:51820']]]);
  assert.equal(coord.authenticate(key)!.id, r.node.id);
  // The token was single-use.
  const again = refused(coord.join(req(tok.token)));
  assert.equal(again.reason, 'token-used');
  assert.match(again.message, /already used \(it is single-use\).*--reusable/);
  assert.equal(coord.tokens()[0]!.state, 'used');
  assert.equal('secretHash' in coord.tokens()[0]!, false);
});

test('names: unique per network with -2, -3; a requested name that is taken or invalid is refused', (t) => {
  const { coord } = setup(t);
  const tok = coord.createToken(undefined, { reusable: true }).token;
  const names = [1, 2, 3].map(() => joined(coord.join(req(tok, { hostname: 'Laptop' }))).node.name);
  assert.deepEqual(names, ['laptop', 'laptop-2', 'laptop-3']);
  assert.equal(joined(coord.join(req(tok, { name: 'DB', hostname: 'x' }))).node.name, 'db');
  const taken = refused(coord.join(req(tok, { name: 'db' })));
  assert.equal(taken.reason, 'name-taken');
  assert.match(taken.message, /the name "db" is taken by another node in network "home"/);
  const bad = refused(coord.join(req(tok, { name: 'my_box' })));
  assert.equal(bad.reason, 'invalid-request');
  assert.match(bad.message, /invalid node name "my_box": "_" is not allowed/);
  assert.equal(joined(coord.join(req(tok, { hostname: null }))).node.name, 'node');
  assert.equal(coord.tokens()[0]!.uses, 5);
});

test('expired, revoked, typo and malformed tokens are refused with their own reasons', (t) => {
  const { coord, clock } = setup(t);
  const short = coord.createToken(undefined, { expiresIn: '1h', reusable: true });
  assert.equal(short.expires, clock.wallNow() + 3600_000);
  clock.advance(3600_000);
  const exp = refused(coord.join(req(short.token)));
  assert.equal(exp.reason, 'token-expired');
  assert.match(exp.message, /expired at 20\d\d-.*Z; ask for a new one/);
  const rev = coord.createToken(undefined, { expiresIn: 'never' });
  assert.equal(rev.expires, null);
  assert.equal(coord.revokeToken(rev.token).state, 'revoked');
  assert.equal(refused(coord.join(req(rev.token))).reason, 'token-revoked');
  const good = coord.createToken(undefined).token;
  const typo = refused(coord.join(req(good.slice(0, 12) + (good[12] === 'a' ? 'b' : 'a') + good.slice(13))));
  assert.equal(typo.reason, 'token-typo');
  assert.match(typo.message, /has a typo/);
  const mal = refused(coord.join(req('password123')));
  assert.equal(mal.reason, 'malformed-token');
  assert.throws(() => coord.createToken(undefined, { expiresIn: '5 days' }), /invalid expiry "5 days"/);
  assert.throws(() => coord.createToken(undefined, { tags: ['no spaces'] }), /invalid tag "no spaces"/);
  assert.throws(() => coord.revokeToken('zzzzzzzz'), /no token with id "zzzzzzzz"/);
  // The good token is still usable: none of that used it up.
  assert.equal(joined(coord.join(req(good))).node.name, 'laptop');
});

test('50 wrong tokens from one address are slowed and refused with a retry-after; another address joins meanwhile; a typo is a typo', (t) => {
  const { coord, clock } = setup(t);
  const attacker = '198.18.0.66:5555';
  const fake = () => {
    // Well-formed tokens (checksums right) that this coordinator never made.
    const other = mkdtempSync(join(tmpdir(), 'meshtun-coord-other-'));
    const c2 = Coordinator.open(other, { clock });
    c2.createNetwork({ name: 'other' });
    const toks = Array.from({ length: 50 }, () => c2.createToken(undefined).token);
    c2.close();
    rmSync(other, { recursive: true, force: true });
    return toks;
  };
  const guesses = fake();
  const results = guesses.map((g) => {
    const r = refused(coord.join(req(g, { sourceAddress: attacker })));
    clock.advance(20);
    return r;
  });
  assert.deepEqual(results.slice(0, 3).map((r) => [r.reason, r.retryAfterMs]), [['unknown-token', 0], ['unknown-token', 0], ['unknown-token', 0]]);
  assert.equal(results[3]!.reason, 'unknown-token');
  assert.ok(results[3]!.retryAfterMs > 0);
  assert.match(results[3]!.message, /wait 1 s before trying again/);
  for (const r of results.slice(4)) assert.equal(r.reason, 'rate-limited');
  const waits = results.slice(3).map((r) => r.retryAfterMs);
  assert.ok(waits.at(-1)! > 10 * 60_000, `final retry-after ${waits.at(-1)}`);
  assert.ok(waits.at(-1)! > waits[0]!);
  assert.match(results.at(-1)!.message, /too many failed join attempts from 198\.18\.0\.66:5555; try again in 15 min/);
  // Meanwhile, from another address: a typo first (reported as a typo), then the right token.
  const tok = coord.createToken(undefined).token;
  const typo = refused(coord.join(req(tok.slice(0, -1), { sourceAddress: '198.18.0.7' })));
  assert.equal(typo.reason, 'token-typo');
  assert.equal(typo.retryAfterMs, 0);
  assert.equal(coord.limiter.score('198.18.0.7'), 0.25);
  joined(coord.join(req(tok, { sourceAddress: '198.18.0.7' })));
  // The attacker is still locked out, even with a valid token (it would be refused unchecked).
  const tok2 = coord.createToken(undefined).token;
  assert.equal(refused(coord.join(req(tok2, { sourceAddress: attacker }))).reason, 'rate-limited');
  assert.equal(coord.events().filter((e) => e.kind === 'auth.failed').length, 4);
});

test('re-joining keeps the node, its address and name; a removed node is cut off and may come back', (t) => {
  const { coord, selfKey } = setup(t);
  const tok = coord.createToken(undefined, { reusable: true }).token;
  const key = newKey();
  const first = joined(coord.join(req(tok, { publicKey: key, hostname: 'nas' })));
  const again = joined(coord.join(req(tok, { publicKey: key, hostname: 'other-name' })));
  assert.equal(again.rejoined, true);
  assert.deepEqual([again.node.id, again.node.ipv4, again.node.name], [first.node.id, first.node.ipv4, 'nas']);
  const v = coord.version();
  const removed = coord.removeNode(undefined, 'nas');
  assert.equal(removed.removed, true);
  assert.equal(coord.version(), v + 1);
  assert.equal(coord.authenticate(key), undefined);
  assert.deepEqual(coord.networkMap(selfKey).peers, []);
  assert.throws(() => coord.networkMap(key), /no such live node/);
  assert.throws(() => coord.removeNode(undefined, 'nas'), /no node "nas" in network "home"/);
  assert.throws(() => coord.removeNode(undefined, 'coordinator'), /coordinator's own node and cannot be removed/);
  assert.deepEqual(coord.nodes(undefined, { includeRemoved: true }).map((n) => [n.name, n.removed]), [['coordinator', false], ['nas', true]]);
  // Back with a token: same row, same address (still free).
  const back = joined(coord.join(req(tok, { publicKey: key })));
  assert.deepEqual([back.rejoined, back.node.id, back.node.ipv4, back.node.name], [true, first.node.id, first.node.ipv4, 'nas']);
  // Found by id, key and address too.
  assert.equal(coord.node(undefined, first.node.id).name, 'nas');
  assert.equal(coord.node(undefined, key).name, 'nas');
  assert.equal(coord.node(undefined, first.node.ipv4).name, 'nas');
});

test('routes: advertised at join, effective once approved; exit routes mark an exit node', (t) => {
  const { coord, selfKey } = setup(t);
  const tok = coord.createToken(undefined, { reusable: true }).token;
  const r = joined(coord.join(req(tok, { hostname: 'gw', advertisedRoutes: ['192.0.2.0/24', '0.0.0.0/0', '2001:db8::/32'] })));
  assert.deepEqual(r.node.advertisedRoutes, ['0.0.0.0/0', '192.0.2.0/24', '2001:db8::/32']);
  const peer = () => coord.networkMap(selfKey).peers.find((p) => p.name === 'gw')!;
  assert.deepEqual([peer().routes, peer().exitNode], [[], false]);
  coord.approveRoutes(undefined, 'gw', ['192.0.2.0/24']);
  assert.deepEqual(peer().routes, ['192.0.2.0/24']);
  assert.ok(peer().allowedIps.includes('192.0.2.0/24'));
  coord.approveRoutes(undefined, 'gw', 'all');
  assert.deepEqual([peer().routes, peer().exitNode], [['192.0.2.0/24', '2001:db8::/32'], true]);
  assert.ok(!peer().allowedIps.includes('0.0.0.0/0'));
  assert.throws(() => coord.approveRoutes(undefined, 'gw', ['198.51.100.0/24']), /node "gw" does not advertise 198.51.100.0\/24/);
  assert.throws(() => coord.approveRoutes(undefined, 'gw', ['192.0.2.1/24']), /host bits are set/);
  coord.unapproveRoutes(undefined, 'gw', ['0.0.0.0/0']);
  assert.equal(peer().exitNode, false);
  // Withdrawn by the node: no longer effective though still approved.
  coord.reportNodeState(r.node.publicKey, { advertisedRoutes: ['2001:db8::/32'] });
  assert.deepEqual(peer().routes, ['2001:db8::/32']);
  const overlap = refused(coord.join(req(tok, { advertisedRoutes: ['100.64.0.0/16'] })));
  assert.equal(overlap.reason, 'invalid-request');
  assert.match(overlap.message, /overlaps the network's own addresses 100.64.0.0\/10/);
});

test('reported endpoints bump the version only when they change; bad ones are refused', (t) => {
  const { coord } = setup(t);
  const changes: number[] = [];
  coord.onChange((_id, v) => changes.push(v));
  const r = joined(coord.join(req(coord.createToken(undefined).token)));
  const v = coord.version();
  coord.reportNodeState(r.node.publicKey, { endpoints: ['198.18.0.10:51820', '[2001:DB8::1]:51820'] });
  assert.equal(coord.version(), v + 1);
  assert.deepEqual(coord.networkMap(r.node.publicKey).self.endpoints, ['198.18.0.10:51820', '[2001:db8::1]:51820']);
  coord.reportNodeState(r.node.publicKey, { endpoints: ['198.18.0.10:51820', '[2001:db8::1]:51820'] });
  coord.touch(r.node.publicKey);
  assert.equal(coord.version(), v + 1);
  assert.deepEqual(changes, [v, v + 1]);
  assert.throws(() => coord.reportNodeState(r.node.publicKey, { endpoints: ['example.com:1'] }), /invalid endpoint "example.com:1"/);
  assert.throws(() => coord.reportNodeState(newKey(), {}), /not a member/);
});

test('a reported NAT type is kept (across a reopen) and in the map; a change bumps the version', (t) => {
  const { coord, dir } = setup(t);
  const r = joined(coord.join(req(coord.createToken(undefined).token)));
  assert.equal(coord.networkMap(r.node.publicKey).self.nat, 'unknown');
  const v = coord.version();
  coord.reportNodeState(r.node.publicKey, { nat: 'endpoint-independent' });
  assert.equal(coord.version(), v + 1);
  coord.reportNodeState(r.node.publicKey, { nat: 'endpoint-independent', endpoints: [] });
  coord.reportNodeState(r.node.publicKey, { endpoints: [] });
  assert.equal(coord.version(), v + 1, 'unchanged, or not reported: no new version');
  assert.throws(() => coord.reportNodeState(r.node.publicKey, { nat: 'symmetric' as 'none' }), /invalid nat "symmetric"/);
  coord.close();
  const again = Coordinator.open(dir);
  t.after(() => again.close());
  assert.equal(again.node(undefined, r.node.name).nat, 'endpoint-independent');
  assert.equal(again.networkMap(r.node.publicKey).self.nat, 'endpoint-independent');
});

test('a small pool runs out with a clear refusal', (t) => {
  const { coord } = setup(t, { pool: '10.99.0.0/30' });
  const tok = coord.createToken(undefined, { reusable: true }).token;
  assert.equal(joined(coord.join(req(tok))).node.ipv4, '10.99.0.2');
  const full = refused(coord.join(req(tok)));
  assert.equal(full.reason, 'pool-full');
  assert.match(full.message, /10.99.0.0\/30 is full \(2 addresses, all in use\)/);
});

test('a key may be in one network only', (t) => {
  const { coord } = setup(t);
  coord.createNetwork({ name: 'lab', ipv4Pool: '10.50.0.0/16' });
  const key = newKey();
  joined(coord.join(req(coord.createToken('home').token, { publicKey: key })));
  const r = refused(coord.join(req(coord.createToken('lab').token, { publicKey: key })));
  assert.equal(r.reason, 'key-in-use');
  coord.removeNode('home', key);
  const moved = joined(coord.join(req(coord.createToken('lab').token, { publicKey: key })));
  assert.match(moved.node.ipv4, /^10\.50\./);
  assert.equal(moved.map.network.name, 'lab');
});

test('join never throws on garbage from the network', (t) => {
  const { coord } = setup(t);
  const tok = coord.createToken(undefined, { reusable: true }).token;
  const junk: unknown[] = [
    {}, { token: 5 }, { token: tok, publicKey: 5, sourceAddress: '1.2.3.4' }, { token: tok, publicKey: 'abc', sourceAddress: '1.2.3.4' },
    { token: tok, publicKey: new Uint8Array(31), sourceAddress: '1.2.3.4' }, { token: tok, publicKey: newKey(), sourceAddress: 7, endpoints: 'x' },
    { token: tok, publicKey: newKey(), sourceAddress: '::1', advertisedRoutes: [null] }, { token: tok, publicKey: newKey(), name: 42 },
    { token: tok, publicKey: newKey(), name: {}, sourceAddress: null },
  ];
  for (const j of junk) {
    const r = coord.join(j as JoinRequest);
    assert.equal(typeof r.ok, 'boolean');
    if (!r.ok) assert.equal(typeof r.message, 'string');
  }
});

test('state survives a restart of the coordinator', (t) => {
  const { coord, dir, clock } = setup(t);
  const tok = coord.createToken(undefined, { reusable: true, tags: ['web'] });
  const r = joined(coord.join(req(tok.token, { hostname: 'web1' })));
  const version = coord.version();
  coord.close();
  const reopened = Coordinator.open(dir, { clock });
  t.after(() => reopened.close());
  assert.equal(reopened.version(), version);
  assert.deepEqual(reopened.node(undefined, 'web1'), r.node);
  assert.equal(reopened.tokens()[0]!.uses, 1);
  const r2 = joined(reopened.join(req(tok.token, { hostname: 'web1' })));
  assert.equal(r2.node.name, 'web1-2');
});

test('reported paths: a node others fail to reach gets a relay in their maps, with one version bump', (t) => {
  const { coord, selfKey } = setup(t);
  const tok = coord.createToken(undefined, { reusable: true }).token;
  const b = joined(coord.join(req(tok))).node;
  const d = joined(coord.join(req(tok))).node;
  const self = coord.networkMap(selfKey).self;
  const v = coord.version();
  coord.reportNodeState(b.publicKey, { paths: { [self.id]: 'direct', [d.id]: 'direct' } });
  assert.equal(coord.version(), v, 'only direct paths: no relay, no new map');
  coord.reportNodeState(selfKey, { paths: { [b.id]: 'direct', [d.id]: 'failed' } });
  assert.equal(coord.version(), v + 1);
  assert.equal(coord.networkMap(selfKey).peers.find((p) => p.id === d.id)!.via, b.id);
  assert.equal(coord.networkMap(d.publicKey).peers.find((p) => p.id === self.id)!.via, b.id);
  assert.equal(coord.networkMap(b.publicKey).peers.every((p) => p.via === undefined), true);
  coord.reportNodeState(selfKey, { paths: { [b.id]: 'direct', [d.id]: 'failed' } });
  assert.equal(coord.version(), v + 1, 'the same report again: nothing new');
  // The direct path comes back: the relay goes.
  coord.reportNodeState(d.publicKey, { paths: { [self.id]: 'direct' } });
  assert.equal(coord.version(), v + 2);
  assert.equal(coord.networkMap(selfKey).peers.find((p) => p.id === d.id)!.via, undefined);
  // Removing the relay node forgets its reports.
  coord.reportNodeState(d.publicKey, { paths: { [self.id]: 'failed', [b.id]: 'direct' } });
  assert.equal(coord.networkMap(selfKey).peers.find((p) => p.id === d.id)!.via, b.id);
  coord.removeNode(undefined, b.name);
  assert.equal(coord.networkMap(selfKey).peers.find((p) => p.id === d.id)!.via, undefined);
});
