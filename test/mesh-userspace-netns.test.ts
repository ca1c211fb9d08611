// A userspace mesh node end to end. A coordinator (--tun), a member started with no mode flag
// (the userspace stack is the default) and a kernel-TUN member, each in its own namespace on one
// underlay bridge (198.19.4.0/24); behind the userspace member a LAN namespace (198.19.5.0/24) that
// only it can reach. Checked:
//   - the default member is userspace, and prints its SOCKS5 / HTTP proxy addresses;
//   - curl through its SOCKS5 and HTTP proxies fetches a page from a server on the TUN member's
//     overlay address by NAME (<name>.mesh, <name>.<network>);
//   - dig from the TUN member at the userspace member's overlay IPv4 and IPv6 addresses answers
//     <name>.mesh A and AAAA (the DNS responder inside the userspace stack);
//   - the userspace member advertises 198.19.5.0/24 (auto-approved by the coordinator) and the TUN
//     member reaches a TCP server and a UDP echo on the LAN through it (the userspace router relays
//     with host sockets; the LAN host needs no route back to the overlay); ping is answered;
//   - it is also an exit node (auto-approved) and the TUN member, started with --exit-node, reaches
//     an "internet" host behind it (198.19.7.2, outside the advertised subnet);
//   - the other way round: the TUN member advertises 198.19.6.0/24 (its own LAN, kernel NAT) and
//     the userspace member reaches a server there through its SOCKS5 proxy (routes it uses).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Topology, sh, waitFor, captureOutput, isRoot } from './netns.js';

const bin = join(process.cwd(), 'bin/meshtun.js');
const topo = new Topology();
after(() => topo.destroy());

interface Node { ns: string; dir: string; iface: string; ipv4: string; ipv6: string; out: () => string; proc: ChildProcess }

/** A TCP (HTTP) server answering `hello <host>` and a UDP echo ("echo:" + datagram) on host:port / port+1. */
const SERVERS = `
const [host, port] = [process.argv[1], Number(process.argv[2])];
require('node:http').createServer((q, s) => s.end('hello ' + host + '\\n')).listen(port, host);
const u = require('node:dgram').createSocket(host.includes(':') ? 'udp6' : 'udp4');
u.on('message', (m, r) => u.send(Buffer.concat([Buffer.from('echo:'), m]), r.port, r.address));
u.bind(port + 1, host);
`;

/** Sends one UDP datagram and prints the first answer (exit 1 after a timeout). */
const UDP_ASK = `
const [host, port] = [process.argv[1], Number(process.argv[2])];
const s = require('node:dgram').createSocket('udp4');
s.on('message', (m) => { process.stdout.write(m.toString()); process.exit(0); });
s.send('ping-' + process.pid, port, host);
setTimeout(() => process.exit(1), 1500);
`;

function run(ns: string, cmd: string, args: string[]): { ok: boolean; out: string } {
  const r = spawnSync('ip', ['netns', 'exec', ns, cmd, ...args], { encoding: 'utf8', timeout: 10_000 });
  return { ok: r.status === 0, out: (r.stdout ?? '').trim() };
}

test('mesh userspace: the default node is userspace; proxies resolve <name>.mesh; its DNS answers through the tunnel; it routes a subnet', { skip: !isRoot && 'needs root', timeout: 90_000 }, async () => {
  const br = topo.ns('br');
  sh('ip', ['-n', br, 'link', 'add', 'br0', 'type', 'bridge']);
  sh('ip', ['-n', br, 'link', 'set', 'br0', 'up']);
  const tag = `${process.pid % 10000}`;
  const names = ['c', 'u', 'k'];
  const nss = names.map((n, i) => {
    const ns = topo.ns(n);
    const l = topo.link(ns, `198.19.4.${i + 1}/24`, br, '');
    sh('ip', ['-n', br, 'link', 'set', l.ifB, 'master', 'br0']);
    return ns;
  });
  const [, uNs, kNs] = nss as [string, string, string];
  const lan = topo.ns('lan');
  topo.link(uNs, '198.19.5.1/24', lan, '198.19.5.2/24');
  const inet = topo.ns('inet');
  topo.link(uNs, '198.19.7.1/24', inet, '198.19.7.2/24');
  const lan2 = topo.ns('lan2');
  topo.link(kNs, '198.19.6.1/24', lan2, '198.19.6.2/24');
  const work = mkdtempSync(join(tmpdir(), 'mtus-'));
  topo.onDestroy(() => rmSync(work, { recursive: true, force: true }));

  const start = (i: number, args: string[]): Node => {
    const dir = mkdtempSync(join(work, `${names[i]}-`));
    const iface = `mu${tag}${names[i]}`;
    const p = topo.spawn(nss[i]!, 'env', [`MESHTUN_STATE_DIR=${dir}`, process.execPath, bin, 'up', '--interface', iface, ...args]);
    return { ns: nss[i]!, dir, iface, ipv4: '', ipv6: '', out: captureOutput(p).text, proc: p };
  };
  const upped = async (n: Node): Promise<Node> => {
    const m = await waitFor(`${n.iface} up: ${n.out()}`, () => /is up(?: \(userspace\))?: node "[^"]+" (\S+), (\S+);/.exec(n.out()), 20_000);
    return { ...n, ipv4: m[1]!, ipv6: m[2]! };
  };
  const cli = (n: Node, args: string[]) => topo.exec(n.ns, 'env', [`MESHTUN_STATE_DIR=${n.dir}`, process.execPath, bin, ...args]);
  const joinArgs = (c: Node) => (JSON.parse(cli(c, ['token', 'create', '--json'])) as { joinCommand: string }).joinCommand.split(' ').slice(2);

  const coord = await upped(start(0, ['--tun', '--auto-approve-routes']));
  const us = await upped(start(1, [...joinArgs(coord), '--name', 'us', '--advertise-routes', '198.19.5.0/24', '--advertise-exit-node']));
  const tk = await upped(start(2, [...joinArgs(coord), '--tun', '--name', 'tk', '--advertise-routes', '198.19.6.0/24', '--exit-node', 'us']));

  // Userspace by default, with its proxies and in-tunnel DNS announced.
  assert.match(us.out(), /is up \(userspace\): node "us"/);
  assert.match(us.out(), /SOCKS5 proxy on 127\.0\.0\.1:1080, HTTP proxy on 127\.0\.0\.1:8080/);
  assert.match(us.out(), new RegExp(`DNS for <name>\\.mesh on ${us.ipv4.replaceAll('.', '\\.')}:53`));
  assert.doesNotMatch(tk.out(), /\(userspace\)/);
  assert.equal(sh('ip', ['-n', uNs, '-o', 'link', 'show', us.iface], { allowFail: true }).trim(), '', 'no kernel interface for the userspace node');

  // A web server on the TUN member's overlay address, fetched by name through the proxies.
  topo.spawn(kNs, process.execPath, ['-e', SERVERS, tk.ipv4, '8000']);
  const viaSocks = await waitFor(`curl through SOCKS5 to tk.mesh\n${us.out()}`, () => {
    const r = run(uNs, 'curl', ['-s', '--max-time', '3', '--socks5-hostname', '127.0.0.1:1080', 'http://tk.mesh:8000/']);
    return r.ok ? r.out : null;
  }, 20_000, 300);
  assert.equal(viaSocks, `hello ${tk.ipv4}`);
  const viaHttp = run(uNs, 'curl', ['-s', '--max-time', '3', '-x', 'http://127.0.0.1:8080', 'http://tk.home:8000/']);
  assert.equal(viaHttp.out, `hello ${tk.ipv4}`);
  const unknown = run(uNs, 'curl', ['-s', '--max-time', '3', '--socks5-hostname', '127.0.0.1:1080', 'http://nobody.mesh:8000/']);
  assert.equal(unknown.ok, false, 'an unknown mesh name does not resolve');

  // The userspace member's DNS, asked through the tunnel from the TUN member.
  for (const server of [us.ipv4, us.ipv6]) {
    const a = run(kNs, 'dig', [`@${server}`, '+short', '+time=2', '+tries=2', 'tk.mesh', 'A']);
    if (a.out !== tk.ipv4) {
      const drops = (n: Node) => {
        const st = JSON.parse(cli(n, ['status', '--json'])) as { counters: Record<string, number>; mesh: unknown };
        return JSON.stringify({ counters: Object.fromEntries(Object.entries(st.counters).filter(([, v]) => v)), mesh: st.mesh });
      };
      console.log(`# DIAG tk ${drops(tk)}\n# DIAG us ${drops(us)}\n# tk out ${tk.out().slice(-3000)}\n# us out ${us.out().slice(-3000)}`);
    }
    assert.equal(a.out, tk.ipv4, `A from ${server}`);
    const aaaa = run(kNs, 'dig', [`@${server}`, '+short', '+time=2', '+tries=2', 'us.home', 'AAAA']);
    if (aaaa.out !== us.ipv6) {
      const drops = (n: Node) => {
        const st = JSON.parse(cli(n, ['status', '--json'])) as { counters: Record<string, number>; mesh: unknown };
        return JSON.stringify({ counters: Object.fromEntries(Object.entries(st.counters).filter(([, v]) => v)), mesh: st.mesh });
      };
      console.log(`# DIAG tk ${drops(tk)}\n# DIAG us ${drops(us)}\n# tk out ${tk.out().slice(-3000)}\n# us out ${us.out().slice(-3000)}`);
    }
    assert.equal(aaaa.out, us.ipv6, `AAAA from ${server}`);
  }

  // The subnet behind the userspace member: TCP and UDP from the TUN member, relayed by host sockets.
  topo.spawn(lan, process.execPath, ['-e', SERVERS, '198.19.5.2', '9000']);
  assert.equal(sh('ip', ['-n', lan, 'route', 'get', tk.ipv4], { allowFail: true }).trim(), '', 'the LAN host has no route to the overlay');
  const page = await waitFor(`TUN member fetches from the LAN\n${us.out()}\n${tk.out()}`, () => {
    const r = run(kNs, 'curl', ['-s', '--max-time', '3', 'http://198.19.5.2:9000/']);
    return r.ok ? r.out : null;
  }, 20_000, 300);
  assert.equal(page, 'hello 198.19.5.2');
  const echo = await waitFor('UDP echo from the LAN', () => {
    const r = run(kNs, process.execPath, ['-e', UDP_ASK, '198.19.5.2', '9001']);
    return r.ok ? r.out : null;
  }, 10_000, 200);
  assert.match(echo, /^echo:ping-\d+$/);
  assert.equal(run(kNs, 'ping', ['-c', '1', '-W', '2', '198.19.5.2']).ok, true, 'ping to the routed subnet is answered (by the userspace stack)');
  assert.equal(run(kNs, 'curl', ['-s', '--max-time', '2', 'http://198.19.5.2:9999/']).ok, false, 'a closed port on the LAN fails');

  // The userspace member as exit node: a host outside its subnet, from the TUN member.
  topo.spawn(inet, process.execPath, ['-e', SERVERS, '198.19.7.2', '9000']);
  const viaExit = await waitFor(`TUN member reaches the internet host through the exit node\n${us.out()}\n${tk.out()}`, () => {
    const r = run(kNs, 'curl', ['-s', '--max-time', '3', 'http://198.19.7.2:9000/']);
    return r.ok ? r.out : null;
  }, 20_000, 300);
  assert.equal(viaExit, 'hello 198.19.7.2');

  // A route the userspace member uses: the TUN member's LAN, through the SOCKS5 proxy.
  topo.spawn(lan2, process.execPath, ['-e', SERVERS, '198.19.6.2', '9000']);
  const routed = await waitFor(`userspace member fetches from the TUN member's LAN\n${us.out()}\n${tk.out()}`, () => {
    const r = run(uNs, 'curl', ['-s', '--max-time', '3', '--socks5-hostname', '127.0.0.1:1080', 'http://198.19.6.2:9000/']);
    return r.ok ? r.out : null;
  }, 20_000, 300);
  assert.equal(routed, 'hello 198.19.6.2');
});
