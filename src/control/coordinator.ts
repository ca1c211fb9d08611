// The coordinator: a network's membership and admission, over the store. It creates networks and
// join tokens, admits nodes that present a valid token (behind the auth limiter), gives them an
// IPv4 address from the pool, a key-derived IPv6 address and a unique name, records what they
// report (endpoints, advertised routes), lets an admin remove nodes and approve routes, and builds
// each node's network map. Every change that alters maps bumps the network's version in the same
// transaction and is announced to `onChange` listeners after it commits (the control channel
// pushes new maps from there). Admin mistakes throw UserError; a join never throws for anything a
// joiner sent: it returns a refusal with a reason, a message and a retry-after.
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Logger, UserError, writePrivateFile } from '../util/index.js';
import { parsePolicy, compilePolicy, DISCOVERY_KEY_SIZE } from '../mesh/index.js';
import { decodeBase64Key } from '../crypto/index.js';
import { formatIpv4Address, formatIpv6Address, parseIpv4Address } from '../wire/index.js';
import { systemClock, type Clock } from '../wireguard/index.js';
import { Store } from './store.js';
import type { NetworkRecord, NodeRecord, TokenRecord, EventRecord, PolicyRecord } from './store.js';
import { AuthLimiter, type AuthLimiterOptions } from './auth-limiter.js';
import { generateJoinToken, parseDuration, tokenState, type TokenState } from './tokens.js';
import { randomId } from './base32.js';
import { normalizeNetworkName, normalizeNodeName } from './names.js';
import {
  DEFAULT_IPV4_POOL, parseIpv4Pool, formatIpv4Pool, firstAssignableIpv4, networkUlaPrefix, formatUlaPrefix, nodeIpv6,
  parseUlaPrefix,
} from './ip-pool.js';
import { normalizeRoutes, normalizeEndpoints, normalizeTags, publicKeyText } from './node-fields.js';
import { buildNetworkMap, type NetworkMap } from './network-map.js';
import { PathTable, type PathState } from './paths.js';
import { NAT_TYPES, type NatType } from '../mesh/index.js';
import { admitJoin, type JoinRequest, type JoinResult } from './join.js';

export const DEFAULT_TOKEN_LIFETIME = '24h';
export const COORDINATOR_NODE_NAME = 'coordinator';

/** A token as `meshtun token list` shows it (never the secret or its hash). */
export interface TokenInfo {
  id: string;
  networkId: string;
  reusable: boolean;
  expires: number | null;
  tags: string[];
  uses: number;
  created: number;
  state: TokenState;
}

export interface CreatedToken extends TokenInfo {
  /** The token text: shown once, never stored. */
  token: string;
}

export interface CreateNetworkOptions {
  name: string;
  /** IPv4 pool, default 100.64.0.0/10. */
  ipv4Pool?: string;
  /** The coordinator's own node: gets the pool's first address. */
  self?: { publicKey: string | Uint8Array; name?: string };
}

export interface CreateTokenOptions {
  reusable?: boolean;
  /** "24h", "7d", "never", or milliseconds; default 24h. */
  expiresIn?: string | number | null;
  tags?: string[];
}

/** Where Coordinator.open keeps the path table, in the state directory. */
export const PATH_TABLE_FILE = 'path-table.json';
const PATH_TABLE_SAVE_MS = 1_000;
const log = new Logger('control');

export interface CoordinatorOptions {
  /** A file to keep the path table in across restarts (Coordinator.open sets it). */
  pathsFile?: string;
  clock?: Clock;
  limiter?: AuthLimiter;
  limiterOptions?: AuthLimiterOptions;
}

export type ChangeListener = (networkId: string, version: number) => void;

function tokenInfo(t: TokenRecord, now: number): TokenInfo {
  return { id: t.id, networkId: t.networkId, reusable: t.reusable, expires: t.expires, tags: [...t.tags], uses: t.uses, created: t.created, state: tokenState(t, now) };
}

export class Coordinator {
  readonly clock: Clock;
  readonly limiter: AuthLimiter;
  private readonly listeners = new Set<ChangeListener>();
  /** Reported direct / failed paths and the relays picked from them (in memory; see paths.ts). */
  readonly paths = new PathTable();

  /** Opens the store in `stateDir` (coordinator.db) and a coordinator over it; the path table
   * is kept in `stateDir`/path-table.json across restarts. */
  static open(stateDir: string, opts: CoordinatorOptions = {}): Coordinator {
    return new Coordinator(Store.open(stateDir), { pathsFile: join(stateDir, PATH_TABLE_FILE), ...opts });
  }

  private readonly pathsFile: string | null;
  private pathsSaveTimer: NodeJS.Timeout | null = null;

  constructor(readonly store: Store, opts: CoordinatorOptions = {}) {
    this.clock = opts.clock ?? systemClock;
    this.limiter = opts.limiter ?? new AuthLimiter(this.clock, opts.limiterOptions);
    this.pathsFile = opts.pathsFile ?? null;
    // The reported paths and chosen relays of the last run: relayed pairs keep their relays at once
    // after a restart, before the nodes report again.
    if (this.pathsFile && existsSync(this.pathsFile)) {
      try {
        this.paths.restore(JSON.parse(readFileSync(this.pathsFile, 'utf8')));
      } catch (e) {
        log.warn(`ignoring ${this.pathsFile}: ${(e as Error).message}`);
      }
    }
  }

  /** Saves the path table soon (changes come in bursts). */
  private savePathsSoon(): void {
    if (!this.pathsFile || this.pathsSaveTimer) return;
    this.pathsSaveTimer = setTimeout(() => {
      this.pathsSaveTimer = null;
      try {
        writePrivateFile(this.pathsFile!, JSON.stringify(this.paths.snapshot()) + '\n');
      } catch (e) {
        log.warn(`cannot save ${this.pathsFile}: ${(e as Error).message}`);
      }
    }, PATH_TABLE_SAVE_MS);
    this.pathsSaveTimer.unref();
  }

  close(): void {
    if (this.pathsSaveTimer) {
      clearTimeout(this.pathsSaveTimer);
      this.pathsSaveTimer = null;
      try {
        writePrivateFile(this.pathsFile!, JSON.stringify(this.paths.snapshot()) + '\n');
      } catch (e) {
        log.warn(`cannot save ${this.pathsFile}: ${(e as Error).message}`);
      }
    }
    this.listeners.clear();
    this.store.close();
  }

  /** Calls `fn(networkId, version)` after every committed change to a network's maps. */
  onChange(fn: ChangeListener): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  /** @internal Announces a committed change (used by join.ts too). */
  announce(networkId: string, version: number): void {
    for (const fn of [...this.listeners]) fn(networkId, version);
  }

  /** @internal Writes `fn` in a transaction, bumps the version, logs, then announces. */
  change<T>(networkId: string, kind: string, fn: () => { value: T; nodeId?: string | null; detail?: Record<string, unknown> }): T {
    let version = 0;
    const value = this.store.write(() => {
      const r = fn();
      version = this.store.bumpNetworkVersion(networkId);
      this.store.addEvent({ time: this.clock.wallNow(), networkId, nodeId: r.nodeId ?? null, kind, detail: r.detail ?? {} });
      return r.value;
    });
    this.announce(networkId, version);
    return value;
  }

  // --- networks ---

  createNetwork(opts: CreateNetworkOptions): NetworkRecord {
    const name = normalizeNetworkName(opts.name);
    const pool = parseIpv4Pool(opts.ipv4Pool ?? DEFAULT_IPV4_POOL);
    if (this.store.networkByName(name)) throw new UserError(`a network named "${name}" already exists`, 'pick another name');
    const selfKey = opts.self ? publicKeyText(opts.self.publicKey) : null;
    const selfName = opts.self ? normalizeNodeName(opts.self.name ?? COORDINATOR_NODE_NAME) : null;
    if (selfKey && this.store.nodeByKey(selfKey)) throw new UserError('this node key already belongs to a node of another network');
    const id = randomId('net');
    const net: NetworkRecord = {
      id, name, ipv4Pool: formatIpv4Pool(pool), ulaPrefix: formatUlaPrefix(networkUlaPrefix(id)), created: this.clock.wallNow(), version: 0,
      discoveryKey: randomBytes(DISCOVERY_KEY_SIZE),
    };
    this.store.write(() => {
      this.store.insertNetwork(net);
      this.store.addEvent({ time: net.created, networkId: id, nodeId: null, kind: 'network.created', detail: { name, ipv4Pool: net.ipv4Pool, ulaPrefix: net.ulaPrefix } });
      if (selfKey && selfName) {
        const node = this.newNodeRecord(net, selfKey, selfName, formatIpv4Address(firstAssignableIpv4(pool)), null);
        this.store.insertNode(node);
        this.store.addEvent({ time: net.created, networkId: id, nodeId: node.id, kind: 'node.joined', detail: { name: node.name, ipv4: node.ipv4, self: true } });
      }
      net.version = this.store.bumpNetworkVersion(id);
    });
    return net;
  }

  /** @internal A fresh node record. */
  newNodeRecord(net: NetworkRecord, publicKey: string, name: string, ipv4: string, tokenId: string | null): NodeRecord {
    const ipv6 = formatIpv6Address(nodeIpv6(parseUlaPrefix(net.ulaPrefix), decodeBase64Key(publicKey)!), 0);
    return {
      id: randomId('node'), networkId: net.id, name, publicKey, ipv4, ipv6, tags: [], endpoints: [], advertisedRoutes: [],
      approvedRoutes: [], tokenId, created: this.clock.wallNow(), lastSeen: null, removed: false, removedAt: null, nat: 'unknown',
    };
  }

  /** The network named or with id `ref`; with no ref, the only network. UserError otherwise. */
  network(ref?: string): NetworkRecord {
    if (ref === undefined || ref === '') {
      const all = this.store.networks();
      if (all.length === 1) return all[0]!;
      if (all.length === 0) throw new UserError('there is no network yet', 'run `meshtun up` to create one');
      throw new UserError(`there are ${all.length} networks (${all.map((n) => n.name).join(', ')}): say which one`, 'pass --network <name>');
    }
    const n = this.store.network(ref) ?? this.store.networkByName(ref.trim().toLowerCase());
    if (!n) throw new UserError(`no network "${ref}"`, `known networks: ${this.store.networks().map((x) => x.name).join(', ') || 'none'}`);
    return n;
  }

  networks(): NetworkRecord[] {
    return this.store.networks();
  }

  // --- tokens ---

  createToken(networkRef: string | undefined, opts: CreateTokenOptions = {}): CreatedToken {
    const net = this.network(networkRef);
    const lifetime = typeof opts.expiresIn === 'number' ? opts.expiresIn
      : opts.expiresIn === null ? null : parseDuration(opts.expiresIn ?? DEFAULT_TOKEN_LIFETIME);
    if (lifetime !== null && !(lifetime > 0)) throw new UserError(`invalid expiry ${lifetime}: must be longer than zero`);
    const tags = normalizeTags(opts.tags ?? []);
    const t = generateJoinToken();
    const now = this.clock.wallNow();
    const rec: TokenRecord = {
      id: t.id, secretHash: t.secretHash, networkId: net.id, reusable: opts.reusable === true, expires: lifetime === null ? null : now + lifetime,
      tags, uses: 0, created: now, revoked: false, revokedAt: null,
    };
    this.store.write(() => {
      this.store.insertToken(rec);
      this.store.addEvent({ time: now, networkId: net.id, nodeId: null, kind: 'token.created', detail: { id: rec.id, reusable: rec.reusable, expires: rec.expires, tags } });
    });
    return { ...tokenInfo(rec, now), token: t.text };
  }

  tokens(networkRef?: string): TokenInfo[] {
    const now = this.clock.wallNow();
    return this.store.tokens(this.network(networkRef).id).map((t) => tokenInfo(t, now));
  }

  /** Revokes a token by id (the 8 characters after "mtj1_"). Nodes it admitted stay. */
  revokeToken(id: string): TokenInfo {
    const key = String(id ?? '').trim().toLowerCase().replace(/^mtj1_/, '').slice(0, 8);
    const t = this.store.token(key);
    if (!t) throw new UserError(`no token with id "${id}"`, 'see `meshtun token list`');
    const now = this.clock.wallNow();
    this.store.write(() => {
      if (this.store.revokeToken(t.id, now)) {
        this.store.addEvent({ time: now, networkId: t.networkId, nodeId: null, kind: 'token.revoked', detail: { id: t.id } });
      }
    });
    return tokenInfo(this.store.token(t.id)!, now);
  }

  // --- joining ---

  /** Admits a node presenting a join token. Never throws for what the joiner sent. */
  join(req: JoinRequest): JoinResult {
    return admitJoin(this, req);
  }

  /** The live node holding this key (the control channel's check of a Noise static key). */
  authenticate(publicKey: string | Uint8Array): NodeRecord | undefined {
    let key: string;
    try {
      key = publicKeyText(publicKey);
    } catch {
      return undefined;
    }
    const n = this.store.nodeByKey(key);
    return n && !n.removed ? n : undefined;
  }

  // --- nodes ---

  /** Finds a live node by name, id, public key or IPv4 address. UserError when there is none. */
  node(networkRef: string | undefined, ref: string): NodeRecord {
    const net = this.network(networkRef);
    const r = String(ref ?? '').trim();
    let n = this.store.nodeByName(net.id, r.toLowerCase()) ?? this.store.node(r);
    if (!n && decodeBase64Key(r)) n = this.store.nodeByKey(r);
    if (!n && parseIpv4Address(r) !== null) n = this.store.nodeByIpv4(net.id, r);
    if (!n || n.removed || n.networkId !== net.id) {
      throw new UserError(`no node "${r}" in network "${net.name}"`, 'see `meshtun nodes list`');
    }
    return n;
  }

  nodes(networkRef?: string, opts: { includeRemoved?: boolean } = {}): NodeRecord[] {
    return this.store.nodes(this.network(networkRef).id, opts);
  }

  /** Removes a node: it leaves every map at once and its key is no longer accepted. */
  removeNode(networkRef: string | undefined, ref: string): NodeRecord {
    const n = this.node(networkRef, ref);
    if (n.tokenId === null) throw new UserError(`"${n.name}" is the coordinator's own node and cannot be removed`);
    const now = this.clock.wallNow();
    const removed: NodeRecord = { ...n, removed: true, removedAt: now, endpoints: [] };
    this.paths.forget(n.id);
    this.savePathsSoon();
    return this.change(n.networkId, 'node.removed', () => {
      this.store.updateNode(removed);
      return { value: removed, nodeId: n.id, detail: { name: n.name, ipv4: n.ipv4 } };
    });
  }

  /** Approves routes the node advertises ("all" for every advertised one). Returns the node. */
  approveRoutes(networkRef: string | undefined, ref: string, routes: readonly string[] | 'all'): NodeRecord {
    const n = this.node(networkRef, ref);
    const net = this.network(n.networkId);
    const wanted = routes === 'all' ? n.advertisedRoutes : normalizeRoutes(routes, net);
    for (const r of wanted) {
      if (!n.advertisedRoutes.includes(r)) {
        throw new UserError(`node "${n.name}" does not advertise ${r}`,
          n.advertisedRoutes.length ? `it advertises: ${n.advertisedRoutes.join(', ')}` : 'it advertises no routes (meshtun up --advertise-routes ...)');
      }
    }
    const approved = [...new Set([...n.approvedRoutes, ...wanted])].sort();
    return this.change(n.networkId, 'routes.approved', () => {
      const u = { ...n, approvedRoutes: approved };
      this.store.updateNode(u);
      return { value: u, nodeId: n.id, detail: { name: n.name, routes: wanted } };
    });
  }

  /** Withdraws approval of routes ("all" for every one). Returns the node. */
  unapproveRoutes(networkRef: string | undefined, ref: string, routes: readonly string[] | 'all'): NodeRecord {
    const n = this.node(networkRef, ref);
    const drop = new Set(routes === 'all' ? n.approvedRoutes : normalizeRoutes(routes, this.network(n.networkId)));
    return this.change(n.networkId, 'routes.unapproved', () => {
      const u = { ...n, approvedRoutes: n.approvedRoutes.filter((r) => !drop.has(r)) };
      this.store.updateNode(u);
      return { value: u, nodeId: n.id, detail: { name: n.name, routes: [...drop] } };
    });
  }

  /** What a connected node reports about itself. Bumps the version only when something changed.
   * UserError for a bad value (the control channel answers with the message). */
  reportNodeState(
    publicKey: string | Uint8Array,
    state: {
      endpoints?: string[]; advertisedRoutes?: string[]; paths?: Record<string, PathState>; nat?: NatType; relay?: boolean; rtts?: Record<string, number>;
      relayPorts?: { https?: number; tcp?: number };
    },
  ): NodeRecord {
    const n = this.authenticate(publicKey);
    if (!n) throw new UserError('this node is not a member of any network (removed?)', 'join again with a new token');
    const net = this.network(n.networkId);
    if (state.paths !== undefined || state.relay !== undefined || state.rtts !== undefined) this.reportPaths(n, state.paths, state.relay, state.rtts, state.relayPorts);
    const endpoints = state.endpoints === undefined ? n.endpoints : normalizeEndpoints(state.endpoints);
    const advertisedRoutes = state.advertisedRoutes === undefined ? n.advertisedRoutes : normalizeRoutes(state.advertisedRoutes, net);
    if (state.nat !== undefined && !(NAT_TYPES as readonly string[]).includes(state.nat)) {
      throw new UserError(`invalid nat "${String(state.nat)}": expected one of ${NAT_TYPES.join(', ')}`);
    }
    const nat = state.nat ?? n.nat;
    const u: NodeRecord = { ...n, endpoints, advertisedRoutes, nat, lastSeen: this.clock.wallNow() };
    if (JSON.stringify([endpoints, advertisedRoutes, nat]) === JSON.stringify([n.endpoints, n.advertisedRoutes, n.nat])) {
      this.store.updateNode(u);
      return u;
    }
    return this.change(n.networkId, 'node.updated', () => {
      this.store.updateNode(u);
      return { value: u, nodeId: n.id, detail: { name: n.name, endpoints, advertisedRoutes, nat } };
    });
  }

  /** Records a node's direct / failed paths; a change in the relays picked bumps the version. */
  private reportPaths(
    n: NodeRecord, paths: Record<string, PathState> | undefined, relay: boolean | undefined, rtts: Record<string, number> | undefined,
    relayPorts?: { https?: number; tcp?: number },
  ): void {
    if (paths !== undefined && (typeof paths !== 'object' || paths === null)) throw new UserError('paths must be an object of node id -> "direct" | "failed"');
    if (rtts !== undefined && (typeof rtts !== 'object' || rtts === null)) throw new UserError('rtts must be an object of node id -> milliseconds');
    const ids = this.store.nodes(n.networkId).filter((x) => !x.removed).map((x) => x.id);
    const before = this.paths.fingerprint(ids);
    let changed = false;
    if (relay !== undefined) changed = this.paths.setRelay(n.id, relay === true, relayPorts) || changed;
    if (rtts !== undefined) this.paths.reportRtts(n.id, rtts);
    if (paths !== undefined) changed = this.paths.report(n.id, paths) || changed;
    if (changed || rtts !== undefined) this.savePathsSoon();
    if (!changed && rtts === undefined) return;
    const after = this.paths.fingerprint(ids);
    if (after === before) return;
    this.change(n.networkId, 'paths.changed', () => ({ value: null, nodeId: n.id, detail: { name: n.name, relays: after } }));
  }

  /** Marks a node as seen now (no version bump: last-seen is not part of maps). */
  touch(publicKey: string | Uint8Array): void {
    const n = this.authenticate(publicKey);
    if (n) this.store.updateNode({ ...n, lastSeen: this.clock.wallNow() });
  }

  /** The network map for the live node with this key or id. UserError when there is none. */
  networkMap(nodeRef: string | Uint8Array): NetworkMap {
    const n = this.authenticate(nodeRef) ?? (typeof nodeRef === 'string' ? this.store.node(nodeRef) : undefined);
    if (!n || n.removed) throw new UserError('no such live node');
    const net = this.network(n.networkId);
    const p = this.store.policy(net.id);
    const nodes = this.store.nodes(net.id);
    const plan = this.paths.plan(nodes.filter((x) => !x.removed).map((x) => x.id));
    return buildNetworkMap(net, nodes, n.id, p ? { text: p.text, version: p.version } : null, plan.viasFor(n.id), plan.relayPathsFor(n.id), this.paths.relays());
  }

  // --- ACL policy ---

  /** The network's ACL policy, or null when none was set. */
  policy(networkRef?: string): PolicyRecord | null {
    return this.store.policy(this.network(networkRef).id) ?? null;
  }

  /** Sets the network's ACL policy. A bad policy throws PolicyError (file:line, rule, problem)
   * and changes nothing: the network keeps its previous policy. Returns the new record and the
   * compiler's warnings (rules naming nodes not in the network yet). */
  setPolicy(networkRef: string | undefined, text: string, file = 'policy'): { policy: PolicyRecord; warnings: string[] } {
    const net = this.network(networkRef);
    if (typeof text !== 'string') throw new UserError('the policy must be text (the HuJSON policy file)');
    const compiled = compilePolicy(parsePolicy(text, file), this.store.nodes(net.id).map((n) => ({ name: n.name, addresses: [n.ipv4, n.ipv6], tags: n.tags })));
    const policy = this.change(net.id, 'policy.set', () => {
      const p = this.store.putPolicy(net.id, text, this.clock.wallNow());
      return { value: p, detail: { file, version: p.version, rules: compiled.ruleCount } };
    });
    return { policy, warnings: [...compiled.warnings] };
  }

  /** The network's current map version. */
  version(networkRef?: string): number {
    return this.network(networkRef).version;
  }

  /** The network's events, newest first, with coordinator-wide ones (failed joins). */
  events(networkRef?: string, opts: { afterId?: number; limit?: number } = {}): EventRecord[] {
    return this.store.events({ networkId: this.network(networkRef).id, includeGlobal: true, ...opts });
  }
}
