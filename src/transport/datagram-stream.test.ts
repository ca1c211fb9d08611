// DuplexDatagramStream over an in-memory Duplex: batches of at most 64 per handler call, one
// write per sent batch, a throwing handler counted, large datagrams, and what a datagram costs in
// allocation: the decoders none, the stream one view per received datagram, and on send one
// view per datagram (inside Node 20's Buffer.copy) plus the batch's Buffer.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Duplex } from 'node:stream';
import { bytesPerCall } from '../util/alloc-probe.js';
import { Prng } from '../wire/fuzz-harness.js';
import { DuplexDatagramStream, STREAM_RX_BATCH, capsuleFraming, encodeDatagramCapsules, tcpFraming, type DatagramFraming } from './index.js';

/** A Duplex that records writes; reads are fed by the test with emit('data'). */
function memoryDuplex(): { duplex: Duplex; writes: Buffer[] } {
  const writes: Buffer[] = [];
  const duplex = new Duplex({
    read() {},
    write(chunk: Buffer, _enc, cb) { writes.push(chunk); cb(); },
  });
  return { duplex, writes };
}

const tick = () => new Promise((resolve) => setImmediate(resolve));
/** A Buffer view object (a Uint8Array of an existing ArrayBuffer) is about 96 bytes on Node 20. */
const VIEW_BYTES = 128;

function frames(framing: DatagramFraming, datagrams: Buffer[]): Buffer {
  if (framing === capsuleFraming) return encodeDatagramCapsules(datagrams, new Array(datagrams.length).fill(0), datagrams.map((d) => d.length), datagrams.length);
  return Buffer.concat(datagrams.map((d) => Buffer.concat([Buffer.from([d.length >> 8, d.length & 255]), d])));
}

for (const framing of [capsuleFraming, tcpFraming]) {
  const name = framing.transport === 'https' ? 'capsules' : 'tcp frames';

  test(`datagram-stream (${name}): one write per batch; batches of at most ${STREAM_RX_BATCH} to the handler`, async () => {
    const { duplex, writes } = memoryDuplex();
    const ds = new DuplexDatagramStream(duplex, framing, '198.18.0.1', 7443);
    const datagrams = Array.from({ length: 150 }, (_, i) => Buffer.alloc(1 + (i % 40), i));
    assert.equal(ds.send(datagrams, new Uint32Array(150), datagrams.map((d) => d.length), 150), 150);
    assert.equal(writes.length, 1, 'one write');
    assert.ok(writes[0]!.equals(frames(framing, datagrams)), 'the framing as the codec writes it');
    const calls: number[] = [];
    const got: Buffer[] = [];
    ds.onDatagrams((bufs, sizes, n) => {
      calls.push(n);
      for (let i = 0; i < n; i++) got.push(Buffer.from(bufs[i]!.subarray(0, sizes[i]!)));
    });
    await tick();
    duplex.emit('data', writes[0]!);
    assert.deepEqual(calls, [64, 64, 22]);
    assert.ok(got.every((g, i) => g.equals(datagrams[i]!)));
    assert.deepEqual([ds.counters.txDatagrams, ds.counters.rxDatagrams], [150, 150]);
  });

  test(`datagram-stream (${name}): datagrams cut anywhere by chunks arrive intact`, async () => {
    const { duplex } = memoryDuplex();
    const ds = new DuplexDatagramStream(duplex, framing, '198.18.0.1', 7443);
    const rng = new Prng(framing.transport === 'https' ? 21 : 22);
    const datagrams = Array.from({ length: 2000 }, () => {
      const d = Buffer.alloc(1 + rng.int(rng.int(10) === 0 ? 9000 : 1500));
      rng.fill(d, 0, d.length);
      return d;
    });
    const wire = frames(framing, datagrams);
    const got: Buffer[] = [];
    ds.onDatagrams((bufs, sizes, n) => { for (let i = 0; i < n; i++) got.push(Buffer.from(bufs[i]!.subarray(0, sizes[i]!))); });
    await tick();
    for (let at = 0; at < wire.length;) {
      const n = 1 + rng.int(rng.int(4) === 0 ? 50 : 40000);
      // A copy per chunk, as sockets deliver fresh memory (and so that a view kept too long fails).
      duplex.emit('data', Buffer.from(wire.subarray(at, at + n)));
      at += n;
    }
    assert.equal(got.length, datagrams.length);
    for (let i = 0; i < datagrams.length; i++) if (!got[i]!.equals(datagrams[i]!)) assert.fail(`datagram ${i} differs`);
  });

  test(`datagram-stream (${name}): a throwing handler is counted; a 60000-byte datagram passes`, async () => {
    const { duplex } = memoryDuplex();
    const ds = new DuplexDatagramStream(duplex, framing, '198.18.0.1', 7443);
    let calls = 0;
    const sizes: number[] = [];
    ds.onDatagrams((_bufs, s, n) => {
      calls++;
      if (calls === 1) throw new Error('handler bug');
      for (let i = 0; i < n; i++) sizes.push(s[i]!);
    });
    await tick();
    duplex.emit('data', frames(framing, [Buffer.alloc(10)]));
    assert.equal(ds.counters.handlerErrors, 1);
    const big = Buffer.alloc(60000, 9);
    duplex.emit('data', frames(framing, [big, Buffer.alloc(5)]));
    assert.deepEqual(sizes, [60000, 5]);
  });

  test(`datagram-stream (${name}): allocation per datagram is one view at most`, async () => {
    const { duplex } = memoryDuplex();
    const ds = new DuplexDatagramStream(duplex, framing, '198.18.0.1', 7443);
    let total = 0; // datagrams (a byte count would leave the small-integer range and box)
    ds.onDatagrams((_bufs, _sizes, n) => { total += n; });
    await tick();
    const datagrams = Array.from({ length: 46 }, () => Buffer.alloc(1400, 1));
    const chunk = frames(framing, datagrams);
    // The stream's 'data' listener itself (EventEmitter.emit allocates its arguments array, which
    // node pays per chunk on every stream anyway). Few enough calls that no scavenge runs.
    const onData = (ds as unknown as { onData: (c: Buffer) => void }).onData;
    for (let i = 0; i < 2000; i++) onData(chunk);
    const rx = bytesPerCall((calls) => { for (let i = 0; i < calls; i++) onData(chunk); }, 100) / 46;
    assert.ok(total > 0);
    assert.ok(rx < VIEW_BYTES, `${rx} bytes allocated per received datagram`);
    // Without the per-datagram view (a decoder alone), nothing.
    const dec = framing.createDecoder(ds.counters as never);
    const decode = bytesPerCall((calls) => { for (let i = 0; i < calls; i++) { dec.push(chunk); while (dec.next()); } }, 2000) / 46;
    assert.ok(decode < 0.5, `${decode} bytes allocated per decoded datagram`);
    // Send: one Buffer per batch, a view per datagram inside Buffer.copy (the datagrams are
    // parts of larger buffers, as the engine's are).
    const parts = Array.from({ length: 64 }, () => Buffer.alloc(2048, 2));
    const offsets = new Uint32Array(64).fill(16);
    const sizes = new Uint32Array(64).fill(1400);
    for (let i = 0; i < 200; i++) ds.send(parts, offsets, sizes, 64);
    const tx = bytesPerCall((calls) => { for (let i = 0; i < calls; i++) ds.send(parts, offsets, sizes, 64); }, 20) / 64;
    assert.ok(tx < VIEW_BYTES + 16, `${tx} bytes allocated per sent datagram`);
  });
}
