import { test } from 'node:test';
import assert from 'node:assert/strict';
import { bytesPerCall } from '../util/alloc-probe.js';
import { AllowedIps, parseCidr, formatCidr, type Cidr, type IpFamily } from './allowed-ips.js';
import { UserError } from '../util/index.js';
import { parseIpv4Address, parseIpv6Address, formatIpv6Address } from '../wire/index.js';
import { Prng, fuzzIterations } from '../wire/fuzz-harness.js';

const v4 = (s: string) => parseIpv4Address(s)!;
const v6 = (s: string) => { const b = new Uint8Array(16); assert.ok(parseIpv6Address(s, b, 0), s); return b; };

/** Adds "a.b.c.d/n" or "x::/n" to the table. */
function add<T>(t: AllowedIps<T>, text: string, peer: T): void {
  t.insertCidr(parseCidr(text), peer);
}
function look<T>(t: AllowedIps<T>, addr: string): T | undefined {
  if (addr.includes(':')) return t.lookupV6(v6(addr), 0);
  return t.lookupV4(v4(addr));
}
const shown = <T>(t: AllowedIps<T>, peer: T) => t.entriesForPeer(peer).map((e) => `${e.address}/${e.prefixLen}`);

test('allowed-ips: IPv4 longest prefix wins', () => {
  const t = new AllowedIps<string>();
  add(t, '0.0.0.0/0', 'default');
  add(t, '10.0.0.0/8', 'a');
  add(t, '10.1.0.0/16', 'b');
  add(t, '10.1.2.0/24', 'c');
  add(t, '10.1.2.3/32', 'd');
  add(t, '100.64.0.0/10', 'e');
  assert.equal(t.size, 6);
  assert.equal(look(t, '10.1.2.3'), 'd');
  assert.equal(look(t, '10.1.2.4'), 'c');
  assert.equal(look(t, '10.1.3.4'), 'b');
  assert.equal(look(t, '10.2.0.1'), 'a');
  assert.equal(look(t, '11.0.0.1'), 'default');
  assert.equal(look(t, '100.127.255.255'), 'e');
  assert.equal(look(t, '100.128.0.0'), 'default');
  assert.equal(t.lookupV4(0xffffffff), 'default');
  assert.equal(t.lookupV4(-1), 'default', 'int32 form of 255.255.255.255');
  assert.equal(t.lookupV6(v6('::1'), 0), undefined, 'IPv4 entries never answer IPv6');
});

test('allowed-ips: IPv6 longest prefix wins, read at an offset in a packet', () => {
  const t = new AllowedIps<string>();
  add(t, 'fd00::/8', 'ula');
  add(t, 'fd12:3456:789a::/48', 'net');
  add(t, 'fd12:3456:789a:1::/64', 'lan');
  add(t, 'fd12:3456:789a:1::7/128', 'host');
  add(t, '::/0', 'default');
  assert.equal(look(t, 'fd12:3456:789a:1::7'), 'host');
  assert.equal(look(t, 'fd12:3456:789a:1::8'), 'lan');
  assert.equal(look(t, 'fd12:3456:789a:2::8'), 'net');
  assert.equal(look(t, 'fdff::1'), 'ula');
  assert.equal(look(t, '2001:db8::1'), 'default');
  // An IPv6 header: destination at offset 24.
  const pkt = Buffer.alloc(40 + 7);
  pkt.set(v6('fd12:3456:789a:1::7'), 7 + 24);
  assert.equal(t.lookupV6(pkt, 7 + 24), 'host');
  assert.equal(t.lookupV4(v4('10.0.0.1')), undefined, 'IPv6 entries never answer IPv4');
});

test('allowed-ips: empty table and edge prefixes', () => {
  const t = new AllowedIps<number>();
  assert.equal(t.lookupV4(0), undefined);
  assert.equal(t.lookupV6(new Uint8Array(16), 0), undefined);
  t.insert(4, 0x80000000, 1, 1);
  t.insert(4, 0, 1, 0); // 0 is a valid peer value
  assert.equal(t.lookupV4(0x7fffffff), 0);
  assert.equal(t.lookupV4(0x80000000), 1);
  t.insert(6, v6('8000::'), 1, 7);
  assert.equal(t.lookupV6(v6('ffff::'), 0), 7);
  assert.equal(t.lookupV6(v6('7fff::'), 0), undefined);
});

test('allowed-ips: host bits are cleared on insert and ignored on remove', () => {
  const t = new AllowedIps<string>();
  add(t, '10.1.2.3/8', 'a');
  add(t, 'fd00::1:2:3/64', 'a');
  assert.deepEqual(shown(t, 'a'), ['10.0.0.0/8', 'fd00::/64']);
  assert.equal(look(t, '10.200.0.1'), 'a');
  assert.equal(t.removeCidr(parseCidr('10.9.9.9/8')), 'a');
  assert.equal(t.removeCidr(parseCidr('fd00::ffff/64')), 'a');
  assert.equal(t.size, 0);
  assert.equal(look(t, '10.200.0.1'), undefined);
});

test('allowed-ips: inserting a prefix owned by another peer moves it (wg semantics)', () => {
  const t = new AllowedIps<string>();
  add(t, '10.0.0.0/24', 'alice');
  add(t, '10.0.1.0/24', 'alice');
  add(t, '10.0.0.0/24', 'bob');
  assert.equal(look(t, '10.0.0.9'), 'bob');
  assert.equal(look(t, '10.0.1.9'), 'alice');
  assert.deepEqual(shown(t, 'alice'), ['10.0.1.0/24']);
  assert.deepEqual(shown(t, 'bob'), ['10.0.0.0/24']);
  assert.equal(t.size, 2);
  // The same prefix for the same peer again changes nothing, not even the order.
  add(t, '10.0.2.0/24', 'bob');
  add(t, '10.0.0.0/24', 'bob');
  assert.deepEqual(shown(t, 'bob'), ['10.0.0.0/24', '10.0.2.0/24']);
  assert.equal(t.size, 3);
});

test('allowed-ips: removeByPeer removes only that peer; lookups fall back to shorter prefixes', () => {
  const t = new AllowedIps<string>();
  add(t, '10.0.0.0/8', 'wide');
  add(t, '10.1.0.0/16', 'mid');
  add(t, '10.1.1.0/24', 'narrow');
  add(t, '10.1.1.128/25', 'mid');
  add(t, 'fd00::/16', 'mid');
  add(t, 'fd00:1::/32', 'narrow');
  assert.equal(t.removeByPeer('mid'), 3);
  assert.equal(t.removeByPeer('mid'), 0);
  assert.deepEqual(shown(t, 'mid'), []);
  assert.equal(look(t, '10.1.1.200'), 'narrow');
  assert.equal(look(t, '10.1.2.1'), 'wide');
  assert.equal(look(t, 'fd00:1::1'), 'narrow');
  assert.equal(look(t, 'fd00:2::1'), undefined);
  assert.equal(t.size, 3);
  assert.equal(t.removeByPeer('narrow'), 2);
  assert.equal(look(t, '10.1.1.200'), 'wide');
  assert.equal(t.size, 1);
});

test('allowed-ips: remove takes exactly one prefix', () => {
  const t = new AllowedIps<string>();
  add(t, '10.0.0.0/16', 'a');
  add(t, '10.0.0.0/24', 'b');
  assert.equal(t.remove(4, v4('10.0.0.0'), 20), undefined, 'no such prefix');
  assert.equal(t.remove(4, v4('10.0.0.0'), 8), undefined, 'no such prefix');
  assert.equal(t.remove(6, v6('::'), 0), undefined);
  assert.equal(t.remove(4, v4('10.0.0.0'), 16), 'a');
  assert.equal(look(t, '10.0.0.1'), 'b');
  assert.equal(look(t, '10.0.1.1'), undefined);
  assert.equal(t.remove(4, v4('10.0.0.0'), 16), undefined, 'already gone');
  assert.deepEqual(shown(t, 'a'), []);
});

test('allowed-ips: entriesForPeer keeps the order prefixes were given; clear empties', () => {
  const t = new AllowedIps<object>();
  const p = {};
  const q = {};
  for (const c of ['192.0.2.0/24', 'fd00::/8', '10.0.0.0/8', '198.18.0.1/32', '::/0']) add(t, c, p);
  add(t, '172.16.0.0/12', q);
  assert.deepEqual(t.entriesForPeer(p), [
    { family: 4, address: '192.0.2.0', prefixLen: 24 },
    { family: 6, address: 'fd00::', prefixLen: 8 },
    { family: 4, address: '10.0.0.0', prefixLen: 8 },
    { family: 4, address: '198.18.0.1', prefixLen: 32 },
    { family: 6, address: '::', prefixLen: 0 },
  ]);
  // Moving one away and back puts it last.
  add(t, '10.0.0.0/8', q);
  add(t, '10.0.0.0/8', p);
  assert.deepEqual(shown(t, p), ['192.0.2.0/24', 'fd00::/8', '198.18.0.1/32', '::/0', '10.0.0.0/8']);
  t.clear();
  assert.equal(t.size, 0);
  assert.deepEqual(t.entriesForPeer(p), []);
  assert.equal(look(t, '10.0.0.1'), undefined);
  add(t, '10.0.0.0/8', q);
  assert.equal(look(t, '10.0.0.1'), q);
});

test('allowed-ips: bad API calls throw UserError naming the problem', () => {
  const t = new AllowedIps<string>();
  const cases: [() => void, RegExp][] = [
    [() => t.insert(4, v4('10.0.0.0'), 33, 'a'), /prefix length 33 is out of range \(0 to 32/],
    [() => t.insert(6, v6('fd00::'), 129, 'a'), /prefix length 129 is out of range \(0 to 128/],
    [() => t.insert(4, 0, -1, 'a'), /prefix length -1/],
    [() => t.insert(4, 0, 1.5, 'a'), /prefix length 1.5/],
    [() => t.insert(4, 2 ** 32, 8, 'a'), /not an IPv4 address/],
    [() => t.insert(4, new Uint8Array(16), 8, 'a'), /IPv4 address has 4 bytes, got 16/],
    [() => t.insert(6, 5, 8, 'a'), /IPv6 address has 16 bytes, got a number/],
    [() => t.insert(6, new Uint8Array(4), 8, 'a'), /IPv6 address has 16 bytes, got 4/],
    [() => t.insert(5 as IpFamily, 0, 8, 'a'), /family 5 is neither 4 nor 6/],
    [() => t.insert(4, 0, 8, undefined as unknown as string), /not undefined/],
  ];
  for (const [fn, re] of cases) assert.throws(fn, (e: unknown) => e instanceof UserError && re.test(e.message));
  assert.equal(t.size, 0);
  t.insert(4, new Uint8Array([10, 0, 0, 0]), 8, 'bytes');
  assert.equal(look(t, '10.9.9.9'), 'bytes');
});

test('allowed-ips: parseCidr accepts the forms wg accepts', () => {
  const ok: [string, string][] = [
    ['10.0.0.0/24', '10.0.0.0/24'],
    ['10.0.0.7/24', '10.0.0.0/24'],
    ['  10.0.0.7  ', '10.0.0.7/32'],
    ['0.0.0.0/0', '0.0.0.0/0'],
    ['fd00::/8', 'fd00::/8'],
    ['FD00::1', 'fd00::1/128'],
    ['::/0', '::/0'],
    ['::ffff:10.0.0.1/128', '::ffff:a00:1/128'],
    ['fd00:1:2:3:4:5:6:7/127', 'fd00:1:2:3:4:5:6:6/127'],
  ];
  for (const [text, want] of ok) assert.equal(formatCidr(parseCidr(text)), want, text);
  const c = parseCidr('198.18.0.9/15') as Extract<Cidr, { family: 4 }>;
  assert.equal(c.family, 4);
  assert.equal(c.address, v4('198.18.0.9'));
  assert.equal(c.prefixLen, 15);
  const d = parseCidr('fd00::9/64') as Extract<Cidr, { family: 6 }>;
  assert.equal(formatIpv6Address(d.address, 0), 'fd00::9');
});

test('allowed-ips: parseCidr errors say what is wrong', () => {
  const bad: [string, RegExp][] = [
    ['10.0.0.0/33', /"10\.0\.0\.0\/33": prefix longer than 32/],
    ['fd00::/129', /prefix longer than 128/],
    ['foo/24', /"foo" is not an address/],
    ['10.0.0.256/8', /"10\.0\.0\.256" is not an address/],
    ['fe80::1%eth0/64', /is not an address/],
    ['', /empty, not an address/],
    ['10.0.0.0/', /prefix length "" is not a number from 0 to 32/],
    ['10.0.0.0/-1', /prefix length "-1" is not a number/],
    ['10.0.0.0/8.5', /prefix length "8\.5" is not a number/],
    ['fd00::/abc', /prefix length "abc" is not a number from 0 to 128/],
    ['10.0.0.0/8/8', /more than one "\/"/],
  ];
  for (const [text, re] of bad) {
    assert.throws(() => parseCidr(text), (e: unknown) => e instanceof UserError && re.test(e.message) && !!e.hint, text);
  }
});

// ---- property test against a naive linear longest-prefix match ----

interface ModelEntry { family: IpFamily; key: bigint; len: number; peer: number }

function toBig(_family: IpFamily, addr: number | Uint8Array): bigint {
  if (typeof addr === 'number') return BigInt(addr >>> 0);
  let v = 0n;
  for (const b of addr) v = (v << 8n) | BigInt(b);
  return v;
}
function prefixOf(family: IpFamily, key: bigint, len: number): bigint {
  const w = family === 4 ? 32n : 128n;
  return len === 0 ? 0n : key >> (w - BigInt(len));
}

class LinearModel {
  entries: ModelEntry[] = [];
  private find(family: IpFamily, key: bigint, len: number): number {
    return this.entries.findIndex((e) => e.family === family && e.len === len && prefixOf(family, e.key, len) === prefixOf(family, key, len));
  }
  insert(family: IpFamily, key: bigint, len: number, peer: number): void {
    const i = this.find(family, key, len);
    if (i >= 0) {
      if (this.entries[i]!.peer === peer) return;
      this.entries.splice(i, 1);
    }
    this.entries.push({ family, key, len, peer });
  }
  remove(family: IpFamily, key: bigint, len: number): number | undefined {
    const i = this.find(family, key, len);
    if (i < 0) return undefined;
    return this.entries.splice(i, 1)[0]!.peer;
  }
  removeByPeer(peer: number): number {
    const before = this.entries.length;
    this.entries = this.entries.filter((e) => e.peer !== peer);
    return before - this.entries.length;
  }
  lookup(family: IpFamily, key: bigint): number | undefined {
    let best: ModelEntry | undefined;
    for (const e of this.entries) {
      if (e.family !== family || prefixOf(family, e.key, e.len) !== prefixOf(family, key, e.len)) continue;
      if (!best || e.len > best.len) best = e;
    }
    return best?.peer;
  }
  shown(peer: number): string[] {
    return this.entries.filter((e) => e.peer === peer).map((e) => {
      const w = e.family === 4 ? 32n : 128n;
      const masked = e.len === 0 ? 0n : (e.key >> (w - BigInt(e.len))) << (w - BigInt(e.len));
      return `${e.family}:${masked.toString(16)}/${e.len}`;
    });
  }
}

function shownBig(t: AllowedIps<number>, peer: number): string[] {
  return t.entriesForPeer(peer).map((e) => {
    let key: bigint;
    if (e.family === 4) key = BigInt(v4(e.address));
    else key = toBig(6, v6(e.address));
    return `${e.family}:${key.toString(16)}/${e.prefixLen}`;
  });
}

/** Walks the private trie and checks its invariants: parent links, branch points have two
 * children, children extend their parent's prefix, and the count of peer nodes. */
function checkStructure(t: AllowedIps<number>): void {
  interface N { child0: N | null; child1: N | null; parent: N | null; cidr: number; peer: unknown }
  const inner = t as unknown as { root4: N | null; root6: N | null };
  let peers = 0;
  const walk = (n: N | null, parent: N | null): void => {
    if (n === null) return;
    assert.equal(n.parent, parent, 'parent link');
    if (parent) assert.ok(n.cidr > parent.cidr, 'children are longer prefixes');
    if (n.peer === undefined) assert.ok(n.child0 && n.child1, 'a branch point has two children');
    else peers++;
    walk(n.child0, n);
    walk(n.child1, n);
  };
  walk(inner.root4, null);
  walk(inner.root6, null);
  assert.equal(peers, t.size, 'size counts peer nodes');
}

function randomAddress(rng: Prng, family: IpFamily, bases: (number | Uint8Array)[]): number | Uint8Array {
  // Mostly near a shared base so prefixes nest and share long paths; sometimes anywhere.
  const base = bases[rng.int(bases.length)]!;
  const flipFrom = rng.int(4) === 0 ? 0 : rng.int(family === 4 ? 32 : 128);
  if (family === 4) {
    const noise = Math.floor(rng.next() * 2 ** 32);
    const keep = flipFrom === 0 ? 0 : (-1 << (32 - flipFrom));
    return (((base as number) & keep) | (noise & ~keep)) >>> 0;
  }
  const out = Uint8Array.from(base as Uint8Array);
  for (let bit = flipFrom; bit < 128; bit++) {
    if (rng.int(2) === 0) out[bit >>> 3] = out[bit >>> 3]! ^ (0x80 >>> (bit & 7));
  }
  return out;
}

for (const family of [4, 6] as const) {
  test(`allowed-ips: property: IPv${family} agrees with a linear longest-prefix model`, () => {
    const rounds = fuzzIterations(8);
    const width = family === 4 ? 32 : 128;
    for (let round = 0; round < rounds; round++) {
      const rng = new Prng(0xa11e + round * 31 + family);
      const t = new AllowedIps<number>();
      const model = new LinearModel();
      const bases: (number | Uint8Array)[] = [];
      for (let i = 0; i < 4; i++) {
        if (family === 4) bases.push(Math.floor(rng.next() * 2 ** 32));
        else { const b = new Uint8Array(16); rng.fill(b, 0, 16); bases.push(b); }
      }
      const lenOf = () => {
        const r = rng.int(10);
        if (r === 0) return 0;
        if (r === 1) return width;
        return rng.int(width + 1);
      };
      for (let step = 0; step < 1500; step++) {
        const op = rng.int(20);
        if (op < 12) {
          const addr = randomAddress(rng, family, bases);
          const len = lenOf();
          const peer = rng.int(6);
          t.insert(family, addr, len, peer);
          model.insert(family, toBig(family, addr), len, peer);
        } else if (op < 17) {
          // Remove a prefix that exists (usually) or a random one.
          let addr: number | Uint8Array, len: number;
          const e = model.entries.length && rng.int(4) !== 0 ? model.entries[rng.int(model.entries.length)]! : undefined;
          if (e) {
            len = e.len;
            if (family === 4) addr = Number(e.key);
            else { addr = new Uint8Array(16); for (let i = 0; i < 16; i++) addr[i] = Number((e.key >> BigInt(8 * (15 - i))) & 0xffn); }
          } else { addr = randomAddress(rng, family, bases); len = lenOf(); }
          assert.equal(t.remove(family, addr, len), model.remove(family, toBig(family, addr), len), `round ${round} step ${step}: remove`);
        } else if (op < 18) {
          const peer = rng.int(6);
          assert.equal(t.removeByPeer(peer), model.removeByPeer(peer), `round ${round} step ${step}: removeByPeer`);
        } else {
          // A burst of lookups.
          for (let i = 0; i < 20; i++) {
            const a = randomAddress(rng, family, bases);
            const got = typeof a === 'number' ? t.lookupV4(a) : t.lookupV6(a, 0);
            assert.equal(got, model.lookup(family, toBig(family, a)), `round ${round} step ${step}: lookup`);
          }
        }
        assert.equal(t.size, model.entries.length);
        if (step % 100 === 0) checkStructure(t);
      }
      checkStructure(t);
      for (let peer = 0; peer < 6; peer++) assert.deepEqual(shownBig(t, peer), model.shown(peer), `round ${round}: entries of peer ${peer}`);
    }
  });
}

test('allowed-ips: 100k random prefixes insert and look up correctly', () => {
  const rng = new Prng(100_000);
  const t = new AllowedIps<number>();
  const addrs: number[] = [];
  for (let i = 0; i < 100_000; i++) {
    const a = Math.floor(rng.next() * 2 ** 32);
    addrs.push(a);
    t.insert(4, a, 32, i);
  }
  t.insert(4, 0, 0, -1);
  // Random 32-bit addresses rarely collide; the last writer of an address owns it.
  const owner = new Map<number, number>();
  addrs.forEach((a, i) => owner.set(a, i));
  assert.equal(t.size, owner.size + 1);
  for (const [a, i] of owner) assert.equal(t.lookupV4(a), i);
  let miss = 0;
  for (let i = 0; i < 1000; i++) { const a = Math.floor(rng.next() * 2 ** 32); if (!owner.has(a)) { miss++; assert.equal(t.lookupV4(a), -1); } }
  assert.ok(miss > 900);
});

test('allowed-ips: lookups allocate nothing once warm', () => {
  const rng = new Prng(7);
  const t = new AllowedIps<number>();
  for (let i = 0; i < 5000; i++) {
    t.insert(4, Math.floor(rng.next() * 2 ** 32), 8 + rng.int(25), i);
    const b = new Uint8Array(16); rng.fill(b, 0, 16);
    t.insert(6, b, 16 + rng.int(113), i);
  }
  const probes6 = Buffer.alloc(16 * 256);
  rng.fill(probes6, 0, probes6.length);
  const probes4 = new Uint32Array(256);
  for (let i = 0; i < 256; i++) probes4[i] = Math.floor(rng.next() * 2 ** 32);
  const run = (n: number): number => {
    let hits = 0;
    for (let i = 0; i < n; i++) {
      if (t.lookupV4(probes4[i & 255]!) !== undefined) hits++;
      if (t.lookupV6(probes6, (i & 255) * 16) !== undefined) hits++;
    }
    return hits;
  };
  run(300_000); // warm up: let the optimizing compiler take the loops
  assert.ok(run(1_000) > 0);
  const perCall = bytesPerCall(run, 500_000);
  assert.ok(perCall < 0.05, `lookupV4 + lookupV6 allocate ${perCall.toFixed(3)} bytes per call`);
});
