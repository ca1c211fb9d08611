// MemoryBind: datagrams between binds of one MemoryNetwork, asynchronous delivery in rounds,
// loss and reorder hooks, unreachable destinations, port allocation.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Endpoint } from '../wireguard/index.js';
import { MemoryNetwork, memoryBindPair, type MemoryBind } from './index.js';

const tick = () => new Promise((r) => setImmediate(r));

function drainInto(bind: MemoryBind, got: string[], froms: Endpoint[] = []): void {
  const bufs = Array.from({ length: 8 }, () => Buffer.alloc(64));
  const sizes = new Uint32Array(8);
  const eps: (Endpoint | null)[] = new Array(8).fill(null);
  bind.start(() => {
    let n;
    while ((n = bind.receiveBatch(bufs, sizes, eps)) > 0) {
      for (let i = 0; i < n; i++) {
        got.push(bufs[i]!.toString('utf8', 0, sizes[i]!));
        froms.push(eps[i]!);
      }
    }
  });
}

function send(from: MemoryBind, to: Endpoint, ...texts: string[]): number {
  const bufs = texts.map((t) => Buffer.from(`..${t}`));
  return from.sendBatch(bufs, new Uint32Array(texts.length).fill(2), Uint32Array.from(texts, (t) => Buffer.byteLength(t)), texts.length, to);
}

test('memory bind: a pair exchanges batches; the sender is the peer\'s interned endpoint', async () => {
  const [a, b] = memoryBindPair();
  const pa = await a.open(0), pb = await b.open(51820);
  assert.equal(pb, 51820);
  const gotA: string[] = [], gotB: string[] = [], fromB: Endpoint[] = [];
  drainInto(a, gotA);
  drainInto(b, gotB, fromB);
  assert.equal(send(a, b.parseEndpoint(`198.18.0.2:${pb}`)!, 'one', 'two', 'three'), 3);
  assert.equal(gotB.length, 0, 'delivery is asynchronous');
  await tick();
  assert.deepEqual(gotB, ['one', 'two', 'three']);
  assert.equal(fromB[0], a.endpoint);
  assert.equal(fromB[0]!.toString(), `198.18.0.1:${pa}`);
  send(b, fromB[0]!, 'reply');
  await tick();
  assert.deepEqual(gotA, ['reply']);
});

test('memory bind: the filter hook drops, reorder permutes a round, unknown addresses are counted', async () => {
  let n = 0;
  const [a, b, net] = memoryBindPair({
    filter: () => ++n % 2 === 1, // drop every second datagram
    reorder: (round) => round.reverse(),
  });
  await a.open(0);
  const pb = await b.open(0);
  const got: string[] = [];
  drainInto(b, got);
  send(a, b.endpoint!, 'p1', 'p2', 'p3', 'p4');
  send(a, a.parseEndpoint('198.18.0.99:1')!, 'lost');
  net.flush();
  // reversed: lost, p4, p3, p2, p1 -> filter keeps the 1st, 3rd, 5th
  assert.deepEqual(got, ['p3', 'p1']);
  assert.deepEqual(net.stats, { sent: 5, delivered: 2, dropped: 2, unreachable: 1 });
  assert.equal(b.port, pb);
});

test('memory bind: ports are unique per address; a taken port is a user error; IPv6 binds work', async () => {
  const net = new MemoryNetwork();
  const a = net.createBind('fd00::1'), b = net.createBind('fd00::1'), c = net.createBind('fd00::2');
  const p = await a.open(0);
  await assert.rejects(b.open(p), /cannot listen on UDP port \d+: it is already in use/);
  assert.notEqual(await b.open(0), p);
  await c.open(p);
  const got: string[] = [];
  drainInto(c, got);
  send(a, c.endpoint!, 'v6');
  await tick();
  assert.deepEqual(got, ['v6']);
  assert.equal(c.endpoint!.toString(), `[fd00::2]:${p}`);
  a.close();
  send(c, a.parseEndpoint(`[fd00::1]:${p}`)!, 'to a closed bind');
  net.flush();
  assert.equal(net.stats.unreachable, 1);
});
