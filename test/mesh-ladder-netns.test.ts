// When UDP is blocked (issue 11), end to end on the NAT lab: a member whose router drops all UDP
// reaches a member behind an endpoint-independent NAT through the coordinator over HTTPS (MASQUE
// CONNECT-UDP on the control port), then over the TCP rung when the TLS port is blocked too, and
// back on direct UDP when UDP is allowed again, while a long transfer runs through the tunnel. A
// non-member's CONNECT-UDP is refused and counted.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ChildProcess } from 'node:child_process';
import { Topology, waitFor, captureOutput, isRoot, pingOk } from './netns.js';
import { NatLab, type Host } from './nat-topology.js';

const bin = join(process.cwd(), 'bin/meshtun.js');
const TCP_HELPER = fileURLToPath(new URL('./tcp-sha-helper.js', import.meta.url));
const NON_MEMBER = fileURLToPath(new URL('./masque-probe-helper.js', import.meta.url));
const topo = new Topology();
after(() => topo.destroy());
const skip = !isRoot && 'needs root (network namespaces, kernel TUN, nftables)';

interface Node { host: Host; dir: string; name: string; ipv4: string; out: () => string; proc: ChildProcess }
interface PathJson { kind: string; via: string | null; transport: string; endpoint: string | null }

let n = 0;
async function startNode(host: Host, name: string, args: string[]): Promise<Node> {
  const dir = mkdtempSync(join(tmpdir(), `mtladder-${name}-`));
  const proc = topo.spawn(host.ns, 'env', [`MESHTUN_STATE_DIR=${dir}`, process.execPath, bin, 'up', '--tun', '--interface', `ml${process.pid % 1000}${n++}`, '--name', name, ...args]);
  const out = captureOutput(proc).text;
  const m = await waitFor(`${name} is up: ${out()}`, () => /is up: node "[^"]+" (\S+), \S+;/.exec(out()), 20_000);
  return { host, dir, name, ipv4: m[1]!, out, proc };
}

const cli = (x: Node, args: string[]) => topo.exec(x.host.ns, 'env', [`MESHTUN_STATE_DIR=${x.dir}`, process.execPath, bin, ...args]);

function pathTo(from: Node, to: string): PathJson | null {
  try {
    return (JSON.parse(cli(from, ['peers', '--json'])) as { peers: { name: string; path: PathJson }[] }).peers.find((p) => p.name === to)?.path ?? null;
  } catch {
    return null;
  }
}

/** A bulk transfer with SHA-256 checked at both ends; resolves when both ends are done. */
function transfer(from: Node, to: Node, bytes: number, port: number): { done: Promise<void> } {
  const recv = topo.spawn(to.host.ns, process.execPath, [TCP_HELPER, 'recv', to.ipv4, String(port)]);
  const recvOut = captureOutput(recv).text;
  const parse = (t: string) => t.split('\n').map((l) => { try { return JSON.parse(l) as { event: string; bytes: number; sha256: string }; } catch { return null; } }).find((e) => e?.event === 'done' || e?.event === 'error');
  const done = (async () => {
    await waitFor('the receiver listens', () => recvOut().includes('"listening"'), 10_000);
    const send = topo.spawn(from.host.ns, process.execPath, [TCP_HELPER, 'send', to.ipv4, String(port), String(bytes), `seed-${port}`]);
    const sendOut = captureOutput(send).text;
    const r = await waitFor(`the receiver finishes: ${recvOut()}`, () => parse(recvOut()), 170_000, 250);
    const s = await waitFor(`the sender finishes: ${sendOut()}`, () => parse(sendOut()), 30_000, 250);
    assert.equal(r.event, 'done', recvOut());
    assert.equal(s.event, 'done', sendOut());
    assert.equal(r.bytes, bytes, 'every byte arrived');
    assert.equal(r.sha256, s.sha256, 'intact');
  })();
  return { done };
}

let net: { coord: Node; m1: Node; m2: Node; r1: ReturnType<NatLab['router']> } | null = null;

test('ladder: a member whose router drops all UDP reaches a NATed member over HTTPS within 15 s; 50 MB both ways', { skip, timeout: 240_000 }, async () => {
  const lab = new NatLab(topo);
  const pub = lab.publicSegment('198.18.160.0/24');
  const coordHost = lab.host(pub);
  const r1 = lab.router(pub, { nat: 'eim', lan: '198.18.161.0/24' });
  const r2 = lab.router(pub, { nat: 'eim', lan: '198.18.162.0/24' });
  r1.blockUdp();
  const coord = await startNode(coordHost, 'coord', []);
  const j = await waitFor('a join command', () => /meshtun up --join (\S+) --token (\S+)/.exec(coord.out()), 5_000);
  const m2 = await startNode(lab.host(r2.lan), 'm2', ['--join', j[1]!, '--token', j[2]!]);
  const t0 = Date.now();
  const m1 = await startNode(lab.host(r1.lan), 'm1', ['--join', j[1]!, '--token', j[2]!]);
  const streams = () => { try { return JSON.stringify((JSON.parse(cli(m1, ['status', '--json'])) as { mesh: { streams: unknown } }).mesh.streams); } catch (e) { return String(e); } };
  let p: PathJson;
  try {
    p = await waitFor('m1 reaches m2 over https', () => {
      const path = pathTo(m1, 'm2');
      return path?.transport === 'https' && pingOk(m1.host.ns, m2.ipv4) ? path : null;
    }, 15_000, 250);
  } catch (e) {
    throw new Error(`${(e as Error).message}: ${JSON.stringify(pathTo(m1, 'm2'))} to coord ${JSON.stringify(pathTo(m1, 'coord'))} ${streams()}\n${m1.out()}`);
  }
  assert.ok(Date.now() - t0 < 15_000 + 3_000, `reached in ${Date.now() - t0} ms from m1's start`);
  assert.equal(p.kind, 'relay');
  assert.equal(p.via, 'coord');
  assert.equal(pathTo(m1, 'coord')?.transport, 'https');
  await Promise.all([transfer(m1, m2, 50 * 1024 * 1024, 5301).done, transfer(m2, m1, 50 * 1024 * 1024, 5302).done]);
  // /metrics: bytes per transport on both sides.
  const metrics = (x: Node) => topo.exec(x.host.ns, 'curl', ['-sS', '--unix-socket', join(x.dir, 'mesh.api'), 'http://meshtun/metrics']);
  const httpsBytes = (text: string, side: string) => Number(new RegExp(`meshtun_transport_bytes_total\\{[^}]*side="${side}",transport="https",direction="rx"\\} (\\d+)`).exec(text)?.[1] ?? 0);
  assert.ok(httpsBytes(metrics(m1), 'member') > 50 * 1024 * 1024, 'the member counts what came over https');
  assert.ok(httpsBytes(metrics(coord), 'relay') > 50 * 1024 * 1024, 'the relay counts what came over https');
  net = { coord, m1, m2, r1 };
});

test('ladder: with the coordinator\'s TLS port blocked too, the TCP rung carries them', { skip, timeout: 120_000 }, async () => {
  assert.ok(net, 'the test before set the network up');
  const { m1, m2, r1 } = net;
  r1.blockTcpPort(7443);
  await waitFor(`m1 reaches m2 over tcp: ${JSON.stringify(pathTo(m1, 'm2'))}\n${m1.out().slice(-3000)}`, () => pathTo(m1, 'm2')?.transport === 'tcp' && pingOk(m1.host.ns, m2.ipv4), 40_000, 500);
  await transfer(m1, m2, 20 * 1024 * 1024, 5303).done;
});

test('ladder: UDP allowed again mid-transfer: the path climbs back to direct UDP within 60 s and the transfer completes', { skip, timeout: 240_000 }, async () => {
  assert.ok(net, 'the tests before set the network up');
  const { m1, m2, r1 } = net;
  const t = transfer(m2, m1, 400 * 1024 * 1024, 5304);
  await new Promise((r) => setTimeout(r, 2_000));
  r1.unblockUdp();
  r1.unblockTcp();
  const t0 = Date.now();
  await waitFor(`m1 goes direct over udp: ${JSON.stringify(pathTo(m1, 'm2'))}\n${m1.out().slice(-3000)}`, () => {
    const a = pathTo(m1, 'm2');
    return a?.kind === 'direct' && a.transport === 'udp';
  }, 60_000, 1_000);
  const took = Date.now() - t0;
  await t.done;
  assert.ok(took <= 60_000, `direct again after ${took} ms`);
});

test('ladder: a non-member\'s CONNECT-UDP stream to the relay is refused and counted', { skip, timeout: 60_000 }, async () => {
  assert.ok(net, 'the tests before set the network up');
  const { coord, m1 } = net;
  const st = () => (JSON.parse(cli(coord, ['status', '--json'])) as { mesh: { streams: { server: { refusedNotMember: number; refusedAuth: number } } } }).mesh.streams.server;
  const before = st();
  const r = topo.exec(m1.host.ns, process.execPath, [NON_MEMBER, `https://${coord.host.addr}:7443`, coord.host.addr, '51820', (JSON.parse(cli(coord, ['status', '--json'])) as { publicKey: string }).publicKey], { allowFail: true });
  assert.match(r, /refused 403/, r);
  await waitFor('counted', () => st().refusedNotMember > before.refusedNotMember, 5_000);
  // And one without any token.
  const r2 = topo.exec(m1.host.ns, process.execPath, [NON_MEMBER, `https://${coord.host.addr}:7443`, coord.host.addr, '51820', '-'], { allowFail: true });
  assert.match(r2, /refused 403/, r2);
  await waitFor('counted', () => st().refusedAuth > before.refusedAuth, 5_000);
});
