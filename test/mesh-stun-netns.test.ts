// Issue 10.1, endpoint discovery end to end in network namespaces (the NAT lab, test/nat-topology.ts):
//
//   public segment 198.18.150.0/24: the coordinator (.1) and a member "pub" without NAT (.2)
//   router r1 (.3), endpoint-independent NAT (masquerade + `iifname "wan0" ct state new drop`,
//     port-preserving), LAN 198.18.151.0/24: member "eim"
//   router r2 (.4), endpoint-dependent NAT (masquerade fully-random), LAN 198.18.152.0/24:
//     member "sym"
//
// Every node answers STUN on its WireGuard port. "pub" sees its own address from the
// coordinator and reports nat "none", which makes it the members' second STUN server. Then:
//   - "eim" shows the router's WAN address with its own port (51820) as its reflexive address
//     and "endpoint-independent" in `meshtun status --json` (mesh.nat), and the coordinator's
//     `meshtun nodes list --json` lists that address first among eim's endpoints;
//   - "sym" sees two reflexive addresses (a random port per server) and "endpoint-dependent";
//   - the STUN counters are in the status and in /metrics (meshtun_stun_events_total).
// Userspace nodes; needs root and nft (skipped otherwise).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'node:http';
import { spawnSync, type ChildProcess } from 'node:child_process';
import { Topology, sh, waitFor, captureOutput, isRoot } from './netns.js';
import { NatLab, type Host } from './nat-topology.js';

const bin = join(process.cwd(), 'bin/meshtun.js');
const topo = new Topology();
after(() => topo.destroy());
const haveNft = sh('sh', ['-c', 'command -v nft || true']).trim() !== '';
const skip = isRoot && haveNft ? false : 'needs root and nft';

interface Node { name: string; host: Host; dir: string; proc: ChildProcess; out: () => string }
interface NatStatus {
  nat: string; mapping: string; reflexive: string[]; servers: string[]; lastProbe: number | null; probes: number;
  stunServer: Record<string, number>; stunClient: Record<string, number>;
}
interface NodeJson { name: string; endpoints: string[]; nat: string }

function start(name: string, host: Host, args: string[]): Node {
  const dir = mkdtempSync(join(tmpdir(), `mtstun-${name}-`));
  const proc = topo.spawn(host.ns, 'env', [`MESHTUN_STATE_DIR=${dir}`, process.execPath, bin, 'up', '--userspace', '--socks5', 'off', '--http-proxy', 'off', '--name', name, ...args]);
  return { name, host, dir, proc, out: captureOutput(proc).text };
}

async function up(n: Node): Promise<Node> {
  await waitFor(`${n.name} up: ${n.out()}`, () => /is up \(userspace\)/.test(n.out()), 20_000);
  return n;
}

function cli(n: Node, args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync('ip', ['netns', 'exec', n.host.ns, 'env', `MESHTUN_STATE_DIR=${n.dir}`, process.execPath, bin, ...args], { encoding: 'utf8', timeout: 20_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

function natOf(n: Node): NatStatus | null {
  const r = cli(n, ['status', '--json']);
  if (r.status !== 0) return null;
  return (JSON.parse(r.stdout) as { mesh: { nat?: NatStatus } }).mesh.nat ?? null;
}

/** GET /metrics on the node's API socket (a Unix socket: reachable from outside its namespace). */
function metrics(n: Node): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath: join(n.dir, 'mesh.api'), path: '/metrics' }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => { body += c.toString(); });
      res.on('end', () => resolve(body));
    });
    req.on('error', reject);
    req.end();
  });
}

test('STUN: reflexive address and mapping behind an endpoint-independent and an endpoint-dependent NAT', { skip, timeout: 120_000 }, async () => {
  const lab = new NatLab(topo);
  const pub = lab.publicSegment('198.18.150.0/24');
  const hc = lab.host(pub);
  const hp = lab.host(pub);
  const r1 = lab.router(pub, { nat: 'eim', lan: '198.18.151.0/24' });
  const r2 = lab.router(pub, { nat: 'symmetric', lan: '198.18.152.0/24' });
  const he = lab.host(r1.lan);
  const hs = lab.host(r2.lan);
  const coord = await up(start('coord', hc, []));
  const joinArgs = () => (JSON.parse(cli(coord, ['token', 'create', '--json']).stdout) as { joinCommand: string }).joinCommand.split(' ').slice(2);

  // The member on the public segment sees its own address from the coordinator: no NAT.
  const p = await up(start('pub', hp, joinArgs()));
  const pubNat = await waitFor(`pub finds it has no NAT\n${p.out()}`, () => {
    const s = natOf(p);
    return s && s.nat === 'none' ? s : null;
  }, 20_000, 300);
  assert.deepEqual(pubNat.reflexive, []);
  assert.ok(pubNat.servers.includes(`${hc.addr}:51820`), `pub asked the coordinator: ${JSON.stringify(pubNat.servers)}`);
  const nodesJson = () => (JSON.parse(cli(coord, ['nodes', 'list', '--json']).stdout) as { nodes: NodeJson[] }).nodes;
  await waitFor('the coordinator knows pub has no NAT', () => nodesJson().find((n) => n.name === 'pub')?.nat === 'none', 10_000, 300);

  const e = await up(start('eim', he, joinArgs()));
  const s = await up(start('sym', hs, joinArgs()));

  // Behind the endpoint-independent NAT: the router's WAN address, the port kept, both servers agree.
  const wanE = `${r1.wanAddr}:51820`;
  let last: NatStatus | null = null;
  const eNat = await waitFor(`eim: endpoint-independent, reflexive ${wanE}: ${JSON.stringify(last)}\n${e.out()}`, () => {
    last = natOf(e);
    return last && last.mapping === 'endpoint-independent' && last.reflexive.includes(wanE) ? last : null;
  }, 30_000, 300);
  assert.equal(eNat.nat, 'endpoint-independent');
  assert.deepEqual(eNat.reflexive, [wanE]);
  assert.deepEqual([...eNat.servers].sort(), [`${hc.addr}:51820`, `${hp.addr}:51820`], 'the coordinator and pub');
  assert.ok(typeof eNat.lastProbe === 'number' && eNat.lastProbe > Date.now() - 120_000);
  assert.ok(eNat.stunClient.responses! >= 2);

  // Behind the fully-random NAT: each server saw another port.
  const sNat = await waitFor(`sym: endpoint-dependent: ${JSON.stringify(last)}\n${s.out()}`, () => {
    last = natOf(s);
    return last && last.mapping === 'endpoint-dependent' ? last : null;
  }, 30_000, 300);
  assert.equal(sNat.nat, 'endpoint-dependent');
  assert.equal(sNat.reflexive.length, 2);
  for (const r of sNat.reflexive) assert.ok(r.startsWith(`${r2.wanAddr}:`), r);

  // The coordinator has eim's reflexive address among its endpoints, first, and both NAT types.
  const nodes = await waitFor('the coordinator lists the reflexive address and NAT types', () => {
    const list = nodesJson();
    const en = list.find((n) => n.name === 'eim');
    const sn = list.find((n) => n.name === 'sym');
    return en?.endpoints.includes(wanE) && en.nat === 'endpoint-independent' && sn?.nat === 'endpoint-dependent' ? list : null;
  }, 15_000, 300);
  const en = nodes.find((n) => n.name === 'eim')!;
  assert.equal(en.endpoints[0], wanE, `reflexive first: ${JSON.stringify(en.endpoints)}`);
  assert.ok(en.endpoints.includes(`${he.addr}:51820`), 'the local address too');
  const sn = nodes.find((n) => n.name === 'sym')!;
  assert.equal(sn.endpoints[0], `${hs.addr}:51820`, `an endpoint-dependent mapping's addresses go after the local one: ${JSON.stringify(sn.endpoints)}`);

  // The servers counted what they answered; /metrics has the families.
  const cNat = natOf(coord)!;
  assert.ok(cNat.stunServer.responses! >= 3, JSON.stringify(cNat.stunServer));
  assert.equal(cNat.stunServer.malformed, 0);
  assert.ok(natOf(p)!.stunServer.responses! >= 2, 'pub served as the second server');
  const text = await metrics(e);
  assert.match(text, /^meshtun_stun_events_total\{interface="[^"]+",side="client",event="responses"\} [1-9]\d*$/m);
  assert.match(text, /^meshtun_nat_type\{interface="[^"]+",nat="endpoint-independent"\} 1$/m);
  const ctext = await metrics(coord);
  assert.match(ctext, /^meshtun_stun_events_total\{interface="[^"]+",side="server",event="requests"\} [1-9]\d*$/m);
  // The human-readable status says it too.
  assert.match(cli(e, ['status']).stdout, new RegExp(`NAT: endpoint-independent, reflexive address ${wanE.replace(/\./g, '\\.')}`));
});
