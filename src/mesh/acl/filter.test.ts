import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fuzzParser, fuzzIterations, Prng } from '../../wire/fuzz-harness.js';
import { Status } from '../../wire/index.js';
import { ipv4Packet, ipv6Packet, ipv6Fragment, udpPacket, udpDatagram, echoPacket, icmpv4Error, icmpv6Error } from '../../stack/testing.js';
import { parsePolicy } from './policy.js';
import { compilePolicy, type AclNode, type CompiledPolicy } from './compile.js';
import { AclFilter, AclVerdict, ACL_VERDICT_NAMES } from './filter.js';
import { PacketFlow, readFlow } from './flow.js';

const SYN = 0x02, ACK = 0x10, FIN = 0x01, RST = 0x04, PSH = 0x08;

/** A TCP segment in an IPv4 or IPv6 packet (checksum left zero: the filter does not check it). */
function tcp(src: string, dst: string, sport: number, dport: number, flags: number, payload = Buffer.alloc(0)): Buffer {
  const h = Buffer.alloc(20 + payload.length);
  h.writeUInt16BE(sport, 0);
  h.writeUInt16BE(dport, 2);
  h.writeUInt32BE(1000, 4);
  h[12] = 5 << 4;
  h[13] = flags;
  h.writeUInt16BE(65535, 14);
  payload.copy(h, 20);
  return src.includes(':') ? ipv6Packet(src, dst, 6, h) : ipv4Packet(src, dst, 6, h);
}

/** A clock tests move by hand. */
class TestClock { t = 1000; now(): number { return this.t; } }

// The scenario: ops-1 carries tag ops; web-1 and guest do not.
const NODES: AclNode[] = [
  { name: 'ops-1', addresses: ['100.64.0.1', 'fd00::1'], tags: ['ops'] },
  { name: 'web-1', addresses: ['100.64.0.2', 'fd00::2'], tags: ['web'] },
  { name: 'guest', addresses: ['100.64.0.3', 'fd00::3'] },
];
const SSH_ONLY = `{
  "tags": ["tag:ops", "tag:web"],
  // only SSH, only from ops
  "acls": [ { "src": ["tag:ops"], "dst": ["*:22"], "proto": "tcp" } ],
}`;

function compiled(text: string, nodes = NODES): CompiledPolicy {
  return compilePolicy(parsePolicy(text, 'test.hujson'), nodes);
}

/** Three nodes, each with its own filter enforcing the same policy on what it receives. */
function mesh(text = SSH_ONLY) {
  const clock = new TestClock();
  const policy = compiled(text);
  const filters = new Map<string, AclFilter>(); // by each of the node's addresses
  for (const n of NODES) {
    const f = new AclFilter({ policy, clock });
    for (const a of n.addresses) filters.set(a, f);
  }
  const filterOf = (addr: string) => filters.get(addr)!;
  /** Sends `pkt` from its source node to its destination node through both filters. */
  const send = (pkt: Buffer, src: string, dst: string): boolean => {
    filterOf(src).outbound(pkt, 0, pkt.length);
    return filterOf(dst).inbound(pkt, 0, pkt.length);
  };
  return { clock, policy, filterOf, send };
}

test('acl filter: only TCP/22 from tag ops passes, in both directions, and replies to allowed flows pass', () => {
  for (const [ops, web, guest] of [['100.64.0.1', '100.64.0.2', '100.64.0.3'], ['fd00::1', 'fd00::2', 'fd00::3']] as const) {
    const { send, filterOf } = mesh();
    const webFilter = filterOf(web);
    // ops -> web SSH: the handshake and data both ways.
    assert.ok(send(tcp(ops, web, 40000, 22, SYN), ops, web), 'SYN to 22');
    assert.equal(webFilter.lastVerdict, AclVerdict.AllowedRule);
    assert.ok(send(tcp(web, ops, 22, 40000, SYN | ACK), web, ops), 'SYN-ACK back');
    assert.equal(filterOf(ops).lastVerdict, AclVerdict.AllowedTracked);
    assert.ok(send(tcp(ops, web, 40000, 22, ACK), ops, web));
    assert.ok(send(tcp(ops, web, 40000, 22, ACK | PSH, Buffer.from('ls\n')), ops, web));
    assert.ok(send(tcp(web, ops, 22, 40000, ACK | PSH, Buffer.from('bin etc\n')), web, ops));
    assert.equal(webFilter.lastVerdict, AclVerdict.AllowedTracked);

    // Everything else from ops to web is blocked.
    assert.ok(!send(tcp(ops, web, 40001, 80, SYN), ops, web), 'TCP/80');
    assert.ok(!send(tcp(ops, web, 40001, 23, SYN), ops, web), 'TCP/23');
    assert.ok(!send(udpPacket(ops, web, 40002, 22, Buffer.from('x')), ops, web), 'UDP/22');
    assert.ok(!send(echoPacket(ops, web, 7, 1, Buffer.from('ping')), ops, web), 'ping');
    // Other sources cannot reach SSH.
    assert.ok(!send(tcp(guest, web, 40003, 22, SYN), guest, web), 'guest SSH');
    // The other direction: web is not ops, so web cannot open anything on ops.
    assert.ok(!send(tcp(web, ops, 40004, 22, SYN), web, ops), 'web -> ops SSH');
    assert.ok(!send(tcp(web, ops, 40004, 80, SYN), web, ops), 'web -> ops TCP/80');
    assert.ok(!send(udpPacket(web, ops, 53, 53, Buffer.from('q')), web, ops), 'web -> ops UDP');
    assert.ok(!send(echoPacket(web, ops, 9, 1, Buffer.from('ping')), web, ops), 'web -> ops ping');
    // A responder cannot open a connection of its own on the tuple of an allowed flow.
    assert.ok(!send(tcp(web, ops, 22, 40000, SYN), web, ops), 'SYN from the responder side');
    // Nor can a packet pretending to belong to a flow that does not exist.
    assert.ok(!send(tcp(web, ops, 22, 40099, ACK), web, ops), 'stray ACK');

    // Replies to flows the node started itself pass even though no rule allows that direction:
    // web pings ops and connects to ops:80 (ops' filter drops those), but ops -> web replies to
    // web's own flows would pass web's filter.
    assert.ok(!send(echoPacket(web, ops, 11, 1, Buffer.alloc(8)), web, ops));
    assert.ok(send(echoPacket(ops, web, 11, 1, Buffer.alloc(8), true), ops, web), 'echo reply to web\'s own ping');
    assert.equal(webFilter.lastVerdict, AclVerdict.AllowedTracked);

    const c = webFilter.counters;
    assert.equal(c.inAllowedRule, 1);
    assert.equal(c.inDroppedNoRule, 5);
    assert.equal(filterOf(ops).counters.inDroppedNoRule, 7);
  }
});

test('acl filter: flows expire per protocol; TCP lives long once established and briefly after FIN or RST', () => {
  const { send, filterOf, clock } = mesh();
  const web = filterOf('100.64.0.2');
  const out = (p: Buffer) => web.outbound(p, 0, p.length);
  const inn = (p: Buffer) => web.inbound(p, 0, p.length);
  // UDP: a reply 29 s later passes; 31 s after the last packet it does not.
  out(udpPacket('100.64.0.2', '100.64.0.1', 5000, 53, Buffer.from('q')));
  clock.t += 29_000;
  assert.ok(inn(udpPacket('100.64.0.1', '100.64.0.2', 53, 5000, Buffer.from('a'))));
  clock.t += 119_000; // replied UDP lives 120 s
  assert.ok(inn(udpPacket('100.64.0.1', '100.64.0.2', 53, 5000, Buffer.from('a'))));
  clock.t += 121_000;
  assert.ok(!inn(udpPacket('100.64.0.1', '100.64.0.2', 53, 5000, Buffer.from('a'))));
  // ICMP echo: 30 s.
  out(echoPacket('100.64.0.2', '100.64.0.3', 5, 1, Buffer.alloc(4)));
  clock.t += 31_000;
  assert.ok(!inn(echoPacket('100.64.0.3', '100.64.0.2', 5, 1, Buffer.alloc(4), true)));
  // TCP established: still there after an hour of silence; gone 10 s after a RST.
  assert.ok(send(tcp('100.64.0.1', '100.64.0.2', 41000, 22, SYN), '100.64.0.1', '100.64.0.2'));
  out(tcp('100.64.0.2', '100.64.0.1', 22, 41000, SYN | ACK));
  clock.t += 3_600_000;
  assert.ok(inn(tcp('100.64.0.1', '100.64.0.2', 41000, 22, ACK)));
  assert.equal(web.lastVerdict, AclVerdict.AllowedTracked);
  out(tcp('100.64.0.2', '100.64.0.1', 22, 41000, RST));
  clock.t += 11_000;
  assert.ok(inn(tcp('100.64.0.1', '100.64.0.2', 41000, 22, ACK))); // allowed again by the rule, as new
  assert.equal(web.lastVerdict, AclVerdict.AllowedRule);
  // An outbound connection: after FIN it lingers 120 s, then the peer's packets are strays.
  out(tcp('100.64.0.2', '100.64.0.3', 42000, 443, SYN));
  assert.ok(inn(tcp('100.64.0.3', '100.64.0.2', 443, 42000, SYN | ACK)));
  out(tcp('100.64.0.2', '100.64.0.3', 42000, 443, FIN | ACK));
  clock.t += 100_000;
  assert.ok(inn(tcp('100.64.0.3', '100.64.0.2', 443, 42000, FIN | ACK)));
  clock.t += 121_000;
  assert.ok(!inn(tcp('100.64.0.3', '100.64.0.2', 443, 42000, ACK)));
});

test('acl filter: ICMP errors pass when they quote a tracked flow and are addressed to its sender', () => {
  const { filterOf } = mesh();
  const web = filterOf('100.64.0.2');
  // traceroute from web: a UDP probe out, Time Exceeded back from a hop in between.
  const probe = udpPacket('100.64.0.2', '100.64.0.3', 45000, 33434, Buffer.alloc(32));
  web.outbound(probe, 0, probe.length);
  let err = icmpv4Error('100.64.0.9', '100.64.0.2', 11, 0, probe);
  assert.ok(web.inbound(err, 0, err.length));
  assert.equal(web.lastVerdict, AclVerdict.AllowedRelated);
  // Port unreachable from the target itself.
  err = icmpv4Error('100.64.0.3', '100.64.0.2', 3, 3, probe);
  assert.ok(web.inbound(err, 0, err.length));
  // About a flow nobody started: dropped.
  const other = udpPacket('100.64.0.2', '100.64.0.3', 45001, 33435, Buffer.alloc(32));
  err = icmpv4Error('100.64.0.9', '100.64.0.2', 11, 0, other);
  assert.ok(!web.inbound(err, 0, err.length));
  assert.equal(web.lastVerdict, AclVerdict.DroppedUnrelated);
  // Quoting a tracked flow but addressed to someone else: dropped.
  const reversed = udpPacket('100.64.0.3', '100.64.0.2', 33434, 45000, Buffer.alloc(32));
  err = icmpv4Error('100.64.0.9', '100.64.0.2', 11, 0, reversed);
  assert.ok(!web.inbound(err, 0, err.length));
  // ICMPv6 Packet Too Big for a tracked TCP connection, and Time Exceeded for a ping.
  const seg = tcp('fd00::2', 'fd00::3', 43000, 443, SYN);
  web.outbound(seg, 0, seg.length);
  err = icmpv6Error('fd00::9', 'fd00::2', 2, 0, seg, 1280);
  assert.ok(web.inbound(err, 0, err.length));
  const ping = echoPacket('fd00::2', 'fd00::3', 77, 1, Buffer.alloc(8));
  web.outbound(ping, 0, ping.length);
  err = icmpv6Error('fd00::9', 'fd00::2', 3, 0, ping);
  assert.ok(web.inbound(err, 0, err.length));
  assert.equal(web.counters.inAllowedRelated, 4);
  assert.equal(web.counters.inDroppedUnrelated, 2);
});

test('acl filter: later fragments pass only when their first fragment was let in; NDP never does', () => {
  const policy = compiled('{ "acls": [ { "src": ["*"], "dst": ["*:5000"], "proto": "udp" } ] }');
  const f = new AclFilter({ policy, clock: new TestClock() });
  const inn = (p: Buffer) => f.inbound(p, 0, p.length);
  // IPv4: a 2000-byte UDP datagram to port 5000 in two fragments; the same to port 6000.
  for (const [port, ident, allowed] of [[5000, 0x1111, true], [6000, 0x2222, false]] as const) {
    const d = udpDatagram('100.64.0.1', '100.64.0.2', 4000, port, Buffer.alloc(2000));
    const first = ipv4Packet('100.64.0.1', '100.64.0.2', 17, d.subarray(0, 1480), { ident, mf: true });
    const second = ipv4Packet('100.64.0.1', '100.64.0.2', 17, d.subarray(1480), { ident, fragOffset: 1480 });
    assert.equal(inn(first), allowed);
    assert.equal(inn(second), allowed);
    assert.equal(f.lastVerdict, allowed ? AclVerdict.AllowedFragment : AclVerdict.DroppedFragment);
  }
  // IPv6 the same way.
  const d6 = udpDatagram('fd00::1', 'fd00::2', 4000, 5000, Buffer.alloc(2000));
  assert.ok(inn(ipv6Fragment('fd00::1', 'fd00::2', 17, 0xabcdef, 0, true, d6.subarray(0, 1232))));
  assert.ok(inn(ipv6Fragment('fd00::1', 'fd00::2', 17, 0xabcdef, 1232, false, d6.subarray(1232))));
  assert.ok(!inn(ipv6Fragment('fd00::1', 'fd00::2', 17, 0xabcdee, 1232, false, d6.subarray(1232))), 'unknown ident');
  // A first fragment too short for a TCP header (RFC 1858) is malformed.
  const tiny = ipv4Packet('100.64.0.1', '100.64.0.2', 6, Buffer.alloc(8), { mf: true });
  assert.ok(!inn(tiny));
  assert.equal(f.lastVerdict, AclVerdict.DroppedMalformed);
  // Neighbour solicitation over the tunnel: dropped, even with no policy.
  const open = new AclFilter();
  const ns = Buffer.alloc(24);
  ns[0] = 135;
  const nsPkt = ipv6Packet('fd00::1', 'ff02::1:ff00:2', 58, ns, 255);
  assert.ok(!open.inbound(nsPkt, 0, nsPkt.length));
  assert.equal(open.lastVerdict, AclVerdict.DroppedNeighborDiscovery);
});

test('acl filter: replacing the policy keeps own flows and still-allowed ones, cuts the rest', () => {
  const { send, filterOf } = mesh(`{ "tags": ["tag:ops"], "acls": [
    { "src": ["tag:ops"], "dst": ["*:22"], "proto": "tcp" },
    { "src": ["*"], "dst": ["*:80"], "proto": "tcp" } ] }`);
  const web = filterOf('100.64.0.2');
  assert.ok(send(tcp('100.64.0.1', '100.64.0.2', 40000, 22, SYN), '100.64.0.1', '100.64.0.2'));
  assert.ok(send(tcp('100.64.0.3', '100.64.0.2', 40001, 80, SYN), '100.64.0.3', '100.64.0.2'));
  web.outbound(...args(tcp('100.64.0.2', '100.64.0.3', 40002, 443, SYN))); // web's own flow
  assert.equal(web.flows.count, 3);
  const removed = web.setPolicy(compiled('{ "tags": ["tag:ops"], "acls": [ { "src": ["tag:ops"], "dst": ["*:22"], "proto": "tcp" } ] }'));
  assert.equal(removed, 1);
  assert.equal(web.counters.flowsRemovedByPolicy, 1);
  assert.ok(web.inbound(...args(tcp('100.64.0.1', '100.64.0.2', 40000, 22, ACK))), 'SSH still allowed');
  assert.ok(!web.inbound(...args(tcp('100.64.0.3', '100.64.0.2', 40001, 80, ACK))), 'HTTP cut');
  // The web server still sending on the cut connection does not reopen it.
  web.outbound(...args(tcp('100.64.0.2', '100.64.0.3', 80, 40001, ACK | PSH, Buffer.from('more'))));
  assert.ok(!web.inbound(...args(tcp('100.64.0.3', '100.64.0.2', 40001, 80, ACK))), 'HTTP stays cut');
  assert.ok(web.inbound(...args(tcp('100.64.0.3', '100.64.0.2', 443, 40002, SYN | ACK))), 'own flow kept');
  // Back to no policy: everything passes.
  assert.equal(web.setPolicy(null), 0);
  assert.ok(web.inbound(...args(tcp('100.64.0.3', '100.64.0.2', 40001, 80, ACK))));
  assert.equal(web.lastVerdict, AclVerdict.AllowedNoPolicy);
  assert.deepEqual(ACL_VERDICT_NAMES.length, Object.keys(AclVerdict).length);
});

function args(p: Buffer): [Buffer, number, number] { return [p, 0, p.length]; }

test('acl filter: never throws on random or mutated packets; readFlow reads only its length', () => {
  const seeds = [
    tcp('100.64.0.1', '100.64.0.2', 40000, 22, SYN), tcp('fd00::1', 'fd00::2', 40000, 22, SYN | ACK),
    udpPacket('100.64.0.1', '100.64.0.2', 1, 2, Buffer.alloc(20)), echoPacket('fd00::1', 'fd00::2', 1, 1, Buffer.alloc(8)),
    icmpv4Error('100.64.0.9', '100.64.0.1', 11, 0, udpPacket('100.64.0.1', '100.64.0.2', 1, 2, Buffer.alloc(20))),
    icmpv6Error('fd00::9', 'fd00::1', 1, 4, tcp('fd00::1', 'fd00::2', 1, 2, SYN)),
    ipv6Fragment('fd00::1', 'fd00::2', 17, 5, 0, true, Buffer.alloc(40)),
  ];
  const flow = new PacketFlow();
  fuzzParser(seeds, (buf, off, len) => {
    const st = readFlow(buf, off, len, flow);
    return st === Status.Ok ? `${flow.kind}:${flow.protocol}:${flow.src.join()}:${flow.dst.join()}:${flow.srcPort}:${flow.dstPort}:${flow.inner?.srcPort}` : st;
  }, { iterations: fuzzIterations(60_000) });
  const f = new AclFilter({ policy: compiled(SSH_ONLY), limits: { maxFlows: 256 } });
  let n = 0;
  fuzzParser(seeds, (buf, off, len) => {
    // Stateful, so the verdict is not a digest; alternate directions to fill the flow table.
    if ((n++ & 1) === 0) f.outbound(buf, off, len);
    f.inbound(buf, off, len);
    return null;
  }, { iterations: fuzzIterations(60_000) });
  const rng = new Prng(7);
  const junk = Buffer.alloc(1500);
  for (let i = 0; i < 20_000; i++) {
    const len = rng.int(junk.length);
    rng.fill(junk, 0, len);
    f.inbound(junk, 0, len);
    f.outbound(junk, 0, len);
  }
  const c = f.counters;
  const judged = c.inAllowedRule + c.inAllowedTracked + c.inAllowedRelated + c.inAllowedFragment + c.inAllowedNoPolicy +
    c.inDroppedNoRule + c.inDroppedUnrelated + c.inDroppedFragment + c.inDroppedNeighborDiscovery + c.inDroppedMalformed;
  assert.equal(judged, fuzzIterations(60_000) * 2 + 20_000);
  assert.ok(f.flows.count <= 256);
});

test('acl filter: micro-bench (printed, not asserted)', (t) => {
  const f = new AclFilter({ policy: compiled(SSH_ONLY) });
  const N = 256;
  const pkts: Buffer[] = [];
  for (let i = 0; i < N; i++) {
    const out = tcp('100.64.0.2', '100.64.0.1', 20000 + i, 443, SYN);
    f.outbound(out, 0, out.length);
    pkts.push(tcp('100.64.0.1', '100.64.0.2', 443, 20000 + i, ACK, Buffer.alloc(1380)));
  }
  const run = (count: number) => {
    let ok = 0;
    for (let i = 0; i < count; i++) { const p = pkts[i & (N - 1)]!; if (f.inbound(p, 0, p.length)) ok++; }
    return ok;
  };
  run(100_000);
  const COUNT = 500_000;
  const t0 = performance.now();
  const ok = run(COUNT);
  const ms = performance.now() - t0;
  assert.equal(ok, COUNT);
  t.diagnostic(`acl inbound, tracked TCP/IPv4 flows: ${(COUNT / ms / 1000).toFixed(2)} Mpps (${((ms * 1e6) / COUNT).toFixed(0)} ns/packet)`);
});
