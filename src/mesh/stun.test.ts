// StunServer and StunClient on real engines over a MemoryNetwork. A NAT is emulated in the
// network's delivery hook: datagrams from the inside address leave with the NAT's outside address
// and a mapped port (one per inside port, or one per inside port and destination: endpoint-
// dependent), and datagrams to a mapped port go back in.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Engine, ManualClock } from '../wireguard/index.js';
import { MemoryTun } from '../tun/index.js';
import { MemoryNetwork, type MemoryBind, type MemoryDatagram } from '../transport/index.js';
import { generatePrivateKey } from '../crypto/index.js';
import { StunRepr, StunClass, StunAttr, parseStun, emitStun, stunLength, stunFingerprint, Status, formatIpv4Address } from '../wire/index.js';
import { UnderlayMux } from './underlay-mux.js';
import { StunServer, StunClient, routeStun, natVerdict, STUN_MAX_GROWTH, type StunAnswer } from './stun.js';

const tick = async (n = 6) => { for (let i = 0; i < n; i++) await new Promise((r) => setImmediate(r)); };

interface Node { engine: Engine; mux: UnderlayMux; server: StunServer; client: StunClient }

async function node(net: MemoryNetwork, address: string, clock?: ManualClock): Promise<Node> {
  const engine = new Engine({ device: new MemoryTun(`stun-${address}`), bind: net.createBind(address) });
  engine.setPrivateKey(generatePrivateKey());
  await engine.setListenPort(51820);
  await engine.up();
  const mux = new UnderlayMux(engine);
  const server = new StunServer(mux, clock ? { clock } : {});
  const client = new StunClient(mux, clock ? { clock } : {});
  routeStun(mux, server, client);
  return { engine, mux, server, client };
}

/** Emulates a NAT between `inside` and the rest of the network, seen from outside as `outside`. */
function nat(net: MemoryNetwork, inside: string, outside: string, opts: { dependent: boolean }): { mappings: Map<string, number> } {
  const mappings = new Map<string, number>();
  const back = new Map<number, MemoryDatagram['from']>();
  let nextPort = 20000;
  net.hooks.reorder = (round) => {
    for (const d of round) {
      if (d.from.address === inside) {
        const key = opts.dependent ? `${d.from.port}>${d.to.toString()}` : `${d.from.port}`;
        let port = mappings.get(key);
        if (port === undefined) {
          port = nextPort++;
          mappings.set(key, port);
          back.set(port, d.from);
        }
        d.from = net.pool.fromAddress(outside, port)!;
      } else if (d.to.address === outside) {
        const to = back.get(d.to.port);
        if (to) d.to = to;
      }
    }
  };
  return { mappings };
}

test('stun: a server answers with the address the socket saw; probe of two servers without NAT says none', async () => {
  const net = new MemoryNetwork();
  const a = await node(net, '198.18.20.1');
  const b = await node(net, '198.18.20.2');
  const c = await node(net, '198.18.20.3');
  try {
    const servers = [b, c].map((n) => a.engine.bind.parseEndpoint(`${(n.engine.bind as MemoryBind).address}:51820`)!);
    const one = await a.client.bind(servers[0]!);
    assert.deepEqual({ ...one, rttMs: null }, { server: '198.18.20.2:51820', reflexive: '198.18.20.1:51820', error: null, rttMs: null });
    const r = await a.client.probe(servers, ['198.18.20.1:51820']);
    assert.equal(r.nat, 'none');
    assert.equal(r.mapping, 'unknown');
    assert.deepEqual(r.reflexive, []);
    assert.deepEqual(r.answers.map((x) => x.reflexive), ['198.18.20.1:51820', '198.18.20.1:51820']);
    // Without knowing its own addresses, two servers at different addresses that saw the same
    // ip:port are endpoint-independent mapping.
    const blind = await a.client.probe(servers);
    assert.equal(blind.mapping, 'endpoint-independent');
    assert.deepEqual(blind.reflexive, ['198.18.20.1:51820']);
    assert.equal(b.server.counters.requests, 3);
    assert.equal(b.server.counters.responses, 3);
    assert.equal(c.server.counters.responses, 2);
    assert.equal(a.client.counters.requests, 5);
    assert.equal(a.client.counters.responses, 5);
    assert.equal(a.client.counters.retransmits, 0);
    assert.equal(a.client.inFlight, 0);
    assert.equal(b.mux.counters.stun, 3);
    assert.equal(b.engine.counters.rxOtherDatagrams, 3);
  } finally {
    for (const n of [a, b, c]) n.engine.close();
  }
});

test('stun: behind an endpoint-independent NAT both servers see one reflexive address', async () => {
  const net = new MemoryNetwork();
  const a = await node(net, '198.18.21.1');
  const b = await node(net, '198.18.21.2');
  const c = await node(net, '198.18.21.3');
  nat(net, '198.18.21.1', '198.18.99.1', { dependent: false });
  try {
    const servers = ['198.18.21.2:51820', '198.18.21.3:51820'].map((s) => a.engine.bind.parseEndpoint(s)!);
    const r = await a.client.probe(servers, ['198.18.21.1:51820']);
    assert.deepEqual(r.reflexive, ['198.18.99.1:20000']);
    assert.equal(r.mapping, 'endpoint-independent');
    assert.equal(r.nat, 'endpoint-independent');
    // One server alone cannot tell.
    const single = await a.client.probe(servers.slice(0, 1), ['198.18.21.1:51820']);
    assert.equal(single.mapping, 'unknown');
    assert.equal(single.nat, 'unknown');
    assert.deepEqual(single.reflexive, ['198.18.99.1:20000']);
  } finally {
    for (const n of [a, b, c]) n.engine.close();
  }
});

test('stun: behind an endpoint-dependent NAT the servers see different ports', async () => {
  const net = new MemoryNetwork();
  const a = await node(net, '198.18.22.1');
  const b = await node(net, '198.18.22.2');
  const c = await node(net, '198.18.22.3');
  const n = nat(net, '198.18.22.1', '198.18.99.2', { dependent: true });
  try {
    const servers = ['198.18.22.2:51820', '198.18.22.3:51820'].map((s) => a.engine.bind.parseEndpoint(s)!);
    const r = await a.client.probe(servers, ['198.18.22.1:51820']);
    assert.equal(n.mappings.size, 2);
    assert.deepEqual(r.reflexive.sort(), ['198.18.99.2:20000', '198.18.99.2:20001']);
    assert.equal(r.mapping, 'endpoint-dependent');
    assert.equal(r.nat, 'endpoint-dependent');
  } finally {
    for (const x of [a, b, c]) x.engine.close();
  }
});

test('stun: a lost request is retransmitted after the RTO; a silent server times out after the attempts', async () => {
  const clock = new ManualClock();
  let dropFirst = true;
  const net = new MemoryNetwork({
    filter: (d) => {
      if (dropFirst && d.to.address === '198.18.23.2') { dropFirst = false; return false; }
      return true;
    },
  });
  const a = await node(net, '198.18.23.1', clock);
  const b = await node(net, '198.18.23.2', clock);
  try {
    const p = a.client.bind(a.engine.bind.parseEndpoint('198.18.23.2:51820')!);
    await tick();
    assert.equal(b.server.counters.requests, 0, 'the first transmission was lost');
    clock.advance(500);
    await tick();
    const r = await p;
    assert.equal(r.reflexive, '198.18.23.1:51820');
    assert.equal(a.client.counters.retransmits, 1);
    assert.equal(a.client.counters.sent, 2);

    // Nobody at .9: three transmissions (at 0, 500, 1500 ms), given up at 3500 ms.
    const lost = a.client.bind(a.engine.bind.parseEndpoint('198.18.23.9:51820')!);
    let settled = false;
    void lost.then(() => { settled = true; });
    clock.advance(3499);
    await tick();
    assert.equal(settled, false);
    clock.advance(1);
    const t = await lost;
    assert.deepEqual(t, { server: '198.18.23.9:51820', reflexive: null, error: 'timeout', rttMs: null });
    assert.equal(a.client.counters.sent, 5);
    assert.equal(a.client.counters.timeouts, 1);
    assert.equal(a.client.inFlight, 0);
    // close() settles what is in flight.
    const pending = a.client.bind(a.engine.bind.parseEndpoint('198.18.23.9:51820')!);
    a.client.close();
    assert.equal((await pending).error, 'closed');
  } finally {
    a.engine.close();
    b.engine.close();
  }
});

/** A raw bind that sends STUN to a server and collects what comes back. */
async function rawPeer(net: MemoryNetwork, address: string) {
  const bind = net.createBind(address);
  await bind.open(4000);
  const got: Buffer[] = [];
  bind.start(() => {
    const bufs = [Buffer.alloc(2048)];
    const sizes = new Uint32Array(1);
    const eps = [null];
    while (bind.receiveBatch(bufs, sizes, eps) > 0) got.push(Buffer.from(bufs[0]!.subarray(0, sizes[0])));
  });
  const send = (msg: Buffer, to = '198.18.24.1:51820') => bind.sendBatch([msg], new Uint32Array([0]), new Uint32Array([msg.length]), 1, bind.parseEndpoint(to)!);
  return { bind, got, send };
}

function request(opts: { id?: number; fingerprint?: boolean; extra?: Buffer; cls?: StunClass } = {}): Buffer {
  const r = new StunRepr();
  r.messageClass = opts.cls ?? StunClass.Request;
  r.transactionId.writeUInt32BE(opts.id ?? 1, 8);
  r.fingerprint = opts.fingerprint ?? false;
  if (!opts.extra) {
    const out = Buffer.alloc(stunLength(r));
    emitStun(r, out, 0);
    return out;
  }
  // Insert raw attributes before the (optional) fingerprint.
  const head = Buffer.alloc(20);
  r.fingerprint = false;
  emitStun(r, head, 0);
  const msg = Buffer.concat([head, opts.extra, Buffer.alloc(opts.fingerprint ? 8 : 0)]);
  msg.writeUInt16BE(msg.length - 20, 2);
  if (opts.fingerprint) {
    const at = msg.length - 8;
    msg.writeUInt16BE(StunAttr.Fingerprint, at);
    msg.writeUInt16BE(4, at + 2);
    msg.writeUInt32BE(stunFingerprint(msg, 0, at), at + 4);
  }
  return msg;
}

test('stun server: answers never grow by more than STUN_MAX_GROWTH; 420 for unknown required attributes; junk counted', async () => {
  const net = new MemoryNetwork();
  const s = await node(net, '198.18.24.1');
  const v4 = await rawPeer(net, '198.18.24.2');
  const v6 = await rawPeer(net, 'fd00::24:2');
  const v6server = await node(net, 'fd00::24:1');
  try {
    const sent: number[] = [];
    const send = (peer: typeof v4, msg: Buffer, to?: string) => { sent.push(msg.length); peer.send(msg, to); };
    send(v4, request({ id: 1 }));
    send(v4, request({ id: 2, fingerprint: true }));
    send(v6, request({ id: 3 }), '[fd00::24:1]:51820');
    send(v6, request({ id: 4, fingerprint: true }), '[fd00::24:1]:51820');
    await tick();
    const r = new StunRepr();
    const answers = [...v4.got, ...v6.got];
    assert.equal(answers.length, 4);
    for (const [i, ans] of answers.entries()) {
      assert.equal(parseStun(ans, 0, ans.length, r), Status.Ok);
      assert.equal(r.messageClass, StunClass.Success);
      assert.equal(r.transactionId.readUInt32BE(8), i + 1);
      assert.ok(ans.length <= sent[i]! + STUN_MAX_GROWTH, `answer ${ans.length} bytes to a ${sent[i]}-byte request`);
      assert.equal(r.fingerprint, i % 2 === 1, 'FINGERPRINT only when the request had one');
      assert.equal(r.softwareLength, -1, 'no SOFTWARE');
    }
    parseStun(v4.got[0]!, 0, v4.got[0]!.length, r);
    assert.equal(`${formatIpv4Address(r.mapped.ipv4)}:${r.mapped.port}`, '198.18.24.2:4000');
    parseStun(v6.got[0]!, 0, v6.got[0]!.length, r);
    assert.equal(r.mapped.family, 6);
    assert.equal(r.mapped.port, 4000);
    assert.equal(v6server.server.counters.responses, 2);

    // An unknown comprehension-required attribute (ICE PRIORITY): 420 naming it.
    v4.got.length = 0;
    const priority = Buffer.from('002400046e0001ff', 'hex');
    const withPriority = request({ id: 5, extra: priority, fingerprint: true });
    v4.send(withPriority);
    await tick();
    assert.equal(v4.got.length, 1);
    assert.equal(parseStun(v4.got[0]!, 0, v4.got[0]!.length, r), Status.Ok);
    assert.equal(r.messageClass, StunClass.Error);
    assert.equal(r.errorCode, 420);
    assert.deepEqual([...r.unknownAttributes.subarray(0, r.unknownAttributeCount)], [0x0024]);
    assert.ok(v4.got[0]!.length <= withPriority.length + STUN_MAX_GROWTH);
    assert.equal(s.server.counters.errors, 1);

    // Junk: a bad fingerprint, an indication, a response. None is answered.
    v4.got.length = 0;
    const bad = request({ id: 6, fingerprint: true });
    bad[bad.length - 1] ^= 1;
    v4.send(bad);
    v4.send(request({ id: 7, cls: StunClass.Indication }));
    await tick();
    assert.equal(v4.got.length, 0);
    assert.equal(s.server.counters.malformed, 1);
    assert.equal(s.server.counters.ignored, 1);
    v4.send(request({ id: 8, cls: StunClass.Success }));
    await tick();
    assert.equal(s.client.counters.unmatched, 1, 'a response nobody asked for');
    assert.equal(v4.got.length, 0);
  } finally {
    for (const p of [v4, v6]) p.bind.close();
    s.engine.close();
    v6server.engine.close();
  }
});

test('stun server: each source is rate limited (burst, then the rate); others are not affected', async () => {
  const clock = new ManualClock();
  const net = new MemoryNetwork();
  const engine = new Engine({ device: new MemoryTun('stun-rl'), bind: net.createBind('198.18.24.1') });
  engine.setPrivateKey(generatePrivateKey());
  await engine.setListenPort(51820);
  await engine.up();
  const mux = new UnderlayMux(engine);
  const server = new StunServer(mux, { clock, limits: { perSourceRate: 10, perSourceBurst: 20 } });
  routeStun(mux, server, null);
  const flood = await rawPeer(net, '198.18.24.2');
  const other = await rawPeer(net, '198.18.24.3');
  try {
    for (let i = 0; i < 50; i++) flood.send(request({ id: i }));
    other.send(request({ id: 99 }));
    await tick();
    assert.equal(flood.got.length, 20, 'the burst');
    assert.equal(other.got.length, 1);
    assert.equal(server.counters.rateLimited, 30);
    assert.equal(server.counters.requests, 51);
    clock.advance(1000);
    for (let i = 0; i < 50; i++) flood.send(request({ id: i }));
    await tick();
    assert.equal(flood.got.length, 30, 'ten more after a second');
    assert.equal(server.counters.rateLimited, 70);
  } finally {
    flood.bind.close();
    other.bind.close();
    engine.close();
  }
});

test('stun client: responses from elsewhere, and malformed ones, do not settle a transaction', async () => {
  const net = new MemoryNetwork();
  const a = await node(net, '198.18.25.1');
  const spoofer = await rawPeer(net, '198.18.25.7');
  // A server that captures the request instead of answering: the test answers it by hand.
  const quiet = await rawPeer(net, '198.18.25.2');
  await quiet.bind.open(51820);
  try {
    const p = a.client.bind(a.engine.bind.parseEndpoint('198.18.25.2:51820')!);
    await tick();
    assert.equal(quiet.got.length, 1);
    const req = quiet.got[0]!;
    const r = new StunRepr();
    assert.equal(parseStun(req, 0, req.length, r), Status.Ok);
    assert.equal(r.fingerprint, true, 'meshtun requests carry FINGERPRINT');
    r.messageClass = StunClass.Success;
    r.mapped.setIpv4(0xc6126301, 1234);
    const answer = Buffer.alloc(stunLength(r));
    emitStun(r, answer, 0);
    spoofer.send(answer, '198.18.25.1:51820');
    const broken = Buffer.from(answer);
    broken[broken.length - 1] ^= 1;
    quiet.send(broken, '198.18.25.1:51820');
    await tick();
    assert.equal(a.client.counters.wrongSource, 1);
    assert.equal(a.client.counters.malformed, 1);
    assert.equal(a.client.inFlight, 1);
    quiet.send(answer, '198.18.25.1:51820');
    const got = await p;
    assert.equal(got.reflexive, '198.18.99.1:1234');
  } finally {
    spoofer.bind.close();
    quiet.bind.close();
    a.engine.close();
  }
});

test('stun: natVerdict', () => {
  const ans = (server: string, reflexive: string | null): StunAnswer => ({ server, reflexive, error: reflexive ? null : 'timeout', rttMs: null });
  const local = ['10.0.0.2:51820', '[fd00::2]:51820'];
  assert.deepEqual(natVerdict([], local), { reflexive: [], mapping: 'unknown', nat: 'unknown' });
  assert.deepEqual(natVerdict([ans('198.18.0.1:51820', null)], local), { reflexive: [], mapping: 'unknown', nat: 'unknown' });
  assert.equal(natVerdict([ans('198.18.0.1:51820', '10.0.0.2:51820')], local).nat, 'none');
  // Two servers on one host (same address, other ports) agreeing prove nothing...
  assert.equal(natVerdict([ans('198.18.0.1:1', '198.18.9.9:5'), ans('198.18.0.1:2', '198.18.9.9:5')], local).mapping, 'unknown');
  // ...but disagreeing they do.
  assert.equal(natVerdict([ans('198.18.0.1:1', '198.18.9.9:5'), ans('198.18.0.1:2', '198.18.9.9:6')], local).mapping, 'endpoint-dependent');
  // A server on the LAN sees the local address: that path has no NAT and does not count.
  const mixed = natVerdict([ans('10.0.0.1:51820', '10.0.0.2:51820'), ans('198.18.0.1:51820', '198.18.9.9:5'), ans('198.18.0.2:51820', '198.18.9.9:5')], local);
  assert.deepEqual(mixed, { reflexive: ['198.18.9.9:5'], mapping: 'endpoint-independent', nat: 'endpoint-independent' });
  // Families are compared separately: IPv6 without NAT, IPv4 behind one.
  const dual = natVerdict([ans('[fd00::1]:51820', '[fd00::2]:51820'), ans('198.18.0.1:51820', '198.18.9.9:5')], local);
  assert.deepEqual(dual, { reflexive: ['198.18.9.9:5'], mapping: 'unknown', nat: 'unknown' });
});
