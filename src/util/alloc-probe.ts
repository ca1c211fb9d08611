// Allocation checks for hot paths (tests only): how many heap bytes one call of `run` allocates,
// measured so that the result is the code's and not the collector's. A full GC runs before each
// round (gc() made available through v8 flags at run time, so no command-line flag is needed);
// the heap is read right before and after `calls` calls with no await in between; the smallest of
// several rounds counts (a GC of unrelated garbage during a round only lowers its number, and a
// lazy allocation by the VM, such as compiling a function, raises one round, not all). The caller
// asserts a bound per call, e.g. < 0.05 bytes: one 16-byte object per call would show as 16.
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

let gcFn: (() => void) | null = null;

/** The VM's full garbage collection (exposed on first use). */
export function fullGc(): void {
  if (gcFn === null) {
    setFlagsFromString('--expose-gc');
    gcFn = runInNewContext('gc') as () => void;
  }
  gcFn();
}

/** Heap bytes allocated per call of `run(calls)` divided by `calls` (the least of `rounds` rounds). */
export function bytesPerCall(run: (calls: number) => unknown, calls: number, rounds = 5): number {
  let best = Infinity;
  for (let r = 0; r < rounds; r++) {
    fullGc();
    fullGc();
    const before = process.memoryUsage().heapUsed;
    run(calls);
    const after = process.memoryUsage().heapUsed;
    best = Math.min(best, Math.max(0, after - before) / calls);
  }
  return best;
}
