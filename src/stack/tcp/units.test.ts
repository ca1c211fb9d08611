// The small pieces: sequence arithmetic, range sets, the ring buffer, RTO estimation, NewReno.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Prng } from '../../wire/fuzz-harness.js';
import { seqAdd, seqDiff, seqGt, seqLt, seqLe, seqGe, seqMax, seqMin, seqInRange } from './seq.js';
import { SeqRangeSet } from './range-set.js';
import { RingBuffer } from './ring-buffer.js';
import { RtoEstimator } from './rto.js';
import { NewReno, initialWindow } from './congestion.js';

test('sequence numbers compare modulo 2^32', () => {
  const top = 0xfffffff0;
  const wrapped = seqAdd(top, 0x20);
  assert.equal(wrapped, 0x10);
  assert.ok(seqLt(top, wrapped) && seqGt(wrapped, top));
  assert.ok(seqLe(top, top) && seqGe(top, top));
  assert.equal(seqDiff(wrapped, top), 0x20);
  assert.equal(seqDiff(top, wrapped), -0x20);
  assert.equal(seqMax(top, wrapped), wrapped);
  assert.equal(seqMin(top, wrapped), top);
  assert.ok(seqInRange(0x5, top, wrapped));
  assert.ok(!seqInRange(wrapped, top, wrapped));
  assert.equal(seqAdd(0, -1), 0xffffffff);
});

test('SeqRangeSet merges, trims, respects limits and reports most recent first', () => {
  const s = new SeqRangeSet(3);
  const base = 0xffffff00; // across the wrap
  assert.ok(s.insert(seqAdd(base, 100), seqAdd(base, 200), 1e9));
  assert.ok(s.insert(seqAdd(base, 300), seqAdd(base, 400), 1e9));
  assert.ok(s.insert(seqAdd(base, 200), seqAdd(base, 250), 1e9)); // touches the first
  assert.equal(s.count, 2);
  assert.equal(s.bytes, 250);
  assert.ok(s.insert(seqAdd(base, 500), seqAdd(base, 600), 1e9));
  assert.equal(s.count, 3);
  assert.ok(!s.insert(seqAdd(base, 700), seqAdd(base, 800), 1e9), 'a fourth range does not fit');
  assert.ok(!s.insert(seqAdd(base, 260), seqAdd(base, 290), 1e9), 'nor does a gap filler that stays separate');
  assert.ok(!s.insert(seqAdd(base, 600), seqAdd(base, 700), 400), 'byte limit');
  assert.ok(s.insert(seqAdd(base, 240), seqAdd(base, 520), 1e9), 'merges three into one');
  assert.equal(s.count, 1);
  assert.equal(s.bytes, 500);
  assert.ok(s.contains(seqAdd(base, 300)) && !s.contains(seqAdd(base, 600)));
  s.trimBelow(seqAdd(base, 150));
  assert.equal(s.start[0], seqAdd(base, 150));
  assert.equal(s.bytes, 450);
  assert.equal(s.coveredIn(seqAdd(base, 0), seqAdd(base, 200)), 50);
  const t = new SeqRangeSet(4);
  t.insert(10, 20, 1e9);
  t.insert(30, 40, 1e9);
  t.insert(50, 60, 1e9);
  t.insert(32, 35, 1e9); // touches the middle one: most recent
  const out = new Uint32Array(8);
  assert.equal(t.mostRecent(out, 3), 3);
  assert.deepEqual(Array.from(out.subarray(0, 6)), [30, 40, 50, 60, 10, 20]);
});

test('RingBuffer: random appends, out-of-place writes, reads and consumes across wrap and growth', () => {
  const rng = new Prng(7);
  const ring = new RingBuffer(100_000);
  const src = Buffer.alloc(1_000_000);
  rng.fill(src, 0, src.length);
  let written = 0;
  let read = 0;
  while (read < src.length) {
    const want = Math.min(src.length - written, rng.int(30_000));
    // Sometimes write the tail first (out of order), then extend over it.
    if (want > 10 && rng.next() < 0.3 && ring.length + want <= ring.capacity) {
      const half = want >> 1;
      ring.writeAt(ring.length + half, src, written + half, want - half);
      ring.writeAt(ring.length, src, written, half);
      ring.extend(want);
      written += want;
    } else {
      written += ring.append(src, written, want);
    }
    assert.ok(ring.length <= ring.capacity);
    const take = Math.min(ring.length, rng.int(40_000));
    const out = Buffer.alloc(take);
    ring.copyOut(0, out, 0, take);
    ring.consume(take);
    assert.ok(out.equals(src.subarray(read, read + take)), `mismatch at ${read}`);
    read += take;
  }
});

test('RtoEstimator follows RFC 6298: first sample, smoothing, min/max, backoff', () => {
  const r = new RtoEstimator(1000, 200, 60_000);
  assert.equal(r.rto, 1000);
  r.sample(100); // SRTT 100, RTTVAR 50 -> 100 + 200 = 300
  assert.equal(r.srtt, 100);
  assert.equal(r.rttvar, 50);
  assert.equal(r.rto, 300);
  r.sample(100); // RTTVAR 3/4*50 = 37.5 -> 100 + 150
  assert.equal(r.rto, 250);
  for (let i = 0; i < 50; i++) r.sample(10);
  assert.equal(r.rto, 200, 'minimum');
  r.backoff();
  r.backoff();
  assert.equal(r.rto, 800);
  for (let i = 0; i < 20; i++) r.backoff();
  assert.equal(r.rto, 60_000, 'maximum');
  r.sample(10);
  assert.equal(r.backoffs, 0);
  assert.equal(r.rto, 200);
});

test('NewReno: initial window, slow start, congestion avoidance, recovery, timeout', () => {
  const mss = 1000;
  assert.equal(initialWindow(1460), 14600);
  assert.equal(initialWindow(500), 5000);
  const cc = new NewReno();
  cc.init(mss);
  assert.equal(cc.cwnd, 10_000);
  cc.onAck(1000, mss);
  assert.equal(cc.cwnd, 11_000);
  cc.onAck(10_000, mss); // at most 2 MSS per ACK in slow start
  assert.equal(cc.cwnd, 13_000);
  cc.onEnterRecovery(20_000, mss);
  assert.equal(cc.ssthresh, 10_000);
  assert.equal(cc.cwnd, 10_000);
  cc.onExitRecovery(5_000, mss);
  assert.equal(cc.cwnd, 6_000);
  cc.cwnd = 10_000;
  // Congestion avoidance: +1 MSS per cwnd of acknowledged bytes.
  for (let i = 0; i < 10; i++) cc.onAck(1000, mss);
  assert.equal(cc.cwnd, 11_000);
  cc.onTimeout(30_000, mss, true);
  assert.equal(cc.cwnd, mss);
  assert.equal(cc.ssthresh, 15_000);
  cc.onTimeout(1000, mss, false); // later timeouts keep ssthresh
  assert.equal(cc.ssthresh, 15_000);
});
