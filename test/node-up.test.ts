// `meshtun up` with no file: a node with a persistent key in the state directory, on meshtun0,
// with addresses derived from its key; a second run reuses the same identity.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Topology, waitFor, captureOutput, isRoot } from './netns.js';

const bin = join(process.cwd(), 'bin/meshtun.js');
const topo = new Topology();
after(() => topo.destroy());

test('node: meshtun up creates and then reuses a node identity', { skip: !isRoot && 'needs root', timeout: 60_000 }, async () => {
  const ns = topo.ns('n');
  const state = mkdtempSync(join(tmpdir(), 'mtnode-'));
  const run = async () => {
    const p = topo.spawn(ns, 'env', [`MESHTUN_STATE_DIR=${state}`, process.execPath, bin, 'up', '--tun']);
    const out = captureOutput(p);
    await waitFor(`node up: ${out.text()}`, () => /meshtun0 is up/.test(out.text()), 15_000);
    const addr = topo.exec(ns, 'ip', ['-4', 'addr', 'show', 'meshtun0']);
    const key = /public key (\S+)/.exec(out.text())![1]!;
    topo.exec(ns, process.execPath, [bin, 'down', 'meshtun0']);
    await waitFor('exit', () => p.exitCode !== null, 10_000);
    assert.equal(p.exitCode, 0);
    return { text: out.text(), addr, key };
  };
  const first = await run();
  assert.match(first.text, /node created/);
  assert.match(first.addr, /inet 100\.(6[4-9]|[7-9]\d|1[01]\d|12[0-7])\.\d+\.\d+\/10/);
  assert.equal(statSync(join(state, 'node.key')).mode & 0o777, 0o600);
  const second = await run();
  assert.match(second.text, /node loaded/);
  assert.equal(second.key, first.key);
  assert.equal(second.addr.match(/inet (\S+)/)![1], first.addr.match(/inet (\S+)/)![1]);
  assert.equal(topo.exec(ns, 'ip', ['link', 'show', 'meshtun0'], { allowFail: true }), '', 'the interface is removed on stop');
});
