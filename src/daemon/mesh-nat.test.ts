// MeshNat on engines over a MemoryNetwork: which servers it asks (the coordinator's node and
// peers that reported no NAT), what it reports (NAT type; endpoints ordered configured,
// reflexive, local), and the status block's STUN counters as /metrics families.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Engine } from '../wireguard/index.js';
import { MemoryTun } from '../tun/index.js';
import { MemoryNetwork, type MemoryDatagram } from '../transport/index.js';
import { generatePrivateKey, encodeBase64Key } from '../crypto/index.js';
import { UnderlayMux, StunServer, routeStun, type ControlMapNode, type ControlNetworkMap, type NatType } from '../mesh/index.js';
import { MeshNat, parseConfiguredEndpoint } from './mesh-nat.js';
import { prometheusMetrics, type InterfaceStatus } from './api-server.js';
import { UserError } from '../util/index.js';

async function engineAt(net: MemoryNetwork, address: string): Promise<Engine> {
  const engine = new Engine({ device: new MemoryTun(`nat-${address}`), bind: net.createBind(address) });
  engine.setPrivateKey(generatePrivateKey());
  await engine.setListenPort(51820);
  await engine.up();
  return engine;
}

/** A STUN server node (the coordinator, a public peer) and its map entry. */
async function serverNode(net: MemoryNetwork, name: string, address: string, nat: NatType | undefined): Promise<{ engine: Engine; server: StunServer; entry: ControlMapNode }> {
  const engine = await engineAt(net, address);
  const mux = new UnderlayMux(engine);
  const server = new StunServer(mux);
  routeStun(mux, server, null);
  const entry: ControlMapNode = {
    id: `node_${name}`, name, publicKey: encodeBase64Key(engine.publicKey!), ipv4: '100.64.0.9', ipv6: 'fd00::9', tags: [],
    endpoints: [`${address}:51820`], routes: [], exitNode: false, allowedIps: [], ...(nat ? { nat } : {}),
  };
  return { engine, server, entry };
}

function map(peers: ControlMapNode[]): ControlNetworkMap {
  const self: ControlMapNode = { id: 'node_self', name: 'self', publicKey: 'x', ipv4: '100.64.0.2', ipv6: 'fd00::2', tags: [], endpoints: [], routes: [], exitNode: false, allowedIps: [] };
  return { version: 1, network: { id: 'net_1', name: 'home', ipv4Pool: '100.64.0.0/10', ulaPrefix: 'fd00:1::/48' }, self, peers };
}

/** The member's datagrams leave as `outside` (one port per inside port, or per destination). */
function natFor(net: MemoryNetwork, inside: string, outside: string, dependent: boolean): void {
  const mapped = new Map<string, number>();
  const back = new Map<number, MemoryDatagram['from']>();
  net.hooks.reorder = (round) => {
    for (const d of round) {
      if (d.from.address === inside) {
        const key = dependent ? `${d.from.port}>${d.to.toString()}` : `${d.from.port}`;
        let port = mapped.get(key);
        if (port === undefined) {
          port = 30000 + mapped.size;
          mapped.set(key, port);
          back.set(port, d.from);
        }
        d.from = net.pool.fromAddress(outside, port)!;
      } else if (d.to.address === outside && back.has(d.to.port)) {
        d.to = back.get(d.to.port)!;
      }
    }
  };
}

async function setup(opts: { nat?: 'eim' | 'dependent'; configured?: string[] } = {}) {
  const net = new MemoryNetwork();
  const coord = await serverNode(net, 'coord', '198.18.40.1', undefined);
  const pub = await serverNode(net, 'pub', '198.18.40.2', 'none');
  const natted = await serverNode(net, 'other', '198.18.40.3', 'endpoint-independent'); // not a server
  const engine = await engineAt(net, '198.18.41.2');
  if (opts.nat) natFor(net, '198.18.41.2', '198.18.40.99', opts.nat === 'dependent');
  const mux = new UnderlayMux(engine);
  let changes = 0;
  const nat = new MeshNat({
    mux, coordinatorKey: coord.entry.publicKey, localEndpoints: () => ['198.18.41.2:51820'], configured: opts.configured ?? [],
    onChange: () => { changes++; },
  });
  const close = () => { nat.stop(); for (const e of [coord.engine, pub.engine, natted.engine, engine]) e.close(); };
  return { coord, pub, natted, nat, mux, changes: () => changes, map: map([coord.entry, natted.entry, pub.entry]), close };
}

test('mesh-nat: asks the coordinator and a peer without NAT; no NAT in between: "none", local endpoints only', async () => {
  const s = await setup();
  try {
    assert.equal(s.nat.nat(), undefined, 'nothing to report before a probe had servers');
    s.nat.onMap(s.map);
    await s.nat.probe();
    assert.deepEqual(s.nat.lastServers, ['198.18.40.1:51820', '198.18.40.2:51820']);
    assert.equal(s.coord.server.counters.responses >= 1, true);
    assert.equal(s.pub.server.counters.responses >= 1, true);
    assert.equal(s.natted.server.counters.requests, 0, 'a peer behind a NAT is not asked');
    assert.equal(s.nat.nat(), 'none');
    assert.deepEqual(s.nat.endpoints(), ['198.18.41.2:51820']);
    assert.ok(s.changes() >= 1);
    // The same map again asks nobody new; a probe runs on its own schedule.
    const before = s.coord.server.counters.requests;
    s.nat.onMap(s.map);
    assert.equal(s.coord.server.counters.requests, before);
  } finally {
    s.close();
  }
});

test('mesh-nat: behind an endpoint-independent NAT the reflexive address is reported after the configured ones, before the local one', async () => {
  const s = await setup({ nat: 'eim', configured: ['198.18.40.200:51820'] });
  try {
    s.nat.onMap(s.map);
    await s.nat.probe();
    assert.equal(s.nat.nat(), 'endpoint-independent');
    assert.deepEqual(s.nat.endpoints(), ['198.18.40.200:51820', '198.18.40.99:30000', '198.18.41.2:51820']);
    const st = s.nat.status() as { nat: string; mapping: string; reflexive: string[]; lastProbe: number; stunClient: Record<string, number> };
    assert.equal(st.mapping, 'endpoint-independent');
    assert.deepEqual(st.reflexive, ['198.18.40.99:30000']);
    assert.ok(st.lastProbe > 0);
    assert.equal(st.stunClient.responses, 2);
  } finally {
    s.close();
  }
});

test('mesh-nat: behind an endpoint-dependent NAT the reflexive addresses go last', async () => {
  const s = await setup({ nat: 'dependent' });
  try {
    s.nat.onMap(s.map);
    await s.nat.probe();
    assert.equal(s.nat.nat(), 'endpoint-dependent');
    const eps = s.nat.endpoints();
    assert.equal(eps[0], '198.18.41.2:51820');
    assert.deepEqual(eps.slice(1).sort(), ['198.18.40.99:30000', '198.18.40.99:30001']);
  } finally {
    s.close();
  }
});

test('mesh-nat: a configured endpoint must be an address:port', () => {
  assert.equal(parseConfiguredEndpoint('198.18.0.5:51820'), '198.18.0.5:51820');
  assert.equal(parseConfiguredEndpoint('[FD00::5]:51820'), '[fd00::5]:51820');
  for (const bad of ['router.example:51820', '198.18.0.5', '198.18.0.5:0', '[fd00::5]:70000']) {
    assert.throws(() => parseConfiguredEndpoint(bad), (e: unknown) => e instanceof UserError && e.message.startsWith(`--endpoint "${bad}": `) && /51820/.test(e.hint ?? ''), bad);
  }
});

test('metrics: the STUN counters of mesh.nat as meshtun_stun_events_total; the NAT type as a gauge', () => {
  const base: InterfaceStatus = { interface: 'meshtun0', pid: 1, publicKey: null, listenPort: 51820, mtu: 1420, peers: [], counters: {} };
  const st = { ...base, mesh: { nat: { nat: 'endpoint-independent', lastProbe: 1_700_000_000_000, stunServer: { requests: 4, rateLimited: 1 }, stunClient: { timeouts: 2 } } } };
  const text = prometheusMetrics(st);
  assert.match(text, /^# TYPE meshtun_stun_events_total counter$/m);
  assert.match(text, /^meshtun_stun_events_total\{interface="meshtun0",side="server",event="requests"\} 4$/m);
  assert.match(text, /^meshtun_stun_events_total\{interface="meshtun0",side="server",event="rateLimited"\} 1$/m);
  assert.match(text, /^meshtun_stun_events_total\{interface="meshtun0",side="client",event="timeouts"\} 2$/m);
  assert.match(text, /^meshtun_nat_type\{interface="meshtun0",nat="endpoint-independent"\} 1$/m);
  assert.match(text, /^meshtun_nat_last_probe_seconds\{interface="meshtun0"\} 1700000000$/m);
  assert.doesNotMatch(prometheusMetrics(base), /meshtun_stun_events_total/);
});
