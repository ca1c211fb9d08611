// A mesh node's data plane driven by the coordinator's network map: MeshNode wraps an Engine and
// makes its peers match each map it is given, live. A peer per other node: its public key,
// allowed IPs (the node's overlay /32 and /128 plus approved routes, as the map's `allowedIps`),
// an endpoint (see Paths below), and a persistent keepalive. Nodes that left the map lose their
// peer at once. Between maps (the coordinator down, the client reconnecting) nothing is touched:
// the data plane keeps running on the last map, and the next map (resync) is applied as a diff.
// An endpoint is set for a new peer, and for an existing one only when its reported endpoints
// changed, so a peer that roamed keeps the address it was last heard from.
//
// Paths: a peer is first tried directly, on each of its reported endpoints in turn (PROBE_MS
// each). A peer heard from on a direct endpoint is "direct"; one that never answered on any is
// "failed". These states go to the coordinator (onPathStates), which finds a node that reaches
// both ends and puts it in the map as the peer's `via`; the peer then gets a RelayEndpoint through
// that node (relay.ts) and the end-to-end session runs through it. MeshNode also answers the
// Relay's questions (who has which overlay address) from the map, so this node relays for others.
import { decodeBase64Key } from '../crypto/index.js';
import { Logger } from '../util/index.js';
import { parseIpv4Address, parseIpv6Address } from '../wire/index.js';
import { parseCidr, type Endpoint, type Engine, type Peer } from '../wireguard/index.js';
import type { ControlMapNode, ControlNetworkMap, PathState } from './control-types.js';
import { Relay, RelayEndpoint, type RelayRoute } from './relay.js';

/** How long a direct endpoint is tried before the next one (a handshake retry is 5 s). */
export const PROBE_MS = 6_000;
/** A peer heard from within this long on a direct endpoint counts as directly reachable (the
 * persistent keepalive is 25 s). */
export const DIRECT_FRESH_MS = 70_000;
/** How long the end with the larger key waits before starting a handshake on a new path. */
const KICK_DELAY_MS = 1_000;
/** How often path states are re-evaluated. */
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
}

/** How a peer is reached now. */
export interface PeerPath {
  kind: 'direct' | 'relay' | 'none';
  /** The relaying node's name (kind relay). */
  via?: string;
  /** The direct path's state: heard from, never answered on any endpoint, or still trying. */
  state: PathState | 'trying';
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
  /** Direct endpoints to try, in order, and the one in use. */
  candidates: Endpoint[];
  index: number;
  /** Clock ms when the current direct endpoint was set. */
  directSince: number;
  /** Every candidate was tried at least once without an answer. */
  triedAll: boolean;
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

  constructor(readonly engine: Engine, private readonly opts: MeshNodeOptions = {}) {
    this.relay = new Relay(engine, {
      selfAddress: () => this.selfAddress,
      peerByAddress: (a) => this.byAddress.get(a)?.peer,
      ipv6ByAddress: (a) => this.byAddress.get(a)?.ipv6 ?? null,
      addressesOfPeer: (p) => this.byPeer.get(p) ?? NO_ADDRESSES,
      relayRoute: (source, dest) => this.relayRoutes.get(source)?.get(dest),
      relayedFrom: (source, from) => this.isRelayedFrom(source, from),
    });
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
  }

  /** How the peer with this public key (base64) is reached now, or null for an unknown peer. */
  pathOf(publicKey: string): PeerPath | null {
    const a = this.applied.get(publicKey);
    if (!a) return null;
    const ep = a.peer.endpoint;
    const state = this.directState(a);
    if (ep instanceof RelayEndpoint) {
      let via = '?';
      for (const b of this.applied.values()) if (b.peer === ep.via) via = b.name;
      return { kind: 'relay', via, state };
    }
    return { kind: ep ? 'direct' : 'none', state };
  }

  /** The direct path state of every peer that has one (what goes to the coordinator). */
  pathStates(): Record<string, PathState> {
    const out: Record<string, PathState> = {};
    for (const a of this.applied.values()) {
      const st = this.directState(a);
      if (st !== 'trying') out[a.id] = st;
    }
    return out;
  }

  private directState(a: AppliedPeer): PathState | 'trying' {
    const ep = a.peer.endpoint;
    if (ep instanceof RelayEndpoint) return 'failed';
    const now = this.engine.clock.now();
    if (ep !== null && a.peer.lastReceived >= a.directSince && now - a.peer.lastReceived < DIRECT_FRESH_MS) return 'direct';
    return a.triedAll ? 'failed' : 'trying';
  }

  /** Tries the next direct endpoint of peers not heard from, and reports changed states. */
  checkPaths(): void {
    const now = this.engine.clock.now();
    this.expireRelayPaths(now);
    for (const a of this.applied.values()) {
      if (a.peer.endpoint instanceof RelayEndpoint) continue;
      if (this.directState(a) === 'direct') continue;
      if (now - a.directSince < PROBE_MS) continue;
      if (a.candidates.length === 0) {
        a.triedAll = true;
        continue;
      }
      a.index = (a.index + 1) % a.candidates.length;
      if (a.index === 0) a.triedAll = true;
      if (a.candidates.length > 1 || a.peer.endpoint === null) this.useEndpoint(a, a.candidates[a.index]!);
      else a.directSince = now;
    }
    const states = this.pathStates();
    const text = JSON.stringify(states);
    if (text !== this.lastStates) {
      this.lastStates = text;
      this.opts.onPathStates?.(states);
    }
  }

  private useEndpoint(a: AppliedPeer, ep: Endpoint): void {
    this.engine.setEndpoint(a.peer, ep);
    a.directSince = this.engine.clock.now();
    // Start a handshake on the new path now rather than at the next retry. Both ends usually
    // switch at once; two crossing initiations cancel each other (each side's state becomes the
    // responder's) and cost a 5 s retry, so the end with the smaller key goes first and the other
    // only if it has heard nothing after KICK_DELAY_MS.
    const self = this.engine.publicKey;
    const peer = a.peer;
    const kick = () => {
      if (!this.engine.isRunning || peer.endpoint !== ep) return;
      peer.lastInitiationSent = -Infinity;
      this.engine.sendKeepalive(peer);
    };
    if (self === null || Buffer.compare(self, peer.publicKey) < 0) kick();
    else {
      const heard = peer.lastReceived;
      const t = setTimeout(() => { if (peer.lastReceived === heard) kick(); }, KICK_DELAY_MS);
      t.unref();
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
      result.removed.push(prev.name);
    }
    this.selfAddress = typeof map.self?.ipv4 === 'string' ? parseIpv4Address(map.self.ipv4) : null;
    this.byAddress.clear();
    this.byPeer.clear();
    const peersById = new Map<string, Peer>();
    const touched: { n: ControlMapNode; a: AppliedPeer; endpointsChanged: boolean; viaChanged: boolean; isNew: boolean }[] = [];
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
      const a: AppliedPeer = prev && existing ? { ...prev, name: n.name, id: n.id, endpoints, allowedIps: allowedText, via, peer }
        : { name: n.name, id: n.id, endpoints, allowedIps: allowedText, via, peer, candidates: [], index: 0, directSince: this.engine.clock.now(), triedAll: false };
      if (endpointsChanged) a.candidates = this.parseEndpoints(n);
      this.applied.set(key, a);
      touched.push({ n, a, endpointsChanged, viaChanged: !prev || prev.via !== via, isNew: !prev || !existing });
    }
    // Endpoints last: a relay needs its via peer, which may come later in the map.
    const relayUsable = new Set<Peer>();
    for (const p of peersById.values()) if (!(p.endpoint instanceof RelayEndpoint)) relayUsable.add(p);
    for (const t of touched) {
      const { n, a } = t;
      const viaPeer = a.via !== null ? peersById.get(a.via) : undefined;
      const addr = typeof n.ipv4 === 'string' ? parseIpv4Address(n.ipv4) : null;
      if (viaPeer && viaPeer !== a.peer && addr !== null && !(viaPeer.endpoint instanceof RelayEndpoint)) {
        const ep = this.relay.endpoint(viaPeer, addr);
        if (a.peer.endpoint !== ep && (t.viaChanged || !(a.peer.endpoint instanceof RelayEndpoint))) {
          log.info(`"${n.name}" is reached through a relay now`);
          this.useEndpoint(a, ep);
        }
        continue;
      }
      if (a.via !== null && !viaPeer) log.warn(`"${n.name}" should be reached through node ${a.via}, which is not a peer; trying it directly`);
      const cur = a.peer.endpoint;
      if (cur instanceof RelayEndpoint && relayUsable.has(cur.via)) {
        // The map no longer names a relay, but this node could not reach the peer directly
        // either (a restarted coordinator forgot the paths until nodes report again). Stay on
        // the relay: if the peer reaches us directly, roaming moves us to the direct path.
        continue;
      }
      if (t.endpointsChanged || cur instanceof RelayEndpoint) {
        a.index = 0;
        a.triedAll = false;
        const first = a.candidates[0];
        if (first) this.useEndpoint(a, first);
        else if (t.isNew || a.peer.endpoint instanceof RelayEndpoint) {
          this.engine.setEndpoint(a.peer, null);
          a.directSince = this.engine.clock.now();
        }
      }
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
    return (ep instanceof RelayEndpoint && ep.via === from) || this.mapVia.get(peer) === from;
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
  }
}
