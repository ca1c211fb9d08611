// Port forward tests on loopback with the kernel TunnelNet as both sides: TCP forwards in both
// directions carry a file (SHA-256 compared) and count bytes; a slow client holds the target
// back (flow control) without losing bytes; an unreachable target resets the client; UDP
// forwards keep one session per client and close idle ones; the connection limit; live reload
// adds and removes pairs and keeps unchanged ones (with their counters) running.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { createSocket, type Socket as DgramSocket } from 'node:dgram';
import { KernelTunnelNet } from './dialer.js';
import { SystemResolver } from './resolver.js';
import { ForwardSet } from './forwards.js';
import { parseForwardSpec } from './forward-spec.js';
import type { ForwardContext } from './forward-context.js';
import { startFileServer, freePort, curl } from './testing.js';

const kernel = new KernelTunnelNet();
const ctx = (over: Partial<ForwardContext> = {}): ForwardContext => ({
  local: kernel, tunnel: kernel, tunnelResolver: new SystemResolver(), localResolver: new SystemResolver(),
  maxConnections: 64, udpIdleMs: 60_000, ...over,
});
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
let dir = '';
let web: { server: Server; port: number };
let fileSha = '';
let echo: DgramSocket;
let echoPort = 0;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'meshtun-fwd-'));
  const data = randomBytes(4 * 1024 * 1024);
  fileSha = sha(data);
  writeFileSync(join(dir, 'file'), data);
  web = await startFileServer('127.0.0.1', 0, join(dir, 'file'));
  echo = createSocket('udp4');
  echo.on('message', (m, r) => echo.send(Buffer.concat([Buffer.from('echo:'), m]), r.port, r.address));
  await new Promise<void>((resolve) => echo.bind(0, '127.0.0.1', () => resolve()));
  echoPort = echo.address().port;
});

after(() => {
  web?.server.close();
  echo?.close();
  rmSync(dir, { recursive: true, force: true });
});

async function until(fn: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!fn()) {
    if (Date.now() > end) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 10));
  }
}

async function fetchThrough(port: number): Promise<string> {
  const out = join(dir, `got-${port}`);
  const r = await curl(['-o', out, `http://127.0.0.1:${port}/file`]);
  assert.equal(r.code, 0, r.stderr);
  return sha(readFileSync(out));
}

test('TCP forwards in both directions carry a file and count bytes', async () => {
  const set = new ForwardSet(ctx());
  try {
    const [p1, p2] = [await freePort(), await freePort()];
    const fwd = parseForwardSpec(`tcp:127.0.0.1:${p1}=127.0.0.1:${web.port}`, 'forward');
    const rev = parseForwardSpec(`tcp:127.0.0.1:${p2}=localhost:${web.port}`, 'reverse');
    const r = await set.apply([fwd, rev]);
    assert.deepEqual(r.failed, []);
    assert.equal(r.started.length, 2);
    assert.equal(await fetchThrough(p1), fileSha);
    assert.equal(await fetchThrough(p2), fileSha);
    const st = set.status();
    assert.equal(st.length, 2);
    for (const s of st) {
      assert.equal(s.counters.connections, 1);
      assert.ok(s.counters.bytesFromTarget! > 4 * 1024 * 1024, `${s.spec}: ${s.counters.bytesFromTarget}`);
      assert.ok(s.counters.bytesToTarget! > 0);
    }
    await until(() => set.status().every((s) => s.counters.active === 0));
  } finally {
    await set.close();
  }
});

test('a slow client holds the target back without losing bytes (flow control)', async () => {
  const total = 48 * 1024 * 1024;
  const block = randomBytes(1024 * 1024);
  const source: Server = createServer((s) => {
    let sent = 0;
    const more = (): void => {
      while (sent < total) {
        sent += block.length;
        if (!s.write(block)) { s.once('drain', more); return; }
      }
      s.end();
    };
    more();
  });
  await new Promise<void>((resolve) => source.listen(0, '127.0.0.1', () => resolve()));
  const set = new ForwardSet(ctx());
  let client: Socket | null = null;
  try {
    const port = await freePort();
    const spec = parseForwardSpec(`tcp:${port}=127.0.0.1:${(source.address() as { port: number }).port}`, 'forward');
    await set.apply([spec]);
    client = connect(port, '127.0.0.1');
    client.pause();
    await new Promise((r) => setTimeout(r, 1000));
    const held = set.get(spec)!.counters.bytesFromTarget;
    assert.ok(held < total / 2, `the forward read ${held} bytes from the target while the client read nothing`);
    const h = createHash('sha256');
    let got = 0;
    const done = new Promise<void>((resolve) => client!.on('end', () => resolve()));
    client.on('data', (d: Buffer) => { h.update(d); got += d.length; });
    client.resume();
    await done;
    assert.equal(got, total);
    const want = createHash('sha256');
    for (let i = 0; i < total / block.length; i++) want.update(block);
    assert.equal(h.digest('hex'), want.digest('hex'));
  } finally {
    client?.destroy();
    await set.close();
    source.close();
  }
});

test('an unreachable target resets the client and counts an error', async () => {
  const set = new ForwardSet(ctx());
  try {
    const port = await freePort();
    const spec = parseForwardSpec(`tcp:${port}=127.0.0.1:${await freePort()}`, 'forward');
    await set.apply([spec]);
    const r = await curl([`http://127.0.0.1:${port}/`]);
    // The reset comes right after the handshake: curl calls it a failed connect (7) or a reset (56).
    assert.ok(r.code === 7 || r.code === 56, `curl: ${r.code} ${r.stderr}`);
    assert.equal(set.get(spec)!.counters.errors, 1);
    assert.equal(set.get(spec)!.counters.bytesFromTarget, 0);
  } finally {
    await set.close();
  }
});

/** Sends `msg` from `sock` to 127.0.0.1:port and waits for one answer. */
function exchange(sock: DgramSocket, port: number, msg: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('no UDP answer')), 2000);
    sock.once('message', (m) => { clearTimeout(t); resolve(m.toString()); });
    sock.send(msg, port, '127.0.0.1');
  });
}

test('UDP forwards: a session per client, answers go back to the right client, idle sessions close', async () => {
  const set = new ForwardSet(ctx({ udpIdleMs: 300 }));
  const a = createSocket('udp4');
  const b = createSocket('udp4');
  try {
    const port = await freePort();
    const spec = parseForwardSpec(`udp:${port}=127.0.0.1:${echoPort}`, 'forward');
    await set.apply([spec]);
    assert.equal(await exchange(a, port, 'one'), 'echo:one');
    assert.equal(await exchange(b, port, 'two'), 'echo:two');
    assert.equal(await exchange(a, port, 'three'), 'echo:three');
    const fwd = set.get(spec)!;
    assert.equal(fwd.counters.connections, 2, 'two clients, two sessions');
    assert.equal(fwd.active, 2);
    assert.equal(fwd.counters.datagramsToTarget, 3);
    assert.equal(fwd.counters.datagramsFromTarget, 3);
    await until(() => fwd.active === 0, 3000);
    assert.equal(await exchange(a, port, 'four'), 'echo:four', 'a new session after the idle one closed');
    assert.equal(fwd.counters.connections, 3);
  } finally {
    a.close();
    b.close();
    await set.close();
  }
});

test('UDP sessions beyond the limit are dropped and counted', async () => {
  const set = new ForwardSet(ctx({ maxConnections: 1 }));
  const a = createSocket('udp4');
  const b = createSocket('udp4');
  try {
    const port = await freePort();
    const spec = parseForwardSpec(`udp:${port}=127.0.0.1:${echoPort}`, 'forward');
    await set.apply([spec]);
    assert.equal(await exchange(a, port, 'one'), 'echo:one');
    await assert.rejects(exchange(b, port, 'two'), /no UDP answer/);
    assert.equal(set.get(spec)!.counters.refused, 1);
  } finally {
    a.close();
    b.close();
    await set.close();
  }
});

test('TCP connections beyond the limit are reset', async () => {
  const set = new ForwardSet(ctx({ maxConnections: 1 }));
  const held: Socket[] = [];
  try {
    const port = await freePort();
    const spec = parseForwardSpec(`tcp:${port}=127.0.0.1:${web.port}`, 'forward');
    await set.apply([spec]);
    const first = connect(port, '127.0.0.1');
    held.push(first);
    await until(() => set.get(spec)!.active === 1);
    const r = await curl([`http://127.0.0.1:${port}/hello`]);
    assert.notEqual(r.code, 0);
    assert.equal(set.get(spec)!.counters.refused, 1);
    first.destroy();
    await until(() => set.get(spec)!.active === 0);
    const ok = await curl([`http://127.0.0.1:${port}/hello`]);
    assert.equal(ok.code, 0, ok.stderr);
  } finally {
    for (const s of held) s.destroy();
    await set.close();
  }
});

test('live reload: apply() starts new pairs, stops removed ones, keeps unchanged ones and their counters', async () => {
  const set = new ForwardSet(ctx());
  try {
    const [p1, p2, p3] = [await freePort(), await freePort(), await freePort()];
    const a = parseForwardSpec(`tcp:${p1}=127.0.0.1:${web.port}`, 'forward');
    const b = parseForwardSpec(`udp:${p2}=127.0.0.1:${echoPort}`, 'forward');
    const c = parseForwardSpec(`tcp:127.0.0.1:${p3}=127.0.0.1:${web.port}`, 'reverse');
    let r = await set.apply([a]);
    assert.deepEqual(r.started, [`forward ${a.text}`]);
    assert.equal((await curl([`http://127.0.0.1:${p1}/hello`])).code, 0);
    const aObj = set.get(a);

    r = await set.apply([a, b, c]);
    assert.deepEqual(r.kept, [`forward ${a.text}`]);
    assert.deepEqual(r.started.sort(), [`forward ${b.text}`, `reverse ${c.text}`].sort());
    assert.equal(set.get(a), aObj, 'the unchanged forward is the same running object');
    assert.equal(set.get(a)!.counters.connections, 1, 'its counters survive the reload');
    const u = createSocket('udp4');
    try { assert.equal(await exchange(u, p2, 'x'), 'echo:x'); } finally { u.close(); }
    assert.equal((await curl([`http://127.0.0.1:${p3}/hello`])).code, 0);

    r = await set.apply([c]);
    assert.deepEqual(r.stopped.sort(), [`forward ${a.text}`, `forward ${b.text}`].sort());
    assert.equal(set.size, 1);
    const gone = await curl([`http://127.0.0.1:${p1}/hello`]);
    assert.equal(gone.code, 7, 'the removed port is closed (connection refused)');
    assert.equal((await curl([`http://127.0.0.1:${p3}/hello`])).code, 0);

    // A spec that cannot start is reported; the others keep running.
    const blocker = createServer();
    await new Promise<void>((resolve) => blocker.listen(p1, '127.0.0.1', () => resolve()));
    try {
      r = await set.apply([c, a]);
      assert.equal(r.failed.length, 1);
      assert.match(r.failed[0]!.error, /in use/);
      assert.deepEqual(r.kept, [`reverse ${c.text}`]);
    } finally {
      blocker.close();
    }
    await assert.rejects(set.apply([a, parseForwardSpec(`tcp:${p1}=127.0.0.1:1`, 'forward')]), /same tcp port/);
  } finally {
    await set.close();
  }
});
