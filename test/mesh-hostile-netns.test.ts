// A hostile coordinator cannot make a member run anything (issue 9, item 1). A value such as
// "100.64.0.5/32\nPostUp = touch <file>\n#" once became a wg-quick hook run as root, because the
// member built its interface from wg-quick text. Each case feeds such a value to a kernel-TUN
// member (root, in a namespace) through a real control channel (test/hostile-coordinator.ts) or a
// tampered membership file, and checks that the file is never created, the member says which
// field was wrong, and (for a pushed map) keeps running on the map it had.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { Topology, sh, waitFor, waitExit, captureOutput, isRoot } from './netns.js';

const bin = join(process.cwd(), 'bin/meshtun.js');
const helper = join(process.cwd(), 'dist/test/hostile-coordinator.js');
const topo = new Topology();
const pwned = join(tmpdir(), `meshtun-pwned-${process.pid}`);
after(() => {
  topo.destroy();
  rmSync(pwned, { force: true });
});

const evilAddress = (file: string) => `100.64.0.5/32\nPostUp = touch ${file}\n#`;
const evilRoute = (file: string) => `198.18.99.0/24\nPostUp = touch ${file}\n#`;

async function hostile(ns: string, mode: 'register' | 'map', evil: string): Promise<{ proc: ChildProcess; joinString: string; token: string; out: () => string }> {
  const dir = mkdtempSync(join(tmpdir(), 'mthostile-c-'));
  const proc = topo.spawn(ns, process.execPath, [helper, dir, mode, evil], { stdio: ['pipe', 'pipe', 'pipe'] });
  const out = captureOutput(proc);
  const line = await waitFor(`the hostile coordinator starts: ${out.text()}`, () => /^\{.*\}$/m.exec(out.text())?.[0], 20_000);
  const { joinString, token } = JSON.parse(line) as { joinString: string; token: string };
  return { proc, joinString, token, out: out.text };
}

function member(ns: string, dir: string, iface: string, args: string[]): { proc: ChildProcess; out: () => string } {
  const proc = topo.spawn(ns, 'env', [`MESHTUN_STATE_DIR=${dir}`, process.execPath, bin, 'up', '--tun', '--interface', iface, ...args]);
  return { proc, out: captureOutput(proc).text };
}

test('a register reply with a hook in the address: refused naming the field, nothing runs', { skip: !isRoot && 'needs root (kernel TUN in a namespace)', timeout: 60_000 }, async () => {
  rmSync(pwned, { force: true });
  const ns = topo.ns('hr');
  const c = await hostile(ns, 'register', evilAddress(pwned));
  const m = member(ns, mkdtempSync(join(tmpdir(), 'mthostile-m-')), 'mthr0', ['--join', c.joinString, '--token', c.token]);
  assert.ok(await waitExit(m.proc, 20_000), `the member gives up: ${m.out()}`);
  assert.notEqual(m.proc.exitCode, 0, m.out());
  assert.match(m.out(), /ipv4 "100\.64\.0\.5\/32\\nPostUp = touch .*" is not an IPv4 address/, m.out());
  assert.equal(existsSync(pwned), false, 'no hook ran');
  assert.equal(sh('ip', ['-n', ns, 'link', 'show'], { allowFail: true }).includes('mthr0'), false, 'no interface was made');
});

test('a tampered membership file: refused naming the file and field, nothing runs', { skip: !isRoot && 'needs root (kernel TUN in a namespace)', timeout: 60_000 }, async () => {
  rmSync(pwned, { force: true });
  const ns = topo.ns('hm');
  const dir = mkdtempSync(join(tmpdir(), 'mthostile-m-'));
  writeFileSync(join(dir, 'membership.json'), JSON.stringify({
    host: '127.0.0.1', port: 7443, coordinatorKey: 'HIgo9xNzJMWLKASShiTqIybxZ0U3wGLiUeJ1PKf8ykw=', nodeId: 'node_abcdefghjkmnpqrs', name: 'm',
    ipv4: evilAddress(pwned), ipv6: 'fd6d:7368:7475::5', ipv4Pool: '100.64.0.0/10', ulaPrefix: 'fd6d:7368:7475::/48',
  }), { mode: 0o600 });
  const m = member(ns, dir, 'mthm0', []);
  assert.ok(await waitExit(m.proc, 20_000), `the member refuses to start: ${m.out()}`);
  assert.notEqual(m.proc.exitCode, 0, m.out());
  assert.match(m.out(), /membership\.json: ipv4 "100\.64\.0\.5\/32\\nPostUp = touch .*" is not an IPv4 address/, m.out());
  assert.equal(existsSync(pwned), false, 'no hook ran');
});

test('a pushed map with a bad route: refused naming the field, the member keeps its map and runs nothing', { skip: !isRoot && 'needs root (kernel TUN in a namespace)', timeout: 60_000 }, async () => {
  rmSync(pwned, { force: true });
  const ns = topo.ns('hp');
  const c = await hostile(ns, 'map', evilRoute(pwned));
  const dir = mkdtempSync(join(tmpdir(), 'mthostile-m-'));
  const m = member(ns, dir, 'mthp0', ['--join', c.joinString, '--token', c.token]);
  await waitFor(`the member is up: ${m.out()}`, () => /is up: node "[^"]+"/.test(m.out()), 20_000);
  const status = () => JSON.parse(topo.exec(ns, 'env', [`MESHTUN_STATE_DIR=${dir}`, process.execPath, bin, 'status', '--json'])) as {
    mesh: { mapVersion: number | null; control: { mapsRefused: number; lastMapError: string | null } };
  };
  const before = await waitFor('a first map', () => (status().mesh.mapVersion !== null ? status() : null), 10_000);
  c.proc.stdin!.write('evil\n');
  await waitFor(`the coordinator tampers: ${c.out()}`, () => c.out().includes('tampered'), 5_000);
  const st = await waitFor(`the member refuses the map: ${m.out()}`, () => (status().mesh.control.mapsRefused > 0 ? status() : null), 15_000);
  assert.equal(st.mesh.mapVersion, before.mesh.mapVersion, 'the member keeps the map it had');
  assert.match(st.mesh.control.lastMapError ?? '', /^map\.peers\[0\]\.routes\[0\] "198\.18\.99\.0\/24\\nPostUp = touch .*" is not a prefix/);
  assert.match(m.out(), /refused a network map from the coordinator: map\.peers\[0\]\.routes\[0\]/);
  assert.equal(sh('ip', ['-n', ns, 'route', 'show']).includes('198.18.99.0'), false, 'no route from the bad map');
  assert.equal(existsSync(pwned), false, 'nothing ran');
  assert.equal(m.proc.exitCode, null, 'the member keeps running');
  process.kill(m.proc.pid!, 'SIGTERM');
  assert.ok(await waitExit(m.proc, 10_000));
});
