// Tunnel benchmark: meshtun against wireguard-go through real kernel TUN devices, in two network
// namespaces joined by a veth pair (underlay 198.18.<n>.1 <-> 198.18.<n>.2). One run measures, for
// each case (a <-> b):
//   mt-mt   meshtun      <-> meshtun
//   mt-wg   meshtun      <-> wireguard-go
//   wg-wg   wireguard-go <-> wireguard-go   (the reference the ratios divide by)
// - ping RTT: average of PINGS pings at 0.2 s, unloaded;
// - iperf3 TCP a -> b, 1 stream and 4 streams, DURATION s each (receiver rate), and with --reverse
//   also b -> a, 1 stream;
// - the CPU time of both VPN daemons during each TCP run, from /proc/<pid>/stat (utime + stime over
//   all threads), as % of one core.
// Then prints a markdown table (or JSON with --json) and the ratios meshtun / wireguard-go.
// Progress goes to stderr. Namespaces and processes (killed by PID) are removed at the end, on
// failure and on SIGINT/SIGTERM. Needs root, iperf3, wireguard-go, wg, ping, ip.
//
// Run: npm run bench:tunnel -- [--duration 10] [--cases mt-mt,mt-wg,wg-wg] [--pings 20] [--reverse] [--json]
// Env: BENCH_DURATION, BENCH_CASES, BENCH_PINGS, BENCH_REVERSE=1, BENCH_JSON=1 (flags win),
//      MESHTUN_NODE_ARGS="--cpu-prof --cpu-prof-dir=/tmp/prof" extra node flags for the meshtun daemons
//      (they stop with SIGTERM, so profiles are written). The daemons inherit the environment, so
//      e.g. MESHTUN_PURE_TS_CRYPTO=1 compares the node:crypto AEAD with the native one.
// The machine is shared and small: compare rows of one run, and prefer Gbit per CPU-second (work
// per packet) over raw Gbit/s when the box is busy.

import { existsSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import {
  MESHTUN_BIN, SUBNET, benchTag, checkHost, cleanup, cpuTimes, gitRevision, handleSignals, iperfClient, iperfServer, isAborted,
  namespacePair, pingOnce, pingRtt, progressLog, sh, sleep, start, stop, tempDir, waitUntil, type Proc,
} from './netns-bench.js';

const UAPI_DIR = '/var/run/wireguard';
const LISTEN_PORT = 51820;
const TUN_MTU = 1420;
const UP_TIMEOUT_MS = 25_000;

type Impl = 'meshtun' | 'wireguard-go';
interface CaseDef { id: string; label: string; a: Impl; b: Impl }
const CASES: CaseDef[] = [
  { id: 'mt-mt', label: 'meshtun <-> meshtun', a: 'meshtun', b: 'meshtun' },
  { id: 'mt-wg', label: 'meshtun <-> wireguard-go', a: 'meshtun', b: 'wireguard-go' },
  { id: 'wg-wg', label: 'wireguard-go <-> wireguard-go', a: 'wireguard-go', b: 'wireguard-go' },
];

interface Options { duration: number; cases: CaseDef[]; pings: number; reverse: boolean; json: boolean; nodeArgs: string[] }

/** One iperf3 run: receiver rate, sender retransmits, CPU % of one core of daemons a and b
 * (user + system), and the user-space part of each. */
interface TcpResult { gbps: number | null; retransmits: number | null; cpuA: number; cpuB: number; userA: number; userB: number }
interface CaseResult {
  id: string; label: string; rttMs: number | null; pingLoss: string;
  one: TcpResult | null; four: TcpResult | null; reverse: TcpResult | null; error?: string;
}

const USAGE = `usage: node dist/bench/tunnel.js [--duration S] [--cases ${CASES.map((c) => c.id).join(',')}] [--pings N] [--reverse] [--json]`;

function parseOptions(argv: string[]): Options {
  const env = process.env;
  const o: Options = {
    duration: Number(env.BENCH_DURATION ?? 10), cases: CASES, pings: Number(env.BENCH_PINGS ?? 20),
    reverse: env.BENCH_REVERSE === '1', json: env.BENCH_JSON === '1',
    nodeArgs: (env.MESHTUN_NODE_ARGS ?? '').split(/\s+/).filter(Boolean),
  };
  let caseList = env.BENCH_CASES;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const value = (): string => {
      const v = argv[++i];
      if (v === undefined) fail(`${a} needs a value`);
      return v;
    };
    if (a === '--duration' || a === '-t') o.duration = Number(value());
    else if (a === '--cases') caseList = value();
    else if (a === '--pings') o.pings = Number(value());
    else if (a === '--reverse') o.reverse = true;
    else if (a === '--json') o.json = true;
    else if (a === '--help' || a === '-h') { console.log(USAGE); process.exit(0); }
    else fail(`unknown option "${a}"`);
  }
  if (!(o.duration >= 1 && o.duration <= 600)) fail('--duration must be 1..600 seconds');
  if (!(o.pings >= 1 && o.pings <= 1000)) fail('--pings must be 1..1000');
  if (caseList) {
    o.cases = caseList.split(/[\s,]+/).filter(Boolean).map((id) => CASES.find((c) => c.id === id) ?? fail(`unknown case "${id}"`));
  }
  return o;
}

function fail(msg: string): never {
  console.error(`bench/tunnel: ${msg}\n${USAGE}`);
  process.exit(2);
}

const progress = progressLog('tunnel');

const TAG = benchTag('mtb');
const NS_A = `${TAG}a`, NS_B = `${TAG}b`;
const UNDER_A = `198.18.${SUBNET}.1`, UNDER_B = `198.18.${SUBNET}.2`;
let workDir = '';

// ---- bringing up one end ----

interface End { impl: Impl; ns: string; ifname: string; overlay: string; under: string; key: string; pub: string; proc: Proc | null }

function writeMeshtunConf(end: End, peer: End): string {
  const file = join(workDir, `${end.ifname}.conf`); // meshtun names the interface after the file
  writeFileSync(file, [
    '[Interface]', `PrivateKey = ${end.key}`, `ListenPort = ${LISTEN_PORT}`, `Address = ${end.overlay}/24`, `MTU = ${TUN_MTU}`, '',
    '[Peer]', `PublicKey = ${peer.pub}`, `AllowedIPs = ${peer.overlay}/32`, `Endpoint = ${peer.under}:${LISTEN_PORT}`, '',
  ].join('\n'), { mode: 0o600 });
  return file;
}

async function bringUp(end: End, peer: End, nodeArgs: string[]): Promise<void> {
  if (end.impl === 'meshtun') {
    end.proc = start(end.ns, process.execPath, [...nodeArgs, MESHTUN_BIN, 'up', writeMeshtunConf(end, peer)]);
    return;
  }
  end.proc = start(end.ns, 'wireguard-go', ['-f', end.ifname]);
  const sock = join(UAPI_DIR, `${end.ifname}.sock`);
  for (let t = Date.now(); !existsSync(sock); await sleep(50)) {
    if (end.proc.child.exitCode !== null || Date.now() - t > 10_000) throw new Error(`wireguard-go ${end.ifname} did not start: ${end.proc.output()}`);
  }
  const keyFile = join(workDir, `${end.ifname}.key`);
  writeFileSync(keyFile, `${end.key}\n`, { mode: 0o600 });
  sh('ip', ['netns', 'exec', end.ns, 'wg', 'set', end.ifname, 'private-key', keyFile, 'listen-port', String(LISTEN_PORT),
    'peer', peer.pub, 'allowed-ips', `${peer.overlay}/32`, 'endpoint', `${peer.under}:${LISTEN_PORT}`]);
  sh('ip', ['-n', end.ns, 'link', 'set', end.ifname, 'mtu', String(TUN_MTU)]);
  sh('ip', ['-n', end.ns, 'addr', 'add', `${end.overlay}/24`, 'dev', end.ifname]);
  sh('ip', ['-n', end.ns, 'link', 'set', end.ifname, 'up']);
}

function waitForTunnel(a: End, b: End): Promise<void> {
  return waitUntil(() => pingOnce(a.ns, b.overlay), {
    timeoutMs: UP_TIMEOUT_MS, intervalMs: 200, watch: [a, b].map((e) => [`${e.impl} (${e.ifname})`, e.proc]),
    timedOut: () => `no ping through the tunnel within ${UP_TIMEOUT_MS / 1000} s; logs:\n  a: ${a.proc?.output().trim()}\n  b: ${b.proc?.output().trim()}`,
  });
}

// ---- measurements ----

async function iperfTcp(a: End, b: End, streams: number, seconds: number, reverse: boolean): Promise<TcpResult> {
  const pids = [a.proc!.pid, b.proc!.pid];
  const r = await iperfClient(a.ns, b.overlay, seconds, streams, reverse ? ['-R'] : [], () => pids.map(cpuTimes));
  const { before, after } = r;
  const pct = (seconds: number) => Math.round((seconds / r.wallS) * 100);
  const user = (i: number) => after[i]!.user - before[i]!.user;
  const cpu = (i: number) => pct(user(i) + after[i]!.system - before[i]!.system);
  const load = { cpuA: cpu(0), cpuB: cpu(1), userA: pct(user(0)), userB: pct(user(1)) };
  const j = r.json;
  if (!j) {
    progress(`iperf3 gave no JSON (exit ${r.code}): ${r.stderr.trim().slice(0, 300)}`);
    return { gbps: null, retransmits: null, ...load };
  }
  if (j.error) progress(`iperf3: ${j.error}`);
  const bps = j.end?.sum_received?.bits_per_second;
  return { gbps: bps === undefined ? null : bps / 1e9, retransmits: j.end?.sum_sent?.retransmits ?? null, ...load };
}

function keypair(): { key: string; pub: string } {
  const key = sh('wg', ['genkey']).trim();
  return { key, pub: sh('wg', ['pubkey'], { input: `${key}\n` }).trim() };
}

async function runCase(c: CaseDef, index: number, o: Options): Promise<CaseResult> {
  const res: CaseResult = { id: c.id, label: c.label, rttMs: null, pingLoss: '?', one: null, four: null, reverse: null };
  const ends: End[] = (['a', 'b'] as const).map((side) => ({
    impl: side === 'a' ? c.a : c.b, ns: side === 'a' ? NS_A : NS_B, ifname: `${TAG}${index}${side}`,
    overlay: `100.64.${index}.${side === 'a' ? 1 : 2}`, under: side === 'a' ? UNDER_A : UNDER_B, ...keypair(), proc: null,
  }));
  const [a, b] = ends as [End, End];
  let server: Proc | null = null;
  try {
    progress(`${c.id}: bringing up ${c.label}`);
    await bringUp(a, b, o.nodeArgs);
    await bringUp(b, a, o.nodeArgs);
    await waitForTunnel(a, b);
    await sleep(1000);
    const ping = await pingRtt(NS_A, b.overlay, o.pings, '0.2');
    res.rttMs = ping.avg;
    res.pingLoss = ping.loss;
    progress(`${c.id}: ping RTT avg ${fmt(ping.avg, 3)} ms (loss ${ping.loss})`);
    server = await iperfServer(NS_B);
    const tcp = async (streams: number, reverse: boolean, what: string) => {
      if (isAborted()) throw new Error('interrupted');
      progress(`${c.id}: iperf3 ${what} for ${o.duration} s ...`);
      const t = await iperfTcp(a, b, streams, o.duration, reverse);
      progress(`${c.id}: ${what}: ${fmt(t.gbps, 3)} Gbit/s, retr ${t.retransmits ?? '?'}, CPU a ${t.cpuA}% (user ${t.userA}%) b ${t.cpuB}% (user ${t.userB}%)`);
      return t;
    };
    res.one = await tcp(1, false, '1 stream a->b');
    res.four = await tcp(4, false, '4 streams a->b');
    if (o.reverse) res.reverse = await tcp(1, true, '1 stream b->a');
  } catch (err) {
    res.error = (err as Error).message;
    progress(`${c.id}: FAILED: ${res.error}`);
  } finally {
    if (server) await stop(server.child);
    for (const e of ends) if (e.proc) await stop(e.proc.child);
  }
  return res;
}

// ---- report ----

function fmt(v: number | null | undefined, digits: number): string {
  return v === null || v === undefined || !Number.isFinite(v) ? '-' : v.toFixed(digits);
}

function ratio(x: number | null | undefined, y: number | null | undefined): string {
  return x == null || y == null || !y || !Number.isFinite(x / y) ? '-' : `${(x / y).toFixed(2)}x`;
}

/** Gigabits moved per CPU-second of a daemon: how much work one packet costs, whatever the parallelism. */
function gbitPerCpuS(t: TcpResult | null, side: 'a' | 'b'): number | null {
  if (!t || t.gbps === null) return null;
  const cpu = side === 'a' ? t.cpuA : t.cpuB;
  return cpu > 0 ? t.gbps / (cpu / 100) : null;
}

function cpuCell(t: TcpResult | null): string {
  return t ? `${t.cpuA}% (${t.userA}) / ${t.cpuB}% (${t.userB})` : '-';
}

function report(results: CaseResult[], o: Options): string {
  const rev = gitRevision();
  const wggo = sh('wireguard-go', ['--version'], { allowFail: true }).split('\n')[0]?.trim() || '?';
  const lines = [
    `## meshtun tunnel benchmark: ${new Date().toISOString().slice(0, 19)}Z`,
    `host: ${cpus().length} cores, ${cpus()[0]?.model ?? '?'}; node ${process.version}; meshtun ${rev}; ${wggo}; tun MTU ${TUN_MTU}`,
    `iperf3 TCP ${o.duration} s per run (receiver rate); RTT: avg of ${o.pings} pings at 0.2 s, unloaded; ` +
      'CPU: daemon a / daemon b, % of one core (user + system; user part in parentheses); Gbit per CPU-s: 1-stream rate / CPU of a (sender) and b (receiver).',
    '',
    `| case | 1 stream Gbit/s | 4 streams Gbit/s |${o.reverse ? ' 1 stream b->a Gbit/s |' : ''} RTT ms | CPU a / b (1 stream) | CPU a / b (4 streams) | Gbit per CPU-s a / b | retr 1/4 |`,
    `|---|---|---|${o.reverse ? '---|' : ''}---|---|---|---|---|`,
  ];
  for (const r of results) {
    if (r.error && !r.one) { lines.push(`| ${r.label} | failed: ${r.error.split('\n')[0]} |`); continue; }
    lines.push(`| ${r.label} | ${fmt(r.one?.gbps, 3)} | ${fmt(r.four?.gbps, 3)} |${o.reverse ? ` ${fmt(r.reverse?.gbps, 3)} |` : ''} ${fmt(r.rttMs, 3)} | ` +
      `${cpuCell(r.one)} | ${cpuCell(r.four)} | ` +
      `${fmt(gbitPerCpuS(r.one, 'a'), 2)} / ${fmt(gbitPerCpuS(r.one, 'b'), 2)} | ${r.one?.retransmits ?? '-'}/${r.four?.retransmits ?? '-'} |`);
  }
  const ref = results.find((r) => r.id === 'wg-wg');
  const others = results.filter((r) => r.id !== 'wg-wg');
  if (ref?.one && others.length) {
    lines.push('', 'Ratios against wireguard-go <-> wireguard-go (throughput > 1 is faster; RTT and CPU > 1 is more):', '',
      `| case | 1 stream | 4 streams |${o.reverse ? ' 1 stream b->a |' : ''} RTT | CPU a (1 stream) | CPU b (1 stream) | Gbit per CPU-s a / b |`,
      `|---|---|---|${o.reverse ? '---|' : ''}---|---|---|---|`);
    for (const r of others) {
      lines.push(`| ${r.label} | ${ratio(r.one?.gbps, ref.one.gbps)} | ${ratio(r.four?.gbps, ref.four?.gbps)} |` +
        `${o.reverse ? ` ${ratio(r.reverse?.gbps, ref.reverse?.gbps)} |` : ''} ${ratio(r.rttMs, ref.rttMs)} | ` +
        `${ratio(r.one?.cpuA, ref.one.cpuA)} (user ${ratio(r.one?.userA, ref.one.userA)}) | ${ratio(r.one?.cpuB, ref.one.cpuB)} (user ${ratio(r.one?.userB, ref.one.userB)}) | ` +
        `${ratio(gbitPerCpuS(r.one, 'a'), gbitPerCpuS(ref.one, 'a'))} / ${ratio(gbitPerCpuS(r.one, 'b'), gbitPerCpuS(ref.one, 'b'))} |`);
    }
  }
  for (const r of results) if (r.error && r.one) lines.push('', `note: ${r.label}: ${r.error}`);
  return lines.join('\n');
}

// ---- main ----

function checkTunnelHost(o: Options): void {
  const needs = ['ip', 'iperf3', 'ping', 'ss', ...(o.cases.length ? ['wg'] : []), ...(o.cases.some((c) => c.a === 'wireguard-go' || c.b === 'wireguard-go') ? ['wireguard-go'] : [])];
  checkHost(fail, needs, 'iproute2 iperf3 iputils-ping wireguard-go wireguard-tools', o.cases.some((c) => c.a === 'meshtun' || c.b === 'meshtun'));
}

async function main(): Promise<void> {
  const o = parseOptions(process.argv.slice(2));
  checkTunnelHost(o);
  handleSignals(progress);
  let code = 0;
  try {
    workDir = tempDir(`${TAG}-`);
    progress(`namespaces ${NS_A} ${NS_B}, underlay ${UNDER_A} <-> ${UNDER_B}; cases ${o.cases.map((c) => c.id).join(' ')}; ${o.duration} s per run`);
    namespacePair(TAG, UNDER_A, UNDER_B);
    const results: CaseResult[] = [];
    for (const [i, c] of o.cases.entries()) if (!isAborted()) results.push(await runCase(c, i, o));
    if (o.json) console.log(JSON.stringify({ date: new Date().toISOString(), options: { ...o, cases: o.cases.map((c) => c.id) }, results }, null, 2));
    else console.log(report(results, o));
    if (results.some((r) => r.error)) code = 1;
  } catch (err) {
    progress(`FAILED: ${(err as Error).message}`);
    code = 1;
  } finally {
    await cleanup();
  }
  process.exitCode = code;
}

await main();
