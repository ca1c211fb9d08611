// The coordinator's ACL policy: stored per network, versioned, in every map; a bad policy is
// refused with PolicyError and leaves the previous one in force.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ManualClock } from '../wireguard/index.js';
import { generatePrivateKey, publicKey, encodeBase64Key } from '../crypto/index.js';
import { PolicyError } from '../mesh/index.js';
import { Coordinator } from './coordinator.js';

const GOOD = `{
  "tags": ["tag:ops"],
  "acls": [ { "src": ["tag:ops"], "dst": ["*:22"], "proto": "tcp" } ],
}`;
const BAD = `{
  "tags": ["tag:ops"],
  "acls": [
    { "src": ["tag:ops"], "dst": ["*:22"], "proto": "tcp" },
    { "src": ["tag:opz"], "dst": ["*:80"] },
  ],
}`;

test('policy: set, versioned, in the map, survives reopen; a bad one keeps the old', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'meshtun-policy-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const selfKey = encodeBase64Key(publicKey(generatePrivateKey()));
  let coord = Coordinator.open(dir, { clock: new ManualClock() });
  coord.createNetwork({ name: 'home', self: { publicKey: selfKey } });
  assert.equal(coord.policy(), null);
  assert.equal(coord.networkMap(selfKey).policy, null);
  const v0 = coord.version();
  const changes: number[] = [];
  coord.onChange((_id, v) => changes.push(v));
  const r = coord.setPolicy(undefined, GOOD, 'acl.hujson');
  assert.equal(r.policy.version, 1);
  assert.equal(coord.version(), v0 + 1, 'setting a policy bumps the map version');
  assert.deepEqual(changes, [v0 + 1]);
  assert.deepEqual(coord.networkMap(selfKey).policy, { text: GOOD, version: 1 });

  assert.throws(() => coord.setPolicy(undefined, BAD, 'acl.hujson'), (e: unknown) => {
    assert.ok(e instanceof PolicyError);
    assert.match((e as Error).message, /acl\.hujson:5: acls\[1\].*tag:opz/);
    return true;
  });
  assert.equal(coord.version(), v0 + 1, 'a refused policy changes nothing');
  assert.deepEqual(coord.policy()?.text, GOOD);
  coord.close();
  coord = Coordinator.open(dir, { clock: new ManualClock() });
  t.after(() => coord.close());
  assert.deepEqual(coord.networkMap(selfKey).policy, { text: GOOD, version: 1 });
  assert.equal(coord.setPolicy(undefined, GOOD.replace('22', '2222')).policy.version, 2);
});
