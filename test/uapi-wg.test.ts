// The UAPI socket against the real wg(8): a UapiServer at /var/run/wireguard/<iface>.sock, backed
// by the in-memory device (the point here is the protocol, not the engine), driven by
// `wg show`, `wg showconf`, `wg set` and `wg setconf`, asserting on what wg prints.
// wg(8) needs no kernel interface for a userspace socket: it finds interfaces by socket name.
// Needs root (the socket directory) and wireguard-tools; skipped otherwise.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { accessSync, constants, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { UapiServer, uapiSocketPath } from '../src/wireguard/uapi-server.js';
import { MemoryUapiDevice } from '../src/wireguard/uapi-memory-device.js';
import { UapiError, type UapiSetOp } from '../src/wireguard/uapi.js';
import { generatePrivateKey, publicKey, encodeBase64Key } from '../src/crypto/index.js';
import { parseWgQuickConfig, renderWgConfig } from '../src/daemon/wg-quick-config.js';

function haveWg(): boolean {
  try {
    accessSync('/usr/bin/wg', constants.X_OK);
    return process.getuid?.() === 0;
  } catch {
    return false;
  }
}
const skip = haveWg() ? false : 'needs root and wg(8)';
const skipQuick = skip || (existsSync('/usr/bin/wg-quick') ? false : 'needs wg-quick(8)');

const work = mkdtempSync(join(tmpdir(), 'meshtun-uapi-wg-'));
const servers: UapiServer[] = [];
after(async () => {
  for (const s of servers) await s.close();
  rmSync(work, { recursive: true, force: true });
});

let ifaceCounter = 0;
/** A unique interface name (<= 15 characters) and a server for it. */
async function start(device = new MemoryUapiDevice()): Promise<{ iface: string; device: MemoryUapiDevice; server: UapiServer }> {
  const iface = `mtu${process.pid}${String.fromCharCode(97 + ifaceCounter++)}`;
  const server = await UapiServer.listen(uapiSocketPath(iface), device);
  servers.push(server);
  return { iface, device, server };
}

/** Runs wg (asynchronously: the server answering it lives in this process). */
function wg(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile('wg', args, { encoding: 'utf8', maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

async function wgOk(...args: string[]): Promise<string> {
  const r = await wg(...args);
  assert.equal(r.code, 0, `wg ${args.join(' ')} failed: ${r.stderr}`);
  return r.stdout;
}

function keyPair(): { priv: string; pub: string } {
  const k = generatePrivateKey();
  return { priv: encodeBase64Key(k), pub: encodeBase64Key(publicKey(k)) };
}

function file(name: string, text: string): string {
  const p = join(work, name);
  writeFileSync(p, text, { mode: 0o600 });
  return p;
}

test('wg: an empty interface is listed and shown', { skip }, async () => {
  const { iface } = await start();
  assert.ok((await wgOk('show', 'interfaces')).split(/\s+/).includes(iface));
  assert.equal(await wgOk('show', iface), `interface: ${iface}\n`);
  assert.equal(await wgOk('showconf', iface), '[Interface]\n\n');
});

test('wg: set private-key and listen-port, then show them', { skip }, async () => {
  const { iface, device } = await start();
  const me = keyPair();
  await wgOk('set', iface, 'private-key', file('me.key', me.priv + '\n'), 'listen-port', '51820', 'fwmark', '0x1234');
  assert.equal(device.privateKey && encodeBase64Key(device.privateKey), me.priv);
  assert.equal(device.listenPort, 51820);
  assert.equal(device.fwmark, 0x1234);
  assert.equal(await wgOk('show', iface),
    `interface: ${iface}\n  public key: ${me.pub}\n  private key: (hidden)\n  listening port: 51820\n  fwmark: 0x1234\n`);
  assert.equal(await wgOk('show', iface, 'public-key'), `${me.pub}\n`);
  assert.equal(await wgOk('show', iface, 'private-key'), `${me.priv}\n`);
  assert.equal(await wgOk('show', iface, 'listen-port'), '51820\n');
  assert.equal(await wgOk('show', iface, 'fwmark'), '0x1234\n');
});

test('wg: add a peer, see it in show, showconf and the dumps, then remove it', { skip }, async () => {
  const { iface, device } = await start();
  const me = keyPair();
  const peer = keyPair();
  await wgOk('set', iface, 'private-key', file('me2.key', me.priv), 'listen-port', '51821');
  await wgOk('set', iface, 'peer', peer.pub, 'allowed-ips', '10.0.0.0/24,fd00::/64', 'endpoint', '198.18.0.1:51820',
    'persistent-keepalive', '25', 'preshared-key', file('psk', keyPair().priv));
  assert.equal(device.peers.size, 1);

  // Statistics come from the device: a handshake 5 s ago, some traffic.
  const p = [...device.peers.values()][0]!;
  const hs = Date.now() - 5000;
  p.lastHandshakeWallMs = hs;
  p.rxBytes = 1234;
  p.txBytes = 5 * 1024 * 1024;

  const show = await wgOk('show', iface);
  assert.match(show, new RegExp(
    `^interface: ${iface}\\n  public key: ${escape(me.pub)}\\n  private key: \\(hidden\\)\\n  listening port: 51821\\n\\n` +
    `peer: ${escape(peer.pub)}\\n  preshared key: \\(hidden\\)\\n  endpoint: 198\\.18\\.0\\.1:51820\\n` +
    '  allowed ips: 10\\.0\\.0\\.0/24, fd00::/64\\n  latest handshake: \\d+ seconds ago\\n' +
    '  transfer: 1\\.21 KiB received, 5\\.00 MiB sent\\n  persistent keepalive: every 25 seconds\\n$'));

  const conf = await wgOk('showconf', iface);
  assert.match(conf, new RegExp(`^\\[Interface\\]\\nListenPort = 51821\\nPrivateKey = ${escape(me.priv)}\\n\\n` +
    `\\[Peer\\]\\nPublicKey = ${escape(peer.pub)}\\nPresharedKey = [A-Za-z0-9+/]{43}=\\n` +
    'AllowedIPs = 10\\.0\\.0\\.0/24, fd00::/64\\nEndpoint = 198\\.18\\.0\\.1:51820\\nPersistentKeepalive = 25\\n$'));

  assert.equal(await wgOk('show', iface, 'allowed-ips'), `${peer.pub}\t10.0.0.0/24 fd00::/64\n`);
  assert.equal(await wgOk('show', iface, 'endpoints'), `${peer.pub}\t198.18.0.1:51820\n`);
  assert.equal(await wgOk('show', iface, 'transfer'), `${peer.pub}\t1234\t${5 * 1024 * 1024}\n`);
  assert.equal(await wgOk('show', iface, 'latest-handshakes'), `${peer.pub}\t${Math.floor(hs / 1000)}\n`);
  assert.equal(await wgOk('show', iface, 'persistent-keepalive'), `${peer.pub}\t25\n`);
  const dump = (await wgOk('show', iface, 'dump')).split('\n');
  assert.equal(dump[0], `${me.priv}\t${me.pub}\t51821\toff`);
  assert.match(dump[1]!, new RegExp(`^${escape(peer.pub)}\\t\\S{44}\\t198\\.18\\.0\\.1:51820\\t10\\.0\\.0\\.0/24,fd00::/64\\t${Math.floor(hs / 1000)}\\t1234\\t5242880\\t25$`));

  // An IPv6 endpoint and a changed allowed-ips list (wg set replaces the list).
  await wgOk('set', iface, 'peer', peer.pub, 'endpoint', '[fd00::1]:51822', 'allowed-ips', '100.64.0.1/32');
  assert.equal(await wgOk('show', iface, 'endpoints'), `${peer.pub}\t[fd00::1]:51822\n`);
  assert.equal(await wgOk('show', iface, 'allowed-ips'), `${peer.pub}\t100.64.0.1/32\n`);

  await wgOk('set', iface, 'peer', peer.pub, 'remove');
  assert.equal(device.peers.size, 0);
  assert.equal(await wgOk('show', iface, 'peers'), '');
  assert.doesNotMatch(await wgOk('show', iface), /peer:/);
});

test('wg: setconf with 20,000+ allowed IPs, all printed back', { skip }, async () => {
  const { iface, device } = await start();
  const me = keyPair();
  const peers = [keyPair(), keyPair(), keyPair()];
  const big: string[] = [];
  for (let i = 0; i < 15000; i++) big.push(`10.${(i >> 8) & 255}.${i & 255}.0/24`);
  for (let i = 0; i < 6000; i++) big.push(`fd00:${(i + 1).toString(16)}::/64`);
  let conf = `[Interface]\nPrivateKey = ${me.priv}\nListenPort = 51830\n\n`;
  conf += `[Peer]\nPublicKey = ${peers[0]!.pub}\nAllowedIPs = 100.64.0.1/32\nEndpoint = 198.18.0.2:51820\n\n`;
  conf += `[Peer]\nPublicKey = ${peers[1]!.pub}\n`;
  for (let i = 0; i < big.length; i += 1000) conf += `AllowedIPs = ${big.slice(i, i + 1000).join(', ')}\n`;
  conf += `\n[Peer]\nPublicKey = ${peers[2]!.pub}\nAllowedIPs = 100.64.0.3/32, fd00::3/128\n`;
  // A peer from an earlier configuration that setconf must replace.
  const stale = keyPair();
  await wgOk('set', iface, 'peer', stale.pub, 'allowed-ips', '100.64.9.9/32');

  const before = device.applied;
  await wgOk('setconf', iface, file('big.conf', conf));
  assert.equal(device.applied, before + 1, 'one set request');
  assert.equal(device.peers.size, 3);

  const lines = (await wgOk('show', iface, 'allowed-ips')).trimEnd().split('\n');
  assert.equal(lines.length, 3);
  const byPeer = new Map(lines.map((l) => { const [k, ips] = l.split('\t'); return [k!, ips!.split(' ')]; }));
  assert.deepEqual(byPeer.get(peers[0]!.pub), ['100.64.0.1/32']);
  assert.deepEqual(byPeer.get(peers[2]!.pub), ['100.64.0.3/32', 'fd00::3/128']);
  const got = byPeer.get(peers[1]!.pub)!;
  assert.equal(got.length, big.length);
  assert.deepEqual(new Set(got), new Set(big));
  assert.equal(byPeer.has(stale.pub), false);

  // showconf reads the whole configuration back too.
  const shown = await wgOk('showconf', iface);
  assert.equal((shown.match(/\[Peer\]/g) ?? []).length, 3);
  assert.ok(shown.includes('fd00:176f::/64'));
  assert.ok(shown.includes('10.58.151.0/24'));
});

test('wg: errors from the device reach wg as its messages', { skip }, async () => {
  class PickyDevice extends MemoryUapiDevice {
    override applyConfig(ops: UapiSetOp[]): void {
      for (const op of ops) if (op.type === 'listen_port' && op.port === 1) throw new UapiError(98, 'port 1 is in use');
      super.applyConfig(ops);
    }
  }
  const { iface } = await start(new PickyDevice());
  const r = await wg('set', iface, 'listen-port', '1');
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /Unable to modify interface: Address already in use/);
  // The interface still answers.
  await wgOk('set', iface, 'listen-port', '2');
  assert.equal(await wgOk('show', iface, 'listen-port'), '2\n');
});

test('wg: closing the server removes the socket, and wg no longer sees the interface', { skip }, async () => {
  const { iface, server } = await start();
  assert.ok(existsSync(server.path));
  await server.close();
  assert.equal(existsSync(server.path), false);
  assert.equal((await wgOk('show', 'interfaces')).split(/\s+/).includes(iface), false);
  const r = await wg('show', iface);
  assert.notEqual(r.code, 0);
});

test('wg-quick: renderWgConfig configures the same as "wg-quick strip"', { skip: skipQuick }, async () => {
  const me = keyPair();
  const [a, b] = [keyPair(), keyPair()];
  // A messy but valid file: wg-quick keys, lowercase keys, comments, repeats, host bits.
  const text = `# test
[Interface]
privatekey = ${me.priv}   # mine
Address = 100.64.0.1/24, fd00::1/64
DNS = 100.64.0.53, mesh.example
listenport=51840
FwMark = 0x20
MTU = 1420
Table = off
PostUp = echo up # not a comment for wg-quick
SaveConfig = false

[Peer]
PublicKey = ${a.pub}
PresharedKey = ${keyPair().priv}
AllowedIPs = 10.0.0.0/24, fd00:1::/64
AllowedIPs = 10.1.2.3/16
Endpoint = 198.18.0.5:51820
PersistentKeepalive = 25

[peer]
publickey = ${b.pub}
allowedips = 100.64.7.0/24
endpoint = [fd00::7]:51821
`;
  const conf = file(`mtq${process.pid % 100000}.conf`, text);
  const stripped = await new Promise<string>((resolve, reject) => {
    execFile('wg-quick', ['strip', conf], { encoding: 'utf8' }, (err, stdout, stderr) => (err ? reject(new Error(stderr)) : resolve(stdout)));
  });
  const ours = renderWgConfig(parseWgQuickConfig(text, conf));
  const viaStrip = await start();
  const viaOurs = await start();
  await wgOk('setconf', viaStrip.iface, file('stripped.conf', stripped));
  await wgOk('setconf', viaOurs.iface, file('ours.conf', ours));
  const shown = await wgOk('showconf', viaOurs.iface);
  assert.equal(shown, await wgOk('showconf', viaStrip.iface));
  assert.match(shown, /AllowedIPs = 10\.0\.0\.0\/24, fd00:1::\/64, 10\.1\.0\.0\/16\n/);
  assert.match(shown, /FwMark = 0x20\n/);
});

function escape(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
}
