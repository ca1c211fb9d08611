// Established connections: RFC 5961 challenge ACKs, zero window and persist probes, keepalive,
// retransmission backoff, PMTU from ICMP, SACK-driven retransmission, delayed ACKs, TIME_WAIT.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TcpFlag } from '../../wire/tcp.js';
import { makePair, recordSegments, establish, inject, type SeenSegment } from './test-pair.js';
import { runUntil, runFor } from './sim-link.js';
import type { TcpSocketError } from './errors.js';
import { TcpState } from './constants.js';
import type { TcpConnection } from './connection.js';

function last(seen: SeenSegment[], from: number): SeenSegment {
  for (let i = seen.length - 1; i >= 0; i--) if (seen[i]!.from === from) return seen[i]!;
  throw new Error('no segment');
}

test('RST and SYN in window but not at RCV.NXT get a challenge ACK; RST at RCV.NXT resets', async () => {
  const p = makePair();
  const seen = recordSegments(p);
  const { client, server } = await establish(p);
  let serverErr: TcpSocketError | null = null;
  server.on('error', (e: TcpSocketError) => { serverErr = e; });
  const c = last(seen, 0);
  const ports = { srcPort: client.localPort, dstPort: 80 };
  const before = seen.length;
  inject(p, 0, { ...ports, seq: c.seq + 100, ack: c.ack, flags: TcpFlag.Rst });
  assert.equal(seen.length, before + 1);
  const challenge = seen[before]!;
  assert.equal(challenge.from, 1);
  assert.equal(challenge.flags, TcpFlag.Ack);
  assert.equal(challenge.ack, c.seq);
  inject(p, 0, { ...ports, seq: c.seq + 5, ack: 0, flags: TcpFlag.Syn });
  assert.equal(seen.length, before + 2);
  assert.equal(p.server.counters.challengeAcks, 2);
  // Far outside the window: dropped silently.
  inject(p, 0, { ...ports, seq: c.seq + 50_000_000, ack: c.ack, flags: TcpFlag.Rst });
  assert.equal(seen.length, before + 2);
  assert.equal(p.server.counters.rstOutOfWindow, 1);
  await runFor(p.link, 10);
  assert.equal(server.tcpState, TcpState.Established);
  assert.equal(serverErr, null);
  inject(p, 0, { ...ports, seq: c.seq, ack: c.ack, flags: TcpFlag.Rst });
  await runFor(p.link, 10);
  assert.equal((serverErr as TcpSocketError | null)?.code, 'ECONNRESET');
  assert.equal(p.server.connectionCount, 0);
});

test('challenge ACKs are rate limited', async () => {
  const p = makePair({ serverLimits: { challengeAcksPerSecond: 3 } });
  const seen = recordSegments(p);
  const { client } = await establish(p);
  const c = last(seen, 0);
  for (let i = 0; i < 10; i++) inject(p, 0, { srcPort: client.localPort, dstPort: 80, seq: c.seq + 1 + i, ack: c.ack, flags: TcpFlag.Rst });
  assert.equal(p.server.counters.challengeAcks, 3);
  assert.equal(p.server.counters.challengeAcksSuppressed, 7);
});

test('a reader that stops reading closes the window; persist probes back off; nothing is lost', async () => {
  const p = makePair({ serverLimits: { receiveBufferSize: 4096 } });
  const seen = recordSegments(p);
  const { client, server } = await establish(p);
  server.pause();
  const data = Buffer.alloc(50_000);
  for (let i = 0; i < data.length; i++) data[i] = (i * 7 + 3) & 255;
  client.write(data);
  await runFor(p.link, 20_000);
  // The server holds at most its buffer and advertised a zero window.
  assert.ok(server.readableLength + 0 <= 4096);
  assert.ok(seen.some((s) => s.from === 1 && s.window === 0 && (s.flags & TcpFlag.Syn) === 0));
  const probes = seen.filter((s) => s.from === 0 && s.len === 1);
  assert.ok(p.client.counters.windowProbes >= 3, `probes ${p.client.counters.windowProbes}`);
  const gaps = probes.slice(1).map((s, i) => s.at - probes[i]!.at);
  for (let i = 1; i < gaps.length; i++) assert.ok(gaps[i]! >= gaps[i - 1]! * 1.9, `probe gaps ${gaps.join(',')}`);
  assert.equal(client.tcpState, TcpState.Established);
  // Reading again opens the window and everything arrives.
  const got: Buffer[] = [];
  server.on('data', (d: Buffer) => got.push(d));
  server.resume();
  assert.ok(await runUntil(p.link, () => Buffer.concat(got).length === data.length, 120_000));
  assert.ok(Buffer.concat(got).equals(data));
});

test('keepalive: probes answered keep the connection; unanswered ones end it with ETIMEDOUT', async () => {
  const p = makePair({ clientLimits: { keepaliveIntervalMs: 1000, keepaliveProbes: 3 } });
  const { client } = await establish(p);
  let err: TcpSocketError | null = null;
  client.on('error', (e: TcpSocketError) => { err = e; });
  client.setKeepAlive(true, 5000);
  await runFor(p.link, 12_000);
  assert.ok(p.client.counters.keepaliveProbes >= 2);
  assert.equal(err, null);
  const probesBefore = p.client.counters.keepaliveProbes;
  p.link.blackhole[1] = true;
  const t0 = p.clock.now();
  assert.ok(await runUntil(p.link, () => err !== null, 60_000));
  assert.equal((err as TcpSocketError | null)?.code, 'ETIMEDOUT');
  assert.equal(p.client.counters.keepaliveProbes - probesBefore, 3);
  assert.ok(p.clock.now() - t0 <= 5000 + 4 * 1000 + 1);
  assert.equal(p.client.counters.connectionsTimedOut, 1);
});

test('retransmission timeout doubles each time; maxRetransmits ends with ETIMEDOUT', async () => {
  const p = makePair({ clientLimits: { maxRetransmits: 4 } });
  const seen = recordSegments(p);
  const { client } = await establish(p);
  let err: TcpSocketError | null = null;
  client.on('error', (e: TcpSocketError) => { err = e; });
  p.link.blackhole[1] = true;
  client.write(Buffer.alloc(1000, 9));
  assert.ok(await runUntil(p.link, () => err !== null, 120_000));
  assert.equal((err as TcpSocketError | null)?.code, 'ETIMEDOUT');
  const sends = seen.filter((s) => s.from === 0 && s.len === 1000).map((s) => s.at);
  assert.equal(sends.length, 5);
  const gaps = sends.slice(1).map((t, i) => Math.round(t - sends[i]!));
  assert.deepEqual(gaps, [200, 400, 800, 1600]);
  assert.equal(p.client.counters.retransmitTimeouts, 5);
  // The peer was told.
  assert.equal(seen[seen.length - 1]!.flags & TcpFlag.Rst, TcpFlag.Rst);
});

test('ICMP packet too big lowers the MSS and resends what is in flight in smaller segments', async () => {
  const p = makePair({ cond: { mtu: 1500, delayMs: 50 } });
  const seen = recordSegments(p);
  const { client, server } = await establish(p);
  const got: Buffer[] = [];
  server.on('data', (d: Buffer) => got.push(d));
  const data = Buffer.alloc(30_000, 7);
  client.write(data);
  await runFor(p.link, 5);
  const mark = seen.length;
  p.client.icmpError({
    family: 4, kind: 'packet-too-big', mtu: 1280, localAddr: p.clientAddr, remoteAddr: p.serverAddr,
    localPort: client.localPort, remotePort: 80,
  });
  // A larger MTU than the current one is ignored.
  p.client.icmpError({
    family: 4, kind: 'packet-too-big', mtu: 9000, localAddr: p.clientAddr, remoteAddr: p.serverAddr,
    localPort: client.localPort, remotePort: 80,
  });
  assert.equal(p.client.counters.pmtuDecreases, 1);
  const after = seen.slice(mark).filter((s) => s.from === 0 && s.len > 0);
  assert.ok(after.length > 0, 'in-flight data resent at once');
  assert.ok(after.every((s) => s.len <= 1280 - 40 - 12));
  assert.ok(await runUntil(p.link, () => Buffer.concat(got).length === data.length, 30_000));
  assert.ok(seen.slice(mark).filter((s) => s.from === 0).every((s) => s.len <= 1228));
});

test('SACK: one lost segment is resent alone, by fast retransmit, without a timeout', async () => {
  for (const sack of [true, false]) {
    const p = makePair({ cond: { delayMs: 10 }, clientLimits: { sack }, serverLimits: { sack } });
    const seen = recordSegments(p);
    const { client, server } = await establish(p);
    let dataSegments = 0;
    const prevTap = p.link.tap!;
    p.link.tap = (from, family, bytes) => {
      const verdict = prevTap(from, family, bytes);
      const hl = (bytes[12]! >> 4) * 4;
      if (from === 0 && bytes.length > hl && ++dataSegments === 3) return 'drop';
      return verdict;
    };
    const got: Buffer[] = [];
    server.on('data', (d: Buffer) => got.push(d));
    const data = Buffer.alloc(40 * 1448);
    for (let i = 0; i < data.length; i++) data[i] = i & 255;
    client.write(data);
    assert.ok(await runUntil(p.link, () => Buffer.concat(got).length === data.length, 30_000));
    assert.ok(Buffer.concat(got).equals(data));
    assert.equal(p.client.counters.fastRetransmits, 1, `sack ${sack}`);
    assert.equal(p.client.counters.retransmitTimeouts, 0, `sack ${sack}`);
    assert.equal(p.client.counters.retransmittedSegments, 1, `sack ${sack}`);
    const sackBlocks = seen.filter((s) => s.from === 1 && s.sackBlocks.length > 0);
    assert.equal(sackBlocks.length > 0, sack);
  }
});

test('delayed ACK: a lone small segment is ACKed after 40 ms, every second full segment at once', async () => {
  const p = makePair({ cond: { delayMs: 1 } });
  const seen = recordSegments(p);
  const { client } = await establish(p);
  // The first data opens the window past the SYN's 64 KiB, which is ACKed at once; then steady state.
  client.write(Buffer.alloc(100, 1));
  await runFor(p.link, 1000);
  const mark = seen.length;
  client.write(Buffer.alloc(100, 1));
  await runFor(p.link, 200);
  const small = seen.slice(mark);
  const sent = small.find((s) => s.from === 0 && s.len === 100)!;
  const ack = small.find((s) => s.from === 1 && s.ack === (sent.seq + 100) >>> 0)!;
  assert.equal(Math.round(ack.at - sent.at), 1 + 40);
  const mark2 = seen.length;
  client.write(Buffer.alloc(2 * 1448, 2));
  await runFor(p.link, 200);
  const full = seen.slice(mark2);
  const second = full.filter((s) => s.from === 0 && s.len === 1448)[1]!;
  const ack2 = full.find((s) => s.from === 1 && s.ack === (second.seq + 1448) >>> 0)!;
  assert.equal(Math.round(ack2.at - second.at), 1);
});

test('the active closer stays in TIME_WAIT for timeWaitMs and ACKs a retransmitted FIN there', async () => {
  const p = makePair({ clientLimits: { timeWaitMs: 2000 } });
  const seen = recordSegments(p);
  const { client, server } = await establish(p);
  server.on('end', () => server.end());
  server.resume();
  client.resume();
  client.end();
  assert.ok(await runUntil(p.link, () => p.server.connectionCount === 0, 5000));
  assert.equal(client.tcpState, TcpState.TimeWait);
  const t0 = p.clock.now();
  const fin = seen.filter((s) => s.from === 1 && (s.flags & TcpFlag.Fin) !== 0).pop()!;
  const mark = seen.length;
  inject(p, 1, { srcPort: 80, dstPort: client.localPort, seq: fin.seq, ack: fin.ack, flags: TcpFlag.Fin | TcpFlag.Ack });
  assert.equal(seen.length, mark + 1);
  assert.equal(seen[mark]!.ack, (fin.seq + 1) >>> 0);
  assert.ok(await runUntil(p.link, () => p.client.connectionCount === 0, 10_000));
  assert.ok(p.clock.now() - t0 >= 2000);
  assert.equal(client.tcpState, TcpState.Closed);
});

test('out-of-order data is bounded by maxOutOfOrderBytes and still all arrives', async () => {
  const p = makePair({ cond: { delayMs: 5 }, serverLimits: { maxOutOfOrderBytes: 3000, maxOutOfOrderRanges: 2 } });
  const { client, server } = await establish(p);
  let n = 0;
  let maxOoo = 0;
  const conn = (server as unknown as { conn: TcpConnection }).conn;
  p.link.tap = (from, _f, bytes) => {
    maxOoo = Math.max(maxOoo, conn.ooo.bytes);
    return from === 0 && bytes.length > 32 + 20 && ++n === 2 ? 'drop' : 'pass';
  };
  const got: Buffer[] = [];
  server.on('data', (d: Buffer) => got.push(d));
  const data = Buffer.alloc(100_000);
  for (let i = 0; i < data.length; i++) data[i] = (i * 13) & 255;
  client.write(data);
  assert.ok(await runUntil(p.link, () => Buffer.concat(got).length === data.length, 60_000));
  assert.ok(Buffer.concat(got).equals(data));
  assert.ok(p.server.counters.outOfOrderDropped > 0);
  assert.ok(maxOoo > 0 && maxOoo <= 3000, `max out-of-order bytes ${maxOoo}`);
});

test('reordering: a needless fast retransmit is detected by timestamps (RFC 3522) and undone', async () => {
  const p = makePair({ cond: { delayMs: 10 } });
  const { client, server } = await establish(p);
  // Hold the 3rd data segment back by 15 ms: the peer gets it after the later ones (whose
  // duplicate ACKs trigger fast retransmit) but before the retransmission.
  let dataSegments = 0;
  p.link.tap = (from, _f, bytes) => {
    const hl = (bytes[12]! >> 4) * 4;
    if (from === 0 && bytes.length > hl && ++dataSegments === 3) {
      const late = Buffer.from(bytes);
      p.clock.setTimer(() => p.server.input(4, p.clientAddr, p.serverAddr, late, 0, late.length), 15);
      return 'drop';
    }
    return 'pass';
  };
  const conn = (client as unknown as { conn: TcpConnection }).conn;
  const got: Buffer[] = [];
  server.on('data', (d: Buffer) => got.push(d));
  const data = Buffer.alloc(30 * 1448, 5);
  client.write(data);
  assert.ok(await runUntil(p.link, () => Buffer.concat(got).length === data.length, 30_000));
  assert.equal(p.client.counters.fastRetransmits, 1);
  assert.equal(p.client.counters.spuriousRetransmits, 1);
  assert.equal(conn.dupThresh, 4);
  assert.ok(conn.cc.ssthresh > 1e9, 'the congestion response was undone');
});
