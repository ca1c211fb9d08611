// The network's names for a mesh node: the records a network map gives (<name>.mesh and
// <name>.<network> for every node), and MeshNameResolver, the HostResolver the userspace node's
// proxies use: names in the mesh zones are answered from the map (IPv4 first, else IPv6), a name
// in those zones that no node has is ENOTFOUND (it never leaks to the system resolver), and every
// other name goes to the fallback (the system resolver).

import type { ControlNetworkMap } from '../mesh/index.js';
import { MESH_ZONE, type NameRecord } from '../dns/index.js';
import { DialError, SystemResolver, literalHost, type HostResolver, type ResolvedHost } from '../forward/index.js';

/** The DNS records of a network map (nodes without a name are skipped). */
export function mapRecords(map: ControlNetworkMap): NameRecord[] {
  return [map.self, ...(map.peers ?? [])].filter((n) => n && typeof n.name === 'string' && n.name !== '')
    .map((n) => ({ name: n.name, network: map.network.name, ipv4: n.ipv4 || null, ipv6: n.ipv6 || null }));
}

function normalize(host: string): string {
  const h = host.toLowerCase();
  return h.endsWith('.') ? h.slice(0, -1) : h;
}

export class MeshNameResolver implements HostResolver {
  private names = new Map<string, { ipv4: string | null; ipv6: string | null }>();
  private zones = new Set<string>([MESH_ZONE]);

  constructor(private readonly fallback: HostResolver = new SystemResolver()) {}

  /** Replaces the names with these records. */
  setRecords(records: readonly NameRecord[]): void {
    const names = new Map<string, { ipv4: string | null; ipv6: string | null }>();
    const zones = new Set<string>([MESH_ZONE]);
    for (const r of records) {
      const name = normalize(r.name);
      const addrs = { ipv4: r.ipv4 ?? null, ipv6: r.ipv6 ?? null };
      names.set(`${name}.${MESH_ZONE}`, addrs);
      if (r.network) {
        const net = normalize(r.network);
        zones.add(net);
        names.set(`${name}.${net}`, addrs);
      }
    }
    this.names = names;
    this.zones = zones;
  }

  /** The addresses of a mesh name, or null when `host` is not one. */
  lookup(host: string): ResolvedHost | null {
    const e = this.names.get(normalize(host));
    if (!e) return null;
    if (e.ipv4) return { address: e.ipv4, family: 4 };
    if (e.ipv6) return { address: e.ipv6, family: 6 };
    return null;
  }

  async resolve(host: string): Promise<ResolvedHost> {
    const lit = literalHost(host);
    if (lit) return lit;
    const hit = this.lookup(host);
    if (hit) return hit;
    const h = normalize(host);
    const dot = h.lastIndexOf('.');
    if (dot > 0 && this.zones.has(h.slice(dot + 1))) throw new DialError('ENOTFOUND', `cannot resolve ${host}: no node of the network has that name`);
    return this.fallback.resolve(host);
  }
}
