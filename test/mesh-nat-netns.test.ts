// Mesh nodes behind NATs (issue 10), end to end in network namespaces built with the NAT lab
// (test/nat-topology.ts): a coordinator on the "public" segment, members behind routers doing
// nftables NAT ('eim': masquerade + drop of new inbound, endpoint-independent and
// port-preserving; 'symmetric': masquerade fully-random), every node a kernel-TUN meshtun.
//   - two members behind separate EIM NATs find a direct path (STUN reflexive addresses + hole
//     punching with discovery pings); the coordinator relays none of their traffic afterwards;
//   - a symmetric NAT and an EIM one, and two symmetric ones: they reach each other (direct where
//     the easy side lets it, else through the coordinator's relay); 50 MB arrive intact;
//   - a member whose underlay address changes mid-transfer: the transfer completes and the path
//     is direct again within 5 s.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ChildProcess } from 'node:child_process';
import { Topology, waitFor, captureOutput, isRoot, pingOk } from './netns.js';
import { NatLab, type Host, type NatKind, type Segment } from './nat-topology.js';

const bin = join(process.cwd(), 'bin/meshtun.js');
const TCP_HELPER = fileURLToPath(new URL('./tcp-sha-helper.js', import.meta.url));
// One Topology (and NAT lab) per test, destroyed when the test ends; the file's `after` catches
// anything left.
const topos: Topology[] = [];
let topo = new Topology();
after(async () => { for (const t of topos) await t.destroy(); });
const skip = !isRoot && 'needs root (network namespaces, kernel TUN, nftables)';

interface Node { host: Host; dir: string; iface: string; name: string; ipv4: string; out: () => string; proc: ChildProcess }

interface PeerPathJson { kind: string; via: string | null; transport: string; endpoint: string | null; rttMs: number | null; since: string | null }

let ifaceCounter = 0;

async function startNode(host: Host, name: string, args: string[]): Promise<Node> {
  const dir = mkdtempSync(join(tmpdir(), `mtnat-${name}-`));
  const iface = `mn${process.pid % 1000}${ifaceCounter++}`;
  const proc = topo.spawn(host.ns, 'env', [`MESHTUN_STATE_DIR=${dir}`, process.execPath, bin, 'up', '--tun', '--interface', iface, '--name', name, ...args]);
  const out = captureOutput(proc).text;
  const m = await waitFor(`${name} is up: ${out()}`, () => /is up: node "[^"]+" (\S+), \S+;/.exec(out()), 20_000);
  return { host, dir, iface, name, ipv4: m[1]!, out, proc };
}

function cli(n: Node, args: string[]): string {
  return topo.exec(n.host.ns, 'env', [`MESHTUN_STATE_DIR=${n.dir}`, process.execPath, bin, ...args]);
}

function pathTo(from: Node, to: string): PeerPathJson | null {
  try {
    const r = JSON.parse(cli(from, ['peers', '--json'])) as { peers: { name: string; path: PeerPathJson }[] };
    return r.peers.find((p) => p.name === to)?.path ?? null;
  } catch {
    return null;
  }
}

function relayForwarded(coord: Node): number {
  const st = JSON.parse(cli(coord, ['status', '--json'])) as { mesh: { relay: { forwarded: number } } };
  return st.mesh.relay.forwarded;
}

/** A network: a coordinator on a public segment and two members behind routers of these kinds. */
async function network(t: { after: (fn: () => Promise<void>) => void }, third: number, kinds: [NatKind, NatKind]) {
  topo = new Topology();
  topos.push(topo);
  const mine = topo;
  t.after(() => mine.destroy());
  const lab = new NatLab(topo);
  const pub: Segment = lab.publicSegment(`198.18.${third}.0/24`);
  const coordHost = lab.host(pub);
  const r1 = lab.router(pub, { nat: kinds[0], lan: `198.18.${third + 1}.0/24` });
  const r2 = lab.router(pub, { nat: kinds[1], lan: `198.18.${third + 2}.0/24` });
  const h1 = lab.host(r1.lan);
  const h2 = lab.host(r2.lan);
  const coord = await startNode(coordHost, 'coord', []);
  const joinCmd = await waitFor('a join command', () => /meshtun up --join (\S+) --token (\S+)/.exec(coord.out()), 5_000);
  const join1 = ['--join', joinCmd[1]!, '--token', joinCmd[2]!];
  const m1 = await startNode(h1, 'm1', join1);
  const m2 = await startNode(h2, 'm2', join1);
  return { lab, pub, coord, r1, r2, m1, m2 };
}

/** Streams `bytes` from `from` to `to` over the overlay and checks the SHA-256 at both ends. */
async function transfer(from: Node, to: Node, bytes: number, port: number, during?: () => Promise<void>): Promise<void> {
  const recv = topo.spawn(to.host.ns, process.execPath, [TCP_HELPER, 'recv', to.ipv4, String(port)]);
  const recvOut = captureOutput(recv).text;
  await waitFor('the receiver listens', () => recvOut().includes('"listening"'), 10_000);
  const send = topo.spawn(from.host.ns, process.execPath, [TCP_HELPER, 'send', to.ipv4, String(port), String(bytes), 'seed-nat']);
  const sendOut = captureOutput(send).text;
  if (during) await during();
  const done = (t: string) => t.split('\n').map((l) => { try { return JSON.parse(l) as { event: string; bytes: number; sha256: string }; } catch { return null; } }).find((e) => e?.event === 'done' || e?.event === 'error');
  const r = await waitFor(`the receiver finishes: ${recvOut()}`, () => done(recvOut()), 180_000, 200);
  const s = await waitFor(`the sender finishes: ${sendOut()}`, () => done(sendOut()), 30_000, 200);
  assert.equal(r.event, 'done', recvOut());
  assert.equal(s.event, 'done', sendOut());
  assert.equal(r.bytes, bytes, 'every byte arrived');
  assert.equal(r.sha256, s.sha256, 'intact');
}

test('NAT: two members behind endpoint-independent NATs go direct; the coordinator relays none of it', { skip, timeout: 120_000 }, async (t) => {
  const { coord, r2, m1, m2 } = await network(t, 110, ['eim', 'eim']);
  const p = await waitFor(`m1 goes direct to m2: ${JSON.stringify(pathTo(m1, 'm2'))}\n${m1.out()}`, () => {
    const path = pathTo(m1, 'm2');
    return path?.kind === 'direct' ? path : null;
  }, 45_000, 500);
  assert.equal(p.transport, 'udp');
  assert.match(p.endpoint ?? '', new RegExp(`^${r2.wanAddr.replace(/\./g, '\\.')}:\\d+$`), 'to the reflexive address on m2\'s router');
  assert.ok(p.rttMs !== null && p.since !== null);
  await waitFor('m2 goes direct to m1', () => pathTo(m2, 'm1')?.kind === 'direct', 15_000, 500);
  await waitFor('m1 pings m2 through the tunnel', () => pingOk(m1.host.ns, m2.ipv4), 10_000, 200);
  const before = relayForwarded(coord);
  await transfer(m1, m2, 5 * 1024 * 1024, 5201);
  assert.ok(relayForwarded(coord) - before < 20, 'the coordinator relayed (almost) nothing of the transfer');
  assert.equal(pathTo(m1, 'm2')?.kind, 'direct');
});

for (const kinds of [['symmetric', 'eim'], ['symmetric', 'symmetric']] as [NatKind, NatKind][]) {
  test(`NAT: ${kinds[0]} and ${kinds[1]}: the members reach each other (direct or through the coordinator) and 50 MB arrive intact`, { skip, timeout: 240_000 }, async (t) => {
    const { m1, m2 } = await network(t, kinds[1] === 'eim' ? 120 : 130, kinds);
    const p = await waitFor(`m1 reaches m2: ${JSON.stringify(pathTo(m1, 'm2'))}\n${m1.out()}`, () => {
      const path = pathTo(m1, 'm2');
      return path && path.kind !== 'none' && pingOk(m1.host.ns, m2.ipv4) ? path : null;
    }, 60_000, 1_000);
    if (p.kind === 'relay') assert.equal(p.via, 'coord', 'relayed by the coordinator');
    if (kinds[1] === 'symmetric') assert.equal(p.kind, 'relay', 'two symmetric NATs cannot punch');
    await transfer(m1, m2, 50 * 1024 * 1024, 5202);
  });
}

test('NAT: a member whose underlay address changes mid-transfer: the transfer completes, the path is direct again within 5 s', { skip, timeout: 180_000 }, async (t) => {
  const { coord, m1, m2 } = await network(t, 140, ['eim', 'eim']);
  await waitFor('m1 goes direct to m2', () => pathTo(m1, 'm2')?.kind === 'direct' && pathTo(m2, 'm1')?.kind === 'direct', 45_000, 500);
  let changedAt = 0;
  await transfer(m1, m2, 60 * 1024 * 1024, 5203, async () => {
    await new Promise((r) => setTimeout(r, 1_500));
    m1.host.changeAddress();
    changedAt = Date.now();
    // Direct again, both ways, on the new address.
    try {
      await waitFor('direct again after the move', () => {
        const a = pathTo(m1, 'm2');
        const b = pathTo(m2, 'm1');
        return a?.kind === 'direct' && b?.kind === 'direct' && b.since !== null && Date.parse(b.since) >= changedAt - 1_000;
      }, 5_000, 250);
    } catch (e) {
      const nodes = cli(coord, ['nodes', 'list', '--json']);
      const disco = (n: Node) => JSON.stringify((JSON.parse(cli(n, ['status', '--json'])) as { mesh: { disco: unknown } }).mesh.disco);
      throw new Error(`${(e as Error).message}\nnodes ${nodes}\nm1 disco ${disco(m1)}\nm2 disco ${disco(m2)}\nm1 -> m2 ${JSON.stringify(pathTo(m1, 'm2'))}\nm2 -> m1 ${JSON.stringify(pathTo(m2, 'm1'))}\n--- m1\n${m1.out().slice(-4000)}\n--- m2\n${m2.out().slice(-4000)}`);
    }
  });
  assert.ok(changedAt > 0);
});

test('NAT: a member started with --relay is chosen over the coordinator when it is closer', { skip, timeout: 180_000 }, async (t) => {
  topo = new Topology();
  topos.push(topo);
  const mine = topo;
  t.after(() => mine.destroy());
  const lab = new NatLab(topo);
  const pub = lab.publicSegment('198.18.150.0/24');
  const coordHost = lab.host(pub);
  const relayHost = lab.host(pub);
  const r1 = lab.router(pub, { nat: 'symmetric', lan: '198.18.151.0/24' });
  const r2 = lab.router(pub, { nat: 'symmetric', lan: '198.18.152.0/24' });
  // Everything the coordinator sends waits 40 ms: its paths are slower than the relay's.
  await coordHost.delay(40);
  const coord = await startNode(coordHost, 'coord', []);
  const joinCmd = await waitFor('a join command', () => /meshtun up --join (\S+) --token (\S+)/.exec(coord.out()), 10_000);
  const joinArgs = ['--join', joinCmd[1]!, '--token', joinCmd[2]!];
  await startNode(relayHost, 'r', [...joinArgs, '--relay']);
  const m1 = await startNode(lab.host(r1.lan), 'm1', joinArgs);
  const m2 = await startNode(lab.host(r2.lan), 'm2', joinArgs);
  const p = await waitFor(`m1 reaches m2 through r: ${JSON.stringify(pathTo(m1, 'm2'))}`, () => {
    const path = pathTo(m1, 'm2');
    return path?.kind === 'relay' && path.via === 'r' ? path : null;
  }, 90_000, 1_000);
  assert.equal(p.transport, 'udp');
  // The choice follows the measured round trips (the coordinator's path is the slower one).
  const toCoord = pathTo(m1, 'coord')?.rttMs ?? 0;
  const toRelay = pathTo(m1, 'r')?.rttMs ?? Infinity;
  assert.ok(toCoord > toRelay + 20, `m1 measured coord ${toCoord} ms and r ${toRelay} ms`);
  await waitFor('m2 goes through r too', () => pathTo(m2, 'm1')?.via === 'r', 20_000, 500);
  await waitFor('m1 pings m2 through r', () => pingOk(m1.host.ns, m2.ipv4), 20_000, 500);
  const viaCoord = relayForwarded(coord);
  await transfer(m1, m2, 5 * 1024 * 1024, 5204);
  assert.ok(relayForwarded(coord) - viaCoord < 20, 'the coordinator relays (almost) none of it');
});
