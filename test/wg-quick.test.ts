// meshtun as a drop-in for wg-quick(8) and wireguard-go, in network namespaces with real
// wireguard-go (Debian's) as the peer, joined by a veth pair on 198.18.0.0/24:
//   1. `wg-quick up ./X.conf` with WG_QUICK_USERSPACE_IMPLEMENTATION=bin/meshtun-wg-userspace.js
//      (this kernel has no WireGuard module, so wg-quick takes its userspace path): ping both
//      ways, then `wg-quick down` removes the interface, the daemon and its socket.
//   2. `meshtun wg-userspace X` detaches; `wg setconf`/`wg show` work; traffic flows; the interface
//      moves to a third namespace and still carries traffic (the UDP socket stays behind); deleting
//      it there makes the daemon exit and remove its socket.
//   3. `meshtun up X.conf` with 0.0.0.0/0 and ::/0 (wg-quick's policy routing, fwmark) then
//      `meshtun down X`: process, interface, routes, rules, socket and pid file are gone.
//   4. User mistakes: bad files, a missing file, no root: one line naming the problem, exit 2.
//   5. PreUp/PostUp/PreDown/PostDown run in order with %i substituted.
// Daemons are found by their pid files and killed by PID in `finally`, namespaces deleted.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { accessSync, chmodSync, constants, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Topology, uniqueTag, waitFor, captureOutput, waitExit, isRoot, sh } from './netns.js';

function have(path: string): boolean {
  try { accessSync(path, constants.X_OK); return true; } catch { return false; }
}
const skip = isRoot && existsSync('/dev/net/tun') && ['/usr/bin/wireguard-go', '/usr/bin/wg', '/usr/bin/wg-quick', '/usr/bin/setpriv'].every(have)
  ? false : 'needs root, /dev/net/tun, wireguard-go, wg, wg-quick and setpriv';

const MESHTUN = fileURLToPath(new URL('../../bin/meshtun.js', import.meta.url));
const WG_USERSPACE = fileURLToPath(new URL('../../bin/meshtun-wg-userspace.js', import.meta.url));
const MT_UNDERLAY = '198.18.0.1';
const GO_UNDERLAY = '198.18.0.2';
const PORT = 51820;
const MT_TUNNEL = '100.64.0.1';
const GO_TUNNEL = '100.64.0.2';
const MT_TUNNEL6 = 'fd00::1';
const GO_TUNNEL6 = 'fd00::2';
/** An address only wireguard-go's side has, outside the tunnel subnet (reached by a route). */
const GO_EXTRA = '100.64.77.1';
const PID_DIR = '/var/run/meshtun';
const UAPI_DIR = '/var/run/wireguard';
/** wg-quick's table and fwmark for 0.0.0.0/0 (0xca6c). */
const WG_QUICK_TABLE = 51820;

interface Result { code: number; stdout: string; stderr: string }

/** Runs a command without blocking the event loop (ping and friends take a while). */
function run(cmd: string, args: string[], opts: { env?: NodeJS.ProcessEnv; cwd?: string; timeoutMs?: number } = {}): Promise<Result> {
  return new Promise((resolve) => {
    execFile(cmd, args, { encoding: 'utf8', env: opts.env ?? process.env, cwd: opts.cwd, timeout: opts.timeoutMs ?? 30_000 }, (err, stdout, stderr) => {
      const c = err ? (err as { code?: unknown }).code : 0;
      resolve({ code: typeof c === 'number' ? c : 1, stdout, stderr });
    });
  });
}

function inNs(ns: string, cmd: string, args: string[], opts: { env?: NodeJS.ProcessEnv; cwd?: string; timeoutMs?: number } = {}): Promise<Result> {
  return run('ip', ['netns', 'exec', ns, cmd, ...args], opts);
}

/** One ping reply within a few seconds (the first packet waits for the handshake). */
async function pingOk(ns: string, addr: string): Promise<Result> {
  await waitFor(`ping ${addr} from ${ns}`, async () => (await inNs(ns, 'ping', ['-n', '-c', '1', '-W', '1', addr])).code === 0, 15_000, 200);
  const r = await inNs(ns, 'ping', ['-n', '-c', '3', '-i', '0.2', '-W', '2', addr]);
  assert.equal(r.code, 0, `ping ${addr} from ${ns}: ${r.stdout}${r.stderr}`);
  return r;
}

function genKeys(): { priv: string; pub: string } {
  const priv = sh('wg', ['genkey']).trim();
  return { priv, pub: sh('wg', ['pubkey'], { input: priv + '\n' }).trim() };
}

/** Alive and not a zombie (a detached daemon's parent may be gone before anyone reaps it). */
function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

function readPid(iface: string): number | null {
  try {
    const pid = Number(readFileSync(`${PID_DIR}/${iface}.pid`, 'utf8').trim());
    return Number.isInteger(pid) && pid > 1 ? pid : null;
  } catch {
    return null;
  }
}

/** Kills a daemon we started (SIGTERM, then SIGKILL) and removes the files it leaves behind. */
async function killDaemon(pid: number | null, iface: string): Promise<void> {
  if (pid !== null && alive(pid)) {
    try { process.kill(pid, 'SIGTERM'); } catch { /* gone */ }
    await waitFor(`process ${pid} to exit`, () => !alive(pid), 3000).catch(() => {
      try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
    });
  }
  for (const f of [`${PID_DIR}/${iface}.log`, `${PID_DIR}/${iface}.pid`, `${PID_DIR}/${iface}.api`, `${UAPI_DIR}/${iface}.sock`]) {
    if (pid === null || !alive(pid)) rmSync(f, { force: true });
  }
}

function linkExists(ns: string, iface: string): boolean {
  return sh('ip', ['-n', ns, '-o', 'link', 'show', 'dev', iface], { allowFail: true }).trim() !== '';
}

interface Pair {
  topo: Topology;
  work: string;
  nsMt: string;
  nsGo: string;
  mt: { priv: string; pub: string };
  go: { priv: string; pub: string };
  goIf: string;
  goLog: () => string;
}

/** Two namespaces on a veth pair; wireguard-go runs in nsGo as 100.64.0.2 (and GO_EXTRA),
 * expecting meshtun's key from `allowed` at MT_UNDERLAY:PORT. Cleans up after `body`. */
async function withWireguardGo(tagPrefix: string, allowed: string, body: (p: Pair) => Promise<void>): Promise<void> {
  const topo = new Topology(uniqueTag(tagPrefix));
  const work = mkdtempSync(join(tmpdir(), `meshtun-${tagPrefix}-`));
  try {
    const nsMt = topo.ns('m');
    const nsGo = topo.ns('g');
    topo.link(nsMt, `${MT_UNDERLAY}/24`, nsGo, `${GO_UNDERLAY}/24`);
    const goIf = `${topo.tag}g`.slice(-15);
    const goProc = topo.spawn(nsGo, 'wireguard-go', ['-f', goIf], { env: { ...process.env, WG_PROCESS_FOREGROUND: '1' } });
    const goOut = captureOutput(goProc);
    await waitFor('wireguard-go UAPI socket', () => existsSync(`${UAPI_DIR}/${goIf}.sock`), 10_000);
    const mt = genKeys();
    const go = genKeys();
    const keyFile = join(work, 'go.key');
    writeFileSync(keyFile, go.priv + '\n', { mode: 0o600 });
    topo.exec(nsGo, 'wg', ['set', goIf, 'private-key', keyFile, 'listen-port', String(PORT),
      'peer', mt.pub, 'allowed-ips', allowed, 'endpoint', `${MT_UNDERLAY}:${PORT}`]);
    topo.exec(nsGo, 'ip', ['addr', 'add', `${GO_TUNNEL}/24`, 'dev', goIf]);
    topo.exec(nsGo, 'ip', ['addr', 'add', `${GO_EXTRA}/32`, 'dev', goIf]);
    topo.exec(nsGo, 'ip', ['addr', 'add', `${GO_TUNNEL6}/64`, 'dev', goIf, 'nodad']);
    topo.exec(nsGo, 'ip', ['link', 'set', goIf, 'up']);
    await body({ topo, work, nsMt, nsGo, mt, go, goIf, goLog: goOut.text });
  } finally {
    await topo.destroy();
    rmSync(work, { recursive: true, force: true });
  }
}

/** A wg-quick file for meshtun's side, peer = wireguard-go. */
function mtConfig(p: Pair, opts: { allowedIps: string; extra?: string[] }): string {
  return [
    '[Interface]',
    `PrivateKey = ${p.mt.priv}`,
    `ListenPort = ${PORT}`,
    `Address = ${MT_TUNNEL}/24, ${MT_TUNNEL6}/64`,
    ...(opts.extra ?? []),
    '',
    '[Peer]',
    `PublicKey = ${p.go.pub}`,
    `AllowedIPs = ${opts.allowedIps}`,
    `Endpoint = ${GO_UNDERLAY}:${PORT}`,
    '',
  ].join('\n');
}

test('wg-quick up/down with WG_QUICK_USERSPACE_IMPLEMENTATION=bin/meshtun-wg-userspace.js, ping wireguard-go both ways', { skip }, async () => {
  await withWireguardGo('wq', `${MT_TUNNEL}/32,${MT_TUNNEL6}/128`, async (p) => {
    const iface = `${p.topo.tag}m`.slice(-15);
    writeFileSync(join(p.work, `${iface}.conf`), mtConfig(p, { allowedIps: `${GO_TUNNEL}/32, ${GO_EXTRA}/32, ${GO_TUNNEL6}/128` }), { mode: 0o600 });
    const env = { ...process.env, WG_QUICK_USERSPACE_IMPLEMENTATION: WG_USERSPACE };
    let pid: number | null = null;
    try {
      // The precondition for wg-quick's userspace path: no kernel WireGuard here.
      const kernel = await inNs(p.nsMt, 'ip', ['link', 'add', `${iface}k`.slice(-15), 'type', 'wireguard']);
      assert.notEqual(kernel.code, 0, 'this test is about the userspace fallback; the kernel has WireGuard');

      const upR = await inNs(p.nsMt, 'wg-quick', ['up', `./${iface}.conf`], { env, cwd: p.work });
      const ctx = () => `wg-quick up: ${upR.stderr}\nlog: ${readFileSync(`${PID_DIR}/${iface}.log`, 'utf8')}\nwireguard-go: ${p.goLog()}`;
      assert.equal(upR.code, 0, ctx());
      assert.match(upR.stderr, /Missing WireGuard kernel module\. Falling back to slow userspace implementation/);
      assert.ok(upR.stderr.includes(`[#] ${WG_USERSPACE} ${iface}\n`), ctx());
      assert.match(upR.stderr, new RegExp(`\\[#\\] wg setconf ${iface} `));
      pid = readPid(iface);
      assert.ok(pid !== null && alive(pid), `the daemon runs and wrote its pid file: ${ctx()}`);
      assert.match(readFileSync(`/proc/${pid}/cmdline`, 'utf8'), /wg-userspace/);
      assert.ok(existsSync(`${UAPI_DIR}/${iface}.sock`));

      // wg-quick configured the device through our UAPI socket and added the routes it read back.
      const show = (await inNs(p.nsMt, 'wg', ['show', iface, 'dump'])).stdout.trim().split('\n').map((l) => l.split('\t'));
      assert.equal(show[0]![1], p.mt.pub, 'wg show reports the public key of the PrivateKey line');
      assert.equal(show[0]![2], String(PORT));
      assert.equal(show[1]![0], p.go.pub);
      assert.equal(show[1]![2], `${GO_UNDERLAY}:${PORT}`);
      assert.match((await inNs(p.nsMt, 'ip', ['-4', 'route', 'show', 'dev', iface])).stdout, new RegExp(`${GO_EXTRA.replaceAll('.', '\\.')} `));
      assert.match((await inNs(p.nsMt, 'ip', ['-4', 'addr', 'show', 'dev', iface])).stdout, new RegExp(`inet ${MT_TUNNEL}/24`));

      await pingOk(p.nsMt, GO_TUNNEL);
      await pingOk(p.nsMt, GO_EXTRA);
      await pingOk(p.nsMt, GO_TUNNEL6);
      await pingOk(p.nsGo, MT_TUNNEL);
      const hs = (await inNs(p.nsMt, 'wg', ['show', iface, 'latest-handshakes'])).stdout.trim().split('\t');
      assert.equal(hs[0], p.go.pub);
      assert.ok(Number(hs[1]) > 0, 'meshtun reports the handshake to wg(8)');

      const downR = await inNs(p.nsMt, 'wg-quick', ['down', `./${iface}.conf`], { env, cwd: p.work });
      assert.equal(downR.code, 0, `wg-quick down: ${downR.stderr}`);
      assert.match(downR.stderr, new RegExp(`\\[#\\] ip link delete dev ${iface}`));
      assert.equal(linkExists(p.nsMt, iface), false, 'the interface is gone');
      const daemon = pid;
      await waitFor('the daemon to exit after wg-quick down', () => !alive(daemon), 5000, 50);
      await waitFor('the UAPI socket to be removed', () => !existsSync(`${UAPI_DIR}/${iface}.sock`), 2000, 50);
      assert.equal(existsSync(`${PID_DIR}/${iface}.pid`), false, 'the pid file is removed');
      assert.match(readFileSync(`${PID_DIR}/${iface}.log`, 'utf8'), /stopped \(interface deleted\)/);
    } finally {
      await killDaemon(pid ?? readPid(iface), iface);
    }
  });
});

test('wg-userspace detaches; wg setconf and wg show work; the interface keeps working in another namespace; deleting it stops the daemon', { skip }, async () => {
  await withWireguardGo('wu', `${MT_TUNNEL}/32`, async (p) => {
    const iface = `${p.topo.tag}m`.slice(-15);
    const nsY = p.topo.ns('y');
    let pid: number | null = null;
    try {
      // A socket file left by a killed daemon must not make the command return before it serves.
      const stale = `${UAPI_DIR}/${iface}.sock`;
      sh(process.execPath, ['-e', `require('net').createServer().listen(${JSON.stringify(stale)}, () => process.exit(0))`]);
      assert.ok(existsSync(stale));
      const userspace = () => inNs(p.nsMt, process.execPath, [MESHTUN, 'wg-userspace', iface], { env: { ...process.env, WG_PROCESS_FOREGROUND: '' }, timeoutMs: 20_000 });
      const start = await userspace();
      assert.equal(start.code, 0, `wg-userspace: ${start.stdout}${start.stderr}`);
      assert.equal(start.stdout + start.stderr, '', 'like wireguard-go, nothing is printed on success');
      pid = readPid(iface);
      assert.ok(pid !== null && alive(pid), 'the detached daemon runs after the command returned');
      assert.ok(linkExists(p.nsMt, iface));

      // Ready when it returns: the start state, at once (no retry), then wg setconf as wg-quick does it.
      const first = await inNs(p.nsMt, 'wg', ['show', iface, 'dump']);
      assert.equal(first.code, 0, `wg show right after wg-userspace returned: ${first.stderr}`);
      assert.equal(first.stdout.trim().split('\t')[0], '(none)', 'no private key yet');

      // A second copy for the same name fails (exit code and reason) and leaves the first alone.
      const second = await userspace();
      assert.equal(second.code, 2, second.stderr);
      assert.match(second.stderr, new RegExp(`cannot create TUN interface "${iface}": Device or resource busy`));
      assert.equal(readPid(iface), pid);
      assert.equal((await inNs(p.nsMt, 'wg', ['show', iface, 'dump'])).code, 0, 'the first copy still serves');
      const conf = join(p.work, 'setconf.conf');
      writeFileSync(conf, `[Interface]\nPrivateKey = ${p.mt.priv}\nListenPort = ${PORT}\n\n[Peer]\nPublicKey = ${p.go.pub}\nAllowedIPs = ${GO_TUNNEL}/32\nEndpoint = ${GO_UNDERLAY}:${PORT}\n`, { mode: 0o600 });
      const set = await inNs(p.nsMt, 'wg', ['setconf', iface, conf]);
      assert.equal(set.code, 0, set.stderr);
      const show = await inNs(p.nsMt, 'wg', ['show', iface]);
      assert.match(show.stdout, new RegExp(`public key: ${p.mt.pub.replace(/[+/]/g, '\\$&')}`));
      assert.match(show.stdout, new RegExp(`listening port: ${PORT}`));
      assert.match(show.stdout, new RegExp(`peer: ${p.go.pub.replace(/[+/]/g, '\\$&')}`));

      p.topo.exec(p.nsMt, 'ip', ['addr', 'add', `${MT_TUNNEL}/24`, 'dev', iface]);
      p.topo.exec(p.nsMt, 'ip', ['link', 'set', iface, 'up']);
      await pingOk(p.nsMt, GO_TUNNEL);

      // Move the TUN to nsY: packets now come from nsY, while the UDP socket stays in nsMt.
      p.topo.exec(p.nsMt, 'ip', ['link', 'set', iface, 'netns', nsY]);
      assert.equal(linkExists(p.nsMt, iface), false);
      assert.ok(linkExists(nsY, iface));
      p.topo.exec(nsY, 'ip', ['addr', 'add', `${MT_TUNNEL}/24`, 'dev', iface]);
      p.topo.exec(nsY, 'ip', ['link', 'set', iface, 'up']);
      await pingOk(nsY, GO_TUNNEL);
      await pingOk(p.nsGo, MT_TUNNEL);
      const udp = await inNs(p.nsMt, 'ss', ['-H', '-uln', `sport = :${PORT}`]);
      assert.match(udp.stdout, new RegExp(`:${PORT}\\b`), 'the UDP socket is still in the original namespace');
      assert.equal(alive(pid), true);
      const tr = (await inNs(nsY, 'wg', ['show', iface, 'transfer'])).stdout.trim().split('\t');
      assert.ok(Number(tr[1]) > 0 && Number(tr[2]) > 0, `wg show works after the move: ${tr.join(' ')}`);

      // Deleting the interface in nsY ends the daemon, which removes its socket.
      p.topo.exec(nsY, 'ip', ['link', 'del', iface]);
      const daemon = pid;
      await waitFor('the detached daemon to exit after its interface was deleted', () => !alive(daemon), 5000, 50);
      await waitFor('the UAPI socket to be removed', () => !existsSync(`${UAPI_DIR}/${iface}.sock`), 2000, 50);
      assert.equal(existsSync(`${PID_DIR}/${iface}.pid`), false, 'the pid file is removed');
      assert.match(readFileSync(`${PID_DIR}/${iface}.log`, 'utf8'), /is gone .*shutting down/);
    } finally {
      await killDaemon(pid ?? readPid(iface), iface);
    }
  });
});

test('meshtun up with 0.0.0.0/0 and ::/0, then meshtun down: process, interface, routes, rules and socket are gone', { skip }, async () => {
  await withWireguardGo('wd', `${MT_TUNNEL}/32,${MT_TUNNEL6}/128`, async (p) => {
    const iface = `${p.topo.tag}m`.slice(-15);
    const file = join(p.work, `${iface}.conf`);
    writeFileSync(file, mtConfig(p, { allowedIps: '0.0.0.0/0, ::/0' }), { mode: 0o600 });
    const rules4 = sh('ip', ['-n', p.nsMt, '-4', 'rule']);
    const rules6 = sh('ip', ['-n', p.nsMt, '-6', 'rule']);
    const proc = p.topo.spawn(p.nsMt, process.execPath, [MESHTUN, 'up', file]);
    const out = captureOutput(proc);
    try {
      await waitFor(`${iface} to come up`, () => out.text().includes(`${iface} is up`) || proc.exitCode !== null, 15_000);
      assert.equal(proc.exitCode, null, out.text());
      assert.equal(readPid(iface), proc.pid, 'the pid file names the process (ip netns exec execs it)');

      // wg-quick's policy routing: table 51820 holds the default routes, our packets carry the fwmark.
      assert.match(sh('ip', ['-n', p.nsMt, '-4', 'route', 'show', 'table', String(WG_QUICK_TABLE)]), new RegExp(`default dev ${iface}`));
      assert.match(sh('ip', ['-n', p.nsMt, '-6', 'route', 'show', 'table', String(WG_QUICK_TABLE)]), new RegExp(`default dev ${iface}`));
      assert.match(sh('ip', ['-n', p.nsMt, '-4', 'rule']), new RegExp(`not from all fwmark 0xca6c lookup ${WG_QUICK_TABLE}`));
      assert.match(sh('ip', ['-n', p.nsMt, '-6', 'rule']), /from all lookup main suppress_prefixlength 0/);
      assert.equal((await inNs(p.nsMt, 'wg', ['show', iface, 'fwmark'])).stdout.trim(), '0xca6c');
      await pingOk(p.nsMt, GO_TUNNEL);
      await pingOk(p.nsMt, GO_EXTRA);
      await pingOk(p.nsMt, GO_TUNNEL6);

      // Not root: refused, and the interface keeps running.
      const denied = await run('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, MESHTUN, 'down', iface]);
      assert.equal(denied.code, 2, denied.stderr);
      assert.match(denied.stderr, new RegExp(`^meshtun down: not allowed to stop interface "${iface}"`));
      assert.equal(proc.exitCode, null);

      const down = await run(process.execPath, [MESHTUN, 'down', iface]);
      assert.equal(down.code, 0, down.stderr);
      assert.equal(await waitExit(proc, 5000), true, `meshtun up exits after meshtun down: ${out.text()}`);
      assert.equal(proc.exitCode, 0, out.text());
      assert.match(out.text(), new RegExp(`${iface} stopped \\(SIGTERM\\)`));
      assert.equal(linkExists(p.nsMt, iface), false, 'the interface is gone');
      assert.equal(sh('ip', ['-n', p.nsMt, '-4', 'route', 'show', 'table', String(WG_QUICK_TABLE)]), '');
      assert.equal(sh('ip', ['-n', p.nsMt, '-6', 'route', 'show', 'table', String(WG_QUICK_TABLE)]), '');
      assert.equal(sh('ip', ['-n', p.nsMt, '-4', 'rule']), rules4, 'the IPv4 rules are as before');
      assert.equal(sh('ip', ['-n', p.nsMt, '-6', 'rule']), rules6, 'the IPv6 rules are as before');
      assert.equal(existsSync(`${UAPI_DIR}/${iface}.sock`), false, 'the UAPI socket is removed');
      assert.equal(existsSync(`${PID_DIR}/${iface}.pid`), false, 'the pid file is removed');
      const again = await run(process.execPath, [MESHTUN, 'down', iface]);
      assert.equal(again.code, 2);
      assert.match(again.stderr, new RegExp(`no meshtun process runs interface "${iface}"`));
    } finally {
      await killDaemon(proc.pid ?? null, iface);
    }
  });
});

test('meshtun up: each mistake prints one line naming file, line and problem, exit 2, no stack trace', { skip }, async () => {
  const topo = new Topology(uniqueTag('wb'));
  const work = mkdtempSync(join(tmpdir(), 'meshtun-wb-'));
  try {
    // Run inside a namespace: should a bad file ever come up, nothing leaks into the host.
    const ns = topo.ns('n');
    const k = genKeys();
    const peer = genKeys();
    const cases: { name: string; text: string; line: number; says: RegExp }[] = [
      { name: 'b1', line: 5, says: /AllowedIPs "100\.64\.0\.0\/33" has a prefix longer than 32/,
        text: `[Interface]\nPrivateKey = ${k.priv}\n[Peer]\nPublicKey = ${peer.pub}\nAllowedIPs = 100.64.0.0/33\n` },
      { name: 'b2', line: 2, says: /PrivateKey is not a WireGuard key/,
        text: '[Interface]\nPrivateKey = c2hvcnQ=\n' },
      { name: 'b3', line: 3, says: /unknown key "Foo" in \[Interface\]/,
        text: `[Interface]\nPrivateKey = ${k.priv}\nFoo = bar\n` },
      { name: 'b4', line: 5, says: /PublicKey/,
        text: `[Interface]\nPrivateKey = ${k.priv}\n\n[Peer]\nPublicKey = ${peer.pub.slice(0, 40)}\n` },
      { name: 'b5', line: 6, says: /Endpoint "198\.18\.0\.9" is not host:port/,
        text: `[Interface]\nPrivateKey = ${k.priv}\n[Peer]\nPublicKey = ${peer.pub}\nAllowedIPs = 100.64.0.2/32\nEndpoint = 198.18.0.9\n` },
      { name: 'b6', line: 3, says: /ListenPort "70000" is out of range/,
        text: `[Interface]\nPrivateKey = ${k.priv}\nListenPort = 70000\n` },
      { name: 'b7', line: 1, says: /outside a section/,
        text: `PrivateKey = ${k.priv}\n` },
      { name: 'b8', line: 3, says: /Address/,
        text: `[Interface]\nPrivateKey = ${k.priv}\nAddress = 100.64.0.300/24\n` },
      { name: 'b9', line: 3, says: /own public key/,
        text: `[Interface]\nPrivateKey = ${k.priv}\n[Peer]\nPublicKey = ${k.pub}\n` },
    ];
    for (const c of cases) {
      const file = join(work, `${c.name}.conf`);
      writeFileSync(file, c.text, { mode: 0o600 });
      const r = await inNs(ns, process.execPath, [MESHTUN, 'up', file], { timeoutMs: 15_000 });
      const ctx = `${c.name}: exit ${r.code}\n${r.stderr}${r.stdout}`;
      assert.equal(r.code, 2, ctx);
      assert.equal(r.stdout, '', ctx);
      const lines = r.stderr.split('\n').filter(Boolean);
      assert.equal(lines.length, 1, `one line: ${ctx}`);
      assert.ok(lines[0]!.startsWith(`meshtun up: ${file}:${c.line}: `), `names file and line ${c.line}: ${ctx}`);
      assert.match(lines[0]!, c.says, ctx);
      assert.equal(linkExists(ns, c.name), false, `${c.name} did not come up`);
    }

    const badName = join(work, 'this-name-is-too-long.conf');
    writeFileSync(badName, `[Interface]\nPrivateKey = ${k.priv}\n`, { mode: 0o600 });
    const n = await inNs(ns, process.execPath, [MESHTUN, 'up', badName]);
    assert.equal(n.code, 2);
    assert.match(n.stderr, /^meshtun up: .*this-name-is-too-long\.conf: the file name must be an interface name/);

    const missing = await inNs(ns, process.execPath, [MESHTUN, 'up', join(work, 'missing.conf')]);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /^meshtun up: no such file ".*missing\.conf"\n/);
    assert.doesNotMatch(missing.stderr, /\n\s+at /);

    // Not root: a readable, valid file is refused before anything is created.
    chmodSync(work, 0o755);
    const good = join(work, 'wbok.conf');
    writeFileSync(good, `[Interface]\nPrivateKey = ${k.priv}\nAddress = 100.64.0.1/24\n[Peer]\nPublicKey = ${peer.pub}\nAllowedIPs = 100.64.0.2/32\n`, { mode: 0o644 });
    const nobody = ['--reuid=65534', '--regid=65534', '--clear-groups'];
    for (const args of [['up', good], ['wg-userspace', 'wbok'], ['wg-userspace', '-f', 'wbok']]) {
      const r = await inNs(ns, 'setpriv', [...nobody, process.execPath, MESHTUN, ...args]);
      const ctx = `${args.join(' ')}: exit ${r.code}\n${r.stderr}`;
      assert.equal(r.code, 2, ctx);
      // The file is 0644 in a 0755 folder (so nobody can read it): `up` warns as wg-quick does.
      const warning = `Warning: \`${good}' is world accessible\n`;
      if (args[0] === 'up') assert.ok(r.stderr.startsWith(warning), ctx);
      const stderr = args[0] === 'up' ? r.stderr.slice(warning.length) : r.stderr;
      assert.match(stderr, new RegExp(`^meshtun ${args[0]}: creating the interface "wbok" needs root`), ctx);
      assert.match(r.stderr, /run as root, or use `meshtun up --userspace`/, ctx);
      assert.doesNotMatch(r.stderr, /\n\s+at /, ctx);
      assert.equal(linkExists(ns, 'wbok'), false);
    }
  } finally {
    await topo.destroy();
    rmSync(work, { recursive: true, force: true });
  }
});

test('PreUp, PostUp, PreDown and PostDown run in file order with %i replaced by the interface name', { skip }, async () => {
  const topo = new Topology(uniqueTag('wh'));
  const work = mkdtempSync(join(tmpdir(), 'meshtun-wh-'));
  const iface = `${topo.tag}m`.slice(-15);
  let proc: ReturnType<Topology['spawn']> | null = null;
  try {
    const ns = topo.ns('n');
    const marker = join(work, 'marker');
    // Each hook records its name, %i, and whether the interface exists at that moment.
    const hook = (what: string) => `echo "${what} %i $(ip link show dev %i >/dev/null 2>&1 && echo present || echo absent)" >> ${marker}`;
    const k = genKeys();
    const file = join(work, `${iface}.conf`);
    writeFileSync(file, [
      '[Interface]',
      `PrivateKey = ${k.priv}`,
      'Address = 100.64.0.1/24',
      `PreUp = ${hook('preup1')}`,
      `PostUp = ${hook('postup1')}`,
      `PreDown = ${hook('predown1')}`,
      `PostDown = ${hook('postdown1')}`,
      `PreUp = ${hook('preup2')}`,
      `PostUp = ${hook('postup2')}`,
      `PreDown = ${hook('predown2')}`,
      `PostDown = ${hook('postdown2')}`,
      '',
    ].join('\n'), { mode: 0o600 });
    proc = topo.spawn(ns, process.execPath, [MESHTUN, 'up', file]);
    const out = captureOutput(proc);
    const p = proc;
    await waitFor('PostUp hooks', () => (existsSync(marker) && readFileSync(marker, 'utf8').includes('postup2')) || p.exitCode !== null, 15_000);
    assert.equal(proc.exitCode, null, out.text());
    const down = await run(process.execPath, [MESHTUN, 'down', iface]);
    assert.equal(down.code, 0, down.stderr);
    assert.equal(await waitExit(proc, 5000), true, out.text());
    assert.equal(proc.exitCode, 0, out.text());
    assert.deepEqual(readFileSync(marker, 'utf8').split('\n').filter(Boolean), [
      `preup1 ${iface} absent`,
      `preup2 ${iface} absent`,
      `postup1 ${iface} present`,
      `postup2 ${iface} present`,
      `predown1 ${iface} present`,
      `predown2 ${iface} present`,
      `postdown1 ${iface} absent`,
      `postdown2 ${iface} absent`,
    ], out.text());
  } finally {
    await killDaemon(proc?.pid ?? null, iface);
    await topo.destroy();
    rmSync(work, { recursive: true, force: true });
  }
});
