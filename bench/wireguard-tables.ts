// Benchmark of the WireGuard per-packet tables: allowed-ips lookups (IPv4, IPv6) with 10k and
// 100k prefixes, replay-filter validation (in order and reordered), plus the index table and the
// handshake rate limiter. Prints operations per second; not a test (nothing is asserted).
// Run: npx tsc -p . && node dist/bench/wireguard-tables.js
import { AllowedIps } from '../src/wireguard/allowed-ips.js';
import { ReplayFilter } from '../src/wireguard/replay-filter.js';
import { IndexTable } from '../src/wireguard/index-table.js';
import { HandshakeRateLimiter } from '../src/wireguard/ratelimiter.js';
import { ManualClock } from '../src/wireguard/clock.js';
import { Prng } from '../src/wire/fuzz-harness.js';

const PROBES = 4096; // a power of two
const MIN_MS = 400;

/** Runs `batch(n)` with growing n until it takes MIN_MS; returns operations per second. */
function opsPerSecond(batch: (n: number) => number): number {
  batch(200_000); // warm up the optimizing compiler
  let n = 100_000;
  let sink = 0;
  for (;;) {
    const t0 = performance.now();
    sink += batch(n);
    const ms = performance.now() - t0;
    if (ms >= MIN_MS) {
      if (sink === -1) console.log(''); // keep the result alive
      return (n / ms) * 1000;
    }
    n *= ms > 0 ? Math.min(10, Math.ceil((MIN_MS * 1.2) / ms)) : 10;
  }
}

function fmt(ops: number): string {
  return ops >= 1e6 ? `${(ops / 1e6).toFixed(2)} M/s` : `${(ops / 1e3).toFixed(1)} k/s`;
}

function line(name: string, ops: number, extra = ''): void {
  console.log(`${name.padEnd(44)} ${fmt(ops).padStart(12)}${extra ? '  ' + extra : ''}`);
}

function benchAllowedIps(entries: number): void {
  const rng = new Prng(entries);
  const t = new AllowedIps<number>();
  const v4Keys = new Uint32Array(entries);
  const v6Keys = Buffer.alloc(16 * entries);
  rng.fill(v6Keys, 0, v6Keys.length);
  const t0 = performance.now();
  for (let i = 0; i < entries; i++) {
    v4Keys[i] = Math.floor(rng.next() * 2 ** 32);
    t.insert(4, v4Keys[i]!, 8 + rng.int(25), i);
  }
  const t1 = performance.now();
  for (let i = 0; i < entries; i++) t.insert(6, v6Keys.subarray(16 * i, 16 * i + 16), 16 + rng.int(113), i);
  const t2 = performance.now();
  console.log(`allowed-ips ${entries} entries: insert IPv4 ${(t1 - t0).toFixed(0)} ms, IPv6 ${(t2 - t1).toFixed(0)} ms (${t.size} prefixes)`);

  // Probes: half inside inserted prefixes (hits), half random (mostly misses).
  const p4 = new Uint32Array(PROBES);
  const p6 = Buffer.alloc(16 * PROBES);
  for (let i = 0; i < PROBES; i++) {
    if (i & 1) {
      p4[i] = Math.floor(rng.next() * 2 ** 32);
      rng.fill(p6, 16 * i, 16);
    } else {
      const k = rng.int(entries);
      p4[i] = v4Keys[k]!;
      v6Keys.copy(p6, 16 * i, 16 * k, 16 * k + 16);
    }
  }
  const mask = PROBES - 1;
  line(`  lookupV4 (${entries})`, opsPerSecond((n) => {
    let hits = 0;
    for (let i = 0; i < n; i++) if (t.lookupV4(p4[i & mask]!) !== undefined) hits++;
    return hits;
  }));
  line(`  lookupV6 (${entries})`, opsPerSecond((n) => {
    let hits = 0;
    for (let i = 0; i < n; i++) if (t.lookupV6(p6, (i & mask) * 16) !== undefined) hits++;
    return hits;
  }));
}

function benchReplay(): void {
  const f = new ReplayFilter();
  let counter = 0;
  line('replay validate, in order', opsPerSecond((n) => {
    let ok = 0;
    for (let i = 0; i < n; i++) { if (f.validate(counter >>> 0, Math.floor(counter / 2 ** 32))) ok++; counter++; }
    return ok;
  }));
  // Reordered: each group of 64 counters arrives in a shuffled order.
  const rng = new Prng(64);
  const order = new Uint32Array(4096);
  for (let g = 0; g < order.length; g += 64) {
    const idx = Array.from({ length: 64 }, (_, i) => i);
    for (let i = 63; i > 0; i--) { const j = rng.int(i + 1); [idx[i], idx[j]] = [idx[j]!, idx[i]!]; }
    for (let i = 0; i < 64; i++) order[g + i] = g + idx[i]!;
  }
  const g = new ReplayFilter();
  let base = 0;
  line('replay validate, reordered within 64', opsPerSecond((n) => {
    let ok = 0;
    for (let i = 0; i < n; i++) {
      const c = base + order[i & 4095]!;
      if (g.validate(c >>> 0, Math.floor(c / 2 ** 32))) ok++;
      if ((i & 4095) === 4095) base += 4096;
    }
    base += 4096 * 2; // never replay across batches
    return ok;
  }));
  const h = new ReplayFilter();
  let c2 = 0;
  line('replay validateNumber, in order', opsPerSecond((n) => {
    let ok = 0;
    for (let i = 0; i < n; i++) if (h.validateNumber(c2++)) ok++;
    return ok;
  }));
}

function benchIndexTable(): void {
  const t = new IndexTable<object>();
  const probes = new Uint32Array(PROBES);
  for (let i = 0; i < 2048; i++) probes[i] = t.newIndex({ i });
  for (let i = 2048; i < PROBES; i++) probes[i] = probes[i - 2048]!;
  line('index-table lookup (2048 live)', opsPerSecond((n) => {
    let hits = 0;
    for (let i = 0; i < n; i++) if (t.lookup(probes[i & (PROBES - 1)]!) !== undefined) hits++;
    return hits;
  }));
}

function benchRateLimiter(): void {
  const clock = new ManualClock();
  const rl = new HandshakeRateLimiter(clock);
  line('ratelimiter allowV4 (1024 sources)', opsPerSecond((n) => {
    let ok = 0;
    for (let i = 0; i < n; i++) {
      if (rl.allowV4(0xc6120000 + (i & 1023))) ok++;
      if ((i & 1023) === 1023) clock.advance(1);
    }
    return ok;
  }));
}

console.log(`wireguard tables benchmark (node ${process.version})`);
benchAllowedIps(10_000);
benchAllowedIps(100_000);
benchReplay();
benchIndexTable();
benchRateLimiter();
