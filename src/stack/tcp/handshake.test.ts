// Opening connections: options negotiation, refusals (RST, ICMP), SYN retries, backlog and
// connection limits.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TcpFlag } from '../../wire/tcp.js';
import { makePair, recordSegments, establish, inject } from './test-pair.js';
import { runUntil, runFor } from './sim-link.js';
import type { TcpSocket } from './socket.js';
import type { TcpSocketError } from './errors.js';
import { TcpState } from './constants.js';

function connectTo(p: ReturnType<typeof makePair>, port: number): TcpSocket {
  return p.client.connect({ family: p.family, localAddr: p.clientAddr, remoteAddr: p.serverAddr, remotePort: port });
}

function errorOf(s: TcpSocket): { err: TcpSocketError | null } {
  const box: { err: TcpSocketError | null } = { err: null };
  s.on('error', (e: TcpSocketError) => { box.err = e; });
  return box;
}

test('SYN and SYN-ACK carry MSS, window scale, SACK-permitted and timestamps; data segments use them', async () => {
  const p = makePair({ cond: { mtu: 1400 }, serverLimits: { receiveBufferSize: 65536 } });
  const seen = recordSegments(p);
  const { client, server } = await establish(p);
  const syn = seen.find((s) => s.flags === TcpFlag.Syn)!;
  const synAck = seen.find((s) => s.flags === (TcpFlag.Syn | TcpFlag.Ack))!;
  assert.equal(syn.mss, 1400 - 40);
  assert.equal(syn.windowScale, 5); // 1 MiB default buffer: 2^20 >> 5 fits 16 bits
  assert.ok(syn.sackPermitted && syn.timestamps);
  assert.equal(synAck.mss, 1400 - 40);
  assert.equal(synAck.windowScale, 1); // 64 KiB buffer
  assert.ok(synAck.sackPermitted && synAck.timestamps);
  assert.equal(synAck.ack, (syn.seq + 1) >>> 0);
  // Full-sized data segments: MSS minus the 12 bytes of timestamps.
  client.write(Buffer.alloc(10_000, 1));
  await runFor(p.link, 500);
  const data = seen.filter((s) => s.from === 0 && s.len > 0);
  assert.ok(data.length >= 7);
  assert.equal(Math.max(...data.map((s) => s.len)), 1360 - 12);
  assert.ok(data.every((s) => s.timestamps));
  // The server's window is scaled by 2 (shift 1): 64 KiB advertised as ~32768.
  const serverAcks = seen.filter((s) => s.from === 1 && !(s.flags & TcpFlag.Syn));
  assert.ok(serverAcks.every((s) => s.window <= 32768));
  assert.equal(server.remoteAddress, '100.64.0.1');
  assert.equal(server.localPort, 80);
  assert.equal(client.remotePort, 80);
});

test('options are not used when the peer does not offer them', async () => {
  const p = makePair({ serverLimits: { sack: false, timestamps: false, windowScaling: false } });
  const seen = recordSegments(p);
  const { client } = await establish(p);
  const synAck = seen.find((s) => s.flags === (TcpFlag.Syn | TcpFlag.Ack))!;
  assert.equal(synAck.windowScale, null);
  assert.equal(synAck.sackPermitted, false);
  assert.equal(synAck.timestamps, false);
  client.write(Buffer.alloc(5000, 2));
  await runFor(p.link, 500);
  const data = seen.filter((s) => s.from === 0 && s.len > 0);
  assert.ok(data.length > 0 && data.every((s) => !s.timestamps));
  assert.equal(Math.max(...data.map((s) => s.len)), 1460);
  // Without window scaling our 1 MiB buffer is offered as at most 65535.
  assert.ok(seen.filter((s) => s.from === 0).every((s) => s.window <= 65535));
});

test('IPv6: MSS is the MTU minus 60', async () => {
  const p = makePair({ family: 6, cond: { mtu: 1500 } });
  const seen = recordSegments(p);
  const { client, server } = await establish(p);
  assert.equal(seen[0]!.mss, 1440);
  assert.equal(server.remoteAddress, 'fd00::1');
  assert.equal(client.remoteFamily, 'IPv6');
});

test('connecting to a closed port: RST with the right numbers, ECONNREFUSED', async () => {
  const p = makePair();
  const seen = recordSegments(p);
  const s = connectTo(p, 81);
  const e = errorOf(s);
  let closed = false;
  s.on('close', () => { closed = true; });
  assert.ok(await runUntil(p.link, () => closed, 5000));
  assert.equal(e.err?.code, 'ECONNREFUSED');
  const syn = seen[0]!;
  const rst = seen.find((x) => x.from === 1)!;
  assert.equal(rst.flags, TcpFlag.Rst | TcpFlag.Ack);
  assert.equal(rst.seq, 0);
  assert.equal(rst.ack, (syn.seq + 1) >>> 0);
  assert.equal(p.server.counters.noConnection, 1);
  assert.equal(p.client.counters.connectionsRefused, 1);
  assert.equal(p.client.connectionCount, 0);
});

test('an ACK to a closed port gets <SEQ=SEG.ACK><CTL=RST>; a RST gets nothing', async () => {
  const p = makePair();
  const seen = recordSegments(p);
  inject(p, 0, { srcPort: 1234, dstPort: 99, seq: 1000, ack: 5555, flags: TcpFlag.Ack });
  inject(p, 0, { srcPort: 1234, dstPort: 99, seq: 1000, ack: 5555, flags: TcpFlag.Rst });
  assert.equal(seen.length, 1);
  assert.equal(seen[0]!.flags, TcpFlag.Rst);
  assert.equal(seen[0]!.seq, 5555);
  assert.equal(p.server.counters.noConnection, 2);
});

test('ICMP port unreachable during SYN_SENT fails the connect at once', async () => {
  const p = makePair();
  p.link.blackhole[0] = true; // the SYN goes nowhere
  const s = connectTo(p, 80);
  const e = errorOf(s);
  await runFor(p.link, 10);
  p.client.icmpError({
    family: 4, kind: 'port-unreachable', mtu: 0, localAddr: p.clientAddr, remoteAddr: p.serverAddr,
    localPort: s.localPort, remotePort: 80,
  });
  await runFor(p.link, 1);
  assert.equal(e.err?.code, 'ECONNREFUSED');
  assert.equal(p.client.connectionCount, 0);
});

test('unanswered SYNs: retries with backoff, then ETIMEDOUT', async () => {
  const p = makePair({ clientLimits: { synRetries: 3, initialRtoMs: 1000 } });
  const seen = recordSegments(p);
  p.link.blackhole[0] = true;
  const s = connectTo(p, 80);
  const e = errorOf(s);
  assert.ok(await runUntil(p.link, () => e.err !== null, 60_000));
  assert.equal(e.err?.code, 'ETIMEDOUT');
  const times = seen.map((x) => x.at);
  assert.deepEqual(times, [0, 1000, 3000, 7000]);
  assert.ok(p.clock.now() >= 15_000);
});

test('listen backlog: SYNs beyond the half-open limit are dropped and counted', async () => {
  const p = makePair();
  // Drop the clients' handshake-completing ACKs so server connections stay half-open.
  p.link.tap = (from, _f, bytes) => (from === 0 && (bytes[13]! & TcpFlag.Syn) === 0 ? 'drop' : 'pass');
  const l = p.server.listen(4, null, 80, { backlog: 2 });
  const sockets = [1, 2, 3, 4, 5].map(() => connectTo(p, 80));
  for (const s of sockets) s.on('error', () => {});
  await runFor(p.link, 100);
  assert.equal(l.halfOpen, 2);
  assert.equal(p.server.connectionCount, 2);
  assert.equal(p.server.counters.listenOverflow, 3);
  l.close();
});

test('maxConnections: connect fails with EMFILE, SYNs beyond it are dropped', async () => {
  const p = makePair({ clientLimits: { maxConnections: 2 }, serverLimits: { maxConnections: 1 } });
  p.server.listen(4, null, 80);
  const a = connectTo(p, 80);
  const b = connectTo(p, 80);
  const c = connectTo(p, 80);
  const ec = errorOf(c);
  b.on('error', () => {});
  await runFor(p.link, 50);
  assert.equal(ec.err?.code, 'EMFILE');
  assert.equal(p.client.counters.connectionLimit, 1);
  assert.equal(p.server.connectionCount, 1);
  assert.ok(p.server.counters.connectionLimit >= 1);
  assert.equal(a.tcpState === TcpState.Established || b.tcpState === TcpState.Established, true);
});

test('listen and connect reject bad arguments with UserError', () => {
  const p = makePair();
  p.server.listen(4, null, 80);
  assert.throws(() => p.server.listen(4, null, 80), /already being listened on/);
  assert.throws(() => p.server.listen(4, null, 70000), /invalid TCP listen port/);
  assert.throws(() => p.client.connect({ family: 4, localAddr: p.clientAddr, remoteAddr: p.serverAddr, remotePort: 0 }), /invalid TCP remote port/);
  assert.throws(() => p.client.connect({ family: 6, localAddr: p.clientAddr, remoteAddr: p.serverAddr, remotePort: 1 }), /invalid TCP local address for IPv6/);
  assert.throws(() => makePair({ clientLimits: { receiveBufferSize: 10 } }), /receiveBufferSize/);
});

test('a retransmitted SYN in SYN_RECEIVED gets the SYN-ACK again; the handshake completes', async () => {
  const p = makePair();
  let dropped = 0;
  p.link.tap = (from, _f, bytes) => {
    const synAck = from === 1 && (bytes[13]! & (TcpFlag.Syn | TcpFlag.Ack)) === (TcpFlag.Syn | TcpFlag.Ack);
    if (synAck && dropped === 0) { dropped++; return 'drop'; }
    return 'pass';
  };
  const { client } = await establish(p);
  assert.equal(client.tcpState, TcpState.Established);
  assert.ok(p.client.counters.synRetransmits >= 1);
});
