// Rootless mode (`meshtun up --userspace <file.conf>`, or Mode = userspace in [Meshtun]): a
// WireGuard interface whose device is the userspace network stack instead of a kernel TUN, so it
// needs no root and no /dev/net/tun. The node's overlay addresses (Address =) live in the stack;
// the host reaches the tunnel through:
//   - a SOCKS5 proxy (default 127.0.0.1:1080) and an HTTP proxy (default 127.0.0.1:8080), whose
//     names resolve through the tunnel's DNS servers when the file has DNS =;
//   - static forwards: Forward (listen on the host, connect through the tunnel) and Reverse
//     (listen on the overlay address, connect to a host service such as 127.0.0.1:8000).
// The peer side sees an ordinary WireGuard peer: it can ping the overlay address and reach the
// Reverse ports.
//
// Where the sockets go (runPaths): when /var/run/wireguard is writable (root), the UAPI socket is
// /var/run/wireguard/<iface>.sock and the API socket and pid file are in /var/run/meshtun, as in
// TUN mode, so `wg show`, `meshtun status` and `meshtun down` work unchanged. Otherwise all three
// are in $XDG_RUNTIME_DIR/meshtun/, or <state dir>/run/ without XDG_RUNTIME_DIR (state dir:
// $MESHTUN_STATE_DIR, else ~/.local/state/meshtun): <iface>.sock, <iface>.api, <iface>.pid.
//
// Not done in userspace mode (they need root; each is logged as a warning when set): routes and
// Table, system DNS, PreUp/PostUp/PreDown/PostDown hooks, SaveConfig, FwMark without root.
//
// reload() (SIGHUP) re-reads the file and applies it live: peers (syncWireGuard), the proxies
// (restarted only when their settings changed) and the forwards (ForwardSet.apply: unchanged pairs
// keep their connections). Address and MTU changes need a restart (logged).

import { accessSync, constants as fsConstants, existsSync, readFileSync, realpathSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { ConfigError, Logger, UserError, mkdirPrivate } from '../util/index.js';
import { Engine, UapiServer, uapiSocketPath, type Bind } from '../wireguard/index.js';
import { createUdpBind } from '../transport/index.js';
import { UserspaceStack, type IpAddr } from '../stack/index.js';
import {
  KernelTunnelNet, StackTunnelNet, SystemResolver, TunnelDnsResolver, ForwardSet, Socks5Server, HttpProxy,
  DEFAULT_UDP_IDLE_MS, DEFAULT_MAX_CONNECTIONS, type HostResolver, type ApplyResult, type ForwardStatus,
} from '../forward/index.js';
import { ApiServer, apiSocketPath, interfaceStatus, type InterfaceStatus } from './api-server.js';
import { PID_DIR } from './wg-interface.js';
import { stateDir } from './node-identity.js';
import { formatPrefix, readWgQuickConfig, type WgQuickConfig } from './wg-quick-config.js';
import { DEFAULT_HTTP_PROXY, DEFAULT_SOCKS5, type ListenAddress } from './meshtun-section.js';
import { syncWireGuard, type PeerSyncResult } from './peer-sync.js';
import { localPolicyFilter, loadLocalPolicy, localPolicyPath } from './local-policy.js';
import { writeOwnPidFile } from './pid-file.js';
import { AclFilter } from '../mesh/index.js';

const log = new Logger('userspace');
const WG_RUN_DIR = '/var/run/wireguard';
const DEFAULT_MTU = 1420;

export interface RunPaths {
  uapi: string;
  api: string;
  pid: string;
}

/** Where an interface's UAPI socket, API socket and pid file go (see the file header). */
export function runPaths(iface: string): RunPaths {
  if (writable(WG_RUN_DIR) && writable(PID_DIR)) {
    return { uapi: uapiSocketPath(iface), api: apiSocketPath(PID_DIR, iface), pid: join(PID_DIR, `${iface}.pid`) };
  }
  const dir = userRunDir();
  return { uapi: uapiSocketPath(iface, dir), api: apiSocketPath(dir, iface), pid: join(dir, `${iface}.pid`) };
}

/** $XDG_RUNTIME_DIR/meshtun, else <state dir>/run. */
export function userRunDir(): string {
  const xdg = process.env.XDG_RUNTIME_DIR;
  return xdg ? join(xdg, 'meshtun') : join(stateDir(), 'run');
}

/** True when `dir` exists and is writable, or could be created. */
function writable(dir: string): boolean {
  try {
    if (existsSync(dir)) {
      accessSync(dir, fsConstants.W_OK);
      return true;
    }
    return writable(dirname(dir));
  } catch {
    return false;
  }
}

export interface UserspaceOptions {
  /** The file reload() re-reads (default: cfg.file). */
  configPath?: string;
  bind?: Bind;
  /** Override runPaths(name). */
  paths?: RunPaths;
}

export interface ReloadReport {
  peers: PeerSyncResult;
  forwards: ApplyResult;
  proxies: string[];
  warnings: string[];
}

/** The status the local API serves for a userspace interface. */
export interface UserspaceStatus extends InterfaceStatus {
  mode: 'userspace';
  addresses: string[];
  proxies: { kind: 'socks5' | 'http'; address: string; counters: Record<string, number> }[];
  forwards: ForwardStatus[];
  stack: Record<string, number>;
  tcp: Record<string, number>;
}

export class UserspaceInterface {
  readonly forwards: ForwardSet;
  socks: Socks5Server | null = null;
  http: HttpProxy | null = null;
  readonly stopped: Promise<string>;
  private resolveStopped!: (reason: string) => void;
  private undo: (() => Promise<void>)[] = [];
  private stopping: Promise<void> | null = null;
  private reloading: Promise<ReloadReport> | null = null;
  private resolver: HostResolver;
  private readonly local = new KernelTunnelNet();
  private readonly tunnel: StackTunnelNet;

  private constructor(
    readonly name: string,
    readonly engine: Engine,
    readonly stack: UserspaceStack,
    readonly paths: RunPaths,
    private cfg: WgQuickConfig,
    private readonly configPath: string,
  ) {
    this.stopped = new Promise((r) => (this.resolveStopped = r));
    this.tunnel = new StackTunnelNet(stack, { hasRoute: (family, addr) => this.hasRoute(family, addr) });
    this.resolver = this.makeResolver(cfg);
    const resolveThrough: HostResolver = { resolve: (host) => this.resolver.resolve(host) };
    this.forwards = new ForwardSet({
      local: this.local, tunnel: this.tunnel, tunnelResolver: resolveThrough, localResolver: new SystemResolver(),
      maxConnections: cfg.meshtun.maxConnections ?? DEFAULT_MAX_CONNECTIONS, udpIdleMs: DEFAULT_UDP_IDLE_MS,
    });
  }

  /** Brings up an interface from a parsed wg-quick file: stack, engine, UAPI and API sockets,
   * proxies and forwards. Throws UserError/ConfigError (and undoes what was done) on failure. */
  static async fromWgQuick(name: string, cfg: WgQuickConfig, opts: UserspaceOptions = {}): Promise<UserspaceInterface> {
    for (const w of [...cfg.warnings, ...ignoredSettings(cfg)]) log.warn(w);
    const addresses = cfg.interface.addresses.map(formatPrefix);
    if (addresses.length === 0) {
      throw new ConfigError(cfg.file, 0, 'userspace mode needs the node\'s overlay address: add "Address = <address>/<prefix>" to [Interface] (e.g. 100.64.0.2/24)');
    }
    const paths = opts.paths ?? runPaths(name);
    for (const dir of new Set([dirname(paths.uapi), dirname(paths.api), dirname(paths.pid)])) {
      try {
        mkdirPrivate(dir);
        accessSync(dir, fsConstants.W_OK);
      } catch (err) {
        throw new UserError(`cannot use ${dir} for the sockets of ${name}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
          'set XDG_RUNTIME_DIR (or MESHTUN_STATE_DIR) to a directory you can write');
      }
    }
    const stack = new UserspaceStack({ addresses, mtu: cfg.interface.mtu ?? DEFAULT_MTU, name });
    const engine = new Engine({ device: stack, bind: opts.bind ?? createUdpBind(), name });
    if (cfg.meshtun.policy) engine.setPacketFilter(localPolicyFilter(cfg.meshtun.policy, opts.configPath ?? cfg.file, cfg.meshtun.line));
    const iface = new UserspaceInterface(name, engine, stack, paths, cfg, opts.configPath ?? cfg.file);
    try {
      await iface.start();
    } catch (err) {
      await iface.stop('setup failed');
      throw err;
    }
    return iface;
  }

  private async start(): Promise<void> {
    const { engine, cfg } = this;
    this.undo.push(async () => { engine.close(); });
    await syncWireGuard(engine, cfg, null);
    if (cfg.interface.fwmark && process.getuid?.() === 0) engine.setFwmark(cfg.interface.fwmark);
    await engine.up();
    const uapi = await UapiServer.listen(this.paths.uapi, engine);
    this.undo.push(async () => { await uapi.close(); });
    const forwards = await this.forwards.apply([...cfg.meshtun.forwards, ...cfg.meshtun.reverses]);
    this.undo.push(async () => { await this.forwards.close(); });
    if (forwards.failed.length) {
      throw new UserError(`cannot start ${forwards.failed.map((f) => `${f.spec}: ${f.error}`).join('; ')}`, 'fix the [Meshtun] Forward/Reverse lines of ' + cfg.file);
    }
    this.undo.push(async () => { await this.closeProxies(); });
    await this.startProxies(cfg);
    const api = await ApiServer.listen(this.paths.api, () => this.status());
    this.undo.push(async () => { await api.close(); });
  }

  private makeResolver(cfg: WgQuickConfig): HostResolver {
    const dns = cfg.interface.dns;
    if (dns.length === 0) return new SystemResolver();
    const fams = new Set(cfg.interface.addresses.map((a) => a.family));
    const families: (4 | 6)[] = fams.has(4) ? (fams.has(6) ? [4, 6] : [4]) : [6];
    return new TunnelDnsResolver(this.tunnel, dns, { families });
  }

  private hasRoute(family: 4 | 6, addr: IpAddr): boolean {
    const a = this.engine.allowedIps;
    return family === 4 ? a.lookupV4(addr as number) !== undefined : a.lookupV6(addr as Uint8Array, 0) !== undefined;
  }

  private async startProxies(cfg: WgQuickConfig): Promise<void> {
    const m = cfg.meshtun;
    const common = { local: this.local, tunnel: this.tunnel, resolver: { resolve: (h: string) => this.resolver.resolve(h) }, maxConnections: m.maxConnections ?? undefined };
    const socks = effective(m.socks5, DEFAULT_SOCKS5);
    if (socks) {
      this.socks = await Socks5Server.listen({
        ...common, host: socks.host, port: socks.port,
        ...(m.socks5User !== null && m.socks5Password !== null ? { username: m.socks5User, password: m.socks5Password } : {}),
      });
    }
    const http = effective(m.httpProxy, DEFAULT_HTTP_PROXY);
    if (http) {
      this.http = await HttpProxy.listen({
        ...common, host: http.host, port: http.port,
        ...(m.httpProxyUser !== null && m.httpProxyPassword !== null ? { username: m.httpProxyUser, password: m.httpProxyPassword } : {}),
      });
    }
  }

  private async closeProxies(): Promise<void> {
    const [s, h] = [this.socks, this.http];
    this.socks = null;
    this.http = null;
    await s?.close();
    await h?.close();
  }

  /** Where the proxies listen, as "socks5://127.0.0.1:1080" and "http://127.0.0.1:8080". */
  proxyUrls(): string[] {
    const out: string[] = [];
    if (this.socks) out.push(`socks5://${hostPort(this.socks.address)}`);
    if (this.http) out.push(`http://${hostPort(this.http.address)}`);
    return out;
  }

  status(): UserspaceStatus {
    const proxies: UserspaceStatus['proxies'] = [];
    if (this.socks) proxies.push({ kind: 'socks5', address: hostPort(this.socks.address), counters: this.socks.counters.snapshot(this.socks.active) });
    if (this.http) proxies.push({ kind: 'http', address: hostPort(this.http.address), counters: this.http.counters.snapshot(this.http.active) });
    return {
      ...interfaceStatus(this.name, this.engine),
      mode: 'userspace',
      addresses: this.cfg.interface.addresses.map(formatPrefix),
      proxies,
      forwards: this.forwards.status(),
      stack: { ...this.stack.counters } as unknown as Record<string, number>,
      tcp: { ...this.stack.tcpLayer.counters } as unknown as Record<string, number>,
    };
  }

  /** Re-reads the config file and applies it live (see the file header). A broken file changes
   * nothing (the ConfigError is thrown). Calls run one at a time. */
  reload(): Promise<ReloadReport> {
    const run = (this.reloading ?? Promise.resolve()).catch(() => undefined).then(() => this.reloadNow());
    this.reloading = run;
    return run;
  }

  private async reloadNow(): Promise<ReloadReport> {
    const next = readWgQuickConfig(this.configPath);
    const prev = this.cfg;
    // The policy first: a bad policy file refuses the whole reload and changes nothing.
    const policy = next.meshtun.policy
      ? loadLocalPolicy(localPolicyPath(next.meshtun.policy, this.configPath), this.configPath, next.meshtun.line)
      : null;
    const current = this.engine.packetFilter;
    if (policy === null) this.engine.setPacketFilter(null);
    else if (current instanceof AclFilter) current.setPolicy(policy); // keeps flows still allowed
    else this.engine.setPacketFilter(new AclFilter({ policy }));
    const warnings: string[] = [...next.warnings];
    if (next.interface.addresses.map(formatPrefix).join() !== prev.interface.addresses.map(formatPrefix).join()) {
      warnings.push('Address changed: restart the interface to use the new addresses (kept the old ones)');
    }
    if (next.interface.mtu !== prev.interface.mtu) this.stack.setMtu(next.interface.mtu ?? DEFAULT_MTU);
    if (next.meshtun.maxConnections !== prev.meshtun.maxConnections) {
      warnings.push('MaxConnections changed: it applies to proxies restarted now and to forwards after a restart');
    }
    const peers = await syncWireGuard(this.engine, next, prev);
    if (next.interface.dns.join() !== prev.interface.dns.join()) this.resolver = this.makeResolver(next);
    const proxies: string[] = [];
    if (JSON.stringify(proxySettings(next)) !== JSON.stringify(proxySettings(prev))) {
      await this.closeProxies();
      await this.startProxies(next);
      proxies.push(...this.proxyUrls());
    }
    const forwards = await this.forwards.apply([...next.meshtun.forwards, ...next.meshtun.reverses]);
    this.cfg = next;
    for (const w of warnings) log.warn(w);
    log.info(`reloaded ${this.configPath}: peers +${peers.added.length} -${peers.removed.length}; forwards +${forwards.started.length} -${forwards.stopped.length} =${forwards.kept.length}` +
      (forwards.failed.length ? `; failed: ${forwards.failed.map((f) => `${f.spec} (${f.error})`).join(', ')}` : '') +
      (proxies.length ? `; proxies restarted: ${proxies.join(', ')}` : ''));
    return { peers, forwards, proxies, warnings };
  }

  /** Writes the pid file so `meshtun down <iface>` finds this process. */
  writePidFile(): void {
    this.undo.push(writeOwnPidFile(this.paths.pid));
  }

  /** Closes proxies, forwards, sockets and the engine, in reverse order. Idempotent. */
  stop(reason = 'stopped'): Promise<void> {
    if (this.stopping) return this.stopping;
    this.stopping = (async () => {
      for (const fn of this.undo.reverse()) {
        try { await fn(); } catch (err) { log.warn(`cleanup: ${(err as Error).message}`); }
      }
      this.undo = [];
      this.engine.close();
      this.resolveStopped(reason);
    })();
    return this.stopping;
  }
}

function effective(v: ListenAddress | 'off' | null, dflt: Readonly<ListenAddress>): ListenAddress | null {
  if (v === 'off') return null;
  return v ?? { ...dflt };
}

function proxySettings(cfg: WgQuickConfig): unknown {
  const m = cfg.meshtun;
  return [m.socks5, m.socks5User, m.socks5Password, m.httpProxy, m.httpProxyUser, m.httpProxyPassword, m.maxConnections];
}

function hostPort(a: { host: string; port: number }): string {
  return `${a.host.includes(':') ? `[${a.host}]` : a.host}:${a.port}`;
}

/** Warnings for wg-quick settings userspace mode does not apply. */
function ignoredSettings(cfg: WgQuickConfig): string[] {
  const it = cfg.interface;
  const out: string[] = [];
  const hooks = [...it.preUp, ...it.postUp, ...it.preDown, ...it.postDown];
  if (hooks.length) out.push(`${cfg.file}: PreUp/PostUp/PreDown/PostDown are not run in userspace mode (there is no interface for them to configure)`);
  if (it.table.kind !== 'auto') out.push(`${cfg.file}: Table is ignored in userspace mode (no routes are added: use the proxies or forwards)`);
  if (it.dns.length || it.dnsSearch.length) out.push(`${cfg.file}: DNS = is not applied to the system in userspace mode; the proxies and forwards resolve names through ${it.dns.join(', ') || 'the system resolver'}`);
  if (it.saveConfig) out.push(`${cfg.file}: SaveConfig is ignored in userspace mode`);
  if (it.fwmark && process.getuid?.() !== 0) out.push(`${cfg.file}: FwMark needs root (CAP_NET_ADMIN); not set`);
  return out;
}

/** Sends SIGTERM to a rootless interface's process, found by the pid file in userRunDir(); false
 * when none runs. (Interfaces started as root keep their pid file in PID_DIR: signalInterface.) */
export function signalUserspaceInterface(iface: string): boolean {
  // A wg-quick userspace interface keeps its pid file in userRunDir(); a userspace mesh node in
  // <state dir>/run (the same folder unless XDG_RUNTIME_DIR is set).
  const files = [...new Set([join(userRunDir(), `${iface}.pid`), join(stateDir(), 'run', `${iface}.pid`)])];
  return files.some((f) => signalPidFile(f, iface));
}

/** Stops the process named by pid file `file` (interface `iface`, for messages). False when the
 * file is missing or names no live node process (a stale file is removed). */
export function signalPidFile(file: string, iface: string): boolean {
  let pid: number;
  try {
    pid = Number(readFileSync(file, 'utf8').trim());
  } catch {
    return false;
  }
  if (!Number.isInteger(pid) || pid <= 1 || !runsNode(pid)) {
    try { rmSync(file, { force: true }); } catch { /* not ours */ }
    return false;
  }
  try {
    process.kill(pid, 'SIGTERM');
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EPERM') throw new UserError(`not allowed to stop interface "${iface}" (process ${pid} belongs to another user)`);
    try { rmSync(file, { force: true }); } catch { /* not ours */ }
    return false;
  }
}

/** True if `pid` runs this Node.js binary (a reused pid is never signalled). */
function runsNode(pid: number): boolean {
  try {
    return realpathSync(`/proc/${pid}/exe`) === realpathSync(process.execPath);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EACCES';
  }
}
