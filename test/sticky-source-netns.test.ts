// Sticky source addresses (as WireGuard does): on a host with several addresses, meshtun answers
// a peer from the local address that peer last sent to, over IPv4 and IPv6, and falls back to an
// address the kernel chooses when that one disappears.
//
// Namespace "a" runs `meshtun up <file.conf>` (kernel TUN) with two IPv4 (198.18.0.1, .2) and two
// IPv6 (fd00:18::1, ::2) underlay addresses on its veth; namespace "b" runs wireguard-go with
// meshtun as its peer. wireguard-go roams to the source of every authenticated packet it gets, so
// `wg show <iface> endpoints` on b tells which local address meshtun answered from.
//
//   1. For each of a's four addresses in turn, b's endpoint is set to it (`wg set`), pings go
//      both ways through the tunnel, and wg still shows the address it chose.
//   2. Fallback: b targets a's second address (IPv4, then IPv6) while a pings b; the address is
//      removed from a mid-ping. meshtun keeps sending (the kernel refuses the vanished source,
//      meshtun drops it and resends from another address: the stickyCleared socket counter
//      moves), the pings keep being answered, and b follows meshtun to the remaining address.
//   3. Link-local: b targets a's fe80:: address while a has two more links (whose fe80::/64
//      routes come first): replies must leave on the link the peer's datagrams came in on.
// Each test fails without sticky sources (checked against an addon built before them).
// Needs root, /dev/net/tun, wireguard-go and wg; skipped otherwise.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, type ChildProcess } from 'node:child_process';
import { accessSync, constants, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Topology, uniqueTag, waitFor, captureOutput, isRoot, sh } from './netns.js';

function have(path: string): boolean {
  try { accessSync(path, constants.X_OK); return true; } catch { return false; }
}
const skip = isRoot && have('/usr/bin/wireguard-go') && have('/usr/bin/wg') && existsSync('/dev/net/tun')
  ? false : 'needs root, /dev/net/tun, wireguard-go and wg';

const MESHTUN_BIN = fileURLToPath(new URL('../../bin/meshtun.js', import.meta.url));
const TEST_TIMEOUT_MS = 90_000;
const UP_TIMEOUT_MS = 15_000;

/** a's underlay addresses: the first of each family is added first (the kernel's usual choice). */
const A_V4 = ['198.18.0.1', '198.18.0.2'] as const;
const A_V6 = ['fd00:18::1', 'fd00:18::2'] as const;
const B_V4 = '198.18.0.100';
const B_V6 = 'fd00:18::100';
const OVERLAY = { a: '100.64.0.1', b: '100.64.0.2' } as const;
const PORT = { a: 51820, b: 51821 } as const;

interface RunResult { code: number; stdout: string; stderr: string }

/** Runs a command without blocking the event loop (the daemons' output keeps being read). */
function nsRun(ns: string, cmd: string, args: string[]): Promise<RunResult> {
  return new Promise((resolve) => {
    execFile('ip', ['netns', 'exec', ns, cmd, ...args], { encoding: 'utf8' }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

function run(cmd: string, args: string[]): Promise<RunResult> {
  return new Promise((resolve) => {
    execFile(cmd, args, { encoding: 'utf8' }, (err, stdout, stderr) => resolve({ code: err ? 1 : 0, stdout, stderr }));
  });
}

function genKeyPair(): { privateKey: string; publicKey: string } {
  const privateKey = sh('wg', ['genkey']).trim();
  return { privateKey, publicKey: sh('wg', ['pubkey'], { input: privateKey + '\n' }).trim() };
}

const hostPort = (addr: string, port: number): string => (addr.includes(':') ? `[${addr}]:${port}` : `${addr}:${port}`);

interface Setup {
  topo: Topology;
  nsA: string;
  nsB: string;
  vethA: string;
  ifA: string;
  ifB: string;
  keysA: { privateKey: string; publicKey: string };
  meshtun: ChildProcess;
  output: () => string;
}

/** Builds both namespaces and starts meshtun (a) and wireguard-go (b, whose endpoint is a's
 * first IPv4 address); runs `body`; always cleans up (processes by PID, then namespaces). */
async function withSetup(body: (s: Setup) => Promise<void>): Promise<void> {
  const topo = new Topology(uniqueTag('ss'));
  const work = mkdtempSync(join(tmpdir(), 'meshtun-sticky-'));
  try {
    const nsA = topo.ns('a');
    const nsB = topo.ns('b');
    const { ifA: vethA, ifB: vethB } = topo.link(nsA, `${A_V4[0]}/24`, nsB, `${B_V4}/24`);
    sh('ip', ['-n', nsA, 'addr', 'add', `${A_V4[1]}/24`, 'dev', vethA]);
    for (const v6 of A_V6) sh('ip', ['-n', nsA, 'addr', 'add', `${v6}/64`, 'dev', vethA, 'nodad']);
    sh('ip', ['-n', nsB, 'addr', 'add', `${B_V6}/64`, 'dev', vethB, 'nodad']);

    const keysA = genKeyPair(), keysB = genKeyPair();
    const ifA = `${topo.tag}a`.slice(-15), ifB = `${topo.tag}b`.slice(-15);
    const conf = join(work, `${ifA}.conf`);
    writeFileSync(conf, [
      '[Interface]', `PrivateKey = ${keysA.privateKey}`, `ListenPort = ${PORT.a}`, `Address = ${OVERLAY.a}/24`, '',
      '[Peer]', `PublicKey = ${keysB.publicKey}`, `AllowedIPs = ${OVERLAY.b}/32`,
    ].join('\n') + '\n', { mode: 0o600 });
    const meshtun = topo.spawn(nsA, process.execPath, ['--enable-source-maps', MESHTUN_BIN, 'up', conf]);
    const out = captureOutput(meshtun);
    const state = await waitFor(`meshtun ${ifA} up`, () => {
      if (meshtun.exitCode !== null || meshtun.signalCode !== null) return 'exited';
      return / is up: /.test(out.text()) && existsSync(`/var/run/wireguard/${ifA}.sock`) ? 'up' : null;
    }, UP_TIMEOUT_MS, 50);
    assert.equal(state, 'up', `meshtun exited during start:\n${out.text()}`);

    const wgGo = topo.spawn(nsB, 'wireguard-go', ['-f', ifB], { env: { ...process.env, WG_PROCESS_FOREGROUND: '1' } });
    const wgOut = captureOutput(wgGo);
    await waitFor(`wireguard-go ${ifB} UAPI socket`, () => existsSync(`/var/run/wireguard/${ifB}.sock`), UP_TIMEOUT_MS, 50);
    const keyFile = join(work, `${ifB}.key`);
    writeFileSync(keyFile, keysB.privateKey + '\n', { mode: 0o600 });
    topo.exec(nsB, 'wg', ['set', ifB, 'private-key', keyFile, 'listen-port', String(PORT.b),
      'peer', keysA.publicKey, 'allowed-ips', `${OVERLAY.a}/32`, 'endpoint', hostPort(A_V4[0], PORT.a)]);
    topo.exec(nsB, 'ip', ['addr', 'add', `${OVERLAY.b}/24`, 'dev', ifB]);
    topo.exec(nsB, 'ip', ['link', 'set', ifB, 'up']);

    try {
      await body({ topo, nsA, nsB, vethA, ifA, ifB, keysA, meshtun, output: out.text });
    } catch (err) {
      (err as Error).message += `\n--- meshtun output:\n${out.text().slice(-4000)}\n--- wireguard-go output:\n${wgOut.text().slice(-2000)}`;
      throw err;
    }
  } finally {
    await topo.destroy();
    rmSync(work, { recursive: true, force: true });
  }
}

/** Pings `count` times from `ns`; returns how many replies came back. */
async function ping(ns: string, addr: string, count: number, interval = '0.2'): Promise<{ received: number; text: string }> {
  const r = await nsRun(ns, 'ping', ['-n', '-c', String(count), '-i', interval, '-W', '1', addr]);
  const m = /(\d+) received/.exec(r.stdout);
  return { received: m ? Number(m[1]) : 0, text: r.stdout + r.stderr };
}

async function assertPings(ns: string, addr: string): Promise<void> {
  const r = await ping(ns, addr, 3);
  assert.equal(r.received, 3, `ping ${addr} from ${ns}: ${r.text}`);
}

/** b's endpoint for meshtun as `wg show <iface> endpoints` prints it. */
async function endpointOnB(s: Setup): Promise<string> {
  const r = await nsRun(s.nsB, 'wg', ['show', s.ifB, 'endpoints']);
  assert.equal(r.code, 0, r.stderr);
  const [key, endpoint] = r.stdout.trim().split('\t');
  assert.equal(key, s.keysA.publicKey);
  return endpoint!;
}

/** meshtun's UDP socket counters, from `meshtun status <iface> --json`. */
async function socketCounters(s: Setup): Promise<Record<string, number>> {
  const r = await run(process.execPath, [MESHTUN_BIN, 'status', s.ifA, '--json']);
  assert.equal(r.code, 0, `meshtun status: ${r.stderr}`);
  const st = JSON.parse(r.stdout) as { socket?: Record<string, number> };
  assert.ok(st.socket, `meshtun status --json has socket counters: ${r.stdout}`);
  return st.socket;
}

test('sticky source: meshtun answers wireguard-go from each of its four addresses the peer targets in turn', { skip, timeout: TEST_TIMEOUT_MS }, async (t) => {
  await withSetup(async (s) => {
    await waitFor('first ping through the tunnel', async () => (await ping(s.nsB, OVERLAY.a, 1)).received === 1, 15_000, 0);
    // Twice round, so every address is chosen after another one was in use.
    for (const addr of [...A_V4, ...A_V6, ...A_V4, ...A_V6]) {
      const target = hostPort(addr, PORT.a);
      s.topo.exec(s.nsB, 'wg', ['set', s.ifB, 'peer', s.keysA.publicKey, 'endpoint', target]);
      await assertPings(s.nsB, OVERLAY.a); // b -> a: meshtun's replies
      await assertPings(s.nsA, OVERLAY.b); // a -> b: meshtun's own packets
      assert.equal(await endpointOnB(s), target, `wireguard-go keeps the address it chose (${target}): meshtun answered from it`);
    }
    const c = await socketCounters(s);
    assert.ok(c.stickySent! > 0, `datagrams went out from sticky sources: ${JSON.stringify(c)}`);
    assert.equal(c.stickyCleared, 0, `no source was refused: ${JSON.stringify(c)}`);
    t.diagnostic(`socket counters: ${JSON.stringify(c)}`);
  });
});

test('sticky source: when the address the peer uses disappears, meshtun sends from another one and the peer follows', { skip, timeout: TEST_TIMEOUT_MS }, async (t) => {
  await withSetup(async (s) => {
    await waitFor('first ping through the tunnel', async () => (await ping(s.nsB, OVERLAY.a, 1)).received === 1, 15_000, 0);
    let cleared = 0;
    for (const [gone, remaining, prefix] of [[A_V4[1], A_V4[0], 24], [A_V6[1], A_V6[0], 64]] as const) {
      const target = hostPort(gone, PORT.a);
      s.topo.exec(s.nsB, 'wg', ['set', s.ifB, 'peer', s.keysA.publicKey, 'endpoint', target]);
      await assertPings(s.nsB, OVERLAY.a);
      await assertPings(s.nsA, OVERLAY.b);
      assert.equal(await endpointOnB(s), target, 'meshtun answers from the address b chose');
      const before = await socketCounters(s);

      // a pings b (40 echoes, 50 ms apart); the address goes away after about a quarter of them.
      const pinging = ping(s.nsA, OVERLAY.b, 40, '0.05');
      await new Promise((r) => setTimeout(r, 500));
      s.topo.exec(s.nsA, 'ip', ['addr', 'del', `${gone}/${prefix}`, 'dev', s.vethA]);
      const during = await pinging;
      assert.ok(during.received >= 38, `a's pings kept being answered while ${gone} went away: ${during.text}`);

      await assertPings(s.nsA, OVERLAY.b);
      await assertPings(s.nsB, OVERLAY.a);
      assert.equal(await endpointOnB(s), hostPort(remaining, PORT.a), `b followed meshtun to ${remaining}`);
      const after = await socketCounters(s);
      assert.ok(after.stickyCleared! > before.stickyCleared!, `the refused source was counted: ${JSON.stringify(before)} -> ${JSON.stringify(after)}`);
      assert.ok(after.sent > before.sent, 'meshtun kept sending');
      cleared = after.stickyCleared!;
    }
    assert.ok(cleared >= 2, `one refused source per family: ${cleared}`);
    // The same counter in the Prometheus metrics.
    const metrics = await run('curl', ['-sS', '--unix-socket', `/var/run/meshtun/${s.ifA}.api`, 'http://meshtun/metrics']);
    const m = /^meshtun_socket_events_total\{[^}]*event="stickyCleared"\} (\d+)$/m.exec(metrics.stdout);
    assert.ok(m && Number(m[1]) === cleared, `stickyCleared in /metrics: ${metrics.stdout.split('\n').filter((l) => l.includes('socket')).join('\n')} ${metrics.stderr}`);
    t.diagnostic(`socket counters: ${JSON.stringify(await socketCounters(s))}`);
  });
});

test('sticky source: a peer that reaches meshtun on its IPv6 link-local address is answered on that link', { skip, timeout: TEST_TIMEOUT_MS }, async () => {
  await withSetup(async (s) => {
    // Two more links on a, so fe80::/64 is routed over three interfaces: without the interface
    // the peer's datagrams came in on, a reply to b's link-local address takes the wrong one.
    // The kernel takes the first of equal routes: move the veth's own to the end.
    for (const suffix of ['x', 'y']) {
      const name = `${s.topo.tag.slice(-8)}${suffix}`;
      sh('ip', ['-n', s.nsA, 'link', 'add', `${name}1`, 'type', 'veth', 'peer', 'name', `${name}2`]);
      for (const end of ['1', '2']) sh('ip', ['-n', s.nsA, 'link', 'set', `${name}${end}`, 'up']);
    }
    await waitFor('fe80::/64 routes on the extra links', () => s.topo.exec(s.nsA, 'ip', ['-6', 'route', 'show', 'fe80::/64']).trim().split('\n').length >= 5);
    sh('ip', ['-n', s.nsA, '-6', 'route', 'del', 'fe80::/64', 'dev', s.vethA]);
    sh('ip', ['-n', s.nsA, '-6', 'route', 'add', 'fe80::/64', 'dev', s.vethA]);
    assert.doesNotMatch(s.topo.exec(s.nsA, 'ip', ['-6', 'route', 'get', 'fe80::1']), new RegExp(`dev ${s.vethA} `), 'another link comes first');
    await waitFor('first ping through the tunnel', async () => (await ping(s.nsB, OVERLAY.a, 1)).received === 1, 15_000, 0);
    // a's link-local address (once duplicate address detection is done), and b's interface for its zone.
    const linkLocal = await waitFor('a link-local address on a\'s veth', () => {
      const m = /inet6 (fe80::[0-9a-f:]+)\/64 scope link\s*(\n|\\|valid)/.exec(s.topo.exec(s.nsA, 'ip', ['-6', '-o', 'addr', 'show', 'dev', s.vethA]));
      return m ? m[1]! : null;
    });
    const vethB = s.topo.exec(s.nsB, 'ip', ['-o', 'link', 'show', 'type', 'veth']).split(':')[1]!.trim().split('@')[0]!;
    const target = `[${linkLocal}%${vethB}]:${PORT.a}`;
    s.topo.exec(s.nsB, 'wg', ['set', s.ifB, 'peer', s.keysA.publicKey, 'endpoint', target]);
    await waitFor('b -> a over the link-local path', async () => (await ping(s.nsB, OVERLAY.a, 1)).received === 1, 10_000, 0);
    await assertPings(s.nsB, OVERLAY.a);
    await assertPings(s.nsA, OVERLAY.b);
    const shown = await endpointOnB(s);
    assert.ok(shown.startsWith(`[${linkLocal}`), `wireguard-go keeps a's link-local address: ${shown}`);
    const c = await socketCounters(s);
    assert.equal(c.stickyCleared, 0, JSON.stringify(c));
    assert.equal(c.sendErrors, 0, JSON.stringify(c));
  });
});
