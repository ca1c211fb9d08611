// The mesh node's peer and probe endpoints on its local API socket (mesh.api), for `meshtun peers`,
// `meshtun ping`, `meshtun traceroute` and `meshtun status`:
//   GET  /v1/mesh/peers       every peer of the map: addresses, key, endpoint, path (direct or
//                             relayed via a node), latest handshake, last heard from, traffic, online
//   POST /v1/mesh/ping        {target, count?, ttl?, family?, intervalMs?, timeoutMs?, payloadSize?}
//   POST /v1/mesh/traceroute  {target, maxHops?, family?, probesPerHop?, timeoutMs?}
// and a `mesh` block in GET /v1/status (network, node, addresses, role, peers online/total).
// A target is a node name, `<name>.mesh`, `<name>.<network>`, or an overlay IP; names resolve
// through the node's current network map. The probes are ICMP echo requests from the node's own
// overlay address sent into the tunnel by one Prober (see mesh/probe.ts), so they work the same on
// a kernel TUN and on the userspace stack.
import { UserError } from '../util/index.js';
import { decodeBase64Key } from '../crypto/index.js';
import {
  Prober, ipLiteralFamily, summarizePing, MESH_PERSISTENT_KEEPALIVE, MAX_PING_COUNT, MAX_TRACE_HOPS, MAX_PROBE_TIMEOUT_MS,
  MAX_PAYLOAD_SIZE, type MeshNode, type ControlMapNode, type ProbeResult, type PingSummary, type TraceHop,
} from '../mesh/index.js';
import type { ApiRoutes, InterfaceStatus } from './api-server.js';

/** A peer counts as online when it was heard from, or completed a handshake, within this window
 * (three keepalives and some). */
export const MESH_ONLINE_WINDOW_MS = 3 * MESH_PERSISTENT_KEEPALIVE * 1000 + 15_000;
/** The domain `<name>.mesh` (as the node's DNS answers it). */
export const MESH_DOMAIN = 'mesh';

export interface MeshPeerPath {
  /** "direct" only once a discovery pong came back on the endpoint. */
  kind: 'direct' | 'relay' | 'none';
  /** The relaying node's name (kind relay). */
  via: string | null;
  /** The direct path's state: "direct", "failed" (no candidate answered), "trying". */
  state: string | null;
  /** The underlay transport: "udp". */
  transport: string;
  /** Where packets go: the peer's endpoint (direct), the relay's (relay), or null. */
  endpoint: string | null;
  /** Round-trip time of the direct path's last discovery pong (ms), or null. */
  rttMs: number | null;
  /** When the path last changed (ISO 8601), or null. */
  since: string | null;
}

export interface MeshPeerInfo {
  name: string;
  ipv4: string;
  ipv6: string;
  publicKey: string;
  tags: string[];
  /** Where packets to the peer go now (wg's "endpoint"); null: none yet. */
  endpoint: string | null;
  /** The endpoints the peer reported to the coordinator. */
  endpoints: string[];
  path: MeshPeerPath;
  /** Wall-clock ms of the latest handshake; 0: never. */
  latestHandshake: number;
  /** Wall-clock ms the peer was last heard from; 0: never. */
  lastReceived: number;
  rxBytes: number;
  txBytes: number;
  online: boolean;
  exitNode: boolean;
  routes: string[];
}

export interface MeshPeersReply {
  network: string;
  self: { name: string; ipv4: string; ipv6: string };
  peers: MeshPeerInfo[];
}

export interface MeshStatusBlock {
  role?: string;
  network: string | null;
  node: string | null;
  ipv4: string | null;
  ipv6: string | null;
  peers: { online: number; total: number };
}

export interface MeshPingReply {
  target: string;
  /** The node's name, when the address belongs to one. */
  name: string | null;
  address: string;
  family: 4 | 6;
  source: string;
  results: ProbeResult[];
  summary: PingSummary;
}

export interface MeshTraceHop extends TraceHop {
  /** The node owning the hop's address, when it is one of the map's. */
  name: string | null;
}

export interface MeshTraceReply {
  target: string;
  name: string | null;
  address: string;
  family: 4 | 6;
  source: string;
  maxHops: number;
  hops: MeshTraceHop[];
  reached: boolean;
}

/** A resolved probe target. */
export interface MeshTarget {
  name: string | null;
  address: string;
  family: 4 | 6;
}

interface PathSource {
  pathOf?: (publicKey: string) => { kind: 'direct' | 'relay' | 'none'; via?: string; state?: string; transport?: string; endpoint?: string | null; rttMs?: number | null; since?: string | null } | null;
}

function intField(b: Record<string, unknown>, key: string, min: number, max: number): number | undefined {
  const v = b[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    throw new UserError(`"${key}" must be a whole number from ${min} to ${max}`, `got ${JSON.stringify(v)}`);
  }
  return v;
}

function familyField(b: Record<string, unknown>): 4 | 6 | undefined {
  const v = b.family;
  if (v === undefined || v === null) return undefined;
  if (v === 4 || v === 6 || v === '4' || v === '6') return Number(v) as 4 | 6;
  throw new UserError(`"family" must be 4 or 6`, `got ${JSON.stringify(v)}`);
}

/** The mesh endpoints of a node's local API, over its MeshNode. */
export class MeshApi {
  readonly prober: Prober;

  constructor(readonly mesh: MeshNode) {
    this.prober = new Prober(mesh.engine, () => ({ ipv4: mesh.map?.self?.ipv4 || null, ipv6: mesh.map?.self?.ipv6 || null }));
  }

  /** The routes of this file, falling through to `next`. */
  routes(next?: ApiRoutes): ApiRoutes {
    return async (method, url, body) => {
      const b = (body ?? {}) as Record<string, unknown>;
      if (method === 'GET' && url === '/v1/mesh/peers') return { status: 200, body: this.peers() };
      if (method === 'POST' && url === '/v1/mesh/ping') return { status: 200, body: await this.ping(b) };
      if (method === 'POST' && url === '/v1/mesh/traceroute') return { status: 200, body: await this.traceroute(b) };
      return next?.(method, url, body);
    };
  }

  /** `base` with the mesh block added (keeping what base's own block says, e.g. the role). */
  status<T extends InterfaceStatus & { mesh?: Record<string, unknown> }>(base: () => T): () => T & { mesh: MeshStatusBlock } {
    return () => {
      const st = base();
      return { ...st, mesh: { ...(st.mesh ?? {}), ...this.statusBlock() } };
    };
  }

  statusBlock(): MeshStatusBlock {
    const map = this.mesh.map;
    const peers = map ? this.peers().peers : [];
    return {
      network: map?.network?.name ?? null,
      node: map?.self?.name ?? null,
      ipv4: map?.self?.ipv4 || null,
      ipv6: map?.self?.ipv6 || null,
      peers: { online: peers.filter((p) => p.online).length, total: peers.length },
    };
  }

  /** Every peer of the current map with what the engine knows of it. */
  peers(): MeshPeersReply {
    const map = this.mesh.map;
    if (!map) return { network: '', self: { name: '', ipv4: '', ipv6: '' }, peers: [] };
    const engine = this.mesh.engine;
    const now = engine.clock.now();
    const wallNow = Date.now();
    const paths = this.mesh as unknown as PathSource;
    const out: MeshPeerInfo[] = [];
    for (const n of map.peers ?? []) {
      if (!n || typeof n.publicKey !== 'string' || n.publicKey === map.self?.publicKey) continue;
      const key = decodeBase64Key(n.publicKey);
      const peer = key && key.length === 32 ? engine.getPeer(key) : undefined;
      const heard = peer !== undefined && Number.isFinite(peer.lastReceived);
      const ep = peer?.endpoint ?? null;
      let path: MeshPeerPath = { kind: 'none', via: null, state: null, transport: 'udp', endpoint: ep ? ep.toString() : null, rttMs: null, since: null };
      if (typeof paths.pathOf === 'function') {
        const p = paths.pathOf.call(this.mesh, n.publicKey);
        if (p) {
          path = {
            kind: p.kind, via: p.via ?? null, state: p.state ?? null, transport: p.transport ?? 'udp', endpoint: p.endpoint ?? null,
            rttMs: p.rttMs ?? null, since: p.since ?? null,
          };
        }
      }
      out.push({
        name: n.name, ipv4: n.ipv4, ipv6: n.ipv6, publicKey: n.publicKey, tags: n.tags ?? [],
        endpoint: ep ? ep.toString() : null,
        endpoints: n.endpoints ?? [],
        path,
        latestHandshake: peer?.lastHandshakeWall ?? 0,
        lastReceived: heard ? Math.round(wallNow - (now - peer.lastReceived)) : 0,
        rxBytes: Number(peer?.rxBytes ?? 0),
        txBytes: Number(peer?.txBytes ?? 0),
        // Heard from lately, or a handshake completed lately (its answer is authenticated too).
        online: (heard && now - peer.lastReceived <= MESH_ONLINE_WINDOW_MS) || (peer !== undefined && peer.lastHandshakeWall > 0 && wallNow - peer.lastHandshakeWall <= MESH_ONLINE_WINDOW_MS),
        exitNode: n.exitNode === true,
        routes: n.routes ?? [],
      });
    }
    return { network: map.network?.name ?? '', self: { name: map.self?.name ?? '', ipv4: map.self?.ipv4 ?? '', ipv6: map.self?.ipv6 ?? '' }, peers: out };
  }

  /** The node (name or address) `target` means, for `family` (default: IPv4, or the literal's). */
  resolve(target: unknown, family?: 4 | 6): MeshTarget {
    if (typeof target !== 'string' || target.trim() === '') throw new UserError('name the node to probe', 'e.g. {"target": "laptop"}, laptop.mesh, or an overlay address');
    const map = this.mesh.map;
    const nodes: ControlMapNode[] = map ? [map.self, ...(map.peers ?? [])].filter((n) => n && typeof n.name === 'string') : [];
    const text = target.trim();
    const lit = ipLiteralFamily(text);
    if (lit !== 0) {
      if (family !== undefined && family !== lit) throw new UserError(`${text} is an IPv${lit} address, not IPv${family}`, `drop -${family}, or give an IPv${family} address`);
      return { name: this.nameOf(text), address: text, family: lit };
    }
    if (!map) throw new UserError('this node has no network map yet', 'wait until it reaches the coordinator, then try again');
    let name = text.toLowerCase().replace(/\.$/, '');
    for (const suffix of [`.${MESH_DOMAIN}`, `.${(map.network?.name ?? '').toLowerCase()}`]) {
      if (suffix.length > 1 && name.endsWith(suffix)) { name = name.slice(0, -suffix.length); break; }
    }
    const node = nodes.find((n) => n.name.toLowerCase() === name);
    const known = nodes.filter((n) => n !== map.self).map((n) => n.name).sort();
    if (!node) {
      throw new UserError(`unknown node "${text}" in network "${map.network?.name ?? '?'}"`,
        known.length ? `known nodes: ${known.join(', ')}` : 'this network has no other nodes yet');
    }
    if (node === map.self) throw new UserError(`"${node.name}" is this node itself`, known.length ? `probe another node: ${known.join(', ')}` : 'this network has no other nodes yet');
    const fam = family ?? (node.ipv4 ? 4 : 6);
    const address = fam === 4 ? node.ipv4 : node.ipv6;
    if (!address) throw new UserError(`node "${node.name}" has no IPv${fam} address`, `try -${fam === 4 ? 6 : 4}`);
    return { name: node.name, address, family: fam };
  }

  /** The name of the map node owning `address` (its overlay IPv4 or IPv6), or null. */
  nameOf(address: string | null): string | null {
    if (!address) return null;
    const map = this.mesh.map;
    if (!map) return null;
    const a = address.toLowerCase();
    for (const n of [map.self, ...(map.peers ?? [])]) if (n && (n.ipv4 === a || (n.ipv6 && n.ipv6.toLowerCase() === a))) return n.name;
    return null;
  }

  async ping(b: Record<string, unknown>): Promise<MeshPingReply> {
    const t = this.resolve(b.target, familyField(b));
    const source = this.sourceFor(t);
    const count = intField(b, 'count', 1, MAX_PING_COUNT);
    const ttl = intField(b, 'ttl', 1, 255);
    const intervalMs = intField(b, 'intervalMs', 0, 60_000);
    const timeoutMs = intField(b, 'timeoutMs', 1, MAX_PROBE_TIMEOUT_MS);
    const payloadSize = intField(b, 'payloadSize', 0, MAX_PAYLOAD_SIZE);
    const r = await this.prober.ping(t.address, {
      ...(count !== undefined ? { count } : {}), ...(ttl !== undefined ? { ttl } : {}), ...(intervalMs !== undefined ? { intervalMs } : {}),
      ...(timeoutMs !== undefined ? { timeoutMs } : {}), ...(payloadSize !== undefined ? { payloadSize } : {}),
    });
    if (r.results.length > 0 && r.results.every((x) => x.kind === 'no-route')) throw this.noRoute(t);
    return { target: String(b.target), name: t.name, address: t.address, family: t.family, source, results: r.results, summary: summarizePing(r.results) };
  }

  async traceroute(b: Record<string, unknown>): Promise<MeshTraceReply> {
    const t = this.resolve(b.target, familyField(b));
    const source = this.sourceFor(t);
    const maxHops = intField(b, 'maxHops', 1, MAX_TRACE_HOPS);
    const probesPerHop = intField(b, 'probesPerHop', 1, 10);
    const timeoutMs = intField(b, 'timeoutMs', 1, MAX_PROBE_TIMEOUT_MS);
    const r = await this.prober.traceroute(t.address, {
      ...(maxHops !== undefined ? { maxHops } : {}), ...(probesPerHop !== undefined ? { probesPerHop } : {}), ...(timeoutMs !== undefined ? { timeoutMs } : {}),
    });
    if (r.hops.length === 0) throw this.noRoute(t);
    return {
      target: String(b.target), name: t.name, address: t.address, family: t.family, source, maxHops: maxHops ?? r.hops.length,
      hops: r.hops.map((h) => ({ ...h, name: this.nameOf(h.address) })), reached: r.reached,
    };
  }

  /** Ends waiting probes. */
  close(): void {
    this.prober.close();
  }

  private sourceFor(t: MeshTarget): string {
    const s = this.prober.source(t.family);
    if (!s) throw new UserError(`this node has no IPv${t.family} overlay address to probe from`, `try -${t.family === 4 ? 6 : 4}`);
    return s;
  }

  private noRoute(t: MeshTarget): UserError {
    const who = t.name ? `${t.name} (${t.address})` : t.address;
    return new UserError(`no route to ${who}: no peer of this node carries it, or the ACL policy blocks it`,
      'see `meshtun peers` (is the node in the network and online?) and `meshtun policy show`');
  }
}
