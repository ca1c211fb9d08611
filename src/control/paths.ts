// The coordinator's view of which nodes reach each other directly, and the relays it picks for
// the pairs that cannot (multi-hop). Nodes report, per peer, "direct" (heard from on a direct
// endpoint) or "failed" (never answered on any endpoint); peers still being tried are left out.
// A pair is linked when either end reports it direct. A pair with a failure report and no direct
// report gets a relay path: the shortest chain of linked nodes (breadth-first, ties broken by node
// id so every coordinator run picks the same); each end's map names the first hop as the other's
// `via`, and every relay on the way forwards by its own map, so longer chains work hop by hop.
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
    return true;
  }

  /** Forgets a node (it was removed). */
  forget(nodeId: string): void {
    this.reports.delete(nodeId);
    for (const m of this.reports.values()) m.delete(nodeId);
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

  /** For node `self` among `nodes` (live node ids): peer id -> id of the first hop toward it, for
   * every peer it must reach through relays and can. */
  viasFor(self: string, nodes: readonly string[]): Map<string, string> {
    const ids = [...new Set(nodes)].sort();
    const out = new Map<string, string>();
    const failed = ids.filter((p) => p !== self && this.state(self, p) === 'failed');
    if (failed.length === 0) return out;
    // Breadth-first from self over direct links, remembering each node's first hop.
    const first = new Map<string, string>();
    const seen = new Set<string>([self]);
    let frontier = [self];
    while (frontier.length > 0) {
      const next: string[] = [];
      for (const u of frontier) {
        for (const v of ids) {
          if (seen.has(v) || this.state(u, v) !== 'direct') continue;
          seen.add(v);
          first.set(v, u === self ? v : first.get(u)!);
          next.push(v);
        }
      }
      frontier = next;
    }
    for (const p of failed) {
      const hop = first.get(p);
      if (hop !== undefined && hop !== p) out.set(p, hop);
    }
    return out;
  }

  /** A fingerprint of every node's vias, to tell whether a report changed any map. */
  fingerprint(nodes: readonly string[]): string {
    const parts: string[] = [];
    for (const n of [...nodes].sort()) {
      const v = this.viasFor(n, nodes);
      if (v.size > 0) parts.push(`${n}:${[...v].sort().map(([p, h]) => `${p}>${h}`).join(',')}`);
    }
    return parts.join(';');
  }
}
