// The control server's live Noise sessions (each holds two keys and a replay window), bounded per
// TLS connection, per source and per node key. Adding a session to a full group evicts that
// group's oldest session: `onEvict` wipes its keys and closes what still uses it, and the evictions
// are counted per group. So however many handshakes a source or a key completes, what the
// server keeps for it stays within the caps.

export type SessionGroup = 'connection' | 'source' | 'key';

export type SessionCaps = Readonly<Record<SessionGroup, number>>;

interface Entry<S> {
  session: S;
  groups: Record<SessionGroup, string>;
}

const GROUPS: readonly SessionGroup[] = ['connection', 'source', 'key'];

export class SessionTable<S> {
  private readonly byId = new Map<string, Entry<S>>();
  /** Per group kind: group -> session ids, oldest first. */
  private readonly members: Record<SessionGroup, Map<string, string[]>> = { connection: new Map(), source: new Map(), key: new Map() };
  /** Sessions evicted because their group was full. */
  readonly evicted: Record<SessionGroup, number> = { connection: 0, source: 0, key: 0 };

  constructor(private readonly caps: SessionCaps, private readonly onEvict: (session: S, group: SessionGroup) => void) {}

  get size(): number {
    return this.byId.size;
  }

  get(id: string): S | undefined {
    return this.byId.get(id)?.session;
  }

  /** Adds a session under `id` (replacing one with the same id), then evicts the oldest of any
   * group it made too large. */
  add(id: string, session: S, groups: Record<SessionGroup, string>): void {
    this.delete(id);
    this.byId.set(id, { session, groups: { ...groups } });
    for (const g of GROUPS) {
      const ids = this.members[g].get(groups[g]) ?? [];
      ids.push(id);
      this.members[g].set(groups[g], ids);
      while (ids.length > this.caps[g]) {
        const oldest = ids[0]!;
        const gone = this.delete(oldest);
        if (gone === undefined) break;
        this.evicted[g]++;
        this.onEvict(gone, g);
      }
    }
  }

  /** Removes a session (no onEvict); returns it. */
  delete(id: string): S | undefined {
    const e = this.byId.get(id);
    if (!e) return undefined;
    this.byId.delete(id);
    for (const g of GROUPS) {
      const ids = this.members[g].get(e.groups[g]);
      if (!ids) continue;
      const i = ids.indexOf(id);
      if (i >= 0) ids.splice(i, 1);
      if (ids.length === 0) this.members[g].delete(e.groups[g]);
    }
    return e.session;
  }

  /** Removes every session of one group (e.g. a closed connection); returns them. */
  deleteGroup(group: SessionGroup, name: string): S[] {
    const ids = [...(this.members[group].get(name) ?? [])];
    return ids.map((id) => this.delete(id)).filter((s): s is S => s !== undefined);
  }

  values(): IterableIterator<S> {
    return [...this.byId.values()].map((e) => e.session)[Symbol.iterator]();
  }

  clear(): void {
    this.byId.clear();
    for (const g of GROUPS) this.members[g].clear();
  }
}
