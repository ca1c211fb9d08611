// The mesh daemon behind `meshtun up` with no file: a node of a mesh network on the userspace
// stack (`userspace: true`, the CLI's default) or on a kernel TUN (the CLI's --tun).
// Beside the data plane, mesh-dns.ts runs DNS for the network's names and, in userspace mode, the
// loopback proxies and the userspace router for approved routes.
// With no saved membership and no join string it is the network's coordinator: it creates (or
// reopens) the network in the state directory (coordinator.db), serves the control channel, and
// applies its own network map in-process. With `--join` it registers through the control channel
// with a token, saves its membership (membership.json), and follows the map the coordinator
// pushes; a restart reuses the saved membership. Either way MeshNode keeps the engine's peers in
// line with the map, and the node reports its underlay addresses as endpoints.
//
// The mesh's local API is a Unix socket in the state directory (mesh.api): GET /v1/status,
// GET /v1/nodes, POST /v1/tokens, POST /v1/nodes/remove, GET/POST /v1/policy (coordinator only for
// all but status), and the routes endpoints of routes-api.ts. Every node installs the map's ACL
// policy on its engine (mesh-acl.ts) and follows the map's approved routes and its chosen exit node
// in the kernel (routing.ts); a node advertising routes forwards and NATs for the overlay.
import { existsSync, readFileSync } from 'node:fs';
import { hostname, networkInterfaces } from 'node:os';
import { join } from 'node:path';
import { Logger, UserError, writePrivateFile } from '../util/index.js';
import { encodeBase64Key } from '../crypto/index.js';
import { LocalIdentity, type Engine } from '../wireguard/index.js';
import {
  MeshNode, ControlClient, LanDiscovery, UnderlayMux, EXIT_ROUTES, type RelayStreamServer, MapFieldError, checkNetworkMap, checkMembership, checkIpv4, checkIpv6, checkPrefix, type Membership, type ReportRequest,
} from '../mesh/index.js';
import {
  Coordinator, ControlServer, formatJoinString, formatHostPort, parseJoinString, STORE_FILE_NAME, type NodeRecord,
} from '../control/index.js';
import { startMeshServices } from './mesh-dns.js';
import { WgInterface } from './wg-interface.js';
import { UserspaceInterface, type RunPaths } from './userspace-interface.js';
import { freeInterfaceName, freeTcpPort, freeUdpPort } from './free-names.js';
import { MeshRouting } from './routing.js';
import { routesApi, autoApproveRoutes } from './routes-api.js';
import { ApiServer, interfaceStatus, type ApiRoutes } from './api-server.js';
import type { WgQuickConfig } from './wg-quick-config.js';
import { emptyMeshtunSettings } from './meshtun-section.js';
import { loadNodeIdentity, type NodeIdentity } from './node-identity.js';
import { MeshAcl } from './mesh-acl.js';
import { MeshReporter } from './mesh-reporter.js';
import { MeshNat } from './mesh-nat.js';
import { loadMeshState, saveMeshState, MESH_STATE_SAVE_MS } from './mesh-state.js';
import { startRelayStreams, startRelayLinks } from './mesh-streams.js';
import { MeshApi } from './mesh-api.js';

export const DEFAULT_CONTROL_PORT = 7443;
export const DEFAULT_MESH_LISTEN_PORT = 51820;
export const DEFAULT_MESH_INTERFACE = 'meshtun0';
/** How often a node looks for changes of its own addresses (roaming). */
export const ADDRESS_CHECK_MS = 1_000;
/** Kernel-TUN nodes take the first free name of meshtun0, meshtun1, ... */
export const MESH_INTERFACE_BASE = 'meshtun';
export const DEFAULT_NETWORK_NAME = 'home';
export const MEMBERSHIP_FILE = 'membership.json';
export const MESH_API_SOCKET = 'mesh.api';
/** The folder of a userspace node's sockets and pid file, in its state directory. */
export const MESH_RUN_DIR = 'run';
export { MESH_DNS_PORT } from './mesh-dns.js';

const log = new Logger('mesh');

export interface MeshUpOptions {
  /** State directory (node.key, coordinator.db or membership.json, mesh.api). */
  dir: string;
  interfaceName?: string;
  /** Control server address "host:port" (coordinator): default 0.0.0.0:7443. */
  listen?: string;
  /** Join string (meshtun://host:port/key[?token=...]). */
  join?: string;
  token?: string;
  name?: string;
  networkName?: string;
  listenPort?: number;
  /** The userspace stack instead of a kernel TUN (no root needed). */
  userspace?: boolean;
  /** Userspace mode: the SOCKS5 / HTTP proxy address ("HOST:PORT" or "off"; default
   * 127.0.0.1:1080 / 127.0.0.1:8080, skipped with a warning when busy). */
  socks5?: string;
  httpProxy?: string;
  /** Proxy credentials (SOCKS5 RFC 1929, HTTP Basic); absent ones come from MESHTUN_SOCKS5_USER /
   * MESHTUN_SOCKS5_PASSWORD / MESHTUN_HTTP_PROXY_USER / MESHTUN_HTTP_PROXY_PASSWORD. */
  socks5User?: string;
  socks5Password?: string;
  httpProxyUser?: string;
  httpProxyPassword?: string;
  /** Coordinator: an ACL policy file to set at start (a bad one refuses to start). */
  policyFile?: string;
  /** Subnets this node routes for the mesh (once the coordinator approves them). */
  advertiseRoutes?: string[];
  /** Offer this node as an exit node (0.0.0.0/0 and ::/0, once approved). */
  advertiseExitNode?: boolean;
  /** Offer relaying for members that cannot reach each other directly (the coordinator always does). */
  relay?: boolean;
  /** A relaying member's HTTPS (MASQUE CONNECT-UDP) port (default 7443, or the next free). */
  relayHttpsPort?: number;
  /** A relaying node's TCP rung port (default: its WireGuard port number). */
  relayTcpPort?: number;
  /** Send all traffic through this node (by name) once it is an approved exit node. */
  exitNode?: string;
  /** Coordinator: approve every route nodes advertise without `meshtun routes approve`. */
  autoApproveRoutes?: boolean;
  /** Configured endpoints of this node ("198.18.0.5:51820", normalized: a port forward on a
   * router), reported first (mesh-nat.ts). */
  endpoints?: string[];
}

/** The routes a node advertises, from its options. */
function advertisedRoutes(opts: MeshUpOptions): string[] {
  return [...(opts.advertiseRoutes ?? []), ...(opts.advertiseExitNode ? EXIT_ROUTES : [])];
}

export interface MeshDaemon {
  role: 'coordinator' | 'member';
  iface: MeshInterface;
  mesh: MeshNode;
  /** What `meshtun up` prints (one line each). */
  lines: string[];
  apiPath: string;
  stop(reason?: string): Promise<void>;
  stopped: Promise<string>;
}

/** The node's underlay endpoints: every non-loopback address (not link-local IPv6, not the mesh
 * interface's own) with the listen port. */
export function underlayEndpoints(port: number, skipInterface: string): string[] {
  const out: string[] = [];
  for (const [name, addrs] of Object.entries(networkInterfaces())) {
    if (name === skipInterface) continue;
    for (const a of addrs ?? []) {
      if (a.internal || (a.family === 'IPv6' && a.address.toLowerCase().startsWith('fe80'))) continue;
      out.push(formatHostPort(a.address, port));
    }
  }
  return out;
}

/** The data plane under a mesh node: a kernel TUN (WgInterface) or the userspace stack. */
export interface MeshInterface {
  readonly name: string;
  readonly engine: Engine;
  readonly stopped: Promise<string>;
  stop(reason?: string): Promise<void>;
}

/** The interface configuration of a mesh node, built as an object from checked values (never as
 * wg-quick text: a value from the coordinator must not be able to become a second line). */
export function meshInterfaceConfig(file: string, privateKey: Buffer, listenPort: number, addr: { ipv4: string; ipv6: string; ipv4Pool: string; ulaPrefix: string }, userspace: boolean): WgQuickConfig {
  const ipv4 = checkIpv4(addr.ipv4, 'ipv4');
  const ipv6 = checkIpv6(addr.ipv6, 'ipv6');
  const pool = checkPrefix(addr.ipv4Pool, 'ipv4Pool', 4).cidr;
  const ula = checkPrefix(addr.ulaPrefix, 'ulaPrefix', 6).cidr;
  const meshtun = emptyMeshtunSettings();
  // The mesh's proxies (mesh-dns.ts) resolve the network's names; the interface's own are off.
  if (userspace) {
    meshtun.socks5 = 'off';
    meshtun.httpProxy = 'off';
  }
  return {
    file,
    interface: {
      privateKey: Buffer.from(privateKey), listenPort, fwmark: null,
      addresses: [{ family: 4, address: ipv4, prefixLength: pool.prefixLen }, { family: 6, address: ipv6, prefixLength: ula.prefixLen }],
      dns: [], dnsSearch: [], mtu: null, table: { kind: 'auto' }, preUp: [], postUp: [], preDown: [], postDown: [], saveConfig: false,
    },
    peers: [],
    meshtun,
    warnings: [],
  };
}

/** Where a userspace mesh node keeps its UAPI socket, interface API socket and pid file: under
 * its state directory (it has no kernel interface, so nothing goes to /var/run/wireguard, and two
 * nodes with their own state directories never meet). */
export function meshRunPaths(dir: string, name: string): RunPaths {
  const run = join(dir, MESH_RUN_DIR);
  return { uapi: join(run, `${name}.sock`), api: join(run, `${name}.api`), pid: join(run, `${name}.pid`) };
}

async function bringUp(name: string, id: NodeIdentity, addr: { ipv4: string; ipv6: string; ipv4Pool: string; ulaPrefix: string }, listenPort: number, userspace: boolean): Promise<MeshInterface> {
  if (!userspace) WgInterface.assertCanCreate(name);
  const cfg = meshInterfaceConfig(join(id.dir, 'node.key'), id.privateKey, listenPort, addr, userspace);
  const iface = userspace ? await UserspaceInterface.fromWgQuick(name, cfg, { paths: meshRunPaths(id.dir, name) }) : await WgInterface.fromWgQuick(name, cfg);
  iface.writePidFile();
  return iface;
}

/** Reads the saved membership, checked field by field (a tampered file is refused, naming the
 * field, before anything is set up from it). */
export function readMembership(file: string): Membership {
  let v: unknown;
  try {
    v = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    throw new UserError(`cannot read ${file}: ${(e as Error).message}`, 'move the file away and join again with a new token');
  }
  try {
    return checkMembership(v);
  } catch (e) {
    if (!(e instanceof MapFieldError)) throw e;
    throw new UserError(`${file}: ${e.message}`, 'the file was changed by hand or damaged: restore it, or move it away and join again with a new token');
  }
}

function readPolicyFile(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (e) {
    throw new UserError(`cannot read the policy file ${file}: ${(e as Error).message}`, 'give the path of a HuJSON ACL policy (see docs/mesh.md)');
  }
}

async function splitListen(listen: string | undefined): Promise<{ host: string; port: number }> {
  // Not given: the default port, or the next free one (a second coordinator on this host).
  if (!listen) return { host: '0.0.0.0', port: await freeTcpPort('0.0.0.0', DEFAULT_CONTROL_PORT) };
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d+)$/.exec(listen) ?? /^()()(\d+)$/.exec(listen);
  const port = m ? Number(m[3]) : NaN;
  if (!m || !(port > 0 && port < 65536)) throw new UserError(`--listen "${listen}" is not host:port`, 'e.g. --listen 0.0.0.0:7443');
  return { host: m[1] || m[2] || '0.0.0.0', port };
}

/** The host to put in join strings: the listen address if specific, else an underlay IPv4. */
function advertisedHost(listenHost: string, iface: string): string {
  if (listenHost !== '0.0.0.0' && listenHost !== '::') return listenHost;
  const v4 = underlayEndpoints(1, iface).find((e) => !e.startsWith('['));
  return v4 ? v4.slice(0, v4.lastIndexOf(':')) : '127.0.0.1';
}

/** Starts the mesh node (see the file header). */
export async function startMesh(opts: MeshUpOptions): Promise<MeshDaemon> {
  const dir = opts.dir;
  const membershipPath = join(dir, MEMBERSHIP_FILE);
  const isCoordinator = existsSync(join(dir, STORE_FILE_NAME));
  const isMember = existsSync(membershipPath);
  if (opts.join && isCoordinator) throw new UserError(`${dir} holds a coordinator's network: this node cannot join another one`, 'use another MESHTUN_STATE_DIR');
  if (!opts.join && !isMember) return startCoordinator(opts);
  return startMember(opts, membershipPath, isMember);
}

/** What a node runs on top of its interface, coordinator or member alike: DNS / proxies /
 * userspace router (mesh-dns.ts), the ACL filter, kernel routing, MeshNode, the reporter and the
 * local API. Started in that order; a failure stops what started and rethrows. */
interface NodeServices {
  mesh: MeshNode;
  /** The mux of the WireGuard socket: STUN (nat) and discovery (mesh.disco) are on it. */
  mux: UnderlayMux;
  /** STUN server and client, and what they found (mesh-nat.ts). */
  nat: MeshNat;
  /** What the services print (DNS, proxies). */
  lines: string[];
  apiPath: string;
  close(): Promise<void>;
}

interface NodeServicesOptions {
  opts: MeshUpOptions;
  ifname: string;
  iface: MeshInterface;
  self: { name: string; ipv4: string; ipv6: string };
  overlay: { ipv4Pool: string; ulaPrefix: string };
  /** The coordinator's node key (base64): its node is this node's first STUN server. */
  coordinatorKey: string;
  /** Sends a report to the coordinator (the control channel, or the in-process coordinator). */
  report: (req: ReportRequest) => Promise<void>;
  /** Role-specific fields of the status's mesh block (read at each status request). */
  status: () => Record<string, unknown>;
  /** Extra API routes (the coordinator's). */
  routes?: ApiRoutes;
  onRemoved?: (message: string) => void;
  /** Sends "call me maybe" to a peer (node id) through the coordinator. */
  callMeMaybe: (nodeId: string) => void;
  /** Subscribes to calls from peers (node ids); returns the unsubscribe function. */
  onCall: (fn: (from: string) => void) => () => void;
  /** This machine's addresses changed (the member's control connection is remade). */
  onAddressesChanged?: () => void;
  /** Who may use this node's stream rungs (the coordinator: its store; else the map's peers). */
  isMember?: (publicKey: string) => boolean;
  /** The port CONNECT-UDP is served on already (the coordinator's control server). */
  relayHttpsPort?: number;
  /** Hands the relay server to the caller (the coordinator routes CONNECT requests to it). */
  onRelayStreams?: (server: RelayStreamServer) => void;
  /** The coordinator's host as the member knows it (the join string): one more address for links. */
  coordinatorHost?: string;
  /** The coordinator's own node: always offers relaying. */
  relay?: boolean;
  /** Members: keep the last map and good endpoints in the state directory (mesh-state.ts). */
  saveState?: boolean;
}

async function startNodeServices(p: NodeServicesOptions): Promise<NodeServices> {
  const { opts, ifname, iface } = p;
  const closers: (() => Promise<void> | void)[] = [];
  const close = async () => {
    for (const fn of closers.reverse()) {
      try { await fn(); } catch (e) { log.warn(`cleanup: ${(e as Error).message}`); }
    }
    closers.length = 0;
  };
  try {
    const services = await startMeshServices(iface, {
      ipv4: p.self.ipv4, ipv6: p.self.ipv6, overlay: p.overlay, socks5: opts.socks5, httpProxy: opts.httpProxy,
      ...(opts.socks5User !== undefined ? { socks5User: opts.socks5User } : {}), ...(opts.socks5Password !== undefined ? { socks5Password: opts.socks5Password } : {}),
      ...(opts.httpProxyUser !== undefined ? { httpProxyUser: opts.httpProxyUser } : {}), ...(opts.httpProxyPassword !== undefined ? { httpProxyPassword: opts.httpProxyPassword } : {}),
    });
    closers.push(() => services.close());
    const acl = new MeshAcl(iface.engine);
    const kernel = iface instanceof WgInterface;
    const routing = await MeshRouting.start({
      ifname, wg: kernel ? iface : null, overlay: p.overlay, advertised: kernel ? advertisedRoutes(opts) : [], ...(opts.exitNode && kernel ? { exitNode: opts.exitNode } : {}),
    });
    closers.push(() => routing.stop());
    let reporter: MeshReporter | null = null;
    let lan: LanDiscovery | null = null;
    // One mux on the WireGuard socket: STUN here, discovery in MeshNode.
    const mux = new UnderlayMux(iface.engine);
    closers.push(() => mux.close());
    let meshRef: MeshNode | null = null;
    const nat = new MeshNat({
      mux, coordinatorKey: p.coordinatorKey, localEndpoints: () => underlayEndpoints(iface.engine.bind.port, ifname), configured: opts.endpoints ?? [],
      onChange: () => reporter?.poke(), isTunnelled: (address) => meshRef?.isTunnelled(address) ?? false,
    });
    closers.push(() => nat.stop());
    const mesh = new MeshNode(iface.engine, {
      mux,
      onApplied: (map) => {
        services.update(map); acl.update(map); routing.onMap(map); nat.onMap(map);
        if (p.saveState) saveMeshState(opts.dir, { map, endpoints: mesh.goodEndpoints() });
        if (map.network.discoveryKey) lan?.setNetwork(map.network.id, map.network.discoveryKey);
      },
      ...(opts.exitNode ? { exitNode: opts.exitNode } : {}),
      ...(p.onRemoved ? { onRemoved: p.onRemoved } : {}),
      onPathStates: () => reporter?.poke(),
      callMeMaybe: p.callMeMaybe,
      // UDP came back (or went): what the outside sees of this node may have changed.
      onTransportChange: () => { nat.localChanged(); reporter?.poke(); },
    });
    meshRef = mesh;
    closers.push(() => mesh.stop());
    // LAN beacons (mesh/lan-discovery.ts): idle until the first map with a discovery key.
    const ownKey = iface.engine.publicKey;
    if (ownKey) {
      const discovery = new LanDiscovery({
        publicKey: ownKey, wireguardPort: () => iface.engine.bind.port, skipInterfaces: () => [ifname],
        onEndpoint: (key, endpoint, source) => mesh.learnEndpoint(key, endpoint, source),
      });
      lan = discovery;
      closers.push(() => discovery.close());
    }
    closers.push(p.onCall((from) => mesh.called(from)));
    // The stream rungs (issue 11): a relaying node serves them; every member keeps links to
    // relaying peers that UDP does not reach.
    const relaying = p.relay === true || opts.relay === true;
    let relayStreams: Awaited<ReturnType<typeof startRelayStreams>> | null = null;
    if (relaying) {
      const isMember = p.isMember ?? ((key: string) => (mesh.map?.peers ?? []).some((n) => n.publicKey === key));
      relayStreams = await startRelayStreams({
        mesh, isMember, tlsDir: opts.dir,
        ...(p.relayHttpsPort !== undefined ? { httpsPort: p.relayHttpsPort } : {}),
        ...(opts.relayHttpsPort !== undefined ? { ownHttpsPort: opts.relayHttpsPort } : {}),
        ...(opts.relayTcpPort !== undefined ? { tcpPort: opts.relayTcpPort } : {}),
      });
      const rs = relayStreams;
      p.onRelayStreams?.(rs.server);
      closers.push(() => rs.close());
    }
    const links = p.relay === true ? null : startRelayLinks(mesh, p.coordinatorKey, p.coordinatorHost ?? null);
    if (links) closers.push(() => links.stop());
    reporter = new MeshReporter({
      send: p.report,
      endpoints: () => nat.endpoints(), advertisedRoutes: advertisedRoutes(opts), paths: () => mesh.pathStates(), nat: () => nat.nat(),
      relay: relaying, rtts: () => mesh.pathRtts(), ...(relayStreams ? { relayPorts: relayStreams.ports } : {}),
    });
    reporter.start();
    nat.start();
    const started = reporter;
    closers.push(() => started.stop());
    // Roaming: when this machine's addresses change (another network, a new DHCP lease), every
    // peer's paths are found anew at once and the new endpoints reported.
    let addresses = underlayEndpoints(iface.engine.bind.port, ifname).join(',');
    const watch = setInterval(() => {
      const now = underlayEndpoints(iface.engine.bind.port, ifname).join(',');
      if (now === addresses) return;
      log.info(`this node's addresses changed (${now || 'none'}): looking for paths to every peer again`);
      addresses = now;
      p.onAddressesChanged?.();
      mesh.resweep();
      nat.localChanged();
      started.poke();
    }, ADDRESS_CHECK_MS);
    watch.unref();
    closers.push(() => clearInterval(watch));
    if (p.saveState) {
      const save = setInterval(() => { if (mesh.map) saveMeshState(opts.dir, { map: mesh.map, endpoints: mesh.goodEndpoints() }); }, MESH_STATE_SAVE_MS);
      save.unref();
      closers.push(() => clearInterval(save));
    }
    const apiPath = join(opts.dir, MESH_API_SOCKET);
    const meshApi = new MeshApi(mesh);
    closers.push(() => meshApi.close());
    const api = await ApiServer.listen(apiPath,
      meshApi.status(() => ({ ...interfaceStatus(ifname, iface.engine), mesh: {
        ...p.status(), node: p.self.name, mapVersion: mesh.map?.version ?? null, relay: { ...mesh.relay.counters }, nat: nat.status(),
        disco: { ...mesh.disco.counters }, underlay: { ...mesh.mux.counters }, paths: mesh.pathSummary(), relayedFor: mesh.relayedByNode(), ...(lan ? { lan: { ...lan.counters } } : {}),
        streams: {
          ...(relayStreams ? { server: { ...relayStreams.server.counters, ports: relayStreams.ports, bytes: relayStreams.server.bytes() } } : {}),
          ...(links ? { links: links.status(), linkCounters: { ...links.counters } } : {}),
        },
      } })),
      meshApi.routes(p.routes));
    closers.push(() => api.close());
    return { mesh, mux, nat, lines: services.lines, apiPath, close };
  } catch (e) {
    await close();
    throw e;
  }
}

function joinCommand(joinString: string, token: string): string {
  return `meshtun up --join ${joinString} --token ${token}`;
}

function nodeInfo(n: NodeRecord) {
  return {
    id: n.id, name: n.name, ipv4: n.ipv4, ipv6: n.ipv6, publicKey: n.publicKey, endpoints: n.endpoints, tags: n.tags,
    lastSeen: n.lastSeen, coordinator: n.tokenId === null, nat: n.nat,
  };
}

/** The coordinator's own API routes: nodes, tokens, policy, node removal, routes. */
function coordinatorRoutes(coord: Coordinator, network: string, joinString: string): ApiRoutes {
  return (method, url, body) => {
    const b = (body ?? {}) as Record<string, unknown>;
    if (method === 'GET' && url === '/v1/nodes') return { status: 200, body: { network, nodes: coord.nodes().map(nodeInfo) } };
    if (method === 'POST' && url === '/v1/tokens') {
      const t = coord.createToken(undefined, {
        reusable: b.reusable === true,
        expiresIn: typeof b.expires === 'string' ? b.expires : undefined,
        tags: Array.isArray(b.tags) ? b.tags.map(String) : [],
      });
      return { status: 200, body: { token: t.token, id: t.id, reusable: t.reusable, expires: t.expires, tags: t.tags, joinString, joinCommand: joinCommand(joinString, t.token) } };
    }
    if (method === 'GET' && url === '/v1/policy') {
      const p = coord.policy();
      return { status: 200, body: { network, policy: p ? { text: p.text, version: p.version, updated: p.updated } : null } };
    }
    if (method === 'POST' && url === '/v1/policy') {
      const r = coord.setPolicy(undefined, typeof b.text === 'string' ? b.text : (undefined as unknown as string), typeof b.file === 'string' ? b.file : 'policy');
      return { status: 200, body: { network, version: r.policy.version, warnings: r.warnings } };
    }
    if (method === 'POST' && url === '/v1/nodes/remove') {
      const n = coord.removeNode(undefined, String(b.name ?? ''));
      return { status: 200, body: { removed: nodeInfo(n) } };
    }
    return routesApi(coord)(method, url, body);
  };
}

/** The interface name and UDP port of a node: as given, else the defaults or the next free ones
 * (a kernel-TUN node's name must not clash with another node's on this host; a userspace node's
 * sockets are in its own state directory, so it keeps the default name). */
async function nodeNames(opts: MeshUpOptions): Promise<{ ifname: string; listenPort: number }> {
  const ifname = opts.interfaceName ?? (opts.userspace ? DEFAULT_MESH_INTERFACE : await freeInterfaceName(MESH_INTERFACE_BASE));
  const listenPort = opts.listenPort ?? await freeUdpPort(DEFAULT_MESH_LISTEN_PORT);
  if (ifname !== (opts.interfaceName ?? DEFAULT_MESH_INTERFACE)) log.info(`${DEFAULT_MESH_INTERFACE} is taken on this host: this node's interface is ${ifname}`);
  if (listenPort !== (opts.listenPort ?? DEFAULT_MESH_LISTEN_PORT)) log.info(`UDP port ${DEFAULT_MESH_LISTEN_PORT} is taken: this node listens on ${listenPort}`);
  return { ifname, listenPort };
}

async function startCoordinator(opts: MeshUpOptions): Promise<MeshDaemon> {
  if (!opts.userspace) WgInterface.assertCanCreate(opts.interfaceName ?? DEFAULT_MESH_INTERFACE);
  const { ifname, listenPort } = await nodeNames(opts);
  const id = loadNodeIdentity(opts.dir);
  const listen = await splitListen(opts.listen);
  const coord = Coordinator.open(opts.dir);
  const cleanup: (() => Promise<void> | void)[] = [() => coord.close()];
  const undo = async () => { for (const fn of cleanup.reverse()) { try { await fn(); } catch (e) { log.warn(`cleanup: ${(e as Error).message}`); } } };
  try {
    let net = coord.networks()[0];
    const createdNetwork = !net;
    net ??= coord.createNetwork({ name: opts.networkName ?? DEFAULT_NETWORK_NAME, self: { publicKey: id.publicKey, ...(opts.name ? { name: opts.name } : {}) } });
    const self = coord.authenticate(id.publicKey);
    if (!self) throw new UserError(`the network in ${opts.dir} has no node with this node's key`, 'the state directory is inconsistent: move coordinator.db away to start a new network');
    if (opts.policyFile) coord.setPolicy(undefined, readPolicyFile(opts.policyFile), opts.policyFile);
    let relayServer: RelayStreamServer | null = null;
    const server = await ControlServer.listen({
      coordinator: coord, identity: new LocalIdentity(id.privateKey), host: listen.host, port: listen.port, tlsDir: opts.dir,
      onConnect: (stream, headers) => relayServer?.handleHttp2(stream, headers) ?? false,
    });
    cleanup.push(() => server.close());
    const iface = await bringUp(ifname, id, { ipv4: self.ipv4, ipv6: self.ipv6, ipv4Pool: net.ipv4Pool, ulaPrefix: net.ulaPrefix }, listenPort, opts.userspace === true);
    cleanup.push(() => iface.stop('mesh stopped'));
    const joinString = formatJoinString({ host: advertisedHost(listen.host, ifname), port: server.port, publicKey: id.publicKey });
    const svc = await startNodeServices({
      opts, ifname, iface, self, overlay: net, coordinatorKey: encodeBase64Key(id.publicKey), status: () => ({ role: 'coordinator', network: net.name, control: server.stats() }),
      report: async (req) => { coord.reportNodeState(id.publicKey, req); },
      routes: coordinatorRoutes(coord, net.name, joinString),
      callMeMaybe: (nodeId) => { server.deliverCall(self.id, nodeId); },
      relay: true,
      isMember: (key) => coord.authenticate(key) !== undefined,
      relayHttpsPort: server.port,
      onRelayStreams: (rs) => { relayServer = rs; },
      onCall: (fn) => server.onCall((from, to) => {
        if (to !== self.id) return false;
        fn(from);
        return true;
      }),
    });
    cleanup.push(() => svc.close());
    const mesh = svc.mesh;
    const applyOwn = () => {
      try {
        mesh.apply(checkNetworkMap(coord.networkMap(id.publicKey)));
      } catch (e) {
        log.warn(`cannot apply the network map: ${(e as Error).message}`);
      }
    };
    cleanup.push(coord.onChange(() => applyOwn()));
    applyOwn();
    if (opts.autoApproveRoutes) cleanup.push(autoApproveRoutes(coord));
    const token = coord.createToken(undefined, { reusable: true, expiresIn: '24h' });
    const lines = [
      `node ${id.created ? 'created' : 'loaded'} (${join(id.dir, 'node.key')}); public key ${encodeBase64Key(id.publicKey)}`,
      `network "${net.name}" (${net.id}) ${createdNetwork ? 'created' : 'loaded'}: ${net.ipv4Pool}, ${net.ulaPrefix}; this node is its coordinator`,
      `${ifname} is up${opts.userspace ? ' (userspace)' : ''}: node "${self.name}" ${self.ipv4}, ${self.ipv6}; listening on UDP ${iface.engine.bind.port}`,
      `control channel on ${formatHostPort(listen.host, server.port)}`,
      ...svc.lines,
      `join another machine (reusable token, valid 24h):`,
      `  ${joinCommand(joinString, token.token)}`,
      `more tokens: meshtun token create [--reusable] [--expires 24h] [--tag web]`,
      `API socket ${svc.apiPath}; Ctrl-C or \`meshtun down ${ifname}\` stops it`,
    ];
    return daemon('coordinator', iface, mesh, lines, svc.apiPath, undo);
  } catch (e) {
    await undo();
    throw e;
  }
}

async function startMember(opts: MeshUpOptions, membershipPath: string, saved: boolean): Promise<MeshDaemon> {
  if (!opts.userspace) WgInterface.assertCanCreate(opts.interfaceName ?? DEFAULT_MESH_INTERFACE);
  const id = loadNodeIdentity(opts.dir);
  const identity = new LocalIdentity(id.privateKey);
  let m: Membership | null = saved ? readMembership(membershipPath) : null;
  if (m && opts.join) {
    const t = parseJoinString(opts.join, { defaultPort: DEFAULT_CONTROL_PORT, ...(opts.token ? { token: opts.token } : {}) });
    if (encodeBase64Key(t.publicKey) !== m.coordinatorKey) {
      throw new UserError(`this node is already a member of the network of coordinator ${m.host}:${m.port}`, 'start it with `meshtun up`, or use another MESHTUN_STATE_DIR');
    }
  }
  const target = m ? { host: m.host, port: m.port, key: m.coordinatorKey } : (() => {
    const t = parseJoinString(opts.join!, { defaultPort: DEFAULT_CONTROL_PORT, requireToken: true, ...(opts.token ? { token: opts.token } : {}) });
    return { host: t.host, port: t.port, key: encodeBase64Key(t.publicKey), token: t.token! };
  })();
  const client = ControlClient.create({ url: `https://${formatHostPort(target.host, target.port)}`, coordinatorPublicKey: target.key, identity });
  try {
    if (!m) {
      const r = await client.register({ token: (target as { token: string }).token, ...(opts.name ? { name: opts.name } : {}), hostname: hostname(), endpoints: [], advertisedRoutes: advertisedRoutes(opts) });
      if (!r.ok) {
        throw new UserError(`the coordinator refused this node: ${r.error} (${r.reason})`,
          r.retryAfterMs > 0 ? `try again in ${Math.ceil(r.retryAfterMs / 1000)} s` : 'ask for a new token: meshtun token create');
      }
      m = {
        host: target.host, port: target.port, coordinatorKey: target.key, nodeId: r.node.id, name: r.node.name, ipv4: r.node.ipv4, ipv6: r.node.ipv6,
        ipv4Pool: r.map.network.ipv4Pool, ulaPrefix: r.map.network.ulaPrefix,
      };
      writePrivateFile(membershipPath, JSON.stringify(m, null, 2) + '\n');
    }
  } catch (e) {
    client.close();
    throw e;
  }
  const member = m;
  let iface: MeshInterface;
  let ifname: string;
  try {
    const names = await nodeNames(opts);
    ifname = names.ifname;
    iface = await bringUp(ifname, id, member, names.listenPort, opts.userspace === true);
  } catch (e) {
    client.close();
    throw e;
  }
  let svc: NodeServices;
  try {
    svc = await startNodeServices({
      opts, ifname, iface, self: member, overlay: member, coordinatorKey: member.coordinatorKey,
      status: () => ({
        role: 'member',
        control: {
          connects: client.connects, mapsRefused: client.rejectedMaps, lastMapError: client.lastMapError, rejectedFrames: client.rejectedFrames,
          oversizeAnswers: client.oversizeAnswers, failedCalls: client.failedCalls,
        },
      }),
      report: async (req) => {
        const r = await client.report(req);
        if (!r.ok) log.warn(`report not accepted: ${r.error}`);
      },
      onRemoved: (msg) => log.warn(`this node was removed from the network: ${msg}`),
      callMeMaybe: (nodeId) => { void client.call(nodeId); },
      onCall: (fn) => client.onCall(fn),
      saveState: true,
      coordinatorHost: member.host,
      onAddressesChanged: () => client.reconnect(),
    });
  } catch (e) {
    client.close();
    await iface.stop('setup failed');
    throw e;
  }
  const mesh = svc.mesh;
  // Up from the saved state at once (peers, names, ACLs, last good paths); the coordinator's map
  // replaces it when it answers.
  const state = saved ? loadMeshState(opts.dir, member.nodeId) : null;
  if (state) {
    mesh.apply(state.map);
    for (const [key, eps] of Object.entries(state.endpoints)) for (const ep of eps) mesh.learnEndpoint(key, ep, 'saved');
    log.info(`applied the saved network map (version ${state.map.version}, ${state.map.peers.length} peers) until the coordinator answers`);
  }
  mesh.follow(client);
  const lines = [
    `node ${id.created ? 'created' : 'loaded'} (${join(id.dir, 'node.key')}); public key ${encodeBase64Key(id.publicKey)}`,
    `${saved ? 'member of' : 'joined'} the network of coordinator ${formatHostPort(member.host, member.port)}`,
    ...svc.lines,
    `${ifname} is up${opts.userspace ? ' (userspace)' : ''}: node "${member.name}" ${member.ipv4}, ${member.ipv6}; listening on UDP ${iface.engine.bind.port}`,
    `API socket ${svc.apiPath}; Ctrl-C or \`meshtun down ${ifname}\` stops it`,
  ];
  return daemon('member', iface, mesh, lines, svc.apiPath, async () => {
    client.close();
    await svc.close();
    await iface.stop('mesh stopped');
  });
}

function daemon(role: 'coordinator' | 'member', iface: MeshInterface, mesh: MeshNode, lines: string[], apiPath: string, undo: () => Promise<void>): MeshDaemon {
  let stopping: Promise<void> | null = null;
  const stop = (reason = 'stopped') => {
    stopping ??= (async () => {
      mesh.stop();
      await undo();
      await iface.stop(reason);
    })();
    return stopping;
  };
  // The interface going away (deleted, `meshtun down`) stops the rest too.
  void iface.stopped.then((r) => stop(r));
  return { role, iface, mesh, lines, apiPath, stop, stopped: iface.stopped };
}
