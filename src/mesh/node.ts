// A mesh node's data plane driven by the coordinator's network map: MeshNode wraps an Engine and
// makes its peers match each map it is given, live. A peer per other node: its public key,
// allowed IPs (the node's overlay /32 and /128 plus approved routes, as the map's `allowedIps`),
// its first reported endpoint, and a persistent keepalive. Nodes that left the map lose their
// peer at once. Between maps (the coordinator down, the client reconnecting) nothing is touched:
// the data plane keeps running on the last map, and the next map (resync) is applied as a diff.
// An endpoint is set for a new peer, and for an existing one only when its reported endpoints
// changed, so a peer that roamed keeps the address it was last heard from.
import { decodeBase64Key } from '../crypto/index.js';
import { Logger } from '../util/index.js';
import { parseCidr, type Engine } from '../wireguard/index.js';
import type { ControlMapNode, ControlNetworkMap } from './control-types.js';

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
}

/** The allowed IPs an exit node gets on top of its own. */
export const EXIT_ROUTES = ['0.0.0.0/0', '::/0'];

interface AppliedPeer {
  name: string;
  endpoints: string;
  allowedIps: string;
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

  constructor(readonly engine: Engine, private readonly opts: MeshNodeOptions = {}) {}

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
      this.engine.removePeer(decodeBase64Key(key)!);
      this.applied.delete(key);
      result.removed.push(prev.name);
    }
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
      const endpoints = JSON.stringify(n.endpoints ?? []);
      const allowed = peerAllowedIps(n);
      if (this.opts.exitNode !== undefined && n.name === this.opts.exitNode && n.exitNode === true) allowed.push(...EXIT_ROUTES);
      const allowedText = JSON.stringify(allowed);
      if (!prev || prev.endpoints !== endpoints || !existing) {
        const first = (n.endpoints ?? [])[0];
        const ep = first ? this.engine.bind.parseEndpoint(first) : null;
        if (first && !ep) log.warn(`cannot use endpoint "${first}" of "${n.name}"`);
        if (ep || !existing) this.engine.setEndpoint(peer, ep);
      }
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
      if (!prev) result.added.push(n.name);
      else if (prev.endpoints !== endpoints || prev.allowedIps !== allowedText || prev.name !== n.name) result.updated.push(n.name);
      this.applied.set(key, { name: n.name, endpoints, allowedIps: allowedText });
    }
    this.current = map;
    this.mapsApplied++;
    this.opts.onApplied?.(map, result);
    return result;
  }

  /** Removes every peer this node added. */
  clear(): void {
    for (const key of this.applied.keys()) this.engine.removePeer(decodeBase64Key(key)!);
    this.applied.clear();
  }
}
