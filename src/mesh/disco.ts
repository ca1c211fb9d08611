// Path selection for mesh peers: which underlay path each peer's WireGuard packets take, found
// and kept up with discovery pings (disco-message.ts) on the WireGuard socket. The engine's own
// roaming is off for these peers; this module sets each peer's endpoint:
//
//   - Every peer has candidates: the endpoints the map reports for it (local, reflexive,
//     configured), ones heard on LAN beacons, and the source addresses its pings arrive from.
//   - A sweep pings every candidate a few times (SWEEP_PINGS_MS). A pong makes its candidate
//     trusted for TRUST_MS and gives it a round-trip time; the trusted candidate with the lowest
//     RTT becomes the peer's direct path at once (a relayed peer moves to it without a new
//     handshake: the session keys do not depend on the path). A better candidate replaces the
//     current one only when clearly better (BETTER_RTT), so paths do not flap.
//   - While a direct path is used and the peer is active (a packet either way within ACTIVE_MS),
//     it is pinged every HEARTBEAT_MS; when it stops answering (no pong for TRUST_MS and at least
//     LOST_AFTER_PINGS pings since), the peer falls back to its relay (the map's `via`) and sweeps
//     again. An idle peer is not pinged (its keepalives keep NAT mappings open).
//   - Without a trusted direct path, sweeps repeat every UPGRADE_MS when relayed (the upgrade
//     attempts; STREAM_UPGRADE_MS while the path is a stream because UDP was blocked) and every NONE_SWEEP_MS with no path at all. Each such sweep also asks the peer,
//     through the coordinator, to sweep toward us now ("call me maybe"), so both NATs open their
//     mappings at about the same time (simultaneous hole punching).
//   - A ping from a peer is answered with a pong carrying the address it came from; if this node
//     has no trusted direct path to that peer, it pings that address back at once.
// Timings follow Tailscale's disco (heartbeat ~3 s, trust ~6.5 s, upgrade every ~60 s).
//
// Pings and pongs are sealed per pair of nodes: only members in the map are answered, and nobody
// else can make a node believe in a path. Stale pings (by the sender's clock) are refused.
import { decodeBase64Key } from '../crypto/index.js';
import { Logger, RateLimitedLog } from '../util/index.js';
import type { Endpoint, Engine, Peer } from '../wireguard/index.js';
import {
  discoPairKey, discoSender, openDisco, sealDisco, newTxid, DISCO_TXID_SIZE,
} from './disco-message.js';
import type { UnderlayMux } from './underlay-mux.js';

export const DISCO_TIMING = {
  HEARTBEAT_MS: 3_000,
  TRUST_MS: 6_500,
  UPGRADE_MS: 30_000,
  /** Sweeps while the path in use is a stream (UDP was blocked): UDP is tried this often. */
  STREAM_UPGRADE_MS: 15_000,
  NONE_SWEEP_MS: 10_000,
  ACTIVE_MS: 45_000,
  LOST_AFTER_PINGS: 2,
  /** Offsets of a sweep's pings to every candidate. */
  SWEEP_PINGS_MS: [0, 500, 1_500, 3_000] as readonly number[],
  /** A sweep that got no pong counts as failed this long after its last ping. */
  SWEEP_WAIT_MS: 2_000,
  /** A candidate is switched to only when its RTT is below this share of the current one's... */
  BETTER_RTT: 0.75,
  /** ...and at least this much lower (ms). */
  BETTER_RTT_MIN_MS: 1,
  /** Pings older or newer than this by the sender's clock are refused. */
  PING_SKEW_MS: 5 * 60_000,
  /** A ping to the path in use unanswered this long lets an answering candidate take over. */
  UNANSWERED_MS: 1_000,
  /** A peer heard on another direct address while the one in use was silent this long has moved. */
  ROAM_AFTER_MS: 2_000,
  /** A handshake is kicked on a new path only when none went out this recently. */
  KICK_MIN_MS: 1_000,
  /** At most one call-me-maybe per peer this often. */
  CALL_MIN_MS: 5_000,
  /** How often the state machine runs. */
  TICK_MS: 250,
  /** Candidates kept per peer (the oldest learned ones go first). */
  MAX_CANDIDATES: 32,
  /** Pings awaiting a pong, in all. */
  MAX_PENDING: 4_096,
} as const;

export type CandidateSource = 'map' | 'lan' | 'disco' | 'saved' | 'stream';

/** The underlay transport of a path: UDP, or a stream to a relay when UDP does not get through
 * (issue 11: MASQUE CONNECT-UDP over HTTPS, or framed TCP). */
export type PathTransport = 'udp' | 'https' | 'tcp';

/** What a stream rung costs in the path choice (ms added to its RTT), so UDP wins whenever it
 * works and HTTPS comes before TCP: the ladder UDP -> HTTPS -> TCP. */
export const TRANSPORT_PENALTY_MS: Readonly<Record<PathTransport, number>> = { udp: 0, https: 50, tcp: 60 };

/** The transport of an endpoint (stream endpoints say so; everything else is UDP). */
export function transportOf(ep: Endpoint): PathTransport {
  const t = (ep as { transport?: unknown }).transport;
  return t === 'https' || t === 'tcp' ? t : 'udp';
}

export interface Candidate {
  /** "ip:port" / "[ip]:port". */
  readonly text: string;
  /** The endpoint to send to (a received one carries the local address it arrived on). */
  ep: Endpoint;
  source: CandidateSource;
  /** Clock ms of the last pong; -Infinity: never. */
  lastPong: number;
  /** Round-trip time of the last pong, ms; NaN: none yet. */
  rttMs: number;
  pingsSincePong: number;
  lastPing: number;
}

export type PathKind = 'direct' | 'relay' | 'none';

/** The path state of one peer. */
export class PeerPaths {
  readonly candidates = new Map<string, Candidate>();
  /** The relay endpoint the map names (via), or null. */
  relay: Endpoint | null = null;
  /** The direct candidate in use, or null. */
  direct: Candidate | null = null;
  kind: PathKind = 'none';
  /** Wall-clock ms of the last change of path. */
  since = 0;
  changes = 0;
  /** Clock ms the current sweep started and when the next one is due. */
  sweepStart = -Infinity;
  nextSweep = 0;
  sweepStep = DISCO_TIMING.SWEEP_PINGS_MS.length;
  /** A sweep finished without any pong (what the coordinator hears as "failed"). */
  failed = false;
  /** Any pong ever (so the first sweep is not yet a failure). */
  lastCall = -Infinity;
  lastHeartbeat = -Infinity;
  lastActive = -Infinity;
  private lastTx = 0;
  private lastRx = 0;
  private lastWireGuard = -Infinity;
  pairKey: Buffer | null = null;
  /** True for an underlay address that is routed through the mesh itself (never a path). */
  tunnelled: (address: string) => boolean = () => false;

  constructor(readonly peer: Peer, readonly nodeId: string, public name: string) {}

  /** Adds (or refreshes) a candidate; returns it, and whether it is new. */
  addCandidate(text: string, ep: Endpoint, source: CandidateSource): { c: Candidate; added: boolean } {
    const old = this.candidates.get(text);
    if (old) {
      if (source === 'map' || old.source !== 'map') old.source = source === 'saved' ? old.source : source;
      return { c: old, added: false };
    }
    if (this.candidates.size >= DISCO_TIMING.MAX_CANDIDATES) {
      for (const [k, c] of this.candidates) {
        if (c !== this.direct && c.source !== 'map') {
          this.candidates.delete(k);
          break;
        }
      }
    }
    const c: Candidate = { text, ep, source, lastPong: -Infinity, rttMs: NaN, pingsSincePong: 0, lastPing: -Infinity };
    this.candidates.set(text, c);
    return { c, added: true };
  }

  /** Notes traffic since the last call (the peer's byte counters moved). */
  noteActivity(now: number): void {
    if (this.peer.txBytes !== this.lastTx || this.peer.rxBytes !== this.lastRx) {
      this.lastTx = this.peer.txBytes;
      this.lastRx = this.peer.rxBytes;
      this.lastActive = now;
    }
  }

  isActive(now: number): boolean {
    return now - this.lastActive < DISCO_TIMING.ACTIVE_MS;
  }

  trusted(c: Candidate, now: number): boolean {
    return now - c.lastPong < DISCO_TIMING.TRUST_MS;
  }

  /** The trusted candidate with the lowest RTT (one known only from WireGuard traffic, without
   * a measured RTT, ranks last), or null. */
  best(now: number): Candidate | null {
    let best: Candidate | null = null;
    for (const c of this.candidates.values()) {
      if (!this.trusted(c, now) || this.tunnelled(c.ep.address)) continue;
      if (best === null || rank(c) < rank(best)) best = c;
    }
    return best;
  }

  /** Authenticated WireGuard packets from a direct endpoint prove it works as well as a pong
   * does (a peer that answers no discovery, or traffic while pongs are lost): WireGuard's own
   * roaming, as evidence for the path choice rather than a switch by itself. */
  noteWireGuard(): Candidate | null {
    const peer = this.peer;
    const from = peer.lastReceivedFrom;
    // Not a mesh relay's endpoint (those say `via`): the peer is not at its address.
    if (from === null || peer.lastReceived <= this.lastWireGuard || 'via' in from) return null;
    this.lastWireGuard = peer.lastReceived;
    if (this.tunnelled(from.address)) return null;
    const { c } = this.addCandidate(endpointText(from), from, 'disco');
    c.ep = from;
    if (peer.lastReceived > c.lastPong) c.lastPong = peer.lastReceived;
    c.pingsSincePong = 0;
    return c;
  }
}

export class DiscoCounters {
  pingsSent = 0;
  pongsSent = 0;
  pingsReceived = 0;
  pongsReceived = 0;
  callsSent = 0;
  callsReceived = 0;
  pathChanges = 0;
  /** Datagrams refused: too short or not a discovery message of ours. */
  dropMalformed = 0;
  /** From a key that is not a peer in the map. */
  dropUnknownSender = 0;
  /** The seal did not open (forged, corrupted, or for another node). */
  dropBadSeal = 0;
  /** A ping whose time is too far from ours (a replay). */
  dropStale = 0;
  /** A pong for no ping we sent (late, or a replay). */
  dropUnexpectedPong = 0;
  /** Pings not sent: the candidate's address is routed through the mesh itself. */
  skippedTunnelled = 0;
  /** A peer's path changed its transport (UDP / HTTPS / TCP: a rung of the ladder). */
  transportChanges = 0;
}

/** What the discovery service needs from its owner (MeshNode). */
export interface DiscoHost {
  /** The peer state for a public key (base64), or undefined for a key not in the map. */
  pathsByKey(publicKey: string): PeerPaths | undefined;
  /** Every peer's state. */
  allPaths(): Iterable<PeerPaths>;
  /** Asks the peer, through the coordinator, to sweep toward this node now. */
  callMeMaybe?(nodeId: string): void;
  /** A peer's path changed (kind or endpoint). */
  onPathChange?(p: PeerPaths): void;
  /** A peer's path moved to another transport (a rung of the ladder). */
  onTransportChange?(p: PeerPaths): void;
}

interface PendingPing {
  paths: PeerPaths;
  candidate: Candidate;
  sentAt: number;
}

const log = new Logger('disco');

export class Disco {
  readonly counters = new DiscoCounters();
  private readonly pending = new Map<string, PendingPing>();
  private readonly ownPublic: Buffer;
  private readonly ownPrivate: Buffer;
  private timer: NodeJS.Timeout | null = null;
  private readonly dropLog = new RateLimitedLog(log);

  constructor(private readonly engine: Engine, private readonly mux: UnderlayMux, private readonly host: DiscoHost) {
    const priv = engine.privateKey;
    if (!priv || !engine.publicKey) throw new Error('Disco: the engine has no private key');
    this.ownPrivate = priv;
    this.ownPublic = Buffer.from(engine.publicKey);
    mux.on('disco', (buf, len, from) => this.receive(buf, len, from));
    this.timer = setInterval(() => this.tick(), DISCO_TIMING.TICK_MS);
    this.timer.unref();
  }

  close(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    this.mux.on('disco', null);
    this.pending.clear();
    this.ownPrivate.fill(0);
  }

  private now(): number {
    return this.engine.clock.now();
  }

  private pairKey(p: PeerPaths): Buffer | null {
    p.pairKey ??= discoPairKey(this.ownPrivate, p.peer.publicKey);
    return p.pairKey;
  }

  /** Starts a sweep of `p`'s candidates now (a new peer, new candidates, a call from the peer). */
  sweepNow(p: PeerPaths): void {
    p.sweepStart = this.now();
    p.sweepStep = 0;
    this.step(p, this.now());
  }

  /** Pings one candidate now. */
  ping(p: PeerPaths, c: Candidate): void {
    const key = this.pairKey(p);
    if (!key) return;
    if (p.tunnelled(c.ep.address)) {
      this.counters.skippedTunnelled++;
      return;
    }
    if (this.pending.size >= DISCO_TIMING.MAX_PENDING) {
      // Forget the oldest: a pong for it counts as unexpected.
      const first = this.pending.keys().next().value as string | undefined;
      if (first !== undefined) this.pending.delete(first);
    }
    const txid = newTxid();
    const now = this.now();
    const msg = sealDisco(key, this.ownPublic, { type: 'ping', txid, sentAtMs: this.engine.clock.wallNow() });
    this.pending.set(txid.toString('hex'), { paths: p, candidate: c, sentAt: now });
    c.lastPing = now;
    c.pingsSincePong++;
    if (this.mux.send(msg, 0, msg.length, c.ep)) this.counters.pingsSent++;
  }

  /** A candidate learned elsewhere (LAN beacon, saved state): added, and pinged when new. */
  learn(p: PeerPaths, text: string, ep: Endpoint, source: CandidateSource): void {
    const { c, added } = p.addCandidate(text, ep, source);
    if (added && (p.direct === null || !p.trusted(p.direct, this.now()))) this.ping(p, c);
  }

  // ---- receive ----

  private receive(buf: Buffer, len: number, from: Endpoint): void {
    const sender = discoSender(buf, len);
    if (!sender) {
      this.counters.dropMalformed++;
      return;
    }
    const p = this.host.pathsByKey(sender.toString('base64'));
    if (!p) {
      this.counters.dropUnknownSender++;
      return;
    }
    const key = this.pairKey(p);
    const msg = key ? openDisco(key, buf, len) : 'badSeal';
    if (msg === 'malformed') {
      this.counters.dropMalformed++;
      return;
    }
    if (msg === 'badSeal' || msg === 'unknownSender') {
      this.counters.dropBadSeal++;
      this.dropLog.debug(() => `a discovery message from ${from.toString()} claiming to be "${p.name}" did not open`);
      return;
    }
    const now = this.now();
    if (msg.type === 'ping') {
      if (Math.abs(this.engine.clock.wallNow() - msg.sentAtMs) > DISCO_TIMING.PING_SKEW_MS) {
        this.counters.dropStale++;
        return;
      }
      this.counters.pingsReceived++;
      const pong = sealDisco(key!, this.ownPublic, { type: 'pong', txid: msg.txid, observed: hostPortText(from) });
      if (this.mux.send(pong, 0, pong.length, from)) this.counters.pongsSent++;
      const { c } = p.addCandidate(endpointText(from), from, 'disco');
      c.ep = from;
      // Punch back: the peer can reach us from here; unless this is the path we use and trust,
      // try it now (no direct path yet, or the peer may have moved).
      if (p.direct !== c || !p.trusted(c, now)) {
        if (now - c.lastPing > 200) this.ping(p, c);
      }
      return;
    }
    const t = this.pending.get(msg.txid.toString('hex'));
    if (!t || t.paths !== p || msg.txid.length !== DISCO_TXID_SIZE) {
      this.counters.dropUnexpectedPong++;
      return;
    }
    this.pending.delete(msg.txid.toString('hex'));
    this.counters.pongsReceived++;
    let c = t.candidate;
    const fromText = endpointText(from);
    if (fromText !== c.text) {
      // Answered from another address than we pinged: that one works.
      c = p.addCandidate(fromText, from, 'disco').c;
    }
    c.ep = from;
    c.lastPong = now;
    c.rttMs = Math.max(0, now - t.sentAt);
    c.pingsSincePong = 0;
    p.failed = false;
    this.decide(p, now);
  }

  // ---- the state machine ----

  /** Runs every peer's state machine (every TICK_MS; tests with a manual clock call it). */
  tick(): void {
    const now = this.now();
    if (!this.engine.isRunning) return;
    for (const p of this.host.allPaths()) {
      try {
        p.noteActivity(now);
        this.step(p, now);
      } catch (e) {
        this.dropLog.debug(() => `path step for "${p.name}" failed: ${(e as Error).message}`);
      }
    }
    // Pings that will never be answered.
    for (const [k, t] of this.pending) {
      if (now - t.sentAt > DISCO_TIMING.TRUST_MS) this.pending.delete(k);
      else break;
    }
  }

  /** Runs `p`'s timers: sweep pings, heartbeats, the lost-path check, and the path decision. */
  step(p: PeerPaths, now: number): void {
    const heard = p.noteWireGuard();
    if (heard !== null) {
      p.failed = false;
      // The peer's packets come from another address than the path we use, and the old one has
      // been silent a while: the peer moved (or its NAT rebound). Follow it, as WireGuard would.
      const cur = p.direct;
      if (cur !== null && heard !== cur && now - cur.lastPong > DISCO_TIMING.ROAM_AFTER_MS) {
        log.info(`"${p.name}" now sends from ${heard.text} (was ${cur.text})`);
        cur.lastPong = -Infinity;
        p.direct = null;
      }
    }
    // Pings of the sweep in progress.
    const offsets = DISCO_TIMING.SWEEP_PINGS_MS;
    while (p.sweepStep < offsets.length && now - p.sweepStart >= offsets[p.sweepStep]!) {
      p.sweepStep++;
      for (const c of p.candidates.values()) this.ping(p, c);
    }
    const sweeping = p.sweepStep < offsets.length || now - p.sweepStart < offsets[offsets.length - 1]! + DISCO_TIMING.SWEEP_WAIT_MS;
    const direct = p.direct;
    if (direct !== null) {
      if (p.isActive(now) && now - p.lastHeartbeat >= DISCO_TIMING.HEARTBEAT_MS) {
        p.lastHeartbeat = now;
        this.ping(p, direct);
      }
      if (now - direct.lastPong >= DISCO_TIMING.TRUST_MS && direct.pingsSincePong >= DISCO_TIMING.LOST_AFTER_PINGS) {
        log.info(`the direct path to "${p.name}" (${direct.text}) stopped answering`);
        p.direct = null;
        p.nextSweep = now;
      }
    }
    if (!sweeping && p.sweepStart > -Infinity && p.direct === null && p.best(now) === null) p.failed = true;
    // Sweeps: when there is no trusted direct path (upgrade attempts), and now and then while
    // direct and active (a better path may have appeared).
    if (!sweeping && now >= p.nextSweep) {
      const onDirect = p.direct !== null;
      if (!onDirect || p.isActive(now)) {
        p.sweepStart = now;
        p.sweepStep = 0;
        if (!onDirect) this.call(p, now);
        this.step(p, now);
      }
      const onStream = p.direct !== null && transportOf(p.direct.ep) !== 'udp';
      p.nextSweep = now + (onStream ? DISCO_TIMING.STREAM_UPGRADE_MS : onDirect || p.relay !== null ? DISCO_TIMING.UPGRADE_MS : DISCO_TIMING.NONE_SWEEP_MS);
    }
    this.decide(p, now);
  }

  private call(p: PeerPaths, now: number): void {
    if (!this.host.callMeMaybe || now - p.lastCall < DISCO_TIMING.CALL_MIN_MS || p.candidates.size === 0) return;
    p.lastCall = now;
    this.counters.callsSent++;
    this.host.callMeMaybe(p.nodeId);
  }

  /** The peer asked (through the coordinator) for a sweep toward it. */
  called(p: PeerPaths): void {
    this.counters.callsReceived++;
    this.sweepNow(p);
  }

  /** Picks `p`'s path: the best trusted direct candidate (kept unless another is clearly
   * better), else the relay, else nothing trusted (the first candidate is tried). Sets the engine
   * endpoint when it changes. */
  decide(p: PeerPaths, now: number): void {
    const best = p.best(now);
    let direct = p.direct;
    if (direct !== null && p.tunnelled(direct.ep.address)) direct = null;
    // The path in use left a ping unanswered for a while: one that answers now is better.
    const directStale = direct !== null && direct.lastPing > direct.lastPong && now - direct.lastPing > DISCO_TIMING.UNANSWERED_MS;
    if (best !== null && best !== direct) {
      if (direct === null || !p.trusted(direct, now) || (directStale && best.lastPong > direct.lastPong)
        || (best.rttMs < direct.rttMs * DISCO_TIMING.BETTER_RTT && direct.rttMs - best.rttMs >= DISCO_TIMING.BETTER_RTT_MIN_MS)) {
        direct = best;
      }
    }
    p.direct = direct;
    let kind: PathKind;
    let ep: Endpoint | null;
    if (direct !== null) {
      kind = 'direct';
      ep = direct.ep;
    } else if (p.relay !== null) {
      kind = 'relay';
      ep = p.relay;
    } else {
      kind = 'none';
      // Nothing answers yet: handshakes go to the first candidate (the map lists the likeliest
      // first), as plain WireGuard would.
      let first: Candidate | undefined;
      for (const c of p.candidates.values()) {
        if (!p.tunnelled(c.ep.address)) {
          first = c;
          break;
        }
      }
      ep = p.peer.endpoint !== null && p.kind === 'none' ? p.peer.endpoint : first?.ep ?? null;
    }
    const endpointChanged = ep !== p.peer.endpoint;
    if (endpointChanged && ep !== null && p.peer.endpoint !== null && transportOf(ep) !== transportOf(p.peer.endpoint)) {
      this.counters.transportChanges++;
      this.host.onTransportChange?.(p);
    }
    if (kind !== p.kind || (endpointChanged && kind === 'direct')) {
      if (kind !== p.kind) log.info(`"${p.name}": ${describe(kind, direct)}${p.kind !== 'none' ? ` (was ${p.kind})` : ''}`);
      p.kind = kind;
      p.since = this.engine.clock.wallNow();
      p.changes++;
      this.counters.pathChanges++;
      this.host.onPathChange?.(p);
    }
    if (endpointChanged) {
      this.engine.setEndpoint(p.peer, ep);
      // No session yet: start a handshake on the new path now rather than at the next retry, but
      // not when one went out just now (the same address under another endpoint object, a sticky
      // source variant): a second initiation would replace the first and cross its response.
      if (ep !== null && p.peer.current === null && p.peer.next === null && this.now() - p.peer.lastInitiationSent >= DISCO_TIMING.KICK_MIN_MS) {
        p.peer.lastInitiationSent = -Infinity;
        this.engine.sendKeepalive(p.peer);
      }
    }
  }
}

function rank(c: Candidate): number {
  return (Number.isFinite(c.rttMs) ? c.rttMs : 1e9) + TRANSPORT_PENALTY_MS[transportOf(c.ep)];
}

function describe(kind: PathKind, direct: Candidate | null): string {
  if (kind === 'direct') return `direct on ${direct!.text}${Number.isFinite(direct!.rttMs) ? ` (${direct!.rttMs.toFixed(1)} ms)` : ''}`;
  return kind === 'relay' ? 'through its relay' : 'no path yet';
}

/** "ip:port" / "[ip]:port" of an endpoint's remote address. */
export function hostPortText(ep: Endpoint): string {
  return ep.family === 6 ? `[${ep.address}]:${ep.port}` : `${ep.address}:${ep.port}`;
}

/** The "ip:port" text of an endpoint (the remote address, as wg(8) shows it); a stream endpoint's
 * has its transport in front ("https://198.18.0.1:7443"). */
export function endpointText(ep: Endpoint): string {
  const hostPort = hostPortText(ep);
  const t = transportOf(ep);
  return t === 'udp' ? hostPort : `${t}://${hostPort}`;
}

/** A base64 key decodes to 32 bytes. */
export function isKey(text: string): boolean {
  const k = decodeBase64Key(text);
  return k !== null && k.length === 32;
}
