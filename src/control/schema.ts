// The coordinator store's schema, as numbered migrations. `schema_version` holds one row with the
// number of the last migration applied; opening a store applies the missing ones in order, each in
// its own transaction. Migrations are append-only: never edit one that has shipped, add the next.
//
// Times are milliseconds since the epoch (UTC). List columns (tags, endpoints, routes) hold JSON
// arrays of strings. A removed node keeps its row (the audit trail, and a re-join gets its old
// address back) but gives up its name and address: uniqueness applies to live nodes only.
import type Database from 'better-sqlite3';
import { UserError } from '../util/index.js';

export interface Migration {
  version: number;
  description: string;
  sql: string;
}

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    description: 'networks, nodes, join tokens, event log',
    sql: `
      CREATE TABLE networks (
        id         TEXT PRIMARY KEY,
        name       TEXT NOT NULL UNIQUE,
        ipv4_pool  TEXT NOT NULL,
        ula_prefix TEXT NOT NULL,
        created    INTEGER NOT NULL,
        version    INTEGER NOT NULL DEFAULT 0
      ) STRICT;
      CREATE TABLE nodes (
        id                TEXT PRIMARY KEY,
        network_id        TEXT NOT NULL REFERENCES networks(id) ON DELETE CASCADE,
        name              TEXT NOT NULL,
        public_key        TEXT NOT NULL UNIQUE,
        ipv4              TEXT NOT NULL,
        ipv6              TEXT NOT NULL,
        tags              TEXT NOT NULL DEFAULT '[]',
        endpoints         TEXT NOT NULL DEFAULT '[]',
        advertised_routes TEXT NOT NULL DEFAULT '[]',
        approved_routes   TEXT NOT NULL DEFAULT '[]',
        token_id          TEXT,
        created           INTEGER NOT NULL,
        last_seen         INTEGER,
        removed           INTEGER NOT NULL DEFAULT 0,
        removed_at        INTEGER
      ) STRICT;
      CREATE UNIQUE INDEX nodes_live_name ON nodes(network_id, name) WHERE removed = 0;
      CREATE UNIQUE INDEX nodes_live_ipv4 ON nodes(network_id, ipv4) WHERE removed = 0;
      CREATE TABLE tokens (
        id          TEXT PRIMARY KEY,
        secret_hash BLOB NOT NULL,
        network_id  TEXT NOT NULL REFERENCES networks(id) ON DELETE CASCADE,
        reusable    INTEGER NOT NULL,
        expires     INTEGER,
        tags        TEXT NOT NULL DEFAULT '[]',
        uses        INTEGER NOT NULL DEFAULT 0,
        created     INTEGER NOT NULL,
        revoked     INTEGER NOT NULL DEFAULT 0,
        revoked_at  INTEGER
      ) STRICT;
      CREATE INDEX tokens_network ON tokens(network_id);
      CREATE TABLE events (
        id         INTEGER PRIMARY KEY AUTOINCREMENT,
        time       INTEGER NOT NULL,
        network_id TEXT,
        node_id    TEXT,
        kind       TEXT NOT NULL,
        detail     TEXT NOT NULL DEFAULT '{}'
      ) STRICT;
      CREATE INDEX events_network ON events(network_id, id);
    `,
  },
  {
    version: 2,
    description: 'ACL policy per network',
    sql: `
      CREATE TABLE policies (
        network_id TEXT PRIMARY KEY REFERENCES networks(id) ON DELETE CASCADE,
        text       TEXT NOT NULL,
        version    INTEGER NOT NULL,
        updated    INTEGER NOT NULL
      ) STRICT;
    `,
  },
  {
    version: 4,
    description: 'NAT type per node',
    // What each node last reported about its NAT from STUN (mesh/stun.ts NatType): "none",
    // "endpoint-independent", "endpoint-dependent" or "unknown". Members learn from it which
    // peers can serve as a second STUN server.
    sql: `
      ALTER TABLE nodes ADD COLUMN nat TEXT NOT NULL DEFAULT 'unknown';
    `,
  },
  {
    version: 5,
    description: 'LAN discovery key per network',
    // 32 random bytes that members get in every map and key their LAN beacons with
    // (mesh/lan-beacon.ts). Networks made before this migration get theirs here: SQLite's
    // randomblob() draws from its CSPRNG, seeded from the operating system.
    sql: `
      ALTER TABLE networks ADD COLUMN discovery_key BLOB NOT NULL DEFAULT x'';
      UPDATE networks SET discovery_key = randomblob(32) WHERE length(discovery_key) != 32;
    `,
  },
];

/** The schema version a database is at (0 for a new, empty one). */
export function schemaVersion(db: Database.Database): number {
  db.exec('CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL) STRICT');
  const row = db.prepare<[], { version: number }>('SELECT version FROM schema_version').get();
  return row?.version ?? 0;
}

/** Applies the migrations newer than the database, in order, each in a transaction. Throws
 * UserError when the database was written by a newer meshtun. Returns the resulting version. */
export function migrate(db: Database.Database, file: string, migrations: readonly Migration[] = MIGRATIONS): number {
  let current = schemaVersion(db);
  const latest = migrations.length ? migrations[migrations.length - 1]!.version : 0;
  if (current > latest) {
    throw new UserError(`${file} has schema version ${current}, newer than this meshtun understands (${latest})`,
      'upgrade meshtun, or move the file away to start a new network');
  }
  for (const m of migrations) {
    if (m.version <= current) continue;
    db.transaction(() => {
      db.exec(m.sql);
      db.prepare('DELETE FROM schema_version').run();
      db.prepare('INSERT INTO schema_version (version) VALUES (?)').run(m.version);
    }).immediate();
    current = m.version;
  }
  return current;
}
