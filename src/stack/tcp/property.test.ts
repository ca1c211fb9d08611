// THE property test: two TcpLayers over a lossy, reordering, duplicating, delaying memory link
// (seeded), thousands of random scenarios. In every one both byte streams must arrive complete
// and in order, both sides must see the other's FIN ('end') and close without error, and both
// layers must end with no connections (TIME_WAIT expired).
// Scenarios: 2000 by default, times MESHTUN_FUZZ_SCALE. MESHTUN_TCP_SEED=<n> replays one scenario.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Prng, fuzzIterations } from '../../wire/fuzz-harness.js';
import { TCP_STATE_NAMES, type TcpLimits } from './constants.js';
import { makePair } from './test-pair.js';
import { runUntil } from './sim-link.js';
import type { TcpSocket } from './socket.js';

const MTUS_V4 = [576, 1006, 1280, 1420, 1500, 4352, 9000];
const MTUS_V6 = [1280, 1420, 1500, 9000];
const BUFFERS = [4096, 16384, 65536, 262144, 1 << 20];
const MAX_SIZE = 200 * 1024;
const SIM_LIMIT_MS = 3_600_000;

function pick<T>(rng: Prng, xs: readonly T[]): T {
  return xs[rng.int(xs.length)]!;
}

function randomLimits(rng: Prng): Partial<TcpLimits> {
  return {
    sendBufferSize: pick(rng, BUFFERS),
    receiveBufferSize: pick(rng, BUFFERS),
    maxOutOfOrderRanges: pick(rng, [1, 3, 8, 32]),
    maxOutOfOrderBytes: pick(rng, [0, 8192, 1 << 20]),
    sack: rng.next() < 0.8,
    timestamps: rng.next() < 0.7,
    windowScaling: rng.next() < 0.85,
    delayedAckMs: pick(rng, [0, 40, 200]),
    // Long runs of losses are part of the test; do not let the retry limits end them.
    synRetries: 30,
    synAckRetries: 30,
    maxRetransmits: 40,
    maxRtoMs: 8000,
    timeWaitMs: 500,
    finWait2TimeoutMs: 600_000,
  };
}

function randomSize(rng: Prng): number {
  const r = rng.next();
  if (r < 0.05) return 0;
  if (r < 0.15) return 1 + rng.int(100);
  return rng.int(MAX_SIZE + 1);
}

/** Writes `data` in random chunks, waiting for 'drain' when write() says so, then ends. */
function writeAll(sock: TcpSocket, data: Buffer, rng: Prng): void {
  let at = 0;
  const step = (): void => {
    while (at < data.length) {
      const n = Math.min(data.length - at, 1 + rng.int(rng.next() < 0.5 ? 2000 : 65536));
      const ok = sock.write(data.subarray(at, at + n));
      at += n;
      if (!ok) {
        sock.once('drain', step);
        return;
      }
    }
    sock.end();
  };
  step();
}

interface Side {
  got: Buffer[];
  ended: boolean;
  closed: boolean;
  error: Error | null;
}

/** Reads everything, sometimes pausing (so the receive window fills and closes). */
function readAll(sock: TcpSocket, side: Side, rng: Prng, pause: number, setTimer: (fn: () => void, ms: number) => void): void {
  sock.on('data', (d: Buffer) => {
    side.got.push(d);
    if (rng.next() < pause) {
      sock.pause();
      setTimer(() => sock.resume(), rng.next() * 400);
    }
  });
  sock.on('end', () => { side.ended = true; });
  sock.on('close', () => { side.closed = true; });
  sock.on('error', (e: Error) => { side.error = e; });
}

interface Outcome {
  failure: string | null;
  bytes: number;
  retransmittedBytes: number;
  simMs: number;
}

async function scenario(seed: number): Promise<Outcome> {
  const rng = new Prng(seed);
  const family = rng.next() < 0.3 ? 6 : 4;
  const cond = {
    mtu: pick(rng, family === 4 ? MTUS_V4 : MTUS_V6),
    loss: rng.next() < 0.15 ? 0 : rng.next() * 0.2,
    duplicate: rng.next() < 0.5 ? 0 : rng.next() * 0.05,
    reorder: rng.next() < 0.4 ? 0 : rng.next() * 0.3,
    reorderMs: rng.next() * 30,
    delayMs: rng.next() * 20,
    jitterMs: rng.next() * 5,
  };
  const clientLimits = randomLimits(rng);
  const serverLimits = randomLimits(rng);
  const p = makePair({ seed, family, cond, clientLimits, serverLimits });
  const up = Buffer.alloc(randomSize(rng));
  const down = Buffer.alloc(randomSize(rng));
  rng.fill(up, 0, up.length);
  rng.fill(down, 0, down.length);
  const pauseC = rng.next() < 0.5 ? 0 : rng.next() * 0.1;
  const pauseS = rng.next() < 0.5 ? 0 : rng.next() * 0.1;
  const noDelay = rng.next() < 0.3;
  const setTimer = (fn: () => void, ms: number): void => { p.clock.setTimer(fn, ms); };

  const cs: Side = { got: [], ended: false, closed: false, error: null };
  const ss: Side = { got: [], ended: false, closed: false, error: null };
  let accepted = 0;
  p.server.listen(family, null, 443, { allowHalfOpen: true }).on('connection', (s: TcpSocket) => {
    accepted++;
    s.setNoDelay(noDelay);
    readAll(s, ss, rng, pauseS, setTimer);
    writeAll(s, down, rng);

  });
  const c = p.client.connect({ family, localAddr: p.clientAddr, remoteAddr: p.serverAddr, remotePort: 443, allowHalfOpen: true, noDelay });
  readAll(c, cs, rng, pauseC, setTimer);
  writeAll(c, up, rng);

  const done = (): boolean => cs.error !== null || ss.error !== null ||
    (cs.closed && ss.closed && p.client.connectionCount === 0 && p.server.connectionCount === 0);
  const finished = await runUntil(p.link, done, SIM_LIMIT_MS);
  const upGot = Buffer.concat(ss.got);
  const downGot = Buffer.concat(cs.got);
  const problems: string[] = [];
  if (!finished) problems.push('did not finish');
  if (cs.error) problems.push(`client error ${cs.error.message}`);
  if (ss.error) problems.push(`server error ${ss.error.message}`);
  if (accepted !== 1) problems.push(`${accepted} connections accepted`);
  if (!upGot.equals(up)) problems.push(`client->server stream differs (${upGot.length}/${up.length} bytes)`);
  if (!downGot.equals(down)) problems.push(`server->client stream differs (${downGot.length}/${down.length} bytes)`);
  if (!cs.ended || !ss.ended) problems.push(`end seen: client ${cs.ended}, server ${ss.ended}`);
  if (p.client.connectionCount !== 0 || p.server.connectionCount !== 0) {
    problems.push(`connections left: client ${p.client.connectionCount}, server ${p.server.connectionCount}`);
  }
  const outcome: Outcome = {
    failure: null,
    bytes: up.length + down.length,
    retransmittedBytes: p.client.counters.retransmittedBytes + p.server.counters.retransmittedBytes,
    simMs: p.clock.now(),
  };
  if (process.env.MESHTUN_TCP_STATS) {
    console.log(`seed ${seed} loss ${cond.loss.toFixed(3)} sack ${clientLimits.sack && serverLimits.sack} bytes ${outcome.bytes} rtx ${outcome.retransmittedBytes} sim ${outcome.simMs.toFixed(0)} ms ` +
      `reorder ${cond.reorder.toFixed(2)} dup ${cond.duplicate.toFixed(2)} ooo ${clientLimits.maxOutOfOrderBytes}/${serverLimits.maxOutOfOrderBytes}`);
  }
  const describe = (): string => `seed ${seed} (replay: MESHTUN_TCP_SEED=${seed}): ${problems.join('; ')}\n` +
    `  family ${family}, link ${JSON.stringify(cond)}, sizes up ${up.length} down ${down.length}, noDelay ${noDelay}\n` +
    `  client limits ${JSON.stringify(clientLimits)}\n  server limits ${JSON.stringify(serverLimits)}\n` +
    `  client socket ${TCP_STATE_NAMES[c.tcpState]}, sim time ${p.clock.now().toFixed(0)} ms\n` +
    `  client counters ${JSON.stringify(p.client.counters)}\n  server counters ${JSON.stringify(p.server.counters)}`;
  if (process.env.MESHTUN_TCP_STATS === '2') console.log(describe());
  if (problems.length > 0) outcome.failure = describe();
  return outcome;
}

test('property: streams arrive complete and in order both ways over a bad link, both sides close', async (t) => {
  const replay = process.env.MESHTUN_TCP_SEED;
  const seeds: number[] = [];
  if (replay !== undefined) seeds.push(Number(replay));
  else {
    const n = fuzzIterations(2000);
    for (let i = 0; i < n; i++) seeds.push((0x7c0de + i * 7919) >>> 0);
  }
  let bytes = 0;
  let rtx = 0;
  let simMs = 0;
  for (const seed of seeds) {
    const o = await scenario(seed);
    if (o.failure !== null) assert.fail(o.failure);
    bytes += o.bytes;
    rtx += o.retransmittedBytes;
    simMs += o.simMs;
  }
  t.diagnostic(`${seeds.length} scenarios passed: ${(bytes / 1e6).toFixed(1)} MB delivered, ` +
    `${(rtx / 1e6).toFixed(1)} MB retransmitted, ${(simMs / 1000).toFixed(0)} s simulated`);
});
