// Admission of a node with a join token: the steps of Coordinator.join, in order.
//   1. auth limiter: a source that failed too often is refused unchecked, with a retry-after
//   2. token syntax: malformed or typo (checksum), counted lightly by the limiter
//   3. token lookup by id and constant-time check of the secret's hash: unknown = a guess
//   4. token state: revoked, expired or used up (the secret was right: counted lightly)
//   5. request fields (key, name, endpoints, routes): a mistake here is not counted
//   6. one transaction: re-check the token, find or create the node (a re-join keeps its row, and
//      its address and name when still free), allocate the address, pick a unique name, count the
//      token's use, bump the map version, log the event; then announce the change
// A join never throws for what the joiner sent: the result says why it was refused.
import { UserError } from '../util/index.js';
import { decodeBase64Key } from '../crypto/index.js';
import { formatIpv4Address, formatIpv6Address, parseIpv4Address } from '../wire/index.js';
import type { Coordinator } from './coordinator.js';
import type { NodeRecord, TokenRecord } from './store.js';
import { parseJoinToken, verifyTokenSecret, tokenState, TOKEN_HASH_BYTES } from './tokens.js';
import { normalizeNodeName, nameFromHostname, uniqueName } from './names.js';
import { allocateIpv4, parseIpv4Pool, nodeIpv6, parseUlaPrefix, PoolExhaustedError } from './ip-pool.js';
import { normalizeEndpoints, normalizeRoutes, publicKeyText } from './node-fields.js';
import type { NetworkMap } from './network-map.js';

export interface JoinRequest {
  /** The joiner's static public key (base64 or 32 bytes): the key it will use on the control channel. */
  publicKey: string | Uint8Array;
  /** The join token text. */
  token: string;
  /** A name the joiner asked for (--name); refused when taken. */
  name?: string | null;
  /** The joiner's host name: its name when it did not ask for one (made unique with -2, -3...). */
  hostname?: string | null;
  /** Where the request came from (ip or ip:port): the auth limiter's key. */
  sourceAddress: string;
  endpoints?: string[];
  advertisedRoutes?: string[];
}

export type JoinRefusalReason =
  | 'rate-limited' | 'malformed-token' | 'token-typo' | 'unknown-token' | 'token-expired' | 'token-revoked' | 'token-used'
  | 'invalid-request' | 'name-taken' | 'key-in-use' | 'pool-full';

export type JoinResult =
  | { ok: true; node: NodeRecord; map: NetworkMap; rejoined: boolean }
  | { ok: false; reason: JoinRefusalReason; message: string; retryAfterMs: number };

/** Compared against when a token id is unknown, so both paths hash and compare. */
const DUMMY_HASH = Buffer.alloc(TOKEN_HASH_BYTES);

class Refusal extends Error {
  constructor(readonly reason: JoinRefusalReason, message: string) {
    super(message);
  }
}

/** "3 s", "2 min", "1 h": a retry-after for people. */
export function formatWait(ms: number): string {
  const s = Math.max(1, Math.ceil(ms / 1000));
  if (s < 90) return `${s} s`;
  const m = Math.ceil(s / 60);
  if (m < 90) return `${m} min`;
  return `${Math.ceil(m / 60)} h`;
}

function refuse(reason: JoinRefusalReason, message: string, retryAfterMs = 0): JoinResult {
  return { ok: false, reason, message, retryAfterMs };
}

function staleMessage(t: TokenRecord, state: string): [JoinRefusalReason, string] {
  const fix = 'ask for a new one (`meshtun token create` on the coordinator)';
  if (state === 'revoked') return ['token-revoked', `the join token ${t.id} was revoked; ${fix}`];
  if (state === 'expired') return ['token-expired', `the join token ${t.id} expired at ${new Date(t.expires!).toISOString()}; ${fix}`];
  return ['token-used', `the join token ${t.id} was already used (it is single-use); ${fix}, or a reusable one with --reusable`];
}

export function admitJoin(coord: Coordinator, req: JoinRequest): JoinResult {
  const source = String(req?.sourceAddress ?? '');
  const limiter = coord.limiter;
  const gate = limiter.check(source);
  if (!gate.allowed) {
    const who = gate.reason === 'source' ? `from ${source}` : 'at this coordinator (from many addresses)';
    return refuse('rate-limited', `too many failed join attempts ${who}; try again in ${formatWait(gate.retryAfterMs)}`, gate.retryAfterMs);
  }
  const parsed = parseJoinToken(req?.token);
  if (!parsed.ok) {
    const wait = limiter.recordFailure(source, 'typo');
    return refuse(parsed.kind === 'typo' ? 'token-typo' : 'malformed-token', parsed.message, wait);
  }
  const token = coord.store.token(parsed.id);
  const secretOk = verifyTokenSecret(parsed.secret, token?.secretHash ?? DUMMY_HASH);
  parsed.secret.fill(0);
  if (!token || !secretOk) {
    const wait = limiter.recordFailure(source, 'guess');
    coord.store.addEvent({ time: coord.clock.wallNow(), networkId: null, nodeId: null, kind: 'auth.failed', detail: { source, reason: 'unknown-token' } });
    const then = wait > 0 ? `; wait ${formatWait(wait)} before trying again` : '';
    return refuse('unknown-token', `the join token is not valid at this coordinator (unknown token or wrong secret)${then}`, wait);
  }
  const now = coord.clock.wallNow();
  const state = tokenState(token, now);
  if (state !== 'valid') {
    const wait = limiter.recordFailure(source, 'stale');
    const [reason, message] = staleMessage(token, state);
    return refuse(reason, message, wait);
  }

  // The joiner holds a valid token: from here on, mistakes are not guesses.
  const net = coord.store.network(token.networkId)!;
  let key: string;
  let requested: string | null = null;
  let endpoints: string[] | null = null;
  let routes: string[] | null = null;
  try {
    key = publicKeyText(req.publicKey);
    if (req.name != null && String(req.name).trim() !== '') requested = normalizeNodeName(req.name);
    if (req.endpoints != null) endpoints = normalizeEndpoints(req.endpoints);
    if (req.advertisedRoutes != null) routes = normalizeRoutes(req.advertisedRoutes, net);
  } catch (e) {
    if (e instanceof UserError) return refuse('invalid-request', e.message + (e.hint ? ` (${e.hint})` : ''));
    return refuse('invalid-request', `bad join request: ${(e as Error).message}`);
  }
  const keyBytes = decodeBase64Key(key)!;
  const pool = parseIpv4Pool(net.ipv4Pool);

  let rejoined = false;
  let node: NodeRecord;
  try {
    node = coord.change(net.id, 'node.joined', () => {
      const t = coord.store.token(token.id)!;
      const again = tokenState(t, coord.clock.wallNow());
      if (again !== 'valid') throw new Refusal(...staleMessage(t, again));
      const existing = coord.store.nodeByKey(key);
      if (existing && existing.networkId !== net.id && !existing.removed) {
        throw new Refusal('key-in-use', 'this node key is already a member of another network on this coordinator; leave it first or use another key');
      }
      const mine = existing && existing.networkId === net.id ? existing : undefined;
      rejoined = mine !== undefined;
      const nameTaken = (n: string): boolean => {
        const o = coord.store.nodeByName(net.id, n);
        return o !== undefined && o.id !== existing?.id;
      };
      let name: string;
      if (requested) {
        if (nameTaken(requested)) {
          throw new Refusal('name-taken', `the name "${requested}" is taken by another node in network "${net.name}"; choose another with --name, or leave --name out to get a free one`);
        }
        name = requested;
      } else {
        name = uniqueName(mine ? mine.name : nameFromHostname(req.hostname), nameTaken);
      }
      const previous = mine ? parseIpv4Address(mine.ipv4) : null;
      const ipv4 = formatIpv4Address(allocateIpv4(pool, keyBytes, {
        isTaken: (a) => {
          const o = coord.store.nodeByIpv4(net.id, formatIpv4Address(a));
          return o !== undefined && o.id !== existing?.id;
        },
        takenCount: mine && !mine.removed ? undefined : coord.store.liveNodeCount(net.id),
        previous,
      }));
      const wasLive = mine !== undefined && !mine.removed;
      const base = existing ?? coord.newNodeRecord(net, key, name, ipv4, token.id);
      const n: NodeRecord = {
        ...base,
        networkId: net.id, name, ipv4, ipv6: formatIpv6Address(nodeIpv6(parseUlaPrefix(net.ulaPrefix), keyBytes), 0),
        tags: [...t.tags], tokenId: t.id, removed: false, removedAt: null, lastSeen: coord.clock.wallNow(),
        endpoints: endpoints ?? (wasLive ? base.endpoints : []),
        advertisedRoutes: routes ?? (wasLive ? base.advertisedRoutes : []),
        approvedRoutes: wasLive ? base.approvedRoutes : [],
        nat: wasLive ? base.nat : 'unknown',
      };
      if (existing) coord.store.updateNode(n);
      else coord.store.insertNode(n);
      coord.store.useToken(t.id);
      return { value: n, nodeId: n.id, detail: { name, ipv4, token: t.id, rejoined, source } };
    });
  } catch (e) {
    if (e instanceof Refusal) return refuse(e.reason, e.message);
    if (e instanceof PoolExhaustedError) return refuse('pool-full', e.message + (e.hint ? ` (${e.hint})` : ''));
    throw e;
  }
  limiter.recordSuccess(source);
  return { ok: true, node, map: coord.networkMap(node.id), rejoined };
}
