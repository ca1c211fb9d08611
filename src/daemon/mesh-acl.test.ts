import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Engine } from '../wireguard/index.js';
import { AclFilter, type ControlNetworkMap, type ControlMapNode } from '../mesh/index.js';
import { MeshAcl } from './mesh-acl.js';

function fakeEngine(): { engine: Engine; installed: () => unknown; calls: () => number } {
  let filter: unknown = null;
  let calls = 0;
  const engine = { setPacketFilter(f: unknown) { filter = f; calls++; } } as unknown as Engine;
  return { engine, installed: () => filter, calls: () => calls };
}

function node(name: string, ipv4: string, tags: string[] = []): ControlMapNode {
  return { id: name, name, publicKey: '', ipv4, ipv6: '', tags, endpoints: [], routes: [], exitNode: false, allowedIps: [] };
}

const POLICY = '{ "tags": ["tag:ops"], "acls": [ { "src": ["tag:ops"], "dst": ["*:22"], "proto": "tcp" } ] }';

function map(version: number, peers: ControlMapNode[], policy: ControlNetworkMap['policy']): ControlNetworkMap {
  return { version, network: { id: 'n', name: 'home', ipv4Pool: '100.64.0.0/10', ulaPrefix: 'fd00:1:2::/48' }, self: node('me', '100.64.0.1'), peers, policy };
}

test('MeshAcl: no policy no filter; a policy installs one; changes recompile in place; a bad one keeps the old', () => {
  const e = fakeEngine();
  const acl = new MeshAcl(e.engine);
  acl.update(map(1, [], null));
  assert.equal(e.installed(), null);
  assert.equal(e.calls(), 0);

  acl.update(map(2, [node('ops', '100.64.0.2', ['ops'])], { text: POLICY, version: 1 }));
  const f = e.installed();
  assert.ok(f instanceof AclFilter);
  const first = f.currentPolicy;
  assert.ok(first);
  assert.equal(first.ruleCount, 1);

  acl.update(map(2, [node('ops', '100.64.0.2', ['ops'])], { text: POLICY, version: 1 }));
  assert.equal(f.currentPolicy, first, 'the same map compiles nothing');

  acl.update(map(3, [node('ops', '100.64.0.2', ['ops']), node('web', '100.64.0.3')], { text: POLICY, version: 1 }));
  assert.equal(e.installed(), f, 'a new node: the same filter, a new policy');
  assert.notEqual(f.currentPolicy, first);
  const second = f.currentPolicy;

  acl.update(map(4, [node('ops', '100.64.0.2', ['ops'])], { text: '{ "acls": [ { "src": ["tag:nope"], "dst": ["*:*"] } ] }', version: 2 }));
  assert.equal(f.currentPolicy, second, 'a policy that does not compile keeps the previous one');

  acl.update(map(5, [], null));
  assert.equal(e.installed(), null, 'no policy: filter removed');
  assert.equal(acl.filter, null);
});
