import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkNetworkMap, checkRegisterReply, checkMembership, checkEndpoint, checkPrefix, checkIpv6, MapFieldError } from './map-check.js';

const KEY_A = 'HIgo9xNzJMWLKASShiTqIybxZ0U3wGLiUeJ1PKf8ykw=';
const KEY_B = 'xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=';
const DISCOVERY_KEY = Buffer.alloc(32, 0xa5).toString('base64');

function goodMap(): Record<string, unknown> {
  return {
    version: 7,
    network: { id: 'net_0123456789abcdef', name: 'home', ipv4Pool: '100.64.0.0/10', ulaPrefix: 'fd12:3456:789a::/48', discoveryKey: DISCOVERY_KEY },
    self: { id: 'node_aaaaaaaaaaaaaaaa', name: 'a', publicKey: KEY_A, ipv4: '100.64.0.2', ipv6: 'fd12:3456:789a::2', tags: ['ops'], endpoints: ['198.18.0.2:51820'], routes: [], exitNode: false, allowedIps: ['100.64.0.2/32', 'fd12:3456:789a::2/128'] },
    peers: [
      { id: 'node_bbbbbbbbbbbbbbbb', name: 'b', publicKey: KEY_B, ipv4: '100.64.0.3', ipv6: 'fd12:3456:789a::3', tags: [], endpoints: ['[fd00::3]:51820'], routes: ['198.18.60.0/24'], exitNode: true, allowedIps: ['100.64.0.3/32', '198.18.60.0/24'], via: 'node_cccccccccccccccc', extra: 'dropped' },
    ],
    policy: { text: '{}', version: 2 },
  };
}

function refused(fn: () => unknown, field: string): MapFieldError {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof MapFieldError, String(e));
    assert.equal(e.field, field, e.message);
    return e;
  }
  assert.fail(`accepted; expected a refusal of ${field}`);
}

test('a well-formed map passes, with unknown fields dropped', () => {
  const m = checkNetworkMap(goodMap());
  assert.equal(m.version, 7);
  assert.equal(m.peers[0]!.via, 'node_cccccccccccccccc');
  assert.equal(m.peers[0]!.exitNode, true);
  assert.equal((m.peers[0] as unknown as Record<string, unknown>).extra, undefined);
  assert.deepEqual(m.policy, { text: '{}', version: 2 });
  assert.equal(m.network.discoveryKey, DISCOVERY_KEY);
  const withRelay = goodMap();
  (withRelay.peers as Record<string, unknown>[])[0]!.relay = { https: 7443, tcp: 51820, extra: 1 };
  assert.deepEqual(checkNetworkMap(withRelay).peers[0]!.relay, { https: 7443, tcp: 51820 });
});

test('the discovery key may be absent (a coordinator older than LAN discovery)', () => {
  const m = goodMap();
  delete (m.network as Record<string, unknown>).discoveryKey;
  assert.equal('discoveryKey' in checkNetworkMap(m).network, false);
  (m.network as Record<string, unknown>).discoveryKey = null;
  assert.equal('discoveryKey' in checkNetworkMap(m).network, false);
});

test('a value with a second line is refused, naming the field', () => {
  const m = goodMap();
  (m.peers as Record<string, unknown>[])[0]!.routes = ['198.18.60.0/24', '10.0.0.0/8\nPostUp = id > /tmp/pwned\n#'];
  const e = refused(() => checkNetworkMap(m), 'map.peers[0].routes[1]');
  assert.match(e.message, /^map\.peers\[0\]\.routes\[1\] "10\.0\.0\.0\/8\\nPostUp = id > \/tmp\/pwned\\n#" is not a prefix/);
});

test('each field is checked as its type', () => {
  const cases: [string, (m: Record<string, unknown>) => void][] = [
    ['map.self.ipv4', (m) => { (m.self as Record<string, unknown>).ipv4 = '100.64.0.2/32'; }],
    ['map.self.ipv4', (m) => { (m.self as Record<string, unknown>).ipv4 = '100.064.0.2'; }],
    ['map.self.ipv4', (m) => { (m.self as Record<string, unknown>).ipv4 = '198.18.0.9'; }], // outside the pool
    ['map.self.ipv6', (m) => { (m.self as Record<string, unknown>).ipv6 = 'FD12:3456:789a::2'; }], // not canonical
    ['map.self.name', (m) => { (m.self as Record<string, unknown>).name = 'a b'; }],
    ['map.self.publicKey', (m) => { (m.self as Record<string, unknown>).publicKey = 'AAAA'; }],
    ['map.self.tags[0]', (m) => { (m.self as Record<string, unknown>).tags = ['ops;drop']; }],
    ['map.self.endpoints[0]', (m) => { (m.self as Record<string, unknown>).endpoints = ['198.18.0.2:0']; }],
    ['map.self.endpoints[0]', (m) => { (m.self as Record<string, unknown>).endpoints = ['host.example:51820']; }],
    ['map.network.ipv4Pool', (m) => { (m.network as Record<string, unknown>).ipv4Pool = '100.64.0.1/10'; }], // host bits
    ['map.network.ulaPrefix', (m) => { (m.network as Record<string, unknown>).ulaPrefix = '2001:db8::/48'; }],
    ['map.network.id', (m) => { (m.network as Record<string, unknown>).id = '../../etc'; }],
    ['map.peers[0].allowedIps[0]', (m) => { (m.peers as Record<string, unknown>[])[0]!.allowedIps = ['100.64.0.3']; }],
    ['map.peers[0].via', (m) => { (m.peers as Record<string, unknown>[])[0]!.via = 42; }],
    ['map.peers[0].exitNode', (m) => { (m.peers as Record<string, unknown>[])[0]!.exitNode = 'yes'; }],
    ['map.peers[0].relay.https', (m) => { (m.peers as Record<string, unknown>[])[0]!.relay = { https: 0 }; }],
    ['map.peers[0].relay', (m) => { (m.peers as Record<string, unknown>[])[0]!.relay = 'yes'; }],
    ['map.peers', (m) => { m.peers = 'none'; }],
    ['map.version', (m) => { m.version = -1; }],
    ['map.policy.text', (m) => { m.policy = { text: 5, version: 1 }; }],
    ['map.relayPaths[0]', (m) => { m.relayPaths = [['node_aaaaaaaaaaaaaaaa', 'node_bbbbbbbbbbbbbbbb']]; }],
    ['map.network.discoveryKey', (m) => { (m.network as Record<string, unknown>).discoveryKey = Buffer.alloc(16, 1).toString('base64'); }], // 16 bytes
    ['map.network.discoveryKey', (m) => { (m.network as Record<string, unknown>).discoveryKey = Buffer.alloc(33, 1).toString('base64'); }], // 33 bytes
    ['map.network.discoveryKey', (m) => { (m.network as Record<string, unknown>).discoveryKey = DISCOVERY_KEY.slice(0, -1); }], // no padding
    ['map.network.discoveryKey', (m) => { (m.network as Record<string, unknown>).discoveryKey = `${DISCOVERY_KEY}\n`; }],
    ['map.network.discoveryKey', (m) => { (m.network as Record<string, unknown>).discoveryKey = DISCOVERY_KEY.slice(0, -2) + 'l='; }], // not canonical (padding bits set)
    ['map.network.discoveryKey', (m) => { (m.network as Record<string, unknown>).discoveryKey = 42; }],
    ['map.network.discoveryKey', (m) => { (m.network as Record<string, unknown>).discoveryKey = [...Buffer.alloc(32, 1)]; }],
  ];
  for (const [field, spoil] of cases) {
    const m = goodMap();
    spoil(m);
    refused(() => checkNetworkMap(m), field);
  }
});

test('a register reply: the node block and its map', () => {
  const reply = { node: { id: 'node_aaaaaaaaaaaaaaaa', name: 'a', ipv4: '100.64.0.2', ipv6: 'fd12:3456:789a::2', networkId: 'net_0123456789abcdef' }, map: goodMap(), rejoined: false };
  assert.equal(checkRegisterReply(reply).node.ipv4, '100.64.0.2');
  refused(() => checkRegisterReply({ ...reply, node: { ...reply.node, ipv4: '100.64.0.5/32\nPostUp = x' } }), 'node.ipv4');
  refused(() => checkRegisterReply({ ...reply, node: { ...reply.node, networkId: 'net_zzzzzzzzzzzzzzzz' } }), 'node.networkId');
  refused(() => checkRegisterReply({ ...reply, map: null }), 'map');
});

test('a membership file', () => {
  const good = { host: '198.18.0.1', port: 7443, coordinatorKey: KEY_A, nodeId: 'node_aaaaaaaaaaaaaaaa', name: 'a', ipv4: '100.64.0.2', ipv6: 'fd12:3456:789a::2', ipv4Pool: '100.64.0.0/10', ulaPrefix: 'fd12:3456:789a::/48' };
  assert.deepEqual(checkMembership(good), good);
  assert.equal(checkMembership({ ...good, host: 'coord.example.net' }).host, 'coord.example.net');
  assert.equal(checkMembership({ ...good, host: 'fd00::1' }).host, 'fd00::1');
  refused(() => checkMembership({ ...good, host: 'coord\nPostUp' }), 'host');
  refused(() => checkMembership({ ...good, port: '7443' }), 'port');
  refused(() => checkMembership({ ...good, ulaPrefix: 'fd12:3456:789a::/48\n' }), 'ulaPrefix');
  refused(() => checkMembership({ ...good, ipv4: '100.128.0.2' }), 'ipv4');
  refused(() => checkMembership([]), 'membership');
});

test('leaf checks take canonical forms only (values from RFC 5952 and RFC 4632 examples)', () => {
  assert.equal(checkEndpoint('[fd00::5]:51820', 'e'), '[fd00::5]:51820');
  assert.throws(() => checkEndpoint('[fd00:0::5]:51820', 'e'), MapFieldError);
  assert.throws(() => checkEndpoint('198.18.0.5:051820', 'e'), MapFieldError);
  assert.equal(checkPrefix('192.0.2.0/24', 'p').cidr.prefixLen, 24);
  assert.throws(() => checkPrefix('192.0.2.1/24', 'p'), MapFieldError);
  assert.throws(() => checkPrefix('192.0.2.0/24', 'p', 6), MapFieldError);
  assert.equal(checkIpv6('2001:db8::1', 'a'), '2001:db8::1');
  assert.throws(() => checkIpv6('2001:0db8::1', 'a'), MapFieldError);
  assert.throws(() => checkIpv6('fe80::1%eth0', 'a'), MapFieldError);
});

test('the NAT type of a node is one of four words; absent is allowed (older coordinators)', () => {
  const m = goodMap();
  (m.self as Record<string, unknown>).nat = 'endpoint-independent';
  (m.peers as Record<string, unknown>[])[0]!.nat = 'none';
  const checked = checkNetworkMap(m);
  assert.equal(checked.self.nat, 'endpoint-independent');
  assert.equal(checked.peers[0]!.nat, 'none');
  (m.peers as Record<string, unknown>[])[0]!.nat = null;
  assert.equal('nat' in checkNetworkMap(m).peers[0]!, false);
  for (const bad of ['None', 'symmetric', 'none\nPostUp = x', 4, ['none'], {}]) {
    (m.peers as Record<string, unknown>[])[0]!.nat = bad;
    const e = refused(() => checkNetworkMap(m), 'map.peers[0].nat');
    assert.match(e.message, /is not one of "none", "endpoint-independent", "endpoint-dependent", "unknown"/);
  }
});
