// What one source can take from the coordinator's control server, on 127.0.0.0/8 with a manual
// clock: concurrent TLS connections per source address and in all (another source still gets
// in), Noise handshakes per second and in progress per source, live sessions per source and per
// node key (oldest evicted), and verified handshakes charged to the auth limiter. Sources above
// the TCP layer are named by a test header, as in server.test.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as h2connect, type ClientHttp2Session, type ClientHttp2Stream, type SecureClientSessionOptions } from 'node:http2';
import { generatePrivateKey } from '../crypto/index.js';
import { LocalIdentity, Handshake, CookieGenerator, INITIATION, ManualClock, createInitiation } from '../wireguard/index.js';
import { CONTROL_PATH_HANDSHAKE, CONTROL_PATH_REPORT, CONTROL_SESSION_HEADER, CONTROL_CONTENT_TYPE } from '../mesh/index.js';
import { Coordinator } from './coordinator.js';
import { ControlServer, type ControlServerLimits } from './server.js';
import { AUTH_SESSION_WEIGHT, AUTH_MEMBER_SESSION_WEIGHT } from './auth-limiter.js';

interface Ctx { after(fn: () => unknown): void }

const SOURCE_HEADER = 'x-test-source';

interface Setup {
  coord: Coordinator;
  identity: LocalIdentity;
  server: ControlServer;
  clock: ManualClock;
  url: string;
  token: string;
  /** An HTTP/2 connection from `localAddress` (a loopback address), closed after the test. */
  connect(localAddress?: string): Promise<ClientHttp2Session>;
}

async function setup(t: Ctx, limits: ControlServerLimits): Promise<Setup> {
  const dir = mkdtempSync(join(tmpdir(), 'meshtun-ctl-limits-'));
  const clock = new ManualClock(Date.now());
  const coord = Coordinator.open(dir, { clock });
  const identity = new LocalIdentity(generatePrivateKey());
  coord.createNetwork({ name: 'home', self: { publicKey: identity.publicKey } });
  const token = coord.createToken(undefined, { reusable: true }).token;
  const server = await ControlServer.listen({
    coordinator: coord, identity, tlsDir: dir, limits,
    sourceAddress: (remote, h) => (typeof h[SOURCE_HEADER] === 'string' ? h[SOURCE_HEADER] : remote),
  });
  const sessions: ClientHttp2Session[] = [];
  const s: Setup = {
    coord, identity, server, clock, token, url: `https://127.0.0.1:${server.port}`,
    connect(localAddress = '127.0.0.1') {
      // localAddress reaches net.connect (the types leave it out): the source address of the test.
      const h2 = h2connect(s.url, { rejectUnauthorized: false, localAddress } as SecureClientSessionOptions);
      sessions.push(h2);
      return new Promise((resolve, reject) => {
        h2.once('connect', () => resolve(h2));
        h2.once('error', reject);
        h2.once('close', () => reject(new Error(`connection from ${localAddress} closed before it was up`)));
      });
    },
  };
  t.after(async () => {
    for (const h2 of sessions) h2.destroy();
    await server.close();
    coord.close();
    rmSync(dir, { recursive: true, force: true });
  });
  return s;
}

/** A handshake initiation from `node` for the coordinator, with a timestamp `skewMs` ahead. */
function initiation(node: LocalIdentity, coordinatorKey: Buffer, skewMs = 0): Buffer {
  const hs = new Handshake(node, coordinatorKey);
  const init = Buffer.alloc(INITIATION.SIZE);
  assert.ok(createInitiation(hs, 1, Date.now() + skewMs, init));
  new CookieGenerator(coordinatorKey).addMacs(init, init.length, 0);
  return init;
}

interface Answer { status: number; session: string; reason: string }

/** Sends `body` (or, with `hold`, only its first bytes and leaves the stream open) to `path`. */
function post(h2: ClientHttp2Session, path: string, body: Buffer, headers: Record<string, string> = {}, hold = false): { stream: ClientHttp2Stream; answer: Promise<Answer> } {
  const stream = h2.request({ ':method': 'POST', ':path': path, ...headers });
  const answer = new Promise<Answer>((resolve, reject) => {
    let status = 0;
    let session = '';
    let text = '';
    stream.on('response', (h) => { status = Number(h[':status']); session = String(h[CONTROL_SESSION_HEADER] ?? ''); });
    stream.on('data', (d: Buffer) => { text += d.toString('latin1'); });
    stream.on('end', () => {
      let reason = '';
      try { reason = String((JSON.parse(text) as { reason?: unknown }).reason ?? ''); } catch { /* a handshake response */ }
      resolve({ status, session, reason });
    });
    stream.on('error', reject);
  });
  if (hold) stream.write(body.subarray(0, 10));
  else stream.end(body);
  return { stream, answer };
}

function handshake(s: Setup, h2: ClientHttp2Session, source: string, node = new LocalIdentity(generatePrivateKey()), skewMs = 0): Promise<Answer> {
  return post(h2, CONTROL_PATH_HANDSHAKE, initiation(node, s.identity.publicKey, skewMs), { [SOURCE_HEADER]: source }).answer;
}

/** Connects from `localAddress`; resolves false when the server drops the connection first. */
async function connects(s: Setup, localAddress: string): Promise<boolean> {
  try {
    await s.connect(localAddress);
    return true;
  } catch {
    return false;
  }
}

test('TLS connections beyond the cap of one source address are refused; other sources still connect, up to the total', async (t) => {
  const s = await setup(t, { connectionsPerSource: 3, connections: 5 });
  const first = [await s.connect('127.0.0.1'), await s.connect('127.0.0.1'), await s.connect('127.0.0.1')];
  assert.equal(await connects(s, '127.0.0.1'), false, 'a fourth connection from 127.0.0.1 is refused');
  assert.equal(s.server.stats().connectionsRefusedSource, 1);
  // Another source connects and completes a Noise handshake.
  const other = await s.connect('127.0.0.2');
  assert.equal((await handshake(s, other, '127.0.0.2')).status, 200);
  // The total: 4 open, one more fits, then nobody else.
  assert.equal(await connects(s, '127.0.0.3'), true);
  assert.equal(await connects(s, '127.0.0.4'), false, 'the sixth connection is over the total');
  assert.equal(s.server.stats().connectionsRefusedTotal, 1);
  assert.equal(s.server.stats().connectionsOpen, 5);
  // A closed connection frees its slot.
  first[0]!.destroy();
  await waitFor(() => s.server.stats().connectionsOpen === 4);
  assert.equal(await connects(s, '127.0.0.1'), true);
});

test('a handshake flood from one source is limited per second (429 with Retry-After); another source still gets in', async (t) => {
  const s = await setup(t, { handshakesPerSecond: 5, handshakeBurst: 5 });
  const h2 = await s.connect();
  const answers: Answer[] = [];
  for (let i = 0; i < 12; i++) answers.push(await handshake(s, h2, '198.18.0.66'));
  assert.deepEqual(answers.map((a) => a.status), [200, 200, 200, 200, 200, 429, 429, 429, 429, 429, 429, 429]);
  assert.ok(answers.slice(5).every((a) => a.reason === 'rate-limited'));
  assert.equal(s.server.stats().handshakesRefusedRate, 7);
  assert.equal((await handshake(s, h2, '198.18.0.77')).status, 200, 'another source is not affected');
  s.clock.advance(1000);
  assert.equal((await handshake(s, h2, '198.18.0.66')).status, 200, 'a second later the source may try again');
});

test('handshakes in progress from one source are capped: the next is refused at once, others go on', async (t) => {
  const s = await setup(t, { handshakesInProgressPerSource: 4 });
  const h2 = await s.connect();
  const node = (): Buffer => initiation(new LocalIdentity(generatePrivateKey()), s.identity.publicKey);
  // Four initiations whose bodies do not finish.
  const bodies = Array.from({ length: 4 }, node);
  const held = bodies.map((b) => post(h2, CONTROL_PATH_HANDSHAKE, b, { [SOURCE_HEADER]: '198.18.0.88' }, true));
  const fifth = await post(h2, CONTROL_PATH_HANDSHAKE, node(), { [SOURCE_HEADER]: '198.18.0.88' }).answer;
  assert.equal(fifth.status, 429);
  assert.equal(fifth.reason, 'rate-limited');
  assert.equal(s.server.stats().handshakesRefusedBusy, 1);
  assert.equal((await handshake(s, h2, '198.18.0.99')).status, 200, 'another source is not held up');
  // One finishes; then there is room for one more.
  held[0]!.stream.end(bodies[0]!.subarray(10));
  assert.equal((await held[0]!.answer).status, 200);
  assert.equal((await handshake(s, h2, '198.18.0.88')).status, 200);
  for (const h of held.slice(1)) h.stream.close();
});

test('live sessions stay bounded per source and per node key (oldest evicted); evicted sessions are gone', async (t) => {
  const s = await setup(t, { sessionsPerSource: 6, sessionsPerKey: 3, handshakesPerSecond: 1000, handshakeBurst: 1000 });
  const ids: string[] = [];
  for (let c = 0; c < 5; c++) {
    const h2 = await s.connect();
    for (let i = 0; i < 4; i++) {
      const a = await handshake(s, h2, '198.18.0.10');
      assert.equal(a.status, 200);
      ids.push(a.session);
    }
  }
  assert.equal(s.server.sessionCount, 6, '20 handshakes from one source leave 6 sessions');
  assert.equal(s.server.stats().sessionsEvictedSource, 14);
  // One node key, ten connections from another source: three sessions are kept.
  const node = new LocalIdentity(generatePrivateKey());
  for (let i = 0; i < 10; i++) {
    s.clock.advance(25); // WireGuard refuses initiations from one key less than 20 ms apart
    const a = await handshake(s, await s.connect(), '198.18.0.11', node, i * 20); // TAI64N is whitened to ~16.7 ms
    assert.equal(a.status, 200);
  }
  assert.equal(s.server.sessionCount, 9);
  assert.equal(s.server.stats().sessionsEvictedKey, 7);
  assert.equal(s.server.stats().sessionsLive, 9);
  // The oldest session of the first source was evicted: a request on it finds no session.
  const h2 = await s.connect();
  const old = await post(h2, CONTROL_PATH_REPORT, Buffer.alloc(40), { [CONTROL_SESSION_HEADER]: ids[0]!, 'content-type': CONTROL_CONTENT_TYPE }).answer;
  assert.equal(old.status, 401);
  assert.equal(old.reason, 'no-session');
});

test('verified handshakes are charged to the auth limiter: a source opening sessions for unknown keys is locked out', async (t) => {
  const s = await setup(t, { handshakesPerSecond: 1000, handshakeBurst: 1000, sessionsPerSource: 1000 });
  const source = '198.18.0.20';
  const conns: ClientHttp2Session[] = [];
  const h2 = async (i: number): Promise<ClientHttp2Session> => {
    if (i % 4 === 0) conns.push(await s.connect());
    return conns[conns.length - 1]!;
  };
  for (let i = 0; i < 10; i++) assert.equal((await handshake(s, await h2(i), source)).status, 200);
  assert.ok(Math.abs(s.coord.limiter.score(source) - 10 * AUTH_SESSION_WEIGHT) < 1e-6, `score ${s.coord.limiter.score(source)}`);
  // A member's sessions cost less.
  const member = new LocalIdentity(generatePrivateKey());
  assert.equal(s.coord.join({ publicKey: member.publicKey, token: s.token, name: 'member', sourceAddress: '198.18.0.21' }).ok, true);
  for (let i = 0; i < 5; i++) {
    s.clock.advance(25);
    assert.equal((await handshake(s, await s.connect(), '198.18.0.21', member, i * 20)).status, 200);
  }
  assert.ok(Math.abs(s.coord.limiter.score('198.18.0.21') - 5 * AUTH_MEMBER_SESSION_WEIGHT) < 1e-3, `member score ${s.coord.limiter.score('198.18.0.21')}`);
  // Sessions for ever new keys from one source end in a lockout (free failures: 3 points).
  let opened = 10;
  let last: Answer | null = null;
  for (let i = 10; i < 200; i++) {
    last = await handshake(s, await h2(i), source);
    if (last.status !== 200) break;
    opened++;
  }
  assert.equal(last?.status, 429);
  assert.equal(last?.reason, 'rate-limited');
  assert.ok(opened >= 55 && opened <= 65, `${opened} sessions before the lockout`);
  assert.equal(s.server.stats().handshakesRefusedAuth, 1);
  assert.equal(s.coord.limiter.stats().sessionCharges, opened);
  assert.equal(s.coord.limiter.stats().memberSessionCharges, 5);
});

async function waitFor(fn: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!fn()) {
    if (Date.now() > end) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 10));
  }
}
