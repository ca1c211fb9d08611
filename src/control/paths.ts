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
// The table lives in memory: after a coordinator restart, nodes report again (they report on
// reconnect and on every change), and until then maps carry no `via` (relayed sessions already
// up keep their endpoints: a node only changes a peer's path when its `via` changes).

import type { PathState } from '../mesh/index.js';
export type { PathState };

export class PathTable {
  /** node id -> peer id -> what the node reported. */
  private readonly reports = new Map<string, Map<string, PathState>>();

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

  /** Forgets a node (it was removed). */
  forget(nodeId: string): void {
    this.reports.delete(nodeId);
    for (const m of this.reports.values()) m.delete(nodeId);
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
        if (this.state(ids[i]!, ids[j]!) !== 'failed') continue;
        const path = this.shortestChain(ids[i]!, ids[j]!, ids);
        if (path) paths.push(path);
      }
    }
    const plan = new RelayPlan(paths);
    this.cache = { key, plan };
    return plan;
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
    return this.plan(nodes).paths.map((p) => p.join('>')).join(';');
  }
}

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
