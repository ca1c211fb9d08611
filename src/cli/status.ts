// `meshtun status`: asks running interfaces for their state through the local API and prints
// peers and every non-zero counter (drops by reason included).

import { request } from 'node:http';
import { readdirSync, existsSync } from 'node:fs';
import { UserError } from '../util/index.js';
import { PID_DIR, apiSocketPath, isInterfaceName, userRunDir, type InterfaceStatus } from '../daemon/index.js';
import type { Command } from './main.js';

/** GETs `path` from the API socket of `iface`. */
/** Where running interfaces keep their API sockets: the system run directory (root, kernel TUN
 * and root userspace) and the user's run directory (rootless userspace). */
function apiDirs(): string[] {
  return [PID_DIR, userRunDir()];
}

export function apiGet(iface: string, path: string): Promise<string> {
  const socketPath = apiDirs().map((d) => apiSocketPath(d, iface)).find((p) => existsSync(p)) ?? apiSocketPath(PID_DIR, iface);
  return new Promise((resolve, reject) => {
    const req = request({ socketPath, path, method: 'GET' }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => { body += d; });
      res.on('end', () => (res.statusCode === 200 ? resolve(body) : reject(new UserError(`API ${path}: ${res.statusCode} ${body}`))));
    });
    req.on('error', (err: NodeJS.ErrnoException) => reject(new UserError(
      err.code === 'ENOENT' || err.code === 'ECONNREFUSED' ? `no running meshtun interface "${iface}"` : `cannot reach interface "${iface}": ${err.message}`,
      'start one with `meshtun up <file.conf>`',
    )));
    req.end();
  });
}

function ago(ms: number): string {
  if (!ms) return 'never';
  const s = Math.max(0, Math.round((Date.now() - ms) / 1000));
  return s < 60 ? `${s} s ago` : s < 3600 ? `${Math.floor(s / 60)} min ${s % 60} s ago` : `${Math.floor(s / 3600)} h ago`;
}

function formatStatus(st: InterfaceStatus): string {
  const out = [`interface ${st.interface} (pid ${st.pid})`, `  public key: ${st.publicKey ?? '(none)'}`, `  listening port: ${st.listenPort}`, `  mtu: ${st.mtu}`];
  for (const p of st.peers) {
    out.push(`  peer ${p.publicKey}`, `    endpoint: ${p.endpoint ?? '(none)'}`, `    allowed ips: ${p.allowedIps.join(', ') || '(none)'}`,
      `    latest handshake: ${ago(p.latestHandshake)}`, `    transfer: ${p.rxBytes} B received, ${p.txBytes} B sent`);
  }
  const nonzero = Object.entries(st.counters).filter(([, v]) => v !== 0);
  out.push('  counters:' + (nonzero.length ? '' : ' all zero'));
  for (const [k, v] of nonzero) out.push(`    ${k}: ${v}`);
  return out.join('\n') + '\n';
}

export const status: Command = {
  name: 'status',
  summary: 'show running interfaces, their peers and counters (drops by reason)',
  usage: 'meshtun status [iface] [--json]',
  examples: ['meshtun status', 'meshtun status mt0 --json'],
  async run(args) {
    const json = args.includes('--json');
    const names = args.filter((a) => !a.startsWith('-'));
    for (const a of args) if (a.startsWith('-') && a !== '--json') throw new UserError(`unknown option "${a}"`, 'usage: meshtun status [iface] [--json]');
    let ifaces = names;
    if (ifaces.length === 0) {
      ifaces = [...new Set(apiDirs().flatMap((d) => (existsSync(d) ? readdirSync(d).filter((f) => f.endsWith('.api')).map((f) => f.slice(0, -4)) : [])))];
      if (ifaces.length === 0) throw new UserError('no meshtun interface is running', 'start one with `meshtun up <file.conf>`');
    }
    const all: InterfaceStatus[] = [];
    for (const name of ifaces) {
      if (!isInterfaceName(name)) throw new UserError(`"${name}" is not a valid interface name`);
      try {
        all.push(JSON.parse(await apiGet(name, '/v1/status')) as InterfaceStatus);
      } catch (err) {
        // Listing every interface: a socket left behind by a process that died is skipped.
        if (names.length > 0 || !(err instanceof UserError)) throw err;
        process.stderr.write(`meshtun status: skipped "${name}": ${err.message} (a stale socket of a process that is gone)\n`);
      }
    }
    if (all.length === 0) throw new UserError('no meshtun interface is running', 'start one with `meshtun up <file.conf>`');
    process.stdout.write(json ? JSON.stringify(names.length === 1 ? all[0] : all, null, 2) + '\n' : all.map(formatStatus).join('\n'));
    return 0;
  },
};
