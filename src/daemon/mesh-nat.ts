// Endpoint discovery for a mesh node (issue 10.1): the node's STUN server and client on the
// WireGuard socket (mesh/stun.ts), which servers it asks, how often, and the endpoints it reports.
//
// Servers: the coordinator's node (found in the map by the coordinator's key, which the join
// string pinned) and up to two peers that reported no NAT ("none": their STUN answers come from
// their own address). Each is asked on its reported endpoints (the first few), so a server with
// several addresses counts as several. Asking two servers at different addresses is what tells an
// endpoint-independent NAT from an endpoint-dependent one. A probe runs at start, every
// NAT_PROBE_MS, when the servers in the map change and when this machine's addresses change; one
// at a time (a request during a probe runs another right after it).
//
// Reported endpoints, best first (peers try them in this order; disco pings them all):
//   1. configured ones (--endpoint): the operator says this is how to reach the node (a port
//      forward on the router), which holds whatever the NAT does;
//   2. the reflexive addresses of a NAT that maps endpoint-independently (or unknown yet): what
//      works across NATs, since most peers are not on this node's LAN; a peer on the LAN finds
//      the local address next (and LAN beacons find it first);
//   3. the local addresses;
//   4. reflexive addresses of an endpoint-dependent NAT, last: each works only toward the server
//      that saw it, so they are a poor guess for anyone else.
// De-duplicated, at most MAX_ENDPOINTS_PER_NODE (the coordinator refuses more).
import { Logger, UserError } from '../util/index.js';
import { MAX_ENDPOINTS_PER_NODE, normalizeEndpoint } from '../control/index.js';
import {
  StunServer, StunClient, routeStun, type UnderlayMux, type ControlNetworkMap, type NatType, type StunProbeResult, type StunClientOptions,
  type StunServerLimits,
} from '../mesh/index.js';
import type { Endpoint } from '../wireguard/index.js';

export const NAT_PROBE_MS = 30_000;
/** Peers with no NAT asked besides the coordinator. */
export const NAT_EXTRA_SERVERS = 2;
/** Endpoints of one server node that are asked. */
export const NAT_ENDPOINTS_PER_SERVER = 4;

const log = new Logger('mesh');

export interface MeshNatOptions {
  mux: UnderlayMux;
  /** The coordinator's node key (base64); a coordinator passes its own (it is no peer). */
  coordinatorKey: string;
  /** This node's local endpoints ("ip:port"), read at each probe and report. */
  localEndpoints: () => string[];
  /** Configured endpoints (--endpoint), normalized. */
  configured?: string[];
  /** Called when the probe's outcome (reflexive addresses, NAT type) changed. */
  onChange?: () => void;
  /** True for an underlay address routed through the mesh itself (never asked: the request would
   * enter the tunnel). */
  isTunnelled?: (address: string) => boolean;
  probeMs?: number;
  client?: StunClientOptions;
  serverLimits?: Partial<StunServerLimits>;
}

/** Checks a configured endpoint ("198.18.0.5:51820", "[fd00::5]:51820"); UserError naming the
 * flag when it is not an address:port. */
export function parseConfiguredEndpoint(text: string): string {
  try {
    return normalizeEndpoint(text);
  } catch (e) {
    if (!(e instanceof UserError)) throw e;
    throw new UserError(`--endpoint "${text}": ${e.message.replace(/^invalid endpoint "[^"]*": /, '')}`,
      'give an address and port that reaches this node\'s WireGuard port, e.g. --endpoint 198.18.0.5:51820 (a port forward on your router)');
  }
}

export class MeshNat {
  readonly server: StunServer;
  readonly client: StunClient;
  private readonly configured: string[];
  private map: ControlNetworkMap | null = null;
  private serversKey = '';
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;
  private again = false;
  private stopped = false;
  /** The latest probe's outcome; null before the first. */
  result: StunProbeResult | null = null;
  /** Wall-clock ms of the latest probe's end; null before the first. */
  lastProbe: number | null = null;
  /** The endpoints asked by the latest probe. */
  lastServers: string[] = [];
  probes = 0;

  constructor(private readonly opts: MeshNatOptions) {
    this.configured = [...(opts.configured ?? [])];
    this.server = new StunServer(opts.mux, opts.serverLimits ? { limits: opts.serverLimits } : {});
    this.client = new StunClient(opts.mux, opts.client ?? {});
    routeStun(opts.mux, this.server, this.client);
  }

  start(): void {
    if (this.timer || this.stopped) return;
    this.timer = setInterval(() => void this.probe(), this.opts.probeMs ?? NAT_PROBE_MS);
    this.timer.unref();
    void this.probe();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    this.client.close();
    this.opts.mux.on('stun', null);
  }

  /** A new map: probes at once when the servers in it changed. */
  onMap(map: ControlNetworkMap): void {
    this.map = map;
    const key = this.serverTexts().join(',');
    if (key === this.serversKey) return;
    this.serversKey = key;
    void this.probe();
  }

  /** This machine's addresses changed: the NAT (or its absence) may be another one now. */
  localChanged(): void {
    void this.probe();
  }

  /** What this node reports about its NAT: undefined until a probe had servers to ask. */
  nat(): NatType | undefined {
    return this.result && this.result.answers.length > 0 ? this.result.nat : undefined;
  }

  /** The endpoints to report, best first (see the file header). */
  endpoints(local: readonly string[] = this.opts.localEndpoints()): string[] {
    const r = this.result;
    const reflexive = r?.reflexive ?? [];
    const dependent = r?.mapping === 'endpoint-dependent';
    const ordered = [...this.configured, ...(dependent ? [] : reflexive), ...local, ...(dependent ? reflexive : [])];
    return [...new Set(ordered)].slice(0, MAX_ENDPOINTS_PER_NODE);
  }

  /** Runs one probe now (or right after the one running). */
  probe(): Promise<void> {
    if (this.stopped) return Promise.resolve();
    if (this.running) {
      this.again = true;
      return this.running;
    }
    this.running = this.runProbe().finally(() => {
      this.running = null;
      if (this.again && !this.stopped) {
        this.again = false;
        void this.probe();
      }
    });
    return this.running;
  }

  private async runProbe(): Promise<void> {
    const texts = this.serverTexts();
    const servers: Endpoint[] = [];
    for (const t of texts) {
      const ep = this.opts.mux.engine.bind.parseEndpoint(t);
      if (ep) servers.push(ep);
    }
    const local = this.opts.localEndpoints();
    const before = this.summary();
    const r = await this.client.probe(servers, local);
    if (this.stopped) return;
    this.result = r;
    this.lastServers = texts;
    this.lastProbe = Date.now();
    this.probes++;
    const after = this.summary();
    if (after !== before) {
      if (r.answers.length > 0) {
        log.info(`NAT: ${r.nat}${r.reflexive.length ? `; reflexive ${r.reflexive.join(', ')}` : ''} (${r.answers.filter((a) => a.reflexive).length} of ${r.answers.length} STUN servers answered)`);
      }
      this.opts.onChange?.();
    }
  }

  private summary(): string {
    return this.result ? `${this.nat() ?? ''}|${this.result.reflexive.join(',')}|${this.result.mapping}` : '';
  }

  /** The endpoints to ask: the coordinator's node's, then up to NAT_EXTRA_SERVERS peers with no
   * NAT; none of this node's own. */
  private serverTexts(): string[] {
    const map = this.map;
    if (!map) return [];
    const own = new Set(this.opts.localEndpoints());
    const nodes = [
      ...map.peers.filter((p) => p.publicKey === this.opts.coordinatorKey),
      ...map.peers.filter((p) => p.publicKey !== this.opts.coordinatorKey && p.nat === 'none').slice(0, NAT_EXTRA_SERVERS),
    ];
    const out: string[] = [];
    for (const n of nodes) {
      for (const e of n.endpoints.slice(0, NAT_ENDPOINTS_PER_SERVER)) {
        if (own.has(e) || out.includes(e)) continue;
        const host = e.startsWith('[') ? e.slice(1, e.indexOf(']')) : e.slice(0, e.lastIndexOf(':'));
        if (this.opts.isTunnelled?.(host)) continue;
        out.push(e);
      }
    }
    return out;
  }

  /** The status block (mesh.nat in GET /v1/status; counters become /metrics families). */
  status(): Record<string, unknown> {
    const r = this.result;
    return {
      nat: this.nat() ?? 'unknown',
      mapping: r?.mapping ?? 'unknown',
      reflexive: r?.reflexive ?? [],
      configured: [...this.configured],
      servers: this.lastServers,
      answers: r?.answers ?? [],
      lastProbe: this.lastProbe,
      probes: this.probes,
      stunServer: { ...this.server.counters },
      stunClient: { ...this.client.counters },
    };
  }
}
