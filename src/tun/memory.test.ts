// MemoryTun: injected packets are read in batches at an offset, written packets are collected,
// paired devices deliver to each other, limits drop and count, gone notifies once.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryTun } from './index.js';

const tick = () => new Promise((r) => setImmediate(r));

function packet(n: number, len = 40): Buffer {
  const p = Buffer.alloc(len, n);
  p[0] = 0x45;
  return p;
}

test('memory tun: injected packets are read in one batch at the offset, after one readable call', async () => {
  const tun = new MemoryTun('mem0', 1420);
  let calls = 0;
  tun.start(() => { calls++; });
  for (let i = 1; i <= 5; i++) assert.equal(tun.inject(packet(i, 30 + i)), true);
  assert.equal(calls, 0, 'readable is signalled asynchronously');
  await tick();
  assert.equal(calls, 1);
  const bufs = Array.from({ length: 4 }, () => Buffer.alloc(100));
  const sizes = new Uint32Array(4);
  assert.equal(tun.readBatch(bufs, sizes, 16), 4);
  assert.deepEqual([...sizes], [31, 32, 33, 34]);
  assert.deepEqual(bufs[2]!.subarray(16, 16 + 33), packet(3, 33));
  assert.equal(tun.readBatch(bufs, sizes, 16), 1);
  assert.equal(sizes[0], 35);
  assert.equal(tun.readBatch(bufs, sizes, 16), 0);
  assert.equal(tun.stats.read, 5);
});

test('memory tun: writes are copied into `written`, or handed to onWrite; pairs deliver across', async () => {
  const [a, b] = MemoryTun.pair('a', 'b');
  const got: Buffer[] = [];
  b.start(() => {
    const bufs = [Buffer.alloc(64), Buffer.alloc(64)];
    const sizes = new Uint32Array(2);
    let n;
    while ((n = b.readBatch(bufs, sizes, 0)) > 0) for (let i = 0; i < n; i++) got.push(Buffer.from(bufs[i]!.subarray(0, sizes[i]!)));
  });
  const src = Buffer.alloc(200);
  packet(7, 20).copy(src, 10);
  packet(8, 24).copy(src, 100);
  assert.equal(a.writeBatch([src, src], Uint32Array.of(10, 100), Uint32Array.of(20, 24), 2), 2);
  src.fill(0); // the device must have copied
  await tick();
  assert.deepEqual(got, [packet(7, 20), packet(8, 24)]);

  const solo = new MemoryTun();
  solo.writeBatch([packet(9)], Uint32Array.of(0), Uint32Array.of(40), 1);
  assert.deepEqual(solo.takeWritten(), [packet(9)]);
  assert.equal(solo.written.length, 0);
});

test('memory tun: a full queue, an oversized packet and a closed device drop and count', () => {
  const tun = new MemoryTun('m', 1420, 2);
  assert.equal(tun.inject(packet(1)), true);
  assert.equal(tun.inject(packet(2, 500)), true);
  assert.equal(tun.inject(packet(3)), false);
  const sizes = new Uint32Array(2);
  assert.equal(tun.readBatch([Buffer.alloc(100), Buffer.alloc(100)], sizes, 0), 1);
  assert.equal(tun.stats.dropped, 2);
  tun.close();
  assert.equal(tun.inject(packet(4)), false);
  assert.equal(tun.writeBatch([packet(5)], Uint32Array.of(0), Uint32Array.of(40), 1), 0);
});

test('memory tun: simulateGone notifies every onGone callback once, later ones too', async () => {
  const tun = new MemoryTun('g');
  const reasons: string[] = [];
  tun.onGone((r) => reasons.push(r));
  tun.simulateGone('test');
  tun.simulateGone('again');
  tun.onGone((r) => reasons.push(`late ${r}`));
  await tick();
  assert.deepEqual(reasons, ['memory TUN g is gone (test)', 'late memory TUN g is gone (test)']);
  assert.equal(tun.inject(packet(1)), false);
});
