// Two nodes on one host (issue 9, item 7). Network namespaces share /var/run, so a second kernel-TUN
// node used to fail on /var/run/wireguard/meshtun0.sock; two networks in one namespace used to
// fail on UDP 51820 and TCP 7443. Now a node that was not told a name or port takes the next free
// one, and a userspace node keeps its sockets in its state directory (it has no kernel interface).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Topology, waitFor, waitExit, captureOutput, isRoot, pingOk } from './netns.js';

const bin = join(process.cwd(), 'bin/meshtun.js');
const topo = new Topology();
after(() => topo.destroy());

function meshtun(ns: string, dir: string, args: string[]) {
  const proc = topo.spawn(ns, 'env', [`MESHTUN_STATE_DIR=${dir}`, process.execPath, bin, ...args]);
  return { proc, out: captureOutput(proc).text };
}

const UP = /(\S+) is up(?: \(userspace\))?: node "[^"]+" (\S+), \S+; listening on UDP (\d+)/;

test('a second kernel-TUN node on this host (another namespace) takes the next free interface name', { skip: !isRoot && 'needs root (kernel TUN in namespaces)', timeout: 60_000 }, async () => {
  const n1 = topo.ns('t1');
  const n2 = topo.ns('t2');
  topo.link(n1, '198.18.71.1/24', n2, '198.18.71.2/24');
  const c = meshtun(n1, mkdtempSync(join(tmpdir(), 'mttwo-c-')), ['up', '--tun']);
  const cu = await waitFor(`the first node is up: ${c.out()}`, () => UP.exec(c.out()), 20_000);
  const joinCmd = await waitFor('a join command', () => /meshtun up --join (\S+) --token (\S+)/.exec(c.out()), 5_000);
  const m = meshtun(n2, mkdtempSync(join(tmpdir(), 'mttwo-m-')), ['up', '--tun', '--join', joinCmd[1]!, '--token', joinCmd[2]!]);
  const mu = await waitFor(`the second node is up: ${m.out()}`, () => UP.exec(m.out()), 20_000);
  assert.notEqual(mu[1], cu[1], 'another interface name');
  assert.match(mu[1]!, /^meshtun\d+$/);
  assert.ok(existsSync(`/var/run/wireguard/${mu[1]}.sock`), 'its own UAPI socket');
  await waitFor('the second node pings the first through the mesh', () => pingOk(n2, cu[2]!), 20_000, 200);
});

test('two userspace networks in one namespace: the next free UDP and control ports, sockets in each state directory', { skip: !isRoot && 'needs root (network namespaces)', timeout: 60_000 }, async () => {
  const ns = topo.ns('us');
  const d1 = mkdtempSync(join(tmpdir(), 'mttwo-u1-'));
  const d2 = mkdtempSync(join(tmpdir(), 'mttwo-u2-'));
  const a = meshtun(ns, d1, ['up', '--network', 'one', '--socks5', 'off', '--http-proxy', 'off']);
  const au = await waitFor(`the first network is up: ${a.out()}`, () => UP.exec(a.out()), 20_000);
  const b = meshtun(ns, d2, ['up', '--network', 'two', '--socks5', 'off', '--http-proxy', 'off']);
  const bu = await waitFor(`the second network is up: ${b.out()}`, () => UP.exec(b.out()), 20_000);
  assert.equal(au[3], '51820');
  assert.notEqual(bu[3], au[3], 'another UDP port');
  const ctl = (out: string) => /control channel on \S+:(\d+)/.exec(out)?.[1];
  assert.equal(ctl(a.out()), '7443');
  assert.notEqual(ctl(b.out()), '7443', 'another control port');
  for (const [d, name] of [[d1, au[1]], [d2, bu[1]]] as const) {
    assert.ok(existsSync(join(d, 'run', `${name}.sock`)), `the UAPI socket is in ${d}/run`);
    assert.ok(existsSync(join(d, 'run', `${name}.pid`)), 'so is the pid file');
  }
  // `meshtun down` finds the node of its state directory.
  topo.exec(ns, 'env', [`MESHTUN_STATE_DIR=${d2}`, process.execPath, bin, 'down', bu[1]!]);
  assert.ok(await waitExit(b.proc, 10_000), 'the second node stops');
  assert.equal(a.proc.exitCode, null, 'the first keeps running');
});
