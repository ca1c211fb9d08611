// Endpoints: parsing the text forms, interning (the same object for the same address and port,
// from text, from numbers and from native address records), IPv4-mapped folding, bounded pools.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ADDR_RECORD_LEN, EndpointPool, parseEndpoint, UdpEndpoint } from './index.js';

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
