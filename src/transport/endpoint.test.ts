// Endpoints: parsing the text forms, interning (the same object for the same address and port,
// from text, from numbers and from native address records), IPv4-mapped folding, bounded pools;
// sticky sources (a sender plus the local address it sent to: one object per pair, bounded).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ADDR_RECORD_LEN, EndpointPool, MAX_SOURCES, parseEndpoint, sourceRecord, SRC_FIELD, SRC_RECORD_LEN, UdpEndpoint } from './index.js';

test('endpoint: parses IPv4 and bracketed IPv6 text and prints it back as wg(8) does', () => {
  const pool = new EndpointPool();
  const a = pool.parse('198.18.0.1:51820')!;
  assert.equal(a.family, 4);
  assert.equal(a.address, '198.18.0.1');
  assert.equal(a.port, 51820);
  assert.equal(a.ipv4, 0xc6120001);
  assert.equal(a.toString(), '198.18.0.1:51820');
  const b = pool.parse('[fd00:0:0::1]:1')!;
  assert.equal(b.family, 6);
  assert.equal(b.address, 'fd00::1');
  assert.equal(b.toString(), '[fd00::1]:1');
  // An IPv4-mapped IPv6 address is the IPv4 endpoint.
  assert.equal(pool.parse('[::ffff:198.18.0.1]:51820'), a);
});

test('endpoint: rejects what is not "literal:port"', () => {
  const pool = new EndpointPool();
  for (const bad of ['', '198.18.0.1', '198.18.0.1:', '198.18.0.1:0', '198.18.0.1:65536', '198.18.0.256:1',
    'fd00::1:51820', '[fd00::1]', '[fd00::1:51820', '[fe80::1%eth0]:51820', 'example.com:51820', '198.18.0.1:5x', ' 198.18.0.1:1']) {
    assert.equal(pool.parse(bad), null, bad);
  }
});

test('endpoint: the same address and port is the same object, from text, numbers and records', () => {
  const a = parseEndpoint('198.18.3.4:9')!;
  assert.equal(parseEndpoint('198.18.3.4:9'), a);
  assert.notEqual(parseEndpoint('198.18.3.4:10'), a);
  const v6 = parseEndpoint('[fd00::42]:51820')!;
  assert.equal(parseEndpoint('[fd00:0::42]:51820'), v6);
  assert.notEqual(parseEndpoint('[fd00::43]:51820'), v6);

  const pool = new EndpointPool();
  const e4 = pool.ipv4(0xc6120304, 9);
  const recs = Buffer.alloc(3 * ADDR_RECORD_LEN);
  e4.record.copy(recs, 0);
  const e6 = pool.parse('[fd00::42]:51820')!;
  e6.record.copy(recs, ADDR_RECORD_LEN);
  // A record for an IPv4 sender as an IPv6 socket sees it: family 6, mapped address.
  e4.record.copy(recs, 2 * ADDR_RECORD_LEN);
  recs[2 * ADDR_RECORD_LEN] = 6;
  assert.equal(pool.fromRecord(recs, 0), e4);
  assert.equal(pool.fromRecord(recs, ADDR_RECORD_LEN), e6);
  assert.equal(pool.fromRecord(recs, 2 * ADDR_RECORD_LEN), e4);
  recs[0] = 9;
  assert.equal(pool.fromRecord(recs, 0), null);
  assert.ok(e4 instanceof UdpEndpoint);
});

test('endpoint: a full pool starts a new generation; recent endpoints keep their identity', () => {
  const pool = new EndpointPool(100);
  const keep = pool.parse('[fd00::1]:7')!;
  const keep4 = pool.ipv4(1, 7);
  for (let i = 0; i < 90; i++) pool.ipv4(1000 + i, 1);
  assert.equal(pool.parse('[fd00::1]:7'), keep); // from the old generation, promoted
  assert.equal(pool.ipv4(1, 7), keep4);
  for (let i = 0; i < 500; i++) pool.ipv4(5000 + i, 1);
  assert.ok(pool.size <= 100);
  assert.equal(pool.ipv4(1, 7).toString(), keep4.toString());
});

test('endpoint: many IPv6 endpoints in one pool stay distinct and findable', () => {
  const pool = new EndpointPool();
  const all: UdpEndpoint[] = [];
  for (let i = 0; i < 2000; i++) all.push(pool.parse(`[fd00::${i.toString(16)}]:${1 + (i % 7)}`)!);
  assert.equal(new Set(all).size, 2000);
  for (let i = 0; i < 2000; i++) assert.equal(pool.parse(`[fd00::${i.toString(16)}]:${1 + (i % 7)}`), all[i]);
});

test('endpoint: fuzzed text and records never throw; whatever parses prints back to itself', async () => {
  const { Prng } = await import('../wire/fuzz-harness.js');
  const rng = new Prng(0x51820);
  const pool = new EndpointPool(1000);
  const alphabet = '0123456789abcdef:.[]%fF ';
  const seeds = ['198.18.0.1:51820', '[fd00::1]:51820', '[::ffff:1.2.3.4]:1', '[1:2:3:4:5:6:7:8]:65535', '0.0.0.0:1'];
  for (let i = 0; i < 20000; i++) {
    let text = seeds[rng.int(seeds.length)]!;
    const edits = 1 + rng.int(4);
    for (let e = 0; e < edits; e++) {
      const at = rng.int(text.length + 1);
      const op = rng.int(3);
      const ch = alphabet[rng.int(alphabet.length)]!;
      text = op === 0 ? text.slice(0, at) + ch + text.slice(at) : op === 1 ? text.slice(0, at) + text.slice(at + 1) : text.slice(0, at) + ch + text.slice(at + 1);
    }
    const ep = pool.parse(text);
    if (ep) assert.equal(pool.parse(ep.toString()), ep, `${text} -> ${ep}`);
  }
  const rec = Buffer.alloc(ADDR_RECORD_LEN);
  for (let i = 0; i < 20000; i++) {
    rng.fill(rec, 0, ADDR_RECORD_LEN);
    if (i % 2 === 0) rec[0] = 4 + 2 * rng.int(2);
    if (i % 4 === 0) { rec.fill(0, 4, 14); rec[14] = 0xff; rec[15] = 0xff; }
    const ep = pool.fromRecord(rec, 0);
    if (ep) {
      assert.equal(pool.fromRecord(rec, 0), ep);
      assert.equal(pool.parse(ep.toString()) ?? ep, ep); // port 0 does not parse as text
    }
  }
});

// ---- sticky sources: a sender plus the local address it sent to ----

/** Address record i and source record i of a receive batch, as the native addon writes them. */
function received(pool: EndpointPool, remote: string, local: string | null, ifindex = 2): UdpEndpoint {
  const rec = pool.parse(remote)!.record;
  const src = local === null ? Buffer.alloc(SRC_RECORD_LEN) : sourceRecord(local, ifindex)!;
  return pool.fromRecord(rec, 0, src, 0)!;
}

test('endpoint: a sender with the local address it sent to is one object per (remote, local) pair', () => {
  const pool = new EndpointPool();
  const remote = pool.parse('198.18.0.100:51821')!;
  const viaOne = received(pool, '198.18.0.100:51821', '198.18.0.1');
  const viaTwo = received(pool, '198.18.0.100:51821', '198.18.0.2');
  assert.notEqual(viaOne, remote);
  assert.notEqual(viaOne, viaTwo);
  assert.equal(received(pool, '198.18.0.100:51821', '198.18.0.1'), viaOne);
  assert.equal(received(pool, '198.18.0.100:51821', '198.18.0.2'), viaTwo);
  // The same address on another interface is another pair.
  assert.notEqual(received(pool, '198.18.0.100:51821', '198.18.0.1', 3), viaOne);
  for (const e of [viaOne, viaTwo]) {
    // Everything the engine and wg(8) see is the remote's; the record is shared, not copied.
    assert.equal(e.remote, remote);
    assert.equal(e.record, remote.record);
    assert.equal(e.family, 4);
    assert.equal(e.address, '198.18.0.100');
    assert.equal(e.port, 51821);
    assert.equal(e.ipv4, remote.ipv4);
    assert.equal(e.toString(), '198.18.0.100:51821');
    assert.ok(e.sourceUsable);
  }
  assert.equal(viaOne.sourceAddress, '198.18.0.1');
  assert.equal(viaTwo.sourceAddress, '198.18.0.2');
  assert.equal(remote.source, null);
  assert.equal(remote.sourceAddress, null);
  assert.equal(remote.remote, remote);
  // The source record: family, interface index (big-endian), mapped address.
  assert.equal(viaTwo.source!.toString('hex'), '04000000' + '00000002' + '00000000000000000000ffff' + 'c6120002');

  const v6 = received(pool, '[fd00:18::100]:51821', 'fd00:18::2', 7);
  assert.equal(v6.remote, pool.parse('[fd00:18::100]:51821'));
  assert.equal(v6.sourceAddress, 'fd00:18::2');
  assert.equal(v6.toString(), '[fd00:18::100]:51821');
  assert.equal(received(pool, '[fd00:18::100]:51821', 'fd00:18::2', 7), v6);
  // A link-local source prints with its interface.
  assert.equal(received(pool, '[fe80::2]:1', 'fe80::1', 5).sourceAddress, 'fe80::1%5');
});

test('endpoint: no source, or one of the other family, gives the plain remote endpoint', () => {
  const pool = new EndpointPool();
  const remote = pool.parse('198.18.0.100:1')!;
  assert.equal(received(pool, '198.18.0.100:1', null), remote);
  assert.equal(pool.fromRecord(remote.record, 0), remote);
  assert.equal(received(pool, '198.18.0.100:1', 'fd00:18::1'), remote);
  assert.equal(received(pool, '[fd00::1]:1', '198.18.0.1'), pool.parse('[fd00::1]:1'));
  // withSource starts from the remote even when handed a sourced endpoint.
  const viaOne = received(pool, '198.18.0.100:1', '198.18.0.1');
  assert.equal(pool.withSource(viaOne, sourceRecord('198.18.0.2', 2)!, 0), received(pool, '198.18.0.100:1', '198.18.0.2'));
  assert.equal(pool.withSource(viaOne, sourceRecord('198.18.0.1', 2)!, 0), viaOne);
});

test('endpoint: a refused source becomes usable again when a datagram arrives on it', () => {
  const pool = new EndpointPool();
  const e = received(pool, '198.18.0.100:1', '198.18.0.2');
  e.sourceUsable = false; // what UdpBind does when the kernel refuses the address
  assert.equal(received(pool, '198.18.0.100:1', '198.18.0.1').sourceUsable, true);
  assert.equal(e.sourceUsable, false, 'other addresses do not revive it');
  assert.equal(received(pool, '198.18.0.100:1', '198.18.0.2'), e);
  assert.equal(e.sourceUsable, true);
});

test(`endpoint: at most ${MAX_SOURCES} local addresses are kept per remote; the oldest is forgotten`, () => {
  const pool = new EndpointPool();
  const first = received(pool, '198.18.0.100:1', '198.18.1.0');
  const all = [first];
  for (let i = 1; i < MAX_SOURCES; i++) all.push(received(pool, '198.18.0.100:1', `198.18.1.${i}`));
  for (let i = 0; i < MAX_SOURCES; i++) assert.equal(received(pool, '198.18.0.100:1', `198.18.1.${i}`), all[i]);
  assert.equal(pool.parse('198.18.0.100:1')!.sourced!.length, MAX_SOURCES);
  received(pool, '198.18.0.100:1', '198.18.1.200');
  assert.equal(pool.parse('198.18.0.100:1')!.sourced!.length, MAX_SOURCES);
  const again = received(pool, '198.18.0.100:1', '198.18.1.0');
  assert.notEqual(again, first, 'forgotten, so interned anew');
  assert.equal(again.sourceAddress, first.sourceAddress);
  assert.equal(first.sourceAddress, '198.18.1.0', 'the forgotten one still works where it is held');
});

test('endpoint: sourceRecord parses address literals only', () => {
  assert.equal(sourceRecord('198.18.0.1')![SRC_FIELD.FAMILY], 4);
  assert.equal(sourceRecord('::ffff:198.18.0.1')!.toString('hex'), sourceRecord('198.18.0.1')!.toString('hex'));
  assert.equal(sourceRecord('fd00::1', 9)!.readUInt32BE(SRC_FIELD.IFINDEX), 9);
  for (const bad of ['', 'fd00::1%eth0', '198.18.0.256', 'example.com', '198.18.0.1:1']) assert.equal(sourceRecord(bad), null, bad);
});

test('endpoint: fuzzed source records never throw; the remote part is always the plain endpoint', async () => {
  const { Prng } = await import('../wire/fuzz-harness.js');
  const rng = new Prng(0x5717c);
  const pool = new EndpointPool(1000);
  const rec = Buffer.alloc(ADDR_RECORD_LEN), src = Buffer.alloc(SRC_RECORD_LEN);
  for (let i = 0; i < 20000; i++) {
    rng.fill(rec, 0, ADDR_RECORD_LEN);
    rng.fill(src, 0, SRC_RECORD_LEN);
    rec[0] = 4 + 2 * rng.int(2);
    if (i % 3 === 0) src[0] = rec[0]!;
    if (i % 5 === 0) src[0] = 0;
    if (i % 7 === 0) src.fill(0, 8, 20); // few distinct local addresses, so pairs repeat
    const plain = pool.fromRecord(rec, 0)!;
    const e = pool.fromRecord(rec, 0, src, 0)!;
    assert.equal(e.remote, plain);
    assert.equal(e.toString(), plain.toString());
    assert.equal(pool.fromRecord(rec, 0, src, 0), e, 'the same pair is the same object');
    if (e.source !== null) {
      assert.equal(e.source[0], e.family);
      assert.equal(typeof e.sourceAddress, 'string');
    }
  }
});
