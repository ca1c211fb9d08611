// Host name resolution for the proxies and forwards. IP literals pass through untouched; names go
// either to the system resolver (node:dns lookup) or, when the configuration names DNS servers
// (wg-quick's DNS =), to those servers THROUGH the tunnel: an A (then AAAA) query in a UDP
// datagram sent from a TunnelNet socket, encoded and decoded with src/wire/dns.ts. Answers are
// cached for their TTL (capped), a bounded number of names.

import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import { randomInt } from 'node:crypto';
import {
  emitDns, parseDns, DnsParsed, DnsType, DnsRcode, DNS_FLAG_RD, DNS_PORT, Status, type DnsMessage,
} from '../wire/index.js';
import { DialError, unbracket, type TunnelNet } from './dialer.js';

export interface ResolvedHost {
  address: string;
  family: 4 | 6;
}

export interface HostResolver {
  /** Resolves `host` (a name or an IP literal). Rejects with a DialError: ENOTFOUND for a name
   * that does not exist, ETIMEDOUT when no server answered. */
  resolve(host: string): Promise<ResolvedHost>;
}

/** An IP literal (brackets allowed) as a ResolvedHost, or null. */
export function literalHost(host: string): ResolvedHost | null {
  const h = unbracket(host);
  const v = isIP(h);
  return v === 4 || v === 6 ? { address: h, family: v } : null;
}

/** node:dns lookup (the machine's /etc/hosts and resolv.conf). */
export class SystemResolver implements HostResolver {
  constructor(private readonly family: 0 | 4 | 6 = 0) {}

  async resolve(host: string): Promise<ResolvedHost> {
    const lit = literalHost(host);
    if (lit) return lit;
    try {
      const r = await lookup(host, { family: this.family });
      return { address: r.address, family: r.family === 6 ? 6 : 4 };
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? 'ENOTFOUND';
      throw new DialError(code === 'ENODATA' ? 'ENOTFOUND' : code, `cannot resolve ${host}: ${code}`);
    }
  }
}

export interface TunnelDnsOptions {
  /** Wait per query attempt (default 2000 ms). */
  timeoutMs?: number;
  /** Rounds over the server list (default 2). */
  attempts?: number;
  /** Families the tunnel can reach, in order of preference (default [4, 6]). */
  families?: (4 | 6)[];
  /** Names kept in the cache (default 1024). */
  cacheSize?: number;
}

const MAX_DNS_UDP = 1232;
const MAX_CACHE_TTL_S = 300;
const NEGATIVE_TTL_S = 10;

interface CacheEntry { result: ResolvedHost | null; expires: number }

/** Asks the configured name servers through the tunnel. */
export class TunnelDnsResolver implements HostResolver {
  private readonly cache = new Map<string, CacheEntry>();
  private readonly inflight = new Map<string, Promise<ResolvedHost>>();
  private readonly timeoutMs: number;
  private readonly attempts: number;
  private readonly families: (4 | 6)[];
  private readonly cacheSize: number;
  /** Queries sent, answers received, timeouts, for status output. */
  readonly counters = { queries: 0, answers: 0, timeouts: 0, failures: 0 };

  constructor(private readonly net: TunnelNet, readonly servers: readonly string[], opts: TunnelDnsOptions = {}) {
    this.timeoutMs = opts.timeoutMs ?? 2000;
    this.attempts = opts.attempts ?? 2;
    this.families = opts.families ?? [4, 6];
    this.cacheSize = opts.cacheSize ?? 1024;
  }

  resolve(host: string): Promise<ResolvedHost> {
    const lit = literalHost(host);
    if (lit) return Promise.resolve(lit);
    const name = host.toLowerCase().replace(/\.$/, '');
    const hit = this.cache.get(name);
    if (hit && hit.expires > Date.now()) {
      return hit.result ? Promise.resolve(hit.result) : Promise.reject(new DialError('ENOTFOUND', `cannot resolve ${host}: no such name (cached)`));
    }
    let p = this.inflight.get(name);
    if (!p) {
      p = this.lookupName(name).finally(() => this.inflight.delete(name));
      this.inflight.set(name, p);
    }
    return p;
  }

  private async lookupName(name: string): Promise<ResolvedHost> {
    for (const family of this.families) {
      const r = await this.query(name, family === 4 ? DnsType.A : DnsType.AAAA);
      if (r.address !== null) {
        const result: ResolvedHost = { address: r.address, family };
        this.remember(name, result, r.ttl);
        return result;
      }
      if (r.nxdomain) break;
    }
    this.remember(name, null, NEGATIVE_TTL_S);
    throw new DialError('ENOTFOUND', `cannot resolve ${name}: the tunnel's DNS server (${this.servers.join(', ')}) has no address for it`);
  }

  private remember(name: string, result: ResolvedHost | null, ttl: number): void {
    if (this.cache.size >= this.cacheSize) {
      const oldest = this.cache.keys().next().value;
      if (oldest !== undefined) this.cache.delete(oldest);
    }
    this.cache.set(name, { result, expires: Date.now() + Math.min(ttl, MAX_CACHE_TTL_S) * 1000 });
  }

  /** One question, tried on each server in turn for `attempts` rounds. */
  private async query(name: string, type: number): Promise<{ address: string | null; ttl: number; nxdomain: boolean }> {
    let lastErr: Error | null = null;
    for (let round = 0; round < this.attempts; round++) {
      for (const server of this.servers) {
        try {
          return await this.ask(server, name, type);
        } catch (err) {
          lastErr = err as Error;
        }
      }
    }
    this.counters.failures++;
    throw lastErr ?? new DialError('ETIMEDOUT', `cannot resolve ${name}: no DNS server configured`);
  }

  private async ask(server: string, name: string, type: number): Promise<{ address: string | null; ttl: number; nxdomain: boolean }> {
    const family = isIP(server) === 6 ? 6 : 4;
    const id = randomInt(0, 0x10000);
    const msg: DnsMessage = { type: 'query', id, flags: DNS_FLAG_RD, questions: [{ type: type === DnsType.A ? 'A' : 'AAAA', class: 'IN', name }] };
    const buf = Buffer.alloc(MAX_DNS_UDP);
    const len = emitDns(msg, buf, 0);
    if (len < 0) throw new DialError('EINVAL', `cannot resolve "${name}": not a valid DNS name`);
    const sock = await this.net.udpSocket(family);
    this.counters.queries++;
    try {
      return await new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          this.counters.timeouts++;
          reject(new DialError('ETIMEDOUT', `cannot resolve ${name}: DNS server ${server} did not answer within ${this.timeoutMs} ms`));
        }, this.timeoutMs);
        const parsed = new DnsParsed();
        sock.on('message', (reply: Buffer, rinfo) => {
          if (rinfo.port !== DNS_PORT || unbracket(rinfo.address) !== server) return;
          if (parseDns(reply, 0, reply.length, parsed) !== Status.Ok || !parsed.message || parsed.message.id !== id) return;
          const m = parsed.message;
          if (m.type !== 'response') return;
          clearTimeout(timer);
          this.counters.answers++;
          const rcode = (m.flags ?? 0) & 0xf;
          if (rcode !== DnsRcode.NoError && rcode !== DnsRcode.NxDomain) {
            reject(new DialError('ESERVFAIL', `cannot resolve ${name}: DNS server ${server} answered with rcode ${rcode}`));
            return;
          }
          const want = type === DnsType.A ? 'A' : 'AAAA';
          const ans = (m.answers ?? []).find((a) => a.type === want) as { data?: unknown; ttl?: number } | undefined;
          const address = ans && typeof ans.data === 'string' ? ans.data : null;
          resolve({ address, ttl: ans?.ttl ?? NEGATIVE_TTL_S, nxdomain: rcode === DnsRcode.NxDomain });
        });
        sock.on('error', () => undefined);
        sock.send(buf.subarray(0, len), DNS_PORT, server, (err) => {
          if (err) { clearTimeout(timer); reject(new DialError(errorCodeOf(err), `cannot resolve ${name}: sending to DNS server ${server}: ${err.message}`)); }
        });
      });
    } finally {
      sock.close();
    }
  }
}

function errorCodeOf(err: Error): string {
  const c = (err as { code?: unknown }).code;
  return typeof c === 'string' ? c : 'EIO';
}
