// meshtun <-> meshtun in network namespaces under attack, observed through `meshtun status`:
// a replayed transport packet is dropped and counted, a handshake from an unknown key gets no
// answer, and under a flood of initiations the responder answers with cookie replies while a
// legitimate peer still connects.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync, mkdtempSync, existsSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Topology, waitFor, sh, captureOutput, isRoot } from './netns.js';

const bin = join(process.cwd(), 'bin/meshtun.js');
const helper = join(process.cwd(), 'dist/test/attack-helper.js');
const skip = isRoot && existsSync('/dev/net/tun') ? false : 'needs root and /dev/net/tun';
const topo = new Topology();
after(() => topo.destroy());

test('attacks: replay, unknown key and an initiation flood against meshtun', { skip, timeout: 120_000 }, async () => {
  const a = topo.ns('a');
  const b = topo.ns('b');
  const c = topo.ns('c'); // the attacker, on the same underlay switch
  sh('ip', ['-n', b, 'link', 'add', 'br0', 'type', 'bridge']);
  sh('ip', ['-n', b, 'link', 'set', 'br0', 'up']);
  sh('ip', ['-n', b, 'addr', 'add', '198.18.0.2/24', 'dev', 'br0']);
  const la = topo.link(a, '198.18.0.1/24', b, '');
  const lc = topo.link(c, '198.18.0.3/24', b, '');
  for (const ifc of [la.ifB, lc.ifB]) sh('ip', ['-n', b, 'link', 'set', ifc, 'master', 'br0']);
  const tag = `${process.pid % 10000}`;
  const dir = mkdtempSync(join(tmpdir(), 'mtatk-'));
  const keyA = sh('wg', ['genkey']).trim();
  const keyB = sh('wg', ['genkey']).trim();
  const pubA = sh('wg', ['pubkey'], { input: keyA }).trim();
  const pubB = sh('wg', ['pubkey'], { input: keyB }).trim();
  const ifA = `ka${tag}`;
  const ifB = `kb${tag}`;
  writeFileSync(join(dir, `${ifA}.conf`), `[Interface]\nPrivateKey = ${keyA}\nAddress = 100.64.8.1/24\n\n[Peer]\nPublicKey = ${pubB}\nAllowedIPs = 100.64.8.2/32\nEndpoint = 198.18.0.2:51820\n`);
  writeFileSync(join(dir, `${ifB}.conf`), `[Interface]\nPrivateKey = ${keyB}\nListenPort = 51820\nAddress = 100.64.8.2/24\n\n[Peer]\nPublicKey = ${pubA}\nAllowedIPs = 100.64.8.1/32\n`);
  const startA = async () => {
    const p = topo.spawn(a, process.execPath, [bin, 'up', join(dir, `${ifA}.conf`)]);
    const out = captureOutput(p);
    await waitFor(`${ifA} up: ${out.text()}`, () => out.text().includes('is up'), 15_000);
    return p;
  };
  const pb = topo.spawn(b, process.execPath, [bin, 'up', join(dir, `${ifB}.conf`)]);
  const outB = captureOutput(pb);
  await waitFor(`${ifB} up: ${outB.text()}`, () => outB.text().includes('is up'), 15_000);
  let pa = await startA();
  const status = () => JSON.parse(topo.exec(b, process.execPath, [bin, 'status', ifB, '--json'])) as { counters: Record<string, number> };

  // 1. Capture real transport packets on B's side, then replay them from the attacker.
  const pcap = join(dir, 'b.pcap');
  const dump = topo.spawn(b, 'tcpdump', ['-i', 'br0', '--immediate-mode', '-U', '-n', '-w', pcap, 'udp', 'dst', 'port', '51820']);
  const dumpOut = captureOutput(dump);
  await waitFor('tcpdump listening', () => dumpOut.text().includes('listening on'), 10_000);
  topo.exec(a, 'ping', ['-c', '3', '-i', '0.2', '-W', '2', '100.64.8.2']);
  await waitFor('captured packets', () => statSync(pcap).size > 24 + 3 * 100, 5000);
  await new Promise((r) => setTimeout(r, 300));
  process.kill(dump.pid!, 'SIGTERM');
  await waitFor('tcpdump exit', () => dump.exitCode !== null || dump.signalCode !== null, 5000);
  const before = status().counters;
  const r1 = JSON.parse(topo.exec(c, process.execPath, [helper, 'replay', pcap, '198.18.0.2', '51820']));
  assert.ok(r1.replayed >= 3, `replayed ${r1.replayed} captured transport packets`);
  const afterReplay = status().counters;
  assert.equal(afterReplay.dropReplay! - (before.dropReplay ?? 0), r1.replayed, 'every replayed packet dropped as a replay');
  assert.equal(afterReplay.rxDataPackets, before.rxDataPackets, 'nothing replayed was delivered');

  // 2. A handshake from a key B does not know gets no answer.
  const r2 = JSON.parse(topo.exec(c, process.execPath, [helper, 'unknown', '198.18.0.2', '51820', pubB]));
  assert.equal(r2.responses, 0);
  assert.equal(r2.cookieReplies, 0);
  assert.ok(status().counters.dropHandshakeRejected! >= 1);

  // 3. A flood of initiations: B switches to cookie replies; A (restarted, so it must handshake
  //    again) still connects during the flood.
  process.kill(pa.pid!, 'SIGTERM');
  await waitFor('A stopped', () => pa.exitCode !== null, 10_000);
  const flood = topo.spawn(c, process.execPath, [helper, 'flood', '198.18.0.2', '51820', pubB, '14', '2000']);
  const floodOut = captureOutput(flood);
  await new Promise((r) => setTimeout(r, 1500));
  pa = await startA();
  topo.exec(a, 'ping', ['-c', '1', '-w', '12', '100.64.8.2']);
  await waitFor('flood end', () => flood.exitCode !== null, 30_000);
  const fr = JSON.parse(floodOut.text().trim().split('\n').pop()!);
  const st = status().counters;
  assert.ok(fr.cookieReplies > 0, `the flooder got cookie replies (${JSON.stringify(fr)})`);
  assert.equal(fr.responses, 0, 'the flooder never completed a handshake');
  assert.ok(st.cookieRepliesSent! > 0 && st.dropHandshakeNeedCookie! > 0, JSON.stringify(st));
  assert.ok(st.handshakesCompleted! >= 2, 'A connected again during the flood');
});
