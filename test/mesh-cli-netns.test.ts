// The mesh CLI against running nodes: a coordinator and two members (one on a kernel TUN, one on
// the userspace stack), each in its own namespace on one bridge (198.18.57.0/24). `meshtun peers
// --json` lists both peers online; `meshtun ping <name>` gets its replies over IPv4 and IPv6, from
// the kernel-TUN member and from the userspace one; `meshtun traceroute <name>` reaches a direct
// peer in one hop; `meshtun status --json` carries the mesh block; an unknown name fails with a
// message naming the known nodes.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Topology, sh, waitFor, captureOutput, isRoot } from './netns.js';

const bin = join(process.cwd(), 'bin/meshtun.js');
const topo = new Topology();
after(() => topo.destroy());

interface Node { name: string; ns: string; dir: string; iface: string; ipv4: string; ipv6: string }
interface Run { status: number | null; stdout: string; stderr: string }

interface PeersJson { peers: { name: string; online: boolean; path: { kind: string }; endpoint: string | null }[] }
interface PingJson { name: string; address: string; source: string; results: { kind: string; from: string }[]; summary: { sent: number; received: number } }
interface TraceJson { reached: boolean; hops: { hop: number; address: string; name: string; reached: boolean; rtts: (number | null)[] }[] }

test('mesh cli: peers, ping and traceroute by name (v4, v6, userspace), status, unknown names', { skip: !isRoot && 'needs root', timeout: 90_000 }, async () => {
  const br = topo.ns('br');
  sh('ip', ['-n', br, 'link', 'add', 'br0', 'type', 'bridge']);
  sh('ip', ['-n', br, 'link', 'set', 'br0', 'up']);
  const tag = `${process.pid % 10000}`;
  const spec = [['coordinator', 'c'], ['a', 'a'], ['u', 'u']] as const;
  const nss = spec.map(([, short], i) => {
    const ns = topo.ns(short);
    const l = topo.link(ns, `198.18.57.${i + 1}/24`, br, '');
    sh('ip', ['-n', br, 'link', 'set', l.ifB, 'master', 'br0']);
    return ns;
  });
  const start = async (i: number, args: string[]): Promise<Node> => {
    const [name, short] = spec[i]!;
    const dir = mkdtempSync(join(tmpdir(), `mtcli-${short}-`));
    const iface = `mc${tag}${short}`;
    const userspace = args.includes('--userspace');
    const p = topo.spawn(nss[i]!, 'env', [`MESHTUN_STATE_DIR=${dir}`, process.execPath, bin, 'up', '--interface', iface, ...(userspace ? [] : ['--tun']), ...args]);
    const out = captureOutput(p);
    const m = await waitFor(`${iface} up: ${out.text()}`, () => /is up(?: \(userspace\))?: node "[^"]+" (\S+), (\S+);/.exec(out.text()), 20_000);
    return { name, ns: nss[i]!, dir, iface, ipv4: m[1]!, ipv6: m[2]! };
  };
  const run = (n: Node, args: string[]): Run => {
    const r = spawnSync('ip', ['netns', 'exec', n.ns, 'env', `MESHTUN_STATE_DIR=${n.dir}`, process.execPath, bin, ...args], { encoding: 'utf8', timeout: 30_000 });
    return { status: r.status, stdout: r.stdout, stderr: r.stderr };
  };
  const json = <T>(n: Node, args: string[]): T => {
    const r = run(n, [...args, '--json']);
    assert.equal(r.status, 0, `meshtun ${args.join(' ')} on ${n.name}: ${r.stderr}${r.stdout}`);
    return JSON.parse(r.stdout) as T;
  };

  const coord = await start(0, []);
  const joinArgs = () => (JSON.parse(run(coord, ['token', 'create', '--json']).stdout) as { joinCommand: string }).joinCommand.split(' ').slice(2);
  const a = await start(1, [...joinArgs(), '--name', 'a']);
  const u = await start(2, [...joinArgs(), '--name', 'u', '--userspace']);

  // Both peers of a come online (keepalives right after the map arrives).
  let last: Run | null = null;
  const peers = await waitFor('a sees both peers online', () => {
    const r = last = run(a, ['peers', '--json']);
    if (r.status !== 0) return null;
    const p = JSON.parse(r.stdout) as PeersJson;
    return p.peers.length === 2 && p.peers.every((x) => x.online) ? p : null;
  }, 20_000, 300).catch((e: Error) => { throw new Error(`${e.message}: ${JSON.stringify(last)}`); });
  assert.deepEqual(peers.peers.map((p) => p.name).sort(), ['coordinator', 'u']);
  for (const p of peers.peers) {
    assert.equal(p.path.kind, 'direct');
    assert.match(p.endpoint ?? '', /^198\.18\.57\.\d:\d+$/);
  }
  const table = run(a, ['peers']);
  assert.equal(table.status, 0);
  assert.match(table.stdout, /^u\s+100\.\S+\s+fd\S+\s+direct\s+udp\s+198\.18\.57\.3:\d+\s.*online$/m);

  // Ping by name over v4 and v6, from the kernel-TUN member and from the userspace one.
  for (const [from, to, fam] of [[a, u, '-4'], [a, u, '-6'], [u, a, '-4'], [u, coord, '-6'], [coord, u, '-4']] as const) {
    const r = json<PingJson>(from, ['ping', to.name, '-c', '3', '-i', '0.2', fam]);
    assert.equal(r.summary.sent, 3);
    if (r.summary.received !== 3) {
      const counters = (n: Node) => JSON.stringify(Object.fromEntries(Object.entries((JSON.parse(run(n, ['status', '--json']).stdout) as { counters: Record<string, number> }).counters).filter(([, v]) => v)));
      console.log(`# DIAG ${from.name} ${counters(from)}\n# DIAG ${to.name} ${counters(to)}\n# peers ${run(from, ['peers', '--json']).stdout}`);
    }
    assert.equal(r.summary.received, 3, `${from.name} -> ${to.name} ${fam}: ${JSON.stringify(r)}`);
    assert.equal(r.address, fam === '-6' ? to.ipv6 : to.ipv4);
    assert.equal(r.source, fam === '-6' ? from.ipv6 : from.ipv4);
    assert.ok(r.results.every((x) => x.kind === 'reply' && x.from === r.address));
  }
  const text = run(a, ['ping', `${u.name}.mesh`, '-c', '2', '-i', '0.2']);
  assert.equal(text.status, 0, text.stderr);
  assert.match(text.stdout, new RegExp(`^64 bytes from u \\(${u.ipv4.replace(/\./g, '\\.')}\\): icmp_seq=1 ttl=64 time=[\\d.]+ ms$`, 'm'));
  assert.match(text.stdout, /2 packets transmitted, 2 received, 0% packet loss/);

  // Traceroute to a direct peer: one hop, the peer itself.
  const tr = json<TraceJson>(a, ['traceroute', 'u']);
  assert.equal(tr.reached, true);
  assert.deepEqual(tr.hops.map((h) => [h.hop, h.address, h.name, h.reached]), [[1, u.ipv4, 'u', true]]);
  const tr6 = json<TraceJson>(u, ['traceroute', 'a', '-6']);
  assert.deepEqual(tr6.hops.map((h) => [h.hop, h.address, h.reached]), [[1, a.ipv6, true]]);
  const trText = run(a, ['traceroute', 'coordinator']);
  assert.match(trText.stdout, /^ 1 {2}coordinator \(100\.\S+\) {2}[\d.]+ ms {2}[\d.]+ ms {2}[\d.]+ ms$/m);

  // Status: the mesh block, and the peers with their paths.
  const st = json<{ interface: string; mesh: { role: string; network: string; node: string; ipv4: string; peers: { online: number; total: number } }; meshPeers: unknown[] }>(a, ['status']);
  assert.equal(st.interface, a.iface);
  assert.deepEqual([st.mesh.role, st.mesh.network, st.mesh.node, st.mesh.ipv4, st.mesh.peers.total], ['member', 'home', 'a', a.ipv4, 2]);
  assert.equal(st.meshPeers.length, 2);
  const cst = json<{ mesh: { role: string } }>(coord, ['status']);
  assert.equal(cst.mesh.role, 'coordinator');
  const stText = run(u, ['status']);
  assert.match(stText.stdout, /mesh node u in network "home" \(member\)/);
  assert.match(stText.stdout, /peer a \(.*\): online, direct, endpoint 198\.18\.57\.2:\d+/);

  // Mistakes: an unknown name names the known nodes; an address nobody routes has no route.
  const bad = run(a, ['ping', 'nosuch', '-c', '1']);
  assert.notEqual(bad.status, 0);
  assert.match(bad.stderr, /unknown node "nosuch" in network "home"/);
  assert.match(bad.stderr, /known nodes: coordinator, u/);
  const badTrace = run(u, ['traceroute', 'nosuch.mesh']);
  assert.notEqual(badTrace.status, 0);
  assert.match(badTrace.stderr, /known nodes: a, coordinator/);
  const noRoute = run(a, ['ping', '100.64.255.254', '-c', '1']);
  assert.notEqual(noRoute.status, 0);
  assert.match(noRoute.stderr, /no route to 100\.64\.255\.254/);
});
