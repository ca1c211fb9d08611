// NAT test topologies in network namespaces (issue 10, NAT traversal), on top of test/netns.ts.
//
//   const topo = new Topology();                        // destroy() in `after`: kills, deletes
//   const lab = new NatLab(topo);
//   const pub = lab.publicSegment('198.18.90.0/24');   // the "internet": one bridge, one /24
//   const coord = lab.host(pub);                        // 198.18.90.1, e.g. the coordinator
//   const r1 = lab.router(pub, { nat: 'eim', lan: '198.18.91.0/24' });
//   const m1 = lab.host(r1.lan);                        // 198.18.91.2, default via 198.18.91.1
//   // run anything in m1.ns / coord.ns (topo.spawn, topo.exec), then change the network:
//   r1.blockUdp(); r1.unblockUdp(); r1.blockTcpPort(7443); r1.setLossPercent(20);
//   await coord.delay(100);                             // every packet coord sends waits 100 ms
//   await r1.delay(50, { to: coord.addr });             // m1 -> coord waits 50 ms, m1 -> others not
//   m1.changeAddress('198.18.91.50'); m1.moveTo(r2.lan);
//
// Layout. Every namespace is `<topo.tag><suffix>`; interface names are per namespace, so they are
// short and fixed:
//   public segment  namespace `pub<n>` holding bridge `br0` (no address); each member's veth end
//                   in it is `p<k>`. Members have no default route: the segment's prefix is on-link,
//                   and each 'none' router's LAN is added as a route on every public member.
//   router          namespace `r<n>`: `wan0` (address on the public segment), bridge `lan0` (the
//                   LAN's first address, the hosts' gateway; ports `p<k>`), IPv4 forwarding on.
//   host            namespace `h<n>`: `eth0` on a public segment or a LAN (LAN hosts: default
//                   route via the router).
// Addresses must lie inside 198.18.0.0/15 (checked); give each test file its own third octets.
// Hosts and router WANs take the next free address of a segment from .1 (a LAN from .2), unless
// `addr` is given. IPv4 only.
//
// NAT kinds (table `inet natlab` in the router; `nft -n list ruleset` in r.ns shows it):
//   'eim'        masquerade on wan0 + `iifname "wan0" ct state new drop` on input (and forward).
//                Measured on this kernel (test/nat-topology.test.ts): the UDP source port is
//                kept and the mapping is the same toward every destination (endpoint-independent
//                mapping); filtering is address-and-port dependent (a datagram from a remote
//                the host has not sent to is dropped, also on a mapped port: a port-restricted
//                cone). Simultaneous punching between two 'eim' routers works. Why: nf_nat keeps
//                the source port when the resulting tuple is unique, and for a source ip:port
//                that already has a mapping it reuses that mapping (find_appropriate_src). A
//                source's first port changes only when the tuple would clash: two LAN hosts
//                with the same source port toward the same remote, or, after changeAddress, the
//                old address's conntrack entry (UDP: 30 s, 120 s once answered) still holding
//                wan:port toward that remote; the new port is then used toward every remote.
//   'symmetric'  `masquerade fully-random`: a random port per destination (per conntrack
//                entry), same filtering. Punching fails between two symmetric routers and
//                between an 'eim' and a 'symmetric' one (port-restricted filtering on the eim
//                side meets a port it never sent to).
//   'none'       a plain router: forwarding only, the LAN prefix is routed on the public segment.
// No hairpinning: two hosts behind one router cannot reach each other on its public address.
//
// Shaping (routers on wan0, hosts on eth0; chains of `inet natlab` before conntrack on the way in
// and after NAT on the way out, so a dropped datagram creates no NAT mapping):
//   blockUdp() / unblockUdp()       drop every UDP packet both ways (TCP, ICMP untouched)
//   blockTcpPort(p) / unblockTcp()  drop TCP to port p going out and from port p coming in
//   setLossPercent(p)               `numgen random mod 100 < p drop`, both ways; 0 removes it
//   delay(ms, { to? }) / clearDelay()
//       This kernel has no netem (no sch_netem, sch_fq or sch_etf, so no tc delay) and nftables
//       cannot hold a packet. A delay line in user space does (test/nat-delay-line.ts): a TUN
//       `dly0` in the namespace, policy routing (rule pref 100, table 100: default dev dly0)
//       sends the packets to be delayed into it, the program writes each back `ms` later and the
//       kernel routes it on by the main table (iif dly0 no longer matches the rule). Works for
//       every protocol (UDP, the control channel's TCP, ICMP) and keeps packet order.
//       Host: delays what the host sends (rule `iif lo`: locally generated packets; dly0 has
//       accept_local=1 since the packet's source is the host's own address, and forwarding is
//       on), so every RTT of the host grows by `ms`. Router: delays what its LAN sends out (rule
//       `iif lan0`); those packets are not tracked on their first pass (raw `notrack`), so
//       conntrack and masquerade see them once, when they come back out of dly0 toward wan0.
//       `to` limits the delay to one destination address or prefix (a slower path to one
//       peer, e.g. the coordinator). Measured here over 7 runs: the median RTT grows by ms plus
//       0.9-4 ms (100 -> +101.1..102.4, 60 -> +61.1..64.0, 120 -> +120.9..122.7: the line's
//       own work and Node's 1 ms timers), never by less than ms; see the test's diagnostics.
//       A delayed TCP connect + one echo (two packets from the delayed side) took 2 * ms + 3-6.
//
// NatLab.agent(node, port) starts test/nat-udp-agent.ts in a namespace: a UDP socket that
// echoes every datagram with the source address it saw ("observed", as STUN would), sends on
// command, measures RTTs itself, and optionally a TCP echo server. Used by the building-block
// tests; meshtun tests can use it as a STUN-like mirror on the public segment.

import type { ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Topology, sh, waitFor } from './netns.js';
import { UdpAgent } from './nat-udp-agent-client.js';

export { UdpAgent, type AgentEvent } from './nat-udp-agent-client.js';

export type NatKind = 'eim' | 'symmetric' | 'none';

/** The only addresses the lab hands out: 198.18.0.0/15 (RFC 2544 benchmarking). */
const LAB_RANGE = { base: ipToInt('198.18.0.0'), len: 15 };
/** Rule preference and routing table of the delay line. */
const DELAY_RULE_PREF = 100;
const DELAY_TABLE = 100;
const DELAY_TUN = 'dly0';
const AGENT_JS = fileURLToPath(new URL('./nat-udp-agent.js', import.meta.url));
const DELAY_JS = fileURLToPath(new URL('./nat-delay-line.js', import.meta.url));

/** Thrown when a lab is asked for an address or prefix it cannot use. */
export class NatLabError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'NatLabError';
  }
}

function ipToInt(ip: string): number {
  const p = ip.split('.').map(Number);
  if (p.length !== 4 || p.some((x) => !Number.isInteger(x) || x < 0 || x > 255)) throw new NatLabError(`"${ip}" is not an IPv4 address`);
  return ((p[0]! << 24) | (p[1]! << 16) | (p[2]! << 8) | p[3]!) >>> 0;
}

function intToIp(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}

function inPrefix(ip: number, base: number, len: number): boolean {
  const mask = len === 0 ? 0 : (~0 << (32 - len)) >>> 0;
  return ((ip & mask) >>> 0) === ((base & mask) >>> 0);
}

function parsePrefix(prefix: string): { base: number; len: number } {
  const [ip, lenText] = prefix.split('/');
  const len = Number(lenText);
  if (!ip || !Number.isInteger(len) || len < 15 || len > 30) throw new NatLabError(`"${prefix}" is not an IPv4 prefix from /15 to /30`);
  const base = ipToInt(ip);
  if (!inPrefix(base, LAB_RANGE.base, LAB_RANGE.len)) throw new NatLabError(`"${prefix}" is outside 198.18.0.0/15, the only range NAT labs use`);
  return { base: (base & ((~0 << (32 - len)) >>> 0)) >>> 0, len };
}

/** One L2 segment: the public one, or a router's LAN. */
export class Segment {
  /** Namespaces attached to this segment (hosts, router WANs), in order. */
  readonly members: NetNode[] = [];
  /** LAN prefixes routed through 'none' routers on this (public) segment. */
  readonly routes: { prefix: string; via: string }[] = [];
  private nextPort = 1;
  private nextAddr: number;
  private readonly base: number;
  readonly len: number;

  constructor(
    readonly kind: 'public' | 'lan',
    /** The namespace holding the segment's bridge (the router's, for a LAN). */
    readonly ns: string,
    /** The bridge's name inside `ns`. */
    readonly bridge: string,
    /** The segment's prefix, e.g. "198.18.90.0/24". */
    readonly prefix: string,
    /** The LAN's router address (hosts' default gateway); null on the public segment. */
    readonly gateway: string | null,
  ) {
    const p = parsePrefix(prefix);
    this.base = p.base;
    this.len = p.len;
    this.nextAddr = gateway ? 2 : 1;
  }

  /** The next unused address (skips taken ones); checks a given one lies in the prefix. */
  allocate(addr?: string): string {
    if (addr !== undefined) {
      if (!inPrefix(ipToInt(addr), this.base, this.len)) throw new NatLabError(`${addr} is not inside ${this.prefix}`);
      if (addr === this.gateway || this.members.some((m) => m.addr === addr)) throw new NatLabError(`${addr} is already used on ${this.prefix}`);
      return addr;
    }
    const size = 2 ** (32 - this.len);
    for (;;) {
      if (this.nextAddr >= size - 1) throw new NatLabError(`${this.prefix} has no free address left`);
      const a = intToIp(this.base + this.nextAddr++);
      if (a !== this.gateway && !this.members.some((m) => m.addr === a)) return a;
    }
  }

  /** A fresh bridge-port name inside `ns`. */
  portName(): string {
    return `p${this.nextPort++}`;
  }
}

interface DelayState { proc: ChildProcess; ms: number }

/** What routers and hosts share: a namespace, an interface toward a segment, shaping, delay. */
export abstract class NetNode {
  /** The interface shaping applies to: `wan0` on a router, `eth0` on a host. */
  abstract readonly shapeIf: string;
  private shapingReady = false;
  protected delayState: DelayState | null = null;

  constructor(
    protected readonly lab: NatLab,
    /** The namespace's name (for `ip netns exec`, Topology.exec / spawn). */
    readonly ns: string,
    /** This node's address on `segment`. */
    public addr: string,
    /** The segment `shapeIf` is attached to (a host's changes with moveTo). */
    public segment: Segment,
  ) {}

  /** Runs a command in this node's namespace; returns stdout. */
  exec(cmd: string, args: string[], opts: { input?: string; allowFail?: boolean } = {}): string {
    return this.lab.topo.exec(this.ns, cmd, args, opts);
  }

  /** Drops every UDP packet in and out of `shapeIf` (TCP and ICMP pass). */
  blockUdp(): void {
    this.setChain('udp', ['meta l4proto udp drop'], ['meta l4proto udp drop']);
  }

  unblockUdp(): void {
    this.setChain('udp', [], []);
  }

  /** Drops TCP to `port` going out of `shapeIf` and TCP from `port` coming in (both ends of a
   * connection to that port, however it was opened). Adds to earlier blocked ports. */
  blockTcpPort(port: number): void {
    this.ensureShaping();
    this.nft(`add rule inet natlab tcp_out tcp dport ${port} drop\nadd rule inet natlab tcp_in tcp sport ${port} drop\n`);
  }

  /** Removes every blockTcpPort. */
  unblockTcp(): void {
    this.setChain('tcp', [], []);
  }

  /** Drops `percent` % of all packets in and out of `shapeIf`, at random; 0 removes the loss. */
  setLossPercent(percent: number): void {
    if (!Number.isInteger(percent) || percent < 0 || percent > 100) throw new NatLabError(`loss ${percent} is not a whole percentage 0-100`);
    const rule = percent ? [`numgen random mod 100 < ${percent} drop`] : [];
    this.setChain('loss', rule, rule);
  }

  /** Holds packets `ms` milliseconds in a user-space delay line (see the file header for what is
   * delayed on a host and on a router). `to`: only packets to this address or prefix. Calling
   * it again changes the delay (and `to`). */
  async delay(ms: number, opts: { to?: string } = {}): Promise<void> {
    if (!Number.isFinite(ms) || ms < 0) throw new NatLabError(`delay ${ms} ms is not a duration`);
    if (!this.delayState) {
      const proc = this.lab.topo.spawn(this.ns, process.execPath, [DELAY_JS, DELAY_TUN, String(ms)], { stdio: ['pipe', 'pipe', 'pipe'] });
      let out = '';
      proc.stdout!.on('data', (d: Buffer) => { out += d.toString(); });
      proc.stderr!.on('data', (d: Buffer) => { out += d.toString(); });
      await waitFor(`the delay line in ${this.ns}`, () => {
        if (proc.exitCode !== null) throw new Error(`the delay line exited: ${out}`);
        return out.includes('ready');
      }, 10_000, 20);
      this.delayState = { proc, ms };
      this.exec('ip', ['link', 'set', DELAY_TUN, 'up']);
      this.exec('ip', ['route', 'replace', 'default', 'dev', DELAY_TUN, 'table', String(DELAY_TABLE)]);
      this.prepareDelay();
    } else {
      this.delayState.proc.stdin!.write(`${ms}\n`);
      this.delayState.ms = ms;
    }
    this.exec('ip', ['rule', 'del', 'pref', String(DELAY_RULE_PREF)], { allowFail: true });
    this.exec('ip', ['rule', 'add', 'pref', String(DELAY_RULE_PREF), 'iif', this.delayedIif(), ...(opts.to ? ['to', opts.to] : []), 'lookup', String(DELAY_TABLE)]);
    this.afterDelayRule(opts.to);
  }

  /** Removes the delay: routing as before, the delay line stopped. */
  async clearDelay(): Promise<void> {
    if (!this.delayState) return;
    this.exec('ip', ['rule', 'del', 'pref', String(DELAY_RULE_PREF)], { allowFail: true });
    this.afterDelayRule(undefined, true);
    const { proc } = this.delayState;
    this.delayState = null;
    proc.stdin!.end();
    await waitFor('the delay line to exit', () => proc.exitCode !== null || proc.signalCode !== null, 5000, 20).catch(() => {
      if (proc.pid) try { process.kill(proc.pid, 'SIGKILL'); } catch { /* gone */ }
    });
  }

  /** The milliseconds of delay in force (0 without a delay line). */
  get delayMs(): number {
    return this.delayState?.ms ?? 0;
  }

  /** The input interface whose packets the delay rule catches. */
  protected abstract delayedIif(): string;
  /** Namespace settings the delay line needs, once. */
  protected abstract prepareDelay(): void;
  /** Work after the delay rule changed (a router's notrack rule). */
  protected afterDelayRule(_to: string | undefined, _removed = false): void { /* nothing on a host */ }

  /** Installs table `inet natlab` with the shaping chains (idempotent). */
  protected ensureShaping(extra = ''): void {
    if (this.shapingReady) return;
    const i = this.shapeIf;
    this.nft(`table inet natlab {
  chain shape_in { type filter hook prerouting priority -350; policy accept; iifname "${i}" jump loss_in; iifname "${i}" jump udp_in; iifname "${i}" jump tcp_in; }
  chain shape_out { type filter hook postrouting priority 350; policy accept; oifname "${i}" jump loss_out; oifname "${i}" jump udp_out; oifname "${i}" jump tcp_out; }
  chain loss_in {}
  chain loss_out {}
  chain udp_in {}
  chain udp_out {}
  chain tcp_in {}
  chain tcp_out {}
  chain raw_pre { type filter hook prerouting priority raw; policy accept; }
${extra}}
`);
    this.shapingReady = true;
  }

  protected nft(script: string): void {
    this.exec('nft', ['-f', '-'], { input: script });
  }

  private setChain(name: string, inRules: string[], outRules: string[]): void {
    this.ensureShaping();
    let s = `flush chain inet natlab ${name}_in\nflush chain inet natlab ${name}_out\n`;
    for (const r of inRules) s += `add rule inet natlab ${name}_in ${r}\n`;
    for (const r of outRules) s += `add rule inet natlab ${name}_out ${r}\n`;
    this.nft(s);
  }
}

/** A namespace routing a LAN (bridge `lan0`) to a public segment (`wan0`), with or without NAT. */
export class Router extends NetNode {
  readonly shapeIf = 'wan0';
  /** The LAN behind this router: give it to NatLab.host(). */
  readonly lan: Segment;

  constructor(lab: NatLab, ns: string, wanAddr: string, pub: Segment, readonly nat: NatKind, lanPrefix: string) {
    super(lab, ns, wanAddr, pub);
    const p = parsePrefix(lanPrefix);
    this.lan = new Segment('lan', ns, 'lan0', lanPrefix, intToIp(p.base + 1));
  }

  /** The router's address on the public segment (where its NAT mappings live). */
  get wanAddr(): string {
    return this.addr;
  }

  /** @internal Called by NatLab once the links exist. */
  setUp(): void {
    this.exec('sysctl', ['-qw', 'net.ipv4.ip_forward=1']);
    let extra = '';
    if (this.nat !== 'none') {
      const masq = this.nat === 'symmetric' ? 'masquerade fully-random' : 'masquerade';
      extra = `  chain input { type filter hook input priority filter; policy accept; iifname "wan0" ct state new drop; }
  chain forward { type filter hook forward priority filter; policy accept; iifname "wan0" ct state new drop; }
  chain nat_out { type nat hook postrouting priority srcnat; policy accept; oifname "wan0" meta nfproto ipv4 ${masq}; }
`;
    }
    this.ensureShaping(extra);
  }

  protected delayedIif(): string {
    return 'lan0';
  }

  protected prepareDelay(): void {
    this.exec('sysctl', ['-qw', `net.ipv4.conf.${DELAY_TUN}.rp_filter=0`]);
  }

  protected override afterDelayRule(to: string | undefined, removed = false): void {
    // Untracked on the first pass (LAN -> dly0), so conntrack and NAT happen once: dly0 -> wan0.
    let s = 'flush chain inet natlab raw_pre\n';
    if (!removed) s += `add rule inet natlab raw_pre iifname "lan0" fib daddr type != local ${to ? `ip daddr ${to} ` : ''}notrack\n`;
    this.nft(s);
  }
}

/** A namespace with one interface `eth0` on a segment (public, or a router's LAN). */
export class Host extends NetNode {
  readonly shapeIf = 'eth0';
  /** The bridge port of eth0's veth peer inside the segment's namespace. */
  port: string;

  constructor(lab: NatLab, ns: string, addr: string, segment: Segment, port: string) {
    super(lab, ns, addr, segment);
    this.port = port;
  }

  /** The host's default gateway (its router's LAN address), null on the public segment. */
  get gateway(): string | null {
    return this.segment.gateway;
  }

  /** Replaces the host's address with another on the same segment (next free one if omitted);
   * routes are restored. Open sockets bound to 0.0.0.0 stay open and send from the new address. */
  changeAddress(newAddr?: string): string {
    const addr = this.segment.allocate(newAddr);
    const old = this.addr;
    this.exec('ip', ['addr', 'add', `${addr}/${this.segment.len}`, 'dev', 'eth0']);
    this.exec('ip', ['addr', 'del', `${old}/${this.segment.len}`, 'dev', 'eth0']);
    this.addr = addr;
    this.lab.routeHost(this);
    return addr;
  }

  /** Moves the host to another segment (another router's LAN, or the public one): eth0 is
   * deleted and made again there with a new address (next free one if omitted). */
  moveTo(segment: Segment, newAddr?: string): string {
    const addr = segment.allocate(newAddr);
    const old = this.segment;
    old.members.splice(old.members.indexOf(this), 1);
    this.exec('ip', ['link', 'del', 'eth0']);
    this.segment = segment;
    this.addr = addr;
    this.port = this.lab.attach(this.ns, 'eth0', addr, segment);
    segment.members.push(this);
    this.lab.routeHost(this);
    return addr;
  }

  protected delayedIif(): string {
    return 'lo';
  }

  protected prepareDelay(): void {
    // The delayed packet comes back in on dly0 with the host's own source address: accepted
    // (accept_local) and forwarded out eth0.
    this.exec('sysctl', ['-qw', 'net.ipv4.ip_forward=1', `net.ipv4.conf.${DELAY_TUN}.accept_local=1`, `net.ipv4.conf.${DELAY_TUN}.rp_filter=0`]);
  }
}

/** Builds NAT topologies inside one Topology (which owns every namespace and process). */
export class NatLab {
  private counts = { pub: 0, r: 0, h: 0 };
  private readonly publics: Segment[] = [];

  constructor(readonly topo: Topology) {}

  /** A public segment: a namespace with bridge `br0`, addresses from `prefix` (a /15../30
   * inside 198.18.0.0/15). Members are on-link with each other. */
  publicSegment(prefix: string): Segment {
    const ns = this.topo.ns(`pub${this.counts.pub++}`);
    this.bridge(ns, 'br0');
    const seg = new Segment('public', ns, 'br0', prefix, null);
    this.publics.push(seg);
    return seg;
  }

  /** A router with its WAN on `pub` and a new LAN `lan` behind it (router = the LAN's .1). */
  router(pub: Segment, opts: { nat: NatKind; lan: string; wanAddr?: string }): Router {
    if (pub.kind !== 'public') throw new NatLabError('a router\'s WAN must be on a public segment');
    const wanAddr = pub.allocate(opts.wanAddr);
    const ns = this.topo.ns(`r${this.counts.r++}`);
    const r = new Router(this, ns, wanAddr, pub, opts.nat, opts.lan);
    this.bridge(ns, 'lan0');
    sh('ip', ['-n', ns, 'addr', 'add', `${r.lan.gateway}/${r.lan.len}`, 'dev', 'lan0']);
    this.attach(ns, 'wan0', wanAddr, pub);
    pub.members.push(r);
    r.setUp();
    this.routePublicMember(r);
    if (opts.nat === 'none') {
      pub.routes.push({ prefix: r.lan.prefix, via: wanAddr });
      for (const m of pub.members) if (m !== r) this.routePublicMember(m);
    }
    return r;
  }

  /** A host with `eth0` on `segment` (public, or a router's `lan`). */
  host(segment: Segment, opts: { addr?: string } = {}): Host {
    const addr = segment.allocate(opts.addr);
    const ns = this.topo.ns(`h${this.counts.h++}`);
    const port = this.attach(ns, 'eth0', addr, segment);
    const h = new Host(this, ns, addr, segment, port);
    h.exec('sysctl', ['-qw', 'net.ipv4.conf.eth0.promote_secondaries=1']);
    segment.members.push(h);
    this.routeHost(h);
    return h;
  }

  /** Starts a UDP agent (test/nat-udp-agent.ts) on `port` in `node`'s namespace; `tcpPort` adds
   * a TCP echo server. Killed by Topology.destroy. */
  async agent(node: NetNode, port: number, opts: { tcpPort?: number } = {}): Promise<UdpAgent> {
    const args = [AGENT_JS, '--port', String(port), ...(opts.tcpPort ? ['--tcp-port', String(opts.tcpPort)] : [])];
    const proc = this.topo.spawn(node.ns, process.execPath, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    const a = new UdpAgent(proc, node.ns, port);
    const ready = await a.next((e) => e.ev === 'ready', 10_000);
    if (!ready) throw new Error(`the UDP agent in ${node.ns} did not start: ${a.stderr}`);
    return a;
  }

  /** @internal Makes veth `ifname` in `ns` with `addr`, its peer a port of the segment's bridge. */
  attach(ns: string, ifname: string, addr: string, segment: Segment): string {
    const port = segment.portName();
    sh('ip', ['link', 'add', ifname, 'netns', ns, 'type', 'veth', 'peer', 'name', port, 'netns', segment.ns]);
    sh('ip', ['-n', segment.ns, 'link', 'set', port, 'master', segment.bridge]);
    sh('ip', ['-n', segment.ns, 'link', 'set', port, 'up']);
    sh('ip', ['-n', ns, 'addr', 'add', `${addr}/${segment.len}`, 'dev', ifname]);
    sh('ip', ['-n', ns, 'link', 'set', ifname, 'up']);
    return port;
  }

  /** @internal A host's routes: default via the gateway on a LAN; 'none' LANs on a public one. */
  routeHost(h: Host): void {
    if (h.segment.gateway) sh('ip', ['-n', h.ns, 'route', 'replace', 'default', 'via', h.segment.gateway, 'dev', 'eth0']);
    else this.routePublicMember(h);
  }

  private routePublicMember(m: NetNode): void {
    for (const r of m.segment.routes) {
      if (r.via !== m.addr) sh('ip', ['-n', m.ns, 'route', 'replace', r.prefix, 'via', r.via]);
    }
  }

  private bridge(ns: string, name: string): void {
    // A fixed MAC: a bridge otherwise takes its lowest port's, which changes as hosts join and
    // leaves stale ARP entries for the gateway behind.
    const mac = `02:${[0, 0, 0, 0, 0].map(() => Math.floor(Math.random() * 256).toString(16).padStart(2, '0')).join(':')}`;
    sh('ip', ['-n', ns, 'link', 'add', name, 'address', mac, 'type', 'bridge']);
    sh('ip', ['-n', ns, 'link', 'set', name, 'up']);
    // Bridged frames must not run through this namespace's nftables hooks (br_netfilter is built
    // in and on by default): LAN-to-LAN traffic would be conntracked by the router.
    sh('ip', ['netns', 'exec', ns, 'sysctl', '-qw', 'net.bridge.bridge-nf-call-iptables=0', 'net.bridge.bridge-nf-call-ip6tables=0', 'net.bridge.bridge-nf-call-arptables=0']);
  }
}
