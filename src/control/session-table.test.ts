// SessionTable: the oldest session of a full group is evicted (and counted per group), a closed
// connection takes its sessions along; SourceGate: slots per source and in all.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SessionTable, type SessionGroup } from './session-table.js';
import { SourceGate } from './source-gate.js';

test('SessionTable: a full group evicts its oldest session, whatever group filled up', () => {
  const evicted: [string, SessionGroup][] = [];
  const t = new SessionTable<string>({ connection: 2, source: 3, key: 2 }, (s, g) => evicted.push([s, g]));
  t.add('a', 'a', { connection: 'c1', source: 's1', key: 'k1' });
  t.add('b', 'b', { connection: 'c1', source: 's1', key: 'k2' });
  t.add('c', 'c', { connection: 'c1', source: 's1', key: 'k3' }); // c1 holds 3 > 2: a goes
  assert.deepEqual(evicted, [['a', 'connection']]);
  t.add('d', 'd', { connection: 'c2', source: 's1', key: 'k4' });
  t.add('e', 'e', { connection: 'c3', source: 's1', key: 'k5' }); // s1 holds b c d e > 3: b goes
  assert.deepEqual(evicted.at(-1), ['b', 'source']);
  t.add('f', 'f', { connection: 'c4', source: 's2', key: 'k4' });
  t.add('g', 'g', { connection: 'c5', source: 's3', key: 'k4' }); // k4 holds d f g > 2: d goes
  assert.deepEqual(evicted.at(-1), ['d', 'key']);
  assert.deepEqual(t.evicted, { connection: 1, source: 1, key: 1 });
  assert.deepEqual([...t.values()].sort(), ['c', 'e', 'f', 'g']);
  assert.equal(t.get('a'), undefined);
  // A closed connection takes its sessions along (not counted as evictions).
  assert.deepEqual(t.deleteGroup('connection', 'c1'), ['c']);
  assert.equal(t.size, 3);
  assert.deepEqual(t.evicted, { connection: 1, source: 1, key: 1 });
  // The same id again replaces the old entry.
  t.add('e', 'e2', { connection: 'c9', source: 's9', key: 'k9' });
  assert.equal(t.get('e'), 'e2');
  assert.equal(t.size, 3);
});

test('SourceGate: slots per source and in all; released slots can be taken again', () => {
  const g = new SourceGate(2, 3);
  assert.equal(g.acquire('a'), null);
  assert.equal(g.acquire('a'), null);
  assert.equal(g.acquire('a'), 'source');
  assert.equal(g.acquire('b'), null);
  assert.equal(g.acquire('c'), 'total');
  assert.equal(g.size, 3);
  g.release('a');
  assert.equal(g.heldBy('a'), 1);
  assert.equal(g.acquire('c'), null);
  g.release('nobody');
  assert.equal(g.size, 3);
});
