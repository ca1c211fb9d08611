// The node's control client against a hostile server that answers with an endless body: the
// client stops reading at its bound (a plain answer: MAX_PLAIN_ANSWER; a framed one: one record
// of MAX_FRAME_BODY), resets the stream and fails with a ControlError, instead of buffering
// what the server sends. The fake server is a small HTTP/2 + TLS server on 127.0.0.1 that does
// the real Noise handshake (ControlResponder) where a test needs a session, and counts the
// bytes it managed to hand to each stream.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createSecureServer, type ServerHttp2Session, type ServerHttp2Stream, type IncomingHttpHeaders } from 'node:http2';
import type { AddressInfo } from 'node:net';
import { generatePrivateKey } from '../crypto/index.js';
import { LocalIdentity, systemClock } from '../wireguard/index.js';
import {
  ControlClient, ControlError, MAX_PLAIN_ANSWER, MAX_FRAME_BODY, CONTROL_PATH_HANDSHAKE, CONTROL_SESSION_HEADER, CONTROL_CONTENT_TYPE,
  CONTROL_HANDSHAKE_CONTENT_TYPE,
} from '../mesh/index.js';
import { ControlResponder } from './channel.js';
import { loadOrCreateTlsCert } from './channel-tls.js';

interface Ctx { after(fn: () => unknown): void }

const CHUNK = Buffer.alloc(16 * 1024, 0x20);

/** Writes CHUNKs to `stream` (honouring back-pressure) until `total` bytes or the client
 * resets it; resolves with the bytes handed over. */
function flood(stream: ServerHttp2Stream, total: number): Promise<number> {
  return new Promise((resolve) => {
    let sent = 0;
    let done = false;
    const finish = (): void => { if (!done) { done = true; resolve(sent); } };
    stream.on('close', finish);
    stream.on('error', finish);
    const pump = (): void => {
      while (!done && !stream.destroyed && sent < total) {
        sent += CHUNK.length;
        if (!stream.write(CHUNK)) { stream.once('drain', pump); return; }
      }
      if (sent >= total && !stream.destroyed) stream.end();
    };
    pump();
  });
}

type Route = (stream: ServerHttp2Stream, headers: IncomingHttpHeaders, body: Buffer, responder: ControlResponder) => void;

/** A fake coordinator: answers /v1/handshake like the real one unless `routes` says otherwise. */
async function fakeCoordinator(t: Ctx, routes: Record<string, Route>): Promise<{ url: string; key: Buffer }> {
  const dir = mkdtempSync(join(tmpdir(), 'meshtun-ctl-hostile-'));
  const identity = new LocalIdentity(generatePrivateKey());
  const responder = new ControlResponder(identity, systemClock);
  const server = createSecureServer({ ...loadOrCreateTlsCert(dir), allowHTTP1: false });
  server.on('stream', (stream, headers) => {
    const chunks: Buffer[] = [];
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('error', () => undefined);
    const go = (): void => {
      const path = String(headers[':path']);
      const body = Buffer.concat(chunks);
      const route = routes[path];
      if (route) return route(stream, headers, body, responder);
      const r = responder.respond(body);
      if (typeof r === 'string') { stream.respond({ ':status': 403 }); stream.end(); return; }
      stream.respond({ ':status': 200, 'content-type': CONTROL_HANDSHAKE_CONTENT_TYPE, [CONTROL_SESSION_HEADER]: r.sessionId });
      stream.end(r.response);
    };
    if (headers[':method'] === 'GET') go();
    else stream.on('end', go);
  });
  const sessions = new Set<ServerHttp2Session>();
  server.on('session', (s) => { sessions.add(s); s.on('close', () => sessions.delete(s)); });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  t.after(async () => {
    for (const s of sessions) s.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    rmSync(dir, { recursive: true, force: true });
  });
  return { url: `https://127.0.0.1:${(server.address() as AddressInfo).port}`, key: identity.publicKey };
}

const client = (f: { url: string; key: Buffer }) => ControlClient.create({
  url: f.url, coordinatorPublicKey: f.key, identity: new LocalIdentity(generatePrivateKey()), requestTimeoutMs: 30_000, backoffInitialMs: 50, backoffMaxMs: 100,
});

test('an endless handshake answer: the client stops after MAX_PLAIN_ANSWER bytes with a ControlError', async (t) => {
  let sent: Promise<number> | null = null;
  const f = await fakeCoordinator(t, {
    [CONTROL_PATH_HANDSHAKE]: (stream) => {
      stream.respond({ ':status': 200, 'content-type': CONTROL_HANDSHAKE_CONTENT_TYPE, [CONTROL_SESSION_HEADER]: '00000001' });
      sent = flood(stream, 64 * 1024 * 1024);
    },
  });
  const c = client(f);
  t.after(() => c.close());
  await assert.rejects(c.register({ token: 'x' }), (e: unknown) => {
    assert.ok(e instanceof ControlError, String(e));
    assert.match(e.message, new RegExp(`answer on ${CONTROL_PATH_HANDSHAKE} is larger than ${MAX_PLAIN_ANSWER} bytes`));
    assert.equal(e.reason, 'too-large');
    return true;
  });
  const n = await sent!;
  assert.ok(n < 4 * 1024 * 1024, `the server handed over ${n} bytes before the client reset the stream`);
  assert.equal(c.oversizeAnswers, 1);
});

test('an endless framed answer to a request: the client stops after one record\'s worth', async (t) => {
  let sent: Promise<number> | null = null;
  const f = await fakeCoordinator(t, {
    '/v1/register': (stream) => {
      stream.respond({ ':status': 200, 'content-type': CONTROL_CONTENT_TYPE });
      sent = flood(stream, 96 * 1024 * 1024);
    },
  });
  const c = client(f);
  t.after(() => c.close());
  await assert.rejects(c.register({ token: 'x' }), (e: unknown) => e instanceof ControlError && /answer on \/v1\/register is larger than/.test(e.message));
  const n = await sent!;
  assert.ok(n < MAX_FRAME_BODY + 4 * 1024 * 1024, `the server handed over ${n} bytes`);
});

test('an endless plain error body: refused after MAX_PLAIN_ANSWER bytes, also on the map stream', async (t) => {
  const sent: Promise<number>[] = [];
  const f = await fakeCoordinator(t, {
    '/v1/register': (stream) => {
      stream.respond({ ':status': 400, 'content-type': 'application/json' });
      sent.push(flood(stream, 64 * 1024 * 1024));
    },
    '/v1/map': (stream) => {
      stream.respond({ ':status': 401, 'content-type': 'application/json' });
      sent.push(flood(stream, 64 * 1024 * 1024));
    },
  });
  const c = client(f);
  t.after(() => c.close());
  await assert.rejects(c.register({ token: 'x' }), (e: unknown) => e instanceof ControlError && e.reason === 'too-large');
  c.subscribeMap(() => undefined);
  await waitFor(() => sent.length >= 2);
  const n = await sent[1]!;
  assert.ok(n < 4 * 1024 * 1024, `the map stream's refusal: the server handed over ${n} bytes`);
  assert.ok((await sent[0]!) < 4 * 1024 * 1024);
  await waitFor(() => c.oversizeAnswers >= 2);
});

async function waitFor(fn: () => boolean, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  while (!fn()) {
    if (Date.now() > end) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 10));
  }
}
