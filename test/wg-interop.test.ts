// End-to-end WireGuard interop of `meshtun up <file.conf>` (kernel TUN, UDP socket, engine, UAPI)
// in network namespaces joined by a veth pair (underlay 198.18.0.0/24; overlay 100.64.0.0/24 and
// fd00::/64). Each test builds and destroys its own namespaces.
//
//   1. meshtun <-> wireguard-go in both roles (the initiator is the side with the Endpoint), with
//      and without a preshared key: ping over IPv4 and IPv6 both ways, then 200 MB over TCP each
//      way (IPv4 one way, IPv6 the other) with matching SHA-256 (test/tcp-sha-helper.ts).
//   2. meshtun <-> meshtun: the same, with a PSK; and roaming: the initiator's underlay address
//      changes during a 100 MB transfer, the responder (which never had its endpoint) follows it
//      from authenticated data packets, and the transfer completes intact.
//   3. wg(8) against meshtun: `wg show` lists peer, endpoint, handshake and transfer; `wg set ...
//      allowed-ips` changes routing live (drop and restore an address, add a second one).
// Replay and unknown-key drops are unit-tested in test/engine.test.ts. Needs root, /dev/net/tun,
// wireguard-go and wg; skipped otherwise. Timings are reported as test diagnostics.

import { test, type TestContext } from 'node:test';
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
const TCP_HELPER = fileURLToPath(new URL('./tcp-sha-helper.js', import.meta.url));

/** Bytes per bulk transfer direction ("200 MB"). */
const BULK_BYTES = 200_000_000;
/** Bytes of the transfer during which an underlay address changes. */
const ROAM_BYTES = 100_000_000;
/** Receiver progress granularity, and how much must have arrived before the address changes. */
const PROGRESS_EVERY = 4 << 20;
const ROAM_AFTER_BYTES = 12 << 20;
const TRANSFER_TIMEOUT_MS = 90_000;
const UP_TIMEOUT_MS = 15_000;
const TEST_TIMEOUT_MS = 150_000;

const UNDERLAY = { a: '198.18.0.1', b: '198.18.0.2' } as const;
const ROAMED_UNDERLAY_A = '198.18.0.11';
const OVERLAY_V4 = { a: '100.64.0.1', b: '100.64.0.2' } as const;
const OVERLAY_V6 = { a: 'fd00::1', b: 'fd00::2' } as const;
const LISTEN_PORT = { a: 51820, b: 51821 } as const;

type Kind = 'meshtun' | 'wireguard-go';

interface Side {
  name: 'a' | 'b';
  kind: Kind;
  ns: string;
  /** The underlay veth end in this namespace. */
  veth: string;
  /** The WireGuard interface (also names the UAPI socket, so unique per test run). */
  iface: string;
  privateKey: string;
  publicKey: string;
  v4: string;
  v6: string;
  port: number;
  underlay: string;
  proc: ChildProcess | null;
  output: () => string;
}

interface Pair {
  topo: Topology;
  work: string;
  a: Side;
  b: Side;
}

interface PairOptions {
  a: Kind;
  b: Kind;
  psk: boolean;
  /** Which side has the other's Endpoint configured (and so initiates). */
  initiator: 'a' | 'b';
  /** Extra environment for meshtun processes (e.g. MESHTUN_LOG=debug). */
  meshtunEnv?: Record<string, string>;
}

interface RunResult { code: number; stdout: string; stderr: string }

/** Runs a command without blocking the event loop (helpers' output keeps being read). */
function run(cmd: string, args: string[]): Promise<RunResult> {
  return new Promise((resolve) => {
    execFile(cmd, args, { encoding: 'utf8' }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

function nsRun(ns: string, cmd: string, args: string[]): Promise<RunResult> {
  return run('ip', ['netns', 'exec', ns, cmd, ...args]);
}

function genKeyPair(): { privateKey: string; publicKey: string } {
  const privateKey = sh('wg', ['genkey']).trim();
  return { privateKey, publicKey: sh('wg', ['pubkey'], { input: privateKey + '\n' }).trim() };
}

// ---- bringing sides up ----

async function startMeshtun(pair: Pair, side: Side, peer: Side, opts: { psk: string | null; withEndpoint: boolean; env?: Record<string, string> }): Promise<void> {
  const lines = [
    '[Interface]',
    `PrivateKey = ${side.privateKey}`,
    `ListenPort = ${side.port}`,
    `Address = ${side.v4}/24, ${side.v6}/64`,
    '',
    '[Peer]',
    `PublicKey = ${peer.publicKey}`,
    ...(opts.psk ? [`PresharedKey = ${opts.psk}`] : []),
    `AllowedIPs = ${peer.v4}/32, ${peer.v6}/128`,
    ...(opts.withEndpoint ? [`Endpoint = ${peer.underlay}:${peer.port}`] : []),
  ];
  const conf = join(pair.work, `${side.iface}.conf`);
  writeFileSync(conf, lines.join('\n') + '\n', { mode: 0o600 });
  const p = pair.topo.spawn(side.ns, process.execPath, ['--enable-source-maps', MESHTUN_BIN, 'up', conf], {
    env: { ...process.env, ...opts.env },
  });
  const out = captureOutput(p);
  side.proc = p;
  side.output = out.text;
  const state = await waitFor(`meshtun ${side.iface} up`, () => {
    if (p.exitCode !== null || p.signalCode !== null) return 'exited';
    return / is up: /.test(out.text()) && existsSync(`/var/run/wireguard/${side.iface}.sock`) ? 'up' : null;
  }, UP_TIMEOUT_MS, 50);
  assert.equal(state, 'up', `meshtun exited during start:\n${out.text()}`);
}

async function startWireguardGo(pair: Pair, side: Side, peer: Side, opts: { psk: string | null; withEndpoint: boolean }): Promise<void> {
  const { topo, work } = pair;
  const p = topo.spawn(side.ns, 'wireguard-go', ['-f', side.iface], { env: { ...process.env, WG_PROCESS_FOREGROUND: '1' } });
  const out = captureOutput(p);
  side.proc = p;
  side.output = out.text;
  await waitFor(`wireguard-go ${side.iface} UAPI socket`, () => existsSync(`/var/run/wireguard/${side.iface}.sock`), UP_TIMEOUT_MS, 50);
  const keyFile = join(work, `${side.iface}.key`);
  writeFileSync(keyFile, side.privateKey + '\n', { mode: 0o600 });
  const args = ['set', side.iface, 'private-key', keyFile, 'listen-port', String(side.port),
    'peer', peer.publicKey, 'allowed-ips', `${peer.v4}/32,${peer.v6}/128`];
  if (opts.withEndpoint) args.push('endpoint', `${peer.underlay}:${peer.port}`);
  if (opts.psk) {
    const pskFile = join(work, `${side.iface}.psk`);
    writeFileSync(pskFile, opts.psk + '\n', { mode: 0o600 });
    args.push('preshared-key', pskFile);
  }
  topo.exec(side.ns, 'wg', args);
  topo.exec(side.ns, 'ip', ['addr', 'add', `${side.v4}/24`, 'dev', side.iface]);
  topo.exec(side.ns, 'ip', ['-6', 'addr', 'add', `${side.v6}/64`, 'dev', side.iface, 'nodad']);
  topo.exec(side.ns, 'ip', ['link', 'set', side.iface, 'up']);
}

/** Builds two namespaces, brings up both sides, runs `body`, and always cleans up. */
async function withPair(opts: PairOptions, body: (pair: Pair) => Promise<void>): Promise<void> {
  const topo = new Topology(uniqueTag('wx'));
  const work = mkdtempSync(join(tmpdir(), 'meshtun-wx-'));
  try {
    const nsA = topo.ns('a');
    const nsB = topo.ns('b');
    const { ifA, ifB } = topo.link(nsA, `${UNDERLAY.a}/24`, nsB, `${UNDERLAY.b}/24`);
    const mk = (name: 'a' | 'b', kind: Kind, ns: string, veth: string): Side => ({
      name, kind, ns, veth, iface: `${topo.tag}${name}`.slice(-15), ...genKeyPair(),
      v4: OVERLAY_V4[name], v6: OVERLAY_V6[name], port: LISTEN_PORT[name], underlay: UNDERLAY[name],
      proc: null, output: () => '',
    });
    const pair: Pair = { topo, work, a: mk('a', opts.a, nsA, ifA), b: mk('b', opts.b, nsB, ifB) };
    const psk = opts.psk ? sh('wg', ['genpsk']).trim() : null;
    for (const [side, peer] of [[pair.a, pair.b], [pair.b, pair.a]] as const) {
      const withEndpoint = opts.initiator === side.name;
      if (side.kind === 'meshtun') await startMeshtun(pair, side, peer, { psk, withEndpoint, env: opts.meshtunEnv });
      else await startWireguardGo(pair, side, peer, { psk, withEndpoint });
    }
    try {
      await body(pair);
    } catch (err) {
      const logs = [pair.a, pair.b].map((s) => `--- ${s.kind} ${s.iface} output:\n${s.output().slice(-4000)}`).join('\n');
      (err as Error).message += `\n${logs}`;
      throw err;
    }
  } finally {
    await topo.destroy();
    rmSync(work, { recursive: true, force: true });
  }
}

// ---- observations ----

/** Pings `count` times and returns how many replies came back. */
async function ping(ns: string, addr: string, count = 3): Promise<{ received: number; text: string }> {
  const r = await nsRun(ns, 'ping', ['-n', '-c', String(count), '-i', '0.2', '-W', '1', addr]);
  const m = /(\d+) received/.exec(r.stdout);
  return { received: m ? Number(m[1]) : 0, text: r.stdout + r.stderr };
}

async function assertPings(ns: string, addr: string): Promise<void> {
  const r = await ping(ns, addr, 3);
  assert.equal(r.received, 3, `ping ${addr} from ${ns}: ${r.text}`);
}

async function assertNoPing(ns: string, addr: string): Promise<void> {
  const r = await ping(ns, addr, 3);
  assert.equal(r.received, 0, `ping ${addr} from ${ns} should fail: ${r.text}`);
}

/** The first ping starts the handshake; retried until the tunnel carries it. */
async function pingUntilUp(ns: string, addr: string): Promise<void> {
  await waitFor(`first ping ${addr} from ${ns}`, async () => (await ping(ns, addr, 1)).received === 1, 15_000, 0);
}

interface DumpPeer { publicKey: string; presharedKey: string; endpoint: string; allowedIps: string; latestHandshake: number; rx: number; tx: number }

/** `wg show <iface> dump`, peer lines parsed. */
function wgDump(side: Side): DumpPeer[] {
  const lines = sh('ip', ['netns', 'exec', side.ns, 'wg', 'show', side.iface, 'dump']).trim().split('\n').slice(1);
  return lines.map((l) => {
    const f = l.split('\t');
    return { publicKey: f[0]!, presharedKey: f[1]!, endpoint: f[2]!, allowedIps: f[3]!, latestHandshake: Number(f[4]), rx: Number(f[5]), tx: Number(f[6]) };
  });
}

function onlyPeer(side: Side, peer: Side): DumpPeer {
  const peers = wgDump(side);
  assert.equal(peers.length, 1, `${side.iface} has one peer: ${JSON.stringify(peers)}`);
  assert.equal(peers[0]!.publicKey, peer.publicKey);
  return peers[0]!;
}

interface HelperEvent { event: string; bytes?: number; sha256?: string; error?: string }

/** A tcp-sha-helper process and the JSON events it printed. */
function helperEvents(p: ChildProcess): { events: HelperEvent[]; stderr: () => string } {
  const events: HelperEvent[] = [];
  let partial = '';
  let stderr = '';
  p.stdout!.on('data', (d: Buffer) => {
    partial += d.toString();
    let nl: number;
    while ((nl = partial.indexOf('\n')) >= 0) {
      const line = partial.slice(0, nl);
      partial = partial.slice(nl + 1);
      try { events.push(JSON.parse(line) as HelperEvent); } catch { stderr += `(bad line) ${line}\n`; }
    }
  });
  p.stderr!.on('data', (d: Buffer) => { stderr += d.toString(); });
  return { events, stderr: () => stderr };
}

async function waitEvent(h: { events: HelperEvent[]; stderr: () => string }, p: ChildProcess, what: string, pred: (e: HelperEvent) => boolean, ms: number): Promise<HelperEvent> {
  const end = Date.now() + ms;
  for (;;) {
    const e = h.events.find(pred);
    if (e) return e;
    const err = h.events.find((x) => x.event === 'error');
    if (err) throw new Error(`${what}: helper failed: ${err.error}`);
    if (p.exitCode !== null || p.signalCode !== null) {
      // Let the last output arrive before giving up.
      await new Promise((r) => setTimeout(r, 50));
      const late = h.events.find(pred);
      if (late) return late;
      throw new Error(`${what}: helper exited (${p.exitCode ?? p.signalCode}) ${JSON.stringify(h.events)} ${h.stderr()}`);
    }
    if (Date.now() > end) throw new Error(`${what}: timed out after ${ms} ms; events ${JSON.stringify(h.events.slice(-3))} ${h.stderr()}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

let tcpPort = 7100;

/** Sends `bytes` over TCP from `from` to `to` at overlay address `addr`; asserts both ends saw
 * the same bytes. `duringTransfer` runs once the receiver reports progress (if given). */
async function tcpTransfer(
  t: TestContext, pair: Pair, from: Side, to: Side, addr: string, bytes: number,
  during?: { afterBytes: number; action: () => Promise<void> },
): Promise<{ ms: number }> {
  const port = tcpPort++;
  const label = `${bytes / 1e6} MB ${from.kind}(${from.name}) -> ${to.kind}(${to.name}) via ${addr}`;
  const recvProc = pair.topo.spawn(to.ns, process.execPath, [TCP_HELPER, 'recv', addr, String(port), String(PROGRESS_EVERY)]);
  const recv = helperEvents(recvProc);
  await waitEvent(recv, recvProc, `receiver on ${addr}`, (e) => e.event === 'listening', 10_000);
  const t0 = Date.now();
  const sendProc = pair.topo.spawn(from.ns, process.execPath, [TCP_HELPER, 'send', addr, String(port), String(bytes), `seed-${label}`]);
  const send = helperEvents(sendProc);
  if (during) {
    await waitEvent(recv, recvProc, `${label}: progress`, (e) => e.event === 'progress' && e.bytes! >= during.afterBytes, TRANSFER_TIMEOUT_MS);
    await during.action();
  }
  const [got, sent] = await Promise.all([
    waitEvent(recv, recvProc, `${label}: receiver`, (e) => e.event === 'done', TRANSFER_TIMEOUT_MS),
    waitEvent(send, sendProc, `${label}: sender`, (e) => e.event === 'done', TRANSFER_TIMEOUT_MS),
  ]);
  const ms = Date.now() - t0;
  assert.equal(sent.bytes, bytes, `${label}: sender sent everything`);
  assert.equal(got.bytes, bytes, `${label}: receiver got every byte`);
  assert.equal(got.sha256, sent.sha256, `${label}: SHA-256 matches`);
  t.diagnostic(`${label}: ${ms} ms, ${((bytes * 8) / (ms / 1000) / 1e6).toFixed(0)} Mbit/s, sha256 ${got.sha256!.slice(0, 16)}...`);
  return { ms };
}

/** Pings over both address families in both directions, the initiator first. */
async function pingBothWays(initiator: Side, responder: Side): Promise<void> {
  await pingUntilUp(initiator.ns, responder.v4);
  await assertPings(initiator.ns, responder.v4);
  await assertPings(initiator.ns, responder.v6);
  await assertPings(responder.ns, initiator.v4);
  await assertPings(responder.ns, initiator.v6);
}

/** Ping + 200 MB each way, then checks meshtun's own counters and endpoint as wg(8) shows them. */
async function interopRound(t: TestContext, pair: Pair, initiatorName: 'a' | 'b'): Promise<void> {
  const initiator = pair[initiatorName];
  const responder = initiatorName === 'a' ? pair.b : pair.a;
  await pingBothWays(initiator, responder);
  // The responder never had an endpoint: it learned the initiator's from the handshake.
  assert.equal(onlyPeer(responder, initiator).endpoint, `${initiator.underlay}:${initiator.port}`);
  assert.equal(onlyPeer(initiator, responder).endpoint, `${responder.underlay}:${responder.port}`);
  await tcpTransfer(t, pair, pair.a, pair.b, pair.b.v4, BULK_BYTES);
  await tcpTransfer(t, pair, pair.b, pair.a, pair.a.v6, BULK_BYTES);
  for (const [side, peer] of [[pair.a, pair.b], [pair.b, pair.a]] as const) {
    const d = onlyPeer(side, peer);
    assert.ok(d.rx > BULK_BYTES && d.tx > BULK_BYTES, `${side.kind} ${side.iface} counted both transfers: rx ${d.rx} tx ${d.tx}`);
    assert.ok(Math.abs(d.latestHandshake - Date.now() / 1000) < 120, `recent handshake: ${d.latestHandshake}`);
  }
}

// ---- 1. meshtun <-> wireguard-go ----

for (const psk of [false, true]) {
  const pskText = psk ? 'with PSK' : 'no PSK';
  test(`meshtun initiates to wireguard-go (${pskText}): ping v4/v6 both ways, 200 MB TCP each way`, { skip, timeout: TEST_TIMEOUT_MS }, async (t) => {
    await withPair({ a: 'meshtun', b: 'wireguard-go', psk, initiator: 'a' }, (pair) => interopRound(t, pair, 'a'));
  });
  test(`wireguard-go initiates to meshtun (${pskText}): ping v4/v6 both ways, 200 MB TCP each way`, { skip, timeout: TEST_TIMEOUT_MS }, async (t) => {
    await withPair({ a: 'meshtun', b: 'wireguard-go', psk, initiator: 'b' }, (pair) => interopRound(t, pair, 'b'));
  });
}

// ---- 2. meshtun <-> meshtun ----

test('meshtun <-> meshtun (with PSK): ping v4/v6 both ways, 200 MB TCP each way', { skip, timeout: TEST_TIMEOUT_MS }, async (t) => {
  await withPair({ a: 'meshtun', b: 'meshtun', psk: true, initiator: 'a' }, (pair) => interopRound(t, pair, 'a'));
});

test('meshtun <-> meshtun roaming: the initiator changes its underlay address mid-transfer', { skip, timeout: TEST_TIMEOUT_MS }, async (t) => {
  await withPair({ a: 'meshtun', b: 'meshtun', psk: false, initiator: 'a' }, async (pair) => {
    const { a, b, topo } = pair;
    // Keep the route when the primary address goes: the new one (a secondary) is promoted.
    topo.exec(a.ns, 'sysctl', ['-q', '-w', `net.ipv4.conf.${a.veth}.promote_secondaries=1`]);
    await pingUntilUp(a.ns, b.v4);
    assert.equal(onlyPeer(b, a).endpoint, `${UNDERLAY.a}:${a.port}`, 'b learned a\'s first address from the handshake');
    const handshakeBefore = onlyPeer(b, a).latestHandshake;

    let rxAtRoam = 0;
    await tcpTransfer(t, pair, a, b, b.v4, ROAM_BYTES, {
      afterBytes: ROAM_AFTER_BYTES,
      action: async () => {
        topo.exec(a.ns, 'ip', ['addr', 'add', `${ROAMED_UNDERLAY_A}/24`, 'dev', a.veth]);
        topo.exec(a.ns, 'ip', ['addr', 'del', `${UNDERLAY.a}/24`, 'dev', a.veth]);
        rxAtRoam = onlyPeer(b, a).rx;
        const addrs = topo.exec(a.ns, 'ip', ['-4', '-o', 'addr', 'show', 'dev', a.veth]);
        assert.match(addrs, new RegExp(`inet ${ROAMED_UNDERLAY_A.replaceAll('.', '\\.')}/24`));
        assert.doesNotMatch(addrs, new RegExp(`inet ${UNDERLAY.a.replaceAll('.', '\\.')}/`));
      },
    });
    // Everything b received after the old address was gone came from the new one.
    const rxAfterRoam = onlyPeer(b, a).rx - rxAtRoam;
    t.diagnostic(`b received ${rxAfterRoam} tunnel bytes from a's new address (of ${ROAM_BYTES} payload bytes)`);
    assert.ok(rxAfterRoam > ROAM_BYTES / 4, `the address changed mid-transfer: ${rxAfterRoam} bytes arrived afterwards`);

    // b followed a to its new address, learned from authenticated data (no new handshake), as wg shows.
    const endpoints = topo.exec(b.ns, 'wg', ['show', b.iface, 'endpoints']).trim();
    assert.equal(endpoints, `${a.publicKey}\t${ROAMED_UNDERLAY_A}:${a.port}`);
    assert.equal(onlyPeer(b, a).latestHandshake, handshakeBefore, 'no new handshake was needed');
    assert.equal(onlyPeer(a, b).endpoint, `${UNDERLAY.b}:${b.port}`);
    // And b can reach a at its new address on its own.
    await assertPings(b.ns, a.v4);
    await assertPings(b.ns, a.v6);
  });
});

// ---- 3. wg(8) against meshtun ----

test('wg show lists meshtun\'s peer; wg set allowed-ips changes routing live', { skip, timeout: TEST_TIMEOUT_MS }, async () => {
  await withPair({ a: 'meshtun', b: 'wireguard-go', psk: false, initiator: 'a', meshtunEnv: { MESHTUN_LOG: 'debug' } }, async (pair) => {
    const { a, b, topo } = pair;
    await pingUntilUp(a.ns, b.v4);
    await assertPings(a.ns, b.v4);
    await assertPings(b.ns, a.v4);

    const show = topo.exec(a.ns, 'wg', ['show', a.iface]);
    assert.match(show, new RegExp(`^interface: ${a.iface}$`, 'm'));
    assert.ok(show.includes(`public key: ${a.publicKey}`), show);
    assert.ok(show.includes(`listening port: ${a.port}`), show);
    assert.ok(show.includes(`peer: ${b.publicKey}`), show);
    assert.ok(show.includes(`endpoint: ${b.underlay}:${b.port}`), show);
    assert.ok(show.includes(`allowed ips: ${b.v4}/32, ${b.v6}/128`), show);
    assert.match(show, /latest handshake: (Now|\d+ seconds? ago)/);
    const transfer = /transfer: ([\d.]+) (B|KiB|MiB) received, ([\d.]+) (B|KiB|MiB) sent/.exec(show);
    assert.ok(transfer && Number(transfer[1]) > 0 && Number(transfer[3]) > 0, show);
    const d0 = onlyPeer(a, b);
    assert.ok(d0.rx > 0 && d0.tx > 0, JSON.stringify(d0));
    assert.ok(Math.abs(d0.latestHandshake - Date.now() / 1000) < 30, `handshake time ${d0.latestHandshake}`);
    assert.equal(d0.presharedKey, '(none)');

    // Take the peer's IPv4 address out of its allowed-ips: both directions stop, IPv6 goes on.
    topo.exec(a.ns, 'wg', ['set', a.iface, 'peer', b.publicKey, 'allowed-ips', `${b.v6}/128`]);
    assert.equal(topo.exec(a.ns, 'wg', ['show', a.iface, 'allowed-ips']).trim(), `${b.publicKey}\t${b.v6}/128`);
    await assertNoPing(a.ns, b.v4); // no peer for the destination: meshtun drops it
    const rxBefore = onlyPeer(a, b).rx;
    await assertNoPing(b.ns, a.v4); // arrives and decrypts, but the source is not allowed
    assert.ok(onlyPeer(a, b).rx > rxBefore, 'the echo requests reached meshtun and authenticated');
    await waitFor('meshtun logs the source-not-allowed drop', () => a.output().includes('its source address is not in the peer\'s allowed-ips'), 5000);
    await assertPings(a.ns, b.v6);

    // Put it back: IPv4 works again both ways.
    topo.exec(a.ns, 'wg', ['set', a.iface, 'peer', b.publicKey, 'allowed-ips', `${b.v4}/32,${b.v6}/128`]);
    await assertPings(a.ns, b.v4);
    await assertPings(b.ns, a.v4);

    // A second address behind the peer: a kernel route alone is not enough, the allowed-ips entry is.
    const second = '100.64.9.2';
    topo.exec(b.ns, 'ip', ['addr', 'add', `${second}/32`, 'dev', b.iface]);
    topo.exec(a.ns, 'ip', ['route', 'add', '100.64.9.0/24', 'dev', a.iface]);
    await assertNoPing(a.ns, second);
    topo.exec(a.ns, 'wg', ['set', a.iface, 'peer', b.publicKey, 'allowed-ips', `${b.v4}/32,${b.v6}/128,100.64.9.0/24`]);
    const allowed = topo.exec(a.ns, 'wg', ['show', a.iface, 'allowed-ips']).trim().split('\t')[1]!.split(' ').sort();
    assert.deepEqual(allowed, [`${b.v4}/32`, '100.64.9.0/24', `${b.v6}/128`].sort());
    await assertPings(a.ns, second);
    await assertPings(a.ns, b.v4);
  });
});
