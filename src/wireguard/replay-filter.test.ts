import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ReplayFilter, REPLAY_WINDOW_SIZE, REPLAY_RING_BITS, REJECT_AFTER_MESSAGES_HI, REJECT_AFTER_MESSAGES_LO } from './replay-filter.js';
import { Prng, fuzzIterations } from '../wire/fuzz-harness.js';

// Tests speak in BigInt for readability; the filter itself only ever sees uint32 halves.
const MASK32 = 0xffffffffn;
const REJECT_AFTER = (1n << 64n) - (1n << 13n) - 1n;
const WINDOW = BigInt(REPLAY_WINDOW_SIZE);
const LIM = WINDOW + 1n; // the first distance that falls out of the window

function check(f: ReplayFilter, n: bigint): boolean {
  const wrapped = n & ((1n << 64n) - 1n);
  return f.validate(Number(wrapped & MASK32), Number(wrapped >> 32n));
}

/** Runs (counter, expected) steps and names the first one that disagrees. */
function run(f: ReplayFilter, label: string, steps: readonly (readonly [bigint, boolean])[]): void {
  steps.forEach(([n, want], i) => {
    assert.equal(check(f, n), want, `${label}: step ${i + 1}, counter ${n} should be ${want ? 'accepted' : 'refused'}`);
  });
}

test('replay: constants match WireGuard (2^13-bit ring, 8128 window, 2^64 - 2^13 - 1 limit)', () => {
  assert.equal(REPLAY_RING_BITS, 8192);
  assert.equal(REPLAY_WINDOW_SIZE, 8128);
  assert.equal((BigInt(REJECT_AFTER_MESSAGES_HI) << 32n) | BigInt(REJECT_AFTER_MESSAGES_LO), REJECT_AFTER);
});

// The scenario the Linux kernel self-test and wireguard-go's replay test walk through, step by step.
test('replay: the kernel / wireguard-go scenario sequence', () => {
  const f = new ReplayFilter();
  run(f, 'scenario', [
    [0n, true], [1n, true], [1n, false], // first counters; duplicate
    [9n, true], [8n, true], [7n, true], [7n, false], // out of order within the window
    [LIM, true], [LIM - 1n, true], [LIM - 1n, false], [LIM - 2n, true],
    [2n, true], [2n, false], // exactly WINDOW behind the newest: still accepted once
    [LIM + 16n, true], [3n, false], [LIM + 16n, false], // 3 is now too old
    [LIM * 4n, true], // a big jump clears the ring
    [LIM * 4n - (LIM - 1n), true], [10n, false],
    [LIM * 4n - LIM, false], [LIM * 4n - (LIM + 1n), false], // one and two past the window
    [LIM * 4n - (LIM - 2n), true], [LIM * 4n + 1n - LIM, false],
    [0n, false],
    // The end of the counter space.
    [REJECT_AFTER, false], [REJECT_AFTER - 1n, true], [REJECT_AFTER, false],
    [REJECT_AFTER - 1n, false], [REJECT_AFTER - 2n, true], [REJECT_AFTER + 1n, false],
    [REJECT_AFTER + 2n, false], [REJECT_AFTER - 2n, false], [REJECT_AFTER - 3n, true],
    [0n, false],
  ]);
});

test('replay: bulk runs at the edges of the window', () => {
  const f = new ReplayFilter();
  const up = (a: bigint, b: bigint) => { const s: [bigint, boolean][] = []; for (let c = a; c <= b; c++) s.push([c, true]); return s; };
  const down = (a: bigint, b: bigint) => { const s: [bigint, boolean][] = []; for (let c = a; c >= b; c--) s.push([c, true]); return s; };

  f.reset();
  run(f, 'bulk 1', [...up(1n, WINDOW), [0n, true], [0n, false]]);
  f.reset();
  run(f, 'bulk 2', [...up(2n, WINDOW + 1n), [1n, true], [0n, false]]);
  f.reset();
  run(f, 'bulk 3', down(WINDOW + 1n, 1n));
  f.reset();
  run(f, 'bulk 4', [...down(WINDOW + 2n, 2n), [0n, false]]);
  f.reset();
  run(f, 'bulk 5', [...down(WINDOW, 1n), [WINDOW + 1n, true], [0n, false]]);
  f.reset();
  run(f, 'bulk 6', [...down(WINDOW, 1n), [0n, true], [WINDOW + 1n, true]]);
});

test('replay: counters across the 2^32 boundary of the low half', () => {
  const f = new ReplayFilter();
  const b = 1n << 32n;
  run(f, 'carry', [
    [b - 10n, true], [b + 5n, true], [b - 1n, true], [b, true], [b - 10n, false],
    [b + 5n - WINDOW, true], [b + 4n - WINDOW, false], [b + 5n, false], [b + 4n, true],
  ]);
  assert.equal(f.newest, Number(b + 5n));
});

test('replay: huge jumps forward clear everything behind the new window', () => {
  const f = new ReplayFilter();
  run(f, 'jumps', [
    [5n, true], [1n << 40n, true], [5n, false], [(1n << 40n) - WINDOW, true],
    [(1n << 40n) - WINDOW - 1n, false], [(1n << 40n) - 1n, true],
    [(1n << 63n) + 7n, true], [(1n << 40n), false], [(1n << 63n) + 7n - 100n, true], [(1n << 63n) + 7n - 100n, false],
  ]);
});

test('replay: window wraps the ring many times in order, duplicates always refused', () => {
  const f = new ReplayFilter();
  for (let c = 0; c < REPLAY_RING_BITS * 5 + 123; c++) {
    assert.equal(f.validateNumber(c), true, `first sight of ${c}`);
    if (c % 97 === 0) assert.equal(f.validateNumber(c), false, `duplicate ${c}`);
    if (c > REPLAY_WINDOW_SIZE && c % 89 === 0) {
      assert.equal(f.validateNumber(c - REPLAY_WINDOW_SIZE), false, `old ${c - REPLAY_WINDOW_SIZE} seen before`);
      assert.equal(f.validateNumber(c - REPLAY_WINDOW_SIZE - 1), false, `too old ${c - REPLAY_WINDOW_SIZE - 1}`);
    }
  }
});

test('replay: gaps left behind stay acceptable exactly once until they leave the window', () => {
  const f = new ReplayFilter();
  // Accept only the even counters, moving the window across several ring cycles.
  const top = REPLAY_RING_BITS * 3;
  for (let c = 0; c <= top; c += 2) assert.ok(f.validateNumber(c));
  for (let c = top - 1; c > top - REPLAY_WINDOW_SIZE; c -= 2) {
    assert.equal(f.validateNumber(c), true, `gap ${c}`);
    assert.equal(f.validateNumber(c), false, `gap ${c} again`);
  }
  assert.equal(f.validateNumber(top - REPLAY_WINDOW_SIZE - 1), false);
});

test('replay: validateNumber refuses what is not a counter', () => {
  const f = new ReplayFilter();
  for (const bad of [-1, 1.5, NaN, Infinity, -Infinity]) assert.equal(f.validateNumber(bad), false, String(bad));
  assert.equal(f.validateNumber(2 ** 53 - 1), true);
  assert.equal(f.validateNumber(2 ** 53 - 1), false);
  assert.equal(f.newest, 2 ** 53 - 1);
});

test('replay: reset forgets everything', () => {
  const f = new ReplayFilter();
  assert.ok(f.validateNumber(100_000));
  assert.equal(f.validateNumber(100_000), false);
  f.reset();
  assert.equal(f.newest, 0);
  assert.equal(f.validateNumber(0), true);
  assert.equal(f.validateNumber(100_000), true);
});

/** The naive model: accept a counter below the limit that was never accepted and is no more than
 * WINDOW behind the newest accepted one. */
class SetModel {
  private seen = new Set<bigint>();
  private newest = 0n;
  validate(n: bigint): boolean {
    if (n >= REJECT_AFTER) return false;
    if (n < this.newest && this.newest - n > WINDOW) return false;
    if (this.seen.has(n)) return false;
    this.seen.add(n);
    if (n > this.newest) this.newest = n;
    return true;
  }
}

test('replay: property: random sequences agree with a Set-based model', () => {
  const rounds = fuzzIterations(60);
  for (let round = 0; round < rounds; round++) {
    const rng = new Prng(0xc0ffee + round);
    const f = new ReplayFilter();
    const model = new SetModel();
    const history: bigint[] = [];
    // Some runs start near the 2^32 carry or near the end of the counter space.
    const bases = [0n, (1n << 32n) - 3000n, REJECT_AFTER - 20_000n, 1n << 52n];
    let newest = bases[round % bases.length]!;
    for (let i = 0; i < 3000; i++) {
      let n: bigint;
      const op = rng.int(12);
      if (op < 4) n = newest + BigInt(1 + rng.int(4)); // in order
      else if (op < 6) n = newest - BigInt(rng.int(200)); // slight reordering or duplicates
      else if (op < 7) n = newest - WINDOW + BigInt(rng.int(3)) - 1n; // the window edge
      else if (op < 8) n = newest - BigInt(rng.int(2 * REPLAY_WINDOW_SIZE)); // anywhere behind
      else if (op < 9) n = newest + BigInt(rng.int(3 * REPLAY_RING_BITS)); // jumps across blocks
      else if (op < 10) n = history.length ? history[rng.int(history.length)]! : 0n; // replay of an old one
      else if (op < 11) n = newest + BigInt(64 * (1 + rng.int(130))); // exact block multiples
      else n = rng.int(50) === 0 ? newest + (1n << BigInt(20 + rng.int(40))) : newest + 1n; // rare huge jump
      if (n < 0n) n = 0n;
      if (n > (1n << 64n) - 1n) n = (1n << 64n) - 1n;
      const want = model.validate(n);
      assert.equal(check(f, n), want, `round ${round} step ${i}: counter ${n}`);
      if (want) { history.push(n); if (n > newest) newest = n; }
    }
  }
});
