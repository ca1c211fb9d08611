// Shared measuring for the benches: packets per second of a loop, and bytes allocated per packet
// (growth of V8's young generation across a window in which no garbage collection ran, watched
// with a `gc` PerformanceObserver; Node 20 has no total-allocated-bytes counter).

import { PerformanceObserver } from 'node:perf_hooks';
import { getHeapSpaceStatistics } from 'node:v8';

/** Accumulates results so the optimizer cannot drop the measured work. */
let sink = 0;

const gcStarts: number[] = [];
const gcObserver = new PerformanceObserver((list) => {
  for (const e of list.getEntries()) gcStarts.push(e.startTime);
});
gcObserver.observe({ entryTypes: ['gc'] });

/** Runs `run(chunk)` repeatedly for `seconds`; returns packets per second. */
export function packetsPerSecond(run: (n: number) => number, chunk: number, seconds: number): number {
  const limit = BigInt(Math.round(seconds * 1e9));
  const t0 = process.hrtime.bigint();
  let n = 0;
  let elapsed = 0n;
  while (elapsed < limit) {
    sink += run(chunk);
    n += chunk;
    elapsed = process.hrtime.bigint() - t0;
  }
  return n / (Number(elapsed) / 1e9);
}

function youngUsed(): number {
  let used = 0;
  for (const s of getHeapSpaceStatistics()) {
    if (s.space_name === 'new_space' || s.space_name === 'new_large_object_space') used += s.space_used_size;
  }
  return used;
}

const settle = () => new Promise<void>((resolve) => setTimeout(resolve, 20));

export interface Allocation { bytes: number; packets: number }

/** Young-generation bytes allocated by `run(n)` in a window with no GC (n shrinks by 4 on each
 * retry, staying a multiple of `step`), or null if every try saw a GC. */
export async function measureAllocation(run: (n: number) => number, packets: number, step = 1): Promise<Allocation | null> {
  for (let n = packets; n >= (step > 1 ? step * 4 : 1000); n = Math.floor(n / 4 / step) * step) {
    await settle();
    const t0 = performance.now();
    const before = youngUsed();
    sink += run(n);
    const after = youngUsed();
    const t1 = performance.now();
    await settle(); // let the observer receive GC entries
    if (!gcStarts.some((t) => t >= t0 - 1 && t <= t1 + 1)) return { bytes: after - before, packets: n };
  }
  return null;
}

export function fmt(n: number, digits = 0): string {
  return n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });
}

/** "N B/packet allocated (...)" for `run`, less `overhead` bytes (an empty loop's growth). */
export async function allocationText(run: (n: number) => number, packets: number, overhead: number, step = 1): Promise<string> {
  const a = await measureAllocation(run, packets, step);
  if (!a) return 'allocation: not measured (a GC ran in every window)';
  const perPacket = Math.max(0, a.bytes - overhead) / a.packets;
  return `${fmt(perPacket, perPacket < 1 ? 3 : 1)} B/packet allocated ` +
    `(young generation grew ${fmt(a.bytes)} B over ${fmt(a.packets)} packets with no GC; empty loop: ${fmt(overhead)} B)`;
}

/** Stops watching GCs (lets the process exit) and keeps the results alive. */
export function finishMeasuring(): void {
  gcObserver.disconnect();
  if (sink === -1) console.log('');
}
