// The index table: maps the 32-bit local session indices we hand out in handshake messages
// (sender_index) to whatever owns them (a handshake in progress, then the keypair made from it),
// so that incoming responses, cookie replies and transport messages, which carry our index as
// receiver_index, find their state in one lookup. Like wireguard-go's indextable.go.
//
// Indices are random (from node:crypto, drawn from a pre-filled pool) so they reveal nothing
// and cannot be guessed, unique among live entries, and never 0 (0 marks an empty slot and
// is never a valid index here). The table is open addressing with linear probing over a
// Uint32Array of keys and backward-shift deletion, so `lookup` allocates nothing whatever the
// number it is given (indices above 2^30 are not small integers in V8, so a Map would box them).
import { randomFillSync } from 'node:crypto';

/** A source of uniformly random uint32 values. */
export type RandomUint32 = () => number;

/** Random uint32 values from node:crypto, fetched 256 at a time. */
export function cryptoRandomUint32(): RandomUint32 {
  const pool = new Uint32Array(256);
  let next = pool.length;
  return () => {
    if (next === pool.length) {
      randomFillSync(pool);
      next = 0;
    }
    return pool[next++]!;
  };
}

const INITIAL_CAPACITY = 64;
/** Draws before giving up on finding a free index (only a broken random source gets there). */
const MAX_DRAWS = 1000;
const EMPTY = 0;

/** Local session index -> owner. */
export class IndexTable<T> {
  private keys = new Uint32Array(INITIAL_CAPACITY);
  private values: (T | undefined)[] = new Array<T | undefined>(INITIAL_CAPACITY).fill(undefined);
  private mask = INITIAL_CAPACITY - 1;
  private count = 0;

  constructor(private readonly random: RandomUint32 = cryptoRandomUint32()) {}

  /** Number of live indices. */
  get size(): number { return this.count; }

  /** Picks a fresh random index (non-zero, not in use), maps it to `owner` and returns it. */
  newIndex(owner: T): number {
    for (let draw = 0; draw < MAX_DRAWS; draw++) {
      const index = this.random() >>> 0;
      if (index === EMPTY || this.find(index) >= 0) continue;
      this.put(index, owner);
      return index;
    }
    throw new Error(`index table: no free index after ${MAX_DRAWS} random draws (is the random source broken?)`);
  }

  /** The owner of `index`, or undefined (also for 0 and non-uint32 numbers). Allocates nothing. */
  lookup(index: number): T | undefined {
    const i = this.find(index);
    return i < 0 ? undefined : this.values[i];
  }

  has(index: number): boolean {
    return this.find(index) >= 0;
  }

  /** Gives a live index a new owner (a completed handshake becomes a keypair under the same
   * index). Returns false, changing nothing, when the index is not live. */
  replace(index: number, owner: T): boolean {
    const i = this.find(index);
    if (i < 0) return false;
    this.values[i] = owner;
    return true;
  }

  /** Frees `index`. With `owner` given, frees it only while it still maps to that owner, so a
   * late cleanup cannot free an index that was handed on. Returns whether it was freed. */
  remove(index: number, owner?: T): boolean {
    const i = this.find(index);
    if (i < 0) return false;
    if (owner !== undefined && this.values[i] !== owner) return false;
    this.deleteSlot(i);
    return true;
  }

  /** Frees every index. */
  clear(): void {
    this.keys = new Uint32Array(INITIAL_CAPACITY);
    this.values = new Array<T | undefined>(INITIAL_CAPACITY).fill(undefined);
    this.mask = INITIAL_CAPACITY - 1;
    this.count = 0;
  }

  /** The slot holding `index`, or -1. */
  private find(index: number): number {
    if (index === EMPTY || index !== index >>> 0) return -1;
    const keys = this.keys;
    const mask = this.mask;
    // Indices are random, so their low bits already spread them evenly.
    let i = index & mask;
    for (;;) {
      const k = keys[i]!;
      if (k === index) return i;
      if (k === EMPTY) return -1;
      i = (i + 1) & mask;
    }
  }

  private put(index: number, owner: T): void {
    if ((this.count + 1) * 2 > this.keys.length) this.grow();
    const mask = this.mask;
    let i = index & mask;
    while (this.keys[i] !== EMPTY) i = (i + 1) & mask;
    this.keys[i] = index;
    this.values[i] = owner;
    this.count++;
  }

  private grow(): void {
    const oldKeys = this.keys;
    const oldValues = this.values;
    const capacity = oldKeys.length * 2;
    this.keys = new Uint32Array(capacity);
    this.values = new Array<T | undefined>(capacity).fill(undefined);
    this.mask = capacity - 1;
    for (let j = 0; j < oldKeys.length; j++) {
      const k = oldKeys[j]!;
      if (k === EMPTY) continue;
      let i = k & this.mask;
      while (this.keys[i] !== EMPTY) i = (i + 1) & this.mask;
      this.keys[i] = k;
      this.values[i] = oldValues[j];
    }
  }

  /** Empties slot `hole` and shifts later members of its probe run back, so no tombstones. */
  private deleteSlot(hole: number): void {
    const keys = this.keys;
    const values = this.values;
    const mask = this.mask;
    keys[hole] = EMPTY;
    values[hole] = undefined;
    this.count--;
    let j = hole;
    for (;;) {
      j = (j + 1) & mask;
      const k = keys[j]!;
      if (k === EMPTY) return;
      const home = k & mask;
      // Entry j may move into the hole unless its home lies cyclically in (hole, j].
      const homeInRun = hole <= j ? home > hole && home <= j : home > hole || home <= j;
      if (homeInRun) continue;
      keys[hole] = k;
      values[hole] = values[j];
      keys[j] = EMPTY;
      values[j] = undefined;
      hole = j;
    }
  }
}
