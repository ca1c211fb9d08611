// CLI commands of the mesh: `meshtun up` with no file (a coordinator, or a member with --join),
// `meshtun token create` and `meshtun nodes [list|remove <name>]`, which talk to the running
// daemon through its local API socket in the state directory.
import { request } from 'node:http';
import { join } from 'node:path';
import { existsSync } from 'node:fs';
import { Logger, UserError } from '../util/index.js';
import { startMesh, stateDir, meshProxySettings, parseConfiguredEndpoint, MESH_API_SOCKET, type MeshUpOptions } from '../daemon/index.js';
import type { Command } from './main.js';

const log = new Logger('meshtun');
const API_TIMEOUT_MS = 10_000;

/** Credentials of the userspace proxies (SOCKS5 username/password, HTTP Basic). */
export interface ProxyCredentialFlags {
  socks5User?: string;
  socks5Password?: string;
  httpProxyUser?: string;
  httpProxyPassword?: string;
}

export type MeshUpFlags = Omit<MeshUpOptions, 'dir'> & ProxyCredentialFlags & { tun: boolean; userspace: boolean };

function portFlag(flag: string, v: string): number {
  const port = Number(v);
  if (!/^\d+$/.test(v) || port < 1 || port > 65535) throw new UserError(`${flag} "${v}" is not a port from 1 to 65535`, `e.g. ${flag} 7443`);
  return port;
}

/** Flags of `meshtun up` for the mesh. */
export function parseMeshUpFlags(args: string[]): MeshUpFlags {
  const out: MeshUpFlags = { tun: false, userspace: false };
  const valued: Record<string, (v: string) => void> = {
    '--join': (v) => { out.join = v; },
    '--token': (v) => { out.token = v; },
    '--name': (v) => { out.name = v; },
    '--listen': (v) => { out.listen = v; },
    '--interface': (v) => { out.interfaceName = v; },
    '--relay-https-port': (v) => { out.relayHttpsPort = portFlag('--relay-https-port', v); },
    '--relay-tcp-port': (v) => { out.relayTcpPort = portFlag('--relay-tcp-port', v); },
    '--listen-port': (v) => {
      const port = Number(v);
      if (!/^\d+$/.test(v) || port < 1 || port > 65535) throw new UserError(`--listen-port "${v}" is not a port from 1 to 65535`, 'e.g. --listen-port 51820 (default: 51820, or the next free port)');
      out.listenPort = port;
    },
    '--network': (v) => { out.networkName = v; },
    '--policy': (v) => { out.policyFile = v; },
    '--advertise-routes': (v) => { out.advertiseRoutes = [...(out.advertiseRoutes ?? []), ...v.split(',').map((r) => r.trim()).filter(Boolean)]; },
    '--exit-node': (v) => { out.exitNode = v; },
    '--endpoint': (v) => { out.endpoints = [...(out.endpoints ?? []), parseConfiguredEndpoint(v)]; },
    '--socks5': (v) => { out.socks5 = v; },
    '--http-proxy': (v) => { out.httpProxy = v; },
    '--socks5-user': (v) => { out.socks5User = v; },
    '--socks5-password': (v) => { out.socks5Password = v; },
    '--http-proxy-user': (v) => { out.httpProxyUser = v; },
    '--http-proxy-password': (v) => { out.httpProxyPassword = v; },
  };
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    const eq = a.indexOf('=');
    const flag = eq > 0 ? a.slice(0, eq) : a;
    if (flag === '--tun') out.tun = true;
    else if (flag === '--userspace') out.userspace = true;
    else if (flag === '--advertise-exit-node') out.advertiseExitNode = true;
    else if (flag === '--relay') out.relay = true;
    else if (flag === '--auto-approve-routes') out.autoApproveRoutes = true;
    else if (valued[flag]) {
      const v = eq > 0 ? a.slice(eq + 1) : args[++i];
      if (v === undefined || v === '') throw new UserError(`${flag} needs a value`, 'see `meshtun up --help`');
      valued[flag](v);
    } else {
      throw new UserError(`unknown option "${a}" for a mesh node`, 'see `meshtun up --help`');
    }
  }
  if (out.token && !out.join) throw new UserError('--token needs --join <coordinator>', 'e.g. meshtun up --join meshtun://host:7443/<key> --token mtj1_...');
  return out;
}

/** `meshtun up [--join URL --token T] ...`: runs the mesh node until stopped. The userspace
 * stack unless --tun is given (--userspace is accepted and changes nothing). */
export async function upMesh(args: string[]): Promise<number> {
  const flags = parseMeshUpFlags(args);
  if (flags.userspace && flags.tun) throw new UserError('--userspace and --tun exclude each other', 'give one of them (or neither: userspace is the default)');
  const { tun, ...rest } = flags;
  const credentials = { socks5User: flags.socks5User, socks5Password: flags.socks5Password, httpProxyUser: flags.httpProxyUser, httpProxyPassword: flags.httpProxyPassword };
  if (tun && (flags.socks5 !== undefined || flags.httpProxy !== undefined || Object.values(credentials).some((v) => v !== undefined))) {
    throw new UserError('--socks5 and --http-proxy (and their credentials) are for userspace nodes; a --tun node reaches the mesh through its interface', 'drop --tun, or the proxy flags');
  }
  // Before anything starts: a proxy beyond loopback without credentials is a user error.
  if (!tun) meshProxySettings(flags);
  const d = await startMesh({ ...rest, userspace: !tun, dir: stateDir() });
  process.stderr.write(d.lines.map((l) => `meshtun: ${l}\n`).join(''));
  const onSignal = (sig: string) => {
    log.info(`${sig}: stopping`);
    void d.stop(sig);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const reason = await d.stopped;
  await d.stop(reason);
  process.off('SIGINT', onSignal);
  process.off('SIGTERM', onSignal);
  log.info(`${d.iface.name} stopped (${reason})`);
  return 0;
}

/** Calls the running daemon's local API. */
export function callMeshApi(method: string, path: string, body?: unknown): Promise<unknown> {
  const socketPath = join(stateDir(), MESH_API_SOCKET);
  if (!existsSync(socketPath)) throw new UserError(`no mesh daemon runs for the state directory ${stateDir()} (no ${socketPath})`, 'start it with `meshtun up`');
  return new Promise((resolve, reject) => {
    const data = body === undefined ? null : Buffer.from(JSON.stringify(body));
    const req = request({ socketPath, method, path, headers: data ? { 'content-type': 'application/json', 'content-length': data.length } : {}, timeout: API_TIMEOUT_MS }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        let v: unknown;
        try { v = JSON.parse(Buffer.concat(chunks).toString('utf8')); } catch { v = {}; }
        const e = v as { error?: string; hint?: string };
        if ((res.statusCode ?? 500) >= 400) reject(new UserError(e.error ?? `the daemon answered HTTP ${res.statusCode}`, e.hint ?? undefined));
        else resolve(v);
      });
    });
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', (e) => reject(new UserError(`cannot reach the mesh daemon at ${socketPath}: ${e.message}`, 'is `meshtun up` running?')));
    req.end(data ?? undefined);
  });
}

export const token: Command = {
  name: 'token',
  summary: 'create a join token on the coordinator',
  usage: 'meshtun token create [--reusable] [--expires 24h] [--tag web] [--json]',
  examples: ['meshtun token create', 'meshtun token create --reusable --expires 7d --tag web'],
  async run(args) {
    if (args[0] !== 'create') throw new UserError(`unknown token command "${args[0] ?? ''}"`, 'use `meshtun token create`');
    const body: { reusable: boolean; expires?: string; tags: string[] } = { reusable: false, tags: [] };
    let json = false;
    for (let i = 1; i < args.length; i++) {
      const a = args[i]!;
      if (a === '--reusable') body.reusable = true;
      else if (a === '--json') json = true;
      else if (a === '--expires' || a === '--tag') {
        const v = args[++i];
        if (!v) throw new UserError(`${a} needs a value`, 'e.g. --expires 24h, --tag web');
        if (a === '--expires') body.expires = v;
        else body.tags.push(v);
      } else throw new UserError(`unknown option "${a}"`, 'usage: meshtun token create [--reusable] [--expires 24h] [--tag web]');
    }
    const r = await callMeshApi('POST', '/v1/tokens', body) as { token: string; joinCommand: string; expires: number | null; reusable: boolean };
    if (json) process.stdout.write(JSON.stringify(r) + '\n');
    else {
      process.stdout.write(`${r.token}\n`);
      process.stderr.write(`meshtun: ${r.reusable ? 'reusable' : 'single-use'} token, ${r.expires ? `expires ${new Date(r.expires).toISOString()}` : 'never expires'}\n`);
      process.stderr.write(`meshtun: join with:\n  ${r.joinCommand}\n`);
    }
    return 0;
  },
};

interface NodeRow { name: string; ipv4: string; ipv6: string; endpoints: string[]; coordinator: boolean; lastSeen: number | null }

export const nodes: Command = {
  name: 'nodes',
  summary: 'list the network\'s nodes, or remove one (on the coordinator)',
  usage: 'meshtun nodes [list] [--json] | meshtun nodes remove <name>',
  examples: ['meshtun nodes', 'meshtun nodes list --json', 'meshtun nodes remove laptop'],
  async run(args) {
    const json = args.includes('--json');
    const rest = args.filter((a) => a !== '--json');
    const sub = rest[0] ?? 'list';
    if (sub === 'remove') {
      if (!rest[1]) throw new UserError('name the node to remove', 'e.g. meshtun nodes remove laptop');
      const r = await callMeshApi('POST', '/v1/nodes/remove', { name: rest[1] }) as { removed: NodeRow };
      if (json) process.stdout.write(JSON.stringify(r) + '\n');
      else process.stdout.write(`removed ${r.removed.name} (${r.removed.ipv4})\n`);
      return 0;
    }
    if (sub !== 'list') throw new UserError(`unknown nodes command "${sub}"`, 'use `meshtun nodes list` or `meshtun nodes remove <name>`');
    const r = await callMeshApi('GET', '/v1/nodes') as { network: string; nodes: NodeRow[] };
    if (json) {
      process.stdout.write(JSON.stringify(r) + '\n');
      return 0;
    }
    for (const n of r.nodes) {
      process.stdout.write(`${n.name.padEnd(20)} ${n.ipv4.padEnd(16)} ${n.ipv6.padEnd(40)} ${n.coordinator ? 'coordinator' : ''} ${n.endpoints.join(',')}\n`);
    }
    return 0;
  },
};
