// The network map: what the coordinator tells a node about its network, built from store records.
// A node gets itself and every other live node (peers), each with its key, addresses, endpoints,
// approved routes and tags, plus the network's `version` (bumped by every change, so a node can
// tell whether it is up to date and the control channel can push only newer maps).
//
// A peer's routes are those it advertises AND the coordinator approved. Exit routes (0.0.0.0/0,
// ::/0) only set `exitNode`: a node sends its default route to an exit node it chose, so they
// are not part of `allowedIps`, which lists what the peer may always send from and receive for.
// lastSeen is left out on purpose: it changes without a version bump.
import type { NetworkRecord, NodeRecord } from './store.js';
import { isExitRoute } from './node-fields.js';
import type { NatType } from '../mesh/index.js';

export interface MapNode {
  id: string;
  name: string;
  /** Base64 public key. */
  publicKey: string;
  ipv4: string;
  ipv6: string;
  tags: string[];
  endpoints: string[];
  /** Approved subnet routes (no exit routes). */
  routes: string[];
  /** True when the node may act as an exit node (an approved 0.0.0.0/0 or ::/0). */
  exitNode: boolean;
  /** "100.64.0.7/32", "fd..::/128" and the subnet routes: the WireGuard allowed-ips. */
  allowedIps: string[];
  /** What the node reported about its NAT (STUN): peers with "none" serve as second STUN servers. */
  nat: NatType;
  /** Id of the node to reach this one through (multi-hop, see paths.ts); absent: directly. */
  via?: string;
  /** The node relays for others; its stream transports (issue 11) where it serves them. */
  relay?: { https?: number; tcp?: number };
}

export interface NetworkMap {
  version: number;
  network: {
    id: string;
    name: string;
    ipv4Pool: string;
    ulaPrefix: string;
    /** The network's LAN discovery key (32 bytes, base64): members key their LAN beacons with
     * it, so a beacon is accepted only from a member of this network (mesh/lan-beacon.ts). */
    discoveryKey: string;
  };
  self: MapNode;
  /** Other live nodes, by name. */
  peers: MapNode[];
  /** The network's ACL policy (text in the mesh/acl format, and its version); null: none set,
   * every packet passes. Each node compiles it against self + peers. */
  policy: MapPolicy | null;
  /** Multi-hop paths (node ids, end to end) this node relays on; absent when none. */
  relayPaths?: string[][];
}

export interface MapPolicy {
  text: string;
  version: number;
}

/** The routes of a node that take effect: advertised and approved. */
export function effectiveRoutes(n: NodeRecord): string[] {
  const approved = new Set(n.approvedRoutes);
  return n.advertisedRoutes.filter((r) => approved.has(r));
}

export function mapNode(n: NodeRecord): MapNode {
  const routes = effectiveRoutes(n);
  const subnets = routes.filter((r) => !isExitRoute(r));
  return {
    id: n.id,
    name: n.name,
    publicKey: n.publicKey,
    ipv4: n.ipv4,
    ipv6: n.ipv6,
    tags: [...n.tags],
    endpoints: [...n.endpoints],
    routes: subnets,
    exitNode: routes.length > subnets.length,
    allowedIps: [`${n.ipv4}/32`, `${n.ipv6}/128`, ...subnets],
    nat: n.nat,
  };
}

/** The map for node `selfId` of `network`, from the network's live nodes. */
export function buildNetworkMap(
  network: NetworkRecord, liveNodes: readonly NodeRecord[], selfId: string, policy: MapPolicy | null = null, vias: ReadonlyMap<string, string> = new Map(),
  relayPaths: readonly (readonly string[])[] = [],
  relays: ReadonlyMap<string, { https?: number; tcp?: number }> = new Map(),
): NetworkMap {
  const self = liveNodes.find((n) => n.id === selfId && !n.removed);
  if (!self) throw new Error(`buildNetworkMap: node ${selfId} is not a live node of network ${network.id}`);
  return {
    version: network.version,
    network: {
      id: network.id, name: network.name, ipv4Pool: network.ipv4Pool, ulaPrefix: network.ulaPrefix, discoveryKey: network.discoveryKey.toString('base64'),
    },
    self: mapNode(self),
    peers: liveNodes.filter((n) => n.id !== selfId && !n.removed).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)).map((n) => {
      const m: MapNode = mapNode(n);
      const via = vias.get(n.id);
      const relay = relays.get(n.id);
      return { ...m, ...(via !== undefined ? { via } : {}), ...(relay ? { relay: { ...relay } } : {}) };
    }),
    policy: policy ? { text: policy.text, version: policy.version } : null,
    ...(relayPaths.length > 0 ? { relayPaths: relayPaths.map((p) => [...p]) } : {}),
  };
}
