import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync, existsSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { UserError } from '../util/index.js';
import { Store, STORE_FILE_NAME, MAX_EVENTS, type NodeRecord, type TokenRecord } from './store.js';
import { MIGRATIONS, migrate } from './schema.js';

function tempDir(t: { after(fn: () => void): void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'meshtun-store-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

const NET = { id: 'net_a', name: 'home', ipv4Pool: '100.64.0.0/10', ulaPrefix: 'fd12:3456:789a::/48', created: 1000, version: 0, discoveryKey: Buffer.alloc(32, 9) };

function node(over: Partial<NodeRecord> = {}): NodeRecord {
  return {
    id: 'node_1', networkId: 'net_a', name: 'web', publicKey: 'K'.repeat(43) + '=', ipv4: '100.64.0.2', ipv6: 'fd12:3456:789a::2',
    tags: ['web'], endpoints: ['198.18.0.2:51820'], advertisedRoutes: [], approvedRoutes: [], tokenId: 'tok1', created: 2000,
    lastSeen: null, removed: false, removedAt: null, nat: 'unknown', ...over,
  };
}

function token(over: Partial<TokenRecord> = {}): TokenRecord {
  return {
    id: 'abcd1234', secretHash: Buffer.alloc(32, 7), networkId: 'net_a', reusable: false, expires: null, tags: [], uses: 0,
    created: 3000, revoked: false, revokedAt: null, ...over,
  };
}

test('the store lives in <stateDir>/coordinator.db and keeps its data across reopening', (t) => {
  const dir = join(tempDir(t), 'state', 'nested');
  const s = Store.open(dir);
  assert.equal(s.path, join(dir, STORE_FILE_NAME));
  assert.equal(s.schemaVersion, MIGRATIONS.at(-1)!.version);
  s.insertNetwork(NET);
  s.insertNode(node());
  s.insertToken(token());
  s.close();
  assert.ok(existsSync(join(dir, STORE_FILE_NAME)));
  assert.equal(statSync(dir).mode & 0o777, 0o700);
  const again = Store.open(dir);
  t.after(() => again.close());
  assert.deepEqual(again.network('net_a'), NET);
  assert.deepEqual(again.networkByName('home'), NET);
  assert.deepEqual(again.nodeByKey(node().publicKey), node());
  assert.deepEqual(again.token('abcd1234'), token());
  assert.deepEqual(again.networks(), [NET]);
});

test('networks: version counter and a clear error for a duplicate name', (t) => {
  const s = Store.open(tempDir(t));
  t.after(() => s.close());
  s.insertNetwork(NET);
  assert.equal(s.bumpNetworkVersion('net_a'), 1);
  assert.equal(s.bumpNetworkVersion('net_a'), 2);
  assert.equal(s.network('net_a')!.version, 2);
  assert.throws(() => s.insertNetwork({ ...NET, id: 'net_b' }), (e: unknown) => e instanceof UserError && e.message === 'a network named "home" already exists');
  assert.throws(() => s.bumpNetworkVersion('net_x'), /no network with id net_x/);
});

test('nodes: names, addresses and keys are unique among live nodes only', (t) => {
  const s = Store.open(tempDir(t));
  t.after(() => s.close());
  s.insertNetwork(NET);
  s.insertNode(node());
  const clash = (over: Partial<NodeRecord>, re: RegExp): void => {
    assert.throws(() => s.insertNode(node({ id: 'node_2', publicKey: 'L'.repeat(43) + '=', name: 'db', ipv4: '100.64.0.3', ...over })),
      (e: unknown) => e instanceof UserError && re.test(e.message));
  };
  clash({ name: 'web' }, /a node named "web" already exists in this network/);
  clash({ ipv4: '100.64.0.2' }, /the address 100.64.0.2 is already in use/);
  clash({ publicKey: node().publicKey }, /already belongs to a node/);
  assert.equal(s.nodeByName('net_a', 'web')!.id, 'node_1');
  assert.equal(s.nodeByIpv4('net_a', '100.64.0.2')!.id, 'node_1');
  assert.equal(s.liveNodeCount('net_a'), 1);
  // Removing frees the name and the address; the row stays.
  s.updateNode({ ...node(), removed: true, removedAt: 5000 });
  assert.equal(s.nodeByName('net_a', 'web'), undefined);
  assert.equal(s.nodeByIpv4('net_a', '100.64.0.2'), undefined);
  s.insertNode(node({ id: 'node_2', publicKey: 'L'.repeat(43) + '=' }));
  assert.deepEqual(s.nodes('net_a').map((n) => n.id), ['node_2']);
  assert.deepEqual(s.nodes('net_a', { includeRemoved: true }).map((n) => n.id), ['node_2', 'node_1']);
  assert.equal(s.node('node_1')!.removed, true);
  assert.equal(s.liveNodeCount('net_a'), 1);
  // Un-removing the old node while its name is taken is refused.
  assert.throws(() => s.updateNode({ ...node(), removed: false }), /a node named "web" already exists|the address 100.64.0.2 is already in use/);
  assert.throws(() => s.updateNode(node({ id: 'node_9', publicKey: 'M'.repeat(43) + '=', name: 'x', ipv4: '100.64.0.9' })), /no node with id node_9/);
  // A node must belong to a network.
  assert.throws(() => s.insertNode(node({ id: 'node_3', networkId: 'net_zz', publicKey: 'N'.repeat(43) + '=', name: 'q', ipv4: '1.1.1.1' })), /FOREIGN KEY/);
});

test('tokens: only the hash is stored; uses and revocation', (t) => {
  const dir = tempDir(t);
  const s = Store.open(dir);
  t.after(() => s.close());
  s.insertNetwork(NET);
  s.insertToken(token({ tags: ['ops', 'web'], expires: 9999, reusable: true }));
  s.useToken('abcd1234');
  s.useToken('abcd1234');
  assert.equal(s.token('abcd1234')!.uses, 2);
  assert.equal(s.revokeToken('abcd1234', 7000), true);
  assert.equal(s.revokeToken('abcd1234', 8000), false);
  const got = s.token('abcd1234')!;
  assert.deepEqual([got.revoked, got.revokedAt, got.tags, got.reusable, got.expires], [true, 7000, ['ops', 'web'], true, 9999]);
  assert.deepEqual(s.tokens('net_a').map((x) => x.id), ['abcd1234']);
  assert.throws(() => s.insertToken(token()), /a token with id abcd1234 already exists/);
  const db = new Database(join(dir, STORE_FILE_NAME), { readonly: true });
  t.after(() => db.close());
  const cols = (db.prepare('PRAGMA table_info(tokens)').all() as Array<{ name: string }>).map((c) => c.name);
  assert.deepEqual(cols.filter((c) => c.includes('secret')), ['secret_hash']);
});

test('write() groups changes and rolls all of them back when it throws', (t) => {
  const s = Store.open(tempDir(t));
  t.after(() => s.close());
  s.insertNetwork(NET);
  assert.throws(() => s.write(() => {
    s.insertNode(node());
    s.bumpNetworkVersion('net_a');
    throw new Error('boom');
  }), /boom/);
  assert.equal(s.node('node_1'), undefined);
  assert.equal(s.network('net_a')!.version, 0);
  const v = s.write(() => {
    s.insertNode(node());
    return s.bumpNetworkVersion('net_a');
  });
  assert.equal(v, 1);
  assert.ok(s.node('node_1'));
});

test('event log: newest first, per network, after an id, trimmed', (t) => {
  const s = Store.open(tempDir(t));
  t.after(() => s.close());
  s.insertNetwork(NET);
  const first = s.addEvent({ time: 1, networkId: 'net_a', nodeId: null, kind: 'network.created', detail: { name: 'home' } });
  s.addEvent({ time: 2, networkId: null, nodeId: null, kind: 'other', detail: {} });
  s.addEvent({ time: 3, networkId: 'net_a', nodeId: 'node_1', kind: 'node.joined', detail: { ipv4: '100.64.0.2' } });
  assert.deepEqual(s.events({ networkId: 'net_a' }).map((e) => e.kind), ['node.joined', 'network.created']);
  assert.deepEqual(s.events({ networkId: 'net_a', includeGlobal: true }).map((e) => e.kind), ['node.joined', 'other', 'network.created']);
  assert.deepEqual(s.events().map((e) => e.time), [3, 2, 1]);
  assert.deepEqual(s.events({ afterId: first, limit: 1 }).map((e) => e.time), [3]);
  assert.deepEqual(s.events({ networkId: 'net_a' })[1]!.detail, { name: 'home' });
  s.write(() => {
    for (let i = 0; i < MAX_EVENTS + 200; i++) s.addEvent({ time: 10 + i, networkId: null, nodeId: null, kind: 'x', detail: {} });
  });
  const all = s.events({ limit: MAX_EVENTS * 2 });
  assert.ok(all.length <= MAX_EVENTS + 100, String(all.length));
  assert.equal(all[0]!.time, 10 + MAX_EVENTS + 199);
});

test('migrations: a newer database is refused, a later migration is applied to an old one', (t) => {
  const dir = tempDir(t);
  Store.open(dir).close();
  const latest = MIGRATIONS[MIGRATIONS.length - 1]!.version;
  const next = [...MIGRATIONS, { version: latest + 1, description: 'test column', sql: 'ALTER TABLE networks ADD COLUMN note TEXT' }];
  const s2 = Store.open(dir, { migrations: next });
  assert.equal(s2.schemaVersion, latest + 1);
  s2.close();
  const again = Store.open(dir, { migrations: next });
  assert.equal(again.schemaVersion, latest + 1);
  again.close();
  assert.throws(() => Store.open(dir), (e: unknown) => e instanceof UserError
    && new RegExp(`schema version ${latest + 1}, newer than this meshtun understands \\(${latest}\\)`).test(e.message) && /upgrade meshtun/.test(e.hint ?? ''));
});

test('a damaged file or an unusable directory is a UserError', (t) => {
  const dir = tempDir(t);
  writeFileSync(join(dir, STORE_FILE_NAME), 'this is not a database, just some text that is long enough '.repeat(40));
  assert.throws(() => Store.open(dir), (e: unknown) => e instanceof UserError && /coordinator store .*coordinator\.db/.test(e.message));
  const file = join(dir, 'plain-file');
  writeFileSync(file, 'x');
  assert.throws(() => Store.open(join(file, 'sub')), (e: unknown) => e instanceof UserError && /cannot create the state directory/.test(e.message));
});

test('migration 4: nodes stored before it read as nat "unknown"; a reported NAT type is kept', (t) => {
  const dir = tempDir(t);
  const file = join(dir, STORE_FILE_NAME);
  const old = new Database(file);
  const before = MIGRATIONS.filter((m) => m.version < 4);
  for (const m of before) old.exec(m.sql);
  old.exec('CREATE TABLE schema_version (version INTEGER NOT NULL) STRICT');
  old.prepare('INSERT INTO schema_version (version) VALUES (?)').run(before.at(-1)!.version);
  old.prepare("INSERT INTO networks (id, name, ipv4_pool, ula_prefix, created) VALUES ('net_a', 'home', '100.64.0.0/10', 'fd12:3456:789a::/48', 1)").run();
  old.prepare("INSERT INTO nodes (id, network_id, name, public_key, ipv4, ipv6, created) VALUES ('node_1', 'net_a', 'web', 'k', '100.64.0.2', 'fd12:3456:789a::2', 1)").run();
  old.close();
  const s = Store.open(dir);
  assert.equal(s.node('node_1')!.nat, 'unknown');
  s.updateNode({ ...s.node('node_1')!, nat: 'endpoint-dependent' });
  s.close();
  const again = Store.open(dir);
  t.after(() => again.close());
  assert.equal(again.node('node_1')!.nat, 'endpoint-dependent');
});

test('migration 5: networks made before it get a discovery key of their own, new ones get one at creation', (t) => {
  const dir = tempDir(t);
  const file = join(dir, STORE_FILE_NAME);
  const old = new Database(file);
  migrate(old, file, MIGRATIONS.filter((m) => m.version < 5));
  const insert = old.prepare('INSERT INTO networks (id, name, ipv4_pool, ula_prefix, created, version) VALUES (?, ?, ?, ?, ?, ?)');
  insert.run('net_a', 'home', '100.64.0.0/10', 'fd12:3456:789a::/48', 1000, 4);
  insert.run('net_b', 'work', '100.64.0.0/10', 'fd12:3456:789b::/48', 1000, 2);
  old.close();
  const s = Store.open(dir);
  t.after(() => s.close());
  assert.equal(s.schemaVersion, MIGRATIONS.at(-1)!.version);
  const [a, b] = [s.network('net_a')!, s.network('net_b')!];
  assert.equal(a.discoveryKey.length, 32);
  assert.equal(b.discoveryKey.length, 32);
  assert.ok(!a.discoveryKey.equals(b.discoveryKey), 'each network has its own key');
  assert.ok(!a.discoveryKey.equals(Buffer.alloc(32)), 'not all zero');
  assert.equal(a.version, 4, 'the rest of the row is kept');
  s.insertNetwork({ ...NET, id: 'net_c', name: 'lab' });
  assert.deepEqual(s.network('net_c')!.discoveryKey, NET.discoveryKey);
});
