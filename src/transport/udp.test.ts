// UDP binds on loopback: batches of 64 datagrams both ways over IPv4 and IPv6 with the native
// UdpBind and the node:dgram fallback (and between the two), dual-stack senders seen as IPv4,
// interned sender endpoints, GSO, GRO (coalesced receives split back into datagrams), truncation,
// fwmark, and the errors a user sees. Sticky sources: the native bind's senders carry the local
// address they sent to; replies leave from it (also with GSO); a refused source is dropped,
// counted and the datagrams sent again (the many-address cases are in
// test/sticky-source-netns.test.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import type { Bind, Endpoint } from '../wireguard/index.js';
import { UserError } from '../util/index.js';
import {
  DgramUdpBind, UdpBind, UdpEndpoint, UDP_BATCH_SIZE, defaultEndpointPool, parseEndpoint, sourceRecord, sourceRefused, udpNativeUnavailable,
} from './index.js';

const noNative = udpNativeUnavailable() || false;
const isRoot = process.getuid?.() === 0;
type Kind = 'native' | 'dgram';
const make = (k: Kind, ipv6?: boolean): UdpBind | DgramUdpBind => (k === 'native' ? new UdpBind({ ipv6 }) : new DgramUdpBind({ ipv6 }));

interface Received { data: Buffer; from: Endpoint }

/** The sender without the local address it sent to (what text parses to). */
const remoteOf = (e: Endpoint): Endpoint => (e instanceof UdpEndpoint ? e.remote : e);

/** Drains `bind` on every readable callback into `got`: batches of `batch` buffers of `bufSize`
 * bytes, at most `batchesPerEvent` of them per callback (the engine stops after a few too). */
function collect(bind: Bind, got: Received[], bufSize = 2048, batch = UDP_BATCH_SIZE, batchesPerEvent = Infinity): void {
  const bufs = Array.from({ length: batch }, () => Buffer.alloc(bufSize));
  const sizes = new Uint32Array(batch);
  const eps: (Endpoint | null)[] = new Array(batch).fill(null);
  bind.start(() => {
    let n;
    for (let b = 0; b < batchesPerEvent && (n = bind.receiveBatch(bufs, sizes, eps)) > 0; b++) {
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
    for (const [got, src, tag, from, receiver] of [[gotB, x, 0xa0, toA, kindB], [gotA, y, 0xb0, toB, kindA]] as const) {
      assert.equal(got.length, UDP_BATCH_SIZE);
      const byIndex = new Map(got.map((r) => [r.data[1]!, r]));
      for (let i = 0; i < UDP_BATCH_SIZE; i++) {
        const r = byIndex.get(i);
        assert.ok(r, `datagram ${i} missing`);
        assert.deepEqual(r.data, src.bufs[i]!.subarray(src.offsets[i]!, src.offsets[i]! + src.sizes[i]!));
        assert.equal(r.data[0], tag);
        // The sender is the very endpoint object the other side parsed (interned); the native
        // bind adds the local address it was sent to (the dgram one cannot know it).
        assert.equal(remoteOf(r.from), from);
        const local = r.from instanceof UdpEndpoint ? r.from.sourceAddress : null;
        assert.equal(local, receiver === 'native' ? host : null);
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
      assert.equal(remoteOf(got[0]!.from), parseEndpoint(`127.0.0.1:${p4}`));
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

/** Segments i of sender `tag`: `seg` bytes (the last `last`), each byte tag ^ i, so a datagram
 * says whose it is and which; its first two bytes are the tag and index (a 1-byte one: the tag). */
function segments(tag: number, count: number, seg: number, last: number): { bufs: Buffer[]; offsets: Uint32Array; sizes: Uint32Array } {
  const bufs: Buffer[] = [], offsets = new Uint32Array(count), sizes = new Uint32Array(count);
  for (let i = 0; i < count; i++) {
    sizes[i] = i === count - 1 ? last : seg;
    const b = Buffer.alloc(4 + sizes[i]!, (tag ^ i) & 0xff);
    b[4] = tag;
    b[5] = i;
    bufs.push(b);
    offsets[i] = 4;
  }
  return { bufs, offsets, sizes };
}

// Two senders each send runs of equal-size datagrams with GSO (one sendmsg per run); over
// loopback the receiver's UDP_GRO socket takes each run as one super-datagram. The receiver reads
// small batches (5 buffers, one batch per readable callback), so runs are split across calls and
// the held segments must still arrive without a new datagram waking the socket.
test('udp native: GRO-coalesced receives arrive as the individual datagrams, sizes and senders', { skip: noNative }, async () => {
  const a = new UdpBind(), c = new UdpBind(), b = new UdpBind();
  try {
    await a.open(0);
    await c.open(0);
    const pb = await b.open(0);
    const got: Received[] = [];
    collect(b, got, 2048, 5, 1);
    const to = parseEndpoint(`127.0.0.1:${pb}`)!;
    const fromA = parseEndpoint(`127.0.0.1:${a.port}`)!, fromC = parseEndpoint(`127.0.0.1:${c.port}`)!;
    const runs = [
      { bind: a, from: fromA, tag: 0xa1, x: segments(0xa1, 40, 1200, 333) },
      { bind: c, from: fromC, tag: 0xc1, x: segments(0xc1, 23, 1000, 1000) },
      { bind: a, from: fromA, tag: 0xa2, x: segments(0xa2, 7, 1400, 1) },
    ];
    for (const r of runs) assert.equal(r.bind.sendSegments(r.x.bufs, r.x.offsets, r.x.sizes, r.x.sizes.length, r.x.sizes[0]!, to), r.x.sizes.length);
    const total = runs.reduce((n, r) => n + r.x.sizes.length, 0);
    await until(`${total} datagrams`, () => got.length >= total);
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(got.length, total);
    for (const r of runs) {
      const mine = got.filter((g) => g.data[0] === r.tag);
      assert.equal(mine.length, r.x.sizes.length, `datagrams of run ${r.tag.toString(16)}`);
      mine.forEach((g, i) => {
        if (g.data.length > 1) assert.equal(g.data[1], i, 'in order');
        assert.equal(g.data.length, r.x.sizes[i]);
        assert.deepEqual(g.data, r.x.bufs[i]!.subarray(4, 4 + r.x.sizes[i]!));
        assert.equal(remoteOf(g.from), r.from);
        assert.equal((g.from as UdpEndpoint).sourceAddress, '127.0.0.1', 'where it arrived, also for GRO segments');
        assert.equal(g.from, mine[0]!.from, 'one endpoint object per sender and local address');
      });
    }
    assert.equal(b.stats.received, total);
    assert.equal(b.stats.truncated, 0);
    if (b.groEnabled && a.gsoSupported) {
      // Each GSO send came in as one super-datagram (a run of one datagram would not count).
      assert.equal(b.stats.groCoalesced, runs.length);
      assert.equal(b.stats.groDatagrams, total);
    } else {
      assert.equal(b.stats.groCoalesced, 0);
    }
  } finally {
    a.close();
    b.close();
    c.close();
  }
});

test('udp native: a GRO segment larger than its buffer is reported with size 0; gro: false turns GRO off', { skip: noNative }, async () => {
  const a = new UdpBind(), b = new UdpBind(), off = new UdpBind({ gro: false });
  try {
    await a.open(0);
    const pb = await b.open(0), po = await off.open(0);
    assert.equal(off.groEnabled, false);
    const got: Received[] = [], gotOff: Received[] = [];
    collect(b, got, 1100);
    collect(off, gotOff, 1100);
    for (const [p, into] of [[pb, got], [po, gotOff]] as const) {
      const x = segments(0x55, 6, 1200, 700);
      assert.equal(a.sendSegments(x.bufs, x.offsets, x.sizes, 6, 1200, parseEndpoint(`127.0.0.1:${p}`)!), 6);
      await until('6 datagrams', () => into.length === 6);
      assert.deepEqual(into.map((r) => r.data.length), [0, 0, 0, 0, 0, 700]);
      assert.equal(into[5]!.data[1], 5);
    }
    assert.equal(b.stats.truncated, 5);
    assert.equal(off.stats.truncated, 5);
    assert.equal(off.stats.groCoalesced, 0);
  } finally {
    a.close();
    b.close();
    off.close();
  }
});

// Loopback has every 127.0.0.0/8 address, so 127.0.0.2 is a second local IPv4 address: the kernel
// would answer from 127.0.0.1, a sticky source answers from the address the sender chose.
for (const ipv6 of [true, false]) {
  const socket = ipv6 ? 'dual-stack' : 'IPv4';
  test(`udp native (${socket} socket): replies leave from the local address the sender chose, with and without GSO`, { skip: noNative }, async () => {
    const a = new UdpBind({ ipv6 }), b = new UdpBind();
    try {
      const pa = await a.open(0);
      await b.open(0);
      assert.equal(a.stickyEnabled, true);
      const gotA: Received[] = [], gotB: Received[] = [];
      collect(a, gotA);
      collect(b, gotB);
      for (const local of ['127.0.0.2', '127.0.0.1', '127.0.0.2']) {
        gotA.length = 0;
        gotB.length = 0;
        const hello = Buffer.from('hello');
        assert.equal(b.sendBatch([hello], Uint32Array.of(0), Uint32Array.of(5), 1, parseEndpoint(`${local}:${pa}`)!), 1);
        await until('the datagram', () => gotA.length === 1);
        const from = gotA[0]!.from as UdpEndpoint;
        assert.equal(from.sourceAddress, local);
        assert.equal(from.toString(), `127.0.0.1:${b.port}`);
        // One reply, then a GSO run of 5: all from `local`.
        assert.equal(a.sendBatch([hello], Uint32Array.of(0), Uint32Array.of(5), 1, from), 1);
        const x = segments(0x33, 5, 1000, 10);
        assert.equal(a.sendSegments(x.bufs, x.offsets, x.sizes, 5, 1000, from), 5);
        await until('6 replies', () => gotB.length === 6);
        for (const r of gotB) assert.equal(remoteOf(r.from).toString(), `${local}:${pa}`);
      }
      assert.equal(a.stats.stickySent, 18);
      assert.equal(a.stats.stickyCleared, 0);
      assert.equal(a.stats.sendErrors, 0);
    } finally {
      a.close();
      b.close();
    }
  });
}

test('udp native: in one receive batch each datagram keeps its own sender and local address', { skip: noNative }, async () => {
  const a = new UdpBind({ gro: false }), a2 = new UdpBind(), b = new UdpBind();
  try {
    const pa = await a.open(0);
    await a2.open(0);
    await b.open(0);
    const got: Received[] = [];
    collect(a, got);
    // Sent before a reads anything, so one recvmmsg takes them all; runs repeat, then change.
    const plan: [UdpBind, string][] = [[b, '127.0.0.2'], [b, '127.0.0.2'], [b, '127.0.0.1'], [a2, '127.0.0.1'], [a2, '127.0.0.1'], [b, '127.0.0.1'], [b, '127.0.0.2']];
    plan.forEach(([from, local], i) => {
      assert.equal(from.sendBatch([Buffer.of(i)], Uint32Array.of(0), Uint32Array.of(1), 1, parseEndpoint(`${local}:${pa}`)!), 1);
    });
    await until('7 datagrams', () => got.length === plan.length);
    got.forEach((r, i) => {
      assert.equal(r.data[0], i);
      const e = r.from as UdpEndpoint;
      assert.equal(e.toString(), `127.0.0.1:${plan[i]![0].port}`, `sender of ${i}`);
      assert.equal(e.sourceAddress, plan[i]![1], `local address of ${i}`);
      if (i > 0 && plan[i]![0] === plan[i - 1]![0] && plan[i]![1] === plan[i - 1]![1]) assert.equal(e, got[i - 1]!.from);
    });
  } finally {
    a.close();
    a2.close();
    b.close();
  }
});

test('udp native: a source the kernel refuses is dropped, counted, and the datagrams go out from another address', { skip: noNative }, async () => {
  const a = new UdpBind(), b = new UdpBind();
  try {
    await a.open(0);
    const pb = await b.open(0);
    const got: Received[] = [];
    collect(b, got);
    const one = Buffer.from('x');
    // Sources this host does not have: as after `ip addr del` (IPv4 ENETUNREACH, IPv6 EINVAL).
    const cases = [
      { to: `127.0.0.1:${pb}`, gone: '198.18.99.1', from: '127.0.0.1', gso: false },
      { to: `[::1]:${pb}`, gone: 'fd00:99::1', from: '::1', gso: false },
      { to: `127.0.0.1:${pb}`, gone: '198.18.99.2', from: '127.0.0.1', gso: true },
    ];
    for (const [i, c] of cases.entries()) {
      got.length = 0;
      const stale = defaultEndpointPool.withSource(parseEndpoint(c.to)!, sourceRecord(c.gone, 1)!, 0);
      assert.equal(stale.sourceAddress, c.gone);
      const x = segments(0x40 + i, 3, 200, 200);
      const sent = c.gso ? a.sendSegments(x.bufs, x.offsets, x.sizes, 3, 200, stale) : a.sendBatch(x.bufs, x.offsets, x.sizes, 3, stale);
      assert.equal(sent, 3, 'sent again without the source');
      assert.equal(stale.sourceUsable, false);
      assert.equal(a.stats.stickyCleared, i + 1);
      assert.match(a.stats.lastError, new RegExp(`^send from ${c.gone.replaceAll('.', '\\.')} to .*; sending from an address the system picks$`));
      // Later sends go without it at once: no second refusal.
      assert.equal(a.sendBatch([one], Uint32Array.of(0), Uint32Array.of(1), 1, stale), 1);
      assert.equal(a.stats.stickyCleared, i + 1);
      await until('4 datagrams', () => got.length === 4);
      const expected = c.from.includes(':') ? `[${c.from}]:${a.port}` : `${c.from}:${a.port}`;
      for (const r of got) assert.equal(remoteOf(r.from).toString(), expected);
    }
    assert.equal(a.stats.stickySent, 0);
    assert.equal(a.stats.sendErrors, 0);
  } finally {
    a.close();
    b.close();
  }
});

test('udp native: sticky: false leaves the source to the kernel', { skip: noNative }, async () => {
  const a = new UdpBind({ sticky: false }), b = new UdpBind();
  try {
    const pa = await a.open(0);
    await b.open(0);
    assert.equal(a.stickyEnabled, false);
    const gotA: Received[] = [], gotB: Received[] = [];
    collect(a, gotA);
    collect(b, gotB);
    const hello = Buffer.from('hello');
    b.sendBatch([hello], Uint32Array.of(0), Uint32Array.of(5), 1, parseEndpoint(`127.0.0.2:${pa}`)!);
    await until('the datagram', () => gotA.length === 1);
    assert.equal(gotA[0]!.from, parseEndpoint(`127.0.0.1:${b.port}`), 'no source: the plain endpoint');
    a.sendBatch([hello], Uint32Array.of(0), Uint32Array.of(5), 1, gotA[0]!.from);
    await until('the reply', () => gotB.length === 1);
    assert.equal(remoteOf(gotB[0]!.from).toString(), `127.0.0.1:${pa}`, 'the kernel\'s choice');
  } finally {
    a.close();
    b.close();
  }
});

test('udp: sourceRefused names the errors of a vanished source address', () => {
  const E = { EINVAL: 22, ENETUNREACH: 101, ENODEV: 19, EADDRNOTAVAIL: 99, EAGAIN: 11, EMSGSIZE: 90 };
  for (const e of [E.EINVAL, E.ENETUNREACH, E.ENODEV, E.EADDRNOTAVAIL]) assert.equal(sourceRefused(-e, E), true, String(e));
  for (const e of [E.EAGAIN, E.EMSGSIZE, 0, 5]) assert.equal(sourceRefused(-e, E), false, String(e));
  // An addon without EADDRNOTAVAIL in its table still classifies the rest.
  assert.equal(sourceRefused(-99, { EINVAL: 22, ENETUNREACH: 101, ENODEV: 19 }), false);
});

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
