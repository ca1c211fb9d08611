import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Packet } from 'dns-packet';
import { getHeapSpaceStatistics } from 'node:v8';
import {
  DnsHeader, DnsQuestion, DnsParsed, parseDns, emitDns, dnsLength, readDnsQuestion, setDnsQuestionName,
  DnsRcode, DnsType, DNS_CLASS_IN, DNS_FLAG_RD, DNS_FLAG_RA, DNS_FLAG_AA, DNS_FLAG_QR, DNS_MAX_POINTER_JUMPS,
} from './dns.js';
import { Status } from './status.js';
import { fuzzIterations, fuzzParser, readHexPackets } from './fuzz-harness.js';
import { UserError } from '../util/index.js';

/** The UDP payload of a captured Ethernet frame (IPv4 or IPv6 without extension headers). */
function udpPayload(frame: Buffer): Buffer {
  const ipv4 = frame.readUInt16BE(12) === 0x0800;
  return frame.subarray(ipv4 ? 14 + (frame[14]! & 15) * 4 + 8 : 14 + 40 + 8);
}

const captured = readHexPackets('testdata/captures/dns.hex').map((p) => ({ name: p.name, msg: udpPayload(p.bytes) }));
const find = (text: string) => captured.find((p) => p.name.includes(text))!.msg;

function parsed(msg: Buffer): DnsParsed {
  const out = new DnsParsed();
  assert.equal(parseDns(msg, 0, msg.length, out), Status.Ok);
  return out;
}

test('dns: header view of a captured query and its response', () => {
  const q = find('IPv4 query node.lab.test A ');
  const r = find('IPv4 response NOERROR answers 1 node.lab.test A ');
  const h = new DnsHeader().reset(q, 0, q.length);
  assert.equal(h.check(), Status.Ok);
  assert.equal(h.qr, false);
  assert.equal(h.opcode, 0);
  assert.equal(h.rd, true); // dig asks for recursion
  assert.equal(h.questionCount, 1);
  assert.equal(h.answerCount, 0);
  assert.equal(h.additionalCount, 1); // EDNS OPT
  const id = h.id;
  h.reset(r, 0, r.length);
  assert.equal(h.id, id);
  assert.equal(h.qr, true);
  assert.equal(h.aa, true); // dnsmasq is authoritative for --local=/lab.test/
  assert.equal(h.rcode, DnsRcode.NoError);
  assert.equal(h.answerCount, 1);
  const nx = find('NXDOMAIN');
  assert.equal(h.reset(nx, 0, nx.length).rcode, DnsRcode.NxDomain);
  assert.equal(h.reset(q, 0, 11).check(), Status.Truncated);
});

test('dns: header setters rewrite a message in place', () => {
  const msg = Buffer.from(find('IPv4 query svc.lab.test'));
  const h = new DnsHeader().reset(msg, 0, msg.length);
  h.id = 0xbeef;
  h.flags = h.flags | DNS_FLAG_QR;
  h.rcode = DnsRcode.Refused;
  const back = parsed(msg).message!;
  assert.equal(back.id, 0xbeef);
  assert.equal(back.type, 'response');
  assert.equal(h.rd, true);
  assert.equal(h.rcode, DnsRcode.Refused);
});

test('dns: readDnsQuestion reads the first question of every captured message', () => {
  const q = new DnsQuestion();
  for (const { name, msg } of captured) {
    assert.equal(readDnsQuestion(msg, 0, msg.length, q), Status.Ok, name);
    const [, qname, qtype] = / (\S+\.test) (A|AAAA) /.exec(name)!;
    assert.equal(q.nameText(), qname, name);
    assert.equal(q.type, qtype === 'A' ? DnsType.A : DnsType.AAAA, name);
    assert.equal(q.class, DNS_CLASS_IN);
    assert.equal(q.nameOffset, 12);
    assert.equal(q.end, 12 + q.nameLength + 4);
    assert.equal(q.labelCount, 3);
  }
});

test('dns: question names compare case-insensitively, as cache keys', () => {
  const query = Buffer.from(find('IPv4 query node.lab.test A '));
  query.write('NoDe', 13, 'latin1'); // the 0x20 trick: a resolver randomises letter case
  const a = new DnsQuestion();
  assert.equal(readDnsQuestion(query, 0, query.length, a), Status.Ok);
  assert.equal(query.toString('latin1', a.nameOffset + 1, a.nameOffset + 5), 'NoDe'); // original kept
  assert.equal(a.nameText(), 'node.lab.test');
  const key = new DnsQuestion();
  setDnsQuestionName(key, 'Node.Lab.Test.');
  assert.ok(key.sameName(a));
  assert.equal(key.hash, a.hash);
  setDnsQuestionName(key, 'node.lab.tesu');
  assert.ok(!key.sameName(a));
  setDnsQuestionName(key, '.');
  assert.equal(key.nameText(), '.');
  assert.throws(() => setDnsQuestionName(key, 'a..b'), UserError);
  assert.throws(() => setDnsQuestionName(key, 'x'.repeat(64) + '.test'), /label of 64 bytes/);
});

test('dns: decode captured answers (A, AAAA, CNAME with compressed names, NXDOMAIN)', () => {
  const a = parsed(find('IPv4 response NOERROR answers 1 node.lab.test A ')).message!;
  assert.deepEqual(a.answers!.map((x) => [x.name, x.type, 'data' in x ? x.data : null]), [['node.lab.test', 'A', '198.18.7.8']]);
  const aaaa = parsed(find('IPv6 response NOERROR answers 1 node.lab.test AAAA')).message!;
  assert.deepEqual(aaaa.answers!.map((x) => 'data' in x ? x.data : null), ['fd00:7::8']);
  const aliasMsg = find('IPv4 response NOERROR answers 2 alias.lab.test A ');
  // The answer names are compression pointers: to the question (offset 12) and to the CNAME target.
  assert.equal(aliasMsg.readUInt16BE(12 + 16 + 4), 0xc00c);
  assert.ok(aliasMsg.includes(Buffer.from([0xc0, 0x2c])));
  const alias = parsed(aliasMsg);
  assert.equal(alias.length, aliasMsg.length);
  assert.deepEqual(alias.message!.answers!.map((x) => [x.name, x.type, 'data' in x ? x.data : null]), [
    ['alias.lab.test', 'CNAME', 'node.lab.test'],
    ['node.lab.test', 'A', '198.18.7.8'],
  ]);
  const nx = parsed(find('NXDOMAIN')).message!;
  assert.equal(nx.answers!.length, 0);
  assert.equal(nx.flags! & 0xf, DnsRcode.NxDomain);
  const svc = parsed(find('IPv4 response NOERROR answers 1 svc.lab.test')).message!;
  assert.deepEqual(svc.answers!.map((x) => 'data' in x ? x.data : null), ['198.18.7.7']);
});

test('dns: parse / emit round-trip of every captured message', () => {
  for (const { name, msg } of captured) {
    const first = parsed(msg).message!;
    const out = Buffer.alloc(dnsLength(first) + 4);
    const n = emitDns(first, out, 4);
    assert.equal(n, dnsLength(first), name);
    const again = parsed(out.subarray(4, 4 + n)).message!;
    assert.deepEqual(again, first, name);
    // Queries carry no compression, so they come back byte for byte; responses grow by the
    // pointers dns-packet does not write.
    if (name.includes(' query ')) assert.deepEqual(out.subarray(4, 4 + n), msg, name);
    else assert.ok(n >= msg.length, name);
  }
});

// A response built by hand, field by field.
const HAND = Buffer.from(
  '1234' + // id
  '8580' + // QR, opcode 0, AA, RD, RA, rcode NOERROR
  '0001' + // QDCOUNT 1
  '0001' + // ANCOUNT 1
  '0000' + // NSCOUNT 0
  '0000' + // ARCOUNT 0
  '046e6f6465' + '046d657368' + '00' + // question name: "node" "mesh" root
  '001c' + '0001' + // type AAAA, class IN
  '046e6f6465' + '046d657368' + '00' + // answer name, uncompressed (dns-packet does not compress)
  '001c' + '0001' + // type AAAA, class IN
  '0000012c' + // TTL 300
  '0010' + // rdlength 16
  'fd000000000000000000000000000064', // fd00::64
  'hex');

test('dns: construct the hand-written response', () => {
  const msg: Packet = {
    id: 0x1234, type: 'response', flags: DNS_FLAG_AA | DNS_FLAG_RD | DNS_FLAG_RA,
    questions: [{ name: 'node.mesh', type: 'AAAA', class: 'IN' }],
    answers: [{ name: 'node.mesh', type: 'AAAA', class: 'IN', ttl: 300, data: 'fd00::64' }],
  };
  assert.equal(dnsLength(msg), HAND.length);
  const out = Buffer.alloc(HAND.length);
  assert.equal(emitDns(msg, out, 0), HAND.length);
  assert.deepEqual(out, HAND);
  const h = new DnsHeader().reset(out, 0, out.length);
  assert.equal(h.flags, 0x8580);
  assert.equal(h.flags & DNS_FLAG_QR, DNS_FLAG_QR);
  assert.equal(emitDns(msg, Buffer.alloc(HAND.length - 1), 0), -1); // does not fit
  assert.equal(emitDns(msg, out, 1), -1);
  const badName: Packet = { questions: [{ name: 'x'.repeat(64) + '.mesh', type: 'A' }] };
  assert.equal(dnsLength(badName), -1);
  assert.equal(emitDns(badName, out, 0), -1);
  // dns-packet throws on this one while encoding (an OPT record must be owned by the root).
  const badOpt = { additionals: [{ name: 'a.mesh', type: 'OPT', options: [] }] } as unknown as Packet;
  assert.equal(emitDns(badOpt, Buffer.alloc(64), 0), -1);
});

test('dns: truncated messages', () => {
  const out = new DnsParsed();
  const q = new DnsQuestion();
  const alias = find('IPv4 response NOERROR answers 2 alias.lab.test A ');
  for (let n = 0; n < alias.length; n++) {
    const st = parseDns(alias, 0, n, out);
    // The OPT record (11 bytes) is last: cutting anywhere before the end leaves a record short.
    assert.equal(st, Status.Truncated, `cut at ${n}`);
    assert.equal(out.message, null);
  }
  assert.equal(readDnsQuestion(alias, 0, 11, q), Status.Truncated);
  assert.equal(readDnsQuestion(alias, 0, 20, q), Status.Truncated); // inside the name
  assert.equal(readDnsQuestion(alias, 0, 12 + 16 + 3, q), Status.Truncated); // inside type/class
  assert.equal(readDnsQuestion(alias, 0, 12 + 16 + 4, q), Status.Ok);
  assert.equal(parseDns(alias, 10, alias.length, out), Status.Truncated); // range beyond buffer
  // Counts promising more records than the bytes hold.
  const more = Buffer.from(HAND);
  more.writeUInt16BE(2, 6);
  assert.equal(parseDns(more, 0, more.length, out), Status.Truncated);
});

test('dns: malformed labels, pointers and rdata', () => {
  const out = new DnsParsed();
  const q = new DnsQuestion();
  const cases: [string, Buffer][] = [];
  const header = (qd: number, an: number) => '1234' + '0100' + qd.toString(16).padStart(4, '0') +
    an.toString(16).padStart(4, '0') + '00000000';
  cases.push(['0x40 label type', Buffer.from(header(1, 0) + '4100' + '00010001', 'hex')]);
  cases.push(['pointer to itself', Buffer.from(header(1, 0) + 'c00c' + '00010001', 'hex')]);
  cases.push(['pointer forwards', Buffer.from(header(1, 0) + 'c00e' + '00010001' + '0161' + '00', 'hex')]);
  // Two names pointing at each other: the second is fine (points back), the first points forward.
  cases.push(['pointer loop', Buffer.from(header(2, 0) + 'c012' + '00010001' + 'c00c' + '00010001', 'hex')]);
  cases.push(['name over 255 bytes', Buffer.from(header(1, 0) + '3f' + '61'.repeat(63) + '3f' + '61'.repeat(63) +
    '3f' + '61'.repeat(63) + '3f' + '61'.repeat(63) + '00' + '00010001', 'hex')]);
  const rr = (type: string, rdata: string) => Buffer.from(header(0, 1) + '00' + type + '0001' + '00000000' +
    (rdata.length / 2).toString(16).padStart(4, '0') + rdata, 'hex');
  cases.push(['A with 5 bytes', rr('0001', 'c612070801')]);
  cases.push(['AAAA with 4 bytes', rr('001c', 'c6120708')]);
  cases.push(['CNAME name past rdata', rr('0005', '0461')]);
  cases.push(['CNAME with bytes after the name', rr('0005', '016100' + 'ff')]);
  cases.push(['MX without a name', rr('000f', '000a')]);
  cases.push(['OPT option past rdata', rr('0029', '000a0008' + '0102')]);
  for (const [what, b] of cases) {
    assert.equal(parseDns(b, 0, b.length, out), Status.Malformed, what);
    if (what.startsWith('pointer') || what.includes('label') || what.includes('255')) {
      assert.equal(readDnsQuestion(b, 0, b.length, q), Status.Malformed, what);
    }
  }
  assert.equal(readDnsQuestion(Buffer.from(header(0, 0), 'hex'), 0, 12, q), Status.Malformed); // no question
  // dns-packet alone would throw on these; through parseDns they are just statuses.
  const txt = rr('0010', '05616263'); // TXT string of 5 bytes in 4 bytes of rdata
  assert.equal(parseDns(txt, 0, txt.length, out), Status.Malformed);
});

test('dns: pointer chains are bounded, and long ones rejected quickly', () => {
  const out = new DnsParsed();
  const q = new DnsQuestion();
  // Question 1 is "a"; each later question's name is a pointer to the previous one's name, so
  // question k follows k-1 pointers. dns-packet would accept any depth.
  const chain = (questions: number) => {
    const parts = ['1234', '0100', questions.toString(16).padStart(4, '0'), '000000000000', '016100', '00010001'];
    for (let k = 1; k < questions; k++) parts.push((0xc000 + (k === 1 ? 12 : 19 + 6 * (k - 2))).toString(16), '00010001');
    return Buffer.from(parts.join(''), 'hex');
  };
  const ok = chain(DNS_MAX_POINTER_JUMPS + 1);
  assert.equal(parseDns(ok, 0, ok.length, out), Status.Ok);
  assert.ok(out.message!.questions!.every((x) => x.name === 'a'));
  const deep = chain(DNS_MAX_POINTER_JUMPS + 2);
  assert.equal(parseDns(deep, 0, deep.length, out), Status.Malformed);
  // A 16 KiB message of nothing but chained pointers returns (the test would time out otherwise).
  const huge = chain(2700);
  assert.equal(parseDns(huge, 0, huge.length, out), Status.Malformed);
  assert.equal(readDnsQuestion(huge, 0, huge.length, q), Status.Ok); // the first question is plain
});

/** The fewest young-generation bytes `fn` allocated when run `n` times, over several windows
 * (early windows may run before the optimising compiler has finished, and a window with a GC
 * shows shrinkage and is skipped); -1 if every window saw a GC. */
function youngBytes(fn: () => number, n: number): number {
  const used = () => getHeapSpaceStatistics().find((x) => x.space_name === 'new_space')!.space_used_size;
  let sink = 0;
  let least = -1;
  for (let i = 0; i < n; i++) sink += fn(); // warm up
  for (let attempt = 0; attempt < 12; attempt++) {
    const before = used();
    for (let i = 0; i < n; i++) sink += fn();
    const grown = used() - before;
    if (grown >= 0 && (least < 0 || grown < least)) least = grown;
  }
  return sink === -1 ? -2 : least;
}

test('dns: the header view and readDnsQuestion allocate nothing per message', () => {
  const msg = find('IPv4 response NOERROR answers 2 alias.lab.test A ');
  const h = new DnsHeader();
  const q = new DnsQuestion();
  const n = 20_000;
  const grown = youngBytes(() => {
    h.reset(msg, 0, msg.length);
    // Kept a small integer: returning a number above 2^31 would itself allocate a heap number.
    return (h.id + h.answerCount + h.rcode + (h.qr ? 1 : 0) + readDnsQuestion(msg, 0, msg.length, q) + q.hash) & 0xffff;
  }, n);
  assert.ok(grown >= 0, 'a GC ran in every measuring window');
  // One allocation per call would be at least 16 bytes each (n * 16); allow a little for V8 itself.
  assert.ok(grown < n, `grew ${grown} bytes over ${n} calls`);
  // The measurement does see allocation: a Buffer view per call.
  const viewGrown = youngBytes(() => msg.subarray(0, 12).length, n);
  assert.ok(viewGrown < 0 || viewGrown > n * 16, `subarray grew only ${viewGrown} bytes`);
});

test('dns: fuzz parseDns and readDnsQuestion: never throw, hang or read past len', () => {
  const out = new DnsParsed();
  const q = new DnsQuestion();
  const seeds = [...captured.map((p) => p.msg), HAND];
  const n = fuzzParser(seeds, (b, o, l) => {
    const st = parseDns(b, o, l, out);
    const qs = readDnsQuestion(b, o, l, q);
    const qd = qs === Status.Ok ? `${q.hash}:${q.type}:${q.end - o}` : '';
    if (st !== Status.Ok) return `${st}:${qs}:${qd}`;
    const m = out.message!;
    // Encoding what was decoded never throws: it writes dnsLength bytes or refuses with -1
    // (dns-packet cannot re-encode everything it decodes, e.g. an OPT record not owned by root).
    const len = dnsLength(m);
    if (len >= 0) {
      const written = emitDns(m, Buffer.alloc(len), 0);
      if (written !== len && written !== -1) throw new Error(`emitDns wrote ${written}, dnsLength said ${len}`);
    }
    return `${st}:${qs}:${qd}:${out.length}:${m.id}:${m.answers!.length}:${JSON.stringify(m.questions)}`;
  }, { iterations: fuzzIterations(30_000) });
  assert.ok(n > 0);
});
