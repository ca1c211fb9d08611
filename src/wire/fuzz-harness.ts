// A seeded mutation fuzzer for parsers, used by the *.test.ts files of every layer that parses
// network bytes. For each input it checks three things:
//   1. the parser never throws (an out-of-range Buffer read throws RangeError, so reading past the
//      end of an exactly-sized buffer is caught too);
//   2. it returns (a hang shows up as the test's timeout);
//   3. it never reads past the `len` it was given: the same bytes placed inside a larger buffer
//      with random bytes after them must give the same digest.
// Not part of the public API (not exported from index.ts).

import { readFileSync } from 'node:fs';

/** A small fast PRNG (mulberry32), so a failure can be replayed from its seed. */
export class Prng {
  private s: number;
  constructor(seed: number) { this.s = seed >>> 0; }
  next(): number {
    let t = (this.s = (this.s + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  int(n: number): number { return Math.floor(this.next() * n); }
  fill(buf: Uint8Array, off: number, len: number): void {
    for (let i = 0; i < len; i++) buf[off + i] = this.int(256);
  }
}

const INTERESTING = [0x00, 0x01, 0x02, 0x04, 0x05, 0x06, 0x08, 0x11, 0x20, 0x3a, 0x40, 0x45, 0x60, 0x7f, 0x80, 0xfe, 0xff];

/** Writes a mutation of `seed` into `out` and returns its length (at most out.length). */
export function mutate(rng: Prng, seed: Uint8Array, out: Uint8Array): number {
  const max = out.length;
  const mode = rng.int(10);
  if (mode === 0 || seed.length === 0) {
    const n = rng.int(Math.min(max, 1600));
    rng.fill(out, 0, n);
    return n;
  }
  let n = Math.min(seed.length, max);
  out.set(seed.subarray(0, n), 0);
  const edits = 1 + rng.int(mode < 5 ? 2 : 8);
  for (let e = 0; e < edits; e++) {
    const kind = rng.int(7);
    if (n === 0) break;
    const at = rng.int(n);
    switch (kind) {
      case 0: out[at] = out[at]! ^ (1 << rng.int(8)); break; // bit flip
      case 1: out[at] = INTERESTING[rng.int(INTERESTING.length)]!; break;
      case 2: out[at] = rng.int(256); break;
      case 3: n = rng.int(n + 1); break; // truncate
      case 4: { // extend with random bytes
        const extra = Math.min(max - n, rng.int(64));
        rng.fill(out, n, extra);
        n += extra;
        break;
      }
      case 5: { // 16-bit interesting value (lengths, ports)
        if (at + 1 < n) {
          const v = [0, 1, 0x7fff, 0x8000, 0xffff, n, n - 1, n + 1][rng.int(8)]! & 0xffff;
          out[at] = v >>> 8; out[at + 1] = v & 255;
        }
        break;
      }
      case 6: { // duplicate a chunk
        const len = Math.min(rng.int(32), n - at, max - n);
        out.copyWithin(n, at, at + len);
        n += len;
        break;
      }
    }
  }
  return n;
}

export type Digest = string | number | boolean | null | undefined;

export interface FuzzOptions {
  iterations?: number;
  seed?: number;
  maxLen?: number;
}

/** Iterations per parser: MESHTUN_FUZZ_SCALE multiplies the default (e.g. 10 for a long run). */
export function fuzzIterations(base: number): number {
  const scale = Number(process.env.MESHTUN_FUZZ_SCALE ?? '1');
  return Math.max(1, Math.floor(base * (Number.isFinite(scale) && scale > 0 ? scale : 1)));
}

/** Fuzzes `parse(buf, off, len)`; throws an Error describing the first failing input. Returns the
 * number of inputs tried. */
export function fuzzParser(
  seeds: readonly Uint8Array[],
  parse: (buf: Buffer, off: number, len: number) => Digest,
  opts: FuzzOptions = {},
): number {
  const iterations = opts.iterations ?? fuzzIterations(250_000);
  const seed = opts.seed ?? 0x5eed;
  const maxLen = opts.maxLen ?? 2048;
  const rng = new Prng(seed);
  const scratch = Buffer.alloc(maxLen);
  const padded = Buffer.alloc(maxLen + 128);
  const exactBySize: Buffer[] = [];
  for (let i = 0; i < iterations; i++) {
    const s = seeds.length ? seeds[rng.int(seeds.length)]! : new Uint8Array(0);
    const n = mutate(rng, s, scratch);
    // Exactly sized buffer (cached per size) so any read past the end throws.
    let exact = exactBySize[n];
    if (!exact) exact = exactBySize[n] = Buffer.alloc(n);
    scratch.copy(exact, 0, 0, n);
    let d1: Digest;
    let d2: Digest;
    const at = rng.int(64);
    try {
      d1 = parse(exact, 0, n);
      padded.fill(0);
      scratch.copy(padded, at, 0, n);
      rng.fill(padded, at + n, 64);
      d2 = parse(padded, at, n);
    } catch (err) {
      throw new Error(`parser threw on input #${i} (seed ${seed}) ${scratch.subarray(0, n).toString('hex')}: ${(err as Error).stack}`);
    }
    if (d1 !== d2) {
      throw new Error(`parser read past its length on input #${i} (seed ${seed}) ${scratch.subarray(0, n).toString('hex')}: ${String(d1)} vs ${String(d2)}`);
    }
  }
  return iterations;
}

/** Reads a testdata hex file: one packet per line as hex, '#' starts a comment; blank lines
 * skipped. Each packet's name is the last comment line before it. */
export function readHexPackets(path: string): { name: string; bytes: Buffer }[] {
  const out: { name: string; bytes: Buffer }[] = [];
  let name = '';
  for (const raw of readFileSync(path, 'utf8').split('\n')) {
    const line = raw.trim();
    if (!line) continue;
    if (line.startsWith('#')) { name = line.slice(1).trim(); continue; }
    out.push({ name, bytes: Buffer.from(line.replace(/\s+/g, ''), 'hex') });
  }
  return out;
}
