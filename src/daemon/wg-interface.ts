// A WireGuard-compatible interface run the way wg-quick and wireguard-go run one: a kernel TUN
// device, a UDP socket, the engine, the UAPI socket for wg(8), and (for wg-quick files) the
// addresses, MTU, routes, DNS and hook scripts, all removed again on shutdown.

import { execFile } from 'node:child_process';
import { rmSync, readFileSync, realpathSync } from 'node:fs';
import { promisify } from 'node:util';
import { Logger, PlatformError, UserError } from '../util/index.js';
import { Engine, parseCidr, type Bind, type Device } from '../wireguard/index.js';
import { UapiServer, uapiSocketPath } from '../wireguard/index.js';
import { ApiServer, apiSocketPath, interfaceStatus } from './api-server.js';
import { localPolicyFilter } from './local-policy.js';
import { writeOwnPidFile } from './pid-file.js';
import { LinuxTun } from '../tun/index.js';
import { createUdpBind } from '../transport/index.js';
import { resolveEndpoint, formatPrefix, type WgQuickConfig, type IpPrefix } from './wg-quick-config.js';

const execFileP = promisify(execFile);
const log = new Logger('daemon');

export const PID_DIR = '/var/run/meshtun';
/** wg-quick's table and fwmark for a default route through the tunnel. */
export const DEFAULT_ROUTE_TABLE = 51820;

export async function run(cmd: string, args: string[]): Promise<string> {
  try {
    const { stdout } = await execFileP(cmd, args, { encoding: 'utf8' });
    return stdout;
  } catch (err) {
    const e = err as { stderr?: string; message: string; code?: string };
    if (e.code === 'ENOENT') throw new PlatformError(`"${cmd}" is not installed (needed to configure the interface); install iproute2`);
    throw new UserError(`${cmd} ${args.join(' ')}: ${(e.stderr || e.message).trim()}`);
  }
}

async function runHook(script: string, iface: string): Promise<void> {
  const command = script.replaceAll('%i', iface);
  log.info(`[#] ${command}`);
  await run('bash', ['-c', command]);
}

export function pidFile(iface: string): string {
  return `${PID_DIR}/${iface}.pid`;
}

/** A running interface: engine, device, UAPI server, and what must be undone at shutdown. */
export class WgInterface {
  private undo: (() => Promise<void>)[] = [];
  private stopping: Promise<void> | null = null;
  readonly stopped: Promise<string>;
  private resolveStopped!: (reason: string) => void;

  private constructor(readonly name: string, readonly engine: Engine, readonly tun: LinuxTun) {
    this.stopped = new Promise((r) => (this.resolveStopped = r));
    tun.onGone((why) => {
      log.info(`interface ${name} is gone (${why}); shutting down`);
      void this.stop(`interface deleted`);
    });
  }

  /** Creates the TUN device, the socket and the engine, and serves the UAPI socket. The
   * interface has no configuration yet (wireguard-go's start state). */
  static async create(name: string, opts: { mtu?: number; bind?: Bind } = {}): Promise<WgInterface> {
    WgInterface.assertCanCreate(name);
    const tun = LinuxTun.open(name, opts.mtu ?? 1420);
    let engine: Engine | null = null;
    try {
      const bind = opts.bind ?? createUdpBind();
      engine = new Engine({ device: tun as Device, bind, name });
      await engine.up();
      const uapi = await UapiServer.listen(uapiSocketPath(name), engine);
      const iface = new WgInterface(name, engine, tun);
      iface.undo.push(async () => { await uapi.close(); });
      const eng = engine;
      const api = await ApiServer.listen(apiSocketPath(PID_DIR, name), () => interfaceStatus(name, eng));
      iface.undo.push(async () => { await api.close(); });
      return iface;
    } catch (err) {
      if (engine) engine.close();
      else tun.close();
      throw err;
    }
  }

  /** Throws PlatformError unless this process may create interfaces (root). */
  static assertCanCreate(name: string): void {
    if (process.getuid?.() !== 0) {
      throw new PlatformError(`creating the interface "${name}" needs root (CAP_NET_ADMIN)`, 'run as root, or use `meshtun up --userspace` for rootless mode');
    }
  }

  /** wg-quick up: PreUp, interface, wg config, addresses, MTU, routes, DNS, PostUp. */
  static async fromWgQuick(name: string, cfg: WgQuickConfig): Promise<WgInterface> {
    const ifc = cfg.interface;
    for (const w of cfg.warnings) log.warn(w);
    for (const h of ifc.preUp) await runHook(h, name);
    const iface = await WgInterface.create(name, { mtu: ifc.mtu ?? 1420 });
    try {
      await iface.applyWgQuick(cfg);
    } catch (err) {
      await iface.stop('setup failed');
      throw err;
    }
    return iface;
  }

  private async applyWgQuick(cfg: WgQuickConfig): Promise<void> {
    const { engine, name } = this;
    const ifc = cfg.interface;
    engine.setPrivateKey(ifc.privateKey);
    if (cfg.meshtun.policy) engine.setPacketFilter(localPolicyFilter(cfg.meshtun.policy, cfg.file, cfg.meshtun.line));
    if (ifc.listenPort !== null) await engine.setListenPort(ifc.listenPort);
    for (const p of cfg.peers) {
      const peer = engine.addPeer(p.publicKey);
      if (p.presharedKey) engine.setPresharedKey(peer, p.presharedKey);
      if (p.endpoint) {
        const resolved = await resolveEndpoint(p.endpoint);
        const ep = engine.bind.parseEndpoint(resolved);
        if (!ep) throw new UserError(`${cfg.file}:${p.line}: cannot use endpoint "${p.endpoint}" (resolved to ${resolved})`);
        engine.setEndpoint(peer, ep);
      }
      for (const a of p.allowedIps) engine.allowedIps.insertCidr(parseCidr(formatPrefix(a)), peer);
      if (p.persistentKeepalive) engine.setPersistentKeepalive(peer, p.persistentKeepalive);
    }
    const mtu = ifc.mtu ?? 1420;
    await run('ip', ['link', 'set', 'dev', name, 'mtu', String(mtu)]);
    for (const a of ifc.addresses) {
      await run('ip', [a.family === 6 ? '-6' : '-4', 'address', 'add', formatPrefix(a), 'dev', name]);
    }
    await run('ip', ['link', 'set', 'dev', name, 'up']);
    this.undo.push(async () => { await run('ip', ['link', 'set', 'dev', name, 'down']).catch(() => undefined); });
    if (ifc.table.kind !== 'off') await this.addRoutes(cfg);
    if (ifc.dns.length || ifc.dnsSearch.length) await this.setDns(ifc.dns, ifc.dnsSearch);
    for (const h of ifc.postUp) await runHook(h, name);
    // One undo step for all PreDown hooks: undo steps run in reverse, the hooks in file order.
    const preDown = ifc.preDown;
    if (preDown.length) this.undo.push(async () => { for (const h of preDown) await runHook(h, name); });
    // PostDown runs after the interface is gone (see stop()).
    this.postDown = ifc.postDown;
  }
  private postDown: string[] = [];

  private async addRoutes(cfg: WgQuickConfig): Promise<void> {
    const { name } = this;
    const table = cfg.interface.table;
    const tableArgs = table.kind === 'id' ? ['table', String(table.id)] : table.kind === 'name' ? ['table', table.name] : [];
    const prefixes: IpPrefix[] = [];
    for (const p of cfg.peers) prefixes.push(...p.allowedIps);
    prefixes.sort((a, b) => b.prefixLength - a.prefixLength);
    for (const pfx of prefixes) {
      const fam = pfx.family === 6 ? '-6' : '-4';
      const cidr = formatPrefix(pfx);
      if (pfx.prefixLength === 0 && table.kind === 'auto') {
        await this.addDefaultRoute(fam, cidr);
        continue;
      }
      const existing = await run('ip', [fam, 'route', 'show', 'dev', name, 'match', cidr, ...tableArgs]).catch(() => '');
      if (existing.trim()) continue;
      await run('ip', [fam, 'route', 'add', cidr, 'dev', name, ...tableArgs]);
    }
  }

  /** wg-quick's policy routing for 0.0.0.0/0 and ::/0: our own packets carry fwmark 51820 and
   * use the main table; everything else uses table 51820, whose default route is the tunnel.
   * Public for the mesh's exit node (routing.ts); undone when the interface stops. */
  async addDefaultRoute(fam: string, cidr: string): Promise<void> {
    const t = String(DEFAULT_ROUTE_TABLE);
    this.engine.setFwmark(DEFAULT_ROUTE_TABLE);
    await run('ip', [fam, 'route', 'add', cidr, 'dev', this.name, 'table', t]);
    await run('ip', [fam, 'rule', 'add', 'not', 'fwmark', t, 'table', t]);
    await run('ip', [fam, 'rule', 'add', 'table', 'main', 'suppress_prefixlength', '0']);
    this.undo.push(async () => {
      await run('ip', [fam, 'rule', 'delete', 'table', t]).catch(() => undefined);
      await run('ip', [fam, 'rule', 'delete', 'table', 'main', 'suppress_prefixlength', '0']).catch(() => undefined);
    });
  }

  private async setDns(servers: string[], search: string[]): Promise<void> {
    const text = servers.map((s) => `nameserver ${s}\n`).join('') + (search.length ? `search ${search.join(' ')}\n` : '');
    const hasResolvconf = await run('bash', ['-c', 'command -v resolvconf']).then(() => true, () => false);
    if (!hasResolvconf) {
      log.warn(`DNS = ${servers.join(', ')} not applied: resolvconf is not installed (apt-get install openresolv)`);
      return;
    }
    await new Promise<void>((resolve, reject) => {
      const p = execFile('resolvconf', ['-a', `tun.${this.name}`, '-m', '0', '-x'], (err) => (err ? reject(new UserError(`resolvconf: ${err.message}`)) : resolve()));
      p.stdin?.end(text);
    });
    this.undo.push(async () => { await run('resolvconf', ['-d', `tun.${this.name}`, '-f']).catch(() => undefined); });
  }

  /** Writes a pid file so `meshtun down <iface>` can find this process. */
  writePidFile(): void {
    this.undo.push(writeOwnPidFile(pidFile(this.name)));
  }

  /** Undoes everything in reverse order, closes the engine (which deletes the TUN device). */
  stop(reason = 'stopped'): Promise<void> {
    if (this.stopping) return this.stopping;
    this.stopping = (async () => {
      for (const fn of this.undo.reverse()) {
        try { await fn(); } catch (err) { log.warn(`cleanup: ${(err as Error).message}`); }
      }
      this.undo = [];
      this.engine.close();
      for (const h of this.postDown) {
        try { await runHook(h, this.name); } catch (err) { log.warn(`PostDown: ${(err as Error).message}`); }
      }
      this.resolveStopped(reason);
    })();
    return this.stopping;
  }
}

/** Sends SIGTERM to the process running `iface` (from its pid file); false if none runs. A pid
 * file left by a killed process is removed, and a pid now used by another program is not signalled.
 * Throws UserError when the process belongs to someone else (not root). */
export function signalInterface(iface: string): boolean {
  const file = pidFile(iface);
  let pid: number;
  try {
    pid = Number(readFileSync(file, 'utf8').trim());
  } catch {
    return false;
  }
  if (!Number.isInteger(pid) || pid <= 1 || !isMeshtunProcess(pid)) {
    try { rmSync(file, { force: true }); } catch { /* not ours to remove */ }
    return false;
  }
  try {
    process.kill(pid, 'SIGTERM');
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EPERM') {
      throw new UserError(`not allowed to stop interface "${iface}" (process ${pid})`, 'run as root, e.g. `sudo meshtun down ' + iface + '`');
    }
    try { rmSync(file, { force: true }); } catch { /* not ours to remove */ }
    return false;
  }
}

/** True if `pid` runs the same Node.js binary as this process (a reused pid that now belongs to
 * another program is never signalled). Unknown (another user's process) counts as true. */
function isMeshtunProcess(pid: number): boolean {
  try {
    return realpathSync(`/proc/${pid}/exe`) === realpathSync(process.execPath);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EACCES';
  }
}
