// `meshtun peers`, `meshtun ping <name|ip>` and `meshtun traceroute <name|ip>` on a mesh node: they
// ask the running daemon (its API socket mesh.api in the state directory) for its peers, or to send
// ICMP echo probes from its own overlay address through the tunnel (daemon/mesh-api.ts), and print
// them like ping(8) and traceroute(8) do, or as JSON with --json.
import { request } from 'node:http';
import { join } from 'node:path';
import { existsSync } from 'node:fs';
import { UserError } from '../util/index.js';
import { stateDir, MESH_API_SOCKET } from '../daemon/index.js';
import type { MeshPeersReply, MeshPeerInfo, MeshPingReply, MeshTraceReply } from '../daemon/mesh-api.js';
import { summarizePing, type ProbeResult } from '../mesh/index.js';
import type { Command } from './main.js';

const API_TIMEOUT_MS = 10_000;
/** Extra time the CLI waits for the daemon beyond the probes' own timeouts. */
const API_SLACK_MS = 5_000;
const DEFAULT_TIMEOUT_S = 2;
const DEFAULT_TRACE_HOPS = 16;
const DEFAULT_TRACE_PROBES = 3;
const ICMP_ECHO_HEADER = 8;

/** Calls the mesh daemon of the state directory; its errors come back as UserErrors. */
export function meshApiRequest(method: string, path: string, body?: unknown, timeoutMs = API_TIMEOUT_MS): Promise<unknown> {
  const dir = stateDir();
  const socketPath = join(dir, MESH_API_SOCKET);
  if (!existsSync(socketPath)) {
    return Promise.reject(new UserError(`no mesh daemon runs for the state directory ${dir} (no ${socketPath})`, 'start it with `meshtun up`, or set MESHTUN_STATE_DIR to its state directory'));
  }
  return new Promise((resolve, reject) => {
    const data = body === undefined ? null : Buffer.from(JSON.stringify(body));
    const req = request({ socketPath, method, path, headers: data ? { 'content-type': 'application/json', 'content-length': data.length } : {}, timeout: timeoutMs }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        let v: unknown;
        try { v = JSON.parse(Buffer.concat(chunks).toString('utf8')); } catch { v = {}; }
        const e = v as { error?: string; hint?: string | null };
        if ((res.statusCode ?? 500) >= 400) reject(new UserError(e.error ?? `the daemon answered HTTP ${res.statusCode}`, e.hint ?? undefined));
        else resolve(v);
      });
    });
    req.on('timeout', () => req.destroy(new Error('no answer in time')));
    req.on('error', (e: NodeJS.ErrnoException) => reject(new UserError(
      e.code === 'ECONNREFUSED' || e.code === 'ENOENT' ? `the mesh daemon of ${dir} is not running (stale socket ${socketPath})` : `cannot reach the mesh daemon at ${socketPath}: ${e.message}`,
      'start it with `meshtun up`',
    )));
    req.end(data ?? undefined);
  });
}

/** Takes the value of `flag` at args[i+1] (or after "=") as a number within [min, max]. */
function numberArg(flag: string, v: string | undefined, min: number, max: number, integer = true): number {
  const n = Number(v);
  if (v === undefined || v === '' || !Number.isFinite(n) || n < min || n > max || (integer && !Number.isInteger(n))) {
    throw new UserError(`${flag} needs a ${integer ? 'whole ' : ''}number from ${min} to ${max}${v === undefined ? '' : `, not "${v}"`}`, `see \`meshtun ${flag === '--max-hops' || flag === '-q' || flag === '-m' ? 'traceroute' : 'ping'} --help\``);
  }
  return n;
}

/** Splits args into flags (with their values) and positional words. `valued` flags take one value
 * (next argument or "=value"); `bool` flags none. Unknown flags are UserErrors. */
function scanArgs(args: string[], valued: string[], bool: string[], usage: string): { flags: Map<string, string>; words: string[] } {
  const flags = new Map<string, string>();
  const words: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (!a.startsWith('-') || a === '-') { words.push(a); continue; }
    const eq = a.indexOf('=');
    const flag = eq > 0 ? a.slice(0, eq) : a;
    if (bool.includes(flag) && eq < 0) flags.set(flag, '');
    else if (valued.includes(flag)) flags.set(flag, eq > 0 ? a.slice(eq + 1) : (args[++i] ?? ''));
    else throw new UserError(`unknown option "${a}"`, `usage: ${usage}`);
  }
  return { flags, words };
}

function oneTarget(words: string[], usage: string): string {
  if (words.length === 0) throw new UserError('name the node to probe', `usage: ${usage}`);
  if (words.length > 1) throw new UserError(`one target at a time, not "${words.join(' ')}"`, `usage: ${usage}`);
  return words[0]!;
}

function familyOf(flags: Map<string, string>): 4 | 6 | undefined {
  if (flags.has('-4') && flags.has('-6')) throw new UserError('-4 and -6 exclude each other', 'give one of them');
  return flags.has('-6') ? 6 : flags.has('-4') ? 4 : undefined;
}

export interface PingArgs {
  target: string;
  count: number;
  family?: 4 | 6;
  ttl?: number;
  intervalMs: number;
  timeoutMs: number;
  json: boolean;
}

const PING_USAGE = 'meshtun ping <name|ip> [-c count] [-4|-6] [--ttl N] [-i seconds] [-W seconds] [--json]';

export function parsePingArgs(args: string[]): PingArgs {
  const { flags, words } = scanArgs(args, ['-c', '--count', '--ttl', '-t', '-i', '--interval', '-W', '--timeout'], ['-4', '-6', '--json'], PING_USAGE);
  const get = (...names: string[]) => names.map((n) => flags.get(n)).find((v) => v !== undefined);
  const count = get('-c', '--count');
  const ttl = get('--ttl', '-t');
  const interval = get('-i', '--interval');
  const timeout = get('-W', '--timeout');
  const family = familyOf(flags);
  return {
    target: oneTarget(words, PING_USAGE),
    count: count === undefined ? 4 : numberArg('-c', count, 1, 1000),
    ...(family ? { family } : {}),
    ...(ttl !== undefined ? { ttl: numberArg('--ttl', ttl, 1, 255) } : {}),
    intervalMs: interval === undefined ? 1000 : Math.round(numberArg('-i', interval, 0, 60, false) * 1000),
    timeoutMs: timeout === undefined ? DEFAULT_TIMEOUT_S * 1000 : Math.round(numberArg('-W', timeout, 0.001, 30, false) * 1000),
    json: flags.has('--json'),
  };
}

export interface TraceArgs {
  target: string;
  family?: 4 | 6;
  maxHops: number;
  probesPerHop: number;
  timeoutMs: number;
  json: boolean;
}

const TRACE_USAGE = 'meshtun traceroute <name|ip> [-4|-6] [--max-hops N] [-q probes] [-w seconds] [--json]';

export function parseTraceArgs(args: string[]): TraceArgs {
  const { flags, words } = scanArgs(args, ['--max-hops', '-m', '-q', '-w', '--timeout'], ['-4', '-6', '--json'], TRACE_USAGE);
  const get = (...names: string[]) => names.map((n) => flags.get(n)).find((v) => v !== undefined);
  const hops = get('--max-hops', '-m');
  const q = get('-q');
  const w = get('-w', '--timeout');
  const family = familyOf(flags);
  return {
    target: oneTarget(words, TRACE_USAGE),
    ...(family ? { family } : {}),
    maxHops: hops === undefined ? DEFAULT_TRACE_HOPS : numberArg('--max-hops', hops, 1, 64),
    probesPerHop: q === undefined ? DEFAULT_TRACE_PROBES : numberArg('-q', q, 1, 10),
    timeoutMs: w === undefined ? DEFAULT_TIMEOUT_S * 1000 : Math.round(numberArg('-w', w, 0.001, 30, false) * 1000),
    json: flags.has('--json'),
  };
}

function ago(ms: number): string {
  if (!ms) return 'never';
  const s = Math.max(0, Math.round((Date.now() - ms) / 1000));
  return s < 60 ? `${s} s ago` : s < 3600 ? `${Math.floor(s / 60)} min ago` : s < 86_400 ? `${Math.floor(s / 3600)} h ago` : `${Math.floor(s / 86_400)} d ago`;
}

function bytes(n: number): string {
  return n < 1024 ? `${n} B` : n < 1024 * 1024 ? `${(n / 1024).toFixed(1)} KiB` : n < 1024 ** 3 ? `${(n / 1024 / 1024).toFixed(1)} MiB` : `${(n / 1024 ** 3).toFixed(1)} GiB`;
}

/** "direct", "relay via web" or "none". */
export function describePath(p: MeshPeerInfo['path']): string {
  return p.kind === 'relay' ? `relay via ${p.via ?? '?'}` : p.kind;
}

/** The peers table (header and one row per peer). */
export function formatPeers(r: MeshPeersReply): string {
  if (r.peers.length === 0) return `no peers in network "${r.network}" yet (add nodes: meshtun token create on the coordinator)\n`;
  const rows = [['NAME', 'IPV4', 'IPV6', 'PATH', 'TRANSPORT', 'ENDPOINT', 'RTT', 'SINCE', 'HANDSHAKE', 'RX', 'TX', 'STATUS']];
  for (const p of r.peers) {
    const path = p.path;
    rows.push([
      p.name, p.ipv4 || '-', p.ipv6 || '-', describePath(path), path.transport ?? 'udp', path.endpoint ?? p.endpoint ?? '-',
      path.rttMs !== null && path.rttMs !== undefined ? `${path.rttMs.toFixed(1)} ms` : '-', path.since ? ago(Date.parse(path.since)) : '-',
      ago(p.latestHandshake), bytes(p.rxBytes), bytes(p.txBytes), p.online ? 'online' : 'offline',
    ]);
  }
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((row) => row[c]!.length)));
  return rows.map((row) => row.map((v, c) => (c === row.length - 1 ? v : v.padEnd(widths[c]!))).join('  ')).join('\n') + '\n';
}

function who(address: string | null, name: string | null): string {
  return name ? `${name} (${address})` : String(address);
}

/** One line per probe, like ping(8). */
export function formatPingLine(r: ProbeResult, n: number, address: string, name: string | null, from: string | null): string {
  switch (r.kind) {
    case 'reply':
      return `${r.bytes + ICMP_ECHO_HEADER} bytes from ${who(r.from, from)}: icmp_seq=${n} ttl=${r.replyTtl} time=${r.rttMs} ms`;
    case 'time-exceeded':
      return `From ${who(r.from, from)} icmp_seq=${n} Time to live exceeded`;
    case 'unreachable':
      return `From ${who(r.from, from)} icmp_seq=${n} Destination unreachable (code ${r.code})`;
    case 'no-route':
      return `icmp_seq=${n}: no route to ${who(address, name)}`;
    default:
      return `Request timeout for icmp_seq=${n}`;
  }
}

export function formatPingSummary(label: string, s: ReturnType<typeof summarizePing>): string {
  const lines = [`--- ${label} ping statistics ---`, `${s.sent} packets transmitted, ${s.received} received, ${s.loss}% packet loss`];
  if (s.received > 0) lines.push(`rtt min/avg/max = ${s.minMs}/${s.avgMs}/${s.maxMs} ms`);
  return lines.join('\n') + '\n';
}

/** One line per hop, like traceroute(8): `*` for each probe that got no answer. */
export function formatTrace(r: MeshTraceReply): string {
  const lines = [`traceroute to ${who(r.address, r.name)} from ${r.source}, ${r.maxHops} hops max`];
  for (const h of r.hops) {
    const rtts = h.rtts.map((t) => (t === null ? '*' : `${t} ms`)).join('  ');
    const at = h.address === null ? '' : `${who(h.address, h.name)}  `;
    const mark = h.unreachable !== null ? `  !${h.unreachable === 0 ? 'N' : h.unreachable === 1 ? 'H' : `<${h.unreachable}>`}` : '';
    lines.push(`${String(h.hop).padStart(2)}  ${at}${rtts}${mark}`);
  }
  if (!r.reached) lines.push(`(${who(r.address, r.name)} not reached)`);
  return lines.join('\n') + '\n';
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export const peers: Command = {
  name: 'peers',
  summary: 'list this mesh node\'s peers: addresses, path (direct or relayed), handshake, traffic, online',
  usage: 'meshtun peers [--json]',
  examples: ['meshtun peers', 'meshtun peers --json | jq \'.peers[] | select(.online) | .name\''],
  async run(args) {
    const { flags, words } = scanArgs(args, [], ['--json'], 'meshtun peers [--json]');
    if (words.length > 0) throw new UserError(`unexpected "${words[0]}"`, 'usage: meshtun peers [--json]');
    const r = await meshApiRequest('GET', '/v1/mesh/peers') as MeshPeersReply;
    process.stdout.write(flags.has('--json') ? JSON.stringify(r) + '\n' : formatPeers(r));
    return 0;
  },
};

export const ping: Command = {
  name: 'ping',
  summary: 'ping a mesh node by name or overlay address through the tunnel (ICMP echo)',
  usage: PING_USAGE,
  examples: ['meshtun ping laptop', 'meshtun ping web.mesh -c 10 -6', 'meshtun ping 100.64.0.2 --ttl 1', 'meshtun ping laptop -c 3 --json'],
  async run(args) {
    const a = parsePingArgs(args);
    const results: ProbeResult[] = [];
    let head: MeshPingReply | null = null;
    let stop = false;
    const onInt = () => { stop = true; };
    process.once('SIGINT', onInt);
    try {
      for (let i = 0; i < a.count && !stop; i++) {
        const started = Date.now();
        const r = await meshApiRequest('POST', '/v1/mesh/ping', {
          target: a.target, count: 1, timeoutMs: a.timeoutMs, ...(a.family ? { family: a.family } : {}), ...(a.ttl !== undefined ? { ttl: a.ttl } : {}),
        }, a.timeoutMs + API_SLACK_MS) as MeshPingReply;
        if (!head) {
          head = r;
          if (!a.json) process.stdout.write(`PING ${who(r.address, r.name)} from ${r.source}: ${r.results[0]?.bytes ?? 0} data bytes\n`);
        }
        for (const p of r.results) {
          results.push(p);
          if (!a.json) process.stdout.write(formatPingLine(p, results.length, r.address, r.name, r.name && p.from === r.address ? r.name : null) + '\n');
        }
        if (i + 1 < a.count && !stop) await sleep(Math.max(0, a.intervalMs - (Date.now() - started)));
      }
    } finally {
      process.off('SIGINT', onInt);
    }
    const summary = summarizePing(results);
    if (a.json) {
      process.stdout.write(JSON.stringify({ ...head!, target: a.target, results, summary }) + '\n');
    } else {
      process.stdout.write('\n' + formatPingSummary(head!.name ?? head!.address, summary));
    }
    return summary.received > 0 ? 0 : 1;
  },
};

export const traceroute: Command = {
  name: 'traceroute',
  summary: 'show the hops to a mesh node (direct, or through a relay node)',
  usage: TRACE_USAGE,
  examples: ['meshtun traceroute laptop', 'meshtun traceroute web.mesh -6', 'meshtun traceroute 100.64.0.7 --max-hops 4 --json'],
  async run(args) {
    const a = parseTraceArgs(args);
    const r = await meshApiRequest('POST', '/v1/mesh/traceroute', {
      target: a.target, maxHops: a.maxHops, probesPerHop: a.probesPerHop, timeoutMs: a.timeoutMs, ...(a.family ? { family: a.family } : {}),
    }, a.maxHops * a.timeoutMs + API_SLACK_MS) as MeshTraceReply;
    process.stdout.write(a.json ? JSON.stringify(r) + '\n' : formatTrace(r));
    return r.reached ? 0 : 1;
  },
};
