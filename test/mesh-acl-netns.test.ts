// Mesh ACLs end to end: a coordinator started with `--policy` and two members in their own
// namespaces on one underlay bridge (198.18.64.0/24); "ops" joined with a token tagged ops,
// "plain" with an untagged one. The policy allows only TCP/22 from tag:ops. Checked: ops connects
// to TCP/22 on plain and gets the reply; pings between the members fail both ways; plain cannot
// reach TCP/80 or TCP/22 on ops; a bad `meshtun policy set` is refused naming the rule (exit 2)
// and the old policy still applies; a good one (adding ICMP) takes effect live.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { Topology, sh, waitFor, captureOutput, isRoot, pingOk } from './netns.js';

const bin = join(process.cwd(), 'bin/meshtun.js');
const topo = new Topology();
after(() => topo.destroy());

const POLICY = `{
  "tags": ["tag:ops"],
  "acls": [
    // ssh from ops machines only
    { "src": ["tag:ops"], "dst": ["*:22"], "proto": "tcp" },
  ],
}
`;
const BAD_POLICY = `{
  "tags": ["tag:ops"],
  "acls": [
    { "src": ["tag:ops"], "dst": ["*:22"], "proto": "tcp" },
    { "src": ["tag:opz"], "dst": ["*:*"], "proto": "icmp" },
  ],
}
`;
const ICMP_POLICY = POLICY.replace('  ],', '    { "src": ["*"], "dst": ["*:*"], "proto": "icmp" },\n  ],');

/** A TCP server on `ports` answering "hi <port>" to every connection. */
const SERVER = `for (const p of process.argv.slice(1)) require('net').createServer((s) => s.end('hi ' + p + '\\n')).listen(Number(p), '0.0.0.0');`;
/** Connects to host:port; prints what the server says; exit 1 when nothing comes within 1.5 s. */
const CLIENT = `const s = require('net').connect(Number(process.argv[2]), process.argv[1]); let got = '';
s.on('data', (d) => { got += d; }); s.on('end', () => { process.stdout.write(got); process.exit(got ? 0 : 1); });
s.on('error', () => process.exit(1)); setTimeout(() => process.exit(1), 1500);`;


function tcp(ns: string, addr: string, port: number): string | null {
  const r = spawnSync('ip', ['netns', 'exec', ns, process.execPath, '-e', CLIENT, addr, String(port)], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : null;
}

interface Node { ns: string; dir: string; iface: string; ipv4: string; out: () => string; proc: ChildProcess }

test('mesh ACL: only TCP/22 from tag:ops passes, both directions; a bad policy is refused and the old one stays', { skip: !isRoot && 'needs root', timeout: 60_000 }, async () => {
  const br = topo.ns('br');
  sh('ip', ['-n', br, 'link', 'add', 'br0', 'type', 'bridge']);
  sh('ip', ['-n', br, 'link', 'set', 'br0', 'up']);
  const tag = `${process.pid % 10000}`;
  const names = ['c', 'o', 'p'];
  const nss = names.map((n, i) => {
    const ns = topo.ns(n);
    const l = topo.link(ns, `198.18.64.${i + 1}/24`, br, '');
    sh('ip', ['-n', br, 'link', 'set', l.ifB, 'master', 'br0']);
    return ns;
  });
  const [, oNs, pNs] = nss as [string, string, string];
  const work = mkdtempSync(join(tmpdir(), 'mtacl-'));
  topo.onDestroy(() => rmSync(work, { recursive: true, force: true }));
  const policyFile = join(work, 'acl.hujson');
  writeFileSync(policyFile, POLICY);

  const start = (i: number, args: string[]): Node => {
    const dir = mkdtempSync(join(work, `${names[i]}-`));
    const iface = `ma${tag}${names[i]}`;
    const p = topo.spawn(nss[i]!, 'env', [`MESHTUN_STATE_DIR=${dir}`, process.execPath, bin, 'up', '--tun', '--interface', iface, ...args]);
    return { ns: nss[i]!, dir, iface, ipv4: '', out: captureOutput(p).text, proc: p };
  };
  const upped = async (n: Node): Promise<Node> => {
    const m = await waitFor(`${n.iface} up: ${n.out()}`, () => /is up: node "[^"]+" (\S+),/.exec(n.out()), 20_000);
    return { ...n, ipv4: m[1]! };
  };
  const cli = (n: Node, args: string[]) => spawnSync('ip', ['netns', 'exec', n.ns, 'env', `MESHTUN_STATE_DIR=${n.dir}`, process.execPath, bin, ...args], { encoding: 'utf8' });
  const joinArgs = (c: Node, extra: string[]) => {
    const r = cli(c, ['token', 'create', '--json', ...extra]);
    assert.equal(r.status, 0, r.stderr);
    return (JSON.parse(r.stdout) as { joinCommand: string }).joinCommand.split(' ').slice(2);
  };

  const coord = await upped(start(0, ['--policy', policyFile]));
  const ops = await upped(start(1, [...joinArgs(coord, ['--tag', 'ops']), '--name', 'ops']));
  const plain = await upped(start(2, [...joinArgs(coord, []), '--name', 'plain']));
  for (const [n, ports] of [[ops, ['22', '80']], [plain, ['22', '80']]] as const) topo.spawn(n.ns, process.execPath, ['-e', SERVER, ...ports]);

  // Allowed: TCP/22 from ops to plain, and its replies come back through ops's filter.
  const reply = await waitFor(`ops reaches plain:22\n${ops.out()}\n${plain.out()}`, () => tcp(oNs, plain.ipv4, 22), 20_000, 200);
  assert.equal(reply, 'hi 22');
  const denied = () => {
    assert.equal(pingOk(oNs, plain.ipv4), false, 'ops cannot ping plain');
    assert.equal(pingOk(pNs, ops.ipv4), false, 'plain cannot ping ops');
    assert.equal(tcp(pNs, ops.ipv4, 80), null, 'plain cannot reach ops:80');
    assert.equal(tcp(pNs, ops.ipv4, 22), null, 'plain (untagged) cannot reach ops:22');
    assert.equal(tcp(oNs, plain.ipv4, 80), null, 'ops cannot reach plain:80 (only 22)');
  };
  denied();
  // The underlay works: the pings fail because of the ACL, not the network.
  assert.ok(pingOk(oNs, '198.18.64.3'));

  // A bad policy is refused with the file, the rule and the problem; the old one stays.
  const badFile = join(work, 'bad.hujson');
  writeFileSync(badFile, BAD_POLICY);
  const bad = cli(coord, ['policy', 'set', badFile]);
  assert.equal(bad.status, 2, bad.stderr);
  assert.match(bad.stderr, /bad\.hujson:5: acls\[1\] \{"src":\["tag:opz"\].*tag:opz/);
  const shown = cli(coord, ['policy', 'show', '--json']);
  assert.equal(shown.status, 0, shown.stderr);
  const kept = (JSON.parse(shown.stdout) as { policy: { text: string; version: number } }).policy;
  assert.deepEqual([kept.text, kept.version], [POLICY, 1]);
  await new Promise((r) => setTimeout(r, 500));
  assert.equal(tcp(oNs, plain.ipv4, 22), 'hi 22');
  denied();

  // A good policy applies live: ICMP from everyone now passes.
  const goodFile = join(work, 'icmp.hujson');
  writeFileSync(goodFile, ICMP_POLICY);
  const good = cli(coord, ['policy', 'set', goodFile]);
  assert.equal(good.status, 0, good.stderr);
  await waitFor('plain pings ops under the new policy', () => pingOk(pNs, ops.ipv4), 10_000, 200);
  assert.ok(pingOk(oNs, plain.ipv4));
  assert.equal(tcp(pNs, ops.ipv4, 22), null, 'TCP rules unchanged');
});
