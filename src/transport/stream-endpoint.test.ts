// StreamEndpoint: how it names itself (transport, address, port), that the engine's sends go into
// the stream, and that pipeToEngine hands arriving datagrams to receiveDatagrams with the endpoint
// as their sender. The engine pair over a real tcp-framed / MASQUE connection is in
// test/stream-endpoint-engine.test.ts (it needs MemoryTun from src/tun, a sibling layer).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Endpoint } from '../wireguard/index.js';
import { StreamEndpoint, emptyStreamCounters, pipeToEngine, type DatagramHandler, type DatagramStream } from './index.js';

/** A DatagramStream that records sends and lets the test deliver datagrams. */
class FakeStream implements DatagramStream {
  readonly counters = emptyStreamCounters();
  readonly closed = new Promise<Error | null>(() => {});
  readonly isClosed = false;
  readonly queuedBytes = 0;
  sent: string[] = [];
  handler: DatagramHandler | null = null;
  constructor(readonly transport: 'https' | 'tcp', readonly remoteAddress: string, readonly remotePort: number) {}
  send(bufs: readonly Buffer[], offsets: ArrayLike<number>, sizes: ArrayLike<number>, count: number): number {
    for (let i = 0; i < count; i++) this.sent.push(bufs[i]!.subarray(offsets[i]!, offsets[i]! + sizes[i]!).toString());
    return count;
  }
  onDatagrams(handler: DatagramHandler): void { this.handler = handler; }
  close(): void {}
}

test('stream-endpoint: names the rung and the remote address', () => {
  const https = new StreamEndpoint(new FakeStream('https', '198.18.0.1', 7443));
  assert.equal(https.toString(), 'https://198.18.0.1:7443');
  assert.deepEqual([https.family, https.address, https.port, https.transport], [4, '198.18.0.1', 7443, 'https']);
  const tcp6 = new StreamEndpoint(new FakeStream('tcp', 'fd00::1', 51820));
  assert.equal(tcp6.toString(), 'tcp://[fd00::1]:51820');
  assert.equal(tcp6.family, 6);
  const mapped = new StreamEndpoint(new FakeStream('tcp', '::ffff:198.18.0.2', 40000));
  assert.equal(mapped.toString(), 'tcp://198.18.0.2:40000', 'an IPv4-mapped address shows as IPv4');
  assert.equal(mapped.family, 4);
  const named = new StreamEndpoint(new FakeStream('https', '127.0.0.1', 1), '198.18.0.9', 443);
  assert.equal(named.toString(), 'https://198.18.0.9:443', 'address and port may be given');
});

test('stream-endpoint: sends go to the stream; pipeToEngine delivers with the endpoint as sender', () => {
  const stream = new FakeStream('tcp', '198.18.0.1', 51820);
  const ep = new StreamEndpoint(stream);
  const buf = Buffer.from('xxhelloworld');
  assert.equal(ep.send([buf, buf], new Uint32Array([2, 7]), new Uint32Array([5, 5]), 2), 2);
  assert.deepEqual(stream.sent, ['hello', 'world']);
  const calls: { data: string[]; from: Endpoint[] }[] = [];
  pipeToEngine(stream, ep, {
    receiveDatagrams(bufs: Buffer[], sizes: number[], endpoints: Endpoint[], count: number) {
      const data: string[] = [];
      const from: Endpoint[] = [];
      for (let i = 0; i < count; i++) {
        data.push(bufs[i]!.subarray(0, sizes[i]!).toString());
        from.push(endpoints[i]!);
      }
      calls.push({ data, from });
    },
  });
  const slots = Array.from({ length: 64 }, (_, i) => Buffer.from(`d${i}`));
  stream.handler!(slots, slots.map((s) => s.length), 64);
  assert.equal(calls.length, 1);
  assert.equal(calls[0]!.data.length, 64);
  assert.equal(calls[0]!.data[63], 'd63');
  assert.ok(calls[0]!.from.every((e) => e === ep));
});
