// Tests of the UAPI protocol: the streaming set/get parser (every chunk boundary, garbage,
// invalid values), the get-reply formatter, and the socket server (several requests per
// connection, several connections, garbage, back-pressure, socket file handling).
// The protocol against the real wg(8) is in test/uapi-wg.test.ts.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { mkdtempSync, rmSync, statSync, existsSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  UapiRequestParser, UapiError, uapiGetReply, uapiStatusLine, parseAllowedIp, parseEndpointValue,
  UAPI_MAX_LINE, type UapiRequest, type UapiSetOp, type UapiDeviceState,
} from './uapi.js';
import { UapiServer, uapiSocketPath } from './uapi-server.js';
import { MemoryUapiDevice } from './uapi-memory-device.js';
import { fuzzParser, fuzzIterations } from '../wire/fuzz-harness.js';

const K1 = '11'.repeat(32);
const K2 = 'a2'.repeat(32);
const PSK = '3c'.repeat(32);

const SMALL_SET =
  'set=1\n' +
  `private_key=${K1}\n` +
  'listen_port=51820\n' +
  'fwmark=0\n' +
  'replace_peers=true\n' +
  `public_key=${K2}\n` +
  `preshared_key=${PSK}\n` +
  'endpoint=[fd00::1]:51820\n' +
  'persistent_keepalive_interval=25\n' +
  'replace_allowed_ips=true\n' +
  'allowed_ip=10.0.0.0/24\n' +
  'allowed_ip=fd00::/64\n' +
  'protocol_version=1\n' +
  '\n' +
  'get=1\n\n';

function parseAll(chunks: Buffer[]): UapiRequest[] {
  const p = new UapiRequestParser();
  const out: UapiRequest[] = [];
  for (const c of chunks) p.push(c, out);
  return out;
}

function setOps(text: string): UapiSetOp[] {
  const out = parseAll([Buffer.from(text)]);
  assert.equal(out.length, 1);
  const r = out[0]!;
  assert.equal(r.kind, 'set', JSON.stringify(r));
  return (r as { ops: UapiSetOp[] }).ops;
}

function setError(text: string): UapiError {
  const out = parseAll([Buffer.from(`set=1\n${text}\n\n`)]);
  assert.equal(out.length, 1);
  const r = out[0]!;
  assert.equal(r.kind, 'set-error', `expected an error for ${JSON.stringify(text)}`);
  return (r as { error: UapiError }).error;
}

test('uapi parser: a full set request gives typed operations in order', () => {
  const out = parseAll([Buffer.from(SMALL_SET)]);
  assert.equal(out.length, 2);
  assert.equal(out[1]!.kind, 'get');
  const ops = (out[0] as { ops: UapiSetOp[] }).ops;
  assert.deepEqual(ops.map((o) => o.type), [
    'private_key', 'listen_port', 'fwmark', 'replace_peers', 'public_key', 'preshared_key', 'endpoint',
    'persistent_keepalive_interval', 'replace_allowed_ips', 'allowed_ip', 'allowed_ip', 'protocol_version',
  ]);
  assert.deepEqual(ops[0], { type: 'private_key', key: Buffer.from(K1, 'hex') });
  assert.deepEqual(ops[1], { type: 'listen_port', port: 51820 });
  assert.deepEqual(ops[2], { type: 'fwmark', mark: 0 });
  assert.deepEqual(ops[4], { type: 'public_key', key: Buffer.from(K2, 'hex') });
  assert.deepEqual(ops[5], { type: 'preshared_key', key: Buffer.from(PSK, 'hex') });
  assert.deepEqual(ops[6], { type: 'endpoint', endpoint: '[fd00::1]:51820', family: 6, address: 'fd00::1', port: 51820 });
  assert.deepEqual(ops[7], { type: 'persistent_keepalive_interval', seconds: 25 });
  assert.deepEqual(ops[9], { type: 'allowed_ip', family: 4, address: Buffer.from([10, 0, 0, 0]), cidr: 24, prefix: '10.0.0.0/24' });
  assert.equal((ops[10] as { prefix: string }).prefix, 'fd00::/64');
});

test('uapi parser: the same requests come out for a split at every byte position', () => {
  const whole = Buffer.from(SMALL_SET);
  const expected = JSON.stringify(parseAll([whole]));
  for (let i = 0; i <= whole.length; i++) {
    const got = JSON.stringify(parseAll([whole.subarray(0, i), whole.subarray(i)]));
    assert.equal(got, expected, `split at ${i}`);
  }
  // Three pieces, at every pair of positions, and one byte at a time.
  for (let i = 0; i <= whole.length; i += 3) {
    for (let j = i; j <= whole.length; j += 5) {
      const got = JSON.stringify(parseAll([whole.subarray(0, i), whole.subarray(i, j), whole.subarray(j)]));
      assert.equal(got, expected, `split at ${i}, ${j}`);
    }
  }
  const bytes: Buffer[] = [];
  for (let i = 0; i < whole.length; i++) bytes.push(whole.subarray(i, i + 1));
  assert.equal(JSON.stringify(parseAll(bytes)), expected);
});

test('uapi parser: a request is complete only at its empty line', () => {
  const p = new UapiRequestParser();
  const out: UapiRequest[] = [];
  p.push(Buffer.from('set=1\nlisten_port=1\n'), out);
  assert.equal(out.length, 0);
  assert.equal(p.idle, false);
  p.push(Buffer.from('\n'), out);
  assert.equal(out.length, 1);
  assert.equal(p.idle, true);
});

test('uapi parser: all-zero private and preshared keys mean "none"', () => {
  const ops = setOps(`set=1\nprivate_key=${'0'.repeat(64)}\npublic_key=${K2}\npreshared_key=${'0'.repeat(64)}\n\n`);
  assert.deepEqual(ops[0], { type: 'private_key', key: null });
  assert.deepEqual(ops[2], { type: 'preshared_key', key: null });
});

test('uapi parser: uppercase hex keys are accepted', () => {
  const ops = setOps(`set=1\npublic_key=${K2.toUpperCase()}\n\n`);
  assert.deepEqual(ops[0], { type: 'public_key', key: Buffer.from(K2, 'hex') });
});

test('uapi parser: invalid keys are refused with EINVAL', () => {
  for (const bad of ['', '11', K1.slice(2), K1 + '11', 'zz' + K1.slice(2), ` ${K1.slice(1)}`, Buffer.from(K1, 'hex').toString('base64')]) {
    assert.equal(setError(`public_key=${bad}`).errno, 22, bad);
    assert.equal(setError(`private_key=${bad}`).errno, 22, bad);
    assert.equal(setError(`public_key=${K1}\npreshared_key=${bad}`).errno, 22, bad);
  }
  assert.match(setError('public_key=xyz').message, /public_key "xyz" is not 64 hex digits/);
});

test('uapi parser: every value is validated', () => {
  const peer = `public_key=${K2}\n`;
  const cases: [string, RegExp][] = [
    ['listen_port=65536', /listen_port "65536" is not 0-65535/],
    ['listen_port=-1', /listen_port/],
    ['listen_port=', /listen_port/],
    ['listen_port=0x10', /listen_port/],
    ['fwmark=4294967296', /fwmark/],
    ['fwmark=off', /fwmark/],
    ['replace_peers=false', /replace_peers must be "true"/],
    ['frobnicate=1', /invalid device key "frobnicate"/],
    ['endpoint=1.2.3.4:5', /invalid device key "endpoint"/], // a peer key before any public_key
    [`${peer}listen_port=1`, /invalid peer key "listen_port"/], // a device key inside a peer section
    [`${peer}remove=yes`, /remove must be "true"/],
    [`${peer}update_only=1`, /update_only/],
    [`${peer}replace_allowed_ips=TRUE`, /replace_allowed_ips/],
    [`${peer}persistent_keepalive_interval=65536`, /persistent_keepalive_interval/],
    [`${peer}protocol_version=2`, /protocol_version "2" is not supported/],
    [`${peer}endpoint=198.18.0.1`, /endpoint/],
    [`${peer}endpoint=198.18.0.1:65536`, /endpoint/],
    [`${peer}endpoint=fd00::1:51820`, /endpoint/],
    [`${peer}endpoint=example.com:51820`, /endpoint/],
    [`${peer}endpoint=[fd00::1]51820`, /endpoint/],
    [`${peer}endpoint=[198.18.0.1]:1`, /endpoint/],
    [`${peer}endpoint=256.0.0.1:1`, /endpoint/],
    [`${peer}allowed_ip=10.0.0.0/33`, /allowed_ip "10.0.0.0\/33"/],
    [`${peer}allowed_ip=fd00::/129`, /allowed_ip/],
    [`${peer}allowed_ip=10.0.0.0`, /allowed_ip/],
    [`${peer}allowed_ip=10.0.0.0/024`, /allowed_ip/],
    [`${peer}allowed_ip=10.0.0.0/-1`, /allowed_ip/],
    [`${peer}allowed_ip=10.0.0/24`, /allowed_ip/],
    [`${peer}allowed_ip=fe80::1%eth0/64`, /allowed_ip/],
    [`${peer}allowed_ip=fd00::g/64`, /allowed_ip/],
    [`${peer}bogus=1`, /invalid peer key "bogus"/],
  ];
  for (const [line, re] of cases) {
    const err = setError(line);
    assert.equal(err.errno, 22, line);
    assert.match(err.message, re, line);
  }
});

test('uapi parser: a line without "=" is a protocol error, and the connection goes on after a refused set', () => {
  const out = parseAll([Buffer.from('set=1\nlisten_port 5\nlisten_port=7\n\nget=1\n\n')]);
  assert.equal(out.length, 2);
  assert.equal(out[0]!.kind, 'set-error');
  assert.equal((out[0] as { error: UapiError }).error.errno, 71);
  assert.equal(out[1]!.kind, 'get');
});

test('uapi parser: allowed IPs and endpoints come out canonical', () => {
  assert.equal(parseAllowedIp('10.1.2.3/8')!.prefix, '10.0.0.0/8');
  assert.equal(parseAllowedIp('10.1.2.3/32')!.prefix, '10.1.2.3/32');
  assert.equal(parseAllowedIp('0.0.0.0/0')!.prefix, '0.0.0.0/0');
  assert.equal(parseAllowedIp('FD00:0:0:0:0:0:0:1/64')!.prefix, 'fd00::/64');
  assert.equal(parseAllowedIp('fd00::1:2:3/127')!.prefix, 'fd00::1:2:2/127');
  assert.equal(parseAllowedIp('::/0')!.prefix, '::/0');
  assert.deepEqual(parseAllowedIp('fd12:3456::ff/120')!.address, Buffer.from('fd123456' + '0'.repeat(24), 'hex'));
  assert.deepEqual(parseAllowedIp('10.255.255.255/9')!.address, Buffer.from([10, 128, 0, 0]));
  assert.equal(parseEndpointValue('198.18.0.1:51820')!.endpoint, '198.18.0.1:51820');
  assert.equal(parseEndpointValue('[FD00:0::1]:1')!.endpoint, '[fd00::1]:1');
  assert.equal(parseEndpointValue('[fe80::1%veth0]:9')!.endpoint, '[fe80::1%veth0]:9');
  assert.equal(parseEndpointValue('[::ffff:198.18.0.1]:9')!.family, 6);
});

test('uapi parser: garbage operations, a trailing get character and over-long lines are fatal', () => {
  for (const text of ['hello\n', '\n', 'get=2\n\n', 'GET=1\n\n', 'set=1 \n\n', 'get=1\nx\n']) {
    const out = parseAll([Buffer.from(text)]);
    assert.equal(out.length, 1, JSON.stringify(text));
    assert.equal(out[0]!.kind, 'fatal', JSON.stringify(text));
  }
  const p = new UapiRequestParser();
  const out: UapiRequest[] = [];
  p.push(Buffer.from('set=1\nallowed_ip='), out);
  for (let i = 0; i < 10 && !p.closed; i++) p.push(Buffer.alloc(UAPI_MAX_LINE / 4, 0x31), out);
  assert.equal(p.closed, true);
  assert.equal(out[0]!.kind, 'fatal');
  // Later bytes are ignored.
  p.push(Buffer.from('\nget=1\n\n'), out);
  assert.equal(out.length, 1);
});

test('uapi parser: a huge request in many chunks', () => {
  let text = `set=1\npublic_key=${K2}\nreplace_allowed_ips=true\n`;
  for (let i = 0; i < 30000; i++) text += `allowed_ip=10.${i >> 8}.${i & 255}.0/24\n`;
  text += '\n';
  const whole = Buffer.from(text);
  const chunks: Buffer[] = [];
  for (let i = 0; i < whole.length; i += 1237) chunks.push(whole.subarray(i, i + 1237));
  const out = parseAll(chunks);
  assert.equal(out.length, 1);
  const ops = (out[0] as { ops: UapiSetOp[] }).ops;
  assert.equal(ops.length, 30002);
  assert.equal((ops[30001] as { prefix: string }).prefix, '10.117.47.0/24');
});

test('uapi parser: fuzzed input never throws or hangs', () => {
  const seeds = [Buffer.from(SMALL_SET), Buffer.from('get=1\n\n'), Buffer.from('set=1\nlisten_port=1\n\n')];
  fuzzParser(seeds, (buf, off, len) => {
    const p = new UapiRequestParser();
    const out: UapiRequest[] = [];
    const view = buf.subarray(off, off + len);
    const cut = len >> 1;
    p.push(view.subarray(0, cut), out);
    p.push(view.subarray(cut), out);
    return out.map((r) => r.kind + ('error' in r ? r.error.errno : '')).join(',');
  }, { iterations: fuzzIterations(20_000) });
});

test('uapi reply: get output in wg order, chunked the same as whole', () => {
  const state: UapiDeviceState = {
    privateKey: Buffer.from(K1, 'hex'),
    listenPort: 51820,
    fwmark: 0,
    peers: [{
      publicKey: Buffer.from(K2, 'hex'), presharedKey: null, endpoint: '198.18.0.1:51820', persistentKeepalive: 25,
      lastHandshakeWallMs: 1_700_000_000_123, rxBytes: 7, txBytes: 2n ** 60n, allowedIps: ['10.0.0.0/24', 'fd00::/64'], protocolVersion: 1,
    }],
  };
  const text = [...uapiGetReply(state)].join('');
  assert.equal(text,
    `private_key=${K1}\nlisten_port=51820\n` +
    `public_key=${K2}\npreshared_key=${'0'.repeat(64)}\nprotocol_version=1\nendpoint=198.18.0.1:51820\n` +
    'last_handshake_time_sec=1700000000\nlast_handshake_time_nsec=123000000\ntx_bytes=1152921504606846976\nrx_bytes=7\n' +
    'persistent_keepalive_interval=25\nallowed_ip=10.0.0.0/24\nallowed_ip=fd00::/64\nerrno=0\n\n');
  const pieces = [...uapiGetReply(state, 20)];
  assert.ok(pieces.length > 2);
  assert.equal(pieces.join(''), text);
  state.fwmark = 7;
  state.privateKey = null;
  state.listenPort = 0;
  assert.match([...uapiGetReply(state)].join(''), /^fwmark=7\npublic_key=/);
  assert.equal([...uapiGetReply({ privateKey: null, listenPort: 0, fwmark: 0, peers: [] })].join(''), 'errno=0\n\n');
  assert.equal(uapiStatusLine(0), 'errno=0\n\n');
  assert.equal(uapiStatusLine(22), 'errno=-22\n\n');
});

// ---- the socket server ----

function tempDir(): string {
  return mkdtempSync(join(tmpdir(), 'meshtun-uapi-'));
}

/** Sends `text` and collects what comes back until the server closes or `until` matches. */
function exchange(path: string, text: string | Buffer, until?: (s: string) => boolean): Promise<string> {
  return new Promise((resolve, reject) => {
    const s: Socket = connect(path);
    let got = '';
    s.on('connect', () => s.write(text));
    s.on('data', (d) => {
      got += d.toString('latin1');
      if (until?.(got)) { s.destroy(); resolve(got); }
    });
    s.on('end', () => resolve(got));
    s.on('error', reject);
  });
}

const replies = (n: number) => (s: string) => s.split(/errno=-?\d+\n\n/).length > n;

test('uapi server: several requests on one connection, several connections, applied in order', async () => {
  const dir = tempDir();
  const device = new MemoryUapiDevice();
  const server = await UapiServer.listen(join(dir, 'sub', 'mt0.sock'), device);
  try {
    assert.equal(statSync(join(dir, 'sub')).mode & 0o777, 0o700);
    assert.equal(statSync(server.path).mode & 0o777, 0o600);
    const reply = await exchange(server.path, SMALL_SET + 'set=1\nlisten_port=99999\n\nget=1\n\n', replies(4));
    const parts = reply.split(/(?<=errno=-?\d+\n\n)/);
    assert.equal(parts[0], 'errno=0\n\n');
    assert.match(parts[1]!, /^private_key=1111.*\nlisten_port=51820\npublic_key=a2a2.*\npreshared_key=3c3c.*endpoint=\[fd00::1\]:51820\n.*allowed_ip=10\.0\.0\.0\/24\nallowed_ip=fd00::\/64\nerrno=0\n\n$/s);
    assert.equal(parts[2], 'errno=-22\n\n');
    assert.equal(parts[3], parts[1]);
    // Parallel connections each get whole answers.
    const all = await Promise.all(Array.from({ length: 8 }, (_, i) =>
      exchange(server.path, `set=1\npublic_key=${(i + 16).toString(16).repeat(32)}\nallowed_ip=10.9.${i}.0/24\n\nget=1\n\n`, replies(2))));
    for (const r of all) assert.match(r, /^errno=0\n\n(.|\n)*errno=0\n\n$/);
    assert.equal(device.peers.size, 9);
  } finally {
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  }
  assert.equal(existsSync(server.path), false);
});

test('uapi server: garbage gets an errno and a closed connection; the server lives on', async () => {
  const dir = tempDir();
  const server = await UapiServer.listen(join(dir, 'mt1.sock'), new MemoryUapiDevice());
  try {
    assert.equal(await exchange(server.path, 'GET / HTTP/1.1\r\nHost: x\r\n\r\n'), 'errno=-71\n\n');
    assert.equal(await exchange(server.path, Buffer.alloc(20000, 0xff)), 'errno=-71\n\n');
    assert.equal(await exchange(server.path, 'get=1\n\nbye\nget=1\n\n'), 'errno=0\n\nerrno=-71\n\n');
    // A client that half-closes after its request still gets the answer.
    const half = await new Promise<string>((resolve, reject) => {
      const s = connect(server.path, () => s.end('get=1\n\n'));
      let got = '';
      s.on('data', (d) => { got += d; });
      s.on('end', () => resolve(got));
      s.on('error', reject);
    });
    assert.equal(half, 'errno=0\n\n');
    assert.equal(await exchange(server.path, 'get=1\n\n', replies(1)), 'errno=0\n\n');
  } finally {
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('uapi server: device errors become errno answers', async () => {
  const dir = tempDir();
  const device = {
    getConfig(): UapiDeviceState { throw new Error('boom'); },
    async applyConfig(ops: UapiSetOp[]) {
      await new Promise((r) => setTimeout(r, 5));
      if (ops.some((o) => o.type === 'listen_port')) throw new UapiError(98, 'port in use');
      throw new Error('unexpected');
    },
  };
  const server = await UapiServer.listen(join(dir, 'mt2.sock'), device);
  try {
    const r = await exchange(server.path, 'set=1\nlisten_port=1\n\nset=1\nfwmark=1\n\nget=1\n\n', replies(3));
    assert.equal(r, 'errno=-98\n\nerrno=-55\n\nerrno=5\n\n');
  } finally {
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('uapi server: a get reply with 50,000 allowed IPs reaches a slow reader whole', async () => {
  const dir = tempDir();
  const device = new MemoryUapiDevice();
  let set = `set=1\npublic_key=${K2}\n`;
  for (let i = 0; i < 50000; i++) set += `allowed_ip=fd00::${(i >> 16).toString(16)}:${(i & 0xffff).toString(16)}/128\n`;
  device.applyConfig(setOps(set + '\n'));
  const server = await UapiServer.listen(join(dir, 'mt3.sock'), device);
  try {
    const text = await new Promise<string>((resolve, reject) => {
      const s = connect(server.path, () => s.write('get=1\n\n'));
      const parts: Buffer[] = [];
      s.on('data', (d) => {
        parts.push(d);
        // Read slowly so the server's writes fill the socket and must wait for 'drain'.
        s.pause();
        setTimeout(() => s.resume(), 1);
        if (d.toString('latin1').endsWith('errno=0\n\n')) { s.destroy(); resolve(Buffer.concat(parts).toString()); }
      });
      s.on('error', reject);
    });
    const lines = text.split('\n').filter((l) => l.startsWith('allowed_ip='));
    assert.equal(lines.length, 50000);
    assert.equal(lines[49999], 'allowed_ip=fd00::c34f/128');
    assert.ok(text.endsWith('errno=0\n\n'));
  } finally {
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('uapi server: a stale socket file is replaced, a live one is refused, a non-socket is kept', async () => {
  const dir = tempDir();
  try {
    const path = join(dir, 'mt4.sock');
    // A stale socket file: bound by a process that exited without removing it.
    spawnSync(process.execPath, ['-e', `require('net').createServer().listen(${JSON.stringify(path)}, () => process.exit(0))`]);
    assert.ok(existsSync(path), 'a stale socket file exists');
    const a = await UapiServer.listen(path, new MemoryUapiDevice());
    assert.equal(await exchange(path, 'get=1\n\n', replies(1)), 'errno=0\n\n');
    await assert.rejects(UapiServer.listen(path, new MemoryUapiDevice()), /in use by another process/);
    await a.close();
    assert.equal(existsSync(path), false);
    writeFileSync(path, 'not a socket');
    await assert.rejects(UapiServer.listen(path, new MemoryUapiDevice()), /exists and is not a socket/);
    assert.equal(existsSync(path), true);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('uapi server: interface names are checked for the socket path', () => {
  assert.equal(uapiSocketPath('mt0'), '/var/run/wireguard/mt0.sock');
  assert.throws(() => uapiSocketPath('../etc'), /invalid interface name/);
  assert.throws(() => uapiSocketPath('a-very-long-name-x'), /invalid interface name/);
  assert.throws(() => uapiSocketPath(''), /invalid interface name/);
});
