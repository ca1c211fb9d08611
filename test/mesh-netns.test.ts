// The mesh end to end: a coordinator (`meshtun up`) and four nodes (one on the userspace stack) (`meshtun up --join ... --token`)
// each in its own namespace on one underlay bridge (198.18.50.0/24). Tokens come from
// `meshtun token create`; every node pings every other's overlay IPv4 and IPv6 address and
// resolves every name (<name>.mesh, <name>.<network>: A and AAAA) at its own DNS responder; the
// coordinator's API lists the nodes; members keep talking while the coordinator is stopped and
// resync when it is back; a restarted member keeps its address; `meshtun nodes remove` cuts a
// node off within 5 s.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { Topology, sh, waitFor, waitExit, captureOutput, isRoot, pingOk, resolveIn } from './netns.js';

const bin = join(process.cwd(), 'bin/meshtun.js');
const topo = new Topology();
after(() => topo.destroy());



interface Node { ns: string; dir: string; iface: string; ipv4: string; ipv6: string; out: () => string; proc: ChildProcess }

test('mesh: a coordinator and four joined nodes (one userspace) ping each other; the mesh outlives a coordinator restart; removal cuts a node off', { skip: !isRoot && 'needs root', timeout: 120_000 }, async () => {
  const br = topo.ns('br');
  sh('ip', ['-n', br, 'link', 'add', 'br0', 'type', 'bridge']);
  sh('ip', ['-n', br, 'link', 'set', 'br0', 'up']);
  const tag = `${process.pid % 10000}`;
  const names = ['c', 'a', 'b', 'd', 'e'];
  const nss = names.map((n, i) => {
    const ns = topo.ns(n);
    const l = topo.link(ns, `198.18.50.${i + 1}/24`, br, '');
    sh('ip', ['-n', br, 'link', 'set', l.ifB, 'master', 'br0']);
    return ns;
  });
  const start = (i: number, args: string[], dir: string): Node => {
    const iface = `mt${tag}${names[i]}`;
    const p = topo.spawn(nss[i]!, 'env', [`MESHTUN_STATE_DIR=${dir}`, process.execPath, bin, 'up', '--interface', iface, ...(args.includes('--userspace') ? [] : ['--tun']), ...args]);
    const out = captureOutput(p);
    return { ns: nss[i]!, dir, iface, ipv4: '', ipv6: '', out: out.text, proc: p };
  };
  const upped = async (n: Node): Promise<Node> => {
    const m = await waitFor(`${n.iface} up: ${n.out()}`, () => /is up(?: \(userspace\))?: node "[^"]+" (\S+), (\S+);/.exec(n.out()), 20_000);
    return { ...n, ipv4: m[1]!, ipv6: m[2]! };
  };
  const cli = (n: Node, args: string[]) => topo.exec(n.ns, 'env', [`MESHTUN_STATE_DIR=${n.dir}`, process.execPath, bin, ...args]);

  const coord = await upped(start(0, [], mkdtempSync(join(tmpdir(), 'mtmesh-c-'))));
  assert.equal(coord.ipv4, '100.64.0.1', 'the coordinator\'s own node gets the pool\'s first address');
  assert.match(coord.out(), /meshtun up --join meshtun:\/\/198\.18\.50\.1:7443\/\S+ --token mtj1_/);

  const joined: Node[] = [];
  for (const i of [1, 2, 3, 4]) {
    const t = JSON.parse(cli(coord, ['token', 'create', '--json'])) as { token: string; joinCommand: string };
    assert.match(t.joinCommand, /^meshtun up --join meshtun:\/\/198\.18\.50\.1:7443\/\S+ --token mtj1_\S+$/);
    const args = t.joinCommand.split(' ').slice(2);
    joined.push(await upped(start(i, [...args, '--name', names[i]!, ...(names[i] === 'e' ? ['--userspace'] : [])], mkdtempSync(join(tmpdir(), `mtmesh-${names[i]}-`)))));
  }
  const all = [coord, ...joined];
  assert.equal(new Set(all.map((n) => n.ipv4)).size, 5, 'distinct addresses');

  // e runs the userspace stack: it has no kernel interface to ping from, but answers pings.
  for (const from of all.slice(0, 4)) {
    for (const to of all) {
      if (from === to) continue;
      await waitFor(`${from.iface} pings ${to.ipv4}\n${from.out()}`, () => pingOk(from.ns, to.ipv4), 20_000, 200);
      await waitFor(`${from.iface} pings ${to.ipv6}`, () => pingOk(from.ns, to.ipv6), 10_000, 200);
    }
  }

  // Names: each kernel-TUN node answers <name>.mesh and <name>.<network> on its overlay address.
  const nodeNames = ['coordinator', 'a', 'b', 'd', 'e'];
  for (const from of all.slice(0, 4)) {
    for (const [k, to] of all.entries()) {
      for (const q of [`${nodeNames[k]}.mesh`, `${nodeNames[k]}.home`]) {
        const got = await waitFor(`${q} from ${from.iface}`, () => {
          const r = resolveIn(from.ns, from.ipv4, q);
          return r && r.a[0] === to.ipv4 && r.aaaa[0] === to.ipv6 ? r : null;
        }, 10_000, 200);
        assert.deepEqual(got, { a: [to.ipv4], aaaa: [to.ipv6] });
      }
    }
  }

  const listed = JSON.parse(cli(coord, ['nodes', 'list', '--json'])) as { nodes: { name: string; ipv4: string }[] };
  assert.deepEqual(listed.nodes.map((n) => n.name).sort(), ['a', 'b', 'coordinator', 'd', 'e']);
  assert.deepEqual(listed.nodes.map((n) => n.ipv4).sort(), all.map((n) => n.ipv4).sort());

  const [a, b, d, e] = joined as [Node, Node, Node, Node];
  const stop = async (n: Node) => {
    process.kill(n.proc.pid!, 'SIGTERM');
    assert.ok(await waitExit(n.proc, 10_000), `${n.iface} stops`);
  };

  // The coordinator stops: the members keep talking; it comes back with the same network and
  // address, and the members resync (the removal below reaches them through the new server).
  await stop(coord);
  assert.ok(pingOk(a.ns, b.ipv4) && pingOk(d.ns, a.ipv4), 'members still talk without the coordinator');
  const coord2 = await upped(start(0, [], coord.dir));
  assert.match(coord2.out(), /network "home" \(net_\S+\) loaded/);
  assert.equal(coord2.ipv4, coord.ipv4);
  await waitFor('a reaches the restarted coordinator', () => pingOk(a.ns, coord2.ipv4), 20_000, 200);

  // A member restarts with its saved membership: same address, back in the mesh.
  await stop(d);
  const d2 = await upped(start(3, [], d.dir));
  assert.match(d2.out(), /member of the network/);
  assert.equal(d2.ipv4, d.ipv4);
  await waitFor('the restarted d reaches a', () => pingOk(d2.ns, a.ipv4), 20_000, 200);

  // Removing b: a and the coordinator drop it, b drops everyone, within 5 s.
  cli(coord2, ['nodes', 'remove', 'b']);
  const t0 = Date.now();
  await waitFor('b cut off from a', () => !pingOk(a.ns, b.ipv4), 5_000, 100);
  await waitFor('b cut off from the coordinator', () => !pingOk(b.ns, coord2.ipv4), 5_000, 100);
  await waitFor('b cut off from d', () => !pingOk(d2.ns, b.ipv4), 5_000, 100);
  assert.ok(Date.now() - t0 < 8_000);
  assert.ok(pingOk(a.ns, coord2.ipv4), 'a still reaches the coordinator');
  assert.ok(pingOk(d2.ns, a.ipv4), 'd still reaches a');
  assert.ok(pingOk(a.ns, e.ipv4), 'a still reaches e (userspace)');
  const after2 = JSON.parse(cli(coord2, ['nodes', 'list', '--json'])) as { nodes: { name: string }[] };
  assert.deepEqual(after2.nodes.map((n) => n.name).sort(), ['a', 'coordinator', 'd', 'e']);
});
