// `meshtun status` and /metrics show a running interface's peers and its drop counters.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Topology, waitFor, sh, captureOutput, isRoot } from './netns.js';

const bin = join(process.cwd(), 'bin/meshtun.js');
const topo = new Topology();
after(() => topo.destroy());

test('status: counters and peers through the local API, CLI and /metrics', { skip: !isRoot && 'needs root', timeout: 60_000 }, async () => {
  const ns = topo.ns('s');
  const iface = `ms${process.pid % 10000}`;
  const dir = mkdtempSync(join(tmpdir(), 'mtst-'));
  const conf = join(dir, `${iface}.conf`);
  const key = sh('wg', ['genkey']).trim();
  const peer = sh('wg', ['pubkey'], { input: sh('wg', ['genkey']) }).trim();
  writeFileSync(conf, `[Interface]\nPrivateKey = ${key}\nAddress = 100.64.7.1/24\n\n[Peer]\nPublicKey = ${peer}\nAllowedIPs = 100.64.7.2/32\n`);
  const p = topo.spawn(ns, process.execPath, [bin, 'up', conf]);
  const out = captureOutput(p);
  await waitFor(`${iface} up (${out.text()})`, () => out.text().includes('is up'), 15_000);
  // A packet to an address in the subnet that no peer owns: dropped and counted.
  topo.exec(ns, 'ping', ['-c', '2', '-i', '0.2', '-W', '1', '100.64.7.9'], { allowFail: true });
  const json = JSON.parse(topo.exec(ns, process.execPath, [bin, 'status', iface, '--json']));
  assert.equal(json.interface, iface);
  assert.equal(json.peers.length, 1);
  assert.equal(json.peers[0].publicKey, peer);
  assert.deepEqual(json.peers[0].allowedIps, ['100.64.7.2/32']);
  assert.ok(json.counters.dropNoRoute >= 2, `dropNoRoute = ${json.counters.dropNoRoute}`);
  const text = topo.exec(ns, process.execPath, [bin, 'status']);
  assert.match(text, new RegExp(`interface ${iface}`));
  assert.match(text, /dropNoRoute: \d+/);
  const metrics = topo.exec(ns, 'curl', ['-s', '--unix-socket', `/var/run/meshtun/${iface}.api`, 'http://localhost/metrics']);
  assert.match(metrics, new RegExp(`meshtun_engine_events_total\\{interface="${iface}",event="dropNoRoute"\\} [1-9]`));
  // Stop it and check the API is gone.
  topo.exec(ns, process.execPath, [bin, 'down', iface]);
  await waitFor('process exit', () => p.exitCode !== null, 10_000);
  const r = topo.exec(ns, process.execPath, [bin, 'status', iface], { allowFail: true });
  assert.equal(r, '');
});
