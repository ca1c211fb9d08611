// The control channel end to end on 127.0.0.1: ControlServer (control) and ControlClient (mesh)
// over HTTP/2 + TLS + Noise, against a real Coordinator on a temporary store.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as h2connect } from 'node:http2';
import { generatePrivateKey, publicKey, encodeBase64Key } from '../crypto/index.js';
import { LocalIdentity, Handshake, CookieGenerator, INITIATION, createInitiation, systemClock } from '../wireguard/index.js';
import { fuzzParser, fuzzIterations } from '../wire/fuzz-harness.js';
import { ControlClient, ControlHandshakeError, type ControlClientOptions } from '../mesh/index.js';
import { ControlCipher, FrameReader, CONTROL_PATH_REPORT, CONTROL_PATH_HANDSHAKE, CONTROL_SESSION_HEADER, CONTROL_CONTENT_TYPE } from '../mesh/index.js';
import type { ControlNetworkMap } from '../mesh/index.js';
import { Coordinator } from './coordinator.js';
import { ControlServer } from './server.js';
import { ControlResponder } from './channel.js';
import { generateJoinToken } from './tokens.js';

interface Ctx { after(fn: () => unknown): void }

const SOURCE_HEADER = 'x-test-source';

interface Setup {
  dir: string;
  coord: Coordinator;
  identity: LocalIdentity;
  server: ControlServer;
  token: string;
  url: string;
  client(extra?: Partial<ControlClientOptions> & { source?: string }): Promise<ControlClient>;
}

async function setup(t: Ctx, keepaliveMs = 200): Promise<Setup> {
  const dir = mkdtempSync(join(tmpdir(), 'meshtun-ctl-'));
  const coord = Coordinator.open(dir);
  const identity = new LocalIdentity(generatePrivateKey());
  coord.createNetwork({ name: 'home', self: { publicKey: identity.publicKey } });
  const token = coord.createToken(undefined, { reusable: true }).token;
  const server = await ControlServer.listen({
    coordinator: coord, identity, tlsDir: dir, keepaliveMs,
    sourceAddress: (remote, h) => (typeof h[SOURCE_HEADER] === 'string' ? h[SOURCE_HEADER] : remote),
  });
  const clients: ControlClient[] = [];
  const s: Setup = {
    dir, coord, identity, server, token, url: `https://127.0.0.1:${server.port}`,
    async client(extra = {}) {
      const c = await ControlClient.connect({
        url: s.url, coordinatorPublicKey: encodeBase64Key(identity.publicKey), identity: new LocalIdentity(generatePrivateKey()),
        backoffInitialMs: 50, backoffMaxMs: 200, requestTimeoutMs: 5000,
        headers: { [SOURCE_HEADER]: extra.source ?? '198.18.0.10' }, ...extra,
      });
      clients.push(c);
      return c;
    },
  };
  t.after(async () => {
    for (const c of clients) c.close();
    await s.server.close();
    s.coord.close();
    rmSync(dir, { recursive: true, force: true });
  });
  return s;
}

async function waitFor<T>(what: string, fn: () => T | undefined | null | false, ms = 5000): Promise<T> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    const v = fn();
    if (v) return v;
    await new Promise((r) => setTimeout(r, 20));
  }
  assert.fail(`timed out waiting for ${what}`);
}

function peerNames(m: ControlNetworkMap | null): string[] {
  return (m?.peers ?? []).map((p) => p.name);
}

test('a node registers with a token and gets its node and map', async (t) => {
  const s = await setup(t);
  const c = await s.client();
  const r = await c.register({ token: s.token, name: 'alpha', endpoints: ['198.18.0.10:51820'] });
  assert.equal(r.ok, true, JSON.stringify(r));
  if (!r.ok) return;
  assert.equal(r.node.name, 'alpha');
  assert.match(r.node.ipv4, /^100\.(6[4-9]|[7-9]\d|1[01]\d|12[0-7])\./);
  assert.equal(r.map.self.name, 'alpha');
  assert.equal(r.map.self.publicKey, s.coord.store.node(r.node.id)!.publicKey);
  assert.deepEqual(peerNames(r.map), ['coordinator']);
  assert.deepEqual(r.map.self.endpoints, ['198.18.0.10:51820']);
  assert.equal(c.map?.version, r.map.version);
});

test('the map stream pushes a new node to nodes already joined', async (t) => {
  const s = await setup(t);
  const a = await s.client();
  assert.equal((await a.register({ token: s.token, name: 'alpha' })).ok, true);
  const maps: ControlNetworkMap[] = [];
  a.subscribeMap((m) => maps.push(m));
  await waitFor('the first streamed map', () => maps.length > 0);
  const b = await s.client({ source: '198.18.0.11' });
  const rb = await b.register({ token: s.token, name: 'beta', endpoints: ['198.18.0.11:51820'] });
  assert.equal(rb.ok, true);
  const m = await waitFor('a map with beta', () => maps.find((x) => peerNames(x).includes('beta')));
  assert.deepEqual(peerNames(m), ['beta', 'coordinator']);
  assert.deepEqual(m.peers.find((p) => p.name === 'beta')!.endpoints, ['198.18.0.11:51820']);
  assert.ok(m.version > maps[0]!.version);

  // A report from beta reaches alpha too, its NAT type as well (a bad one is left out).
  const rep = await b.report({ endpoints: ['198.18.0.11:40000'], nat: 'none' });
  assert.equal(rep.ok, true);
  await waitFor('beta\'s new endpoint', () => a.map?.peers.find((p) => p.name === 'beta')?.endpoints[0] === '198.18.0.11:40000');
  assert.equal(a.map?.peers.find((p) => p.name === 'beta')?.nat, 'none');
  assert.equal((await b.report({ nat: 'symmetric' as 'none' })).ok, true);
  assert.equal(s.coord.node(undefined, 'beta').nat, 'none');

  // Removing beta tells beta and drops it from alpha's map.
  let removed = '';
  b.subscribeMap(() => {}, (msg) => { removed = msg; });
  s.coord.removeNode(undefined, 'beta');
  await waitFor('alpha\'s map without beta', () => !peerNames(a.map).includes('beta'));
  await waitFor('beta hears it was removed', () => removed !== '');
});

test('wrong and mistyped tokens are refused with their reasons; unknown keys get 401', async (t) => {
  const s = await setup(t);
  const c = await s.client();
  const wrong = await c.register({ token: generateJoinToken().text });
  assert.equal(wrong.ok, false);
  if (!wrong.ok) {
    assert.equal(wrong.reason, 'unknown-token');
    assert.equal(wrong.status, 403);
  }
  const i = s.token.length - 3;
  const typo = s.token.slice(0, i) + (s.token[i] === 'a' ? 'b' : 'a') + s.token.slice(i + 1);
  const r = await c.register({ token: typo });
  assert.equal(r.ok, false);
  if (!r.ok) {
    assert.equal(r.reason, 'token-typo');
    assert.match(r.error, /typo|mistyped|checksum/i);
  }
  const before = s.coord.limiter.score('198.18.0.10');
  const rep = await c.report({ endpoints: ['198.18.0.10:1'] });
  assert.equal(rep.ok, false);
  if (!rep.ok) {
    assert.equal(rep.status, 401);
    assert.equal(rep.reason, 'unknown-node');
  }
  assert.ok(s.coord.limiter.score('198.18.0.10') > before, 'a request from an unknown key counts as a failed authentication');
});

test('50 wrong tokens from one address get 429 with a growing Retry-After; another address still joins', async (t) => {
  const s = await setup(t);
  const attacker = await s.client({ source: '198.18.0.66' });
  const waits: number[] = [];
  let limited = 0;
  for (let i = 0; i < 50; i++) {
    const r = await attacker.register({ token: generateJoinToken().text });
    assert.equal(r.ok, false);
    if (!r.ok && r.status === 429) {
      limited++;
      assert.equal(r.reason, 'rate-limited');
      waits.push(r.retryAfterMs);
    }
  }
  assert.ok(limited >= 40, `only ${limited} of 50 were rate limited`);
  for (let i = 1; i < waits.length; i++) assert.ok(waits[i]! >= waits[i - 1]!, 'retry-after never shrinks');
  assert.ok(waits[waits.length - 1]! > waits[0]!, 'retry-after grows');
  // The HTTP answer carries Retry-After (seconds) too: a raw handshake from the attacker's address.
  const h2 = h2connect(s.url, { rejectUnauthorized: false });
  t.after(() => h2.destroy());
  const ans = await new Promise<{ status: number; retryAfter: number; body: string }>((resolve, reject) => {
    const req = h2.request({ ':method': 'POST', ':path': CONTROL_PATH_HANDSHAKE, [SOURCE_HEADER]: '198.18.0.66' });
    let status = 0;
    let retryAfter = 0;
    let body = '';
    req.on('response', (h) => { status = Number(h[':status']); retryAfter = Number(h['retry-after']); });
    req.on('data', (d: Buffer) => { body += d.toString(); });
    req.on('end', () => resolve({ status, retryAfter, body }));
    req.on('error', reject);
    req.end(Buffer.alloc(148));
  });
  assert.equal(ans.status, 429);
  assert.ok(ans.retryAfter > 1, `Retry-After ${ans.retryAfter}`);
  assert.equal(JSON.parse(ans.body).reason, 'rate-limited');

  const good = await s.client({ source: '198.18.0.77' });
  const r = await good.register({ token: s.token, name: 'legit' });
  assert.equal(r.ok, true, JSON.stringify(r));
});

test('a server without the coordinator key fails the handshake', async (t) => {
  const s = await setup(t);
  const impostorDir = mkdtempSync(join(tmpdir(), 'meshtun-ctl-mitm-'));
  const impostor = await ControlServer.listen({ coordinator: s.coord, identity: new LocalIdentity(generatePrivateKey()), tlsDir: impostorDir });
  t.after(async () => {
    await impostor.close();
    rmSync(impostorDir, { recursive: true, force: true });
  });
  await assert.rejects(
    ControlClient.connect({ url: `https://127.0.0.1:${impostor.port}`, coordinatorPublicKey: s.identity.publicKey, identity: new LocalIdentity(generatePrivateKey()) }),
    (e: unknown) => e instanceof ControlHandshakeError && /did not complete the Noise handshake/.test(e.message),
  );
  // The impostor sees a mac1 for another key and does no DH; nor did it get a session.
  assert.equal(impostor.sessionCount, 0);
  // And the client checks the key it was given: the real coordinator with a wrong expected key fails too.
  await assert.rejects(
    ControlClient.connect({ url: s.url, coordinatorPublicKey: publicKey(generatePrivateKey()), identity: new LocalIdentity(generatePrivateKey()) }),
    ControlHandshakeError,
  );
});

test('tampered, replayed and misdirected frames are refused', async (t) => {
  const s = await setup(t);
  const c = await s.client();
  assert.equal((await c.register({ token: s.token, name: 'alpha' })).ok, true);
  // Raw requests on the client's own session.
  const conn = (c as unknown as { conn: { h2: import('node:http2').ClientHttp2Session; cipher: ControlCipher; sessionId: string } }).conn;
  const send = (body: Buffer): Promise<number> => new Promise((resolve, reject) => {
    const req = conn.h2.request({ ':method': 'POST', ':path': CONTROL_PATH_REPORT, [CONTROL_SESSION_HEADER]: conn.sessionId, 'content-type': CONTROL_CONTENT_TYPE });
    let status = 0;
    req.on('response', (h) => { status = Number(h[':status']); });
    req.on('data', () => {});
    req.on('end', () => resolve(status));
    req.on('error', reject);
    req.end(body);
  });
  const good = conn.cipher.seal(CONTROL_PATH_REPORT, { endpoints: ['198.18.0.10:2'] });
  const tampered = Buffer.from(good);
  tampered[tampered.length - 20]! ^= 1;
  assert.equal(await send(tampered), 400);
  assert.equal(s.server.rejectedFrames, 1);
  assert.equal(await send(good), 200);
  assert.equal(await send(good), 400, 'a replayed frame is refused');
  const misdirected = conn.cipher.seal('/v1/register', { endpoints: ['198.18.0.10:3'] });
  assert.equal(await send(misdirected), 400, 'a frame sealed for another endpoint is refused');
  assert.equal(s.server.rejectedFrames, 3);
  assert.deepEqual(s.coord.node(undefined, 'alpha').endpoints, ['198.18.0.10:2']);
  // The session still works for honest frames.
  assert.equal((await c.report({ endpoints: ['198.18.0.10:4'] })).ok, true);
});

test('ControlCipher: frames open once, only in the right direction and purpose', () => {
  const k1 = Buffer.alloc(32, 1);
  const k2 = Buffer.alloc(32, 2);
  const node = new ControlCipher(k1, k2, 'node');
  const coord = new ControlCipher(k2, k1, 'coordinator');
  const reader = new FrameReader();
  const a = coord.seal('/v1/map', { type: 'keepalive', version: 1 });
  const b = coord.seal('/v1/map', { type: 'keepalive', version: 2 });
  const both = Buffer.concat([a, b]);
  // Split at every byte: the reader reassembles records from any chunking.
  const recs = [...reader.push(both.subarray(0, 7)), ...reader.push(both.subarray(7, 30)), ...reader.push(both.subarray(30))];
  assert.equal(recs.length, 2);
  assert.equal(reader.pending, 0);
  assert.deepEqual(node.open('/v1/map', recs[1]!), { type: 'keepalive', version: 2 });
  assert.deepEqual(node.open('/v1/map', recs[0]!), { type: 'keepalive', version: 1 }, 'reordered within the window is fine');
  assert.equal(node.open('/v1/map', recs[0]!), undefined, 'replay');
  const c = coord.seal('/v1/map', { x: 1 });
  assert.equal(node.open('/v1/report', c.subarray(4)), undefined, 'wrong purpose');
  assert.equal(coord.open('/v1/map', c.subarray(4)), undefined, 'own frame reflected back');
  const d = node.seal('/v1/report', { y: 2 });
  for (let i = 4; i < d.length; i++) {
    const bad = Buffer.from(d);
    bad[i]! ^= 0x80;
    assert.equal(coord.open('/v1/report', bad.subarray(4)), undefined, `flipped byte ${i}`);
  }
  assert.deepEqual(coord.open('/v1/report', d.subarray(4)), { y: 2 });
  assert.equal(new FrameReader().push(Buffer.from([0xff, 0xff, 0xff, 0xff, 0])).length, 0);
  assert.equal(node.rejected, 2);
});

test('after a coordinator restart the client reconnects and resyncs its map', async (t) => {
  const s = await setup(t);
  const a = await s.client();
  assert.equal((await a.register({ token: s.token, name: 'alpha' })).ok, true);
  a.subscribeMap(() => {});
  await waitFor('a streamed map', () => a.connects === 1 && a.map);
  const port = s.server.port;
  await s.server.close();
  s.coord.close();
  // While the coordinator is down a node joins "offline" (straight into the store).
  const coord2 = Coordinator.open(s.dir);
  const joined = coord2.join({ publicKey: publicKey(generatePrivateKey()), token: s.token, name: 'gamma', sourceAddress: '198.18.0.12' });
  assert.equal(joined.ok, true);
  await new Promise((r) => setTimeout(r, 150));
  s.coord = coord2;
  s.server = await ControlServer.listen({ coordinator: coord2, identity: s.identity, tlsDir: s.dir, port, keepaliveMs: 200 });
  await waitFor('the map with gamma after the restart', () => peerNames(a.map).includes('gamma'));
  assert.ok(a.connects >= 2, `connects ${a.connects}`);
  assert.equal(a.map!.self.name, 'alpha');
  // And live pushes work again on the new stream.
  coord2.join({ publicKey: publicKey(generatePrivateKey()), token: s.token, name: 'delta', sourceAddress: '198.18.0.13' });
  await waitFor('delta pushed', () => peerNames(a.map).includes('delta'));
});

test('a map stream without keepalives is dropped and replaced', async (t) => {
  const s = await setup(t, 60_000);
  const a = await s.client({ streamIdleMs: 300 });
  assert.equal((await a.register({ token: s.token, name: 'alpha' })).ok, true);
  a.subscribeMap(() => {});
  await waitFor('a second connection after the idle stream was closed', () => a.connects >= 2);
  // The replacement stream still delivers pushes.
  s.coord.join({ publicKey: publicKey(generatePrivateKey()), token: s.token, name: 'epsilon', sourceAddress: '198.18.0.14' });
  await waitFor('epsilon pushed', () => peerNames(a.map).includes('epsilon'));
});

test('keepalive frames keep a map stream open', async (t) => {
  const s = await setup(t);
  const a = await s.client({ streamIdleMs: 2000 });
  assert.equal((await a.register({ token: s.token, name: 'alpha' })).ok, true);
  a.subscribeMap(() => {});
  await new Promise((r) => setTimeout(r, 2600));
  // Keepalives every 200 ms keep the 2 s idle timer from firing: one connection only.
  assert.equal(a.connects, 1);
  assert.equal(a.rejectedFrames, 0);
});

test('fuzz: frame reading and opening, and the coordinator\'s handshake, never throw on bytes', () => {
  const k1 = Buffer.alloc(32, 7);
  const k2 = Buffer.alloc(32, 9);
  const coord = new ControlCipher(k2, k1, 'coordinator');
  const seeds = [Buffer.concat([coord.seal('/v1/map', { type: 'keepalive', version: 3 }), coord.seal('/v1/map', { type: 'map', map: {} })])];
  const n = fuzzParser(seeds, (b, o, l) => {
    // A fresh receiver per call: the harness parses every input twice and the replay window remembers.
    const node = new ControlCipher(k1, k2, 'node');
    const recs = new FrameReader().push(Buffer.from(b.subarray(o, o + l)));
    return recs.map((r) => JSON.stringify(node.open('/v1/map', r) ?? null)).join('|');
  }, { iterations: fuzzIterations(3000), maxLen: 300 });
  assert.ok(n > 0);

  const coordinatorIdentity = new LocalIdentity(generatePrivateKey());
  const responder = new ControlResponder(coordinatorIdentity, systemClock);
  const hs = new Handshake(new LocalIdentity(generatePrivateKey()), coordinatorIdentity.publicKey);
  const init = Buffer.alloc(INITIATION.SIZE);
  assert.ok(createInitiation(hs, 1, Date.now(), init));
  new CookieGenerator(coordinatorIdentity.publicKey).addMacs(init, init.length, 0);
  const first = responder.respond(Buffer.from(init));
  assert.equal(typeof first, 'object', 'a good initiation is answered');
  assert.equal(responder.respond(Buffer.from(init)), 'initiation', 'a replayed initiation is refused');
  const m = fuzzParser([init], (b, o, l) => {
    const r = responder.respond(Buffer.from(b.subarray(o, o + l)));
    return r === 'size' || r === 'mac1' ? r : 'checked';
  }, { iterations: fuzzIterations(2000), maxLen: 200 });
  assert.ok(m > 0);
});
