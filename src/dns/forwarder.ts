// Forwards queries outside the network's zones to an upstream resolver over a kernel UDP socket
// (optional: without one the responder answers REFUSED). Each forwarded query gets a fresh random
// ID; a reply is relayed only when it comes from the upstream's address and port, carries a
// pending ID, and echoes the question that was sent (name, type, class), so an off-path spoofer
// must guess both the ID and the source port. A query not answered within `timeoutMs`, or one
// beyond `maxPending`, is answered SERVFAIL by the host. Control-plane rates: this allocates per
// query (a copy, a pending entry, a timer).

import dgram from 'node:dgram';
import { isIP } from 'node:net';
import { randomInt } from 'node:crypto';
import { UserError } from '../util/index.js';
import {
  DnsQuestion, readDnsQuestion, Status, DNS_FIELD, DNS_FLAG_QR, DNS_HEADER_LEN, DNS_PORT, parseIpv6Address, formatIpv6Address,
} from '../wire/index.js';
import type { DnsCounters } from './counters.js';

export interface DnsUpstream {
  /** An IPv4 or IPv6 address literal. */
  address: string;
  port: number;
}

export interface DnsForwarderOptions {
  /** How long to wait for the upstream before answering SERVFAIL (default 2000 ms). */
  timeoutMs?: number;
  /** Queries waiting for the upstream at most; more are answered SERVFAIL (default 1024). */
  maxPending?: number;
}

export const DEFAULT_UPSTREAM_TIMEOUT_MS = 2000;
export const DEFAULT_MAX_PENDING = 1024;
const ID_SPACE = 0x10000;
const ID_TRIES = 16;

/** The upstream's reply (its ID set back to the client's), or null when it failed. */
export type ForwardDone = (reply: Buffer | null) => void;

interface Pending {
  clientId: number;
  question: DnsQuestion;
  done: ForwardDone;
  timer: NodeJS.Timeout;
}

/** Parses "192.0.2.53", "192.0.2.53:5353", "2001:db8::53" or "[2001:db8::53]:5353". */
export function parseDnsUpstream(text: string): DnsUpstream {
  const bad = (why: string) => new UserError(`DNS upstream "${text}": ${why} (e.g. "192.0.2.53", "192.0.2.53:5353" or "[2001:db8::53]:53")`);
  let host = text.trim();
  let port = DNS_PORT;
  const bracketed = /^\[([^\]]+)\](?::(\d+))?$/.exec(host);
  if (bracketed) {
    host = bracketed[1]!;
    if (bracketed[2] !== undefined) port = Number(bracketed[2]);
  } else if (isIP(host) === 0) {
    const m = /^([^:]+):(\d+)$/.exec(host);
    if (!m) throw bad('not an IP address with an optional port');
    host = m[1]!;
    port = Number(m[2]);
  }
  if (isIP(host) === 0) throw bad(`"${host}" is not an IP address`);
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw bad(`port ${port} is not 1-65535`);
  if (isIP(host) === 6) {
    // The canonical text form, as the socket reports a reply's source address.
    const bytes = new Uint8Array(16);
    if (!parseIpv6Address(host, bytes)) throw bad(`"${host}" is not an IP address`);
    host = formatIpv6Address(bytes);
  }
  return { address: host, port };
}

export class DnsForwarder {
  readonly upstream: DnsUpstream;
  private readonly socket: dgram.Socket;
  private readonly pending = new Map<number, Pending>();
  private readonly timeoutMs: number;
  private readonly maxPending: number;
  private readonly reply = new DnsQuestion();
  private closed = false;

  constructor(upstream: string | DnsUpstream, private readonly counters: DnsCounters, opts: DnsForwarderOptions = {}) {
    this.upstream = typeof upstream === 'string' ? parseDnsUpstream(upstream) : parseDnsUpstream(
      isIP(upstream.address) === 6 ? `[${upstream.address}]:${upstream.port}` : `${upstream.address}:${upstream.port}`);
    this.timeoutMs = opts.timeoutMs ?? DEFAULT_UPSTREAM_TIMEOUT_MS;
    this.maxPending = opts.maxPending ?? DEFAULT_MAX_PENDING;
    if (!(this.timeoutMs > 0)) throw new UserError(`DNS forwarder: timeoutMs ${this.timeoutMs} must be positive`);
    if (!Number.isInteger(this.maxPending) || this.maxPending < 1) throw new UserError(`DNS forwarder: maxPending ${this.maxPending} must be a positive integer`);
    this.socket = dgram.createSocket(isIP(this.upstream.address) === 6 ? 'udp6' : 'udp4');
    this.socket.on('message', (msg, rinfo) => this.onReply(msg, rinfo));
    this.socket.on('error', () => { this.counters.sendErrors++; });
    this.socket.unref();
  }

  /** Queries waiting for the upstream now. */
  get pendingCount(): number { return this.pending.size; }

  /** Sends the query at msg[off, off+len) upstream; `done` gets the reply or null (timeout,
   * overload, unreadable query, closed). Calls `done` exactly once, never synchronously. */
  forward(msg: Buffer, off: number, len: number, done: ForwardDone): void {
    const fail = (): void => { process.nextTick(done, null); };
    if (this.closed) return fail();
    if (this.pending.size >= this.maxPending) {
      this.counters.upstreamOverload++;
      return fail();
    }
    const question = new DnsQuestion();
    if (len < DNS_HEADER_LEN || readDnsQuestion(msg, off, len, question) !== Status.Ok) return fail();
    let id = -1;
    for (let i = 0; i < ID_TRIES && id < 0; i++) {
      const candidate = randomInt(ID_SPACE);
      if (!this.pending.has(candidate)) id = candidate;
    }
    if (id < 0) {
      this.counters.upstreamOverload++;
      return fail();
    }
    const query = Buffer.from(msg.subarray(off, off + len));
    const clientId = query.readUInt16BE(DNS_FIELD.ID);
    query.writeUInt16BE(id, DNS_FIELD.ID);
    const timer = setTimeout(() => {
      if (this.pending.get(id)?.timer !== timer) return;
      this.pending.delete(id);
      this.counters.upstreamTimeouts++;
      done(null);
    }, this.timeoutMs);
    timer.unref();
    this.pending.set(id, { clientId, question, done, timer });
    this.socket.send(query, this.upstream.port, this.upstream.address, (err) => {
      if (!err) return;
      this.counters.sendErrors++;
      const p = this.pending.get(id);
      if (p?.timer !== timer) return;
      clearTimeout(timer);
      this.pending.delete(id);
      done(null);
    });
  }

  private onReply(msg: Buffer, rinfo: dgram.RemoteInfo): void {
    if (rinfo.port !== this.upstream.port || !sameAddress(rinfo.address, this.upstream.address) ||
        msg.length < DNS_HEADER_LEN || (msg.readUInt16BE(DNS_FIELD.FLAGS) & DNS_FLAG_QR) === 0) {
      this.counters.upstreamMismatched++;
      return;
    }
    const id = msg.readUInt16BE(DNS_FIELD.ID);
    const p = this.pending.get(id);
    const q = this.reply;
    if (p === undefined || readDnsQuestion(msg, 0, msg.length, q) !== Status.Ok || !q.sameName(p.question) ||
        q.type !== p.question.type || q.class !== p.question.class) {
      this.counters.upstreamMismatched++;
      return;
    }
    clearTimeout(p.timer);
    this.pending.delete(id);
    msg.writeUInt16BE(p.clientId, DNS_FIELD.ID);
    this.counters.upstreamReplies++;
    p.done(msg);
  }

  /** Fails every pending query and closes the socket. Idempotent. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const p of this.pending.values()) {
      clearTimeout(p.timer);
      process.nextTick(p.done, null);
    }
    this.pending.clear();
    this.socket.close();
  }
}

function sameAddress(a: string, b: string): boolean {
  if (a === b) return true;
  // An IPv4 upstream seen through a dual-stack socket (::ffff:192.0.2.53).
  const strip = (s: string) => s.toLowerCase().replace(/^::ffff:(?=\d+\.)/, '');
  return strip(a) === strip(b);
}
