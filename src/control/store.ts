// The coordinator's embedded store: one SQLite file, `<stateDir>/coordinator.db` (better-sqlite3,
// synchronous; WAL journal so readers do not block the writer). Typed records in and out; the
// schema and its migrations are in schema.ts. Every write runs in a transaction (IMMEDIATE, so
// two coordinator processes on one file serialize instead of failing mid-way); callers group
// several writes with `write(fn)`. The store checks nothing about meaning (the coordinator does),
// but a uniqueness violation still surfaces as a UserError naming what clashed.
import Database from 'better-sqlite3';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { Logger, UserError, mkdirPrivate, withPrivateUmask } from '../util/index.js';
import { migrate, MIGRATIONS, type Migration } from './schema.js';
import { NAT_TYPES, type NatType } from '../mesh/index.js';

export const STORE_FILE_NAME = 'coordinator.db';
/** How long a writer waits for another process's transaction before giving up. */
const BUSY_TIMEOUT_MS = 5000;
/** The event log keeps at most this many rows (older ones are trimmed). */
export const MAX_EVENTS = 10_000;
const TRIM_EVERY = 100;

export interface NetworkRecord {
  id: string;
  name: string;
  /** "100.64.0.0/10" */
  ipv4Pool: string;
  /** "fdxx:xxxx:xxxx::/48" */
  ulaPrefix: string;
  created: number;
  /** Bumped by every change that alters a network map. */
  version: number;
  /** 32 random bytes, made with the network: members key their LAN beacons with it (sent in
   * every map as `network.discoveryKey`). */
  discoveryKey: Buffer;
}

export interface NodeRecord {
  id: string;
  networkId: string;
  name: string;
  /** Base64, as wg(8) prints it. */
  publicKey: string;
  ipv4: string;
  ipv6: string;
  tags: string[];
  /** "198.18.0.5:51820" or "[2001:db8::5]:51820" */
  endpoints: string[];
  advertisedRoutes: string[];
  approvedRoutes: string[];
  /** The token the node last joined with (null for the coordinator's own node). */
  tokenId: string | null;
  created: number;
  lastSeen: number | null;
  removed: boolean;
  removedAt: number | null;
  /** What the node last reported about its NAT (STUN); "unknown" until it does. */
  nat: NatType;
}

export interface TokenRecord {
  id: string;
  /** SHA-256 of the secret (tokens.ts); the secret itself is never stored. */
  secretHash: Buffer;
  networkId: string;
  reusable: boolean;
  /** Null: never expires. */
  expires: number | null;
  tags: string[];
  uses: number;
  created: number;
  revoked: boolean;
  revokedAt: number | null;
}

export interface EventRecord {
  id: number;
  time: number;
  networkId: string | null;
  nodeId: string | null;
  kind: string;
  detail: Record<string, unknown>;
}

interface NetworkRow { id: string; name: string; ipv4_pool: string; ula_prefix: string; created: number; version: number; discovery_key: Buffer }
interface NodeRow {
  id: string; network_id: string; name: string; public_key: string; ipv4: string; ipv6: string; tags: string;
  endpoints: string; advertised_routes: string; approved_routes: string; token_id: string | null; created: number;
  last_seen: number | null; removed: number; removed_at: number | null; nat: string;
}
interface TokenRow {
  id: string; secret_hash: Buffer; network_id: string; reusable: number; expires: number | null; tags: string;
  uses: number; created: number; revoked: number; revoked_at: number | null;
}
/** A network's ACL policy text (mesh/acl format) and its own version (bumped by each change). */
export interface PolicyRecord {
  networkId: string;
  text: string;
  version: number;
  updated: number;
}

interface PolicyRow { network_id: string; text: string; version: number; updated: number }
interface EventRow { id: number; time: number; network_id: string | null; node_id: string | null; kind: string; detail: string }

export interface StoreOptions {
  /** Migrations to apply (tests); default the shipped ones. */
  migrations?: readonly Migration[];
}

function jsonList(text: string, what: string): string[] {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    v = null;
  }
  if (!Array.isArray(v) || !v.every((x) => typeof x === 'string')) {
    throw new UserError(`the coordinator store holds a bad ${what} value ${JSON.stringify(text)}: expected a JSON list of strings`);
  }
  return v;
}

function networkFromRow(r: NetworkRow): NetworkRecord {
  return { id: r.id, name: r.name, ipv4Pool: r.ipv4_pool, ulaPrefix: r.ula_prefix, created: r.created, version: r.version, discoveryKey: r.discovery_key };
}

function nodeFromRow(r: NodeRow): NodeRecord {
  return {
    id: r.id, networkId: r.network_id, name: r.name, publicKey: r.public_key, ipv4: r.ipv4, ipv6: r.ipv6,
    tags: jsonList(r.tags, 'tags'), endpoints: jsonList(r.endpoints, 'endpoints'),
    advertisedRoutes: jsonList(r.advertised_routes, 'advertised routes'), approvedRoutes: jsonList(r.approved_routes, 'approved routes'),
    tokenId: r.token_id, created: r.created, lastSeen: r.last_seen, removed: r.removed !== 0, removedAt: r.removed_at,
    nat: (NAT_TYPES as readonly string[]).includes(r.nat) ? r.nat as NatType : 'unknown',
  };
}

function nodeToRow(n: NodeRecord): NodeRow {
  return {
    id: n.id, network_id: n.networkId, name: n.name, public_key: n.publicKey, ipv4: n.ipv4, ipv6: n.ipv6,
    tags: JSON.stringify(n.tags), endpoints: JSON.stringify(n.endpoints), advertised_routes: JSON.stringify(n.advertisedRoutes),
    approved_routes: JSON.stringify(n.approvedRoutes), token_id: n.tokenId, created: n.created, last_seen: n.lastSeen,
    removed: n.removed ? 1 : 0, removed_at: n.removedAt, nat: n.nat,
  };
}

function tokenFromRow(r: TokenRow): TokenRecord {
  return {
    id: r.id, secretHash: r.secret_hash, networkId: r.network_id, reusable: r.reusable !== 0, expires: r.expires,
    tags: jsonList(r.tags, 'tags'), uses: r.uses, created: r.created, revoked: r.revoked !== 0, revokedAt: r.revoked_at,
  };
}

/** Turns a UNIQUE constraint failure into a UserError that names the clash. */
function uniqueClash(e: unknown, what: Record<string, string>): never {
  const code = (e as { code?: string }).code;
  if (code === 'SQLITE_CONSTRAINT_UNIQUE' || code === 'SQLITE_CONSTRAINT_PRIMARYKEY') {
    const msg = (e as Error).message;
    for (const [column, text] of Object.entries(what)) if (msg.includes(column)) throw new UserError(text);
  }
  throw e;
}

/** Warns when an existing store (made by an older version, or copied in) is readable by others. */
function warnIfShared(path: string): void {
  try {
    const mode = statSync(path).mode & 0o777;
    if ((mode & 0o077) !== 0) {
      new Logger('store').warn(`${path} is readable by other users (mode ${mode.toString(8)}): it holds the network's state; run chmod 600 ${path}`);
    }
  } catch { /* not there */ }
}

export class Store {
  private readonly db: Database.Database;
  readonly schemaVersion: number;
  private eventInserts = 0;
  private readonly stmt;

  /** Opens (creating when needed) `<stateDir>/coordinator.db`. */
  static open(stateDir: string, opts: StoreOptions = {}): Store {
    try {
      mkdirPrivate(stateDir);
    } catch (e) {
      throw new UserError(`cannot create the state directory ${stateDir}: ${(e as Error).message}`,
        'set MESHTUN_STATE_DIR to a directory you can write');
    }
    return new Store(join(stateDir, STORE_FILE_NAME), opts);
  }

  constructor(readonly path: string, opts: StoreOptions = {}) {
    let db: Database.Database;
    try {
      // A new database file, and its -wal and -shm files (SQLite gives them the database's mode),
      // are private from creation.
      db = withPrivateUmask(() => {
        const d = new Database(path, { timeout: BUSY_TIMEOUT_MS });
        d.pragma('journal_mode = WAL');
        return d;
      });
      warnIfShared(path);
      db.pragma('foreign_keys = ON');
      db.pragma('synchronous = NORMAL');
    } catch (e) {
      throw new UserError(`cannot open the coordinator store ${path}: ${(e as Error).message}`,
        'check the file and directory permissions; a damaged file can be moved away to start over');
    }
    this.db = db;
    try {
      this.schemaVersion = migrate(db, path, opts.migrations ?? MIGRATIONS);
    } catch (e) {
      db.close();
      if (e instanceof UserError) throw e;
      throw new UserError(`cannot read the coordinator store ${path}: ${(e as Error).message}`,
        'a damaged file can be moved away to start over');
    }
    this.stmt = {
      insertNetwork: db.prepare<[NetworkRow]>(
        'INSERT INTO networks (id, name, ipv4_pool, ula_prefix, created, version, discovery_key) VALUES (@id, @name, @ipv4_pool, @ula_prefix, @created, @version, @discovery_key)'),
      network: db.prepare<[string], NetworkRow>('SELECT * FROM networks WHERE id = ?'),
      networkByName: db.prepare<[string], NetworkRow>('SELECT * FROM networks WHERE name = ?'),
      networks: db.prepare<[], NetworkRow>('SELECT * FROM networks ORDER BY created, name'),
      bumpVersion: db.prepare<[string], { version: number }>('UPDATE networks SET version = version + 1 WHERE id = ? RETURNING version'),
      insertNode: db.prepare<[NodeRow]>(`INSERT INTO nodes (id, network_id, name, public_key, ipv4, ipv6, tags, endpoints,
        advertised_routes, approved_routes, token_id, created, last_seen, removed, removed_at, nat) VALUES (@id, @network_id, @name,
        @public_key, @ipv4, @ipv6, @tags, @endpoints, @advertised_routes, @approved_routes, @token_id, @created, @last_seen,
        @removed, @removed_at, @nat)`),
      updateNode: db.prepare<[NodeRow]>(`UPDATE nodes SET network_id = @network_id, name = @name, public_key = @public_key,
        ipv4 = @ipv4, ipv6 = @ipv6, tags = @tags, endpoints = @endpoints, advertised_routes = @advertised_routes,
        approved_routes = @approved_routes, token_id = @token_id, created = @created, last_seen = @last_seen,
        removed = @removed, removed_at = @removed_at, nat = @nat WHERE id = @id`),
      node: db.prepare<[string], NodeRow>('SELECT * FROM nodes WHERE id = ?'),
      nodeByKey: db.prepare<[string], NodeRow>('SELECT * FROM nodes WHERE public_key = ?'),
      nodeByName: db.prepare<[string, string], NodeRow>('SELECT * FROM nodes WHERE network_id = ? AND name = ? AND removed = 0'),
      nodeByIpv4: db.prepare<[string, string], NodeRow>('SELECT * FROM nodes WHERE network_id = ? AND ipv4 = ? AND removed = 0'),
      liveNodes: db.prepare<[string], NodeRow>('SELECT * FROM nodes WHERE network_id = ? AND removed = 0 ORDER BY name'),
      allNodes: db.prepare<[string], NodeRow>('SELECT * FROM nodes WHERE network_id = ? ORDER BY removed, name'),
      liveCount: db.prepare<[string], { n: number }>('SELECT count(*) AS n FROM nodes WHERE network_id = ? AND removed = 0'),
      insertToken: db.prepare<[TokenRow]>(`INSERT INTO tokens (id, secret_hash, network_id, reusable, expires, tags, uses, created,
        revoked, revoked_at) VALUES (@id, @secret_hash, @network_id, @reusable, @expires, @tags, @uses, @created, @revoked, @revoked_at)`),
      token: db.prepare<[string], TokenRow>('SELECT * FROM tokens WHERE id = ?'),
      tokens: db.prepare<[string], TokenRow>('SELECT * FROM tokens WHERE network_id = ? ORDER BY created, id'),
      useToken: db.prepare<[string]>('UPDATE tokens SET uses = uses + 1 WHERE id = ?'),
      revokeToken: db.prepare<[number, string]>('UPDATE tokens SET revoked = 1, revoked_at = ? WHERE id = ? AND revoked = 0'),
      insertEvent: db.prepare<[Omit<EventRow, 'id'>]>(
        'INSERT INTO events (time, network_id, node_id, kind, detail) VALUES (@time, @network_id, @node_id, @kind, @detail)'),
      events: db.prepare<[string | null, string | null, number, number, number], EventRow>(
        'SELECT * FROM events WHERE (? IS NULL OR network_id = ? OR (? AND network_id IS NULL)) AND id > ? ORDER BY id DESC LIMIT ?'),
      trimEvents: db.prepare<[number]>('DELETE FROM events WHERE id <= (SELECT max(id) FROM events) - ?'),
      policy: db.prepare<[string], PolicyRow>('SELECT * FROM policies WHERE network_id = ?'),
      putPolicy: db.prepare<[PolicyRow]>(`INSERT INTO policies (network_id, text, version, updated) VALUES (@network_id, @text, @version, @updated)
        ON CONFLICT (network_id) DO UPDATE SET text = excluded.text, version = excluded.version, updated = excluded.updated`),
    };
  }

  close(): void {
    if (this.db.open) this.db.close();
  }

  /** Runs `fn` in one transaction (IMMEDIATE; nested calls become savepoints of the outer one). */
  write<T>(fn: () => T): T {
    return this.db.transaction(fn).immediate();
  }

  // --- networks ---

  insertNetwork(n: NetworkRecord): void {
    this.write(() => {
      try {
        this.stmt.insertNetwork.run({
          id: n.id, name: n.name, ipv4_pool: n.ipv4Pool, ula_prefix: n.ulaPrefix, created: n.created, version: n.version, discovery_key: n.discoveryKey,
        });
      } catch (e) {
        uniqueClash(e, { 'networks.name': `a network named "${n.name}" already exists`, 'networks.id': `a network with id ${n.id} already exists` });
      }
    });
  }

  network(id: string): NetworkRecord | undefined {
    const r = this.stmt.network.get(id);
    return r && networkFromRow(r);
  }

  networkByName(name: string): NetworkRecord | undefined {
    const r = this.stmt.networkByName.get(name);
    return r && networkFromRow(r);
  }

  networks(): NetworkRecord[] {
    return this.stmt.networks.all().map(networkFromRow);
  }

  /** Increments the network's map version and returns the new value. */
  bumpNetworkVersion(id: string): number {
    return this.write(() => {
      const r = this.stmt.bumpVersion.get(id);
      if (!r) throw new UserError(`no network with id ${id}`);
      return r.version;
    });
  }

  // --- nodes ---

  private nodeClash(n: NodeRecord): Record<string, string> {
    return {
      'nodes.public_key': `the key ${n.publicKey} already belongs to a node`,
      'nodes.network_id, nodes.name': `a node named "${n.name}" already exists in this network`,
      'nodes.network_id, nodes.ipv4': `the address ${n.ipv4} is already in use in this network`,
      'nodes.id': `a node with id ${n.id} already exists`,
    };
  }

  insertNode(n: NodeRecord): void {
    this.write(() => {
      try {
        this.stmt.insertNode.run(nodeToRow(n));
      } catch (e) {
        uniqueClash(e, this.nodeClash(n));
      }
    });
  }

  /** Replaces the stored node with `n` (same id). */
  updateNode(n: NodeRecord): void {
    this.write(() => {
      let changes: number;
      try {
        changes = this.stmt.updateNode.run(nodeToRow(n)).changes;
      } catch (e) {
        uniqueClash(e, this.nodeClash(n));
      }
      if (changes === 0) throw new UserError(`no node with id ${n.id}`);
    });
  }

  node(id: string): NodeRecord | undefined {
    const r = this.stmt.node.get(id);
    return r && nodeFromRow(r);
  }

  /** The node (live or removed) with this base64 public key. */
  nodeByKey(publicKey: string): NodeRecord | undefined {
    const r = this.stmt.nodeByKey.get(publicKey);
    return r && nodeFromRow(r);
  }

  /** The live node with this name in the network. */
  nodeByName(networkId: string, name: string): NodeRecord | undefined {
    const r = this.stmt.nodeByName.get(networkId, name);
    return r && nodeFromRow(r);
  }

  /** The live node holding this IPv4 address in the network. */
  nodeByIpv4(networkId: string, ipv4: string): NodeRecord | undefined {
    const r = this.stmt.nodeByIpv4.get(networkId, ipv4);
    return r && nodeFromRow(r);
  }

  /** Nodes of a network ordered by name; removed ones (after the live ones) only when asked. */
  nodes(networkId: string, opts: { includeRemoved?: boolean } = {}): NodeRecord[] {
    return (opts.includeRemoved ? this.stmt.allNodes : this.stmt.liveNodes).all(networkId).map(nodeFromRow);
  }

  liveNodeCount(networkId: string): number {
    return this.stmt.liveCount.get(networkId)!.n;
  }

  // --- tokens ---

  insertToken(t: TokenRecord): void {
    this.write(() => {
      try {
        this.stmt.insertToken.run({
          id: t.id, secret_hash: t.secretHash, network_id: t.networkId, reusable: t.reusable ? 1 : 0, expires: t.expires,
          tags: JSON.stringify(t.tags), uses: t.uses, created: t.created, revoked: t.revoked ? 1 : 0, revoked_at: t.revokedAt,
        });
      } catch (e) {
        uniqueClash(e, { 'tokens.id': `a token with id ${t.id} already exists` });
      }
    });
  }

  token(id: string): TokenRecord | undefined {
    const r = this.stmt.token.get(id);
    return r && tokenFromRow(r);
  }

  tokens(networkId: string): TokenRecord[] {
    return this.stmt.tokens.all(networkId).map(tokenFromRow);
  }

  /** Counts one use of a token. */
  useToken(id: string): void {
    this.write(() => this.stmt.useToken.run(id));
  }

  /** Marks a token revoked; false when it was already revoked or does not exist. */
  revokeToken(id: string, at: number): boolean {
    return this.write(() => this.stmt.revokeToken.run(at, id).changes > 0);
  }

  // --- ACL policy ---

  /** The network's policy, if one was set. */
  policy(networkId: string): PolicyRecord | undefined {
    const r = this.stmt.policy.get(networkId);
    return r && { networkId: r.network_id, text: r.text, version: r.version, updated: r.updated };
  }

  /** Sets the network's policy text; returns the record (version one more than before). */
  putPolicy(networkId: string, text: string, at: number): PolicyRecord {
    return this.write(() => {
      const version = (this.policy(networkId)?.version ?? 0) + 1;
      this.stmt.putPolicy.run({ network_id: networkId, text, version, updated: at });
      return { networkId, text, version, updated: at };
    });
  }

  // --- event log ---

  /** Appends an event; returns its id. Trims the log to MAX_EVENTS rows now and then. */
  addEvent(e: Omit<EventRecord, 'id'>): number {
    return this.write(() => {
      const r = this.stmt.insertEvent.run({
        time: e.time, network_id: e.networkId, node_id: e.nodeId, kind: e.kind, detail: JSON.stringify(e.detail),
      });
      if (++this.eventInserts % TRIM_EVERY === 0) this.stmt.trimEvents.run(MAX_EVENTS);
      return Number(r.lastInsertRowid);
    });
  }

  /** The newest events first (at most `limit`, default 100), optionally of one network (plus
   * coordinator-wide ones such as auth failures, with `includeGlobal`) and after an id. */
  events(opts: { networkId?: string; includeGlobal?: boolean; afterId?: number; limit?: number } = {}): EventRecord[] {
    const net = opts.networkId ?? null;
    return this.stmt.events.all(net, net, opts.includeGlobal ? 1 : 0, opts.afterId ?? 0, opts.limit ?? 100).map((r) => ({
      id: r.id, time: r.time, networkId: r.network_id, nodeId: r.node_id, kind: r.kind,
      detail: JSON.parse(r.detail) as Record<string, unknown>,
    }));
  }
}
