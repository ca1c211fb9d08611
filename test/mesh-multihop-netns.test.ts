// Multi-hop end to end: a coordinator and nodes a, b, c on one underlay bridge (198.18.61.0/24),
// and a fourth node d whose only link is to b (198.19.61.0/24). b lets d reach the coordinator's
// control port (TCP 7443, masqueraded) and nothing else, so d's WireGuard traffic can reach only b.
// Joined with tokens, every node finds that it cannot reach d (or d them) directly, the coordinator
// names b as the relay, and then:
//   - every node pings every other, d included (IPv4 and IPv6), by address and by <name>.mesh
//     through its own DNS responder (A and AAAA), and names resolve on d;
//   - `traceroute` from a to d shows b's overlay address as hop 1 and d as hop 2;
//   - `meshtun traceroute d` on a shows b, then d;
//   - the coordinator stopped and restarted (with no memory of the paths): a and d keep talking;
//   - b relays (its relay counters move) but never sees a packet between a and d on its TUN
//     (tcpdump there stays empty), so it never had the end-to-end plaintext; the src/mesh
//     relay unit test checks that b holds no keypair of the a-d session.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { Topology, sh, waitFor, waitExit, captureOutput, isRoot, pingOk, resolveIn } from './netns.js';

const bin = join(process.cwd(), 'bin/meshtun.js');
const topo = new Topology();
after(() => topo.destroy());



interface Node { name: string; ns: string; dir: string; iface: string; ipv4: string; ipv6: string; out: () => string; proc: ChildProcess }

test('multi-hop: a node reachable only through b is reached through b, end to end; traceroute shows b', { skip: !isRoot && 'needs root', timeout: 150_000 }, async () => {
  const br = topo.ns('br');
  sh('ip', ['-n', br, 'link', 'add', 'br0', 'type', 'bridge']);
  sh('ip', ['-n', br, 'link', 'set', 'br0', 'up']);
  const tag = `${process.pid % 10000}`;
  const onBridge = ['c0', 'a', 'b', 'c'];
  const nss = new Map<string, string>();
  for (const [i, n] of onBridge.entries()) {
    const ns = topo.ns(n);
    const l = topo.link(ns, `198.18.61.${i + 1}/24`, br, '');
    sh('ip', ['-n', br, 'link', 'set', l.ifB, 'master', 'br0']);
    nss.set(n, ns);
  }
  // d hangs off b only; b forwards d's TCP to the coordinator's control port (masqueraded) and
  // drops everything else d sends onward.
  const nsB = nss.get('b')!;
  const nsD = topo.ns('d');
  nss.set('d', nsD);
  const bl = topo.link(nsB, '198.19.61.1/24', nsD, '198.19.61.2/24');
  sh('ip', ['-n', nsD, 'route', 'add', 'default', 'via', '198.19.61.1']);
  sh('ip', ['netns', 'exec', nsB, 'sysctl', '-qw', 'net.ipv4.ip_forward=1']);
  topo.exec(nsB, 'nft', ['-f', '-'], {
    input: `table inet mhtest {
      chain forward_d { type filter hook forward priority 0; policy drop;
        ct state established,related accept
        iifname "${bl.ifA}" ip daddr 198.18.61.1 tcp dport 7443 accept
      }
      chain nat_d { type nat hook postrouting priority 100; ip saddr 198.19.61.0/24 oifname != "${bl.ifA}" masquerade; }
    }\n`,
  });

  const start = (name: string, args: string[], dir: string): Node => {
    const iface = `mh${tag}${name}`.slice(0, 15);
    const p = topo.spawn(nss.get(name)!, 'env', [`MESHTUN_STATE_DIR=${dir}`, process.execPath, bin, 'up', '--tun', '--interface', iface, ...args]);
    const out = captureOutput(p);
    return { name, ns: nss.get(name)!, dir, iface, ipv4: '', ipv6: '', out: out.text, proc: p };
  };
  const upped = async (n: Node): Promise<Node> => {
    const m = await waitFor(`${n.iface} up: ${n.out()}`, () => /is up(?: \(userspace\))?: node "[^"]+" (\S+), (\S+);/.exec(n.out()), 30_000);
    return { ...n, ipv4: m[1]!, ipv6: m[2]! };
  };
  const cli = (n: Node, args: string[], allowFail = false) => topo.exec(n.ns, 'env', [`MESHTUN_STATE_DIR=${n.dir}`, process.execPath, bin, ...args], { allowFail });

  const coord = await upped(start('c0', ['--name', 'coord'], mkdtempSync(join(tmpdir(), 'mtmh-c0-'))));
  const nodes: Record<string, Node> = { coord };
  for (const name of ['a', 'b', 'c', 'd']) {
    const t = JSON.parse(cli(coord, ['token', 'create', '--json'])) as { joinCommand: string };
    nodes[name] = await upped(start(name, [...t.joinCommand.split(' ').slice(2), '--name', name], mkdtempSync(join(tmpdir(), `mtmh-${name}-`))));
  }
  const { a, b, c, d } = nodes as Record<'a' | 'b' | 'c' | 'd', Node>;
  const all = [coord, a, b, c, d];

  // Everyone reaches everyone; d only through b.
  for (const from of all) {
    for (const to of all) {
      if (from === to) continue;
      await waitFor(`${from.name} pings ${to.name} ${to.ipv4}\n${from.out()}\n${to.out()}`, () => pingOk(from.ns, to.ipv4), 45_000, 300);
      await waitFor(`${from.name} pings ${to.name} ${to.ipv6}`, () => pingOk(from.ns, to.ipv6), 15_000, 300);
    }
  }
  // By name, through each node's own resolver: `ip netns exec` mounts /etc/netns/<ns>/resolv.conf
  // over /etc/resolv.conf, pointing ping's lookups at the node's DNS responder (A for -4, AAAA for -6).
  for (const n of all) {
    mkdirSync(`/etc/netns/${n.ns}`, { recursive: true });
    writeFileSync(`/etc/netns/${n.ns}/resolv.conf`, `nameserver ${n.ipv4}\n`);
    topo.onDestroy(() => rmSync(`/etc/netns/${n.ns}`, { recursive: true, force: true }));
  }
  for (const from of all) {
    for (const to of all) {
      if (from === to) continue;
      for (const family of [4, 6] as const) {
        const name = to === coord ? 'coord' : to.name;
        await waitFor(`${from.name} pings ${name}.mesh -${family}`, () => pingOk(from.ns, `${name}.mesh`, family), 10_000, 300);
      }
    }
  }
  for (const [name, to] of Object.entries(nodes)) {
    const r = await waitFor(`${name}.mesh on d`, () => {
      const x = resolveIn(d.ns, d.ipv4, `${name}.mesh`);
      return x && x.a[0] === to.ipv4 ? x : null;
    }, 10_000, 300);
    assert.deepEqual(r, { a: [to.ipv4], aaaa: [to.ipv6] });
  }

  // Packet size: a relayed path carries 1376-byte packets unfragmented (1420 less the 12-byte
  // frame header and the second 32-byte WireGuard header). A full-size IPv4 packet with DF gets
  // "fragmentation needed, mtu 1376" back; without DF it crosses (fragmented on the underlay).
  // IPv6 gets Packet Too Big; the kernel then fragments at the source and later pings pass.
  const ping = (args: string[]) => spawnSync('ip', ['netns', 'exec', a.ns, 'ping', ...args], { encoding: 'utf8' });
  const df = ping(['-4', '-c', '1', '-W', '2', '-M', 'do', '-s', '1392', d.ipv4]);
  assert.notEqual(df.status, 0);
  assert.match(df.stdout + df.stderr, /mtu ?= ?1376/i, 'DF ping learns the relayed path MTU');
  const noDf = ping(['-4', '-c', '2', '-W', '2', '-M', 'dont', '-s', '1392', d.ipv4]);
  assert.equal(noDf.status, 0, `full-size ping without DF a -> d: ${noDf.stdout}${noDf.stderr}`);
  const fits = ping(['-4', '-c', '2', '-W', '2', '-M', 'do', '-s', `${1376 - 28}`, d.ipv4]);
  assert.equal(fits.status, 0, `1376-byte DF ping: ${fits.stdout}${fits.stderr}`);
  const v6 = ping(['-6', '-c', '3', '-i', '0.3', '-W', '2', '-s', '1372', d.ipv6]);
  assert.equal(v6.status, 0, `full-size ping -6 a -> d: ${v6.stdout}${v6.stderr}`);

  // a's peer d goes through b.
  const peers = JSON.parse(cli(a, ['peers', '--json'])) as { peers: { name: string; path?: { kind: string; via?: string } }[] };
  const pd = peers.peers.find((p) => p.name === 'd');
  assert.equal(pd?.path?.kind, 'relay', JSON.stringify(peers));
  assert.equal(pd?.path?.via, 'b');

  // The system traceroute from a: hop 1 is b's overlay address, hop 2 is d.
  const tr = topo.exec(a.ns, 'traceroute', ['-n', '-q', '1', '-w', '2', '-m', '5', d.ipv4]);
  const hops = tr.split('\n').slice(1).map((l) => l.trim().split(/\s+/)[1]);
  assert.deepEqual(hops.slice(0, 2), [b.ipv4, d.ipv4], tr);
  const tr6 = topo.exec(a.ns, 'traceroute', ['-6', '-n', '-q', '1', '-w', '2', '-m', '5', d.ipv6]);
  assert.deepEqual(tr6.split('\n').slice(1).map((l) => l.trim().split(/\s+/)[1]).slice(0, 2), [b.ipv6, d.ipv6], tr6);
  // And meshtun's own.
  const mtr = JSON.parse(cli(a, ['traceroute', 'd', '--json'])) as { hops: { hop: number; address: string | null; reached?: boolean }[] };
  assert.deepEqual(mtr.hops.map((h) => h.address), [b.ipv4, d.ipv4], JSON.stringify(mtr));

  // b relays but its TUN never carries a packet between a and d.
  const dump = spawn('ip', ['netns', 'exec', b.ns, 'tcpdump', '-n', '-l', '-i', b.iface, `host ${a.ipv4} and host ${d.ipv4}`], { stdio: ['ignore', 'pipe', 'pipe'] });
  let seen = '';
  dump.stdout.on('data', (x: Buffer) => { seen += x.toString(); });
  let dumpErr = '';
  dump.stderr.on('data', (x: Buffer) => { dumpErr += x.toString(); });
  try {
    await waitFor('tcpdump listening', () => /listening on/.test(dumpErr), 10_000);
    const before = JSON.parse(cli(b, ['status', '--json'])) as { mesh?: { relay?: { forwarded: number } } };
    for (let i = 0; i < 5; i++) assert.ok(pingOk(a.ns, d.ipv4));
    const afterS = JSON.parse(cli(b, ['status', '--json'])) as { mesh?: { relay?: { forwarded: number } } };
    assert.ok((afterS.mesh?.relay?.forwarded ?? 0) >= (before.mesh?.relay?.forwarded ?? 0) + 10, `b relayed: ${JSON.stringify(afterS.mesh)}`);
  } finally {
    dump.kill('SIGINT');
    await new Promise((r) => setTimeout(r, 300));
  }
  assert.equal(seen.trim(), '', 'b\'s TUN saw no a-d packet');
  // The relay's counters are in b's Prometheus metrics.
  const metrics = topo.exec(b.ns, 'curl', ['-sS', '--unix-socket', join(b.dir, 'mesh.api'), 'http://meshtun/metrics']);
  const fwd = /meshtun_relay_events_total\{[^}]*event="forwarded"\} (\d+)/.exec(metrics);
  assert.ok(fwd && Number(fwd[1]) > 0, metrics.split('\n').filter((l) => l.includes('relay')).join('\n'));
  const received = /meshtun_socket_events_total\{[^}]*event="received"\} (\d+)/.exec(metrics);
  assert.ok(received && Number(received[1]) > 0, 'the UDP socket counters are in the metrics too');

  // The coordinator stops: relayed pairs keep talking (b relays without it). It restarts with an
  // empty path table and pushes maps without relays until nodes report again: d stays reachable.
  process.kill(coord.proc.pid!, 'SIGTERM');
  assert.ok(await waitExit(coord.proc, 10_000), 'the coordinator stops');
  assert.ok(pingOk(a.ns, d.ipv4) && pingOk(d.ns, c.ipv6), 'relayed pairs talk without the coordinator');
  const coord2 = await upped(start('c0', [], coord.dir));
  await waitFor('d reaches the restarted coordinator', () => pingOk(d.ns, coord2.ipv4), 30_000, 300);
  // An outage would fail several pings in a row; one lost ping on a busy machine is not one.
  const t0 = Date.now();
  let tries = 0;
  let lost = 0;
  while (Date.now() - t0 < 8_000) {
    tries++;
    if (!pingOk(a.ns, d.ipv4)) lost++;
    await new Promise((r) => setTimeout(r, 200));
  }
  if (lost > 2) {
    const st = (n: Node) => cli(n, ['peers', '--json']);
    console.log(`# DIAG a peers ${st(a)}\n# DIAG d peers ${st(d)}\n# DIAG b status ${cli(b, ['status', '--json'])}\n# a out ${a.out().slice(-3000)}\n# d out ${d.out().slice(-3000)}\n# b out ${b.out().slice(-3000)}`);
  }
  assert.ok(lost <= 2, `a reaches d all along after the coordinator restart (${lost} of ${tries} pings lost)`);
});
