import { test } from 'node:test';
import assert from 'node:assert/strict';
import { bytesPerCall } from '../util/alloc-probe.js';
import { IndexTable, cryptoRandomUint32, type RandomUint32 } from './index-table.js';
import { Prng, fuzzIterations } from '../wire/fuzz-harness.js';

/** A random source that plays back `values`, then fails the test if asked for more. */
function scripted(values: number[]): RandomUint32 {
  let i = 0;
  return () => {
    assert.ok(i < values.length, 'random source asked for more values than scripted');
    return values[i++]!;
  };
}

test('index-table: new indices are unique, non-zero and look up their owner', () => {
  const t = new IndexTable<{ n: number }>();
  const owners = new Map<number, { n: number }>();
  for (let n = 0; n < 20_000; n++) {
    const o = { n };
    const idx = t.newIndex(o);
    assert.ok(Number.isInteger(idx) && idx > 0 && idx <= 0xffffffff, `index ${idx}`);
    assert.ok(!owners.has(idx), `duplicate index ${idx}`);
    owners.set(idx, o);
  }
  assert.equal(t.size, 20_000);
  for (const [idx, o] of owners) assert.equal(t.lookup(idx), o);
  // Random indices cover the whole 32-bit space.
  const high = [...owners.keys()].filter((i) => i >= 0x80000000).length;
  assert.ok(high > 9000 && high < 11000, `${high} of 20000 indices in the upper half`);
});

test('index-table: lookups of unknown or impossible indices give undefined', () => {
  const t = new IndexTable<string>(scripted([42]));
  t.newIndex('x');
  for (const bad of [0, 1, 43, -42, 42.5, 42 + 2 ** 32, NaN, 0xffffffff]) assert.equal(t.lookup(bad), undefined, String(bad));
  assert.equal(t.lookup(42), 'x');
  assert.equal(t.has(42), true);
  assert.equal(t.has(0), false);
});

test('index-table: zero and live indices are skipped when drawing', () => {
  const t = new IndexTable<string>(scripted([0, 5, 5, 0, 7, 0xffffffff]));
  assert.equal(t.newIndex('a'), 5);
  assert.equal(t.newIndex('b'), 7);
  assert.equal(t.newIndex('c'), 0xffffffff);
  assert.equal(t.lookup(0xffffffff), 'c');
});

test('index-table: a broken random source ends in a clear error, not a hang', () => {
  const t = new IndexTable<string>(() => 9);
  t.newIndex('a');
  assert.throws(() => t.newIndex('b'), /no free index after 1000 random draws/);
  assert.equal(t.size, 1);
});

test('index-table: replace hands an index from handshake to keypair; remove can be guarded', () => {
  const t = new IndexTable<string>(scripted([11, 12]));
  const idx = t.newIndex('handshake');
  assert.equal(t.replace(idx, 'keypair'), true);
  assert.equal(t.lookup(idx), 'keypair');
  assert.equal(t.replace(99, 'nobody'), false);
  assert.equal(t.lookup(99), undefined);
  assert.equal(t.remove(idx, 'handshake'), false, 'a stale owner cannot free it');
  assert.equal(t.lookup(idx), 'keypair');
  assert.equal(t.remove(idx, 'keypair'), true);
  assert.equal(t.remove(idx), false, 'already free');
  assert.equal(t.lookup(idx), undefined);
  const other = t.newIndex('second');
  assert.equal(t.remove(other), true, 'unguarded remove');
  assert.equal(t.size, 0);
});

test('index-table: clear frees everything', () => {
  const t = new IndexTable<number>();
  const idx = Array.from({ length: 500 }, (_, i) => t.newIndex(i));
  t.clear();
  assert.equal(t.size, 0);
  for (const i of idx) assert.equal(t.lookup(i), undefined);
  const again = t.newIndex(1);
  assert.equal(t.lookup(again), 1);
});

test('index-table: cryptoRandomUint32 gives varied 32-bit values across pool refills', () => {
  const r = cryptoRandomUint32();
  const seen = new Set<number>();
  for (let i = 0; i < 1000; i++) {
    const v = r();
    assert.ok(Number.isInteger(v) && v >= 0 && v <= 0xffffffff);
    seen.add(v);
  }
  assert.ok(seen.size > 990);
});

// Small index ranges force long probe runs, wrap-around at the end of the key array and shifts
// on delete; the model is a plain Map.
test('index-table: property: random operations agree with a Map model', () => {
  const rounds = fuzzIterations(30);
  for (let round = 0; round < rounds; round++) {
    const rng = new Prng(0x1d3 + round);
    const range = [70, 200, 1000, 2 ** 32][round % 4]!;
    // Values that share low bits (same home slot) and values near the top of the array.
    const draw = () => {
      const mode = rng.int(4);
      if (mode === 0) return (rng.int(8) * 64 + 63) >>> 0;
      if (mode === 1) return (rng.int(16) * 128) >>> 0;
      return Math.floor(rng.next() * range) >>> 0;
    };
    const t = new IndexTable<number>(draw);
    const model = new Map<number, number>();
    for (let step = 0; step < 2000; step++) {
      const op = rng.int(10);
      const live = [...model.keys()];
      const pick = () => (live.length && rng.int(4) !== 0 ? live[rng.int(live.length)]! : draw());
      if (op < 4 && model.size < 150) {
        let idx: number;
        try { idx = t.newIndex(step); } catch { continue; } // a tiny range can run dry
        assert.ok(idx !== 0 && !model.has(idx), `round ${round} step ${step}: fresh index`);
        model.set(idx, step);
      } else if (op < 7) {
        const idx = pick();
        const guard = rng.int(3) === 0 ? model.get(idx) ?? -1 : undefined;
        const want = model.has(idx) && (guard === undefined || model.get(idx) === guard);
        assert.equal(t.remove(idx, guard), want, `round ${round} step ${step}: remove ${idx}`);
        if (want) model.delete(idx);
      } else if (op < 8) {
        const idx = pick();
        assert.equal(t.replace(idx, -step), model.has(idx));
        if (model.has(idx)) model.set(idx, -step);
      } else {
        const idx = pick();
        assert.equal(t.lookup(idx), model.get(idx), `round ${round} step ${step}: lookup ${idx}`);
      }
      assert.equal(t.size, model.size);
      if (step % 50 === 0) for (const [k, v] of model) assert.equal(t.lookup(k), v, `round ${round} step ${step}: all live`);
    }
  }
});

test('index-table: lookups allocate nothing once warm', () => {
  const t = new IndexTable<object>();
  const probes = new Uint32Array(1024);
  for (let i = 0; i < 512; i++) probes[i] = t.newIndex({ i });
  const rng = new Prng(5);
  for (let i = 512; i < 1024; i++) probes[i] = Math.floor(rng.next() * 2 ** 32); // mostly misses
  const run = (n: number) => { let hits = 0; for (let i = 0; i < n; i++) if (t.lookup(probes[i & 1023]!) !== undefined) hits++; return hits; };
  run(300_000); // warm up
  assert.ok(run(1_000_000) >= 500_000);
  const perCall = bytesPerCall(run, 1_000_000);
  assert.ok(perCall < 0.05, `lookup allocates ${perCall.toFixed(3)} bytes per call`);
});
