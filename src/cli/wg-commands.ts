// CLI commands for WireGuard-style interfaces: `up <file.conf>`, `down <iface>`, and the
// wireguard-go drop-in `wg-userspace [-f] <iface>`.

import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { existsSync, mkdirSync, openSync, closeSync, readFileSync, fstatSync } from 'node:fs';
import { Logger, UserError } from '../util/index.js';
import {
  WgInterface, signalInterface, readWgQuickConfig, interfaceNameFromPath, isInterfaceName, pidFile, PID_DIR,
} from '../daemon/index.js';
import { loadNodeIdentity, parseWgQuickConfig } from '../daemon/index.js';
import { encodeBase64Key } from '../crypto/index.js';
import type { Command } from './main.js';

const log = new Logger('meshtun');
/** How long `wg-userspace` waits for its detached copy to serve the interface. */
const DETACH_TIMEOUT_MS = 10_000;
/** bin/meshtun.js, which the detached copy runs (this process may have been started by another
 * script, e.g. bin/meshtun-wg-userspace.js). This file is dist/src/cli/wg-commands.js. */
const MESHTUN_BIN = fileURLToPath(new URL('../../../bin/meshtun.js', import.meta.url));

/** Runs until SIGINT/SIGTERM or until the interface goes away, then tears down. */
async function serveUntilStopped(iface: WgInterface): Promise<number> {
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

export const upWgQuick = async (file: string): Promise<number> => {
  if (!existsSync(file)) throw new UserError(`no such file "${file}"`, 'give the path of a wg-quick file, e.g. `meshtun up ./mt0.conf`');
  const name = interfaceNameFromPath(file);
  const cfg = readWgQuickConfig(file);
  const iface = await WgInterface.fromWgQuick(name, cfg);
  iface.writePidFile();
  const port = iface.engine.bind.port;
  process.stderr.write(`meshtun: ${name} is up: ${cfg.interface.addresses.map((a) => `${a.address}/${a.prefixLength}`).join(', ') || 'no address'}; ` +
    `listening on UDP ${port}; public key ${iface.engine.publicKey?.toString('base64') ?? '(none)'}; ${cfg.peers.length} peer(s)\n` +
    `meshtun: \`wg show ${name}\` shows it; Ctrl-C or \`meshtun down ${name}\` stops it\n`);
  return serveUntilStopped(iface);
};

/** `meshtun up` with no file: a node with a persistent identity on a kernel TUN (meshtun0),
 * its overlay addresses derived from its key, ready for peers added with wg(8). The coordinator,
 * join tokens and the userspace default come with the mesh (issue 5). */
async function upNode(): Promise<number> {
  const id = loadNodeIdentity();
  const name = 'meshtun0';
  WgInterface.assertCanCreate(name);
  const cfg = parseWgQuickConfig(
    `[Interface]\nPrivateKey = ${encodeBase64Key(id.privateKey)}\nListenPort = 51820\nAddress = ${id.ipv4}/10, ${id.ipv6}/48\n`,
    `${id.dir}/node.key`,
  );
  const iface = await WgInterface.fromWgQuick(name, cfg);
  iface.writePidFile();
  const pub = encodeBase64Key(id.publicKey);
  process.stderr.write(
    `meshtun: node ${id.created ? 'created' : 'loaded'} (${id.dir}/node.key)\n` +
    `meshtun: ${name} is up: ${id.ipv4}/10, ${id.ipv6}/48; listening on UDP ${iface.engine.bind.port}; public key ${pub}\n` +
    `meshtun: add a peer:   wg set ${name} peer <their key> endpoint <host:port> allowed-ips <their address>/32\n` +
    `meshtun: a peer adds this node with:   wg set <iface> peer ${pub} allowed-ips ${id.ipv4}/32,${id.ipv6}/128\n` +
    `meshtun: \`meshtun status\` shows it; Ctrl-C or \`meshtun down ${name}\` stops it\n`);
  return serveUntilStopped(iface);
}

export const up: Command = {
  name: 'up',
  summary: 'start a node (a wg-quick file, or a mesh node with no arguments)',
  usage: 'meshtun up [file.conf] [--userspace|--tun] [--join URL --token T]',
  examples: ['meshtun up mt0.conf             # a WireGuard interface mt0 from a wg-quick file (root)', 'meshtun up                       # this node on meshtun0, with a key kept in the state directory (root)'],
  async run(args) {
    const files = args.filter((a) => !a.startsWith('-'));
    const flags = args.filter((a) => a.startsWith('-'));
    if (files.length === 1 && flags.length === 0) return upWgQuick(files[0]!);
    if (files.length > 1) throw new UserError(`give one config file, not ${files.length}`, 'e.g. `meshtun up mt0.conf`');
    if (files.length === 0 && (flags.length === 0 || (flags.length === 1 && flags[0] === '--tun'))) return upNode();
    throw new UserError(`"meshtun up ${args.join(' ')}" is not available in this version yet: \`meshtun up\` (a node with a kernel TUN) and \`meshtun up <file.conf>\` (a wg-quick file) work`, 'see `meshtun up --help`');
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
    if (!signalInterface(name)) throw new UserError(`no meshtun process runs interface "${name}"`, 'see running ones with `wg show interfaces`');
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
