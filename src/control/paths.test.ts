// PathTable: relays are picked only for pairs reported failed and never direct, along the
// shortest chain of direct links (first hop named), deterministically; chains longer than one
// relay; no path means no via; reports that change nothing say so; removed nodes are forgotten.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PathTable } from './paths.js';

const ALL = ['a', 'b', 'c', 'd', 'coord'];

test('paths: a node behind b is reached via b by everyone who failed to reach it', () => {
  const t = new PathTable();
  assert.equal(t.report('b', { a: 'direct', c: 'direct', d: 'direct', coord: 'direct' }), true);
  assert.equal(t.report('a', { b: 'direct', c: 'direct', coord: 'direct', d: 'failed' }), true);
  t.report('d', { b: 'direct', a: 'failed', c: 'failed', coord: 'failed' });
  assert.deepEqual([...t.viasFor('a', ALL)], [['d', 'b']]);
  assert.deepEqual([...t.viasFor('d', ALL)].sort(), [['a', 'b'], ['c', 'b'], ['coord', 'b']]);
  // c never reported d, but d reported c failed: c relays through b too.
  assert.deepEqual([...t.viasFor('c', ALL)], [['d', 'b']]);
  assert.deepEqual([...t.viasFor('b', ALL)], []);
  // The same report again changes nothing.
  assert.equal(t.report('a', { b: 'direct', c: 'direct', coord: 'direct', d: 'failed' }), false);
});

test('paths: a direct report from either end wins over a failure; unknown pairs are left alone', () => {
  const t = new PathTable();
  t.report('a', { b: 'failed' });
  t.report('b', { a: 'direct' });
  t.report('c', { a: 'direct', b: 'direct' });
  assert.deepEqual([...t.viasFor('a', ALL)], []);
  t.report('x', { y: 'direct' });
  assert.deepEqual([...t.viasFor('a', ['a', 'b', 'c', 'x'])], []);
});

test('paths: chains of relays name the first hop; no chain, no via', () => {
  const t = new PathTable();
  t.report('a', { b: 'direct', c: 'failed', d: 'failed' });
  t.report('b', { c: 'direct' });
  t.report('c', { d: 'direct' });
  assert.deepEqual([...t.viasFor('a', ALL)].sort(), [['c', 'b'], ['d', 'b']]);
  // b reaches d through c.
  t.report('b', { c: 'direct', d: 'failed' });
  assert.deepEqual([...t.viasFor('b', ALL)], [['d', 'c']]);
  // Cut b-c: nothing reaches c or d from a.
  t.report('b', { c: 'failed' });
  t.report('c', {});
  assert.deepEqual([...t.viasFor('a', ALL)], []);
});

test('paths: ties go the same way every time; a removed node is forgotten', () => {
  const t = new PathTable();
  t.report('a', { b: 'direct', c: 'direct', d: 'failed' });
  t.report('d', { b: 'direct', c: 'direct' });
  assert.deepEqual([...t.viasFor('a', ['d', 'c', 'b', 'a'])], [['d', 'b']]);
  const f = t.fingerprint(['a', 'b', 'c', 'd']);
  assert.equal(t.fingerprint(['d', 'c', 'b', 'a']), f);
  t.forget('b');
  assert.deepEqual([...t.viasFor('a', ['a', 'c', 'd'])], [['d', 'c']]);
  assert.deepEqual(t.reported('b'), {});
});

test('paths: one path per relayed pair, the same for both ends; every relay on it gets the whole path', () => {
  const t = new PathTable();
  t.report('a', { b: 'direct', c: 'failed', d: 'failed' });
  t.report('b', { c: 'direct', d: 'failed' });
  t.report('c', { d: 'direct' });
  const plan = t.plan(ALL);
  assert.deepEqual(plan.paths.map((p) => p.join('>')).sort(), ['a>b>c', 'a>b>c>d', 'b>c>d']);
  // Both ends of a-d use the one path: a's neighbour b, d's neighbour c.
  assert.equal(t.viasFor('a', ALL).get('d'), 'b');
  assert.equal(t.viasFor('d', ALL).get('a'), 'c');
  assert.deepEqual(t.relayPathsFor('b', ALL).map((p) => p.join('>')).sort(), ['a>b>c', 'a>b>c>d']);
  assert.deepEqual(t.relayPathsFor('c', ALL).map((p) => p.join('>')).sort(), ['a>b>c>d', 'b>c>d']);
  assert.deepEqual(t.relayPathsFor('a', ALL), [], 'an end relays nothing');
  assert.deepEqual(t.relayPathsFor('coord', ALL), []);
  // A report that changes the links changes the plan.
  t.report('a', { b: 'direct', c: 'direct', d: 'failed' });
  assert.deepEqual(t.plan(ALL).paths.map((p) => p.join('>')).sort(), ['a>c>d', 'b>c>d']);
});

test('paths: the relay with the lowest RTT wins, relaying nodes first, and is kept unless another is clearly better', () => {
  const t = new PathTable();
  const ids = ['a', 'b', 'coord', 'd', 'r'];
  // a and d reach coord, r and b directly, not each other.
  for (const n of ['a', 'd']) t.report(n, { coord: 'direct', r: 'direct', b: 'direct' });
  t.report('a', { coord: 'direct', r: 'direct', b: 'direct', d: 'failed' });
  // coord and r offer relaying: without RTTs, a relaying node is taken before b (a plain member).
  t.setRelay('coord', true);
  t.setRelay('r', true);
  assert.deepEqual(t.plan(ids).paths, [['a', 'coord', 'd']]);
  // r is closer: 2 + 2 ms against 30 + 30 ms.
  t.reportRtts('a', { coord: 30, r: 2, b: 1 });
  t.reportRtts('d', { coord: 30, r: 2, b: 1 });
  assert.deepEqual(t.plan(ids).paths, [['a', 'r', 'd']]);
  assert.equal(t.viasFor('a', ids).get('d'), 'r');
  assert.deepEqual(t.relayPathsFor('r', ids), [['a', 'r', 'd']]);
  // coord gets a little better (6 ms against 4): not clearly better, r stays.
  t.reportRtts('a', { coord: 3, r: 2 });
  t.reportRtts('d', { coord: 3, r: 2 });
  assert.deepEqual(t.plan(ids).paths, [['a', 'r', 'd']]);
  // r gets slow (80 ms): coord (6 ms) is a third faster and 10+ ms better.
  t.reportRtts('a', { coord: 3, r: 40 });
  t.reportRtts('d', { coord: 3, r: 40 });
  assert.deepEqual(t.plan(ids).paths, [['a', 'coord', 'd']]);
  // d reaches the relaying nodes only over a stream (RTTs reported with the rung's penalty), b over
  // UDP: the plain member wins despite its handicap (UDP relay before HTTPS).
  t.reportRtts('a', { coord: 3, r: 3, b: 1 });
  t.reportRtts('d', { coord: 55, r: 55, b: 1 });
  assert.deepEqual(t.plan(ids).paths, [['a', 'b', 'd']]);
  // The pair becomes direct: no relay, and no memory of the old one.
  t.report('d', { coord: 'direct', r: 'direct', a: 'direct' });
  assert.deepEqual(t.plan(ids).paths, []);
});

test('paths: a snapshot restores the same plan (a restarted coordinator keeps its relays); junk is skipped', () => {
  const ids = ['node_aaaa', 'node_bbbb', 'node_dddd', 'node_rrrr'];
  const [a, b, d, r] = ids as [string, string, string, string];
  const t = new PathTable();
  t.report(a, { [b]: 'direct', [r]: 'direct', [d]: 'failed' });
  t.report(d, { [b]: 'direct', [r]: 'direct' });
  t.setRelay(r, true);
  t.reportRtts(a, { [r]: 3, [b]: 1 });
  const plan = t.plan(ids).paths;
  assert.deepEqual(plan, [[a, r, d]]);
  const copy = new PathTable();
  copy.restore(JSON.parse(JSON.stringify(t.snapshot())));
  assert.deepEqual(copy.plan(ids).paths, plan);
  const junk = new PathTable();
  junk.restore({ reports: { [a]: { [d]: 'maybe', 'x y': 'failed' }, '../x': { [a]: 'direct' } }, rtts: { [a]: { [r]: -5 } }, relays: [3, 'node_zzzz'], chosen: { 'p>q': ['p', 'q'] } });
  assert.deepEqual(junk.snapshot(), { reports: {}, rtts: {}, relays: ['node_zzzz'], chosen: {} });
  junk.restore(null);
  junk.restore('text');
});
