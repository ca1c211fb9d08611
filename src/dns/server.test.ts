import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import dgram from 'node:dgram';
import { EventEmitter } from 'node:events';
import dnsPacket from 'dns-packet';
import { UserError } from '../util/index.js';
import { UserspaceStack, MemoryLink } from '../stack/index.js';
import { DnsResponder } from './responder.js';
import { DnsServer, DnsSocketBinding, startDnsServer, type DnsDatagramSocket } from './server.js';
import { parseDnsUpstream } from './forwarder.js';
import type { NameRecord } from './names.js';

const RECORDS: NameRecord[] = [
  { name: 'node-a', network: 'lab', ipv4: '100.64.0.1', ipv6: 'fd00:1::1' },
  { name: 'node-b', network: 'lab', ipv4: '100.64.0.2' },
];

const DIG = spawnSync('dig', ['-v'], { encoding: 'utf8' });
const NO_DIG = DIG.error ? 'dig is not installed (apt-get install dnsutils)' : false;

interface DigResult { status: string; flags: string[]; answers: string[][]; authority: string[][] }

/** Runs dig against 127.0.0.1:port and reads its status line, flags and sections. */
function dig(port: number, ...args: string[]): Promise<DigResult> {
  return new Promise((resolve, reject) => {
    execFile('dig', ['@127.0.0.1', '-p', String(port), '+time=2', '+tries=1', ...args], { timeout: 10_000 }, (err, stdout) => {
      if (err) return reject(new Error(`dig ${args.join(' ')} failed: ${err.message}\n${stdout}`));
      const status = /status: (\w+)/.exec(stdout)?.[1] ?? '';
      const flags = (/;; flags: ([^;]*);/.exec(stdout)?.[1] ?? '').trim().split(/\s+/);
      const section = (name: string) => {
        const at = stdout.indexOf(`;; ${name} SECTION:\n`);
        if (at < 0) return [];
        const rest = stdout.slice(at).split('\n').slice(1);
        const end = rest.findIndex((l) => l.trim() === '');
        return rest.slice(0, end < 0 ? rest.length : end).map((l) => l.split(/\s+/));
      };
      resolve({ status, flags, answers: section('ANSWER'), authority: section('AUTHORITY') });
    });
  });
}

async function server(records = RECORDS, upstream?: string, timeoutMs?: number): Promise<DnsServer> {
  const responder = new DnsResponder();
  responder.setRecords(records);
  return startDnsServer({
    responder, address: '127.0.0.1', port: 0,
    ...(upstream ? { upstream, forwarderOptions: { timeoutMs: timeoutMs ?? 2000 } } : {}),
  });
}

test('dns server: dig gets A, AAAA, NXDOMAIN, NODATA and uppercase names from the UDP server', { skip: NO_DIG }, async () => {
  const srv = await server();
  try {
    const { port } = srv.address();
    let r = await dig(port, 'node-a.mesh', 'A');
    assert.equal(r.status, 'NOERROR');
    assert.ok(r.flags.includes('aa'), `flags ${r.flags.join(' ')}`);
    assert.deepEqual(r.answers, [['node-a.mesh.', '10', 'IN', 'A', '100.64.0.1']]);

    r = await dig(port, 'node-a.lab', 'AAAA');
    assert.deepEqual(r.answers, [['node-a.lab.', '10', 'IN', 'AAAA', 'fd00:1::1']]);

    r = await dig(port, 'nobody.mesh', 'A');
    assert.equal(r.status, 'NXDOMAIN');
    assert.equal(r.answers.length, 0);
    assert.equal(r.authority[0]?.[3], 'SOA');

    r = await dig(port, 'node-b.lab', 'AAAA'); // NODATA: the name exists, without IPv6
    assert.equal(r.status, 'NOERROR');
    assert.equal(r.answers.length, 0);
    assert.equal(r.authority[0]?.[0], 'lab.');
    assert.equal(r.authority[0]?.[3], 'SOA');

    r = await dig(port, 'NODE-B.MESH', 'A');
    assert.equal(r.status, 'NOERROR');
    assert.deepEqual(r.answers, [['NODE-B.MESH.', '10', 'IN', 'A', '100.64.0.2']]);

    r = await dig(port, '+noedns', 'node-a.mesh', 'A'); // without EDNS too
    assert.deepEqual(r.answers[0]?.[4], '100.64.0.1');

    r = await dig(port, 'example.com', 'A');
    assert.equal(r.status, 'REFUSED');

    // setRecords is live.
    srv.responder.setRecords([{ name: 'node-z', network: 'lab', ipv4: '100.64.0.26' }]);
    assert.equal((await dig(port, 'node-a.mesh', 'A')).status, 'NXDOMAIN');
    assert.deepEqual((await dig(port, 'node-z.lab', 'A')).answers[0]?.[4], '100.64.0.26');
    const c = srv.responder.counters;
    assert.equal(c.answered, 5);
    assert.equal(c.nxDomain, 2);
    assert.equal(c.noData, 1);
    assert.equal(c.refused, 1);
  } finally {
    await srv.close();
  }
});

test('dns server: forwards other zones to an upstream; SERVFAIL when it does not answer', { skip: NO_DIG }, async () => {
  const upstream = await server([{ name: 'far', network: 'other', ipv4: '100.64.9.9' }]);
  const front = await server(RECORDS, `127.0.0.1:${upstream.address().port}`);
  const silent = dgram.createSocket('udp4');
  await new Promise<void>((resolve) => silent.bind(0, '127.0.0.1', resolve));
  const dead = await server(RECORDS, `127.0.0.1:${silent.address().port}`, 300);
  try {
    const port = front.address().port;
    let r = await dig(port, 'far.other', 'A');
    assert.equal(r.status, 'NOERROR');
    assert.deepEqual(r.answers, [['far.other.', '10', 'IN', 'A', '100.64.9.9']]);
    r = await dig(port, 'nobody.other', 'A');
    assert.equal(r.status, 'NXDOMAIN');
    r = await dig(port, 'node-a.mesh', 'A'); // ours stay ours
    assert.ok(r.flags.includes('ra'));
    assert.deepEqual(r.answers[0]?.[4], '100.64.0.1');
    assert.equal(front.responder.counters.forwarded, 2);
    assert.equal(front.responder.counters.upstreamReplies, 2);

    r = await dig(dead.address().port, 'far.other', 'A');
    assert.equal(r.status, 'SERVFAIL');
    assert.equal(dead.responder.counters.upstreamTimeouts, 1);
  } finally {
    await Promise.all([front.close(), upstream.close(), dead.close()]);
    silent.close();
  }
});

test('dns server: the binding answers on the userspace stack\'s UDP socket', async () => {
  const a = new UserspaceStack({ addresses: ['100.64.0.1/24', 'fd00::1/64'], name: 'a' });
  const b = new UserspaceStack({ addresses: ['100.64.0.2/24', 'fd00::2/64'], name: 'b' });
  const link = new MemoryLink(a, b);
  try {
    const responder = new DnsResponder();
    responder.setRecords(RECORDS);
    for (const [family, addr] of [[4, '100.64.0.2'], [6, 'fd00::2']] as const) {
      const sock = b.udpSocket(family).bind(53);
      const binding = new DnsSocketBinding(sock, responder);
      const cli = a.udpSocket(family);
      const got = new Promise<Buffer>((resolve) => cli.once('message', resolve));
      cli.send(dnsPacket.encode({ type: 'query', id: 7, questions: [{ name: 'Node-A.Lab', type: 'AAAA' }] }), 53, addr);
      const reply = dnsPacket.decode(await got);
      assert.equal(reply.id, 7);
      assert.equal((reply.answers![0] as { data: string }).data, 'fd00:1::1');
      binding.detach();
      cli.close();
      sock.close();
    }
    assert.equal(responder.counters.answered, 2);
  } finally {
    link.close();
    a.close();
    b.close();
  }
});

/** A dgram-like socket whose sends complete only when told to. */
class HeldSocket extends EventEmitter implements DnsDatagramSocket {
  readonly sent: { msg: Buffer; cb?: (err: Error | null, bytes: number) => void }[] = [];
  send(msg: Uint8Array, _port: number, _address: string, cb?: (err: Error | null, bytes: number) => void): void {
    this.sent.push({ msg: Buffer.from(msg), ...(cb ? { cb } : {}) });
  }
}

test('dns server: replies in flight are bounded; buffers return when sends complete; detach stops answering', () => {
  const responder = new DnsResponder();
  responder.setRecords(RECORDS);
  const sock = new HeldSocket();
  const binding = new DnsSocketBinding(sock, responder, { maxInFlight: 2 });
  const q = dnsPacket.encode({ type: 'query', id: 1, questions: [{ name: 'node-a.mesh', type: 'A' }] });
  const rinfo = { address: '127.0.0.1', port: 5353 };
  for (let i = 0; i < 3; i++) sock.emit('message', q, rinfo);
  assert.equal(sock.sent.length, 2);
  assert.equal(responder.counters.busy, 1);
  // The first two replies are intact although the third query came in before they were sent.
  for (const s of sock.sent) assert.equal((dnsPacket.decode(s.msg).answers![0] as { data: string }).data, '100.64.0.1');
  sock.sent[0]!.cb!(null, 0);
  sock.sent[1]!.cb!(new Error('EPERM'), 0);
  assert.equal(responder.counters.sendErrors, 1);
  sock.emit('message', q, rinfo);
  sock.emit('message', q, rinfo);
  assert.equal(sock.sent.length, 4);
  sock.emit('error', new Error('socket error'));
  assert.equal(responder.counters.sendErrors, 2);
  binding.detach();
  assert.equal(sock.listenerCount('message'), 0);
  assert.equal(sock.listenerCount('error'), 0);
});

test('dns server: bad listen addresses, busy ports and upstreams are user errors', async () => {
  const responder = new DnsResponder();
  await assert.rejects(startDnsServer({ responder, address: 'localhost', port: 0 }), /"localhost" is not an IP address/);
  const srv = await startDnsServer({ responder, address: '127.0.0.1', port: 0 });
  try {
    await assert.rejects(startDnsServer({ responder, address: '127.0.0.1', port: srv.address().port }), (e: Error) =>
      e instanceof UserError && /cannot listen on 127.0.0.1:\d+: EADDRINUSE/.test(e.message));
  } finally {
    await srv.close();
  }
  assert.deepEqual(parseDnsUpstream('192.0.2.53'), { address: '192.0.2.53', port: 53 });
  assert.deepEqual(parseDnsUpstream('192.0.2.53:5353'), { address: '192.0.2.53', port: 5353 });
  assert.deepEqual(parseDnsUpstream('2001:DB8:0::53'), { address: '2001:db8::53', port: 53 });
  assert.deepEqual(parseDnsUpstream('[2001:db8::53]:5300'), { address: '2001:db8::53', port: 5300 });
  assert.throws(() => parseDnsUpstream('resolver.example'), /not an IP address with an optional port/);
  assert.throws(() => parseDnsUpstream('192.0.2.53:99999'), /port 99999 is not 1-65535/);
});
