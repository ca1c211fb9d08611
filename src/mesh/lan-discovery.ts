// LAN discovery: members of one network on one local network find each other by multicast
// beacons (lan-beacon.ts), with or without the coordinator. Every node
//   - binds UDP LAN_DISCOVERY_PORT (51819, never the WireGuard port) with SO_REUSEADDR, once per
//     family, and joins LAN_GROUP_V4 (239.255.77.77, organisation-local scope) and LAN_GROUP_V6
//     (ff02::4d54, link scope) on every non-loopback interface that has an address;
//   - sends a beacon on each of those interfaces every ~3 s (TTL / hop limit 1, so it never
//     leaves the link) and at once when its addresses change (checked every second): its
//     WireGuard key and port and its addresses, MAC'd with the network's discovery key;
//   - takes beacons of its own network that verify, are fresh and were not seen before, and
//     hands each endpoint they name that lies on one of its own subnets to `onEndpoint`
//     (MeshNode.learnEndpoint: a candidate path, probed at once). A beacon only says where to
//     try; the WireGuard and discovery handshakes on that endpoint prove who answers.
// A beacon's endpoints: the datagram's source address (IPv4) and the addresses the beacon lists,
// each with the announced WireGuard port, kept when they share a subnet with one of this node's
// addresses (link-local IPv6 is never used: endpoints carry no zone). An endpoint is handed on
// when new and again every RELEARN_MS while beacons keep naming it.
// Sockets that cannot be opened (no interface, the port taken without SO_REUSEADDR, no IPv6)
// are logged once and retried; the node runs on without LAN discovery meanwhile. Every datagram
// received lands in exactly one counter: accepted, own, or refused by reason.
import { createSocket, type Socket } from 'node:dgram';
import { networkInterfaces, type NetworkInterfaceInfo } from 'node:os';
import { Logger } from '../util/index.js';
import { parseIpv4Address, parseIpv6Address, formatIpv6Address } from '../wire/index.js';
import {
  BeaconReplayGuard, LanBeaconKeys, LanBeaconResult, LAN_BEACON_MAX_ADDRESSES, emitLanBeacon, lanBeaconLength, newLanBeaconRepr, parseLanBeacon,
} from './lan-beacon.js';

/** The UDP port beacons are sent to and received on (every node, so a fixed one). */
export const LAN_DISCOVERY_PORT = 51819;
export const LAN_GROUP_V4 = '239.255.77.77';
export const LAN_GROUP_V6 = 'ff02::4d54';
export const LAN_DISCOVERY = {
  /** A beacon per interface this often (with +-10 % jitter). */
  BEACON_INTERVAL_MS: 3_000,
  /** Interfaces and addresses are re-read this often; a change sends beacons at once. */
  ADDRESS_CHECK_MS: 1_000,
  /** An endpoint still named by beacons is handed on again after this long. */
  RELEARN_MS: 30_000,
  /** Sockets that failed to open are tried again after this long. */
  RETRY_MS: 10_000,
  /** (sender, endpoint) pairs remembered for RELEARN_MS; past it the memory starts over. */
  MAX_LEARNED: 4_096,
} as const;

/** What LAN discovery counts (`meshtun status --json` mesh.lan, /metrics meshtun_lan_events_total). */
export class LanCounters {
  /** Beacons sent, and sends that failed. */
  sent = 0;
  sendErrors = 0;
  /** Datagrams received on the beacon port; each then lands in one of the counters below. */
  received = 0;
  /** Beacons of this network that verified and were fresh. */
  accepted = 0;
  /** This node's own beacons (multicast loops back). */
  own = 0;
  refusedMalformed = 0;
  refusedVersion = 0;
  refusedOtherNetwork = 0;
  refusedBadMac = 0;
  refusedStale = 0;
  refusedReplay = 0;
  /** Endpoints handed to onEndpoint. */
  endpointsLearned = 0;
  /** Sockets that could not be opened or joined, and socket errors. */
  socketErrors = 0;
}

/** One address of this host, as LAN discovery sees it. */
export interface LocalAddress {
  ifname: string;
  family: 4 | 6;
  /** Canonical text, no zone. */
  address: string;
  prefixLen: number;
  linkLocal: boolean;
}

export interface LanDiscoveryOptions {
  /** This node's WireGuard public key (its own beacons are skipped by it). */
  publicKey: Uint8Array;
  /** The WireGuard UDP port beacons announce. */
  wireguardPort: () => number;
  /** An endpoint a beacon named for a member (base64 key, "ip:port" / "[ip]:port"). */
  onEndpoint: (publicKey: string, endpoint: string, source: 'lan') => void;
  /** Interfaces to leave out (the mesh's own TUN: its overlay addresses are no LAN). */
  skipInterfaces?: () => readonly string[];
  port?: number;
  groupV4?: string;
  groupV6?: string;
  families?: readonly (4 | 6)[];
  beaconIntervalMs?: number;
  addressCheckMs?: number;
  /** Tests: use loopback too (IPv4 multicast works on lo when asked for by address). */
  includeLoopback?: boolean;
  /** Tests: the host's interfaces (default os.networkInterfaces). */
  interfaces?: () => NodeJS.Dict<NetworkInterfaceInfo[]>;
  /** Wall clock, ms (beacon times). */
  now?: () => number;
}

const log = new Logger('lan');

interface Sender {
  socket: Socket;
  family: 4 | 6;
  ifname: string;
}

/** LAN discovery for one node (see the file header). Idle until setNetwork gives it keys. */
export class LanDiscovery {
  readonly counters = new LanCounters();
  private keys: LanBeaconKeys | null = null;
  private keyText = '';
  private readonly guard = new BeaconReplayGuard();
  private readonly learned = new Map<string, number>();
  private readonly repr = newLanBeaconRepr();
  private readonly ownKey: Buffer;
  private readonly port: number;
  private readonly families: readonly (4 | 6)[];
  private readonly intervalMs: number;
  private readonly now: () => number;
  private running = false;
  private closed = false;
  private timer: NodeJS.Timeout | null = null;
  private building: Promise<void> | null = null;
  private receivers: Socket[] = [];
  private senders: Sender[] = [];
  private addresses: LocalAddress[] = [];
  private signature = '';
  private failedAt = -1;
  private nextBeaconAt = 0;
  private lastTimeMs = 0;
  private readonly logged = new Set<string>();

  constructor(private readonly opts: LanDiscoveryOptions) {
    this.ownKey = Buffer.from(opts.publicKey);
    this.port = opts.port ?? LAN_DISCOVERY_PORT;
    this.families = opts.families ?? [4, 6];
    this.intervalMs = opts.beaconIntervalMs ?? LAN_DISCOVERY.BEACON_INTERVAL_MS;
    this.now = opts.now ?? Date.now;
  }

  /** Sets the network (id and base64 discovery key from the map); the first call starts the
   * service, a changed key sends beacons under it at once. A key that is not 32 bytes is
   * ignored (the map check refuses those before they get here). */
  setNetwork(networkId: string, discoveryKey: string): void {
    if (this.closed) return;
    const text = `${networkId} ${discoveryKey}`;
    if (text === this.keyText) return;
    const keys = LanBeaconKeys.fromBase64(networkId, discoveryKey);
    if (!keys) return;
    this.keys?.wipe();
    this.keys = keys;
    this.keyText = text;
    this.guard.clear();
    this.learned.clear();
    if (!this.running) this.start();
    else this.nextBeaconAt = 0;
  }

  /** True once a network was set and until close(). */
  get active(): boolean {
    return this.running;
  }

  /** The addresses beacons announce and receivers compare with (as last read). */
  localAddresses(): readonly LocalAddress[] {
    return this.addresses;
  }

  private start(): void {
    this.running = true;
    this.timer = setInterval(() => this.tick(), this.opts.addressCheckMs ?? LAN_DISCOVERY.ADDRESS_CHECK_MS);
    this.timer.unref();
    this.tick();
  }

  private tick(): void {
    if (!this.running || this.building) return;
    const addresses = this.readAddresses();
    const signature = addresses.map((a) => `${a.ifname} ${a.address}/${a.prefixLen}`).join(',');
    const now = this.now();
    if (signature !== this.signature || (this.failedAt >= 0 && now - this.failedAt >= LAN_DISCOVERY.RETRY_MS)) {
      this.addresses = addresses;
      this.signature = signature;
      this.building = this.rebuild().finally(() => {
        this.building = null;
        this.sendBeacons();
      });
      return;
    }
    if (now >= this.nextBeaconAt) this.sendBeacons();
  }

  private readAddresses(): LocalAddress[] {
    const skip = new Set(this.opts.skipInterfaces?.() ?? []);
    const out: LocalAddress[] = [];
    let all: NodeJS.Dict<NetworkInterfaceInfo[]>;
    try {
      all = (this.opts.interfaces ?? networkInterfaces)();
    } catch {
      return out;
    }
    for (const [ifname, infos] of Object.entries(all)) {
      if (skip.has(ifname)) continue;
      for (const info of infos ?? []) {
        if (info.internal && !this.opts.includeLoopback) continue;
        const family = (info.family as unknown) === 'IPv6' || (info.family as unknown) === 6 ? 6 : 4;
        if (!this.families.includes(family)) continue;
        const prefixLen = Number(info.cidr?.split('/')[1] ?? (family === 4 ? 32 : 128));
        const address = family === 6 ? canonicalIpv6(info.address) : info.address;
        if (address === null || !Number.isInteger(prefixLen)) continue;
        out.push({ ifname, family, address, prefixLen, linkLocal: family === 6 && isLinkLocalV6(address) });
      }
    }
    return out.sort((a, b) => (a.ifname === b.ifname ? (a.address < b.address ? -1 : 1) : a.ifname < b.ifname ? -1 : 1));
  }

  /** Closes the sockets and opens them anew for the current addresses. */
  private async rebuild(): Promise<void> {
    this.closeSockets();
    this.failedAt = -1;
    let failed = false;
    const fail = (what: string, e: unknown) => {
      failed = true;
      this.counters.socketErrors++;
      const code = (e as { code?: string }).code ?? (e as Error).message;
      const key = `${what} ${code}`;
      if (this.logged.has(key)) return;
      this.logged.add(key);
      log.warn(`LAN discovery: ${what}: ${(e as Error).message} (the node runs on; retried every ${LAN_DISCOVERY.RETRY_MS / 1000} s)`);
    };
    if (this.addresses.length === 0 && !this.logged.has('none')) {
      this.logged.add('none');
      log.info('LAN discovery: no interface with an address yet; beacons start when one appears');
    }
    for (const family of this.families) {
      const local = this.addresses.filter((a) => a.family === family);
      const ifnames = [...new Set(local.map((a) => a.ifname))];
      if (ifnames.length === 0) continue;
      const group = family === 4 ? (this.opts.groupV4 ?? LAN_GROUP_V4) : (this.opts.groupV6 ?? LAN_GROUP_V6);
      const rx = createSocket({ type: family === 4 ? 'udp4' : 'udp6', reuseAddr: true, ...(family === 6 ? { ipv6Only: true } : {}) });
      try {
        await bind(rx, this.port, family === 4 ? '0.0.0.0' : '::');
      } catch (e) {
        rx.close();
        fail(`cannot bind UDP ${this.port} (IPv${family})`, e);
        continue;
      }
      if (!this.running) {
        rx.close();
        return;
      }
      rx.on('error', (e) => fail(`receive (IPv${family})`, e));
      rx.on('message', (msg, rinfo) => this.receive(msg, rinfo.address));
      this.receivers.push(rx);
      for (const ifname of ifnames) {
        const via = multicastInterface(family, ifname, local);
        try {
          rx.addMembership(group, via);
        } catch (e) {
          fail(`cannot join ${group} on ${ifname}`, e);
          continue;
        }
        const tx = createSocket({ type: family === 4 ? 'udp4' : 'udp6', ...(family === 6 ? { ipv6Only: true } : {}) });
        try {
          await bind(tx, 0, family === 4 ? via : '::');
          if (!this.running) {
            tx.close();
            return;
          }
          tx.setMulticastInterface(via);
          tx.setMulticastTTL(1);
          tx.setMulticastLoopback(true);
        } catch (e) {
          tx.close();
          fail(`cannot send on ${ifname} (IPv${family})`, e);
          continue;
        }
        tx.on('error', (e) => fail(`send on ${ifname}`, e));
        this.senders.push({ socket: tx, family, ifname });
      }
    }
    if (failed) this.failedAt = this.now();
  }

  /** Sends one beacon on every interface (each its own time: see BeaconReplayGuard). */
  private sendBeacons(): void {
    const keys = this.keys;
    if (!this.running || !keys) return;
    this.nextBeaconAt = this.now() + this.intervalMs * (0.9 + 0.2 * Math.random());
    const port = this.opts.wireguardPort();
    if (!(port >= 1 && port <= 0xffff)) return;
    const announced = this.addresses.filter((a) => !a.linkLocal);
    for (const s of this.senders) {
      // This interface's addresses first, when there are more than a beacon holds.
      const mine = announced.filter((a) => a.ifname === s.ifname).concat(announced.filter((a) => a.ifname !== s.ifname));
      const repr = {
        publicKey: this.ownKey, port, timeMs: this.nextTime(), addresses: mine.slice(0, LAN_BEACON_MAX_ADDRESSES).map((a) => a.address),
      };
      const buf = Buffer.alloc(lanBeaconLength(repr));
      emitLanBeacon(keys, repr, buf, 0);
      const group = s.family === 4 ? (this.opts.groupV4 ?? LAN_GROUP_V4) : (this.opts.groupV6 ?? LAN_GROUP_V6);
      try {
        s.socket.send(buf, 0, buf.length, this.port, group, (err) => {
          if (err) {
            this.counters.sendErrors++;
            if (!this.logged.has(`send ${s.ifname}`)) {
              this.logged.add(`send ${s.ifname}`);
              log.debug(`LAN discovery: a beacon on ${s.ifname} (IPv${s.family}) was not sent: ${err.message}`);
            }
          } else this.counters.sent++;
        });
      } catch {
        this.counters.sendErrors++; // the socket closed under us (a rebuild)
      }
    }
  }

  /** Strictly increasing beacon times, so every beacon is distinct. */
  private nextTime(): number {
    const t = Math.max(Math.floor(this.now()), this.lastTimeMs + 1);
    this.lastTimeMs = t;
    return t;
  }

  private receive(msg: Buffer, from: string): void {
    this.counters.received++;
    const keys = this.keys;
    if (!keys) {
      this.counters.refusedOtherNetwork++;
      return;
    }
    const repr = this.repr;
    switch (parseLanBeacon(keys, msg, 0, msg.length, repr)) {
      case LanBeaconResult.Ok: break;
      case LanBeaconResult.Unsupported: this.counters.refusedVersion++; return;
      case LanBeaconResult.OtherNetwork: this.counters.refusedOtherNetwork++; return;
      case LanBeaconResult.BadMac: this.counters.refusedBadMac++; return;
      default: this.counters.refusedMalformed++; return;
    }
    if (repr.publicKey.equals(this.ownKey)) {
      this.counters.own++;
      return;
    }
    const sender = repr.publicKey.toString('base64');
    const now = this.now();
    const fresh = this.guard.check(sender, repr.timeMs, now);
    if (fresh === 'stale') {
      this.counters.refusedStale++;
      return;
    }
    if (fresh === 'replay') {
      this.counters.refusedReplay++;
      return;
    }
    this.counters.accepted++;
    const seen = new Set<string>();
    for (const text of [from, ...repr.addresses]) {
      const ep = this.endpointOnLink(text, repr.port);
      if (ep === null || seen.has(ep)) continue;
      seen.add(ep);
      const k = `${sender} ${ep}`;
      const last = this.learned.get(k);
      if (last !== undefined && now - last < LAN_DISCOVERY.RELEARN_MS) continue;
      if (this.learned.size >= LAN_DISCOVERY.MAX_LEARNED) this.learned.clear();
      this.learned.set(k, now);
      this.counters.endpointsLearned++;
      try {
        this.opts.onEndpoint(sender, ep, 'lan');
      } catch (e) {
        log.warn(`LAN discovery: onEndpoint failed: ${(e as Error).message}`);
      }
    }
  }

  /** "ip:port" for an address on one of this node's subnets; null for any other. */
  private endpointOnLink(text: string, port: number): string | null {
    const zone = text.indexOf('%');
    const bare = zone >= 0 ? text.slice(0, zone) : text;
    if (bare.includes(':')) {
      const v6 = canonicalIpv6(bare);
      if (v6 === null || isLinkLocalV6(v6)) return null;
      const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(v6);
      if (mapped) return this.endpointOnLink(mapped[1]!, port);
      return this.addresses.some((a) => a.family === 6 && !a.linkLocal && sameSubnet(6, v6, a)) ? `[${v6}]:${port}` : null;
    }
    if (parseIpv4Address(bare) === null) return null;
    return this.addresses.some((a) => a.family === 4 && sameSubnet(4, bare, a)) ? `${bare}:${port}` : null;
  }

  private closeSockets(): void {
    for (const s of [...this.receivers, ...this.senders.map((x) => x.socket)]) {
      try { s.close(); } catch { /* already closed */ }
    }
    this.receivers = [];
    this.senders = [];
  }

  /** Stops sending and receiving and forgets the keys. */
  async close(): Promise<void> {
    this.closed = true;
    this.running = false;
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.building?.catch(() => undefined);
    this.closeSockets();
    this.keys?.wipe();
    this.keys = null;
    this.guard.clear();
    this.learned.clear();
  }
}

function bind(s: Socket, port: number, address: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (e: Error) => { s.off('listening', onListening); reject(e); };
    const onListening = () => { s.off('error', onError); resolve(); };
    s.once('error', onError);
    s.once('listening', onListening);
    try {
      s.bind({ port, address });
    } catch (e) {
      s.off('error', onError);
      s.off('listening', onListening);
      reject(e as Error);
    }
  });
}

/** The multicast interface argument of node:dgram: an IPv4 address of the interface, or
 * "::%<ifname>" (the scope names the interface). */
function multicastInterface(family: 4 | 6, ifname: string, local: readonly LocalAddress[]): string {
  if (family === 6) return `::%${ifname}`;
  return local.find((a) => a.ifname === ifname)!.address;
}

function canonicalIpv6(text: string): string | null {
  const b = new Uint8Array(16);
  return parseIpv6Address(text, b, 0) ? formatIpv6Address(b, 0) : null;
}

/** fe80::/10. */
function isLinkLocalV6(text: string): boolean {
  const b = new Uint8Array(16);
  return parseIpv6Address(text, b, 0) && b[0] === 0xfe && (b[1]! & 0xc0) === 0x80;
}

/** True when `address` (canonical text of `family`) is inside local's subnet. */
export function sameSubnet(family: 4 | 6, address: string, local: LocalAddress): boolean {
  if (local.family !== family) return false;
  const bits = local.prefixLen;
  if (family === 4) {
    const a = parseIpv4Address(address);
    const b = parseIpv4Address(local.address);
    if (a === null || b === null) return false;
    const mask = bits <= 0 ? 0 : (0xffffffff << (32 - Math.min(bits, 32))) >>> 0;
    return ((a & mask) >>> 0) === ((b & mask) >>> 0);
  }
  const a = new Uint8Array(16);
  const b = new Uint8Array(16);
  if (!parseIpv6Address(address, a, 0) || !parseIpv6Address(local.address, b, 0)) return false;
  for (let i = 0; i < Math.min(bits, 128); i++) {
    const byte = i >> 3;
    const bit = 0x80 >> (i & 7);
    if ((a[byte]! & bit) !== (b[byte]! & bit)) return false;
  }
  return true;
}
