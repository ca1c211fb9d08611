// THE interop proof for meshtun's WireGuard handshake and transport crypto: real wireguard-go
// (Debian's 0.0.20220316) in one network namespace, configured with wg(8); meshtun's own modules
// (crypto, noise, cookie, messages; no engine) in a small Node script in another namespace,
// joined by a veth pair on 198.18.0.0/24. Tunnel addresses: wireguard-go 100.64.0.1, meshtun 100.64.0.2.
//
//   meshtun initiates: initiation -> wireguard-go's response -> ICMP echo request in transport
//     data -> the echo reply from wireguard-go's namespace comes back encrypted and decrypts.
//   wireguard-go initiates: `ping 100.64.0.2` in its namespace -> initiation -> our response ->
//     the echo request arrives encrypted -> our encrypted echo reply makes the ping succeed.
// Each with and without a preshared key, plus a PSK mismatch that must fail. `wg show` must
// report the handshake and traffic. Needs root, wireguard-go and wg; skipped otherwise.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFile } from 'node:child_process';
import { accessSync, constants, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Topology, uniqueTag, waitFor, captureOutput, isRoot } from './netns.js';
import { generatePrivateKey, publicKey, encodeBase64Key } from '../src/crypto/index.js';
import type { HelperConfig } from './wg-interop-helper.js';

function have(path: string): boolean {
  try { accessSync(path, constants.X_OK); return true; } catch { return false; }
}
const skip = isRoot && have('/usr/bin/wireguard-go') && have('/usr/bin/wg') && existsSync('/dev/net/tun')
  ? false : 'needs root, /dev/net/tun, wireguard-go and wg';

const HELPER = fileURLToPath(new URL('./wg-interop-helper.js', import.meta.url));
const GO_UNDERLAY = '198.18.0.1';
const MT_UNDERLAY = '198.18.0.2';
const GO_PORT = 51820;
const MT_PORT = 40123;
const GO_TUNNEL = '100.64.0.1';
const MT_TUNNEL = '100.64.0.2';

interface Step { step: string; [k: string]: unknown }

interface Scenario {
  topo: Topology;
  nsGo: string;
  nsMt: string;
  iface: string;
  goPub: string;
  mtPriv: string;
  mtPub: string;
  psk?: string;
  goLog: () => string;
}

/** Runs a command asynchronously (the event loop keeps reading the helper's output meanwhile). */
function run(cmd: string, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(cmd, args, { encoding: 'utf8' }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

/** Sets up both namespaces and a configured, running wireguard-go; runs `body`; cleans up. */
async function withWireguardGo(opts: { psk: boolean; mtPsk?: 'same' | 'other' }, body: (s: Scenario) => Promise<void>): Promise<void> {
  const topo = new Topology(uniqueTag('wgi'));
  const work = mkdtempSync(join(tmpdir(), 'meshtun-wgi-'));
  try {
    const nsGo = topo.ns('g');
    const nsMt = topo.ns('m');
    topo.link(nsGo, `${GO_UNDERLAY}/24`, nsMt, `${MT_UNDERLAY}/24`);
    const iface = `wgi${process.pid % 100000}${topo.tag.slice(-1)}`.slice(0, 15);
    const go = topo.spawn(nsGo, 'wireguard-go', ['-f', iface], { env: { ...process.env, WG_PROCESS_FOREGROUND: '1' } });
    const log = captureOutput(go);
    await waitFor('wireguard-go UAPI socket', () => existsSync(`/var/run/wireguard/${iface}.sock`), 10000);

    const goPrivKey = generatePrivateKey();
    const mtPrivKey = generatePrivateKey();
    const goPub = encodeBase64Key(publicKey(goPrivKey));
    const mtPub = encodeBase64Key(publicKey(mtPrivKey));
    const keyFile = join(work, 'go.key');
    writeFileSync(keyFile, encodeBase64Key(goPrivKey) + '\n', { mode: 0o600 });
    const args = ['set', iface, 'private-key', keyFile, 'listen-port', String(GO_PORT),
      'peer', mtPub, 'allowed-ips', `${MT_TUNNEL}/32`, 'endpoint', `${MT_UNDERLAY}:${MT_PORT}`];
    let psk: string | undefined;
    if (opts.psk) {
      psk = encodeBase64Key(generatePrivateKey());
      const pskFile = join(work, 'psk.key');
      writeFileSync(pskFile, psk + '\n', { mode: 0o600 });
      args.push('preshared-key', pskFile);
    }
    topo.exec(nsGo, 'wg', args);
    topo.exec(nsGo, 'ip', ['addr', 'add', `${GO_TUNNEL}/24`, 'dev', iface]);
    topo.exec(nsGo, 'ip', ['link', 'set', iface, 'up']);
    const mtPsk = opts.mtPsk === 'other' ? encodeBase64Key(generatePrivateKey()) : psk;
    await body({ topo, nsGo, nsMt, iface, goPub, mtPriv: encodeBase64Key(mtPrivKey), mtPub, psk: mtPsk, goLog: log.text });
  } finally {
    await topo.destroy();
    rmSync(work, { recursive: true, force: true });
  }
}

/** Starts the meshtun helper in its namespace; resolves with every step it printed when it exits. */
function startHelper(s: Scenario, mode: HelperConfig['mode']): { steps: Step[]; listening: Promise<void>; done: Promise<{ code: number; steps: Step[]; stderr: string }> } {
  const cfg: HelperConfig = {
    mode, privateKey: s.mtPriv, peerPublicKey: s.goPub, ...(s.psk ? { presharedKey: s.psk } : {}),
    listenPort: MT_PORT, peerHost: GO_UNDERLAY, peerPort: GO_PORT,
    tunnelAddress: MT_TUNNEL, peerTunnelAddress: GO_TUNNEL, timeoutMs: 10000,
  };
  const p = spawn('ip', ['netns', 'exec', s.nsMt, process.execPath, '--enable-source-maps', HELPER, JSON.stringify(cfg)], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  s.topo.procs.push(p);
  const steps: Step[] = [];
  let stderr = '';
  let onListening: () => void = () => {};
  const listening = new Promise<void>((resolve) => { onListening = resolve; });
  let partial = '';
  p.stdout!.on('data', (d: Buffer) => {
    partial += d.toString();
    let nl: number;
    while ((nl = partial.indexOf('\n')) >= 0) {
      const line = partial.slice(0, nl);
      partial = partial.slice(nl + 1);
      const step = JSON.parse(line) as Step;
      steps.push(step);
      if (step.step === 'listening') onListening();
    }
  });
  p.stderr!.on('data', (d: Buffer) => { stderr += d.toString(); });
  const done = new Promise<{ code: number; steps: Step[]; stderr: string }>((resolve) => {
    p.on('exit', (code) => { onListening(); resolve({ code: code ?? 1, steps, stderr }); });
  });
  return { steps, listening, done };
}

function stepOf(steps: Step[], name: string): Step | undefined {
  return steps.find((s) => s.step === name);
}

/** Asserts that wg(8) shows a completed handshake and traffic both ways for our peer. */
function assertWgShows(s: Scenario): void {
  const hs = s.topo.exec(s.nsGo, 'wg', ['show', s.iface, 'latest-handshakes']).trim().split('\t');
  assert.equal(hs[0], s.mtPub, 'wg show lists our key');
  assert.ok(Number(hs[1]) > 0, `latest handshake is set: ${hs.join(' ')}`);
  assert.ok(Math.abs(Number(hs[1]) - Date.now() / 1000) < 60, 'and recent');
  const tr = s.topo.exec(s.nsGo, 'wg', ['show', s.iface, 'transfer']).trim().split('\t');
  assert.equal(tr[0], s.mtPub);
  assert.ok(Number(tr[1]) > 0, `wireguard-go received bytes: ${tr.join(' ')}`);
  assert.ok(Number(tr[2]) > 0, `wireguard-go sent bytes: ${tr.join(' ')}`);
}

async function meshtunInitiates(psk: boolean): Promise<void> {
  await withWireguardGo({ psk }, async (s) => {
    const h = startHelper(s, 'initiator');
    const r = await h.done;
    const ctx = `helper: ${JSON.stringify(r.steps)} ${r.stderr}\nwireguard-go: ${s.goLog()}`;
    assert.equal(r.code, 0, ctx);
    const hs = stepOf(r.steps, 'handshake');
    assert.ok(hs, ctx);
    assert.equal(hs.initiator, true);
    assert.equal(hs.localIndex, 0x1234abcd);
    const echo = stepOf(r.steps, 'received-echo');
    assert.ok(echo, ctx);
    assert.equal(echo.type, 0, 'an ICMP echo reply');
    assert.equal(echo.src, GO_TUNNEL);
    assert.equal(echo.dst, MT_TUNNEL);
    assert.equal(echo.id, 0x4d54);
    assert.equal(echo.seq, 1);
    assert.equal(echo.checksumOk, true);
    assert.equal(echo.payloadMatches, true);
    assertWgShows(s);
  });
}

async function wireguardGoInitiates(psk: boolean): Promise<void> {
  await withWireguardGo({ psk }, async (s) => {
    const h = startHelper(s, 'responder');
    await h.listening;
    const ping = await run('ip', ['netns', 'exec', s.nsGo, 'ping', '-c', '1', '-W', '8', '-n', MT_TUNNEL]);
    const r = await h.done;
    const ctx = `ping: ${ping.stdout} ${ping.stderr}\nhelper: ${JSON.stringify(r.steps)} ${r.stderr}\nwireguard-go: ${s.goLog()}`;
    assert.equal(r.code, 0, ctx);
    const consumed = stepOf(r.steps, 'consumed-initiation');
    assert.ok(consumed, ctx);
    assert.equal(consumed.from, `${GO_UNDERLAY}:${GO_PORT}`);
    const hs = stepOf(r.steps, 'handshake');
    assert.equal(hs?.initiator, false);
    const echo = stepOf(r.steps, 'received-echo');
    assert.ok(echo, ctx);
    assert.equal(echo.type, 8, 'an ICMP echo request');
    assert.equal(echo.src, GO_TUNNEL);
    assert.equal(echo.dst, MT_TUNNEL);
    assert.equal(echo.checksumOk, true);
    assert.ok(stepOf(r.steps, 'sent-echo-reply'), ctx);
    // wireguard-go decrypted our reply and delivered it: ping saw it.
    assert.equal(ping.code, 0, ctx);
    assert.match(ping.stdout, /1 received/);
    assertWgShows(s);
  });
}

test('interop: meshtun initiates a handshake with wireguard-go and exchanges ICMP (no PSK)', { skip, timeout: 60000 }, async () => {
  await meshtunInitiates(false);
});

test('interop: meshtun initiates a handshake with wireguard-go and exchanges ICMP (with PSK)', { skip, timeout: 60000 }, async () => {
  await meshtunInitiates(true);
});

test('interop: wireguard-go initiates, meshtun responds, ping succeeds (no PSK)', { skip, timeout: 60000 }, async () => {
  await wireguardGoInitiates(false);
});

test('interop: wireguard-go initiates, meshtun responds, ping succeeds (with PSK)', { skip, timeout: 60000 }, async () => {
  await wireguardGoInitiates(true);
});

test('interop: a preshared key mismatch fails the handshake on our side', { skip, timeout: 60000 }, async () => {
  await withWireguardGo({ psk: true, mtPsk: 'other' }, async (s) => {
    const r = await startHelper(s, 'initiator').done;
    assert.equal(r.code, 1);
    assert.match(String(stepOf(r.steps, 'error')?.error), /consumeResponse refused/);
    assert.equal(stepOf(r.steps, 'handshake'), undefined);
  });
});
