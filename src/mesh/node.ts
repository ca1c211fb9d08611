// A mesh node's data plane driven by the coordinator's network map: MeshNode wraps an Engine and
// makes its peers match each map it is given, live. A peer per other node: its public key,
// allowed IPs (the node's overlay /32 and /128 plus approved routes, as the map's `allowedIps`),
// an endpoint (see Paths below), and a persistent keepalive. Nodes that left the map lose their
// peer at once. Between maps (the coordinator down, the client reconnecting) nothing is touched:
// the data plane keeps running on the last map, and the next map (resync) is applied as a diff.
//
// Paths (disco.ts): the engine's roaming is off for mesh peers; Disco sets each peer's endpoint.
// Its candidates are the endpoints the map reports (and ones learned from LAN beacons and from
// discovery pings); discovery pings find which answer, and the fastest trusted one is the peer's
// direct path. Without one the peer goes through the relay the map names (`via`): the coordinator
// picks relays for pairs whose nodes report their direct path "failed" (relay.ts carries the
// end-to-end session through it). MeshNode also answers the Relay's questions (who has which
// overlay address, which paths go through this node) from the map, so this node relays for
// others.
import { decodeBase64Key } from '../crypto/index.js';
import { Logger } from '../util/index.js';
import { parseIpv4Address, parseIpv6Address } from '../wire/index.js';
import { parseCidr, type Cidr, type Endpoint, type Engine, type Peer } from '../wireguard/index.js';
import type { ControlMapNode, ControlNetworkMap, PathState } from './control-types.js';
import { Relay, RelayEndpoint, type RelayRoute, type RelayLimits } from './relay.js';
import { Disco, PeerPaths, endpointText, transportOf, TRANSPORT_PENALTY_MS, type CandidateSource, type PathKind, type PathTransport } from './disco.js';
import { UnderlayMux } from './underlay-mux.js';

/** How often path states are re-evaluated for the coordinator. */
const PATH_TICK_MS = 1_000;

/** How long a relay keeps forwarding for a pair after the map stopped naming its path (a
 * restarted coordinator forgets paths until nodes report again, every 30 s). */
export const RELAY_GRACE_MS = 120_000;
const NO_ADDRESSES: { ipv4: number | null; ipv6: Uint8Array | null } = { ipv4: null, ipv6: null };

/** Seconds between keepalives to each mesh peer (keeps NAT mappings open). */
export const MESH_PERSISTENT_KEEPALIVE = 25;

/** Where maps come from: a ControlClient, or a fake in tests. */
export interface MapSource {
  subscribeMap(onMap: (map: ControlNetworkMap) => void, onRemoved?: (message: string) => void): () => void;
}

export interface MeshApplyResult {
  added: string[];
  updated: string[];
  removed: string[];
}

export interface MeshNodeOptions {
  /** Called after each map is applied. */
  onApplied?: (map: ControlNetworkMap, result: MeshApplyResult) => void;
  /** Called when the coordinator says this node was removed (its peers are then dropped). */
  onRemoved?: (message: string) => void;
  /** Name of the peer to send all traffic to (0.0.0.0/0 and ::/0 join its allowed IPs while the
   * map says it is an approved exit node). */
  exitNode?: string;
  /** Called when the path states of the peers change (node id -> direct | failed); the daemon
   * reports them to the coordinator. */
  onPathStates?: (states: Record<string, PathState>) => void;
  /** Asks a peer (by node id), through the coordinator, to sweep its paths toward this node now. */
  callMeMaybe?: (nodeId: string) => void;
  /** The mux of the engine's socket (shared with STUN); made here when absent. */
  mux?: UnderlayMux;
  /** A peer's path changed transport (UDP came back, or went away): the daemon re-probes STUN. */
  onTransportChange?: () => void;
  /** How much this node relays per source node (default DEFAULT_RELAY_LIMITS). */
  relayLimits?: Partial<RelayLimits>;
}

/** How a peer is reached now. */
export interface PeerPath {
  kind: PathKind;
  /** The relaying node's name (kind relay). */
  via?: string;
  /** The direct path's state: working, none of the candidates answered, or still trying. */
  state: PathState | 'trying';
  /** The underlay transport of the path (of its first hop, for a relayed one). */
  transport: PathTransport;
  /** The endpoint packets go to ("ip:port"; a relay's for kind relay), or null. */
  endpoint: string | null;
  /** Round-trip time of the direct path's last discovery pong, ms (null: none). */
  rttMs: number | null;
  /** When the path last changed (ISO 8601), or null. */
  since: string | null;
  /** Times the path changed. */
  changes: number;
}

/** True when prefix `outer` contains `inner` (same family, inner at least as long). */
function cidrContains(outer: Cidr, inner: Cidr): boolean {
  if (outer.family !== inner.family || inner.prefixLen < outer.prefixLen) return false;
  const bits = outer.prefixLen;
  if (outer.family === 4) {
    const mask = bits === 0 ? 0 : (0xffffffff << (32 - bits)) >>> 0;
    return (((outer.address as number) & mask) >>> 0) === (((inner.address as number) & mask) >>> 0);
  }
  const a = outer.address as Uint8Array;
  const b = inner.address as Uint8Array;
  for (let i = 0; i < bits; i++) {
    const m = 0x80 >> (i & 7);
    if ((a[i >> 3]! & m) !== (b[i >> 3]! & m)) return false;
  }
  return true;
}

/** `ms` rounded: to 1 ms below 10, 5 ms below 100, 25 ms above. */
function coarseMs(ms: number): number {
  if (ms < 10) return Math.round(ms);
  if (ms < 100) return Math.round(ms / 5) * 5;
  return Math.round(ms / 25) * 25;
}

/** The allowed IPs an exit node gets on top of its own. */
export const EXIT_ROUTES = ['0.0.0.0/0', '::/0'];

interface AppliedPeer {
  name: string;
  id: string;
  endpoints: string;
  allowedIps: string;
  via: string | null;
  peer: Peer;
  paths: PeerPaths;
}

const log = new Logger('mesh');

/** The allowed IPs of a map node: the map's list, else its addresses and approved routes. */
export function peerAllowedIps(n: ControlMapNode): string[] {
  if (Array.isArray(n.allowedIps) && n.allowedIps.length > 0) return [...n.allowedIps];
  const out: string[] = [];
  if (n.ipv4) out.push(`${n.ipv4}/32`);
  if (n.ipv6) out.push(`${n.ipv6}/128`);
  for (const r of n.routes ?? []) out.push(r);
  return out;
}

export class MeshNode {
  private readonly applied = new Map<string, AppliedPeer>();
  private unsubscribe: (() => void) | null = null;
  private current: ControlNetworkMap | null = null;
  /** Maps applied so far. */
  mapsApplied = 0;
  /** Path changes of all peers (direct / relay / none). */
  pathChanges = 0;
  readonly relay: Relay;
  private selfAddress: number | null = null;
  private selfId: string | null = null;
  private readonly byPeer = new Map<Peer, { ipv4: number | null; ipv6: Uint8Array | null }>();
  private readonly byAddress = new Map<number, { peer: Peer; ipv6: Uint8Array | null }>();
  private pathTimer: NodeJS.Timeout | null = null;
  private lastStates = '';
  /** Relay paths through this node (from maps; kept RELAY_GRACE_MS after a map stops naming
   * them) and the routes made of them: source address -> destination address -> neighbours. */
  private readonly relayPaths = new Map<string, { ids: string[]; until: number }>();
  private relayRoutes = new Map<number, Map<number, RelayRoute>>();
  /** The neighbour the map says each relayed peer is reached through. */
  private readonly mapVia = new Map<Peer, Peer>();
  private lastPeersById = new Map<string, { peer: Peer; ipv4: number | null }>();
  /** Prefixes routed through the mesh (overlay, peers' subnets): never used as underlay paths. */
  private tunnelled: Cidr[] = [];

  readonly mux: UnderlayMux;
  readonly disco: Disco;
  private readonly pathsByKey = new Map<string, PeerPaths>();
  private readonly pathsById = new Map<string, PeerPaths>();
  private readonly pathsByPeer = new Map<Peer, PeerPaths>();

  constructor(readonly engine: Engine, private readonly opts: MeshNodeOptions = {}) {
    this.mux = opts.mux ?? new UnderlayMux(engine);
    this.disco = new Disco(engine, this.mux, {
      pathsByKey: (key) => this.pathsByKey.get(key),
      allPaths: () => this.pathsByKey.values(),
      ...(opts.callMeMaybe ? { callMeMaybe: opts.callMeMaybe } : {}),
      onPathChange: () => { this.pathChanges++; },
      onTransportChange: () => this.opts.onTransportChange?.(),
    });
    this.relay = new Relay(engine, {
      selfAddress: () => this.selfAddress,
      peerByAddress: (a) => this.byAddress.get(a)?.peer,
      ipv6ByAddress: (a) => this.byAddress.get(a)?.ipv6 ?? null,
      addressesOfPeer: (p) => this.byPeer.get(p) ?? NO_ADDRESSES,
      relayRoute: (source, dest) => this.relayRoutes.get(source)?.get(dest),
      relayedFrom: (source, from) => this.isRelayedFrom(source, from),
    }, opts.relayLimits);
    this.pathTimer = setInterval(() => this.checkPaths(), PATH_TICK_MS);
    this.pathTimer.unref();
  }

  /** The last map applied. */
  get map(): ControlNetworkMap | null {
    return this.current;
  }

  /** Applies every map `source` delivers until `stop`. */
  follow(source: MapSource): void {
    this.unsubscribe?.();
    this.unsubscribe = source.subscribeMap(
      (map) => this.apply(map),
      (message) => {
        log.warn(`removed from the network: ${message}`);
        this.clear();
        this.opts.onRemoved?.(message);
      },
    );
  }

  stop(): void {
    this.unsubscribe?.();
    this.unsubscribe = null;
    if (this.pathTimer) clearInterval(this.pathTimer);
    this.pathTimer = null;
    this.disco.close();
  }

  /** An endpoint for the peer with this public key (base64) learned outside the map (a LAN
   * beacon, saved state): added to its candidates and probed at once. Unknown keys and
   * unparseable endpoints are ignored. */
  learnEndpoint(publicKey: string, endpoint: string, source: CandidateSource): void {
    const p = this.pathsByKey.get(publicKey);
    const ep = p ? this.engine.bind.parseEndpoint(endpoint) : null;
    if (p && ep) this.disco.learn(p, endpointText(ep), ep, source);
  }

  /** A stream to the relaying peer with this key (the HTTPS or TCP rung, relay-streams.ts): one
   * more candidate of its path, pinged at once. */
  offerStream(publicKey: string, ep: Endpoint): void {
    const p = this.pathsByKey.get(publicKey);
    if (p) this.disco.learn(p, endpointText(ep), ep, 'stream');
  }

  /** The stream closed: its candidate goes (and the path, if it was the one in use). */
  withdrawStream(publicKey: string, ep: Endpoint): void {
    const p = this.pathsByKey.get(publicKey);
    if (!p) return;
    const c = p.candidates.get(endpointText(ep));
    if (!c || c.ep !== ep) return;
    p.candidates.delete(c.text);
    if (p.direct === c) p.direct = null;
    this.disco.decide(p, this.engine.clock.now());
  }

  /** The peer with node id `nodeId` asked, through the coordinator, for a sweep toward it. */
  called(nodeId: string): void {
    const p = this.pathsById.get(nodeId);
    if (p) this.disco.called(p);
  }

  /** Sweeps every peer's candidates now (this node's addresses changed: paths must be found anew). */
  resweep(): void {
    for (const p of this.pathsByKey.values()) this.disco.sweepNow(p);
  }

  /** True when `address` lies in the overlay or in a subnet a peer routes (not the exit routes,
   * which wg-quick-style policy routing keeps the WireGuard socket out of): underlay packets to it
   * would enter the tunnel. */
  private readonly isTunnelledAddress = (address: string): boolean => this.isTunnelled(address);

  /** True for an underlay address routed through the mesh (see tunnelled). */
  isTunnelled(address: string): boolean {
    let c: Cidr;
    try {
      c = parseCidr(address);
    } catch {
      return false;
    }
    for (const r of this.tunnelled) if (cidrContains(r, c)) return true;
    return false;
  }

  /** What this node relayed for each source node, by name (status and /metrics). */
  relayedByNode(): { node: string; bytes: number; frames: number; dropped: number }[] {
    return this.relay.relayedBySource().map((r) => {
      const peer = this.byAddress.get(r.source)?.peer;
      const name = peer ? this.nameOf(peer) : `${r.source >>> 24}.${(r.source >>> 16) & 255}.${(r.source >>> 8) & 255}.${r.source & 255}`;
      return { node: name, bytes: r.bytes, frames: r.frames, dropped: r.dropped };
    });
  }

  /** Every peer's path, its changes and the bytes relayed for it (status and /metrics). */
  pathSummary(): { name: string; publicKey: string; kind: PathKind; transport: PathTransport; changes: number; relayedTxBytes: number; relayedRxBytes: number }[] {
    const out = [];
    for (const [key, a] of this.applied) {
      let tx = 0;
      let rx = 0;
      for (const ep of this.relay.endpointsOf(a.peer)) {
        tx += ep.txBytes;
        rx += ep.rxBytes;
      }
      out.push({ name: a.name, publicKey: key, kind: a.paths.kind, transport: this.pathOf(key)?.transport ?? 'udp', changes: a.paths.changes, relayedTxBytes: tx, relayedRxBytes: rx });
    }
    return out;
  }

  /** The round-trip time (ms, rounded coarsely so small jitter does not make a new report) of
   * every peer with a measured direct path, by node id (the coordinator chooses relays by them). */
  pathRtts(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const a of this.applied.values()) {
      const d = a.paths.direct;
      // A stream path reports its rung's penalty too, so relays reached over UDP come first.
      if (d && Number.isFinite(d.rttMs)) out[a.id] = coarseMs(d.rttMs + TRANSPORT_PENALTY_MS[transportOf(d.ep)]);
    }
    return out;
  }

  /** Per peer (base64 key): the direct endpoints that answered, best first (saved so a restart
   * without the coordinator finds its peers again). */
  goodEndpoints(): Record<string, string[]> {
    const out: Record<string, string[]> = {};
    for (const [key, a] of this.applied) {
      const p = a.paths;
      const good = [...p.candidates.values()].filter((c) => c.lastPong > -Infinity).sort((x, y) => y.lastPong - x.lastPong).map((c) => c.text);
      if (p.direct && !good.includes(p.direct.text)) good.unshift(p.direct.text);
      if (good.length > 0) out[key] = good.slice(0, 4);
    }
    return out;
  }

  /** The path state of a peer (tests, status). */
  peerPaths(publicKey: string): PeerPaths | undefined {
    return this.pathsByKey.get(publicKey);
  }

  /** How the peer with this public key (base64) is reached now, or null for an unknown peer. */
  pathOf(publicKey: string): PeerPath | null {
    const a = this.applied.get(publicKey);
    if (!a) return null;
    const p = a.paths;
    const ep = a.peer.endpoint;
    const out: PeerPath = {
      kind: p.kind, state: this.directState(p), transport: ep ? transportOf(ep) : 'udp', endpoint: ep ? ep.toString() : null,
      rttMs: p.direct && Number.isFinite(p.direct.rttMs) ? Math.round(p.direct.rttMs * 100) / 100 : null,
      since: p.since > 0 ? new Date(p.since).toISOString() : null, changes: p.changes,
    };
    if (ep instanceof RelayEndpoint) {
      let via = '?';
      for (const b of this.applied.values()) if (b.peer === ep.via) via = b.name;
      out.via = via;
      out.endpoint = ep.via.endpoint ? ep.via.endpoint.toString() : null;
      out.transport = ep.via.endpoint ? transportOf(ep.via.endpoint) : 'udp';
    }
    return out;
  }

  /** The direct path state of every peer that has one (what goes to the coordinator). */
  pathStates(): Record<string, PathState> {
    const out: Record<string, PathState> = {};
    for (const a of this.applied.values()) {
      const st = this.directState(a.paths);
      if (st !== 'trying') out[a.id] = st;
    }
    return out;
  }

  private directState(p: PeerPaths): PathState | 'trying' {
    if (p.direct !== null) return 'direct';
    return p.failed ? 'failed' : 'trying';
  }

  /** Expires relay paths and reports changed path states. */
  checkPaths(): void {
    this.expireRelayPaths(this.engine.clock.now());
    const states = this.pathStates();
    const text = JSON.stringify(states);
    if (text !== this.lastStates) {
      this.lastStates = text;
      this.opts.onPathStates?.(states);
    }
  }

  /** Makes the engine's peers match `map`. Never throws for map content: a node with an
   * unusable key, address or endpoint is skipped (or gets no endpoint) and logged. */
  apply(map: ControlNetworkMap): MeshApplyResult {
    const result: MeshApplyResult = { added: [], updated: [], removed: [] };
    if (this.current && map.version < this.current.version && map.network?.id === this.current.network?.id) return result;
    const selfKey = map.self?.publicKey;
    const wanted = new Map<string, ControlMapNode>();
    for (const n of map.peers ?? []) {
      if (!n || typeof n.publicKey !== 'string' || n.publicKey === selfKey) continue;
      const key = decodeBase64Key(n.publicKey);
      if (!key || key.length !== 32) {
        log.warn(`map node "${n.name}" has an unusable public key; skipped`);
        continue;
      }
      wanted.set(n.publicKey, n);
    }
    for (const [key, prev] of this.applied) {
      if (wanted.has(key)) continue;
      this.relay.forgetVia(prev.peer);
      this.engine.removePeer(decodeBase64Key(key)!);
      this.applied.delete(key);
      this.pathsByKey.delete(key);
      this.pathsById.delete(prev.id);
      this.pathsByPeer.delete(prev.peer);
      result.removed.push(prev.name);
    }
    this.tunnelled = [];
    for (const text of [map.network?.ipv4Pool, map.network?.ulaPrefix, ...(map.peers ?? []).flatMap((n) => n?.routes ?? [])]) {
      if (typeof text !== 'string' || EXIT_ROUTES.includes(text)) continue;
      try {
        this.tunnelled.push(parseCidr(text));
      } catch { /* not a prefix */ }
    }
    this.selfAddress = typeof map.self?.ipv4 === 'string' ? parseIpv4Address(map.self.ipv4) : null;
    this.byAddress.clear();
    this.byPeer.clear();
    const peersById = new Map<string, Peer>();
    const touched: { n: ControlMapNode; a: AppliedPeer; endpointsChanged: boolean }[] = [];
    for (const [key, n] of wanted) {
      const pub = decodeBase64Key(key)!;
      const prev = this.applied.get(key);
      const existing = this.engine.getPeer(pub);
      let peer;
      try {
        peer = existing ?? this.engine.addPeer(pub);
      } catch (e) {
        log.warn(`cannot add peer "${n.name}": ${(e as Error).message}`);
        continue;
      }
      // Disco chooses this peer's endpoint, not the last packet's source.
      peer.roaming = false;
      peersById.set(n.id, peer);
      const addr = typeof n.ipv4 === 'string' ? parseIpv4Address(n.ipv4) : null;
      const v6 = Buffer.alloc(16);
      const ipv6 = typeof n.ipv6 === 'string' && parseIpv6Address(n.ipv6, v6) ? v6 : null;
      if (addr !== null) this.byAddress.set(addr, { peer, ipv6 });
      this.byPeer.set(peer, { ipv4: addr, ipv6 });
      const endpoints = JSON.stringify(n.endpoints ?? []);
      const allowed = peerAllowedIps(n);
      if (this.opts.exitNode !== undefined && n.name === this.opts.exitNode && n.exitNode === true) allowed.push(...EXIT_ROUTES);
      const allowedText = JSON.stringify(allowed);
      if (!prev || prev.allowedIps !== allowedText || !existing) {
        this.engine.allowedIps.removeByPeer(peer);
        for (const a of allowed) {
          try {
            this.engine.allowedIps.insertCidr(parseCidr(a), peer);
          } catch {
            log.warn(`cannot use allowed IP "${a}" of "${n.name}"`);
          }
        }
      }
      if (peer.persistentKeepalive !== MESH_PERSISTENT_KEEPALIVE) this.engine.setPersistentKeepalive(peer, MESH_PERSISTENT_KEEPALIVE);
      const via = typeof n.via === 'string' && n.via !== '' ? n.via : null;
      const endpointsChanged = !prev || prev.endpoints !== endpoints || !existing;
      if (!prev) result.added.push(n.name);
      else if (prev.endpoints !== endpoints || prev.allowedIps !== allowedText || prev.name !== n.name || prev.via !== via) result.updated.push(n.name);
      const paths = prev && existing && prev.paths.peer === peer ? prev.paths : new PeerPaths(peer, n.id, n.name);
      paths.name = n.name;
      paths.tunnelled = this.isTunnelledAddress;
      const a: AppliedPeer = { name: n.name, id: n.id, endpoints, allowedIps: allowedText, via, peer, paths };
      this.applied.set(key, a);
      if (prev && prev.id !== n.id) this.pathsById.delete(prev.id);
      this.pathsByKey.set(key, paths);
      this.pathsById.set(n.id, paths);
      this.pathsByPeer.set(peer, paths);
      touched.push({ n, a, endpointsChanged });
    }
    // Relays and candidates last: a relay needs its via peer, which may come later in the map.
    const now0 = this.engine.clock.now();
    for (const t of touched) {
      const { n, a } = t;
      const p = a.paths;
      const viaPeer = a.via !== null ? peersById.get(a.via) : undefined;
      const addr = typeof n.ipv4 === 'string' ? parseIpv4Address(n.ipv4) : null;
      if (viaPeer && viaPeer !== a.peer && addr !== null) {
        const relayEp = this.relay.endpoint(viaPeer, addr);
        if (p.relay !== relayEp) log.info(`"${n.name}" has a relay now: ${this.nameOf(viaPeer)}`);
        p.relay = relayEp;
      } else {
        if (a.via !== null && !viaPeer) log.warn(`"${n.name}" should be reached through node ${a.via}, which is not a peer`);
        // A map without a relay for this peer keeps the one it had as a fallback while the relay
        // is still a peer (a restarted coordinator forgets paths until nodes report again, and a
        // relay keeps forwarding for a while): a direct path is preferred anyway.
        if (p.relay instanceof RelayEndpoint && !peersById.has(this.idOf(p.relay.via) ?? '')) p.relay = null;
      }
      if (t.endpointsChanged) {
        const wantedTexts = new Set<string>();
        let added = false;
        for (const ep of this.parseEndpoints(n)) {
          const text = endpointText(ep);
          wantedTexts.add(text);
          added = p.addCandidate(text, ep, 'map').added || added;
        }
        // Map candidates the node no longer reports go (unless they are working right now).
        for (const [text, c] of p.candidates) {
          if (c.source === 'map' && !wantedTexts.has(text) && c !== p.direct) p.candidates.delete(text);
        }
        if (added) this.disco.sweepNow(p);
      }
      this.disco.decide(p, now0);
    }
    this.mapVia.clear();
    for (const t of touched) {
      const viaPeer = t.a.via !== null ? peersById.get(t.a.via) : undefined;
      if (viaPeer && viaPeer !== t.a.peer) this.mapVia.set(t.a.peer, viaPeer);
    }
    const byId = new Map<string, { peer: Peer; ipv4: number | null }>();
    for (const t of touched) byId.set(t.n.id, { peer: t.a.peer, ipv4: this.byPeer.get(t.a.peer)?.ipv4 ?? null });
    this.lastPeersById = byId;
    this.selfId = typeof map.self?.id === 'string' ? map.self.id : null;
    const now = this.engine.clock.now();
    const listed = new Set<string>();
    for (const ids of map.relayPaths ?? []) {
      const key = ids.join('>');
      listed.add(key);
      this.relayPaths.set(key, { ids: [...ids], until: Infinity });
    }
    for (const [key, p] of this.relayPaths) if (!listed.has(key) && p.until === Infinity) p.until = now + RELAY_GRACE_MS;
    this.rebuildRelayRoutes(now);
    this.current = map;
    this.mapsApplied++;
    this.opts.onApplied?.(map, result);
    return result;
  }

  /** True when frames from node `source` to this node may arrive from neighbour `from`: the
   * map names `from` as the source's relay, or this node's path to the source goes through it. */
  private isRelayedFrom(source: number, from: Peer): boolean {
    const peer = this.byAddress.get(source)?.peer;
    if (peer === undefined) return false;
    const ep = peer.endpoint;
    const relay = this.pathsByPeer.get(peer)?.relay ?? null;
    return (ep instanceof RelayEndpoint && ep.via === from) || this.mapVia.get(peer) === from || (relay instanceof RelayEndpoint && relay.via === from);
  }

  private expireRelayPaths(now: number): void {
    let expired = false;
    for (const [key, p] of this.relayPaths) {
      if (p.until <= now) {
        this.relayPaths.delete(key);
        expired = true;
      }
    }
    if (expired) this.rebuildRelayRoutes(now);
  }

  /** The relay routes of every path through this node whose nodes are all in the map: for each
   * two nodes on either side of this one, frames from one to the other must come from the
   * neighbour on the source's side and go to the neighbour on the other. */
  private rebuildRelayRoutes(now: number): void {
    const routes = new Map<number, Map<number, RelayRoute>>();
    const self = this.selfId;
    const add = (src: number, dst: number, route: RelayRoute) => {
      let m = routes.get(src);
      if (!m) routes.set(src, (m = new Map()));
      m.set(dst, route);
    };
    for (const p of this.relayPaths.values()) {
      if (p.until <= now || self === null) continue;
      const i = p.ids.indexOf(self);
      if (i <= 0 || i >= p.ids.length - 1) continue;
      const nodes = p.ids.map((id) => this.lastPeersById.get(id));
      const before = nodes[i - 1]?.peer;
      const after = nodes[i + 1]?.peer;
      if (!before || !after || nodes.some((n, k) => k !== i && (!n || n.ipv4 === null))) continue;
      for (let j = 0; j < i; j++) {
        for (let k = i + 1; k < p.ids.length; k++) {
          add(nodes[j]!.ipv4!, nodes[k]!.ipv4!, { from: before, next: after });
          add(nodes[k]!.ipv4!, nodes[j]!.ipv4!, { from: after, next: before });
        }
      }
    }
    this.relayRoutes = routes;
  }

  private nameOf(peer: Peer): string {
    for (const a of this.applied.values()) if (a.peer === peer) return a.name;
    return '?';
  }

  private idOf(peer: Peer): string | undefined {
    for (const a of this.applied.values()) if (a.peer === peer) return a.id;
    return undefined;
  }

  private parseEndpoints(n: ControlMapNode): Endpoint[] {
    const out: Endpoint[] = [];
    for (const text of n.endpoints ?? []) {
      const ep = typeof text === 'string' ? this.engine.bind.parseEndpoint(text) : null;
      if (ep) out.push(ep);
      else log.warn(`cannot use endpoint "${String(text)}" of "${n.name}"`);
    }
    return out;
  }

  /** Removes every peer this node added. */
  clear(): void {
    for (const [key, a] of this.applied) {
      this.relay.forgetVia(a.peer);
      this.engine.removePeer(decodeBase64Key(key)!);
    }
    this.applied.clear();
    this.byAddress.clear();
    this.byPeer.clear();
    this.pathsByKey.clear();
    this.pathsById.clear();
    this.pathsByPeer.clear();
  }
}
