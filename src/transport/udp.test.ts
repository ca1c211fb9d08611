// UDP binds on loopback: batches of 64 datagrams both ways over IPv4 and IPv6 with the native
// UdpBind and the node:dgram fallback (and between the two), dual-stack senders seen as IPv4,
// interned sender endpoints, GSO, truncation, fwmark, and the errors a user sees.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import type { Bind, Endpoint } from '../wireguard/index.js';
import { UserError } from '../util/index.js';
import { DgramUdpBind, UdpBind, UDP_BATCH_SIZE, parseEndpoint, udpNativeUnavailable } from './index.js';

const noNative = udpNativeUnavailable() || false;
const isRoot = process.getuid?.() === 0;
type Kind = 'native' | 'dgram';
const make = (k: Kind, ipv6?: boolean): UdpBind | DgramUdpBind => (k === 'native' ? new UdpBind({ ipv6 }) : new DgramUdpBind({ ipv6 }));

interface Received { data: Buffer; from: Endpoint }

/** Drains `bind` on every readable callback into `got`. */
function collect(bind: Bind, got: Received[], bufSize = 2048): void {
  const bufs = Array.from({ length: UDP_BATCH_SIZE }, () => Buffer.alloc(bufSize));
  const sizes = new Uint32Array(UDP_BATCH_SIZE);
  const eps: (Endpoint | null)[] = new Array(UDP_BATCH_SIZE).fill(null);
  bind.start(() => {
    let n;
    while ((n = bind.receiveBatch(bufs, sizes, eps)) > 0) {
      for (let i = 0; i < n; i++) got.push({ data: Buffer.from(bufs[i]!.subarray(0, sizes[i]!)), from: eps[i]! });
    }
  });
}

async function until(what: string, fn: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!fn()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** One batch of 64 distinct datagrams (tag, index, filler) laid out at varying offsets. */
function batch(tag: number): { bufs: Buffer[]; offsets: Uint32Array; sizes: Uint32Array } {
  const bufs: Buffer[] = [], offsets = new Uint32Array(UDP_BATCH_SIZE), sizes = new Uint32Array(UDP_BATCH_SIZE);
  for (let i = 0; i < UDP_BATCH_SIZE; i++) {
    const off = i % 5, len = 32 + i * 7;
    const b = Buffer.alloc(off + len + 3, 0xee);
    b[off] = tag;
    b[off + 1] = i;
    bufs.push(b);
    offsets[i] = off;
    sizes[i] = len;
  }
  return { bufs, offsets, sizes };
}

async function exchange(kindA: Kind, kindB: Kind, host: string): Promise<void> {
  const a = make(kindA), b = make(kindB);
  try {
    const pa = await a.open(0), pb = await b.open(0);
    assert.ok(pa > 0 && pb > 0 && pa !== pb);
    const gotA: Received[] = [], gotB: Received[] = [];
    collect(a, gotA);
    collect(b, gotB);
    const text = (p: number) => (host.includes(':') ? `[${host}]:${p}` : `${host}:${p}`);
    const toB = a.parseEndpoint(text(pb))!, toA = b.parseEndpoint(text(pa))!;
    const x = batch(0xa0), y = batch(0xb0);
    assert.equal(a.sendBatch(x.bufs, x.offsets, x.sizes, UDP_BATCH_SIZE, toB), UDP_BATCH_SIZE);
    assert.equal(b.sendBatch(y.bufs, y.offsets, y.sizes, UDP_BATCH_SIZE, toA), UDP_BATCH_SIZE);
    await until('64 datagrams each way', () => gotA.length >= UDP_BATCH_SIZE && gotB.length >= UDP_BATCH_SIZE);
    for (const [got, src, tag, from] of [[gotB, x, 0xa0, toA], [gotA, y, 0xb0, toB]] as const) {
      assert.equal(got.length, UDP_BATCH_SIZE);
      const byIndex = new Map(got.map((r) => [r.data[1]!, r]));
      for (let i = 0; i < UDP_BATCH_SIZE; i++) {
        const r = byIndex.get(i);
        assert.ok(r, `datagram ${i} missing`);
        assert.deepEqual(r.data, src.bufs[i]!.subarray(src.offsets[i]!, src.offsets[i]! + src.sizes[i]!));
        assert.equal(r.data[0], tag);
        // The sender is the very endpoint object the other side parsed (interned).
        assert.equal(r.from, from);
      }
    }
  } finally {
    a.close();
    b.close();
  }
}

const pairs: [Kind, Kind][] = [['native', 'native'], ['dgram', 'dgram'], ['native', 'dgram']];
for (const [ka, kb] of pairs) {
  const skip = ka === 'native' || kb === 'native' ? noNative : false;
  test(`udp ${ka} <-> ${kb}: 64-datagram batches both ways over IPv4 loopback`, { skip }, () => exchange(ka, kb, '127.0.0.1'));
  test(`udp ${ka} <-> ${kb}: 64-datagram batches both ways over IPv6 loopback`, { skip }, () => exchange(ka, kb, '::1'));
}

for (const kind of ['native', 'dgram'] as const) {
  const skip = kind === 'native' ? noNative : false;

  test(`udp ${kind}: a dual-stack socket sees an IPv4 sender as an IPv4 endpoint`, { skip }, async () => {
    const dual = make(kind), v4 = make(kind, false);
    try {
      const pd = await dual.open(0), p4 = await v4.open(0);
      assert.equal(dual.family, 6);
      assert.equal(v4.family, 4);
      const got: Received[] = [];
      collect(dual, got);
      const b = Buffer.from('hello');
      assert.equal(v4.sendBatch([b], Uint32Array.of(0), Uint32Array.of(5), 1, parseEndpoint(`127.0.0.1:${pd}`)!), 1);
      await until('the datagram', () => got.length === 1);
      assert.equal(got[0]!.from.family, 4);
      assert.equal(got[0]!.from, parseEndpoint(`127.0.0.1:${p4}`));
      assert.equal(got[0]!.data.toString(), 'hello');
      // And back to the IPv4 socket from the dual-stack one.
      const back: Received[] = [];
      collect(v4, back);
      assert.equal(dual.sendBatch([b], Uint32Array.of(1), Uint32Array.of(4), 1, got[0]!.from), 1);
      await until('the reply', () => back.length === 1);
      assert.equal(back[0]!.data.toString(), 'ello');
      // An IPv4-only socket cannot send to IPv6: counted, not thrown.
      assert.equal(v4.sendBatch([b], Uint32Array.of(0), Uint32Array.of(5), 1, parseEndpoint(`[::1]:${pd}`)!), 0);
      assert.equal(v4.stats.sendErrors, 1);
    } finally {
      dual.close();
      v4.close();
    }
  });

  test(`udp ${kind}: a datagram larger than its buffer is reported with size 0 and counted`, { skip }, async () => {
    const a = make(kind), b = make(kind);
    try {
      await a.open(0);
      const pb = await b.open(0);
      const got: Received[] = [];
      collect(b, got, 100);
      const big = Buffer.alloc(500, 1), small = Buffer.alloc(50, 2);
      a.sendBatch([big, small], Uint32Array.of(0, 0), Uint32Array.of(500, 50), 2, parseEndpoint(`127.0.0.1:${pb}`)!);
      await until('two datagrams', () => got.length === 2);
      assert.deepEqual(got.map((r) => r.data.length), [0, 50]);
      assert.equal(b.stats.truncated, 1);
    } finally {
      a.close();
      b.close();
    }
  });

  test(`udp ${kind}: a port in use is a user error that says so; reopen after close works`, { skip }, async () => {
    const a = make(kind), b = make(kind);
    try {
      const p = await a.open(0);
      await assert.rejects(b.open(p), (e: Error) => e instanceof UserError && e.message === `cannot listen on UDP port ${p}: it is already in use`);
      await assert.rejects(b.open(70000), /invalid UDP port 70000/);
      a.close();
      a.close();
      assert.equal(a.port, 0);
      assert.equal(await b.open(p), p);
    } finally {
      a.close();
      b.close();
    }
  });
}

test('udp native: setMark sets SO_MARK on the socket (ss shows the fwmark)', { skip: noNative || (!isRoot && 'needs root') }, async () => {
  const a = new UdpBind();
  try {
    a.setMark(0x4d2); // before open: applied at open
    const p = await a.open(0);
    assert.match(execFileSync('ss', ['-uanpe', `sport = :${p}`], { encoding: 'utf8' }), /fwmark:0x4d2/);
    a.setMark(0x51820);
    assert.match(execFileSync('ss', ['-uanpe', `sport = :${p}`], { encoding: 'utf8' }), /fwmark:0x51820/);
    assert.ok(a.socketBuffers[0]! >= 1 << 20, `receive buffer ${a.socketBuffers[0]}`);
  } finally {
    a.close();
  }
});

test('udp dgram: setMark is refused with a reason', async () => {
  const a = new DgramUdpBind();
  a.setMark(0);
  assert.throws(() => a.setMark(1), /cannot set fwmark 1: the node:dgram UDP fallback has no SO_MARK/);
});

for (const [seg, count] of [[1200, 10], [1400, 64]] as const) {
  test(`udp native: sendSegments delivers ${count} segments of ${seg} bytes (with GSO when the kernel has it)`, { skip: noNative }, async () => {
    const a = new UdpBind(), b = new UdpBind();
    try {
      await a.open(0);
      const pb = await b.open(0);
      const got: Received[] = [];
      collect(b, got);
      const bufs: Buffer[] = [], offsets = new Uint32Array(count), sizes = new Uint32Array(count);
      for (let i = 0; i < count; i++) {
        bufs.push(Buffer.alloc(seg + 8, i));
        offsets[i] = 8;
        sizes[i] = i === count - 1 ? 300 : seg;
      }
      assert.equal(a.sendSegments(bufs, offsets, sizes, count, seg, parseEndpoint(`127.0.0.1:${pb}`)!), count);
      await until(`${count} segments`, () => got.length === count);
      got.sort((x, y) => x.data[0]! - y.data[0]!);
      for (let i = 0; i < count; i++) {
        assert.equal(got[i]!.data.length, sizes[i]);
        assert.ok(got[i]!.data.every((v) => v === i));
      }
      assert.equal(a.stats.sendErrors, 0);
      assert.equal(a.stats.gsoSent, a.gsoSupported ? count : 0);
    } finally {
      a.close();
      b.close();
    }
  });
}

test('udp: without the addon createUdpBind falls back to node:dgram and UdpBind says how to fix it', () => {
  const script = `import('${new URL('./index.js', import.meta.url).href}').then((m) => {
    console.log(m.createUdpBind().constructor.name);
    try { new m.UdpBind(); } catch (e) { console.log(e.name + ': ' + e.message); }
  });`;
  const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], {
    encoding: 'utf8', env: { ...process.env, MESHTUN_NATIVE: '/nonexistent/meshtun_native.node' },
  });
  assert.match(out, /^DgramUdpBind\n/);
  assert.match(out, /PlatformError: cannot use the batched UDP socket: the native addon was not built: .*does not exist; run `npm rebuild`/);
});
