// Per-packet cost of the data plane's ChaCha20-Poly1305: seal and open of 1420-byte packets (the
// WireGuard MTU's worth of plaintext) in place behind a 16-byte transport header, through
//   node:crypto     ChaChaPolyKey on the fallback path (a cipher object per packet)
//   native single   ChaChaPolyKey.seal / open on the addon (one call into C per packet)
//   native batch    ChaChaPolyKey.sealBatch / openBatch of 64 packets (one call per 64)
// Run: npm run bench:crypto   (or, after a build: node dist/bench/crypto.js [seconds-per-case])
//
// Opening in place turns a packet into plaintext, so each open case first restores the sealed
// bytes from a pristine copy (Uint8Array#set of the whole buffer, which allocates nothing); the
// "restore copy only" line is that cost alone, and the open lines also show their rate with it
// taken out.
//
// Allocation: the young generation's used bytes before and after a long loop, kept only when no
// GC ran in between (the method of bench/wire.ts); the cost of the measurement (an empty loop) is
// subtracted, and a calibration loop that allocates one Buffer view per packet must show > 0.

import { packetsPerSecond, measureAllocation, allocationText, fmt, finishMeasuring } from './measure.js';
import { randomBytes } from 'node:crypto';
import { ChaChaPolyKey, aeadNativeUnavailable, type AeadImplementation } from '../src/crypto/aead.js';

const PACKET_LEN = 1420;
const HEADER = 16;
const TAG = 16;
const BATCH = 64;
const BUF_SIZE = HEADER + PACKET_LEN + TAG;
const CHUNK = BATCH * 256;
const SECONDS = Number(process.argv[2] ?? '3');
const WARMUP_SECONDS = 1;
const ALLOC_PACKETS = 256_000;

interface Case { name: string; run: (n: number) => number; restores: boolean }

const key = randomBytes(32);
const bufs: Buffer[] = Array.from({ length: BATCH }, () => {
  const b = Buffer.alloc(BUF_SIZE);
  randomBytes(PACKET_LEN).copy(b, HEADER);
  return b;
});
const offsets = new Uint32Array(BATCH).fill(HEADER);
const plainLengths = new Uint32Array(BATCH).fill(PACKET_LEN);
const sealedLengths = new Uint32Array(BATCH).fill(PACKET_LEN + TAG);
const counterLo = new Uint32Array(BATCH);
const counterHi = new Uint32Array(BATCH);
/** Counters of the pristine packets (0..63), for the open cases. */
const openLo = new Uint32Array(BATCH).map((_, i) => i);
const ok = new Uint8Array(BATCH);
/** Sealed copies of bufs under counters 0..63 (same key), to restore before each open. */
const pristine: Buffer[] = [];
let counter = 0;
let sink = 0;

function sealCases(k: ChaChaPolyKey, label: string, batch: boolean): Case {
  if (batch) {
    return {
      name: `${label} sealBatch(${BATCH})`, restores: false,
      run(n) {
        for (let done = 0; done < n; done += BATCH) {
          for (let i = 0; i < BATCH; i++) counterLo[i] = counter++;
          sink += k.sealBatch(bufs, offsets, plainLengths, counterLo, counterHi, BATCH);
        }
        return n;
      },
    };
  }
  return {
    name: `${label} seal`, restores: false,
    run(n) {
      for (let i = 0; i < n; i++) sink += k.seal(counter++, bufs[i & (BATCH - 1)]!, HEADER, PACKET_LEN, bufs[i & (BATCH - 1)]!, HEADER);
      return n;
    },
  };
}

function openCases(k: ChaChaPolyKey, label: string, batch: boolean): Case {
  if (batch) {
    return {
      name: `${label} openBatch(${BATCH})`, restores: true,
      run(n) {
        for (let done = 0; done < n; done += BATCH) {
          for (let i = 0; i < BATCH; i++) bufs[i]!.set(pristine[i]!);
          if (k.openBatch(bufs, offsets, sealedLengths, openLo, counterHi, BATCH, ok) !== BATCH) throw new Error('open failed');
        }
        return n;
      },
    };
  }
  return {
    name: `${label} open`, restores: true,
    run(n) {
      for (let i = 0; i < n; i++) {
        const j = i & (BATCH - 1);
        const b = bufs[j]!;
        b.set(pristine[j]!);
        if (!k.open(j, b, HEADER, PACKET_LEN + TAG, b, HEADER)) throw new Error('open failed');
      }
      return n;
    },
  };
}

const restoreOnly: Case = {
  name: 'restore copy only (part of every open line)', restores: false,
  run(n) {
    for (let i = 0; i < n; i++) bufs[i & (BATCH - 1)]!.set(pristine[i & (BATCH - 1)]!);
    return n;
  },
};

async function main(): Promise<void> {
  const nativeWhy = aeadNativeUnavailable();
  const impls: [AeadImplementation, string][] = [['node:crypto', 'node:crypto']];
  if (!nativeWhy) impls.push(['native', 'native']);

  // Pristine sealed packets under counters 0..BATCH-1 (any implementation: the bytes are the same).
  const sealer = new ChaChaPolyKey(key, 'node:crypto');
  for (let i = 0; i < BATCH; i++) {
    const p = Buffer.from(bufs[i]!);
    sealer.seal(i, p, HEADER, PACKET_LEN, p, HEADER);
    pristine.push(p);
  }

  const cases: Case[] = [];
  for (const [impl, label] of impls) {
    const k = new ChaChaPolyKey(key, impl);
    cases.push(sealCases(k, label, false));
    if (impl === 'native') cases.push(sealCases(k, label, true));
  }
  for (const [impl, label] of impls) {
    const k = new ChaChaPolyKey(key, impl);
    cases.push(openCases(k, label, false));
    if (impl === 'native') cases.push(openCases(k, label, true));
  }
  // node:crypto batches loop over single calls; shown for completeness of the API.
  cases.push({ ...sealCases(new ChaChaPolyKey(key, 'node:crypto'), 'node:crypto', true), name: `node:crypto sealBatch(${BATCH}) (a loop of seal)` });

  console.log(`meshtun crypto bench: ChaCha20-Poly1305, ${PACKET_LEN}-byte packets in place; node ${process.version}, ` +
    `OpenSSL ${process.versions.openssl}; ${SECONDS} s per case after ${WARMUP_SECONDS} s warm-up`);
  if (nativeWhy) console.log(`native cases skipped: ${nativeWhy}`);

  const empty = (n: number) => { let a = 0; for (let i = 0; i < n; i++) a += i & 1; return a; };
  empty(ALLOC_PACKETS);
  const base = await measureAllocation(empty, ALLOC_PACKETS, BATCH);
  const overhead = base ? base.bytes : 0;
  const calibration = (n: number) => { let a = 0; for (let i = 0; i < n; i++) a += bufs[i & (BATCH - 1)]!.subarray(0, 20).length; return a; };
  calibration(10_000);
  console.log(`allocation measurement overhead (empty loop): ${fmt(overhead)} B per window, subtracted below`);
  console.log(`calibration (one Buffer.subarray per packet, must be > 0): ${await allocationText(calibration, ALLOC_PACKETS, overhead, BATCH)}`);
  console.log('');

  packetsPerSecond(restoreOnly.run, CHUNK, WARMUP_SECONDS);
  const restorePps = packetsPerSecond(restoreOnly.run, CHUNK, SECONDS);
  const restoreNs = 1e9 / restorePps;
  console.log(restoreOnly.name);
  console.log(`  ${fmt(restorePps)} copies/s, ${fmt(restoreNs, 1)} ns/packet`);
  for (const c of cases) {
    packetsPerSecond(c.run, CHUNK, WARMUP_SECONDS);
    const pps = packetsPerSecond(c.run, CHUNK, SECONDS);
    const gbit = (pps * PACKET_LEN * 8) / 1e9;
    console.log(c.name);
    let line = `  ${fmt(pps)} packets/s, ${fmt(1e9 / pps, 1)} ns/packet, ${fmt(gbit, 2)} Gbit/s of plaintext`;
    if (c.restores) {
      const netNs = 1e9 / pps - restoreNs;
      line += `; without the restore copy: ${fmt(1e9 / netNs)} packets/s, ${fmt((1e9 / netNs) * PACKET_LEN * 8 / 1e9, 2)} Gbit/s`;
    }
    console.log(line);
    console.log(`  ${await allocationText(c.run, ALLOC_PACKETS, overhead, BATCH)}`);
  }
  finishMeasuring();
  if (sink === -1) console.log(''); // keeps the results alive
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
