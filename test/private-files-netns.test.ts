// State and secrets are private from creation (issue 9, item 5): a coordinator and a member
// started under umask 022, in state directories that exist with mode 0755 or do not exist yet,
// make node.key, coordinator.db (and its WAL files), the TLS key, membership.json and the API
// socket mode 0600 and new directories 0700. A world-readable wg-quick file gets wg-quick's own
// warning.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdtempSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Topology, waitFor, captureOutput, isRoot } from './netns.js';
import { generatePrivateKey, encodeBase64Key } from '../src/crypto/index.js';
import { worldAccessibleWarning } from '../src/daemon/index.js';

const bin = join(process.cwd(), 'bin/meshtun.js');
const topo = new Topology();
after(() => topo.destroy());

const mode = (p: string) => (statSync(p).mode & 0o777).toString(8);

/** Starts `meshtun <args>` in `ns` under umask 022 with the state directory `dir`. */
function meshtun(ns: string, dir: string, args: string[]) {
  const proc = topo.spawn(ns, 'sh', ['-c', 'umask 022 && exec "$@"', 'sh', 'env', `MESHTUN_STATE_DIR=${dir}`, process.execPath, bin, ...args]);
  return { proc, out: captureOutput(proc).text };
}

test('state files, keys and sockets are 0600 and directories 0700 from creation, under umask 022', { skip: !isRoot && 'needs root (network namespaces)', timeout: 60_000 }, async () => {
  const ns = topo.ns('pf');
  const cdir = mkdtempSync(join(tmpdir(), 'mtpriv-c-'));
  chmodSync(cdir, 0o755); // an existing, looser state directory
  const c = meshtun(ns, cdir, ['up', '--listen', '127.0.0.1:7443']);
  const join1 = await waitFor(`the coordinator is up: ${c.out()}`, () => /meshtun up --join (\S+) --token (\S+)/.exec(c.out()), 20_000);
  await waitFor('the API socket', () => existsSync(join(cdir, 'mesh.api')), 5_000);
  for (const f of ['node.key', 'coordinator.db', 'control-tls.key', 'mesh.api']) assert.equal(mode(join(cdir, f)), '600', `${f} is private`);
  for (const f of ['coordinator.db-wal', 'coordinator.db-shm']) if (existsSync(join(cdir, f))) assert.equal(mode(join(cdir, f)), '600', `${f} is private`);

  const parent = mkdtempSync(join(tmpdir(), 'mtpriv-m-'));
  chmodSync(parent, 0o755);
  const mdir = join(parent, 'new', 'state');
  const m = meshtun(ns, mdir, ['up', '--join', join1[1]!, '--token', join1[2]!, '--name', 'm', '--listen-port', '51821']);
  await waitFor(`the member is up: ${m.out()}`, () => /is up \(userspace\)/.test(m.out()), 20_000);
  await waitFor('the member API socket', () => existsSync(join(mdir, 'mesh.api')), 5_000);
  for (const d of [join(parent, 'new'), mdir]) assert.equal(mode(d), '700', `${d} is private`);
  for (const f of ['node.key', 'membership.json', 'mesh.api']) assert.equal(mode(join(mdir, f)), '600', `${f} is private`);
});

test('a world-readable wg-quick file gets the warning wg-quick prints', { skip: !isRoot && 'needs root (network namespaces)', timeout: 30_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'mtpriv-w-'));
  chmodSync(dir, 0o755);
  const file = join(dir, 'mtw0.conf');
  writeFileSync(file, `[Interface]\nPrivateKey = ${encodeBase64Key(generatePrivateKey())}\nAddress = 100.64.9.1/24\n[Meshtun]\nSocks5 = off\nHttpProxy = off\n`, { mode: 0o644 });
  chmodSync(file, 0o644);
  assert.equal(worldAccessibleWarning(file), `Warning: \`${file}' is world accessible`);
  const ns = topo.ns('pw');
  const p = meshtun(ns, join(dir, 'state'), ['up', '--userspace', file]);
  await waitFor(`the warning: ${p.out()}`, () => p.out().includes(`Warning: \`${file}' is world accessible`), 15_000);
  chmodSync(file, 0o600);
  assert.equal(worldAccessibleWarning(file), null, 'a 0600 file in a 0755 directory is fine, as for wg-quick');
  chmodSync(file, 0o644);
  chmodSync(dir, 0o700);
  assert.equal(worldAccessibleWarning(file), null, 'so is a 0644 file in a 0700 directory');
});
