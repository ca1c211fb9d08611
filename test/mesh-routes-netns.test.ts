// Mesh routes end to end: a coordinator, a router and a client, each in its own namespace on one
// underlay bridge (198.18.62.0/24). Behind the router: a "LAN host" (198.18.60.2, on a link only
// the router has) and an "internet" host (198.18.70.2, likewise); neither has a route back to the
// overlay, so only the router's NAT makes replies come back. The router advertises
// 198.18.60.0/24 and itself as exit node; the client asks for it as exit node. Nothing is routed
// until `meshtun routes approve`; then the client pings the LAN host, and with the exit route
// approved it reaches the internet host while its underlay path to the coordinator still works.
// Unapproving removes the client's kernel route (and the exit route); the router removes its nft
// table when it stops.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { Topology, sh, waitFor, waitExit, captureOutput, isRoot, pingOk } from './netns.js';

const bin = join(process.cwd(), 'bin/meshtun.js');
const topo = new Topology();
after(() => topo.destroy());


interface Node { ns: string; dir: string; iface: string; ipv4: string; out: () => string; proc: ChildProcess }
interface RouteRow { node: string; advertised: string[]; approved: string[]; pending: string[]; exitNode: boolean }

test('mesh routes: an approved subnet route and exit node work end to end through NAT', { skip: !isRoot && 'needs root', timeout: 60_000 }, async () => {
  const br = topo.ns('br');
  sh('ip', ['-n', br, 'link', 'add', 'br0', 'type', 'bridge']);
  sh('ip', ['-n', br, 'link', 'set', 'br0', 'up']);
  const tag = `${process.pid % 10000}`;
  const names = ['c', 'r', 'k'];
  const nss = names.map((n, i) => {
    const ns = topo.ns(n);
    const l = topo.link(ns, `198.18.62.${i + 1}/24`, br, '');
    sh('ip', ['-n', br, 'link', 'set', l.ifB, 'master', 'br0']);
    return ns;
  });
  const [cNs, rNs, kNs] = nss as [string, string, string];
  const lan = topo.ns('lan');
  topo.link(rNs, '198.18.60.1/24', lan, '198.18.60.2/24');
  const inet = topo.ns('inet');
  topo.link(rNs, '198.18.70.1/24', inet, '198.18.70.2/24');

  const start = (i: number, args: string[]): Node => {
    const dir = mkdtempSync(join(tmpdir(), `mtroutes-${names[i]}-`));
    const iface = `mr${tag}${names[i]}`;
    const p = topo.spawn(nss[i]!, 'env', [`MESHTUN_STATE_DIR=${dir}`, process.execPath, bin, 'up', '--tun', '--interface', iface, ...args]);
    return { ns: nss[i]!, dir, iface, ipv4: '', out: captureOutput(p).text, proc: p };
  };
  const upped = async (n: Node): Promise<Node> => {
    const m = await waitFor(`${n.iface} up: ${n.out()}`, () => /is up: node "[^"]+" (\S+),/.exec(n.out()), 20_000);
    return { ...n, ipv4: m[1]! };
  };
  const cli = (n: Node, args: string[]) => topo.exec(n.ns, 'env', [`MESHTUN_STATE_DIR=${n.dir}`, process.execPath, bin, ...args]);
  const joinArgs = (c: Node) => (JSON.parse(cli(c, ['token', 'create', '--json'])) as { joinCommand: string }).joinCommand.split(' ').slice(2);

  const coord = await upped(start(0, []));
  const router = await upped(start(1, [...joinArgs(coord), '--name', 'router', '--advertise-routes', '198.18.60.0/24', '--advertise-exit-node']));
  const client = await upped(start(2, [...joinArgs(coord), '--name', 'client', '--exit-node', 'router']));
  await waitFor('client reaches the router over the mesh', () => pingOk(kNs, router.ipv4), 20_000, 200);

  const listed = await waitFor('the router\'s routes reach the coordinator', () => {
    const rows = (JSON.parse(cli(coord, ['routes', 'list', '--json'])) as { routes: RouteRow[] }).routes;
    return rows.find((r) => r.node === 'router' && r.advertised.length === 3) ?? null;
  }, 10_000, 200);
  assert.deepEqual([...listed.pending].sort(), ['0.0.0.0/0', '198.18.60.0/24', '::/0']);
  assert.deepEqual(listed.approved, []);
  assert.equal(pingOk(kNs, '198.18.60.2'), false, 'nothing is routed before approval');

  // The subnet route: the LAN host answers through the router (NAT: it has no route to the overlay).
  const approved = JSON.parse(cli(coord, ['routes', 'approve', 'router', '198.18.60.0/24', '--json'])) as { node: RouteRow };
  assert.deepEqual(approved.node.approved, ['198.18.60.0/24']);
  await waitFor(`client pings the LAN host\n${client.out()}\n${router.out()}`, () => pingOk(kNs, '198.18.60.2'), 10_000, 200);
  assert.equal(sh('ip', ['-n', lan, 'route', 'get', router.ipv4], { allowFail: true }).trim(), '', 'the LAN host has no route to the overlay');
  assert.equal(pingOk(kNs, '198.18.70.2'), false, 'the internet host is out of reach before the exit node is approved');

  // The exit node: everything else goes through the router; the underlay and the mesh still work.
  cli(coord, ['routes', 'approve', 'router', 'exit']);
  await waitFor(`client reaches the internet host through the exit node\n${client.out()}`, () => pingOk(kNs, '198.18.70.2'), 10_000, 200);
  assert.match(sh('ip', ['-n', kNs, 'rule', 'show']), /not from all fwmark 0xca6c lookup 51820/);
  assert.match(sh('ip', ['-n', kNs, '-6', 'route', 'show', 'table', '51820']), new RegExp(`default dev ${client.iface}`), '::/0 goes through the exit node too');
  assert.ok(pingOk(kNs, '198.18.62.1'), 'the client still reaches the coordinator on the underlay');
  assert.ok(pingOk(kNs, coord.ipv4), 'and over the mesh');
  const rows = (JSON.parse(cli(coord, ['routes', 'list', '--json'])) as { routes: RouteRow[] }).routes;
  assert.equal(rows.find((r) => r.node === 'router')?.exitNode, true);

  // Unapproving the subnet takes the client's kernel route away.
  cli(coord, ['routes', 'unapprove', 'router', '198.18.60.0/24']);
  await waitFor('client drops the 198.18.60.0/24 route', () => sh('ip', ['-n', kNs, 'route', 'show', '198.18.60.0/24']).trim() === '', 5_000, 100);

  // Withdrawing the exit route restores the client's own routing; approving it again restores the exit.
  cli(coord, ['routes', 'unapprove', 'router', 'exit']);
  await waitFor('the exit route goes away', () => sh('ip', ['-n', kNs, 'route', 'show', 'table', '51820']).trim() === '', 5_000, 100);
  assert.equal(pingOk(kNs, '198.18.70.2'), false, 'no exit node: the internet host is out of reach again');
  cli(coord, ['routes', 'approve', 'router', 'exit']);
  await waitFor('the exit node is back', () => pingOk(kNs, '198.18.70.2'), 10_000, 200);

  // The router removes its NAT table when it stops.
  assert.match(sh('ip', ['netns', 'exec', rNs, 'nft', 'list', 'tables']), /table inet meshtun/);
  process.kill(router.proc.pid!, 'SIGTERM');
  assert.ok(await waitExit(router.proc, 10_000), 'the router stops');
  assert.doesNotMatch(sh('ip', ['netns', 'exec', rNs, 'nft', 'list', 'tables']), /meshtun/);
  void cNs;
});
