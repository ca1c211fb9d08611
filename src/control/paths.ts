// The coordinator's view of which nodes reach each other directly, and the relays it picks for
// the pairs that cannot (multi-hop). Nodes report, per peer, "direct" (heard from on a direct
// endpoint) or "failed" (never answered on any endpoint); peers still being tried are left out.
// A pair is linked when either end reports it direct. A pair with a failure report and no direct
// report gets a relay path: the shortest chain of linked nodes (breadth-first from the pair's
// smaller id, ties broken by node id so every coordinator run picks the same). Each end's map
// names its neighbour on the path as the other's `via`, and every relay on the path gets the whole
// path in its map (`relayPaths`): it forwards frames only between two nodes of a path it is on,
// only from the neighbour on the source's side, and only to the neighbour on the other side.
// Pairs nobody reported failed are left alone: they are still trying, or fine.
//
// Choosing relays (issue 10): a pair that two nodes' direct links can join through one relay gets
// the relay with the lowest round-trip time (what the ends report for their links to it; an
// unknown RTT counts as UNKNOWN_RTT_MS). Nodes that offer relaying (the coordinator, members
// started with --relay) are preferred over other members (NON_RELAY_HANDICAP_MS); a pair keeps its relay unless another
// is clearly better (a third faster and at least 10 ms, as Tailscale's DERP choice does), so
// paths do not flap. Pairs no single relay joins get the shortest chain, as above.
//
// The coordinator keeps the table in path-table.json (snapshot/restore): a restarted coordinator
// hands out the same relays at once, and nodes correct it as they report again (on reconnect and
// on every change).

import type { PathState } from '../mesh/index.js';
export type { PathState };

/** A relay is replaced only by one whose path RTT is below this share of the current one's... */
export const RELAY_SWITCH_RATIO = 2 / 3;
/** ...and at least this much lower (ms). */
export const RELAY_SWITCH_MIN_MS = 10;
/** Added to the cost of a relay through a node that does not offer relaying (a plain member). */
export const NON_RELAY_HANDICAP_MS = 20;
/** The RTT assumed for a link nobody reported one for. */
export const UNKNOWN_RTT_MS = 1_000;

export class PathTable {
  /** node id -> peer id -> what the node reported. */
  private readonly reports = new Map<string, Map<string, PathState>>();
  /** node id -> peer id -> reported round-trip time (ms) of their direct link. */
  private readonly rtts = new Map<string, Map<string, number>>();
  /** Nodes that offer relaying (the coordinator's own, members started with --relay). */
  private readonly relayNodes = new Set<string>();
  /** The path each relayed pair uses now ("x>y" -> path), for the hysteresis. */
  private readonly chosen = new Map<string, readonly string[]>();

  /** The stream transports relaying nodes offer (issue 11): TLS port for HTTPS, TCP port. */
  private readonly relayPorts = new Map<string, RelayPorts>();

  /** Marks `nodeId` as offering relaying (or not), with its stream ports. True when that changed. */
  setRelay(nodeId: string, on: boolean, ports?: RelayPorts): boolean {
    const text = JSON.stringify(this.relayPorts.get(nodeId) ?? null);
    if (on && ports) this.relayPorts.set(nodeId, { ...ports });
    else if (!on) this.relayPorts.delete(nodeId);
    const portsChanged = JSON.stringify(this.relayPorts.get(nodeId) ?? null) !== text;
    if (this.relayNodes.has(nodeId) === on && !portsChanged) return false;
    if (on) this.relayNodes.add(nodeId);
    else this.relayNodes.delete(nodeId);
    this.generation++;
    return true;
  }

  /** The relaying nodes and their stream ports (for the maps). */
  relays(): ReadonlyMap<string, RelayPorts> {
    const out = new Map<string, RelayPorts>();
    for (const id of this.relayNodes) out.set(id, this.relayPorts.get(id) ?? {});
    return out;
  }

  /** Replaces the round-trip times `nodeId` reports for its direct links (peer id -> ms). */
  reportRtts(nodeId: string, rtts: Record<string, number>): void {
    const next = new Map<string, number>();
    for (const [peer, ms] of Object.entries(rtts)) {
      if (peer !== nodeId && typeof ms === 'number' && Number.isFinite(ms) && ms >= 0) next.set(peer, Math.min(ms, 60_000));
    }
    this.rtts.set(nodeId, next);
    this.generation++;
  }

  /** The round-trip time of the link a-b, ms (the lower of both ends' reports). */
  private rtt(a: string, b: string): number {
    const ab = this.rtts.get(a)?.get(b);
    const ba = this.rtts.get(b)?.get(a);
    if (ab === undefined && ba === undefined) return UNKNOWN_RTT_MS;
    return Math.min(ab ?? Infinity, ba ?? Infinity);
  }

  /** Replaces what `nodeId` reports. True when that changed anything. */
  report(nodeId: string, paths: Record<string, PathState>): boolean {
    const next = new Map<string, PathState>();
    for (const [peer, st] of Object.entries(paths)) {
      if ((st === 'direct' || st === 'failed') && peer !== nodeId) next.set(peer, st);
    }
    const prev = this.reports.get(nodeId);
    const same = prev !== undefined && prev.size === next.size && [...next].every(([k, v]) => prev.get(k) === v);
    if (same) return false;
    if (next.size === 0) this.reports.delete(nodeId);
    else this.reports.set(nodeId, next);
    this.generation++;
    return true;
  }

  /** Everything the table knows, as plain data. */
  snapshot(): PathTableSnapshot {
    const obj = <T>(m: Map<string, Map<string, T>>) => Object.fromEntries([...m].map(([k, v]) => [k, Object.fromEntries(v)]));
    return { reports: obj(this.reports), rtts: obj(this.rtts), relays: [...this.relayNodes], chosen: Object.fromEntries([...this.chosen].map(([k, v]) => [k, [...v]])) };
  }

  /** Loads a snapshot read back from disk: untrusted, so every id, state and number is checked
   * and anything else is skipped. */
  restore(snap: unknown): void {
    if (typeof snap !== 'object' || snap === null) return;
    const s = snap as Record<string, unknown>;
    const isId = (v: unknown): v is string => typeof v === 'string' && SNAPSHOT_ID_RE.test(v);
    const table = <T>(v: unknown, ok: (x: unknown) => x is T, into: Map<string, Map<string, T>>) => {
      if (typeof v !== 'object' || v === null) return;
      for (const [node, peers] of Object.entries(v as Record<string, unknown>)) {
        if (!isId(node) || typeof peers !== 'object' || peers === null) continue;
        const m = new Map<string, T>();
        for (const [peer, x] of Object.entries(peers as Record<string, unknown>)) if (isId(peer) && peer !== node && ok(x)) m.set(peer, x);
        if (m.size > 0) into.set(node, m);
      }
    };
    table(s.reports, (x): x is PathState => x === 'direct' || x === 'failed', this.reports);
    table(s.rtts, (x): x is number => typeof x === 'number' && Number.isFinite(x) && x >= 0 && x <= 60_000, this.rtts);
    if (Array.isArray(s.relays)) for (const r of s.relays) if (isId(r)) this.relayNodes.add(r);
    if (typeof s.chosen === 'object' && s.chosen !== null) {
      for (const [pair, path] of Object.entries(s.chosen as Record<string, unknown>)) {
        if (Array.isArray(path) && path.length >= 3 && path.length <= 17 && path.every(isId) && pair === `${path[0]}>${path[path.length - 1]}`) this.chosen.set(pair, path);
      }
    }
    this.generation++;
  }

  /** Forgets a node (it was removed). */
  forget(nodeId: string): void {
    this.reports.delete(nodeId);
    for (const m of this.reports.values()) m.delete(nodeId);
    this.rtts.delete(nodeId);
    for (const m of this.rtts.values()) m.delete(nodeId);
    this.relayNodes.delete(nodeId);
    this.relayPorts.delete(nodeId);
    this.generation++;
  }

  /** What `nodeId` reported (for status). */
  reported(nodeId: string): Record<string, PathState> {
    return Object.fromEntries(this.reports.get(nodeId) ?? []);
  }

  private state(a: string, b: string): PathState | null {
    const ab = this.reports.get(a)?.get(b);
    const ba = this.reports.get(b)?.get(a);
    if (ab === 'direct' || ba === 'direct') return 'direct';
    if (ab === 'failed' || ba === 'failed') return 'failed';
    return null;
  }

  /** The relay plan for the live nodes `nodes`: one path per pair that must be relayed (see
   * plan()); cached until a report or the node set changes. */
  private cache: { key: string; plan: RelayPlan } | null = null;
  private generation = 0;

  /** The relay paths for the live nodes `nodes`. Every pair reported failed and never direct gets
   * one path, the shortest chain of direct links found breadth-first from the pair's smaller id
   * (ties broken by id, so every run picks the same): both ends and every relay on it use that
   * same path, so a relay can check that a frame travels between the two ends it was paired for
   * and along the path. Pairs with no chain get none. */
  plan(nodes: readonly string[]): RelayPlan {
    const ids = [...new Set(nodes)].sort();
    const key = `${this.generation}|${ids.join(',')}`;
    if (this.cache?.key === key) return this.cache.plan;
    const paths: string[][] = [];
    for (let i = 0; i < ids.length; i++) {
      for (let j = i + 1; j < ids.length; j++) {
        const pair = `${ids[i]}>${ids[j]}`;
        if (this.state(ids[i]!, ids[j]!) !== 'failed') {
          this.chosen.delete(pair);
          continue;
        }
        const path = this.oneRelay(ids[i]!, ids[j]!, ids) ?? this.shortestChain(ids[i]!, ids[j]!, ids);
        if (path) {
          paths.push(path);
          this.chosen.set(pair, path);
        } else {
          this.chosen.delete(pair);
        }
      }
    }
    const plan = new RelayPlan(paths);
    this.cache = { key, plan };
    return plan;
  }

  /** [x, relay, y] through the relay with the lowest RTT that links both directly (relaying
   * nodes first), keeping the current one unless another is clearly better; null when no single
   * node links both. */
  private oneRelay(x: string, y: string, ids: readonly string[]): string[] | null {
    const linked = ids.filter((r) => r !== x && r !== y && this.state(x, r) === 'direct' && this.state(r, y) === 'direct');
    if (linked.length === 0) return null;
    // Relaying nodes are preferred by a handicap on the others, not absolutely: a plain member
    // reached over UDP beats a relaying node one of the ends reaches only over a stream (nodes
    // report stream RTTs with the stream's penalty), as the ladder UDP relay -> HTTPS -> TCP says.
    const pool = linked;
    const cost = (r: string) => this.rtt(x, r) + this.rtt(r, y) + (this.relayNodes.has(r) ? 0 : NON_RELAY_HANDICAP_MS);
    let best = pool[0]!;
    for (const r of pool) if (cost(r) < cost(best)) best = r;
    const prev = this.chosen.get(`${x}>${y}`);
    if (prev && prev.length === 3 && prev[1] !== best && pool.includes(prev[1]!)) {
      const was = cost(prev[1]!);
      const now = cost(best);
      if (!(now < was * RELAY_SWITCH_RATIO && was - now >= RELAY_SWITCH_MIN_MS)) best = prev[1]!;
    }
    return [x, best, y];
  }

  /** The shortest chain of direct links from `from` to `to` (both included), or null. */
  private shortestChain(from: string, to: string, ids: readonly string[]): string[] | null {
    const parent = new Map<string, string>([[from, from]]);
    let frontier = [from];
    while (frontier.length > 0 && !parent.has(to)) {
      const next: string[] = [];
      for (const u of frontier) {
        for (const v of ids) {
          if (parent.has(v) || this.state(u, v) !== 'direct') continue;
          parent.set(v, u);
          next.push(v);
        }
      }
      frontier = next;
    }
    if (!parent.has(to)) return null;
    const path = [to];
    while (path[path.length - 1] !== from) path.push(parent.get(path[path.length - 1]!)!);
    return path.reverse();
  }

  /** For node `self` among `nodes` (live node ids): peer id -> id of the first hop toward it, for
   * every peer it must reach through relays and can. */
  viasFor(self: string, nodes: readonly string[]): Map<string, string> {
    return this.plan(nodes).viasFor(self);
  }

  /** The relay paths `self` is strictly inside of (it relays for their two ends). */
  relayPathsFor(self: string, nodes: readonly string[]): string[][] {
    return this.plan(nodes).relayPathsFor(self);
  }

  /** A fingerprint of every relay path, to tell whether a report changed any map. */
  fingerprint(nodes: readonly string[]): string {
    const relays = [...this.relays()].sort(([x], [y]) => (x < y ? -1 : 1));
    return `${this.plan(nodes).paths.map((p) => p.join('>')).join(';')}|${JSON.stringify(relays)}`;
  }
}

/** The stream ports a relaying node serves (HTTPS: MASQUE CONNECT-UDP; TCP: framed datagrams). */
export interface RelayPorts {
  https?: number;
  tcp?: number;
}

/** What a PathTable keeps across coordinator restarts (path-table.json). */
export interface PathTableSnapshot {
  reports: Record<string, Record<string, PathState>>;
  rtts: Record<string, Record<string, number>>;
  relays: string[];
  chosen: Record<string, string[]>;
}

const SNAPSHOT_ID_RE = /^[a-z]{1,16}_[0-9a-hjkmnp-tv-z]{1,64}$/;

/** Relay paths (node ids, end to end) and what each node's map gets of them. */
export class RelayPlan {
  constructor(readonly paths: readonly (readonly string[])[]) {}

  /** Peer id -> first hop toward it, for `self` (an end of some paths). */
  viasFor(self: string): Map<string, string> {
    const out = new Map<string, string>();
    for (const p of this.paths) {
      if (p[0] === self) out.set(p[p.length - 1]!, p[1]!);
      else if (p[p.length - 1] === self) out.set(p[0]!, p[p.length - 2]!);
    }
    return out;
  }

  /** The paths `self` relays on (strictly inside them). */
  relayPathsFor(self: string): string[][] {
    return this.paths.filter((p) => p.indexOf(self) > 0 && p.indexOf(self) < p.length - 1).map((p) => [...p]);
  }
}
