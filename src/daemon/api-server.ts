// The daemon's local API: HTTP+JSON on a Unix socket (/var/run/meshtun/<iface>.api), used by
// `meshtun status` (and later the web UI), plus Prometheus metrics at /metrics.
//   GET /v1/status  -> InterfaceStatus (JSON)
//   GET /metrics    -> Prometheus text exposition format
// A process may add routes (the mesh daemon: GET /v1/nodes, POST /v1/tokens ...) with `routes`.

import { createServer, type Server, type IncomingMessage } from 'node:http';
import { UserError, mkdirPrivate, withSocketUmask } from '../util/index.js';
import { rmSync, existsSync } from 'node:fs';
import type { Engine } from '../wireguard/index.js';
import { encodeBase64Key } from '../crypto/index.js';

export interface PeerStatus {
  publicKey: string;
  endpoint: string | null;
  allowedIps: string[];
  latestHandshake: number; // wall-clock ms, 0 = never
  rxBytes: number;
  txBytes: number;
  persistentKeepalive: number;
}

export interface InterfaceStatus {
  interface: string;
  pid: number;
  publicKey: string | null;
  listenPort: number;
  mtu: number;
  peers: PeerStatus[];
  /** Every engine counter, drops included (names start with "drop"). */
  counters: Record<string, number>;
  /** The UDP socket's counters when the bind keeps them (sent, received, GSO/GRO batches,
   * truncated datagrams, send and receive errors). */
  socket?: Record<string, number>;
}

/** The numeric counters of a bind that keeps a `stats` object (UdpBind does), else undefined. */
function socketCounters(bind: object): Record<string, number> | undefined {
  const stats = (bind as { stats?: unknown }).stats;
  if (typeof stats !== 'object' || stats === null) return undefined;
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(stats)) if (typeof v === 'number') out[k] = v;
  return out;
}

export function interfaceStatus(name: string, engine: Engine): InterfaceStatus {
  const cfg = engine.getConfig();
  return {
    interface: name,
    pid: process.pid,
    publicKey: engine.publicKey ? encodeBase64Key(engine.publicKey) : null,
    listenPort: cfg.listenPort,
    mtu: engine.device.mtu,
    peers: cfg.peers.map((p) => ({
      publicKey: encodeBase64Key(p.publicKey),
      endpoint: p.endpoint,
      allowedIps: p.allowedIps,
      latestHandshake: p.lastHandshakeWallMs,
      rxBytes: Number(p.rxBytes),
      txBytes: Number(p.txBytes),
      persistentKeepalive: p.persistentKeepalive,
    })),
    counters: Object.fromEntries(engine.counters.entries()),
    ...(socketCounters(engine.bind) ? { socket: socketCounters(engine.bind)! } : {}),
  };
}

/** Prometheus exposition of an interface's counters and per-peer traffic. */
export function prometheusMetrics(st: InterfaceStatus): string {
  const lines: string[] = [];
  const iface = `interface="${st.interface}"`;
  lines.push('# HELP meshtun_engine_events_total Engine events and drops by reason.', '# TYPE meshtun_engine_events_total counter');
  for (const [k, v] of Object.entries(st.counters)) lines.push(`meshtun_engine_events_total{${iface},event="${k}"} ${v}`);
  lines.push('# HELP meshtun_peer_rx_bytes_total Bytes received from a peer.', '# TYPE meshtun_peer_rx_bytes_total counter');
  for (const p of st.peers) lines.push(`meshtun_peer_rx_bytes_total{${iface},peer="${p.publicKey}"} ${p.rxBytes}`);
  lines.push('# HELP meshtun_peer_tx_bytes_total Bytes sent to a peer.', '# TYPE meshtun_peer_tx_bytes_total counter');
  for (const p of st.peers) lines.push(`meshtun_peer_tx_bytes_total{${iface},peer="${p.publicKey}"} ${p.txBytes}`);
  lines.push('# HELP meshtun_peer_last_handshake_seconds Wall-clock time of the latest handshake.', '# TYPE meshtun_peer_last_handshake_seconds gauge');
  for (const p of st.peers) lines.push(`meshtun_peer_last_handshake_seconds{${iface},peer="${p.publicKey}"} ${Math.floor(p.latestHandshake / 1000)}`);
  // Userspace mode adds the stack's, TCP's, proxies' and forwards' counters (see UserspaceStatus).
  const extra = st as InterfaceStatus & {
    stack?: Record<string, number>; tcp?: Record<string, number>;
    proxies?: { kind: string; address: string; counters: Record<string, number> }[];
    forwards?: { spec: string; counters: Record<string, number> }[];
    mesh?: {
      relay?: Record<string, number>; control?: Record<string, number>; disco?: Record<string, number>; underlay?: Record<string, number>; lan?: Record<string, number>;
      nat?: { nat?: string; lastProbe?: number | null; stunServer?: Record<string, number>; stunClient?: Record<string, number> };
      paths?: { name: string; kind: string; changes: number; relayedTxBytes: number; relayedRxBytes: number }[];
      relayedFor?: { node: string; bytes: number; frames: number; dropped: number }[];
      streams?: {
        server?: Record<string, unknown> & { bytes?: Record<string, { rx: number; tx: number }> };
        links?: { bytes?: Record<string, { rx: number; tx: number }> };
        linkCounters?: Record<string, number>;
      };
    };
  };
  const family = (name: string, help: string, rows: [string, Record<string, number>][]) => {
    if (rows.length === 0) return;
    lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} counter`);
    for (const [labels, counters] of rows) {
      for (const [k, v] of Object.entries(counters)) if (typeof v === 'number') lines.push(`${name}{${iface}${labels},event="${k}"} ${v}`);
    }
  };
  const esc = (v: string) => v.replace(/\\/g, '\\\\').replace(/"/g, '\\"');
  family('meshtun_socket_events_total', 'UDP socket datagrams, GSO/GRO batches and errors.', st.socket ? [['', st.socket]] : []);
  family('meshtun_stack_events_total', 'Userspace IP stack events and drops by reason.', extra.stack ? [['', extra.stack]] : []);
  family('meshtun_tcp_events_total', 'Userspace TCP events and drops by reason.', extra.tcp ? [['', extra.tcp]] : []);
  family('meshtun_proxy_events_total', 'SOCKS5 and HTTP proxy events.', (extra.proxies ?? []).map((p) => [`,proxy="${p.kind}",address="${esc(p.address)}"`, p.counters]));
  family('meshtun_forward_events_total', 'Port forward events.', (extra.forwards ?? []).map((f) => [`,forward="${esc(f.spec)}"`, f.counters]));
  family('meshtun_relay_events_total', 'Multi-hop relay frames forwarded, delivered, sent and dropped by reason.', extra.mesh?.relay ? [['', extra.mesh.relay]] : []);
  family('meshtun_disco_events_total', 'Path discovery: pings, pongs, calls, path changes and refused messages by reason.', extra.mesh?.disco ? [['', extra.mesh.disco]] : []);
  family('meshtun_underlay_events_total', 'Non-WireGuard datagrams on the WireGuard socket by kind (STUN, discovery).', extra.mesh?.underlay ? [['', extra.mesh.underlay]] : []);
  const nat = extra.mesh?.nat;
  family('meshtun_stun_events_total',
    'STUN on the WireGuard socket: the server\'s requests, responses, errors, rate-limited, malformed and ignored messages; the client\'s requests, datagrams sent, retransmits, responses, timeouts and refused answers by reason.',
    nat ? [[',side="server"', nat.stunServer ?? {}], [',side="client"', nat.stunClient ?? {}]] : []);
  if (nat && typeof nat.nat === 'string') {
    lines.push('# HELP meshtun_nat_type The NAT type this node found with STUN (1 for the current one).', '# TYPE meshtun_nat_type gauge');
    lines.push(`meshtun_nat_type{${iface},nat="${esc(nat.nat)}"} 1`);
    lines.push('# HELP meshtun_nat_last_probe_seconds Wall-clock time of the latest STUN probe (0: none yet).', '# TYPE meshtun_nat_last_probe_seconds gauge');
    lines.push(`meshtun_nat_last_probe_seconds{${iface}} ${Math.floor((nat.lastProbe ?? 0) / 1000)}`);
  }
  // The stream rungs (issue 11): bytes per transport (UDP's are the socket's counters above),
  // the relay side's accepted/refused streams and the member side's links.
  const streams = extra.mesh?.streams;
  const transportRows: string[] = [];
  for (const [side, bytes] of [['relay', streams?.server?.bytes], ['member', streams?.links?.bytes]] as const) {
    for (const [transport, b] of Object.entries(bytes ?? {})) {
      transportRows.push(`meshtun_transport_bytes_total{${iface},side="${side}",transport="${transport}",direction="rx"} ${b.rx}`);
      transportRows.push(`meshtun_transport_bytes_total{${iface},side="${side}",transport="${transport}",direction="tx"} ${b.tx}`);
    }
  }
  if (transportRows.length > 0) {
    lines.push('# HELP meshtun_transport_bytes_total Bytes of WireGuard datagrams carried over the stream rungs (https, tcp), by side and direction.', '# TYPE meshtun_transport_bytes_total counter', ...transportRows);
  }
  const serverCounters: Record<string, number> = {};
  for (const [k, v] of Object.entries(streams?.server ?? {})) if (typeof v === 'number' && k !== 'open') serverCounters[k] = v;
  family('meshtun_relay_streams_total', 'Stream rung connections a relaying node accepted and refused, by reason.', Object.keys(serverCounters).length ? [['', serverCounters]] : []);
  family('meshtun_relay_links_total', 'Stream rungs a member opened, failed and closed.', streams?.linkCounters ? [['', streams.linkCounters]] : []);
  const relayedFor = extra.mesh?.relayedFor ?? [];
  if (relayedFor.length > 0) {
    lines.push('# HELP meshtun_relay_node_bytes_total Bytes this node relayed for a source node.', '# TYPE meshtun_relay_node_bytes_total counter');
    for (const r of relayedFor) lines.push(`meshtun_relay_node_bytes_total{${iface},node="${esc(r.node)}"} ${r.bytes}`);
    lines.push('# HELP meshtun_relay_node_dropped_total Frames not relayed for a source node over its rate.', '# TYPE meshtun_relay_node_dropped_total counter');
    for (const r of relayedFor) lines.push(`meshtun_relay_node_dropped_total{${iface},node="${esc(r.node)}"} ${r.dropped}`);
  }
  const paths = extra.mesh?.paths ?? [];
  if (paths.length > 0) {
    lines.push('# HELP meshtun_peer_path_changes_total Times the path to a peer changed (direct, relay, none).', '# TYPE meshtun_peer_path_changes_total counter');
    for (const p of paths) lines.push(`meshtun_peer_path_changes_total{${iface},peer="${esc(p.name)}"} ${p.changes}`);
    lines.push('# HELP meshtun_peer_path_direct Whether the path to a peer is direct (1) or not (0).', '# TYPE meshtun_peer_path_direct gauge');
    for (const p of paths) lines.push(`meshtun_peer_path_direct{${iface},peer="${esc(p.name)}"} ${p.kind === 'direct' ? 1 : 0}`);
    lines.push('# HELP meshtun_peer_relayed_bytes_total Bytes of a peer\'s traffic that went through a relay, by direction.', '# TYPE meshtun_peer_relayed_bytes_total counter');
    for (const p of paths) {
      lines.push(`meshtun_peer_relayed_bytes_total{${iface},peer="${esc(p.name)}",direction="tx"} ${p.relayedTxBytes}`);
      lines.push(`meshtun_peer_relayed_bytes_total{${iface},peer="${esc(p.name)}",direction="rx"} ${p.relayedRxBytes}`);
    }
  }
  family('meshtun_lan_events_total', 'LAN discovery beacons sent, received, accepted, own, refused by reason (malformed, version, other network, bad MAC, stale, replay), endpoints learned, socket errors.',
    extra.mesh?.lan ? [['', extra.mesh.lan]] : []);
  family('meshtun_control_events_total', 'Coordinator control channel: connections, handshakes and sessions, refusals and evictions by reason, auth limiter.',
    extra.mesh?.control ? [['', extra.mesh.control]] : []);
  return lines.join('\n') + '\n';
}

/** Extra routes: an answer for the request, or undefined to fall through to the built-in ones
 * (then 404). A UserError thrown becomes a 400 with its message and hint. */
export type ApiRoutes = (method: string, url: string, body: unknown) => Promise<{ status: number; body: unknown } | undefined> | { status: number; body: unknown } | undefined;

/** The largest JSON request body read by the API. */
const MAX_API_BODY = 64 * 1024;

function readJson(req: IncomingMessage): Promise<unknown> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => { size += c.length; if (size <= MAX_API_BODY) chunks.push(c); });
    req.on('end', () => {
      try { resolve(chunks.length ? JSON.parse(Buffer.concat(chunks).toString('utf8')) : {}); } catch { resolve(undefined); }
    });
    req.on('error', () => resolve(undefined));
  });
}

export function apiSocketPath(dir: string, iface: string): string {
  return `${dir}/${iface}.api`;
}

/** Serves the local API for one interface on a Unix socket (mode 0600). */
export class ApiServer {
  private constructor(readonly path: string, private readonly server: Server) {}

  static async listen(path: string, status: () => InterfaceStatus, routes?: ApiRoutes): Promise<ApiServer> {
    mkdirPrivate(path.slice(0, path.lastIndexOf('/')));
    if (existsSync(path)) rmSync(path, { force: true });
    const server = createServer(async (req, res) => {
      try {
        const extra = routes ? await routes(req.method ?? 'GET', req.url ?? '/', req.method === 'GET' ? {} : await readJson(req)) : undefined;
        if (extra) {
          res.writeHead(extra.status, { 'content-type': 'application/json' });
          res.end(JSON.stringify(extra.body));
        } else if (req.method === 'GET' && req.url === '/v1/status') {
          res.writeHead(200, { 'content-type': 'application/json' });
          res.end(JSON.stringify(status()));
        } else if (req.method === 'GET' && req.url === '/metrics') {
          res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' });
          res.end(prometheusMetrics(status()));
        } else {
          res.writeHead(404, { 'content-type': 'application/json' });
          res.end(JSON.stringify({ error: `no such endpoint ${req.method} ${req.url}`, endpoints: ['GET /v1/status', 'GET /metrics'] }));
        }
      } catch (err) {
        if (err instanceof UserError) {
          res.writeHead(400, { 'content-type': 'application/json' });
          res.end(JSON.stringify({ error: err.message, hint: err.hint ?? null }));
          return;
        }
        res.writeHead(500, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ error: (err as Error).message }));
      }
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      // Bound under the private umask: the socket is 0600 from the moment it exists.
      withSocketUmask(() => server.listen(path, () => { server.off('error', reject); resolve(); }));
    });
    return new ApiServer(path, server);
  }

  async close(): Promise<void> {
    await new Promise<void>((r) => this.server.close(() => r()));
    rmSync(this.path, { force: true });
  }
}
