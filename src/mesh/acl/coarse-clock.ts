// A monotonic millisecond clock that packet paths can read without allocating. performance.now()
// returns a fresh heap number on every call (16 bytes per packet in the filter's bench); this
// clock is a whole number of milliseconds refreshed by one shared, unref'd timer every
// COARSE_CLOCK_TICK_MS, so reading it costs a load. Good for timeouts of seconds (flow
// expiry); not for measuring anything. It advances only while the event loop turns.

export const COARSE_CLOCK_TICK_MS = 100;

let nowMs = Math.floor(performance.now());
let timer: NodeJS.Timeout | null = null;

function refresh(): void {
  nowMs = Math.floor(performance.now());
}

/** The shared coarse clock (`now()` in whole milliseconds; the timer starts on first use). */
export const coarseClock = {
  now(): number {
    if (timer === null) {
      timer = setInterval(refresh, COARSE_CLOCK_TICK_MS);
      timer.unref();
      refresh();
    }
    return nowMs;
  },
};
