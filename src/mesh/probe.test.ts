// The Prober over real engines joined by an in-memory network: node A (a memory TUN) probes node
// B, whose device is the userspace stack answering echo requests. Ping over v4 and v6 at once,
// traceroute through a synthetic relay hop (an ICMP Time Exceeded made by hand and delivered with
// engine.deliverInbound), Destination Unreachable, timeouts, and targets without a route.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Engine, parseCidr } from '../wireguard/index.js';
import { MemoryTun } from '../tun/index.js';
import { MemoryNetwork } from '../transport/index.js';
import { generatePrivateKey } from '../crypto/index.js';
import { UserspaceStack } from '../stack/index.js';
import {
  Ipv4Repr, Ipv6Repr, Icmpv4Repr, Icmpv6Repr, IpProtocol, Icmpv4Type, Icmpv6Type, Icmpv4DstUnreachable,
  emitIpv4, emitIpv6, emitIcmpv4, emitIcmpv6, parseIpv4Address, parseIpv6Address, IPV4_HEADER_LEN, IPV6_HEADER_LEN,
  ICMPV4_HEADER_LEN, ICMPV6_HEADER_LEN,
} from '../wire/index.js';
import { Prober, summarizePing, ipLiteralFamily, type ProbeResult } from './probe.js';

const A4 = '100.64.0.1', B4 = '100.64.0.2', A6 = 'fd00::1', B6 = 'fd00::2';
/** Routed to B but owned by nobody: probes to it time out. */
const LOST4 = '100.64.0.77';
/** The address of a pretend relay node that answers Time Exceeded. */
const RELAY4 = '100.64.0.9', RELAY6 = 'fd00::9';

async function setup() {
  const net = new MemoryNetwork();
  const tun = new MemoryTun('probe-a');
  const a = new Engine({ device: tun, bind: net.createBind('198.18.0.1') });
  const stack = new UserspaceStack({ addresses: [`${B4}/24`, `${B6}/64`], name: 'probe-b' });
  const b = new Engine({ device: stack, bind: net.createBind('198.18.0.2') });
  for (const e of [a, b]) {
    e.setPrivateKey(generatePrivateKey());
    await e.setListenPort(51820);
    await e.up();
  }
  const pb = a.addPeer(b.publicKey!);
  for (const c of [`${B4}/32`, `${B6}/128`, `${LOST4}/32`]) a.allowedIps.insertCidr(parseCidr(c), pb);
  a.setEndpoint(pb, a.bind.parseEndpoint('198.18.0.2:51820'));
  const pa = b.addPeer(a.publicKey!);
  for (const c of [`${A4}/32`, `${A6}/128`]) b.allowedIps.insertCidr(parseCidr(c), pa);
  b.setEndpoint(pa, b.bind.parseEndpoint('198.18.0.1:51820'));
  const prober = new Prober(a, () => ({ ipv4: A4, ipv6: A6 }));
  return { a, b, tun, prober, close: () => { prober.close(); a.close(); b.close(); } };
}

/** An ICMPv4 error of `type`/`code` from `from` to A quoting `probe`. */
function icmp4Error(from: string, type: number, code: number, probe: Buffer): Buffer {
  const icmp = new Icmpv4Repr();
  icmp.type = type;
  icmp.code = code;
  icmp.payloadBuf = probe;
  icmp.payloadOffset = 0;
  icmp.payloadLength = Math.min(probe.length, IPV4_HEADER_LEN + 8);
  const ip = new Ipv4Repr();
  ip.src = parseIpv4Address(from)!;
  ip.dst = parseIpv4Address(A4)!;
  ip.protocol = IpProtocol.Icmp;
  ip.ttl = 63;
  ip.payloadLength = ICMPV4_HEADER_LEN + icmp.payloadLength;
  const out = Buffer.alloc(IPV4_HEADER_LEN + ip.payloadLength);
  emitIpv4(ip, out, 0);
  emitIcmpv4(icmp, out, IPV4_HEADER_LEN);
  return out;
}

/** An ICMPv6 Time Exceeded from `from` to A quoting `probe`. */
function icmp6TimeExceeded(from: string, probe: Buffer): Buffer {
  const icmp = new Icmpv6Repr();
  icmp.type = Icmpv6Type.TimeExceeded;
  icmp.code = 0;
  icmp.payloadBuf = probe;
  icmp.payloadOffset = 0;
  icmp.payloadLength = probe.length;
  const ip = new Ipv6Repr();
  parseIpv6Address(from, ip.src);
  parseIpv6Address(A6, ip.dst);
  ip.nextHeader = IpProtocol.Icmpv6;
  ip.hopLimit = 63;
  ip.payloadLength = ICMPV6_HEADER_LEN + icmp.payloadLength;
  const out = Buffer.alloc(IPV6_HEADER_LEN + ip.payloadLength);
  emitIpv6(ip, out, 0);
  emitIcmpv6(icmp, out, IPV6_HEADER_LEN, ip.src, 0, ip.dst, 0);
  return out;
}

/** Makes A's engine behave as if a relay sat one hop before B: a probe sent with TTL (hop limit)
 * 1 is answered by the relay's Time Exceeded instead of going out. */
function pretendRelay(a: Engine): void {
  const real = a.injectOutbound.bind(a);
  a.injectOutbound = (buf, off, len) => {
    const pkt = Buffer.from(buf.subarray(off, off + len));
    const v6 = pkt[0]! >>> 4 === 6;
    const ttl = v6 ? pkt[7]! : pkt[8]!;
    if (ttl > 1) return real(buf, off, len);
    const err = v6 ? icmp6TimeExceeded(RELAY6, pkt) : icmp4Error(RELAY4, Icmpv4Type.TimeExceeded, 0, pkt);
    setImmediate(() => a.deliverInbound(err, 0, err.length));
    return true;
  };
}

test('probe: ipLiteralFamily and summarizePing', () => {
  assert.equal(ipLiteralFamily('100.64.0.1'), 4);
  assert.equal(ipLiteralFamily('fd00::1'), 6);
  assert.equal(ipLiteralFamily('laptop'), 0);
  const r = (kind: ProbeResult['kind'], rttMs: number | null): ProbeResult => ({ seq: 0, ttl: 64, kind, from: null, rttMs, replyTtl: null, code: null, bytes: 56 });
  assert.deepEqual(summarizePing([r('reply', 1), r('reply', 3), r('timeout', null), r('reply', 2)]), { sent: 4, received: 3, loss: 25, minMs: 1, avgMs: 2, maxMs: 3 });
  assert.deepEqual(summarizePing([r('timeout', null)]), { sent: 1, received: 0, loss: 100, minMs: null, avgMs: null, maxMs: null });
});

test('probe: ping over v4 and v6 at the same time, replies matched to their probes', async () => {
  const { prober, close } = await setup();
  try {
    const [p4, p6] = await Promise.all([
      prober.ping(B4, { count: 3, intervalMs: 20, timeoutMs: 3000 }),
      prober.ping(B6, { count: 3, intervalMs: 20, timeoutMs: 3000, ttl: 5 }),
    ]);
    for (const [rep, from] of [[p4, B4], [p6, B6]] as const) {
      assert.equal(rep.summary.sent, 3);
      assert.equal(rep.summary.received, 3, JSON.stringify(rep.results));
      assert.equal(rep.summary.loss, 0);
      for (const r of rep.results) {
        assert.equal(r.kind, 'reply');
        assert.equal(r.from, from);
        assert.ok(r.rttMs !== null && r.rttMs >= 0);
        assert.equal(r.replyTtl, 64);
      }
      assert.equal(new Set(rep.results.map((r) => r.seq)).size, 3);
    }
    assert.equal(p4.source, A4);
    assert.equal(p6.source, A6);
    assert.equal(p6.results[0]!.ttl, 5);
    assert.equal(prober.inFlight, 0);
  } finally {
    close();
  }
});

test('probe: traceroute shows a relay hop (Time Exceeded) then the destination, v4 and v6', async () => {
  const { a, prober, close } = await setup();
  try {
    pretendRelay(a);
    const [t4, t6] = await Promise.all([prober.traceroute(B4, { timeoutMs: 3000 }), prober.traceroute(B6, { timeoutMs: 3000, probesPerHop: 2 })]);
    assert.equal(t4.reached, true);
    assert.deepEqual(t4.hops.map((h) => [h.hop, h.address, h.reached, h.rtts.length]), [[1, RELAY4, false, 3], [2, B4, true, 3]]);
    assert.ok(t4.hops.every((h) => h.rtts.every((r) => r !== null)));
    assert.equal(t6.reached, true);
    assert.deepEqual(t6.hops.map((h) => [h.hop, h.address, h.reached, h.rtts.length]), [[1, RELAY6, false, 2], [2, B6, true, 2]]);
  } finally {
    close();
  }
});

test('probe: a direct peer is reached at hop 1', async () => {
  const { prober, close } = await setup();
  try {
    const t = await prober.traceroute(B4, { timeoutMs: 3000 });
    assert.deepEqual(t.hops.map((h) => [h.hop, h.address, h.reached]), [[1, B4, true]]);
  } finally {
    close();
  }
});

test('probe: Destination Unreachable ends the probe and the traceroute', async () => {
  const { a, prober, close } = await setup();
  try {
    a.injectOutbound = (buf, off, len) => {
      const err = icmp4Error(RELAY4, Icmpv4Type.DstUnreachable, Icmpv4DstUnreachable.HostUnreachable, Buffer.from(buf.subarray(off, off + len)));
      setImmediate(() => a.deliverInbound(err, 0, err.length));
      return true;
    };
    const r = await prober.probe(B4, { timeoutMs: 3000 });
    assert.equal(r.kind, 'unreachable');
    assert.equal(r.from, RELAY4);
    assert.equal(r.code, Icmpv4DstUnreachable.HostUnreachable);
    const t = await prober.traceroute(B4, { timeoutMs: 3000 });
    assert.equal(t.reached, false);
    assert.equal(t.hops.length, 1);
    assert.equal(t.hops[0]!.unreachable, Icmpv4DstUnreachable.HostUnreachable);
  } finally {
    close();
  }
});

test('probe: timeouts, no route, no source address, not an IP; errors quoting other probes are ignored', async () => {
  const { a, prober, close } = await setup();
  try {
    const lost = await prober.ping(LOST4, { count: 2, intervalMs: 10, timeoutMs: 150 });
    assert.deepEqual(lost.results.map((r) => r.kind), ['timeout', 'timeout']);
    assert.equal(lost.summary.loss, 100);
    const none = await prober.ping('100.64.0.200', { count: 3, intervalMs: 10 });
    assert.deepEqual(none.results.map((r) => r.kind), ['no-route'], 'stops after the first no-route');
    assert.equal((await prober.probe('laptop')).kind, 'no-route');
    const v4only = new Prober(a, () => ({ ipv4: A4, ipv6: null }));
    assert.equal((await v4only.probe(B6)).kind, 'no-route');
    // An error quoting a probe of another identifier is not an answer; one quoting ours is.
    const sent: Buffer[] = [];
    const real = a.injectOutbound.bind(a);
    a.injectOutbound = (buf, off, len) => { sent.push(Buffer.from(buf.subarray(off, off + len))); return real(buf, off, len); };
    const waiting = prober.probe(LOST4, { timeoutMs: 3000 });
    const mine = sent[0]!;
    const foreign = Buffer.from(mine);
    foreign.writeUInt16BE(prober.ident ^ 1, IPV4_HEADER_LEN + 4);
    const deliver = (b: Buffer) => { const e = icmp4Error(RELAY4, Icmpv4Type.TimeExceeded, 0, b); a.deliverInbound(e, 0, e.length); };
    deliver(foreign);
    assert.equal(prober.inFlight, 1);
    deliver(mine);
    const r = await waiting;
    assert.equal(r.kind, 'time-exceeded');
    assert.equal(r.from, RELAY4);
    assert.equal(prober.inFlight, 0);
  } finally {
    close();
  }
});

test('probe: close ends waiting probes as timeouts and clears the tap', async () => {
  const { prober, a, close } = await setup();
  try {
    const w = prober.probe(LOST4, { timeoutMs: 10_000 });
    prober.close();
    assert.equal((await w).kind, 'timeout');
    assert.equal((await prober.probe(B4)).kind, 'no-route');
    assert.equal((a as unknown as { inboundTap: unknown }).inboundTap, null);
  } finally {
    close();
  }
});
