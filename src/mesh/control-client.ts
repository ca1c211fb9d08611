// A node's client of the coordinator's control channel (protocol: docs/control-protocol.md).
// HTTP/2 over TLS (the certificate is not checked: TLS is transport only), then WireGuard's Noise
// IK handshake with the node's static key against the coordinator's key from the join string, so
// a server without that key cannot complete the handshake (ControlHandshakeError). Requests and
// the map stream are encrypted frames (control-types.ts).
//
// The connection and Noise session are made on demand and remade when they break. subscribeMap
// keeps a GET /v1/map stream open, reconnecting with exponential backoff (with jitter) while the
// coordinator is down; the server sends the full current map on every new stream, so a restarted
// coordinator resyncs the node. The last map received is kept in `map`.
// No answer is read beyond its bound (one record of MAX_FRAME_BODY for frames, MAX_PLAIN_ANSWER
// otherwise): past it the stream is reset and the request fails with ControlError 'too-large'.
import { connect as h2connect, constants as h2c, type ClientHttp2Session, type IncomingHttpHeaders } from 'node:http2';
import { decodeBase64Key } from '../crypto/index.js';
import { Logger, UserError } from '../util/index.js';
import {
  Handshake, CookieChecker, CookieGenerator, INITIATION, RESPONSE, createInitiation, consumeResponse, deriveKeys, cryptoRandomUint32,
  type LocalIdentity,
} from '../wireguard/index.js';
import {
  CONTROL_PATH_HANDSHAKE, CONTROL_PATH_REGISTER, CONTROL_PATH_MAP, CONTROL_PATH_REPORT, CONTROL_PATH_CALL, CONTROL_SESSION_HEADER, CONTROL_FRAME_HEADER,
  CONTROL_CONTENT_TYPE, CONTROL_HANDSHAKE_CONTENT_TYPE, FRAME_LENGTH_SIZE, MAX_FRAME_BODY, MAX_PLAIN_ANSWER, ControlCipher, FrameReader, isControlError,
  type ControlNetworkMap, type RegisterRequest, type RegisterReply, type ReportRequest, type ReportReply, type ControlErrorReply,
  type MapStreamMessage,
} from './control-types.js';
import { checkNetworkMap, checkRegisterReply, MapFieldError } from './map-check.js';

const COORDINATOR_KEY_SIZE = 32;
const log = new Logger('control');
export const CONTROL_BACKOFF_INITIAL_MS = 500;
export const CONTROL_BACKOFF_MAX_MS = 30_000;
export const CONTROL_REQUEST_TIMEOUT_MS = 10_000;
/** With no frame (map or keepalive) for this long, the map stream is presumed dead. */
export const CONTROL_STREAM_IDLE_MS = 45_000;

export interface ControlClientOptions {
  /** https://host:port of the coordinator's control server. */
  url: string;
  /** The coordinator's static public key (32 bytes or base64), from the join string. */
  coordinatorPublicKey: Uint8Array | string;
  /** This node's static key. */
  identity: LocalIdentity;
  backoffInitialMs?: number;
  backoffMaxMs?: number;
  requestTimeoutMs?: number;
  streamIdleMs?: number;
  /** Extra request headers (tests use one to stand for another source address). */
  headers?: Record<string, string>;
}

/** The channel failed: unreachable, timed out, or an answer that is not the protocol. */
export class ControlError extends Error {
  override name = 'ControlError';
  constructor(message: string, readonly status = 0, readonly reason = 'transport', readonly retryAfterMs = 0) {
    super(message);
  }
}

/** The server did not prove it holds the coordinator's key (a wrong or impostor coordinator). */
export class ControlHandshakeError extends ControlError {
  override name = 'ControlHandshakeError';
}

export type RegisterResult = ({ ok: true } & RegisterReply) | ({ ok: false; status: number } & ControlErrorReply);
export type ReportResult = ({ ok: true } & ReportReply) | ({ ok: false; status: number } & ControlErrorReply);

interface Connection {
  h2: ClientHttp2Session;
  cipher: ControlCipher;
  sessionId: string;
}

interface Answer {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

export class ControlClient {
  private readonly coordinatorKey: Buffer;
  private conn: Connection | null = null;
  private connecting: Promise<Connection> | null = null;
  private lastMap: ControlNetworkMap | null = null;
  private readonly mapListeners = new Set<(map: ControlNetworkMap) => void>();
  private readonly removedListeners = new Set<(message: string) => void>();
  private readonly callListeners = new Set<(from: string) => void>();
  /** Calls this node could not send. */
  failedCalls = 0;
  private mapLoopRunning = false;
  private skipBackoff = false;
  private closed = false;
  private sleepTimer: NodeJS.Timeout | null = null;
  private wake: (() => void) | null = null;
  /** How many times a connection (TLS + handshake) was made. */
  connects = 0;
  /** Frames from the coordinator that did not open. */
  get rejectedFrames(): number { return this.rejectedTotal + (this.conn?.cipher.rejected ?? 0); }
  private rejectedTotal = 0;
  /** Answers refused while reading because they grew past their bound (the stream was reset). */
  oversizeAnswers = 0;
  /** Maps from the coordinator refused because a field was not what it must be (map-check.ts). */
  rejectedMaps = 0;
  /** Why the last map was refused ("map.peers[1].routes[0] ... is not a prefix ..."), or null. */
  lastMapError: string | null = null;

  private constructor(private readonly opts: ControlClientOptions) {
    const k = typeof opts.coordinatorPublicKey === 'string' ? decodeBase64Key(opts.coordinatorPublicKey) : Buffer.from(opts.coordinatorPublicKey);
    if (!k || k.length !== COORDINATOR_KEY_SIZE) throw new UserError('the coordinator public key is not a 32-byte key', 'copy it again from the join string');
    this.coordinatorKey = Buffer.from(k);
  }

  /** A client connected and authenticated to the coordinator (rejects with ControlHandshakeError
   * when the server is not the coordinator, ControlError when it cannot be reached). */
  static async connect(opts: ControlClientOptions): Promise<ControlClient> {
    const c = new ControlClient(opts);
    await c.session();
    return c;
  }

  /** A client that connects on first use (and reconnects by itself). */
  static create(opts: ControlClientOptions): ControlClient {
    return new ControlClient(opts);
  }

  /** The last network map received (from register or the map stream). */
  get map(): ControlNetworkMap | null {
    return this.lastMap;
  }

  /** Registers this node's key with a join token. Refusals are results, not exceptions. */
  async register(req: RegisterRequest): Promise<RegisterResult> {
    const { status, msg } = await this.request(CONTROL_PATH_REGISTER, req);
    if (status === 200 && !isControlError(msg)) {
      let reply: RegisterReply;
      try {
        reply = checkRegisterReply(msg);
      } catch (e) {
        if (!(e instanceof MapFieldError)) throw e;
        this.rejectedMaps++;
        this.lastMapError = e.message;
        return { ok: false, status, error: `the coordinator's reply is unusable: ${e.message}`, reason: 'bad-reply', retryAfterMs: 0 };
      }
      this.setMap(reply.map);
      return { ok: true, ...reply };
    }
    return { ok: false, status, ...errorOf(msg, status) };
  }

  /** Reports this node's endpoints (and advertised routes). */
  async report(req: ReportRequest): Promise<ReportResult> {
    const { status, msg } = await this.request(CONTROL_PATH_REPORT, req);
    if (status === 200 && !isControlError(msg)) return { ...(msg as ReportReply), ok: true };
    return { ok: false, status, ...errorOf(msg, status) };
  }

  /** "Call me maybe": asks the coordinator to have peer `peerId` sweep its paths toward this node
   * now. Best effort: failures are counted, not thrown. */
  async call(peerId: string): Promise<boolean> {
    try {
      const { status, msg } = await this.request(CONTROL_PATH_CALL, { peer: peerId });
      return status === 200 && !isControlError(msg);
    } catch {
      this.failedCalls++;
      return false;
    }
  }

  /** Hears the calls other nodes send this node (through the map stream). */
  onCall(fn: (from: string) => void): () => void {
    this.callListeners.add(fn);
    return () => this.callListeners.delete(fn);
  }

  /** Calls `onMap` with every map the coordinator pushes (the current one first), keeping the
   * stream open across coordinator restarts. `onRemoved` hears when this node was removed. */
  subscribeMap(onMap: (map: ControlNetworkMap) => void, onRemoved?: (message: string) => void): () => void {
    this.mapListeners.add(onMap);
    if (onRemoved) this.removedListeners.add(onRemoved);
    if (!this.mapLoopRunning) void this.mapLoop();
    return () => {
      this.mapListeners.delete(onMap);
      if (onRemoved) this.removedListeners.delete(onRemoved);
    };
  }

  /** Drops the connection and makes a new one at once (this machine's addresses changed: the old
   * TCP connection is dead, and waiting for its timeouts would delay reports and maps). */
  reconnect(): void {
    if (this.closed) return;
    this.dropConnection();
    this.skipBackoff = true;
    if (this.sleepTimer) clearTimeout(this.sleepTimer);
    this.wake?.();
  }

  close(): void {
    this.closed = true;
    if (this.sleepTimer) clearTimeout(this.sleepTimer);
    this.wake?.();
    this.dropConnection();
  }

  // --- internals ---

  private setMap(map: ControlNetworkMap): void {
    this.lastMap = map;
    for (const fn of [...this.mapListeners]) fn(map);
  }

  /** A pushed map checked field by field, or null (refused, counted, logged: the node keeps the
   * map it has). */
  private checkMap(v: unknown): ControlNetworkMap | null {
    try {
      const map = checkNetworkMap(v);
      this.lastMapError = null;
      return map;
    } catch (e) {
      if (!(e instanceof MapFieldError)) throw e;
      this.rejectedMaps++;
      this.lastMapError = e.message;
      log.warn(`refused a network map from the coordinator: ${e.message}; keeping the map this node has`);
      return null;
    }
  }

  private dropConnection(): void {
    const c = this.conn;
    this.conn = null;
    if (c) {
      this.rejectedTotal += c.cipher.rejected;
      c.cipher.wipe();
      c.h2.destroy();
    }
  }

  /** The current session, or a new one (TLS connection + Noise handshake). */
  private session(): Promise<Connection> {
    if (this.closed) return Promise.reject(new ControlError('the control client is closed'));
    if (this.conn && !this.conn.h2.closed && !this.conn.h2.destroyed) return Promise.resolve(this.conn);
    this.connecting ??= this.handshake().finally(() => { this.connecting = null; });
    return this.connecting;
  }

  private async handshake(): Promise<Connection> {
    this.dropConnection();
    const h2 = h2connect(this.opts.url, { rejectUnauthorized: false });
    h2.on('error', () => { /* surfaced through the requests */ });
    h2.on('close', () => { if (this.conn?.h2 === h2) this.dropConnection(); });
    try {
      const hs = new Handshake(this.opts.identity, this.coordinatorKey);
      const index = cryptoRandomUint32()() >>> 0;
      const init = Buffer.alloc(INITIATION.SIZE);
      if (!createInitiation(hs, index, Date.now(), init)) throw new ControlHandshakeError('the coordinator public key is unusable (a low-order point)');
      new CookieGenerator(this.coordinatorKey).addMacs(init, init.length, performance.now());
      const a = await this.exchange(h2, { ':method': 'POST', ':path': CONTROL_PATH_HANDSHAKE, 'content-type': CONTROL_HANDSHAKE_CONTENT_TYPE }, init);
      if (a.status === 429) {
        const e = parsePlain(a.body);
        throw new ControlError(e?.error ?? 'rate limited', 429, 'rate-limited', e?.retryAfterMs ?? retryAfterHeader(a.headers));
      }
      const resp = a.body;
      const sessionId = String(a.headers[CONTROL_SESSION_HEADER] ?? '');
      const verified = a.status === 200 && resp.length === RESPONSE.SIZE && /^[0-9a-f]{8}$/.test(sessionId)
        && new CookieChecker(this.opts.identity.publicKey).checkMac1(resp, resp.length)
        && consumeResponse(this.opts.identity, resp, resp.length, (i) => (i === index ? hs : undefined)) !== undefined;
      const keys = verified ? deriveKeys(hs) : undefined;
      if (!keys) {
        hs.clear();
        throw new ControlHandshakeError(`the server at ${this.opts.url} did not complete the Noise handshake with the coordinator key from the join string `
          + `(HTTP ${a.status}): it is not that coordinator, or the join string is wrong`, a.status, 'handshake-failed');
      }
      const conn: Connection = { h2, cipher: new ControlCipher(keys.sendKey, keys.receiveKey, 'node'), sessionId };
      keys.sendKey.fill(0);
      keys.receiveKey.fill(0);
      this.conn = conn;
      this.connects++;
      return conn;
    } catch (e) {
      h2.destroy();
      throw e;
    }
  }

  /** One request and its whole answer. */
  private exchange(h2: ClientHttp2Session, headers: Record<string, string>, body: Buffer | null): Promise<Answer> {
    return new Promise((resolve, reject) => {
      let req;
      try {
        req = h2.request({ ...this.opts.headers, ...headers }, { endStream: body === null });
      } catch (e) {
        reject(new ControlError(`cannot reach the coordinator at ${this.opts.url}: ${(e as Error).message}`));
        return;
      }
      const timer = setTimeout(() => {
        req.close(h2c.NGHTTP2_CANCEL);
        reject(new ControlError(`the coordinator at ${this.opts.url} did not answer within ${this.timeout} ms`));
      }, this.timeout);
      let status = 0;
      let rh: IncomingHttpHeaders = {};
      const chunks: Buffer[] = [];
      let size = 0;
      let bound = MAX_PLAIN_ANSWER;
      let refused = false;
      const tooLarge = (): void => {
        if (refused) return;
        refused = true;
        clearTimeout(timer);
        this.oversizeAnswers++;
        req.close(h2c.NGHTTP2_CANCEL);
        chunks.length = 0;
        reject(new ControlError(`the coordinator's answer on ${headers[':path']} is larger than ${bound} bytes: refused`, status, 'too-large'));
      };
      req.on('response', (h) => {
        rh = h;
        status = Number(h[':status'] ?? 0);
        bound = answerBound(h);
        if (Number(h['content-length']) > bound) tooLarge();
      });
      req.on('data', (c: Buffer) => {
        if (refused) return;
        size += c.length;
        if (size > bound) tooLarge();
        else chunks.push(c);
      });
      req.on('end', () => { clearTimeout(timer); resolve({ status, headers: rh, body: Buffer.concat(chunks) }); });
      req.on('error', (e) => { clearTimeout(timer); reject(new ControlError(`cannot reach the coordinator at ${this.opts.url}: ${e.message}`)); });
      if (body !== null) req.end(body);
    });
  }

  private get timeout(): number {
    return this.opts.requestTimeoutMs ?? CONTROL_REQUEST_TIMEOUT_MS;
  }

  /** An encrypted request on `path`; retries once with a fresh session when the server lost ours. */
  private async request(path: string, msg: unknown): Promise<{ status: number; msg: unknown }> {
    for (let attempt = 0; ; attempt++) {
      const conn = await this.session();
      const a = await this.exchange(conn.h2, {
        ':method': 'POST', ':path': path, 'content-type': CONTROL_CONTENT_TYPE, [CONTROL_SESSION_HEADER]: conn.sessionId,
      }, conn.cipher.seal(path, msg));
      if (a.headers['content-type'] !== CONTROL_CONTENT_TYPE) {
        const e = parsePlain(a.body);
        if (e?.reason === 'no-session' && attempt === 0) {
          this.dropConnection();
          continue;
        }
        return { status: a.status, msg: e ?? { error: `unexpected answer (HTTP ${a.status})`, reason: 'protocol', retryAfterMs: 0 } };
      }
      const records = new FrameReader().push(a.body);
      const reply = records.length === 1 ? conn.cipher.open(path, records[0]!) : undefined;
      if (reply === undefined) throw new ControlError(`the coordinator's answer on ${path} did not verify`, a.status, 'bad-frame');
      return { status: a.status, msg: reply };
    }
  }

  private async mapLoop(): Promise<void> {
    this.mapLoopRunning = true;
    let delay = this.opts.backoffInitialMs ?? CONTROL_BACKOFF_INITIAL_MS;
    const max = this.opts.backoffMaxMs ?? CONTROL_BACKOFF_MAX_MS;
    while (!this.closed) {
      let gotMap = false;
      let retryAfter = 0;
      try {
        const conn = await this.session();
        const end = await this.mapStream(conn, () => { gotMap = true; });
        if (end === 'removed') break;
      } catch (e) {
        // Down or refused: back off and try again; a rate-limited source waits as long as told
        // (retrying earlier would count against it again).
        if (e instanceof ControlError) retryAfter = e.retryAfterMs;
      }
      if (this.closed) break;
      if (gotMap) delay = this.opts.backoffInitialMs ?? CONTROL_BACKOFF_INITIAL_MS;
      this.dropConnection();
      if (this.skipBackoff) {
        this.skipBackoff = false;
        continue;
      }
      await this.sleep(Math.max(retryAfter, delay * (0.5 + Math.random() / 2)));
      delay = Math.min(max, delay * 2);
    }
    this.mapLoopRunning = false;
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      this.wake = resolve;
      this.sleepTimer = setTimeout(resolve, ms);
    });
  }

  /** Runs one GET /v1/map stream until it ends: 'ended' (error, close, idle) or 'removed'. */
  private mapStream(conn: Connection, onMap: () => void): Promise<'ended' | 'removed'> {
    return new Promise((resolve) => {
      const frame = conn.cipher.seal(CONTROL_PATH_MAP, { version: this.lastMap?.version ?? 0 });
      const req = conn.h2.request({
        ...this.opts.headers, ':method': 'GET', ':path': CONTROL_PATH_MAP, [CONTROL_SESSION_HEADER]: conn.sessionId,
        [CONTROL_FRAME_HEADER]: frame.toString('base64'),
      });
      const idleMs = this.opts.streamIdleMs ?? CONTROL_STREAM_IDLE_MS;
      let idle = setTimeout(() => req.close(h2c.NGHTTP2_CANCEL), idleMs);
      const reader = new FrameReader();
      let result: 'ended' | 'removed' = 'ended';
      let framed = false;
      const refusal: Buffer[] = [];
      req.on('response', (h) => { framed = h[':status'] === 200 && h['content-type'] === CONTROL_CONTENT_TYPE; });
      let refusalSize = 0;
      req.on('data', (chunk: Buffer) => {
        if (!framed) {
          if (refusalSize > MAX_PLAIN_ANSWER) return;
          refusalSize += chunk.length;
          if (refusalSize <= MAX_PLAIN_ANSWER) {
            refusal.push(chunk);
          } else {
            this.oversizeAnswers++;
            refusal.length = 0;
            req.close(h2c.NGHTTP2_CANCEL);
          }
          return;
        }
        for (const rec of reader.push(chunk)) {
          const m = conn.cipher.open(CONTROL_PATH_MAP, rec) as MapStreamMessage | undefined;
          if (!m || typeof m !== 'object') continue;
          clearTimeout(idle);
          idle = setTimeout(() => req.close(h2c.NGHTTP2_CANCEL), idleMs);
          if (m.type === 'map') {
            const map = this.checkMap(m.map);
            if (map) {
              onMap();
              this.setMap(map);
            }
          } else if (m.type === 'call') {
            if (typeof m.from === 'string' && m.from.length <= 100) for (const fn of [...this.callListeners]) fn(m.from);
          } else if (m.type === 'removed') {
            result = 'removed';
            for (const fn of [...this.removedListeners]) fn(String(m.message));
          }
        }
        if (reader.broken) req.close(h2c.NGHTTP2_PROTOCOL_ERROR);
      });
      let finished = false;
      const done = (): void => {
        if (finished) return;
        finished = true;
        clearTimeout(idle);
        // A refusal: 401 unknown-node means this node was removed (or never joined).
        const recs = refusal.length ? new FrameReader().push(Buffer.concat(refusal)) : [];
        const err = recs.length === 1 ? conn.cipher.open(CONTROL_PATH_MAP, recs[0]!) : undefined;
        if (isControlError(err) && err.reason === 'unknown-node') {
          result = 'removed';
          for (const fn of [...this.removedListeners]) fn(err.error);
        }
        resolve(result);
      };
      req.on('close', done);
      req.on('error', done);
    });
  }
}

/** How much of an answer is read: one record when it is frames, else MAX_PLAIN_ANSWER. */
function answerBound(h: IncomingHttpHeaders): number {
  return h['content-type'] === CONTROL_CONTENT_TYPE ? FRAME_LENGTH_SIZE + MAX_FRAME_BODY : MAX_PLAIN_ANSWER;
}

function parsePlain(body: Buffer): ControlErrorReply | null {
  try {
    const v: unknown = JSON.parse(body.toString('utf8'));
    return isControlError(v) ? v : null;
  } catch {
    return null;
  }
}

function retryAfterHeader(h: IncomingHttpHeaders): number {
  const s = Number(h['retry-after']);
  return Number.isFinite(s) && s > 0 ? s * 1000 : 0;
}

function errorOf(msg: unknown, status: number): ControlErrorReply {
  if (isControlError(msg)) return { error: msg.error, reason: msg.reason, retryAfterMs: Number(msg.retryAfterMs) || 0 };
  return { error: `unexpected answer (HTTP ${status})`, reason: 'protocol', retryAfterMs: 0 };
}
