// `meshtun status`: asks running interfaces for their state through the local API and prints
// peers and every non-zero counter (drops by reason included). On a mesh node (a mesh daemon runs
// for the state directory) it shows that node first: its network, name, addresses and role, and
// each peer by name with its path (direct, or relayed via a node), and on a coordinator the control
// channel's non-zero counters (mesh.control); `--json` then prints that node's status object (with
// its `mesh` block and `meshPeers`).

import { request } from 'node:http';
import { readdirSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { UserError } from '../util/index.js';
import { PID_DIR, MESH_API_SOCKET, apiSocketPath, isInterfaceName, stateDir, userRunDir, type InterfaceStatus } from '../daemon/index.js';
import type { MeshPeerInfo, MeshStatusBlock } from '../daemon/mesh-api.js';
import { meshApiRequest, describePath } from './mesh-net-commands.js';
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

/** A mesh node's status: the interface's, its mesh block, and its peers by name. */
export type MeshNodeStatus = InterfaceStatus & { mesh: MeshStatusBlock; meshPeers: MeshPeerInfo[] };

/** The status of the mesh daemon of the state directory, or null when none runs. */
async function meshNodeStatus(): Promise<MeshNodeStatus | null> {
  if (!existsSync(join(stateDir(), MESH_API_SOCKET))) return null;
  try {
    const st = await meshApiRequest('GET', '/v1/status') as InterfaceStatus & { mesh: MeshStatusBlock };
    const peers = await meshApiRequest('GET', '/v1/mesh/peers') as { peers: MeshPeerInfo[] };
    return { ...st, meshPeers: peers.peers };
  } catch (err) {
    if (!(err instanceof UserError)) throw err;
    process.stderr.write(`meshtun status: no mesh node: ${err.message}\n`);
    return null;
  }
}

function counterLines(st: InterfaceStatus): string[] {
  const nonzero = Object.entries(st.counters).filter(([, v]) => v !== 0);
  return ['  counters:' + (nonzero.length ? '' : ' all zero'), ...nonzero.map(([k, v]) => `    ${k}: ${v}`)];
}

export function formatMeshStatus(st: MeshNodeStatus): string {
  const m = st.mesh;
  const out = [
    `mesh node ${m.node ?? '?'} in network "${m.network ?? '?'}"${m.role ? ` (${m.role})` : ''}: ${[m.ipv4, m.ipv6].filter(Boolean).join(', ') || 'no address yet'}; ${m.peers.online} of ${m.peers.total} peers online`,
    `  interface ${st.interface} (pid ${st.pid}), public key ${st.publicKey ?? '(none)'}, listening port ${st.listenPort}, mtu ${st.mtu}`,
  ];
  for (const p of st.meshPeers) {
    out.push(`  peer ${p.name} (${[p.ipv4, p.ipv6].filter(Boolean).join(', ')}): ${p.online ? 'online' : 'offline'}, ${describePath(p.path)}${p.endpoint ? `, endpoint ${p.endpoint}` : ''}`,
      `    latest handshake: ${ago(p.latestHandshake)}; transfer: ${p.rxBytes} B received, ${p.txBytes} B sent`);
  }
  // A coordinator's control channel: connections, handshakes, sessions, refusals by reason.
  const control = (m as { control?: Record<string, number> }).control;
  const nonzero = control ? Object.entries(control).filter(([, v]) => typeof v === 'number' && v !== 0) : [];
  if (nonzero.length) out.push(`  control channel: ${nonzero.map(([k, v]) => `${k} ${v}`).join(', ')}`);
  // What STUN found (mesh-nat.ts): the NAT type and the address the outside sees.
  const nat = (m as { nat?: { nat?: string; reflexive?: string[]; lastProbe?: number | null } }).nat;
  if (nat?.nat) {
    out.push(`  NAT: ${nat.nat}${nat.reflexive?.length ? `, reflexive address ${nat.reflexive.join(', ')}` : ''}${nat.lastProbe ? `; probed ${ago(nat.lastProbe)}` : '; not probed yet'}`);
  }
  out.push(...counterLines(st));
  return out.join('\n') + '\n';
}

export const status: Command = {
  name: 'status',
  summary: 'show running interfaces (a mesh node with its peers and paths), their peers and counters',
  usage: 'meshtun status [iface] [--json]',
  examples: ['meshtun status', 'meshtun status --json   (on a mesh node: its status with the mesh block and meshPeers)', 'meshtun status mt0 --json'],
  async run(args) {
    const json = args.includes('--json');
    const names = args.filter((a) => !a.startsWith('-'));
    for (const a of args) if (a.startsWith('-') && a !== '--json') throw new UserError(`unknown option "${a}"`, 'usage: meshtun status [iface] [--json]');
    const mesh = await meshNodeStatus();
    if (mesh && json && names.length === 0) {
      process.stdout.write(JSON.stringify(mesh, null, 2) + '\n');
      return 0;
    }
    let ifaces = names;
    if (ifaces.length === 0) {
      ifaces = [...new Set(apiDirs().flatMap((d) => (existsSync(d) ? readdirSync(d).filter((f) => f.endsWith('.api')).map((f) => f.slice(0, -4)) : [])))];
      ifaces = ifaces.filter((n) => n !== mesh?.interface);
      if (ifaces.length === 0 && !mesh) throw new UserError('no meshtun interface is running', 'start one with `meshtun up <file.conf>`');
    }
    const all: InterfaceStatus[] = mesh && names.length === 0 ? [mesh] : [];
    for (const name of ifaces) {
      if (!isInterfaceName(name)) throw new UserError(`"${name}" is not a valid interface name`);
      if (mesh && name === mesh.interface) {
        all.push(mesh);
        continue;
      }
      try {
        all.push(JSON.parse(await apiGet(name, '/v1/status')) as InterfaceStatus);
      } catch (err) {
        // Listing every interface: a socket left behind by a process that died is skipped.
        if (names.length > 0 || !(err instanceof UserError)) throw err;
        process.stderr.write(`meshtun status: skipped "${name}": ${err.message} (a stale socket of a process that is gone)\n`);
      }
    }
    if (all.length === 0) throw new UserError('no meshtun interface is running', 'start one with `meshtun up <file.conf>`');
    const text = (st: InterfaceStatus) => ('meshPeers' in st ? formatMeshStatus(st as MeshNodeStatus) : formatStatus(st));
    process.stdout.write(json ? JSON.stringify(names.length === 1 ? all[0] : all, null, 2) + '\n' : all.map(text).join('\n'));
    return 0;
  },
};
