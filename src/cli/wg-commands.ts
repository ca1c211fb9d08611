// CLI commands for WireGuard-style interfaces: `up <file.conf>` (a kernel TUN, or rootless with
// --userspace / Mode = userspace), `down <iface>`, and the wireguard-go drop-in
// `wg-userspace [-f] <iface>`.

import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { existsSync, mkdirSync, openSync, closeSync, readFileSync, fstatSync } from 'node:fs';
import { Logger, UserError } from '../util/index.js';
import {
  WgInterface, signalInterface, readWgQuickConfig, worldAccessibleWarning, interfaceNameFromPath, isInterfaceName, pidFile, PID_DIR,
} from '../daemon/index.js';
import { UserspaceInterface, signalUserspaceInterface, signalPidFile, stateDir, MESH_RUN_DIR, type WgQuickConfig } from '../daemon/index.js';
import type { Command } from './main.js';
import { upMesh } from './mesh-commands.js';

/** Flags of a mesh node (`meshtun up` with no file); their values are not file names. */
const MESH_FLAGS = new Set([
  '--join', '--token', '--name', '--listen', '--listen-port', '--relay-https-port', '--relay-tcp-port', '--interface', '--network', '--advertise-routes', '--exit-node', '--policy', '--socks5', '--http-proxy',
  '--socks5-user', '--socks5-password', '--http-proxy-user', '--http-proxy-password', '--endpoint',
]);

const log = new Logger('meshtun');
/** How long `wg-userspace` waits for its detached copy to serve the interface. */
const DETACH_TIMEOUT_MS = 10_000;
/** bin/meshtun.js, which the detached copy runs (this process may have been started by another
 * script, e.g. bin/meshtun-wg-userspace.js). This file is dist/src/cli/wg-commands.js. */
const MESHTUN_BIN = fileURLToPath(new URL('../../../bin/meshtun.js', import.meta.url));

/** Runs until SIGINT/SIGTERM or until the interface goes away, then tears down. */
async function serveUntilStopped(iface: { name: string; stop(reason: string): Promise<void>; stopped: Promise<string> }): Promise<number> {
  const onSignal = (sig: string) => {
    log.info(`${sig}: stopping ${iface.name}`);
    void iface.stop(sig);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const reason = await iface.stopped;
  process.off('SIGINT', onSignal);
  process.off('SIGTERM', onSignal);
  log.info(`${iface.name} stopped (${reason})`);
  return 0;
}

export const upWgQuick = async (file: string, mode?: 'tun' | 'userspace'): Promise<number> => {
  if (!existsSync(file)) throw new UserError(`no such file "${file}"`, 'give the path of a wg-quick file, e.g. `meshtun up ./mt0.conf`');
  const name = interfaceNameFromPath(file);
  const exposed = worldAccessibleWarning(file);
  if (exposed) process.stderr.write(`${exposed}\n`);
  const cfg = readWgQuickConfig(file);
  if ((mode ?? cfg.meshtun.mode ?? 'tun') === 'userspace') return upUserspace(name, file, cfg);
  const m = cfg.meshtun;
  if (m.forwards.length || m.reverses.length || m.socks5 !== null || m.httpProxy !== null) {
    log.warn(`${file}: Socks5, HttpProxy, Forward and Reverse apply in userspace mode only (Mode = userspace or --userspace); ignored with a kernel TUN`);
  }
  const iface = await WgInterface.fromWgQuick(name, cfg);
  iface.writePidFile();
  const port = iface.engine.bind.port;
  process.stderr.write(`meshtun: ${name} is up: ${cfg.interface.addresses.map((a) => `${a.address}/${a.prefixLength}`).join(', ') || 'no address'}; ` +
    `listening on UDP ${port}; public key ${iface.engine.publicKey?.toString('base64') ?? '(none)'}; ${cfg.peers.length} peer(s)\n` +
    `meshtun: \`wg show ${name}\` shows it; Ctrl-C or \`meshtun down ${name}\` stops it\n`);
  return serveUntilStopped(iface);
};

/** Rootless mode: the userspace stack instead of a TUN, with the proxies and forwards of the
 * [Meshtun] section. SIGHUP re-reads the file and applies it live. */
async function upUserspace(name: string, file: string, cfg: WgQuickConfig): Promise<number> {
  const iface = await UserspaceInterface.fromWgQuick(name, cfg, { configPath: file });
  iface.writePidFile();
  const lines = [
    `${name} is up in userspace mode (no TUN, no root): ${cfg.interface.addresses.map((a) => `${a.address}/${a.prefixLength}`).join(', ')}; ` +
      `listening on UDP ${iface.engine.bind.port}; public key ${iface.engine.publicKey?.toString('base64') ?? '(none)'}; ${cfg.peers.length} peer(s)`,
  ];
  if (iface.socks) lines.push(`SOCKS5 proxy on ${iface.socks.address.host}:${iface.socks.address.port}${cfg.meshtun.socks5User ? ' (username/password)' : ''}, e.g. curl --socks5-hostname ${hostPort(iface.socks.address)} http://<peer address>/`);
  if (iface.http) lines.push(`HTTP proxy on ${iface.http.address.host}:${iface.http.address.port}${cfg.meshtun.httpProxyUser ? ' (Basic auth)' : ''}, e.g. curl -x http://${hostPort(iface.http.address)} http://<peer address>/`);
  for (const f of iface.forwards.status()) {
    const listen = f.listen ? hostPort(f.listen) : '?';
    lines.push(f.direction === 'forward'
      ? `forward ${f.protocol} ${listen} -> ${f.target} through the tunnel`
      : `reverse ${f.protocol} ${listen} on the tunnel -> ${f.target}`);
  }
  lines.push(`UAPI socket ${iface.paths.uapi}; API socket ${iface.paths.api}`);
  lines.push(`\`kill -HUP ${process.pid}\` reloads ${file} (peers, proxies, forwards); Ctrl-C or \`meshtun down ${name}\` stops it`);
  process.stderr.write(lines.map((l) => `meshtun: ${l}\n`).join(''));
  const onHup = (): void => {
    iface.reload().then((r) => {
      const f = r.forwards;
      process.stderr.write(`meshtun: reloaded ${file}: peers +${r.peers.added.length} -${r.peers.removed.length}, forwards started ${f.started.length}, stopped ${f.stopped.length}, kept ${f.kept.length}` +
        `${f.failed.length ? `, failed ${f.failed.map((x) => `${x.spec} (${x.error})`).join('; ')}` : ''}\n`);
    }, (err: Error) => {
      process.stderr.write(`meshtun: reload of ${file} failed, nothing changed: ${err.message}\n`);
    });
  };
  process.on('SIGHUP', onHup);
  try {
    return await serveUntilStopped(iface);
  } finally {
    process.off('SIGHUP', onHup);
  }
}

function hostPort(a: { host: string; port: number }): string {
  return `${a.host === '' ? '*' : a.host.includes(':') ? `[${a.host}]` : a.host}:${a.port}`;
}

export const up: Command = {
  name: 'up',
  summary: 'start a node (a wg-quick file, or a mesh node with no arguments)',
  usage: 'meshtun up [file.conf] [--userspace|--tun] | meshtun up [--tun] [--join URL --token T] [--name N] [--listen HOST:PORT] [--listen-port PORT] [--interface IF] [--socks5 HOST:PORT|off] [--http-proxy HOST:PORT|off] [--socks5-user NAME] [--http-proxy-user NAME] [--advertise-routes CIDR,...] [--advertise-exit-node] [--exit-node NODE] [--relay [--relay-https-port P] [--relay-tcp-port P]] [--auto-approve-routes] [--policy FILE] [--endpoint HOST:PORT]\n' +
    '  A mesh node (no file) runs on the userspace stack by default, as root too: no TUN, a SOCKS5 proxy on 127.0.0.1:1080 and an\n' +
    '  HTTP proxy on 127.0.0.1:8080 (names like <node>.mesh resolve), DNS for <node>.mesh on its overlay addresses, and it routes\n' +
    '  its approved subnets / exit traffic with host sockets. --tun puts it on a kernel TUN interface instead (root).\n' +
    '  A proxy listens beyond loopback (0.0.0.0, a LAN address) only with credentials: --socks5-user NAME (RFC 1929) and\n' +
    '  --http-proxy-user NAME (Basic), with the password in MESHTUN_SOCKS5_PASSWORD / MESHTUN_HTTP_PROXY_PASSWORD (or\n' +
    '  --socks5-password / --http-proxy-password, which ps shows); MESHTUN_SOCKS5_USER / MESHTUN_HTTP_PROXY_USER work too.\n' +
    '  In a file: [Meshtun] Socks5User/Socks5Password and HttpProxyUser/HttpProxyPassword.\n' +
    '  With a file, the file\'s Mode = decides (default: a kernel TUN); --userspace / --tun override it.\n' +
    '  Unless given, a mesh node takes UDP port 51820 (--listen-port), a coordinator TCP port 7443 (--listen) and a --tun node\n' +
    '  the interface meshtun0 (--interface), or the next free ones when another node on this host has them.\n' +
    '  A mesh node learns its address as seen from outside (STUN with the coordinator and peers without NAT) and reports it;\n' +
    '  --endpoint HOST:PORT (repeatable) adds an address that reaches its UDP port, e.g. a port forward on the router.',
  examples: [
    'meshtun up mt0.conf             # a WireGuard interface mt0 from a wg-quick file (root)',
    'meshtun up --userspace mt0.conf # the same without root: SOCKS5 on 127.0.0.1:1080, HTTP proxy on 127.0.0.1:8080, [Meshtun] forwards',
    'meshtun up                       # a new mesh network with this node as its coordinator (userspace stack, no root needed)',
    'meshtun up --tun                 # the same on a kernel TUN interface meshtun0 (root)',
    'meshtun up --join meshtun://198.18.0.1:7443/<key> --token mtj1_...  # join a mesh network (userspace; add --tun for a kernel TUN)',
    'curl --socks5-hostname 127.0.0.1:1080 http://web.mesh/  # reach node "web" from a userspace node through its SOCKS5 proxy',
    'meshtun up --socks5 127.0.0.1:1081 --http-proxy off     # the proxies elsewhere, or off',
    'MESHTUN_SOCKS5_PASSWORD=s3cret meshtun up --socks5 0.0.0.0:1080 --socks5-user alice  # a SOCKS5 proxy for the LAN, with a password',
    'meshtun up --advertise-routes 192.0.2.0/24 --advertise-exit-node  # route a subnet and offer an exit (then: meshtun routes approve)',
    'meshtun up --exit-node router    # send all traffic through the approved exit node "router"',
    'meshtun up --join ... --relay    # offer relaying for members that cannot reach each other (chosen by round-trip time)',
    'meshtun up --join ... --endpoint 198.18.0.7:51820  # also report a port forward on the router as this node\'s endpoint',
  ],
  async run(args) {
    const files = args.filter((a) => !a.startsWith('-'));
    const flags = args.filter((a) => a.startsWith('-'));
    const userspace = flags.includes('--userspace');
    const tun = flags.includes('--tun');
    if (userspace && tun) throw new UserError('--userspace and --tun exclude each other', 'give one of them (or neither, to follow Mode = in the file)');
    const modeFlags = flags.filter((f) => f === '--userspace' || f === '--tun').length;
    if (files.length === 1 && flags.length === modeFlags) return upWgQuick(files[0]!, userspace ? 'userspace' : tun ? 'tun' : undefined);
    if (files.length === 0 || flags.some((f) => MESH_FLAGS.has(f.split('=')[0]!))) return upMesh(args);
    if (files.length > 1) throw new UserError(`give one config file, not ${files.length}`, 'e.g. `meshtun up mt0.conf`');
    throw new UserError(`"meshtun up ${args.join(' ')}" is not available in this version yet: \`meshtun up\` (a mesh node), \`meshtun up <file.conf>\` (a wg-quick file) and \`meshtun up --userspace <file.conf>\` (rootless) work`, 'see `meshtun up --help`');
  },
};

export const down: Command = {
  name: 'down',
  summary: 'stop a running interface',
  usage: 'meshtun down <iface | file.conf>',
  examples: ['meshtun down mt0', 'meshtun down /etc/wireguard/mt0.conf'],
  async run(args) {
    const target = args[0];
    if (!target) throw new UserError('name the interface to stop', 'e.g. `meshtun down mt0`');
    const name = target.endsWith('.conf') ? interfaceNameFromPath(target) : target;
    if (!isInterfaceName(name)) throw new UserError(`"${name}" is not a valid interface name`);
    // The userspace mesh node of this state directory first (two nodes on one host may both be
    // "meshtun0"), then a kernel interface, then a wg-quick userspace one.
    const own = signalPidFile(join(stateDir(), MESH_RUN_DIR, `${name}.pid`), name);
    if (!own && !signalInterface(name) && !signalUserspaceInterface(name)) throw new UserError(`no meshtun process runs interface "${name}"`, 'see running ones with `wg show interfaces`');
    process.stderr.write(`meshtun: asked ${name} to stop\n`);
    return 0;
  },
};

export const wgUserspace: Command = {
  name: 'wg-userspace',
  summary: 'a wireguard-go drop-in: create <iface> with an empty config and a UAPI socket',
  usage: 'meshtun wg-userspace [-f|--foreground] <iface>',
  examples: [
    'meshtun wg-userspace wg0 && wg setconf wg0 wg0.conf',
    'WG_QUICK_USERSPACE_IMPLEMENTATION=meshtun-wg-userspace wg-quick up ./wg0.conf  # after npm install -g, or use the path of bin/meshtun-wg-userspace.js',
  ],
  async run(args) {
    let foreground = process.env.WG_PROCESS_FOREGROUND === '1';
    const rest: string[] = [];
    for (const a of args) {
      if (a === '-f' || a === '--foreground') foreground = true;
      else if (a.startsWith('-')) throw new UserError(`unknown option "${a}"`, 'usage: meshtun wg-userspace [-f] <iface>');
      else rest.push(a);
    }
    const name = rest[0];
    if (!name || rest.length > 1) throw new UserError('name exactly one interface', 'usage: meshtun wg-userspace [-f] <iface>');
    if (!isInterfaceName(name)) throw new UserError(`"${name}" is not a valid interface name (at most 15 characters of a-z A-Z 0-9 _ = + . -)`);
    WgInterface.assertCanCreate(name);
    if (!foreground) return detach(name);
    const iface = await WgInterface.create(name);
    iface.writePidFile();
    // wireguard-go prints nothing on success; the daemon keeps running until the link is deleted.
    return serveUntilStopped(iface);
  },
};

/** Starts a foreground copy of this command in the background and returns once it is serving
 * (like wireguard-go's daemonizing), or reports why it failed with the child's exit code. Ready
 * means the pid file names the child: it is written after the UAPI socket listens, whereas the
 * socket file alone may be a stale one or belong to another process running the same name. */
async function detach(name: string): Promise<number> {
  mkdirSync(PID_DIR, { recursive: true });
  const logPath = `${PID_DIR}/${name}.log`;
  // Append: a failing second copy must not wipe the log of a copy that runs this name already.
  const logFd = openSync(logPath, 'a');
  const logStart = fstatSync(logFd).size;
  const child = spawn(process.execPath, [MESHTUN_BIN, 'wg-userspace', '--foreground', name], {
    detached: true,
    stdio: ['ignore', logFd, logFd],
    env: { ...process.env, WG_PROCESS_FOREGROUND: '1' },
  });
  closeSync(logFd);
  const ready = () => {
    try { return readFileSync(pidFile(name), 'utf8').trim() === String(child.pid); } catch { return false; }
  };
  const ok = await new Promise<boolean>((resolve) => {
    const t0 = Date.now();
    const tick = setInterval(() => {
      if (ready()) { clearInterval(tick); resolve(true); }
      else if (child.exitCode !== null || child.signalCode !== null || Date.now() - t0 > DETACH_TIMEOUT_MS) { clearInterval(tick); resolve(false); }
    }, 20);
  });
  if (!ok) {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    const err = readFileSync(logPath).subarray(logStart).toString('utf8');
    process.stderr.write(err || `meshtun: ${name} did not come up within ${DETACH_TIMEOUT_MS / 1000} s\n`);
    return child.exitCode || 1;
  }
  child.unref();
  return 0;
}
