// `meshtun peers`, `ping` and `traceroute`: argument parsing (flags, defaults, mistakes named as
// UserErrors before the daemon is asked), the printed forms, and the error without a daemon.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { UserError } from '../util/index.js';
import {
  parsePingArgs, parseTraceArgs, formatPeers, formatPingLine, formatPingSummary, formatTrace, describePath, ping, peers, traceroute,
} from './mesh-net-commands.js';
import type { MeshPeersReply, MeshTraceReply } from '../daemon/mesh-api.js';

const isUserError = (re: RegExp) => (e: unknown) => e instanceof UserError && re.test(e.message);

test('ping args: defaults, flags, --flag=value', () => {
  assert.deepEqual(parsePingArgs(['laptop']), { target: 'laptop', count: 4, intervalMs: 1000, timeoutMs: 2000, json: false });
  assert.deepEqual(parsePingArgs(['-c', '3', 'web.mesh', '-6', '--ttl', '2', '--json', '-i', '0.2', '-W', '1.5']),
    { target: 'web.mesh', count: 3, family: 6, ttl: 2, intervalMs: 200, timeoutMs: 1500, json: true });
  assert.equal(parsePingArgs(['--count=7', '100.64.0.2', '-4']).count, 7);
  assert.equal(parsePingArgs(['100.64.0.2', '-4']).family, 4);
});

test('ping args: mistakes', () => {
  assert.throws(() => parsePingArgs([]), isUserError(/name the node/));
  assert.throws(() => parsePingArgs(['a', 'b']), isUserError(/one target at a time/));
  assert.throws(() => parsePingArgs(['a', '-c', '0']), isUserError(/-c needs a whole number from 1 to 1000, not "0"/));
  assert.throws(() => parsePingArgs(['a', '-c']), isUserError(/-c needs/));
  assert.throws(() => parsePingArgs(['a', '--ttl', '300']), isUserError(/--ttl/));
  assert.throws(() => parsePingArgs(['a', '-4', '-6']), isUserError(/exclude each other/));
  assert.throws(() => parsePingArgs(['a', '--flood']), isUserError(/unknown option "--flood"/));
});

test('traceroute args: defaults, flags, mistakes', () => {
  assert.deepEqual(parseTraceArgs(['laptop']), { target: 'laptop', maxHops: 16, probesPerHop: 3, timeoutMs: 2000, json: false });
  assert.deepEqual(parseTraceArgs(['-6', 'laptop', '--max-hops', '4', '-q', '1', '-w', '0.5', '--json']),
    { target: 'laptop', family: 6, maxHops: 4, probesPerHop: 1, timeoutMs: 500, json: true });
  assert.throws(() => parseTraceArgs(['laptop', '--max-hops', '65']), isUserError(/--max-hops needs a whole number from 1 to 64/));
  assert.throws(() => parseTraceArgs([]), isUserError(/name the node/));
  assert.throws(() => parseTraceArgs(['x', '-c', '3']), isUserError(/unknown option "-c"/));
});

test('peers, ping, traceroute without a daemon say so', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'mt-cli-'));
  const saved = process.env.MESHTUN_STATE_DIR;
  process.env.MESHTUN_STATE_DIR = dir;
  try {
    await assert.rejects(peers.run([]), isUserError(/no mesh daemon runs for the state directory/));
    await assert.rejects(ping.run(['laptop', '-c', '1']), isUserError(/no mesh daemon runs/));
    await assert.rejects(traceroute.run(['laptop']), isUserError(/no mesh daemon runs/));
    await assert.rejects(peers.run(['extra']), isUserError(/unexpected "extra"/));
  } finally {
    if (saved === undefined) delete process.env.MESHTUN_STATE_DIR;
    else process.env.MESHTUN_STATE_DIR = saved;
    rmSync(dir, { recursive: true, force: true });
  }
});

test('printed forms: peers table, ping lines and summary, traceroute hops', () => {
  const r: MeshPeersReply = {
    network: 'home', self: { name: 'a', ipv4: '100.64.0.1', ipv6: 'fd00::1' },
    peers: [
      {
        name: 'web', ipv4: '100.64.0.2', ipv6: 'fd00::2', publicKey: 'k', tags: [], endpoint: '198.18.0.2:51820', endpoints: [],
        path: { kind: 'direct', via: null, state: 'direct', transport: 'udp', endpoint: '198.18.0.2:51820', rttMs: 0.84, since: new Date(Date.now() - 65_000).toISOString() }, latestHandshake: Date.now() - 3000, lastReceived: Date.now(), rxBytes: 2048, txBytes: 10, online: true, exitNode: false, routes: [],
      },
      {
        name: 'db', ipv4: '100.64.0.3', ipv6: 'fd00::3', publicKey: 'k2', tags: [], endpoint: null, endpoints: [],
        path: { kind: 'relay', via: 'web', state: 'failed', transport: 'udp', endpoint: null, rttMs: null, since: null }, latestHandshake: 0, lastReceived: 0, rxBytes: 0, txBytes: 0, online: false, exitNode: false, routes: [],
      },
    ],
  };
  const table = formatPeers(r).split('\n');
  assert.match(table[0]!, /^NAME\s+IPV4\s+IPV6\s+PATH\s+TRANSPORT\s+ENDPOINT\s+RTT\s+SINCE\s+HANDSHAKE\s+RX\s+TX\s+STATUS$/);
  assert.match(table[1]!, /^web\s+100\.64\.0\.2\s+fd00::2\s+direct\s+udp\s+198\.18\.0\.2:51820\s+0\.8 ms\s+1 min ago\s+3 s ago\s+2\.0 KiB\s+10 B\s+online$/);
  assert.match(table[2]!, /^db .*relay via web\s+udp\s+-\s+-\s+-\s+never .*offline$/);
  assert.equal(describePath({ kind: 'none', via: null, state: null, transport: 'udp', endpoint: null, rttMs: null, since: null }), 'none');
  assert.match(formatPeers({ ...r, peers: [] }), /no peers in network "home"/);

  const base = { seq: 9, ttl: 64, bytes: 56, code: null };
  assert.equal(formatPingLine({ ...base, kind: 'reply', from: '100.64.0.2', rttMs: 0.512, replyTtl: 64 }, 1, '100.64.0.2', 'web', 'web'),
    '64 bytes from web (100.64.0.2): icmp_seq=1 ttl=64 time=0.512 ms');
  assert.equal(formatPingLine({ ...base, kind: 'timeout', from: null, rttMs: null, replyTtl: null }, 2, '100.64.0.2', 'web', null), 'Request timeout for icmp_seq=2');
  assert.equal(formatPingLine({ ...base, kind: 'time-exceeded', from: '100.64.0.9', rttMs: 1, replyTtl: 63 }, 3, '100.64.0.2', 'web', null),
    'From 100.64.0.9 icmp_seq=3 Time to live exceeded');
  assert.equal(formatPingSummary('web', { sent: 3, received: 2, loss: 33.3, minMs: 1, avgMs: 1.5, maxMs: 2 }),
    '--- web ping statistics ---\n3 packets transmitted, 2 received, 33.3% packet loss\nrtt min/avg/max = 1/1.5/2 ms\n');

  const t: MeshTraceReply = {
    target: 'db', name: 'db', address: '100.64.0.3', family: 4, source: '100.64.0.1', maxHops: 16, reached: true,
    hops: [
      { hop: 1, address: '100.64.0.2', name: 'web', rtts: [0.4, null, 0.5], reached: false, unreachable: null },
      { hop: 2, address: null, name: null, rtts: [null, null, null], reached: false, unreachable: null },
      { hop: 3, address: '100.64.0.3', name: 'db', rtts: [0.9, 0.8, 0.7], reached: true, unreachable: null },
    ],
  };
  assert.equal(formatTrace(t), [
    'traceroute to db (100.64.0.3) from 100.64.0.1, 16 hops max',
    ' 1  web (100.64.0.2)  0.4 ms  *  0.5 ms',
    ' 2  *  *  *',
    ' 3  db (100.64.0.3)  0.9 ms  0.8 ms  0.7 ms',
  ].join('\n') + '\n');
  assert.match(formatTrace({ ...t, reached: false, hops: [] }), /not reached/);
});
