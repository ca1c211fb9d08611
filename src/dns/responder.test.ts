import { test } from 'node:test';
import assert from 'node:assert/strict';
import dnsPacket from 'dns-packet';
import type { Packet, Question, StringAnswer } from 'dns-packet';
import { UserError } from '../util/index.js';
import { fuzzParser, fuzzIterations } from '../wire/fuzz-harness.js';
import { DnsResponder, DnsOutcome, DNS_EDNS_UDP_SIZE } from './responder.js';
import type { NameRecord } from './names.js';
import type { Dns64Synthesizer } from './dns64.js';

const RECORDS: NameRecord[] = [
  { name: 'node-a', network: 'lab', ipv4: '100.64.0.1', ipv6: 'fd00:1::1' },
  { name: 'node-b', network: 'lab', ipv4: '100.64.0.2' }, // no IPv6
  { name: 'Node-C', network: 'corp.example', ipv6: 'fd00:2::c' }, // no IPv4, two-label network
];

function responder(records: NameRecord[] = RECORDS, opts = {}): DnsResponder {
  const r = new DnsResponder(opts);
  r.setRecords(records);
  return r;
}

function query(name: string, type: Question['type'], extra: Partial<Packet> = {}): Buffer {
  return dnsPacket.encode({ type: 'query', id: 0x1234, flags: dnsPacket.RECURSION_DESIRED, questions: [{ name, type, class: 'IN' }], ...extra });
}

const ANY = 'ANY' as Question['type'];
const EDNS: Partial<Packet> = { additionals: [{ type: 'OPT', name: '.', udpPayloadSize: 4096, flags: 0, options: [] } as never] };

function ask(r: DnsResponder, q: Buffer, forward = false) {
  const out = Buffer.alloc(DNS_EDNS_UDP_SIZE);
  const n = r.answer(q, 0, q.length, out, forward);
  const rcode = n >= 12 ? RCODES[out.readUInt16BE(2) & 0xf] : undefined;
  return { n, rcode, outcome: r.lastOutcome, bytes: out.subarray(0, n), msg: n > 0 ? dnsPacket.decode(out.subarray(0, n)) : null };
}

const RCODES = ['NOERROR', 'FORMERR', 'SERVFAIL', 'NXDOMAIN', 'NOTIMP', 'REFUSED'];
const data = (a: unknown) => (a as StringAnswer).data;

test('dns responder: A and AAAA for <name>.mesh and <name>.<network>, authoritative, TTL 10, id and question echoed', () => {
  const r = responder();
  let res = ask(r, query('node-a.mesh', 'A'));
  assert.equal(res.outcome, DnsOutcome.Answer);
  const m = res.msg!;
  assert.equal(m.id, 0x1234);
  assert.equal(m.type, 'response');
  assert.equal(res.rcode, 'NOERROR');
  assert.ok(m.flag_aa, 'authoritative');
  assert.ok(m.flag_rd, 'RD copied');
  assert.ok(!m.flag_ra, 'no recursion without an upstream');
  assert.deepEqual(m.questions, [{ name: 'node-a.mesh', type: 'A', class: 'IN' }]);
  assert.equal(m.answers!.length, 1);
  assert.deepEqual({ ...m.answers![0], flush: undefined }, { name: 'node-a.mesh', type: 'A', class: 'IN', ttl: 10, data: '100.64.0.1', flush: undefined });

  res = ask(r, query('node-a.lab', 'AAAA'));
  assert.equal(res.msg!.answers!.length, 1);
  assert.equal(res.msg!.answers![0]!.type, 'AAAA');
  assert.equal(data(res.msg!.answers![0]), 'fd00:1::1');

  res = ask(r, query('node-c.corp.example', 'AAAA'));
  assert.equal(data(res.msg!.answers![0]), 'fd00:2::c');
  res = ask(r, query('node-a.lab', ANY));
  assert.deepEqual(res.msg!.answers!.map(data), ['100.64.0.1', 'fd00:1::1']);
  assert.deepEqual(r.zones, ['mesh', 'lab', 'corp.example']);
  assert.equal(r.nameCount, 6);
});

test('dns responder: names match case-insensitively and the question keeps its case', () => {
  const r = responder();
  const res = ask(r, query('NoDe-A.MESH', 'A'));
  assert.equal(res.rcode, 'NOERROR');
  assert.equal(res.msg!.questions![0]!.name, 'NoDe-A.MESH');
  assert.equal(data(res.msg!.answers![0]), '100.64.0.1');
  // The record's own case does not matter either.
  assert.equal(data(ask(r, query('node-c.mesh', 'AAAA')).msg!.answers![0]), 'fd00:2::c');
  assert.equal(ask(r, query('node-a.mesh.', 'A')).msg!.answers!.length, 1);
});

test('dns responder: unknown names under our zones are NXDOMAIN with the zone SOA', () => {
  const r = responder();
  for (const name of ['nobody.mesh', 'nobody.lab', 'x.node-a.mesh', 'nobody.corp.example', 'node-a.corp.example']) {
    const res = ask(r, query(name, 'A'));
    assert.equal(res.outcome, DnsOutcome.NxDomain, name);
    assert.equal(res.rcode, 'NXDOMAIN', name);
    assert.ok(res.msg!.flag_aa);
    assert.equal(res.msg!.answers!.length, 0);
    const soa = res.msg!.authorities![0]!;
    assert.equal(soa.type, 'SOA');
    const zone = name.endsWith('mesh') ? 'mesh' : name.endsWith('lab') ? 'lab' : 'corp.example';
    assert.equal(soa.name, zone, name);
    assert.equal(soa.ttl, 10);
    assert.equal((soa.data as { minimum: number }).minimum, 10);
    assert.equal((soa.data as { mname: string }).mname, `ns.${zone}`);
  }
  assert.equal(r.counters.nxDomain, 5);
});

test('dns responder: a known name without the type asked is NODATA (NOERROR, empty, SOA)', () => {
  const r = responder();
  for (const [name, type] of [['node-b.mesh', 'AAAA'], ['node-c.mesh', 'A'], ['node-a.mesh', 'MX'], ['node-a.lab', 'TXT']] as const) {
    const res = ask(r, query(name, type));
    assert.equal(res.outcome, DnsOutcome.NoData, `${name} ${type}`);
    assert.equal(res.rcode, 'NOERROR');
    assert.equal(res.msg!.answers!.length, 0);
    assert.equal(res.msg!.authorities![0]!.type, 'SOA');
  }
  // A zone's apex exists: SOA answers, other types are NODATA.
  let res = ask(r, query('mesh', 'SOA'));
  assert.equal(res.outcome, DnsOutcome.Answer);
  assert.equal(res.msg!.answers![0]!.type, 'SOA');
  res = ask(r, query('Corp.Example', 'A'));
  assert.equal(res.outcome, DnsOutcome.NoData);
  assert.equal(res.msg!.authorities![0]!.name, 'Corp.Example');
  assert.equal(r.counters.noData, 5);
});

test('dns responder: other zones are REFUSED, or left to the host to forward', () => {
  const r = responder();
  let res = ask(r, query('example.com', 'A'));
  assert.equal(res.rcode, 'REFUSED');
  assert.ok(!res.msg!.flag_aa);
  assert.equal(ask(r, query('example', 'A')).rcode, 'REFUSED'); // the parent of corp.example
  assert.equal(ask(r, query('.', 'NS')).rcode, 'REFUSED');
  assert.equal(ask(r, query('notmesh', 'A')).rcode, 'REFUSED'); // a suffix, not a label boundary
  res = ask(r, query('example.com', 'A'), true);
  assert.equal(res.n, 0);
  assert.equal(res.outcome, DnsOutcome.Forward);
  assert.equal(r.counters.forwarded, 1);
  // Ours are still answered when forwarding, with RA set.
  res = ask(r, query('node-a.mesh', 'A'), true);
  assert.ok(res.msg!.flag_ra);
  assert.equal(res.msg!.answers!.length, 1);
  // Class CHAOS is not ours.
  const ch = dnsPacket.encode({ type: 'query', id: 1, questions: [{ name: 'node-a.mesh', type: 'TXT', class: 'CH' }] });
  assert.equal(ask(r, ch).rcode, 'REFUSED');
  assert.equal(r.counters.refused, 5);
});

test('dns responder: EDNS0 is answered with an OPT record; other versions get BADVERS', () => {
  const r = responder();
  let res = ask(r, query('node-a.mesh', 'A', EDNS));
  assert.equal(res.msg!.answers!.length, 1);
  const opt = res.msg!.additionals![0] as unknown as { type: string; udpPayloadSize: number };
  assert.equal(opt.type, 'OPT');
  assert.equal(opt.udpPayloadSize, DNS_EDNS_UDP_SIZE);
  // An option (a client cookie, as dig sends) is tolerated.
  const cookie: Partial<Packet> = { additionals: [{ type: 'OPT', name: '.', udpPayloadSize: 1232, flags: 0,
    options: [{ code: 10, data: Buffer.from('0102030405060708', 'hex') }] } as never] };
  assert.equal(ask(r, query('node-a.mesh', 'A', cookie)).msg!.answers!.length, 1);
  // Version 1: BADVERS is extended RCODE 16: header RCODE 0, upper bits 1 in the OPT TTL.
  const q = query('node-a.mesh', 'A', EDNS);
  q[q.length - 11 + 6] = 1; // OPT: name(1) type(2) class(2) ext-rcode(1) version(1)
  res = ask(r, q);
  assert.equal(res.outcome, DnsOutcome.BadVers);
  assert.equal(res.bytes.readUInt16BE(2) & 0xf, 0);
  assert.equal(res.bytes[res.bytes.length - 11 + 5], 1);
  assert.equal(res.msg!.answers!.length, 0);
  // Two OPT records, or one in the answer section, are FORMERR.
  const two: Partial<Packet> = { additionals: [EDNS.additionals![0]!, EDNS.additionals![0]!] };
  assert.equal(ask(r, query('node-a.mesh', 'A', two)).rcode, 'FORMERR');
});

test('dns responder: answers that do not fit the client UDP size are sent empty with TC', () => {
  // 40 addresses under one name: 40 * 16 bytes of answers do not fit in 512.
  const many: NameRecord[] = [];
  for (let i = 1; i <= 40; i++) many.push({ name: 'busy', network: 'lab', ipv4: `100.64.1.${i}` });
  const r = responder(many);
  let res = ask(r, query('busy.mesh', 'A'));
  assert.ok(res.msg!.flag_tc);
  assert.equal(res.msg!.answers!.length, 0);
  assert.ok(res.n <= 512);
  assert.equal(r.counters.truncated, 1);
  res = ask(r, query('busy.mesh', 'A', EDNS));
  assert.ok(!res.msg!.flag_tc);
  assert.equal(res.msg!.answers!.length, 40);
});

test('dns responder: malformed, non-query and response messages', () => {
  const r = responder();
  const out = Buffer.alloc(DNS_EDNS_UDP_SIZE);
  // Too short, and responses (QR set): no answer at all.
  assert.equal(r.answer(Buffer.alloc(11), 0, 11, out), 0);
  const resp = query('node-a.mesh', 'A');
  resp[2]! |= 0x80;
  assert.equal(r.answer(resp, 0, resp.length, out), 0);
  assert.equal(r.counters.dropped, 2);
  // Opcode NOTIFY (4): NOTIMP. Two questions, or a cut question: FORMERR.
  const notify = query('node-a.mesh', 'A');
  notify[2] = (notify[2]! & 0x87) | (4 << 3);
  assert.equal(ask(r, notify).rcode, 'NOTIMP');
  const two = dnsPacket.encode({ type: 'query', id: 2, questions: [{ name: 'a.mesh', type: 'A' }, { name: 'b.mesh', type: 'A' }] });
  assert.equal(ask(r, two).rcode, 'FORMERR');
  const q = query('node-a.mesh', 'A');
  assert.equal(ask(r, q.subarray(0, q.length - 2)).rcode, 'FORMERR');
  // An output buffer below 512 bytes: nothing written.
  assert.equal(r.answer(q, 0, q.length, Buffer.alloc(100)), 0);
  // At an offset inside a larger buffer.
  const big = Buffer.concat([Buffer.alloc(7, 0xee), q, Buffer.alloc(5, 0xee)]);
  const n = r.answer(big, 7, q.length, out);
  assert.equal(data(dnsPacket.decode(out.subarray(0, n)).answers![0]), '100.64.0.1');
});

test('dns responder: setRecords replaces the table live; a bad record is refused and the old table kept', () => {
  const r = responder();
  const soaSerial = (name: string) => (ask(r, query(name, 'A')).msg!.authorities![0] as unknown as { data: { serial: number } }).data.serial;
  const before = soaSerial('nobody.mesh');
  r.setRecords([{ name: 'node-d', network: 'lab', ipv4: '100.64.0.4' }]);
  assert.equal(ask(r, query('node-a.mesh', 'A')).rcode, 'NXDOMAIN');
  assert.equal(data(ask(r, query('node-d.lab', 'A')).msg!.answers![0]), '100.64.0.4');
  assert.equal(ask(r, query('node-c.corp.example', 'A')).rcode, 'REFUSED'); // zone gone
  assert.notEqual(soaSerial('nobody.mesh'), before);
  for (const [bad, re] of [
    [{ name: 'a.b', network: 'lab' }, /single DNS label/],
    [{ name: 'bad name', network: 'lab' }, /not a valid DNS name/],
    [{ name: 'ok', network: '' }, /network "" must be a DNS name/],
    [{ name: 'ok', network: 'lab', ipv4: '100.64.0.300' }, /ipv4 "100.64.0.300" is not an IPv4 address/],
    [{ name: 'ok', network: 'lab', ipv6: 'fd00::g' }, /ipv6 "fd00::g" is not an IPv6 address/],
    [{ name: '-x', network: 'lab' }, /not starting or ending with '-'/],
  ] as const) {
    assert.throws(() => r.setRecords([{ name: 'fine', network: 'lab' }, bad as NameRecord]), (e: Error) => {
      assert.ok(e instanceof UserError);
      assert.match(e.message, /DNS record #2/);
      assert.match(e.message, re);
      return true;
    });
  }
  assert.equal(data(ask(r, query('node-d.mesh', 'A')).msg!.answers![0]), '100.64.0.4');
  assert.throws(() => new DnsResponder({ ttl: -1 }), /ttl -1 must be a whole number of seconds/);
});

test('dns responder: the DNS64 hook synthesizes AAAA for nodes with only IPv4', () => {
  // 64:ff9b::/96 (RFC 6052 well-known prefix), the IPv4 address in the last 32 bits.
  const wkp: Dns64Synthesizer = {
    synthesize(ipv4, out, off) {
      out.fill(0, off, off + 16);
      out[off + 1] = 0x64; out[off + 2] = 0xff; out[off + 3] = 0x9b;
      out[off + 12] = ipv4 >>> 24; out[off + 13] = (ipv4 >>> 16) & 255; out[off + 14] = (ipv4 >>> 8) & 255; out[off + 15] = ipv4 & 255;
      return true;
    },
  };
  const r = responder(RECORDS, { dns64: wkp });
  const res = ask(r, query('node-b.mesh', 'AAAA'));
  assert.equal(data(res.msg!.answers![0]), '64:ff9b::6440:2');
  assert.equal(r.counters.synthesized, 1);
  // A node with its own IPv6 gets that, not a synthesized one.
  assert.equal(data(ask(r, query('node-a.mesh', 'AAAA')).msg!.answers![0]), 'fd00:1::1');
  // A synthesizer that declines: NODATA.
  r.dns64 = { synthesize: () => false };
  assert.equal(ask(r, query('node-b.mesh', 'AAAA')).outcome, DnsOutcome.NoData);
});

test('dns responder: never throws on random and mutated queries, and reads only its length', () => {
  const r = responder();
  const out = Buffer.alloc(DNS_EDNS_UDP_SIZE);
  const seeds = [
    query('node-a.mesh', 'A'), query('NODE-B.lab', 'AAAA', EDNS), query('nobody.mesh', ANY),
    query('example.com', 'A'), query('mesh', 'SOA', EDNS),
  ];
  const n = fuzzParser(seeds, (buf, off, len) => {
    const got = r.answer(buf, off, len, out, (len & 1) === 1);
    return `${got}:${r.lastOutcome}:${out.subarray(0, got).toString('hex')}`;
  }, { iterations: fuzzIterations(40_000) });
  assert.ok(n > 0);
  const c = r.counters;
  assert.equal(c.queries, c.answered + c.noData + c.nxDomain + c.refused + c.formErr + c.notImp + c.badVers + c.forwarded + c.dropped);
});
