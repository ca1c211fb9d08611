import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ManualClock } from '../wireguard/index.js';
import { UserError } from '../util/index.js';
import { AuthLimiter, authSourceKey, AUTH_MAX_DELAY_MS, type AuthDecision } from './auth-limiter.js';

const ATTACKER = '198.18.0.66';
const JOINER = '198.18.0.7';

function refusedAfter(d: AuthDecision): number {
  assert.equal(d.allowed, false);
  return d.allowed ? -1 : d.retryAfterMs;
}

test('source keys ignore ports, fold IPv4-mapped IPv6 and group IPv6 by /64', () => {
  assert.equal(authSourceKey('198.18.0.1:5555'), '198.18.0.1');
  assert.equal(authSourceKey('198.18.0.1'), '198.18.0.1');
  assert.equal(authSourceKey('::ffff:198.18.0.1'), '198.18.0.1');
  assert.equal(authSourceKey('[::ffff:198.18.0.1]:80'), '198.18.0.1');
  assert.equal(authSourceKey('[2001:db8:1:2::5]:443'), authSourceKey('2001:db8:1:2:ffff::9'));
  assert.notEqual(authSourceKey('2001:db8:1:2::5'), authSourceKey('2001:db8:1:3::5'));
  assert.match(authSourceKey('not an address'), /^other:/);
});

test('50 wrong tokens from one address are refused with a growing retry-after', () => {
  const clock = new ManualClock();
  const lim = new AuthLimiter(clock);
  const waits: number[] = [];
  let checked = 0;
  for (let i = 0; i < 50; i++) {
    const d = lim.check(ATTACKER);
    if (d.allowed) {
      checked++;
      const wait = lim.recordFailure(ATTACKER, 'guess');
      if (i < 3) assert.equal(wait, 0, `failure ${i + 1} is free`);
      else waits.push(wait);
    } else {
      assert.equal(d.reason, 'source');
      waits.push(d.retryAfterMs);
    }
    clock.advance(10); // a fast attacker that ignores retry-after
  }
  // The first 3 are free, the 4th is checked and locks the source: the rest are refused unchecked.
  assert.equal(checked, 4);
  for (let i = 1; i < waits.length; i++) assert.ok(waits[i]! >= waits[i - 1]! - 10, `retry-after shrank at ${i}: ${waits}`);
  assert.ok(waits[0]! <= 1000);
  assert.equal(waits.at(-1), AUTH_MAX_DELAY_MS - 0);
  assert.equal(lim.stats().refusedSource, 46);
  assert.equal(lim.stats().lockedSources, 1);
});

test('an attacker who waits out every retry-after is slowed to about four guesses an hour', () => {
  const clock = new ManualClock();
  const lim = new AuthLimiter(clock);
  const perHour: number[] = [];
  for (let hour = 0; hour < 6; hour++) {
    let guesses = 0;
    const end = clock.now() + 3600_000;
    while (clock.now() < end) {
      const d = lim.check(ATTACKER);
      if (d.allowed) {
        guesses++;
        clock.advance(Math.max(lim.recordFailure(ATTACKER, 'guess'), 1));
      } else {
        clock.advance(d.retryAfterMs);
      }
    }
    perHour.push(guesses);
  }
  // First hour: 3 free, then 1 s, 2 s, 4 s ... up to 15 min. Then one guess per 15 minutes.
  assert.ok(perHour[0]! >= 12 && perHour[0]! <= 20, `per hour: ${perHour}`);
  for (const n of perHour.slice(1)) assert.ok(n <= 5, `per hour: ${perHour}`);
});

test('a valid join from another address succeeds during a single-source attack', () => {
  const clock = new ManualClock();
  const lim = new AuthLimiter(clock);
  for (let i = 0; i < 50; i++) {
    if (lim.check(ATTACKER).allowed) lim.recordFailure(ATTACKER, 'guess');
    clock.advance(5);
  }
  assert.equal(lim.check(ATTACKER).allowed, false);
  assert.deepEqual(lim.check(JOINER), { allowed: true });
  lim.recordSuccess(JOINER);
  assert.equal(lim.score(JOINER), 0);
});

test('typos count lightly: a user who mistypes gets many more tries', () => {
  const clock = new ManualClock();
  const lim = new AuthLimiter(clock);
  for (let i = 0; i < 12; i++) {
    assert.equal(lim.check(JOINER).allowed, true, `typo ${i + 1}`);
    assert.equal(lim.recordFailure(JOINER, 'typo'), 0);
  }
  assert.equal(lim.score(JOINER), 3);
  // The 13th typo crosses the free allowance and earns a short wait (under a second).
  const w = lim.recordFailure(JOINER, 'typo');
  assert.ok(w > 0 && w < 1000, String(w));
  // A stale (expired/revoked) token weighs the same as a typo.
  const lim2 = new AuthLimiter(clock);
  for (let i = 0; i < 4; i++) lim2.recordFailure(JOINER, 'stale');
  assert.equal(lim2.score(JOINER), 1);
});

test('failures are forgiven over time (one point per 15 minutes)', () => {
  const clock = new ManualClock();
  const lim = new AuthLimiter(clock);
  for (let i = 0; i < 8; i++) {
    assert.equal(lim.check(ATTACKER).allowed, true);
    clock.advance(lim.recordFailure(ATTACKER, 'guess'));
  }
  assert.ok(lim.score(ATTACKER) > 7.9);
  clock.advance(2 * 3600_000);
  assert.ok(lim.score(ATTACKER) < 0.1);
  assert.equal(lim.check(ATTACKER).allowed, true);
  assert.equal(lim.recordFailure(ATTACKER, 'guess'), 0);
  clock.advance(24 * 3600_000);
  lim.sweep();
  assert.equal(lim.stats().trackedSources, 0);
});

test('a distributed attack engages the global limit, which still admits clean sources slowly', () => {
  const clock = new ManualClock();
  const lim = new AuthLimiter(clock, { globalBurst: 100, globalPerSecond: 2, cleanBurst: 5, cleanPerSecond: 1 });
  // 40 addresses, 3 free guesses each, all at once: 120 failures drain the global bucket.
  for (let a = 0; a < 40; a++) for (let i = 0; i < 3; i++) lim.recordFailure(`198.18.1.${a}`, 'guess');
  assert.ok(lim.stats().globalTokens < 1);
  // An address that failed before is refused by the global limit, with a retry-after.
  const dirty = lim.check('198.18.1.0');
  assert.equal(dirty.allowed, false);
  assert.equal(!dirty.allowed && dirty.reason, 'global');
  assert.ok(refusedAfter(dirty) > 0);
  // A clean address (the legitimate joiner) gets in through the small clean bucket.
  assert.deepEqual(lim.check(JOINER), { allowed: true });
  lim.recordSuccess(JOINER);
  // More fresh addresses (the attack continuing) share that bucket: 4 more, then a wait.
  for (let i = 0; i < 4; i++) assert.equal(lim.check(`198.18.2.${i}`).allowed, true);
  const wait = refusedAfter(lim.check('198.18.2.99'));
  assert.ok(wait > 0 && wait <= 1000, String(wait));
  clock.advance(wait);
  assert.equal(lim.check('198.18.2.99').allowed, true);
  // When the attack stops the bucket refills and everyone is back to normal.
  clock.advance(60_000);
  assert.equal(lim.check('198.18.2.100').allowed, true);
  assert.ok(lim.stats().refusedGlobal >= 2);
});

test('memory stays bounded: beyond maxSources, new sources only charge the global bucket', () => {
  const clock = new ManualClock();
  const lim = new AuthLimiter(clock, { maxSources: 10, globalBurst: 1000 });
  for (let i = 0; i < 50; i++) lim.recordFailure(`198.18.3.${i}`, 'guess');
  assert.equal(lim.stats().trackedSources, 10);
  assert.equal(lim.recordFailure('198.18.4.1', 'guess'), 0);
  assert.equal(lim.stats().failures.guess, 51);
});

test('options are checked', () => {
  assert.throws(() => new AuthLimiter(new ManualClock(), { baseDelayMs: 0 }), UserError);
  assert.throws(() => new AuthLimiter(new ManualClock(), { freeFailures: -1 }), /freeFailures must be 0 or more/);
});

test('during a continuing attack from fresh addresses, a joiner honouring retry-after gets in', () => {
  // The attacker's timing is jittered (a seeded generator): an attacker aligned to the refill period
  // to the millisecond could always come first (the clean bucket is first come, first served).
  let seed = 12345;
  const jitter = (): number => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    return 1 + ((seed >>> 16) % 99);
  };
  for (const arrival of [30_000, 30_001, 30_037, 30_050, 41_999, 55_525]) {
    const clock = new ManualClock();
    const lim = new AuthLimiter(clock);
    let attackerIndex = 0;
    let nextAttack = 0;
    let joinerAt = arrival;
    let joinedAt = -1;
    let joinerTries = 0;
    while (clock.now() < 120_000 && joinedAt < 0) {
      const next = Math.min(nextAttack, joinerAt);
      clock.advance(next - clock.now());
      if (next === nextAttack) {
        // Guesses from a new address each time, each wrong.
        const src = `198.18.${8 + (attackerIndex >> 8)}.${attackerIndex & 255}`;
        attackerIndex++;
        if (lim.check(src).allowed) lim.recordFailure(src, 'guess');
        nextAttack += jitter(); // 20 per second on average
      } else {
        joinerTries++;
        const d = lim.check(JOINER);
        if (d.allowed) joinedAt = clock.now();
        else joinerAt = clock.now() + d.retryAfterMs;
      }
    }
    const st = lim.stats();
    assert.ok(st.refusedGlobal > st.allowed, `the attack is being limited: ${JSON.stringify(st)}`);
    assert.ok(joinedAt > 0, 'the joiner got in');
    assert.ok(joinedAt - arrival <= 2000 && joinerTries <= 4, `joined after ${joinedAt - arrival} ms, ${joinerTries} tries`);
  }
});

test('sessions are charged: about 60 for unknown keys, or 300 for members, before a source is locked out', () => {
  const clock = new ManualClock();
  const lim = new AuthLimiter(clock);
  const untilLocked = (address: string, member: boolean): number => {
    for (let n = 1; n < 1000; n++) {
      assert.equal(lim.check(address).allowed, true);
      if (lim.recordSession(address, member) > 0) return n;
    }
    return -1;
  };
  const unknown = untilLocked('198.18.0.30', false);
  assert.ok(unknown >= 60 && unknown <= 62, `unknown keys: locked after ${unknown}`);
  const members = untilLocked('198.18.0.31', true);
  assert.ok(members >= 300 && members <= 302, `members: locked after ${members}`);
  assert.equal(lim.check('198.18.0.30').allowed, false);
  assert.equal(lim.check(JOINER).allowed, true, 'other sources are not affected');
  // Sessions are no failures: the global bucket (distributed guessing) is untouched.
  assert.equal(lim.stats().globalTokens, 100);
  assert.equal(lim.stats().sessionCharges, unknown);
  assert.equal(lim.stats().memberSessionCharges, members);
  assert.equal(lim.stats().failures.guess, 0);
});
