import { test } from 'node:test';
import assert from 'node:assert/strict';
import { bytesPerCall } from '../util/alloc-probe.js';
import { HandshakeRateLimiter, RATELIMIT_BURST, RATELIMIT_PACKETS_PER_SECOND } from './ratelimiter.js';
import { ManualClock } from './clock.js';
import type { Endpoint } from './device-interface.js';
import { UserError } from '../util/index.js';
import { parseIpv6Address } from '../wire/index.js';
import { Prng, fuzzIterations } from '../wire/fuzz-harness.js';

const COST_MS = 1000 / RATELIMIT_PACKETS_PER_SECOND; // 50 ms per packet
const v6 = (s: string) => { const b = new Uint8Array(16); assert.ok(parseIpv6Address(s, b, 0), s); return b; };

const SOURCES = [
  '127.0.0.1', '192.168.1.1', '172.167.2.3', '97.231.252.215', '248.97.91.167', '198.18.0.1',
  '2001:db8:a0b:12f0::1', 'f5c2:818f:c052:655a:9860:b136:6894:25f0', 'b2d7:15ab:48a7:b07c:a541:f144:a9fe:54fc',
  'fd00:1:2:3::4', '::1',
];

test('ratelimiter: defaults are 20 packets/s with a burst of 5', () => {
  assert.equal(RATELIMIT_PACKETS_PER_SECOND, 20);
  assert.equal(RATELIMIT_BURST, 5);
});

// The same steps as wireguard-go's ratelimiter test, on a clock we move by hand.
test('ratelimiter: burst, refill of one, refill of two, for many sources in lockstep', () => {
  const clock = new ManualClock();
  const rl = new HandshakeRateLimiter(clock);
  const steps: { waitMs: number; allowed: boolean; what: string }[] = [
    ...Array.from({ length: RATELIMIT_BURST }, () => ({ waitMs: 0, allowed: true, what: 'initial burst' })),
    { waitMs: 0, allowed: false, what: 'after the burst' },
    { waitMs: COST_MS, allowed: true, what: 'refilled one packet' },
    { waitMs: 0, allowed: false, what: 'not refilled enough' },
    { waitMs: COST_MS - 1, allowed: false, what: 'one millisecond short' },
    { waitMs: 1 + COST_MS, allowed: true, what: 'refilled two packets' },
    { waitMs: 0, allowed: true, what: 'second of the two' },
    { waitMs: 0, allowed: false, what: 'after the two' },
  ];
  steps.forEach((s, i) => {
    clock.advance(s.waitMs);
    for (const src of SOURCES) assert.equal(rl.allow(src), s.allowed, `step ${i} (${s.what}) for ${src}`);
  });
  assert.equal(rl.size, SOURCES.length);
});

test('ratelimiter: sources are independent', () => {
  const clock = new ManualClock();
  const rl = new HandshakeRateLimiter(clock);
  for (let i = 0; i < RATELIMIT_BURST; i++) assert.ok(rl.allowV4(0xc6120001));
  assert.equal(rl.allowV4(0xc6120001), false);
  assert.equal(rl.allowV4(0xc6120002), true, 'a neighbour has its own bucket');
  assert.equal(rl.allow('198.18.0.1'), false, 'text and number forms share the bucket');
});

test('ratelimiter: IPv6 sources share a bucket per /64; mapped IPv4 counts as IPv4', () => {
  const clock = new ManualClock();
  const rl = new HandshakeRateLimiter(clock);
  const pkt = Buffer.alloc(64);
  for (let i = 0; i < RATELIMIT_BURST; i++) {
    pkt.set(v6(`fd00:1:2:3::${i + 1}`), 8); // a different host of the same /64 each time
    assert.ok(rl.allowV6(pkt, 8));
  }
  assert.equal(rl.allowV6(v6('fd00:1:2:3:ffff:ffff:ffff:ffff'), 0), false, 'same /64');
  assert.equal(rl.allow('fd00:1:2:3::99'), false, 'same /64 in text');
  assert.equal(rl.allowV6(v6('fd00:1:2:4::1'), 0), true, 'next /64');
  for (let i = 0; i < RATELIMIT_BURST; i++) assert.ok(rl.allowV4(0x0a000001));
  assert.equal(rl.allowV6(v6('::ffff:10.0.0.1'), 0), false, 'mapped form of an exhausted IPv4 source');
  assert.equal(rl.allow('::ffff:10.0.0.1'), false);
  assert.equal(rl.allowV6(v6('::ffff:10.0.0.2'), 0), true);
  assert.equal(rl.allowV6(v6('::10.0.0.1'), 0), true, 'only ::ffff:0:0/96 is mapped');
});

test('ratelimiter: endpoints are keyed by address, parsed once per endpoint object', () => {
  const clock = new ManualClock();
  const rl = new HandshakeRateLimiter(clock);
  let reads = 0;
  const ep = (address: string, port: number): Endpoint => ({
    family: address.includes(':') ? 6 : 4,
    get address() { reads++; return address; },
    port,
    toString: () => `${address}:${port}`,
  });
  const a = ep('198.18.0.7', 51820);
  const b = ep('198.18.0.7', 40000); // another port of the same host: same bucket
  for (let i = 0; i < 3; i++) assert.ok(rl.allowEndpoint(a));
  for (let i = 0; i < 2; i++) assert.ok(rl.allowEndpoint(b));
  assert.equal(rl.allowEndpoint(a), false);
  assert.equal(rl.allowEndpoint(b), false);
  assert.equal(reads, 2, 'address read once per endpoint');
  const c = ep('[not an ip]', 1);
  const d = ep('also not', 1);
  for (let i = 0; i < RATELIMIT_BURST; i++) assert.ok(rl.allowEndpoint(i % 2 ? c : d));
  assert.equal(rl.allowEndpoint(c), false, 'non-IP addresses share one limited bucket');
});

test('ratelimiter: a long rest refills only up to the burst', () => {
  const clock = new ManualClock();
  const rl = new HandshakeRateLimiter(clock);
  assert.ok(rl.allowV4(1));
  for (let rest = 0; rest < 3; rest++) {
    clock.advance(10_000);
    for (let i = 0; i < RATELIMIT_BURST; i++) assert.ok(rl.allowV4(1), `rest ${rest} packet ${i}`);
    assert.equal(rl.allowV4(1), false);
  }
});

test('ratelimiter: a steady 20/s passes, 21/s is cut back', () => {
  const clock = new ManualClock();
  const rl = new HandshakeRateLimiter(clock);
  let passed = 0;
  for (let i = 0; i < 200; i++) { if (rl.allowV4(7)) passed++; clock.advance(COST_MS); }
  assert.equal(passed, 200);
  const rl2 = new HandshakeRateLimiter(clock);
  passed = 0;
  for (let i = 0; i < 2100; i++) { if (rl2.allowV4(7)) passed++; clock.advance(1000 / 21); }
  // 100 s at 20/s plus the first burst.
  assert.ok(passed >= 2000 && passed <= 2000 + RATELIMIT_BURST, `passed ${passed}`);
});

test('ratelimiter: idle sources are garbage-collected, busy ones kept', () => {
  const clock = new ManualClock();
  const rl = new HandshakeRateLimiter(clock);
  for (let s = 1; s <= 100; s++) rl.allowV4(s);
  assert.equal(rl.size, 100);
  clock.advance(950);
  for (let i = 0; i < RATELIMIT_BURST + 2; i++) rl.allowV4(1); // source 1 empties its bucket
  clock.advance(60); // the others idle 1010 ms, source 1 idle 60 ms
  assert.equal(rl.collectGarbage(), 99);
  assert.equal(rl.size, 1);
  assert.equal(rl.allowV4(1), true, 'source 1 kept its bucket: 60 ms refilled one packet');
  assert.equal(rl.allowV4(1), false, 'and only one (a fresh bucket would allow a burst)');
  // The sweep also runs by itself from allow, at most once a second.
  clock.advance(1500);
  assert.ok(rl.allowV4(500));
  assert.equal(rl.size, 1, 'source 1 swept by allow; only the new source left');
});

test('ratelimiter: a full table refuses new sources until idle ones are swept', () => {
  const clock = new ManualClock();
  const rl = new HandshakeRateLimiter(clock, { maxEntries: 64 });
  for (let s = 0; s < 64; s++) assert.ok(rl.allowV4(s));
  assert.equal(rl.allowV4(1000), false, 'new source while full');
  assert.ok(rl.allowV4(3), 'known sources still served');
  clock.advance(1001);
  assert.ok(rl.allowV4(1000), 'after a second the idle ones were swept');
  assert.equal(rl.size, 1);
  rl.reset();
  assert.equal(rl.size, 0);
});

test('ratelimiter: options are checked', () => {
  const clock = new ManualClock();
  for (const opts of [{ packetsPerSecond: 0 }, { packetsPerSecond: NaN }, { burst: 0 }, { burst: 1.5 }, { maxEntries: 0 }, { maxEntries: 2 ** 30 }]) {
    assert.throws(() => new HandshakeRateLimiter(clock, opts), UserError, JSON.stringify(opts));
  }
  const rl = new HandshakeRateLimiter(clock, { packetsPerSecond: 1, burst: 1 });
  assert.ok(rl.allowV4(1));
  assert.equal(rl.allowV4(1), false);
  clock.advance(999);
  assert.equal(rl.allowV4(1), false);
  clock.advance(1);
  assert.ok(rl.allowV4(1));
});

/** A naive model: a Map of buckets keyed by text, swept on the same schedule. */
class BucketModel {
  private buckets = new Map<string, { tokens: number; last: number }>();
  private lastSweep = 0;
  constructor(private readonly max: number) {}
  allow(key: string, now: number): boolean {
    if (now - this.lastSweep >= 1000) {
      this.lastSweep = now;
      for (const [k, b] of this.buckets) if (now - b.last > 1000) this.buckets.delete(k);
    }
    const b = this.buckets.get(key);
    if (!b) {
      if (this.buckets.size >= this.max) return false;
      this.buckets.set(key, { tokens: 250 - 50, last: now });
      return true;
    }
    b.tokens = Math.min(250, b.tokens + (now - b.last));
    b.last = now;
    if (b.tokens >= 50) { b.tokens -= 50; return true; }
    return false;
  }
  get size(): number { return this.buckets.size; }
}

test('ratelimiter: property: random traffic agrees with a Map-based model', () => {
  const rounds = fuzzIterations(20);
  for (let round = 0; round < rounds; round++) {
    const rng = new Prng(0x7a7e + round);
    const clock = new ManualClock();
    const max = 8 + rng.int(40);
    const rl = new HandshakeRateLimiter(clock, { maxEntries: max });
    const model = new BucketModel(max);
    const nSources = 4 + rng.int(80);
    for (let step = 0; step < 3000; step++) {
      clock.advance(rng.int(4) === 0 ? rng.int(700) : rng.int(30));
      const s = rng.int(nSources);
      const key = s % 3 === 0 ? `v6:${s}` : `v4:${s}`;
      const got = s % 3 === 0 ? rl.allowV6(v6(`fd00:0:0:${s.toString(16)}::${rng.int(1000)}`), 0) : rl.allowV4(s * 7919);
      assert.equal(got, model.allow(key, clock.now()), `round ${round} step ${step} source ${key}`);
      assert.equal(rl.size, model.size);
    }
  }
});

test('ratelimiter: allowV4 and allowV6 allocate nothing once warm', () => {
  const clock = new ManualClock();
  const rl = new HandshakeRateLimiter(clock);
  const pkt = Buffer.alloc(16 * 64);
  new Prng(3).fill(pkt, 0, pkt.length);
  const run = (n: number) => {
    let ok = 0;
    for (let i = 0; i < n; i++) {
      if (rl.allowV4(0xc6120000 + (i & 1023))) ok++;
      if (rl.allowV6(pkt, (i & 63) * 16)) ok++;
    }
    return ok;
  };
  run(200_000); // warm up: let the optimizing compiler take the loops
  const perCall = bytesPerCall(run, 500_000);
  assert.ok(perCall < 0.05, `allowV4 + allowV6 allocate ${perCall.toFixed(3)} bytes per call`);
});
