// Path ladder benchmark (issues 10, 11): throughput and RTT of each way two mesh members can reach
// each other, measured in one run in one NAT lab (bench/paths-lab.ts):
//   direct        eim1 -> eim2     behind endpoint-independent NATs: they punch through
//   peer-relay    sym3 -> sym4     behind symmetric NATs, carried by the member started with --relay
//                                  (their routers delay what they send to the coordinator)
//   coord-relay   sym1 -> sym2     behind symmetric NATs, carried by the coordinator's node (their
//                                  routers delay what they send to the relay member)
//   https-relay   noudp -> eim3    behind EIM NATs, noudp's router drops all UDP: noudp reaches the
//                                  coordinator over HTTPS (MASQUE CONNECT-UDP on its control port),
//                                  which relays to eim3 over UDP (both routers delay what they send
//                                  to the relay member, so the coordinator relays)
//   tcp-relay     tcponly -> eim4  the same, and at this rung's turn tcponly's router also drops TCP
//                                  to the coordinator's control port: tcponly moves to the TCP rung
//                                  (framed datagrams on the coordinator's WireGuard port). It has
//                                  no control channel from then on, so the block waits until the
//                                  rung is measured (and the bench waits, up to TCP_SWITCH_MS, for
//                                  'tcp': the time it took is in the progress log and the JSON).
// All daemons start together; the bench waits until both ends of every pair report the expected
// path (`meshtun peers --json`: kind, via for a relay, and path.transport: the first hop's
// underlay, 'udp' but for the stream members, and 'https' for tcponly until its turn) and a ping
// crosses, then, one rung at a time:
// - RTT: min / avg / max of PINGS pings at 0.1 s through the tunnel (unloaded);
// - iperf3 TCP from -> to, 1 stream, DURATION s (receiver rate) and retransmits;
// - CPU seconds (user + system, /proc/<pid>/stat, all threads) of the sender's, the receiver's and
//   the relay's meshtun daemon during the iperf3 run, per Gbit received;
// - relay frames the coordinator and the relay member forwarded during the run (`meshtun status
//   --json`, mesh.relay.forwarded): the relay carrying the pair must move, the other not;
// - the path both ends report before the run and the sender's after it (a path or transport
//   that is not the expected one, before or after the run, fails the row).
// Prints a markdown table and then one JSON line (the last line of stdout: `| tail -1 | jq`);
// progress goes to stderr. Everything (daemons and iperf3 by PID, delay lines, namespaces, state
// directories) is removed at the end, on failure and on SIGINT/SIGTERM. Needs root, iperf3, ping,
// ip, nft.
//
// Adding a rung: a RUNGS entry with its pair (NAT kind, which relay its routers make slow, whether
// the first member's router drops UDP) and the paths `peers --json` must report at both ends.
//
// Run: npm run bench:paths -- [--duration 8] [--pings 20] [--rungs direct,peer-relay,coord-relay,https-relay,tcp-relay] [--delay 40]
// Env: MESHTUN_NODE_ARGS="..." extra node flags for every meshtun daemon.
// The machine is small (2 cores) and every rung runs its daemons and iperf3 on it (12 daemons are
// up, idle but for keepalives): compare rows of one run, and CPU-s per Gbit over raw Gbit/s.

import { cpus } from 'node:os';
import {
  checkHost, cpuSeconds, gitRevision, iperfClient, iperfServer, progressLog, runAsync, setStopGrace, sleep, type Proc,
} from './netns-bench.js';
import {
  COORD, RELAY, buildLab, describePath, describeWant, pathIs, pathTo, relayForwarded, teardown, waitForPath,
  type Lab, type MeshNode, type PairPlan, type PathWant, type PeerPath, type Transport,
} from './paths-lab.js';

const PATH_TIMEOUT_MS = 150_000;
/** How long tcp-relay waits for its member to move from HTTPS to TCP once the TLS port is blocked
 * (a dead stream is given up after 8 s of unanswered pings, then TCP is opened). */
const TCP_SWITCH_MS = 60_000;
const PING_INTERVAL = '0.1';

type RungId = 'direct' | 'peer-relay' | 'coord-relay' | 'https-relay' | 'tcp-relay';

interface RungSpec {
  label: string;
  pair: PairPlan;
  /** The path pair.names[0] (from) must report to pair.names[1] (to) when measured, and to's to from. */
  want: { from: PathWant; to: PathWant };
  /** At the rung's turn, from's router drops TCP to the coordinator's control port (until then
   * from is on HTTPS): the bench waits for want.from.transport before measuring. */
  blockTls?: boolean;
}

const path = (kind: 'direct' | 'relay', via: string | null, transport: Transport): PathWant => ({ kind, via, transport });
const both = (w: PathWant) => ({ from: w, to: w });

/** The rungs, in the order they are measured and printed. */
const RUNGS: Record<RungId, RungSpec> = {
  direct: { label: 'direct', pair: { names: ['eim1', 'eim2'], nat: 'eim', slowTo: null }, want: both(path('direct', null, 'udp')) },
  'peer-relay': { label: 'peer-relayed', pair: { names: ['sym3', 'sym4'], nat: 'symmetric', slowTo: COORD }, want: both(path('relay', RELAY, 'udp')) },
  'coord-relay': { label: 'coordinator-relayed', pair: { names: ['sym1', 'sym2'], nat: 'symmetric', slowTo: RELAY }, want: both(path('relay', COORD, 'udp')) },
  'https-relay': {
    label: 'coordinator-relayed, HTTPS', pair: { names: ['noudp', 'eim3'], nat: 'eim', slowTo: RELAY, blockUdp: true },
    want: { from: path('relay', COORD, 'https'), to: path('relay', COORD, 'udp') },
  },
  'tcp-relay': {
    label: 'coordinator-relayed, TCP', pair: { names: ['tcponly', 'eim4'], nat: 'eim', slowTo: RELAY, blockUdp: true },
    want: { from: path('relay', COORD, 'tcp'), to: path('relay', COORD, 'udp') }, blockTls: true,
  },
};
const RUNG_IDS = Object.keys(RUNGS) as RungId[];

interface Options { duration: number; pings: number; rungs: RungId[]; delayMs: number; nodeArgs: string[] }

const USAGE = `usage: node dist/bench/paths.js [--duration S] [--pings N] [--rungs ${RUNG_IDS.join(',')}] [--delay MS]`;

function fail(msg: string): never {
  console.error(`bench/paths: ${msg}\n${USAGE}`);
  process.exit(2);
}

function parseOptions(argv: string[]): Options {
  const o: Options = { duration: 8, pings: 20, rungs: [...RUNG_IDS], delayMs: 40, nodeArgs: (process.env.MESHTUN_NODE_ARGS ?? '').split(/\s+/).filter(Boolean) };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const value = (): string => argv[++i] ?? fail(`${a} needs a value`);
    if (a === '--duration' || a === '-t') o.duration = Number(value());
    else if (a === '--pings') o.pings = Number(value());
    else if (a === '--delay') o.delayMs = Number(value());
    else if (a === '--rungs') {
      const asked = value().split(/[\s,]+/).filter(Boolean);
      for (const r of asked) if (!(RUNG_IDS as string[]).includes(r)) fail(`unknown rung "${r}" (${RUNG_IDS.join(', ')})`);
      o.rungs = RUNG_IDS.filter((r) => asked.includes(r));
    } else if (a === '--help' || a === '-h') { console.log(USAGE); process.exit(0); }
    else fail(`unknown option "${a}"`);
  }
  if (!(o.duration >= 1 && o.duration <= 600)) fail('--duration must be 1..600 seconds');
  if (!(Number.isInteger(o.pings) && o.pings >= 1 && o.pings <= 1000)) fail('--pings must be a whole number 1..1000');
  if (!(o.delayMs >= 15 && o.delayMs <= 1000)) fail('--delay must be 15..1000 ms (the coordinator switches relays only for 10 ms and a third less)');
  if (o.rungs.length === 0) fail('--rungs names no rung');
  return o;
}

const progress = progressLog('paths');
/** stop() gives the mesh daemons 8 s from SIGTERM before SIGKILL. */
setStopGrace(8000);
let interrupted = false;

// ---- measuring ----

interface PingStats { min: number; avg: number; max: number; mdev: number; loss: string }

/** RTT statistics of `count` pings every PING_INTERVAL s from `ns`; null when none came back. */
async function pingStats(ns: string, target: string, count: number): Promise<PingStats | null> {
  const r = await runAsync('ip', ['netns', 'exec', ns, 'ping', '-n', '-q', '-c', String(count), '-i', PING_INTERVAL, '-W', '2', target], count * 1000 + 10_000);
  const rtt = /= ([\d.]+)\/([\d.]+)\/([\d.]+)\/([\d.]+) ms/.exec(r.stdout);
  const loss = /([\d.]+%) packet loss/.exec(r.stdout)?.[1] ?? '?';
  return rtt ? { min: Number(rtt[1]), avg: Number(rtt[2]), max: Number(rtt[3]), mdev: Number(rtt[4]), loss } : null;
}

interface RungResult {
  rung: RungId; label: string; from: string; to: string;
  /** What from and to must report, e.g. "relay via coord (https) / relay via coord (udp)". */
  expected: string;
  /** tcp-relay: seconds from blocking the TLS port until from reported 'tcp' and a ping crossed. */
  switchS?: number;
  /** The paths the ends reported before the run (from's to `to`, to's to `from`) and from's after it. */
  path: { from: PeerPath | null; to: PeerPath | null; after: PeerPath | null };
  rtt: PingStats | null;
  gbps: number | null; gbit: number | null; retransmits: number | null; wallS: number | null;
  /** The daemon carrying the pair's frames, if any. */
  relay: string | null;
  /** CPU seconds of each daemon during the iperf3 run, and per Gbit received. */
  cpuS: { sender: number; receiver: number; relay: number | null } | null;
  cpuPerGbit: { sender: number | null; receiver: number | null; relay: number | null };
  /** Relay frames each relay-capable node (coordinator, relay member) forwarded during the run. */
  forwarded: Record<string, number>;
  error?: string;
}

const servers = new Map<string, Proc>();

async function measureRung(id: RungId, spec: RungSpec, lab: Lab, o: Options): Promise<RungResult> {
  const node = (name: string) => lab.nodes.get(name)!;
  const [from, to] = spec.pair.names.map(node) as [MeshNode, MeshNode];
  const relay = spec.want.from.via ? node(spec.want.from.via) : null;
  const { from: wantFrom, to: wantTo } = spec.want;
  const res: RungResult = {
    rung: id, label: spec.label, from: from.name, to: to.name, expected: expectedText(spec),
    path: { from: null, to: null, after: null }, rtt: null, gbps: null, gbit: null, retransmits: null, wallS: null,
    relay: relay?.name ?? null, cpuS: null, cpuPerGbit: { sender: null, receiver: null, relay: null }, forwarded: {},
  };
  try {
    if (spec.blockTls) {
      if (!from.router) throw new Error(`${from.name} has no router to block TCP ${lab.controlPort} on`);
      from.router.blockTcpPort(lab.controlPort);
      const t0 = Date.now();
      progress(`${id}: ${from.name}'s router drops TCP ${lab.controlPort} now; waiting (up to ${TCP_SWITCH_MS / 1000} s) for ${describeWant(wantFrom)}`);
      await waitForPath(lab, from, to, wantFrom, wantTo, TCP_SWITCH_MS);
      res.switchS = round((Date.now() - t0) / 1000, 1);
      progress(`${id}: ${from.name} is on ${wantFrom.transport} after ${res.switchS} s`);
      await sleep(1000);
    }
    [res.path.from, res.path.to] = await Promise.all([pathTo(from, to.name), pathTo(to, from.name)]);
    if (!pathIs(res.path.from, wantFrom.kind, wantFrom.via, wantFrom.transport) || !pathIs(res.path.to, wantTo.kind, wantTo.via, wantTo.transport)) {
      throw new Error(`not the expected path: expected ${res.expected}, ${from.name} says ${describePath(res.path.from)}, ${to.name} says ${describePath(res.path.to)}`);
    }
    res.rtt = await pingStats(from.ns, to.ipv4, o.pings);
    progress(`${id}: ${from.name} -> ${to.name} ${describePath(res.path.from)}: ping RTT min/avg/max ` +
      `${fmt(res.rtt?.min, 3)}/${fmt(res.rtt?.avg, 3)}/${fmt(res.rtt?.max, 3)} ms (loss ${res.rtt?.loss ?? '100%'})`);
    if (!servers.has(to.ns)) servers.set(to.ns, await iperfServer(to.ns));
    const relays = [lab.coord, lab.relay].filter((n): n is MeshNode => n !== null);
    const fwdBefore = await Promise.all(relays.map(relayForwarded));
    const pids = [from.proc.pid, to.proc.pid, relay?.proc.pid ?? -1];
    const r = await iperfClient(from.ns, to.ipv4, o.duration, 1, [], () => pids.map((p) => (p < 0 ? NaN : cpuSeconds(p))), () => {
      if (interrupted) throw new Error('interrupted');
      progress(`${id}: iperf3 ${from.name} -> ${to.name} for ${o.duration} s ...`);
    });
    res.wallS = round(r.wallS, 3);
    const fwdAfter = await Promise.all(relays.map(relayForwarded));
    relays.forEach((n, i) => { res.forwarded[n.name] = fwdAfter[i]! - fwdBefore[i]!; });
    res.path.after = await pathTo(from, to.name);
    const j = r.json;
    if (!j) throw new Error(`iperf3 gave no JSON (exit ${r.code}): ${r.stderr.trim().slice(0, 300)}`);
    if (j.error) throw new Error(`iperf3: ${j.error}`);
    const bps = j.end?.sum_received?.bits_per_second;
    const bytes = j.end?.sum_received?.bytes;
    res.gbps = bps === undefined ? null : round(bps / 1e9, 4);
    res.gbit = bytes === undefined ? null : round((bytes * 8) / 1e9, 4);
    res.retransmits = j.end?.sum_sent?.retransmits ?? null;
    const cpu = (i: number) => round(r.after[i]! - r.before[i]!, 2); // clock ticks: 0.01 s
    res.cpuS = { sender: cpu(0), receiver: cpu(1), relay: relay ? cpu(2) : null };
    const perGbit = (s: number | null) => (s === null || !Number.isFinite(s) || !res.gbit ? null : round(s / res.gbit, 3));
    res.cpuPerGbit = { sender: perGbit(res.cpuS.sender), receiver: perGbit(res.cpuS.receiver), relay: perGbit(res.cpuS.relay) };
    progress(`${id}: ${fmt(res.gbps, 3)} Gbit/s, retr ${res.retransmits ?? '?'}, CPU-s/Gbit sender ${fmt(res.cpuPerGbit.sender, 2)} ` +
      `receiver ${fmt(res.cpuPerGbit.receiver, 2)}${relay ? ` relay ${relay.name} ${fmt(res.cpuPerGbit.relay, 2)}` : ''}; ` +
      `frames forwarded ${Object.entries(res.forwarded).map(([k, v]) => `${k} +${v}`).join(', ')}`);
    const problems = checkRelaying(res, spec);
    if (problems) throw new Error(problems);
  } catch (err) {
    res.error = (err as Error).message;
    progress(`${id}: FAILED: ${res.error}`);
  }
  return res;
}

/** Below this many forwarded frames per Mbit received a relay did not carry the run (1 Mbit of
 * full-size TCP segments is ~90 frames); at or above it a node that should not relay did. */
const FRAMES_PER_MBIT_CARRIED = 10;

/** What is wrong with who relayed during a run: the pair's relay must have forwarded its frames,
 * every other relay-capable node (almost) none; the sender's path (and transport) must not have
 * changed. */
function checkRelaying(r: RungResult, spec: RungSpec): string | null {
  const mbit = (r.gbit ?? 0) * 1000;
  const problems: string[] = [];
  for (const [name, n] of Object.entries(r.forwarded)) {
    const carried = n >= mbit * FRAMES_PER_MBIT_CARRIED;
    if (name === r.relay && !carried) problems.push(`${name} forwarded only ${n} frames for ${fmt(mbit, 0)} Mbit`);
    if (name !== r.relay && carried) problems.push(`${name} forwarded ${n} frames, but should carry none of it`);
  }
  const w = spec.want.from;
  if (!pathIs(r.path.after, w.kind, w.via, w.transport)) {
    problems.push(`the path changed during the run: now ${describePath(r.path.after)}`);
  }
  return problems.length ? problems.join('; ') : null;
}

/** "relay via coord (https) / relay via coord (udp)": from's expected path, then to's. */
function expectedText(spec: RungSpec): string {
  return `${describeWant(spec.want.from)} / ${describeWant(spec.want.to)}`;
}

// ---- report ----

function round(v: number, digits: number): number {
  return Number(v.toFixed(digits));
}

function fmt(v: number | null | undefined, digits: number): string {
  return v === null || v === undefined || !Number.isFinite(v) ? '-' : v.toFixed(digits);
}

function table(results: RungResult[], o: Options): string {
  const lines = [
    `## meshtun path ladder: ${new Date().toISOString().slice(0, 19)}Z`,
    `host: ${cpus().length} cores, ${cpus()[0]?.model ?? '?'}; node ${process.version}; meshtun ${gitRevision()}`,
    `iperf3 TCP from -> to, 1 stream, ${o.duration} s (receiver rate); RTT: ${o.pings} pings at ${PING_INTERVAL} s through the tunnel, unloaded; ` +
      'CPU-s/Gbit: CPU seconds (user + system) of a meshtun daemon during the iperf3 run per Gbit received; ' +
      'forwarded: relay frames each relay-capable node forwarded during the run; path: what from reports (kind, via, first hop\'s transport).',
    '',
    '| rung | from -> to | path (reported) | Gbit/s | retr | RTT min / avg / max ms | loss | CPU-s/Gbit relay | CPU % relay | CPU-s/Gbit sender / receiver | forwarded |',
    '|---|---|---|---|---|---|---|---|---|---|---|',
  ];
  for (const r of results) {
    const pct = r.cpuS?.relay !== null && r.cpuS?.relay !== undefined && r.wallS ? `${Math.round((r.cpuS.relay / r.wallS) * 100)}` : '-';
    const fwd = Object.entries(r.forwarded).map(([k, v]) => `${k} +${v}`).join(', ') || '-';
    lines.push(`| ${r.label} | ${r.from} -> ${r.to} | ${describePath(r.path.from)} | ${fmt(r.gbps, 3)} | ${r.retransmits ?? '-'} | ` +
      `${fmt(r.rtt?.min, 3)} / ${fmt(r.rtt?.avg, 3)} / ${fmt(r.rtt?.max, 3)} | ${r.rtt?.loss ?? '-'} | ` +
      `${r.relay ? `${fmt(r.cpuPerGbit.relay, 2)} (${r.relay})` : '-'} | ${pct} | ${fmt(r.cpuPerGbit.sender, 2)} / ${fmt(r.cpuPerGbit.receiver, 2)} | ${fwd} |`);
  }
  for (const r of results) if (r.switchS !== undefined) lines.push('', `${r.label}: ${r.from} reported tcp ${r.switchS} s after its router began dropping TCP to the control port.`);
  for (const r of results) if (r.error) lines.push('', `FAILED ${r.label}: ${r.error}`);
  return lines.join('\n');
}

function jsonLine(results: RungResult[], o: Options): string {
  return JSON.stringify({
    bench: 'paths', date: new Date().toISOString(), revision: gitRevision(), cores: cpus().length, node: process.version,
    options: { duration: o.duration, pings: o.pings, rungs: o.rungs, delayMs: o.delayMs }, rows: results,
  });
}

// ---- main ----

async function run(o: Options): Promise<RungResult[]> {
  const specs = o.rungs.map((id) => [id, RUNGS[id]] as const);
  const relayMember = specs.some(([, s]) => s.want.from.via === RELAY);
  // A pair is slowed toward a relay only when that relay exists in this run.
  const pairs = specs.map(([, s]) => ({ ...s.pair, slowTo: s.pair.slowTo === RELAY && !relayMember ? null : s.pair.slowTo }));
  const lab = await buildLab({ pairs, relayMember, delayMs: o.delayMs, nodeArgs: o.nodeArgs }, progress);

  // Until its turn, tcp-relay's member is on HTTPS (its router drops UDP only).
  const ready0 = (s: RungSpec): RungSpec['want'] => (s.blockTls ? { ...s.want, from: { ...s.want.from, transport: 'https' } } : s.want);
  progress(`waiting for the paths (up to ${PATH_TIMEOUT_MS / 1000} s): ${specs.map(([id, s]) => `${id} ${s.pair.names.join(' <-> ')} ${describeWant(ready0(s).from)}`).join('; ')}`);
  const t0 = Date.now();
  const ready = await Promise.allSettled(specs.map(async ([id, s]) => {
    const [a, b] = s.pair.names.map((n) => lab.nodes.get(n)!) as [MeshNode, MeshNode];
    const [pa, pb] = await waitForPath(lab, a, b, ready0(s).from, ready0(s).to, PATH_TIMEOUT_MS);
    progress(`${id}: ${a.name} says ${describePath(pa)}, ${b.name} says ${describePath(pb)} after ${((Date.now() - t0) / 1000).toFixed(0)} s`);
  }));
  await sleep(1000);

  const results: RungResult[] = [];
  for (const [i, [id, spec]] of specs.entries()) {
    if (interrupted) break;
    const waited = ready[i]!;
    if (waited.status === 'rejected') {
      const error = (waited.reason as Error).message;
      progress(`${id}: FAILED: ${error}`);
      const [from, to] = spec.pair.names;
      results.push({
        rung: id, label: spec.label, from, to, expected: expectedText(spec), path: { from: null, to: null, after: null },
        rtt: null, gbps: null, gbit: null, retransmits: null, wallS: null, relay: spec.want.from.via, cpuS: null,
        cpuPerGbit: { sender: null, receiver: null, relay: null }, forwarded: {}, error,
      });
      continue;
    }
    results.push(await measureRung(id, spec, lab, o));
  }
  return results;
}

function onSignal(sig: string): void {
  if (interrupted) { progress(`${sig}: still cleaning up`); return; }
  interrupted = true;
  progress(`${sig}: cleaning up`);
  void teardown().then(() => process.exit(130));
}

async function main(): Promise<void> {
  const o = parseOptions(process.argv.slice(2));
  checkHost(fail, ['ip', 'iperf3', 'ping', 'nft', 'ss'], 'iproute2 iperf3 iputils-ping nftables');
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  let code = 0;
  try {
    const results = await run(o);
    if (interrupted) return;
    console.log(`${table(results, o)}\n`);
    console.log(jsonLine(results, o));
    if (results.some((r) => r.error)) code = 1;
  } catch (err) {
    if (interrupted) return;
    progress(`FAILED: ${(err as Error).message}`);
    code = 1;
  } finally {
    if (!interrupted) progress('cleaning up');
    await teardown();
  }
  process.exitCode = code;
}

await main();
