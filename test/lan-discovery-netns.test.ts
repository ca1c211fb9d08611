// LAN discovery over real multicast between hosts: namespaces a and b on one bridge (198.18.77.0/24,
// fd00:77::/64), each running src/mesh/lan-discovery.ts as a process (test/lan-discovery-helper.ts)
// on the default port and groups (UDP 51819, 239.255.77.77, ff02::4d54).
//   1. Both families: each learns the other's WireGuard endpoint, IPv4 and IPv6.
//   2. IPv6 alone (a second pair of helpers on another port, IPv4 off): the link-scope group
//      carries beacons by itself.
//   3. a's address changes (198.18.77.1 -> .11) while it runs: b learns the new endpoint within a
//      few seconds (the change is announced at once, not at the next periodic beacon).
//   4. c, a member of another network on the same link, is heard and refused by both, and learns
//      nothing.
// Needs root (namespaces); skipped otherwise.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import type { ChildProcess } from 'node:child_process';
import { Topology, sh, waitFor, isRoot } from './netns.js';
import type { LanHelperConfig } from './lan-discovery-helper.js';

const HELPER = 'dist/test/lan-discovery-helper.js';
const topo = new Topology();
after(() => topo.destroy());

interface Helper {
  key: string;
  proc: ChildProcess;
  learned: { key: string; endpoint: string; at: number }[];
  counters: Record<string, number>;
  text: () => string;
}

function startHelper(ns: string, cfg: Omit<LanHelperConfig, 'publicKey'>): Helper {
  const key = randomBytes(32).toString('base64');
  const proc = topo.spawn(ns, process.execPath, ['--enable-source-maps', HELPER, JSON.stringify({ ...cfg, publicKey: key })]);
  const h: Helper = { key, proc, learned: [], counters: {}, text: () => all };
  let all = '';
  let partial = '';
  proc.stdout!.on('data', (d: Buffer) => {
    partial += d.toString();
    const lines = partial.split('\n');
    partial = lines.pop()!;
    for (const line of lines) {
      try {
        const v = JSON.parse(line) as { learned?: [string, string]; at?: number; counters?: Record<string, number> };
        if (v.learned) {
          h.learned.push({ key: v.learned[0], endpoint: v.learned[1], at: v.at! });
          all += line + '\n';
        }
        if (v.counters) h.counters = v.counters;
      } catch {
        all += line + '\n';
      }
    }
  });
  proc.stderr!.on('data', (d: Buffer) => { all += d.toString(); });
  return h;
}

const knows = (h: Helper, key: string, endpoint: string) => h.learned.some((l) => l.key === key && l.endpoint === endpoint);

test('LAN discovery: beacons over IPv4 and IPv6 multicast between namespaces, an address change, another network refused', { skip: !isRoot && 'needs root', timeout: 60_000 }, async () => {
  const br = topo.ns('br');
  sh('ip', ['-n', br, 'link', 'add', 'br0', 'type', 'bridge']);
  sh('ip', ['-n', br, 'link', 'set', 'br0', 'up']);
  const hosts: Record<string, { ns: string; ifname: string }> = {};
  for (const [name, i] of [['a', 1], ['b', 2], ['c', 3]] as const) {
    const ns = topo.ns(name);
    // Link-local addresses at once (no DAD wait): the IPv6 beacons' source.
    topo.exec(ns, 'sysctl', ['-q', '-w', 'net.ipv6.conf.default.accept_dad=0', 'net.ipv6.conf.all.accept_dad=0']);
    const l = topo.link(ns, `198.18.77.${i}/24`, br, '');
    sh('ip', ['-n', ns, 'addr', 'add', `fd00:77::${i}/64`, 'dev', l.ifA, 'nodad']);
    sh('ip', ['-n', br, 'link', 'set', l.ifB, 'master', 'br0']);
    hosts[name] = { ns, ifname: l.ifA };
  }
  const network = { networkId: 'net_0123456789abcdef', discoveryKey: randomBytes(32).toString('base64') };
  const a = startHelper(hosts.a!.ns, { ...network, wireguardPort: 51820 });
  const b = startHelper(hosts.b!.ns, { ...network, wireguardPort: 51821 });
  const a6 = startHelper(hosts.a!.ns, { ...network, wireguardPort: 51830, families: [6], port: 51829 });
  const b6 = startHelper(hosts.b!.ns, { ...network, wireguardPort: 51831, families: [6], port: 51829 });
  const c = startHelper(hosts.c!.ns, { networkId: network.networkId, discoveryKey: randomBytes(32).toString('base64'), wireguardPort: 51822 });

  // 1. Both families.
  await waitFor(`a learns b\n${a.text()}`, () => knows(a, b.key, '198.18.77.2:51821') && knows(a, b.key, '[fd00:77::2]:51821'), 10_000);
  await waitFor(`b learns a\n${b.text()}`, () => knows(b, a.key, '198.18.77.1:51820') && knows(b, a.key, '[fd00:77::1]:51820'), 10_000);

  // 2. IPv6 multicast alone.
  await waitFor(`a6 learns b6\n${a6.text()}`, () => knows(a6, b6.key, '[fd00:77::2]:51831'), 10_000);
  await waitFor(`b6 learns a6\n${b6.text()}`, () => knows(b6, a6.key, '[fd00:77::1]:51830'), 10_000);
  assert.ok(!a6.learned.some((l) => l.endpoint.startsWith('198.18.')), 'IPv4 is off for a6: only IPv6 beacons, which carry only the IPv6 address');

  // 3. a's IPv4 address changes under it.
  const t0 = Date.now();
  sh('ip', ['-n', hosts.a!.ns, 'addr', 'del', '198.18.77.1/24', 'dev', hosts.a!.ifname]);
  sh('ip', ['-n', hosts.a!.ns, 'addr', 'add', '198.18.77.11/24', 'dev', hosts.a!.ifname]);
  await waitFor(`b learns a's new address\n${b.text()}\n${a.text()}`, () => knows(b, a.key, '198.18.77.11:51820'), 6_000);
  const learnedAt = b.learned.find((l) => l.endpoint === '198.18.77.11:51820')!.at;
  assert.ok(learnedAt - t0 < 3_000, `announced at once (${learnedAt - t0} ms after the change; beacons go every 3 s)`);

  // 4. The other network.
  await waitFor('c\'s beacons reach a and b and are refused', () => (a.counters.refusedOtherNetwork ?? 0) > 0 && (b.counters.refusedOtherNetwork ?? 0) > 0, 10_000);
  assert.ok(!a.learned.some((l) => l.key === c.key) && !b.learned.some((l) => l.key === c.key), 'nobody learns c');
  assert.deepEqual(c.learned, [], 'c learns nobody');
  for (const h of [a, b]) {
    assert.equal(h.counters.refusedBadMac, 0);
    assert.equal(h.counters.refusedReplay, 0);
    assert.equal(h.counters.refusedStale, 0);
    assert.equal(h.counters.refusedMalformed, 0);
    assert.ok(h.counters.accepted! > 0 && h.counters.own! > 0 && h.counters.sent! > 0);
  }
});
