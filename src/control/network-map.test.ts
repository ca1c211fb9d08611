import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildNetworkMap, effectiveRoutes, mapNode } from './network-map.js';
import type { NetworkRecord, NodeRecord } from './store.js';

const DISCOVERY_KEY = Buffer.alloc(32, 0x5a);
const NET: NetworkRecord = { id: 'net_a', name: 'home', ipv4Pool: '100.64.0.0/10', ulaPrefix: 'fd12:3456:789a::/48', created: 1, version: 7, discoveryKey: DISCOVERY_KEY };

function node(id: string, name: string, over: Partial<NodeRecord> = {}): NodeRecord {
  return {
    id, networkId: 'net_a', name, publicKey: `${id}-key`, ipv4: `100.64.0.${id.length}`, ipv6: `fd12:3456:789a::${id.length}`, tags: [],
    endpoints: [], advertisedRoutes: [], approvedRoutes: [], tokenId: 't', created: 1, lastSeen: 5, removed: false, removedAt: null, nat: 'unknown', ...over,
  };
}

test('a map holds self and the other live nodes by name, with the network version', () => {
  const nodes = [node('n1', 'web'), node('n22', 'db'), node('n333', 'app'), node('n4444', 'gone', { removed: true })];
  const m = buildNetworkMap(NET, nodes, 'n1');
  assert.equal(m.version, 7);
  assert.deepEqual(m.network, { id: 'net_a', name: 'home', ipv4Pool: '100.64.0.0/10', ulaPrefix: 'fd12:3456:789a::/48', discoveryKey: DISCOVERY_KEY.toString('base64') });
  assert.equal(m.self.name, 'web');
  assert.deepEqual(m.peers.map((p) => p.name), ['app', 'db']);
  assert.equal('lastSeen' in m.self, false);
  assert.throws(() => buildNetworkMap(NET, nodes, 'n4444'), /not a live node/);
});

test('routes take effect when advertised and approved; exit routes only mark an exit node', () => {
  const gw = node('n1', 'gw', {
    advertisedRoutes: ['0.0.0.0/0', '192.0.2.0/24', '198.51.100.0/24'],
    approvedRoutes: ['0.0.0.0/0', '192.0.2.0/24', '203.0.113.0/24'],
  });
  assert.deepEqual(effectiveRoutes(gw), ['0.0.0.0/0', '192.0.2.0/24']);
  const m = mapNode(gw);
  assert.deepEqual(m.routes, ['192.0.2.0/24']);
  assert.equal(m.exitNode, true);
  assert.deepEqual(m.allowedIps, ['100.64.0.2/32', 'fd12:3456:789a::2/128', '192.0.2.0/24']);
  // The map's lists are copies: changing them does not change the record.
  m.tags.push('x');
  assert.deepEqual(gw.tags, []);
});

test('a map node carries the NAT type the node reported', () => {
  assert.equal(mapNode(node('n1', 'a')).nat, 'unknown');
  assert.equal(mapNode(node('n1', 'a', { nat: 'none' })).nat, 'none');
  const m = buildNetworkMap(NET, [node('n1', 'a'), node('n22', 'b', { nat: 'endpoint-dependent' })], 'n1');
  assert.equal(m.peers[0]!.nat, 'endpoint-dependent');
});
