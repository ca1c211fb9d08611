// The network bench/paths.ts measures in: one NAT lab (test/nat-topology.ts) with kernel-TUN
// meshtun daemons, built for the rungs asked for.
//
//   public segment 198.18.<n>.0/24 (the "internet")
//     coord      .1   the coordinator (and its node, which always offers relaying)
//     relay      .2   a member started with --relay (only when a rung needs it)
//     router WANs     one router per member, each with its own /28 LAN in 198.19.<n>.0/24 and one
//                     member host on it (room for 16 members)
//
// A pair is two members behind routers of one NAT kind ('eim': endpoint-independent, they punch
// through; 'symmetric': they cannot, so the coordinator gives them a relay). `slowTo` adds the lab's
// delay line on both routers toward one relay's address: every packet the pair sends to it waits
// `delayMs`, so the coordinator, which picks the relay with the lowest RTT the ends report, picks
// the other one. Two symmetric pairs, one slow toward the relay member and one slow toward the
// coordinator, are thus carried one by the coordinator and one by the relay member in the same run;
// neither measured path crosses a delay line.
//
// The stream rungs (issue 11): `blockUdp` makes the first member's router drop every UDP packet
// from before it starts, so it reaches the others only through a relay over HTTPS (MASQUE
// CONNECT-UDP on the coordinator's control port, lab.controlPort); blocking that TCP port too
// (its Router, MeshNode.router.blockTcpPort) leaves it the TCP rung (framed datagrams on the
// relay's WireGuard port) - and no control channel, so the bench does that only once the member is
// up and on HTTPS. `slowTo` delays streams toward that relay as it delays UDP.
//
// Daemons and iperf3 are started with bench/netns-bench.ts (stopped by PID, coordinator last); the
// lab's namespaces and delay lines belong to its Topology (test/netns.ts). teardown() removes both,
// once, also when called again from a signal handler.

import { Topology } from '../test/netns.js';
import { NatLab, type Host, type NatKind, type Router } from '../test/nat-topology.js';
import {
  MESHTUN_BIN, SUBNET, benchTag, cleanup, pingOnce, runAsync, sleep, start, stopLast, tempDir, waitUntil, type Proc,
} from './netns-bench.js';

/** The coordinator's and the relay member's node names. */
export const COORD = 'coord';
export const RELAY = 'relay';
const UP_TIMEOUT_MS = 40_000;
const CLI_TIMEOUT_MS = 20_000;
const PUBLIC_NET = `198.18.${SUBNET}`;
const LAN_NET = `198.19.${SUBNET}`;
/** Each member's LAN is a /28 of LAN_NET: room for 16 routers (a router and one host on each). */
const LAN_PREFIX_LEN = 28;
const LAN_SIZE = 2 ** (32 - LAN_PREFIX_LEN);

/** Two members behind NATs of one kind; `slowTo`: their routers delay what they send to that relay;
 * `blockUdp`: the first member's router drops all UDP (from before the member starts). */
export interface PairPlan { names: [string, string]; nat: NatKind; slowTo: typeof COORD | typeof RELAY | null; blockUdp?: boolean }

export interface LabPlan { pairs: PairPlan[]; relayMember: boolean; delayMs: number; nodeArgs: string[] }

export interface MeshNode { name: string; ns: string; dir: string; ipv4: string; proc: Proc; host: Host; router: Router | null }

/** `controlPort`: the coordinator's TCP control port (from its join command), where it also serves
 * MASQUE CONNECT-UDP. */
export interface Lab { nodes: Map<string, MeshNode>; coord: MeshNode; relay: MeshNode | null; controlPort: number }

/** The underlay transport of a path (`meshtun peers --json` path.transport). */
export type Transport = 'udp' | 'https' | 'tcp';

/** What `meshtun peers --json` says about one peer's path (src/daemon/mesh-api.ts MeshPeerPath). */
export interface PeerPath { kind: 'direct' | 'relay' | 'none'; via: string | null; transport: string; endpoint: string | null; rttMs: number | null }

const TAG = benchTag('mtp');
let topo: Topology | null = null;
let tearingDown: Promise<void> | null = null;
let ifaceCount = 0;

/** Stops every daemon and iperf3 by PID (the coordinator last), then the lab's delay lines, and
 * deletes its namespaces and the state directories. Safe to call more than once. */
export function teardown(): Promise<void> {
  tearingDown ??= (async () => {
    await cleanup();
    await topo?.destroy();
  })();
  return tearingDown;
}

function nodeEnv(dir: string): NodeJS.ProcessEnv {
  return { ...process.env, MESHTUN_STATE_DIR: dir };
}

/** `meshtun up --tun` in `host`'s namespace; resolves once it printed its overlay address. */
async function startNode(host: Host, router: Router | null, name: string, args: string[], nodeArgs: string[]): Promise<MeshNode> {
  const dir = tempDir(`${TAG}-${name}-`);
  const iface = `${TAG}${ifaceCount++}`; // unique host-wide: namespaces share /var/run/wireguard
  const proc = start(host.ns, process.execPath, [...nodeArgs, MESHTUN_BIN, 'up', '--tun', '--interface', iface, '--name', name, ...args], nodeEnv(dir));
  const deadline = Date.now() + UP_TIMEOUT_MS;
  for (;;) {
    const m = /is up: node "[^"]+" (\S+), \S+;/.exec(proc.output());
    if (m) return { name, ns: host.ns, dir, ipv4: m[1]!, proc, host, router };
    if (proc.child.exitCode !== null || Date.now() > deadline || tearingDown) throw new Error(`node ${name} did not come up: ${proc.output().trim()}`);
    await sleep(100);
  }
}

/** Builds the lab and starts the coordinator, the relay member (if planned) and every pair's members. */
export async function buildLab(plan: LabPlan, progress: (msg: string) => void): Promise<Lab> {
  topo = new Topology(TAG);
  const lab = new NatLab(topo);
  const pub = lab.publicSegment(`${PUBLIC_NET}.0/24`);
  const coordHost = lab.host(pub);
  const relayHost = plan.relayMember ? lab.host(pub) : null;
  const members: { name: string; host: Host; router: Router }[] = [];
  if (plan.pairs.length * 2 > 256 / LAN_SIZE) throw new Error(`the lab has room for ${256 / LAN_SIZE / 2} pairs`);
  for (const pair of plan.pairs) {
    for (const [i, name] of pair.names.entries()) {
      const lan = `${LAN_NET}.${members.length * LAN_SIZE}/${LAN_PREFIX_LEN}`;
      const router = lab.router(pub, { nat: pair.nat, lan });
      if (pair.blockUdp && i === 0) router.blockUdp();
      members.push({ name, host: lab.host(router.lan), router });
      const slow = pair.slowTo === RELAY ? relayHost?.addr : pair.slowTo === COORD ? coordHost.addr : undefined;
      if (slow) await router.delay(plan.delayMs, { to: slow });
    }
  }
  progress(`lab ${TAG}: public ${PUBLIC_NET}.0/24 (coord ${coordHost.addr}${relayHost ? `, relay ${relayHost.addr}` : ''}); ` +
    plan.pairs.map((p) => `${p.names.join('+')} behind ${p.nat} NATs${p.blockUdp ? ` (${p.names[0]}'s drops UDP)` : ''}` +
      `${p.slowTo ? ` (+${plan.delayMs} ms toward ${p.slowTo})` : ''}`).join('; '));

  const coord = await startNode(coordHost, null, COORD, [], plan.nodeArgs);
  stopLast(coord.proc.child); // members would otherwise reconnect to it in a loop while stopping
  const joinRe = /meshtun up --join (\S+) --token (\S+)/;
  await waitUntil(() => joinRe.test(coord.proc.output()), {
    timeoutMs: 10_000, intervalMs: 100, watch: [[`node ${COORD}`, coord.proc]],
    timedOut: () => `the coordinator printed no join command: ${coord.proc.output().trim()}`,
  });
  const join = joinRe.exec(coord.proc.output())!;
  const controlPort = Number(/:(\d+)\//.exec(join[1]!)?.[1] ?? NaN);
  if (!(controlPort > 0)) throw new Error(`no control port in the join command "${join[1]!}"`);
  const joinArgs = ['--join', join[1]!, '--token', join[2]!];
  const nodes = new Map<string, MeshNode>([[COORD, coord]]);
  progress(`node ${COORD} is up: ${coord.ipv4} (pid ${coord.proc.pid})`);
  const started = await Promise.all([
    ...(relayHost ? [startNode(relayHost, null, RELAY, [...joinArgs, '--relay'], plan.nodeArgs)] : []),
    ...members.map((m) => startNode(m.host, m.router, m.name, joinArgs, plan.nodeArgs)),
  ]);
  for (const n of started) {
    nodes.set(n.name, n);
    progress(`node ${n.name} is up: ${n.ipv4} (pid ${n.proc.pid}${n.router ? `, behind ${n.router.nat} NAT ${n.router.wanAddr}` : ', public'})`);
  }
  return { nodes, coord, relay: nodes.get(RELAY) ?? null, controlPort };
}

/** Runs the meshtun CLI as `n` (its state directory, in its namespace). */
export function cli(n: MeshNode, args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return runAsync('ip', ['netns', 'exec', n.ns, process.execPath, MESHTUN_BIN, ...args], CLI_TIMEOUT_MS, nodeEnv(n.dir));
}

/** `from`'s path to peer `to` (`meshtun peers --json`), or null when it cannot tell. */
export async function pathTo(from: MeshNode, to: string): Promise<PeerPath | null> {
  const r = await cli(from, ['peers', '--json']);
  if (r.code !== 0) return null;
  try {
    const j = JSON.parse(r.stdout) as { peers: { name: string; path?: PeerPath }[] };
    return j.peers.find((p) => p.name === to)?.path ?? null;
  } catch {
    return null;
  }
}

/** Relay frames `n` has forwarded so far (`meshtun status --json`, mesh.relay.forwarded); NaN if unknown. */
export async function relayForwarded(n: MeshNode): Promise<number> {
  const r = await cli(n, ['status', '--json']);
  try {
    const f = (JSON.parse(r.stdout) as { mesh?: { relay?: { forwarded?: number } } }).mesh?.relay?.forwarded;
    return typeof f === 'number' ? f : NaN;
  } catch {
    return NaN;
  }
}

/** "relay via coord (udp)", "direct (udp)", "none". */
export function describePath(p: PeerPath | null): string {
  if (!p) return '?';
  if (p.kind === 'none') return 'none';
  return `${p.kind}${p.via ? ` via ${p.via}` : ''} (${p.transport})`;
}

/** True when `p` is of `kind`, (for a relay) goes via `via` and (when given) its first hop is over
 * `transport`. */
export function pathIs(p: PeerPath | null, kind: 'direct' | 'relay', via: string | null, transport?: Transport): boolean {
  return p?.kind === kind && (kind === 'direct' || p.via === via) && (transport === undefined || p.transport === transport);
}

/** What a path must be: kind, via (a relay's node name, or null) and the first hop's transport. */
export interface PathWant { kind: 'direct' | 'relay'; via: string | null; transport: Transport }

/** "relay via coord (https)": what describePath says of a path that is `w`. */
export function describeWant(w: PathWant): string {
  return `${w.kind}${w.via ? ` via ${w.via}` : ''} (${w.transport})`;
}

/** Waits until `a` reports `b` on path `wa` and `b` reports `a` on `wb`, and `a` pings `b` through
 * the tunnel; returns both paths. Throws after timeoutMs with what they last said. */
export async function waitForPath(lab: Lab, a: MeshNode, b: MeshNode, wa: PathWant, wb: PathWant, timeoutMs: number): Promise<[PeerPath, PeerPath]> {
  let last: [PeerPath | null, PeerPath | null] = [null, null];
  await waitUntil(async () => {
    if (tearingDown) throw new Error('interrupted');
    last = await Promise.all([pathTo(a, b.name), pathTo(b, a.name)]);
    return pathIs(last[0], wa.kind, wa.via, wa.transport) && pathIs(last[1], wb.kind, wb.via, wb.transport) && (await pingOnce(a.ns, b.ipv4));
  }, {
    timeoutMs, intervalMs: 1000, watch: [...lab.nodes.values()].map((n) => [`node ${n.name}`, n.proc]),
    timedOut: () => `${a.name} <-> ${b.name} not ${describeWant(wa)} / ${describeWant(wb)} (with a ping through) within ${timeoutMs / 1000} s: ` +
      `${a.name} says ${describePath(last[0])}, ${b.name} says ${describePath(last[1])}; logs:\n` +
      [a, b].map((n) => `  ${n.name}: ${n.proc.output().trim().split('\n').slice(-6).join('\n    ')}`).join('\n'),
  });
  return last as [PeerPath, PeerPath];
}
