// Multi-hop relay benchmark: a meshtun network of a coordinator and nodes a and b on one underlay
// bridge (198.18.<n>.0/24) and a node d linked only to b (198.19.<n>.0/24; b forwards d's TCP to
// the coordinator's control port 7443, masqueraded, and nothing else). So a reaches b directly and
// d only through b (relay frames inside the a-b and b-d sessions). One run measures, unloaded and
// loaded, the same way for both paths:
//   direct   a -> b
//   relayed  a -> d, through b
// - RTT: average of PINGS pings at 0.05 s;
// - iperf3 TCP a -> target, 1 stream, DURATION s (receiver rate);
// - CPU seconds (user + system, /proc/<pid>/stat over all threads) of each meshtun daemon that
//   carries the traffic during the iperf3 run, per Gbit received: a and b for the direct path,
//   a, b (the relay) and d for the relayed one;
// - bytes and packets a's underlay interface sent per payload byte (the wire overhead, including
//   IP fragments of full-size relayed packets);
// - b's relay counters (GET /v1/status on <b's state dir>/mesh.api, `mesh.relay`) before and after
//   the relayed run: `forwarded` must move.
// Then prints a markdown table (or JSON with --json) and a one-line summary. Progress goes to
// stderr. Namespaces, state directories and processes (killed by PID) are removed at the end, on
// failure and on SIGINT/SIGTERM. Needs root, iperf3, ping, ip, nft.
//
// Run: npm run bench:relay -- [--duration 10] [--pings 20] [--runs direct,relay] [--mss N] [--prof-relay DIR] [--json]
//   --mss N           adds a relayed run with iperf3 -M N (a TCP MSS small enough that the relayed
//                     datagrams are not fragmented on the underlay, e.g. 1300)
//   --prof-relay DIR  starts b (the relay) with --cpu-prof --cpu-prof-dir=DIR (written when it stops)
// Env: MESHTUN_NODE_ARGS="..." extra node flags for every meshtun daemon; the daemons inherit the
//      environment (e.g. MESHTUN_PURE_TS_CRYPTO=1).
// The machine is small (2 cores) and the relayed path runs three daemons and iperf3 on it: compare
// rows of one run, and prefer CPU-s per Gbit (work per byte) over raw Gbit/s when the box is busy.

import { request } from 'node:http';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { fmt as fmtNumber, finishMeasuring } from './measure.js';
import {
  MESHTUN_BIN, SUBNET, addNamespace, benchTag, checkHost, cleanup, cpuSeconds, gitRevision, handleSignals, iperfClient, iperfServer,
  isAborted, pingOnce, pingRtt, progressLog, runAsync, setStopGrace, sh, sleep, start, stopLast, tempDir, vethPair, waitUntil, type Proc,
} from './netns-bench.js';
import { paddedLength, TRANSPORT_HEADER_SIZE, TAG_LEN } from '../src/wireguard/index.js';
import { RELAY_HEADER_SIZE } from '../src/mesh/relay-frame.js';

const MESH_API_SOCKET = 'mesh.api';
const CONTROL_PORT = 7443;
const UNDERLAY_MTU = 1500;
/** The mesh daemons' TUN MTU (the default of `meshtun up`). */
const TUN_MTU = 1420;
/** WireGuard transport header (16) + Poly1305 tag (16), added by every session that seals. */
const WG_OVERHEAD = TRANSPORT_HEADER_SIZE + TAG_LEN;
const IPV4_TCP_HEADERS = 40;
const TCP_TIMESTAMPS = 12;
const IPV4_UDP_HEADERS = 28;
const UP_TIMEOUT_MS = 40_000;
const RELAY_TIMEOUT_MS = 90_000;

type RunId = 'direct' | 'relay' | 'relay-mss';

interface Options { duration: number; pings: number; runs: RunId[]; mss: number | null; profRelay: string | null; json: boolean; nodeArgs: string[] }

const USAGE = 'usage: node dist/bench/relay.js [--duration S] [--pings N] [--runs direct,relay] [--mss N] [--prof-relay DIR] [--json]';

function fail(msg: string): never {
  console.error(`bench/relay: ${msg}\n${USAGE}`);
  process.exit(2);
}

function parseOptions(argv: string[]): Options {
  const o: Options = {
    duration: 10, pings: 20, runs: ['direct', 'relay'], mss: null, profRelay: null, json: false,
    nodeArgs: (process.env.MESHTUN_NODE_ARGS ?? '').split(/\s+/).filter(Boolean),
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const value = (): string => argv[++i] ?? fail(`${a} needs a value`);
    if (a === '--duration' || a === '-t') o.duration = Number(value());
    else if (a === '--pings') o.pings = Number(value());
    else if (a === '--runs') {
      o.runs = value().split(/[\s,]+/).filter(Boolean).map((r) => (r === 'direct' || r === 'relay' ? r : fail(`unknown run "${r}" (direct, relay)`)));
    } else if (a === '--mss') o.mss = Number(value());
    else if (a === '--prof-relay') o.profRelay = value();
    else if (a === '--json') o.json = true;
    else if (a === '--help' || a === '-h') { console.log(USAGE); process.exit(0); }
    else fail(`unknown option "${a}"`);
  }
  if (!(o.duration >= 1 && o.duration <= 600)) fail('--duration must be 1..600 seconds');
  if (!(o.pings >= 1 && o.pings <= 1000)) fail('--pings must be 1..1000');
  if (o.mss !== null && !(Number.isInteger(o.mss) && o.mss >= 536 && o.mss <= 1380)) fail('--mss must be a whole number 536..1380');
  if (o.mss !== null) o.runs.push('relay-mss');
  return o;
}

const progress = progressLog('relay');

const TAG = benchTag('mtr');
const BRIDGE_NET = `198.18.${SUBNET}`;
const LEAF_NET = `198.19.${SUBNET}`;
const COORD_UNDER = `${BRIDGE_NET}.1`;
/** stop() gives the mesh daemons 8 s from SIGTERM before SIGKILL (the other benches: 5 s). */
setStopGrace(8000);

const addNs = (suffix: string): string => addNamespace(`${TAG}${suffix}`);

interface Topo { ns: Record<'c0' | 'a' | 'b' | 'd', string>; underIf: Record<'a' | 'b', string> }

/** c0 (.1), a (.2), b (.3) on a bridge; d (.2) behind b (.1) on its own link. */
function setupNamespaces(): Topo {
  const br = addNs('br');
  sh('ip', ['-n', br, 'link', 'add', 'br0', 'type', 'bridge']);
  sh('ip', ['-n', br, 'link', 'set', 'br0', 'up']);
  const ns = { c0: '', a: '', b: '', d: '' };
  for (const [i, n] of (['c0', 'a', 'b'] as const).entries()) {
    ns[n] = addNs(n);
    vethPair(ns[n], `${TAG}${n}u`, `${BRIDGE_NET}.${i + 1}/24`, br, `${TAG}${n}p`, '');
    sh('ip', ['-n', br, 'link', 'set', `${TAG}${n}p`, 'master', 'br0']);
  }
  ns.d = addNs('d');
  const bLeaf = `${TAG}bl`;
  vethPair(ns.b, bLeaf, `${LEAF_NET}.1/24`, ns.d, `${TAG}du`, `${LEAF_NET}.2/24`);
  sh('ip', ['-n', ns.d, 'route', 'add', 'default', 'via', `${LEAF_NET}.1`]);
  sh('ip', ['netns', 'exec', ns.b, 'sysctl', '-qw', 'net.ipv4.ip_forward=1']);
  sh('ip', ['netns', 'exec', ns.b, 'nft', '-f', '-'], {
    input: `table inet ${TAG} {
      chain forward_d { type filter hook forward priority 0; policy drop;
        ct state established,related accept
        iifname "${bLeaf}" ip daddr ${COORD_UNDER} tcp dport ${CONTROL_PORT} accept
      }
      chain nat_d { type nat hook postrouting priority 100; ip saddr ${LEAF_NET}.0/24 oifname != "${bLeaf}" masquerade; }
    }\n`,
  });
  return { ns, underIf: { a: `${TAG}au`, b: `${TAG}bu` } };
}

// ---- the mesh nodes ----

interface Node { name: string; ns: string; dir: string; iface: string; ipv4: string; proc: Proc }

function nodeEnv(dir: string): NodeJS.ProcessEnv {
  return { ...process.env, MESHTUN_STATE_DIR: dir };
}

async function startNode(name: string, ns: string, joinArgs: string[], nodeArgs: string[]): Promise<Node> {
  const dir = tempDir(`${TAG}-${name}-`);
  const iface = `${TAG}${name}t`;
  const proc = start(ns, process.execPath, [...nodeArgs, MESHTUN_BIN, 'up', '--tun', '--interface', iface, ...joinArgs, '--name', name], nodeEnv(dir));
  const deadline = Date.now() + UP_TIMEOUT_MS;
  for (;;) {
    const m = /is up(?: \(userspace\))?: node "[^"]+" (\S+), (\S+);/.exec(proc.output());
    if (m) return { name, ns, dir, iface, ipv4: m[1]!, proc };
    if (proc.child.exitCode !== null || Date.now() > deadline || isAborted()) throw new Error(`node ${name} did not come up: ${proc.output().trim()}`);
    await sleep(100);
  }
}

function cli(n: Node, args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return runAsync('ip', ['netns', 'exec', n.ns, process.execPath, MESHTUN_BIN, ...args], 20_000, nodeEnv(n.dir));
}

interface PeersJson { peers: { name: string; path?: { kind: string; via?: string | null } }[] }

/** Polls until `check` passes; throws with `what` and the nodes' logs after timeoutMs. */
function waitForNodes(what: string, check: () => Promise<boolean>, timeoutMs: number, nodes: Node[]): Promise<void> {
  return waitUntil(check, {
    timeoutMs, intervalMs: 300, watch: nodes.map((n) => [`node ${n.name}`, n.proc]),
    timedOut: () => `${what} within ${timeoutMs / 1000} s; logs:\n${nodes.map((n) => `  ${n.name}: ${n.proc.output().trim().split('\n').slice(-8).join('\n    ')}`).join('\n')}`,
  });
}

/** GET /v1/status on a node's API socket: its relay counters. */
function relayCounters(n: Node): Promise<Record<string, number>> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath: join(n.dir, MESH_API_SOCKET), path: '/v1/status', method: 'GET', timeout: 5000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        try {
          const s = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { mesh?: { relay?: Record<string, number> } };
          if (!s.mesh?.relay) throw new Error(`no mesh.relay in ${n.name}'s status`);
          resolve(s.mesh.relay);
        } catch (err) { reject(err as Error); }
      });
    });
    req.on('timeout', () => req.destroy(new Error('status: no answer in time')));
    req.on('error', reject);
    req.end();
  });
}

// ---- measurements ----

/** tx bytes and packets of an interface in a namespace. */
function txCounters(ns: string, ifname: string): { bytes: number; packets: number } {
  const j = JSON.parse(sh('ip', ['-n', ns, '-s', '-j', 'link', 'show', 'dev', ifname])) as { stats64: { tx: { bytes: number; packets: number } } }[];
  return { bytes: j[0]!.stats64.tx.bytes, packets: j[0]!.stats64.tx.packets };
}

/** One path's numbers. cpu: CPU seconds of each involved daemon during the iperf3 run. */
interface PathResult {
  id: RunId; label: string; target: string; rttMs: number | null; pingLoss: string;
  gbps: number | null; gbit: number | null; retransmits: number | null; wallS: number;
  cpu: Record<string, number>; wireBytesPerPayloadByte: number | null; wirePacketsPerMss: number | null;
  /** Change of the relay counters of each node during the run (b: forwarded; a: sent; d: delivered). */
  relayDelta?: Record<string, Record<string, number>>; error?: string;
}

async function measurePath(id: RunId, label: string, a: Node, target: Node, involved: Node[], o: Options, underIfA: string, relayed: boolean): Promise<PathResult> {
  const res: PathResult = {
    id, label, target: target.name, rttMs: null, pingLoss: '?', gbps: null, gbit: null, retransmits: null, wallS: 0, cpu: {},
    wireBytesPerPayloadByte: null, wirePacketsPerMss: null,
  };
  try {
    const ping = await pingRtt(a.ns, target.ipv4, o.pings, '0.05');
    res.rttMs = ping.avg;
    res.pingLoss = ping.loss;
    progress(`${id}: ping a -> ${target.name} RTT avg ${fmt(ping.avg, 3)} ms (loss ${ping.loss})`);
    const mss = id === 'relay-mss' ? ['-M', String(o.mss)] : [];
    const relayBefore = relayed ? await Promise.all(involved.map(relayCounters)) : null;
    const sample = () => ({ cpu: involved.map((n) => cpuSeconds(n.proc.pid)), tx: txCounters(a.ns, underIfA) });
    const r = await iperfClient(a.ns, target.ipv4, o.duration, 1, mss, sample, () => {
      if (isAborted()) throw new Error('interrupted');
      progress(`${id}: iperf3 a -> ${target.name}${mss.length ? ` (MSS ${o.mss})` : ''} for ${o.duration} s ...`);
    });
    res.wallS = r.wallS;
    const j = r.json;
    if (!j) throw new Error(`iperf3 gave no JSON (exit ${r.code}): ${r.stderr.trim().slice(0, 300)}`);
    if (j.error) throw new Error(`iperf3: ${j.error}`);
    const bps = j.end?.sum_received?.bits_per_second;
    const bytes = j.end?.sum_received?.bytes;
    res.gbps = bps === undefined ? null : bps / 1e9;
    res.gbit = bytes === undefined ? null : (bytes * 8) / 1e9;
    res.retransmits = j.end?.sum_sent?.retransmits ?? null;
    involved.forEach((n, i) => { res.cpu[n.name] = r.after.cpu[i]! - r.before.cpu[i]!; });
    const sent = j.end?.sum_sent?.bytes;
    if (sent) {
      res.wireBytesPerPayloadByte = (r.after.tx.bytes - r.before.tx.bytes) / sent;
      // Data per segment: the MSS less TCP's timestamp option.
      const segment = (o.mss !== null && id === 'relay-mss' ? o.mss : TUN_MTU - IPV4_TCP_HEADERS) - TCP_TIMESTAMPS;
      res.wirePacketsPerMss = (r.after.tx.packets - r.before.tx.packets) / (sent / segment);
    }
    if (relayBefore) {
      const relayAfter = await Promise.all(involved.map(relayCounters));
      res.relayDelta = Object.fromEntries(involved.map((n, i) => [n.name,
        Object.fromEntries(Object.keys(relayAfter[i]!).map((k) => [k, (relayAfter[i]![k] ?? 0) - (relayBefore[i]![k] ?? 0)]))]));
    }
    progress(`${id}: ${fmt(res.gbps, 3)} Gbit/s, retr ${res.retransmits ?? '?'}, CPU-s ${Object.entries(res.cpu).map(([k, v]) => `${k} ${v.toFixed(2)}`).join(' ')}` +
      (res.relayDelta ? `; b relay forwarded +${res.relayDelta.b?.forwarded ?? 0}` : ''));
  } catch (err) {
    res.error = (err as Error).message;
    progress(`${id}: FAILED: ${res.error}`);
  }
  return res;
}

// ---- report ----

function fmt(v: number | null | undefined, digits: number): string {
  return v === null || v === undefined || !Number.isFinite(v) ? '-' : fmtNumber(v, digits);
}

/** Sizes of an inner IP packet of `ip` bytes on the relayed path: the sealed a-d datagram, the hop
 * session's datagram carrying it in a frame, and that datagram with its IPv4 and UDP headers. */
function relayedSizes(ip: number): { inner: number; hop: number; wire: number } {
  const inner = WG_OVERHEAD + paddedLength(ip, TUN_MTU);
  const frame = RELAY_HEADER_SIZE + inner;
  const hop = WG_OVERHEAD + paddedLength(frame, TUN_MTU);
  return { inner, hop, wire: hop + IPV4_UDP_HEADERS };
}

/** The largest TCP MSS (IPv4, iperf3 -M) whose relayed packets fit the underlay MTU. */
function largestUnfragmentedMss(): number {
  let ip = TUN_MTU;
  while (relayedSizes(ip).wire > UNDERLAY_MTU) ip--;
  return ip - IPV4_TCP_HEADERS;
}

function perGbit(cpuS: number | undefined, r: PathResult): number | null {
  return cpuS === undefined || !r.gbit ? null : cpuS / r.gbit;
}

function totalCpu(r: PathResult): number {
  return Object.values(r.cpu).reduce((s, v) => s + v, 0);
}

function report(results: PathResult[], o: Options): string {
  const rev = gitRevision();
  const full = relayedSizes(TUN_MTU);
  const fitMss = largestUnfragmentedMss();
  const lines = [
    `## meshtun multi-hop relay benchmark: ${new Date().toISOString().slice(0, 19)}Z`,
    `host: ${cpus().length} cores, ${cpus()[0]?.model ?? '?'}; node ${process.version}; meshtun ${rev}; tun MTU ${TUN_MTU}, underlay MTU ${UNDERLAY_MTU}`,
    `iperf3 TCP a -> target, 1 stream, ${o.duration} s (receiver rate); RTT: avg of ${o.pings} pings at 0.05 s, unloaded; ` +
      'CPU-s/Gbit: CPU seconds (user + system) of a meshtun daemon during the run per Gbit received; ' +
      'wire: bytes a\'s underlay interface sent per payload byte, and packets it sent per full TCP segment of payload (a UDP GSO batch counts as one packet; 2 = every segment fragmented).',
    '',
    '| path | Gbit/s | RTT ms | CPU-s/Gbit a | CPU-s/Gbit b | CPU-s/Gbit d | CPU-s/Gbit total | CPU % a / b / d | wire B/B | wire pkts/seg | retr |',
    '|---|---|---|---|---|---|---|---|---|---|---|',
  ];
  for (const r of results) {
    if (r.error && r.gbps === null) { lines.push(`| ${r.label} | failed: ${r.error.split('\n')[0]} |`); continue; }
    const pct = (n: string) => (r.cpu[n] === undefined ? '-' : `${Math.round((r.cpu[n]! / r.wallS) * 100)}`);
    lines.push(`| ${r.label} | ${fmt(r.gbps, 3)} | ${fmt(r.rttMs, 3)} | ${fmt(perGbit(r.cpu.a, r), 2)} | ${fmt(perGbit(r.cpu.b, r), 2)} | ` +
      `${fmt(perGbit(r.cpu.d, r), 2)} | ${fmt(perGbit(totalCpu(r), r), 2)} | ${pct('a')} / ${pct('b')} / ${pct('d')} | ` +
      `${fmt(r.wireBytesPerPayloadByte, 3)} | ${fmt(r.wirePacketsPerMss, 2)} | ${r.retransmits ?? '-'} |`);
  }
  const relayRuns = results.filter((r) => r.relayDelta);
  if (relayRuns.length) {
    lines.push('', 'Relay counters (GET /v1/status on each node\'s mesh.api, mesh.relay), change during each relayed iperf3 run:', '');
    for (const r of relayRuns) {
      const forwarded = r.relayDelta!.b?.forwarded ?? 0;
      const nonZero = (n: string) => Object.entries(r.relayDelta![n] ?? {}).filter(([, v]) => v !== 0).map(([k, v]) => `${k} +${v}`).join(', ') || 'none';
      lines.push(`- ${r.label}: ${forwarded > 0 ? 'OK, b\'s forwarded moved' : 'FAILED: b\'s forwarded did not move'}` +
        (r.gbit ? ` (${fmt(forwarded / (r.gbit * 1e3), 0)} frames per Mbit received)` : '') +
        `; b: ${nonZero('b')}; a: ${nonZero('a')}; d: ${nonZero('d')}`);
    }
  }
  lines.push('', `Per relayed hop: ${RELAY_HEADER_SIZE} B relay frame header + ${WG_OVERHEAD} B outer WireGuard (header ${TRANSPORT_HEADER_SIZE} + tag ${TAG_LEN}) = ` +
    `${RELAY_HEADER_SIZE + WG_OVERHEAD} B, plus padding to 16 B. A full-size packet (${TUN_MTU} B) is a ${full.inner} B a-d datagram, ` +
    `${full.hop} B inside each hop session, ${full.wire} B on the underlay (${full.wire > UNDERLAY_MTU ? `> ${UNDERLAY_MTU}: IP-fragmented` : 'fits'}); ` +
    `the largest inner IPv4 packet that is not fragmented is ${fitMss + IPV4_TCP_HEADERS} B (iperf3 -M ${fitMss}).`);
  for (const r of results) if (r.error && r.gbps !== null) lines.push('', `note: ${r.label}: ${r.error}`);
  return lines.join('\n');
}

function summary(results: PathResult[], o: Options): string {
  const d = results.find((r) => r.id === 'direct');
  const rl = results.find((r) => r.id === 'relay');
  const m = results.find((r) => r.id === 'relay-mss');
  const parts: string[] = [];
  if (d) parts.push(`direct ${fmt(d.gbps, 2)} Gbit/s (${fmt(perGbit(totalCpu(d), d), 2)} CPU-s/Gbit, RTT ${fmt(d.rttMs, 3)} ms)`);
  if (rl) {
    parts.push(`relayed ${fmt(rl.gbps, 2)} Gbit/s (${fmt(perGbit(totalCpu(rl), rl), 2)} CPU-s/Gbit, relay b ${fmt(perGbit(rl.cpu.b, rl), 2)}, RTT ${fmt(rl.rttMs, 3)} ms)`);
  }
  if (d?.gbps && rl?.gbps) parts.push(`relayed/direct ${((rl.gbps / d.gbps) * 100).toFixed(0)}%`);
  if (m) parts.push(`relayed with MSS ${o.mss} ${fmt(m.gbps, 2)} Gbit/s (${fmt(perGbit(totalCpu(m), m), 2)} CPU-s/Gbit)`);
  return `summary: ${parts.join('; ')}`;
}

// ---- main ----

async function run(o: Options): Promise<PathResult[]> {
  const topo = setupNamespaces();
  progress(`namespaces ${TAG}{br,c0,a,b,d}; bridge ${BRIDGE_NET}.0/24 (c0 .1, a .2, b .3), d behind b on ${LEAF_NET}.0/24`);
  const coord = await startNode('coord', topo.ns.c0, [], o.nodeArgs);
  stopLast(coord.proc.child);
  const nodes: Record<string, Node> = {};
  for (const name of ['a', 'b', 'd'] as const) {
    const t = await cli(coord, ['token', 'create', '--json']);
    if (t.code !== 0) throw new Error(`token create: ${t.stderr.trim()}`);
    const joinArgs = (JSON.parse(t.stdout) as { joinCommand: string }).joinCommand.split(' ').slice(2);
    const nodeArgs = name === 'b' && o.profRelay ? [...o.nodeArgs, '--cpu-prof', `--cpu-prof-dir=${o.profRelay}`] : o.nodeArgs;
    nodes[name] = await startNode(name, topo.ns[name], joinArgs, nodeArgs);
    progress(`node ${name} is up: ${nodes[name].ipv4} (pid ${nodes[name].proc.pid})`);
  }
  const { a, b, d } = nodes as Record<'a' | 'b' | 'd', Node>;
  const all = [coord, a, b, d];

  await waitForNodes('a does not reach b directly', () => pingOnce(a.ns, b.ipv4), RELAY_TIMEOUT_MS, all);
  let lastPeers = '';
  await waitForNodes('a\'s peer d is not relayed (path.kind relay) or d does not answer pings', async () => {
    const r = await cli(a, ['peers', '--json']);
    lastPeers = r.stdout;
    if (r.code !== 0) return false;
    const pd = (JSON.parse(r.stdout) as PeersJson).peers.find((p) => p.name === 'd');
    return pd?.path?.kind === 'relay' && (await pingOnce(a.ns, d.ipv4));
  }, RELAY_TIMEOUT_MS, all).catch((err: Error) => { throw new Error(`${err.message}\n  a's peers: ${lastPeers.trim()}`); });
  const pb = (JSON.parse(lastPeers) as PeersJson).peers.find((p) => p.name === 'b');
  const pd = (JSON.parse(lastPeers) as PeersJson).peers.find((p) => p.name === 'd');
  progress(`a's paths: b ${pb?.path?.kind ?? '?'}, d ${pd?.path?.kind ?? '?'} via ${pd?.path?.via ?? '?'}`);
  if (pb?.path?.kind !== 'direct') progress(`warning: a's path to b is "${pb?.path?.kind}", not direct`);
  if (pd?.path?.via !== 'b') throw new Error(`a's peer d is relayed via "${pd?.path?.via}", not b`);
  await sleep(1000);

  await iperfServer(b.ns);
  await iperfServer(d.ns);
  const results: PathResult[] = [];
  for (const id of o.runs) {
    if (isAborted()) break;
    if (id === 'direct') results.push(await measurePath(id, 'direct a -> b', a, b, [a, b], o, topo.underIf.a, false));
    else if (id === 'relay') results.push(await measurePath(id, 'relayed a -> b -> d', a, d, [a, b, d], o, topo.underIf.a, true));
    else results.push(await measurePath(id, `relayed a -> b -> d (MSS ${o.mss})`, a, d, [a, b, d], o, topo.underIf.a, true));
  }
  return results;
}

async function main(): Promise<void> {
  const o = parseOptions(process.argv.slice(2));
  checkHost(fail, ['ip', 'iperf3', 'ping', 'nft', 'ss'], 'iproute2 iperf3 iputils-ping nftables');
  handleSignals(progress);
  let code = 0;
  try {
    const results = await run(o);
    if (isAborted()) return;
    if (o.json) console.log(JSON.stringify({ date: new Date().toISOString(), options: o, results }, null, 2));
    else console.log(`${report(results, o)}\n\n${summary(results, o)}`);
    if (results.some((r) => r.error) || results.some((r) => r.relayDelta && !((r.relayDelta.b?.forwarded ?? 0) > 0))) code = 1;
  } catch (err) {
    progress(`FAILED: ${(err as Error).message}`);
    code = 1;
  } finally {
    progress('cleaning up');
    await cleanup();
    finishMeasuring();
  }
  process.exitCode = code;
}

await main();
