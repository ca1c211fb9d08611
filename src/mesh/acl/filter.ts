// The stateful ACL filter each node runs on its side of the tunnel. The RECEIVING node enforces
// the policy: `inbound` judges every packet arriving from the tunnel; `outbound` sees every packet
// going into it, always lets it go, and records the flow, so replies to what this node started
// come back in. Pipeline of `inbound`:
//   1. read the flow (readFlow: addresses, protocol, ports / echo id, TCP flags; no allocation);
//   2. unreadable -> drop; ICMPv6 neighbour discovery / MLD / redirect -> drop (point-to-point
//      links have no neighbours);
//   3. a packet of a tracked flow -> pass (and refresh the flow), except a pure TCP SYN or an echo
//      request from the side that did NOT start the flow, which is judged as new;
//   4. an ICMP error -> pass when its quote is a packet of a tracked flow and it is addressed to
//      that packet's sender ("related"), else judged by the rules like any ICMP;
//   5. a later fragment -> pass when its first fragment was let in;
//   6. otherwise a new flow: pass and track it when a rule allows (source address -> destination
//      address, protocol, destination port), else drop.
// With no policy set everything passes (and is tracked); once a policy is set, the default is deny.
//
// `outbound` starts a flow with a TCP SYN, a UDP datagram, an echo request or a packet of another
// protocol; other TCP segments and echo replies only refresh flows already tracked (so a TCP
// connection this node started is forgotten if its entry is evicted or the filter restarts).
//
// setPolicy replaces the rules live. Flows this node started stay (they never depended on the
// policy). Flows the remote side started stay when the new policy still allows them and are
// forgotten otherwise, so their next packets are judged as new and dropped: removing a rule cuts
// the TCP connections and pings it allowed, even if this side keeps sending on them. (UDP has no
// handshake: if this side keeps sending on a cut UDP flow, that starts a flow of its own and the
// peer's replies pass again.)

import { Status } from '../../wire/index.js';
import { UserError } from '../../util/index.js';
import { FlowKind, PacketFlow, readFlow } from './flow.js';
import { FlowTable, type ConntrackLimits, type FlowInfo } from './conntrack.js';
import { FragmentMemo } from './fragment-memo.js';
import { AclCounters } from './counters.js';
import { coarseClock } from './coarse-clock.js';
import type { CompiledPolicy } from './compile.js';

/** Why `inbound` decided what it did (see AclCounters for each). */
export const AclVerdict = {
  AllowedRule: 0,
  AllowedTracked: 1,
  AllowedRelated: 2,
  AllowedFragment: 3,
  AllowedNoPolicy: 4,
  DroppedNoRule: 5,
  DroppedUnrelated: 6,
  DroppedFragment: 7,
  DroppedNeighborDiscovery: 8,
  DroppedMalformed: 9,
} as const;
export type AclVerdict = (typeof AclVerdict)[keyof typeof AclVerdict];
export const ACL_VERDICT_NAMES: readonly string[] = [
  'allowed-rule', 'allowed-tracked', 'allowed-related', 'allowed-fragment', 'allowed-no-policy',
  'dropped-no-rule', 'dropped-unrelated', 'dropped-fragment', 'dropped-neighbor-discovery', 'dropped-malformed',
];

const TCP_SYN = 0x02;
const TCP_ACK = 0x10;

export interface AclFilterOptions {
  /** The compiled policy; null or absent: allow everything until setPolicy. */
  policy?: CompiledPolicy | null;
  limits?: Partial<ConntrackLimits>;
  /** Monotonic milliseconds (a wireguard Clock fits). Default: the shared coarse clock, which
   * allocates nothing per packet (performance.now() does: 16 bytes a call). */
  clock?: { now(): number };
}

export class AclFilter {
  readonly counters = new AclCounters();
  readonly flows: FlowTable;
  /** The verdict of the last `inbound` call. */
  lastVerdict: AclVerdict = AclVerdict.AllowedNoPolicy;
  private policy: CompiledPolicy | null;
  private readonly flow = new PacketFlow();
  private readonly fragments = new FragmentMemo();
  private readonly clock: { now(): number };

  constructor(opts: AclFilterOptions = {}) {
    this.flows = new FlowTable(opts.limits);
    this.policy = opts.policy ?? null;
    this.clock = opts.clock ?? coarseClock;
    if (typeof this.clock.now !== 'function') throw new UserError('AclFilter: clock must have a now() method');
  }

  /** The policy in force (null: allow everything). */
  get currentPolicy(): CompiledPolicy | null { return this.policy; }

  /** Replaces the policy live; returns how many remote-initiated flows it cut (see the header). */
  setPolicy(policy: CompiledPolicy | null): number {
    this.policy = policy;
    if (policy === null) return 0;
    const removed = this.flows.prune((f) => policy.allows(f), this.clock.now());
    this.counters.flowsRemovedByPolicy += removed;
    return removed;
  }

  /** Records the packet at buf[off, off+len) going into the tunnel. Always allows it. */
  outbound(buf: Buffer, off: number, len: number): true {
    const f = this.flow;
    const c = this.counters;
    if (readFlow(buf, off, len, f) !== Status.Ok) {
      c.outUntracked++;
      return true;
    }
    const k = f.kind;
    if (k === FlowKind.Tcp || k === FlowKind.Udp || k === FlowKind.EchoRequest || k === FlowKind.Other || k === FlowKind.EchoReply) {
      const now = this.clock.now();
      const slot = this.flows.lookup(f, now);
      if (slot >= 0) {
        this.flows.update(slot, f, now);
        c.outTracked++;
      } else if (k === FlowKind.EchoReply || (k === FlowKind.Tcp && (f.tcpFlags & (TCP_SYN | TCP_ACK)) !== TCP_SYN)) {
        // Replies start nothing. Only a SYN starts a TCP flow: were mid-connection segments to
        // start one, a connection cut by a policy change would reopen as soon as this side spoke.
        c.outUntracked++;
      } else {
        this.flows.insert(f, now, false);
        c.outNewFlows++;
      }
      return true;
    }
    c.outUntracked++;
    return true;
  }

  /** Judges the packet at buf[off, off+len) arriving from the tunnel: true to deliver it. */
  inbound(buf: Buffer, off: number, len: number): boolean {
    const f = this.flow;
    if (readFlow(buf, off, len, f) !== Status.Ok) return this.verdict(AclVerdict.DroppedMalformed);
    const now = this.clock.now();
    const policy = this.policy;
    switch (f.kind) {
      case FlowKind.NeighborDiscovery:
        return this.verdict(AclVerdict.DroppedNeighborDiscovery);
      case FlowKind.Fragment:
        if (this.fragments.has(f, now)) return this.verdict(AclVerdict.AllowedFragment);
        return this.verdict(policy === null ? AclVerdict.AllowedNoPolicy : AclVerdict.DroppedFragment);
      case FlowKind.IcmpError: {
        const inner = f.inner!;
        if (this.flows.lookup(inner, now) >= 0 && sameAddress(f.dst, inner.src)) return this.verdict(AclVerdict.AllowedRelated);
        if (policy === null) return this.verdict(AclVerdict.AllowedNoPolicy);
        return this.verdict(policy.allows(f) ? AclVerdict.AllowedRule : AclVerdict.DroppedUnrelated);
      }
      case FlowKind.IcmpOther:
        if (policy === null) return this.verdict(AclVerdict.AllowedNoPolicy);
        return this.verdict(policy.allows(f) ? AclVerdict.AllowedRule : AclVerdict.DroppedNoRule);
      default:
        break;
    }
    // TCP, UDP, ICMP echo, other protocols.
    const flows = this.flows;
    const slot = flows.lookup(f, now);
    if (slot >= 0) {
      const opening = f.kind === FlowKind.EchoRequest || (f.kind === FlowKind.Tcp && (f.tcpFlags & (TCP_SYN | TCP_ACK)) === TCP_SYN);
      if (!opening || flows.fromInitiator(slot)) {
        flows.update(slot, f, now);
        return this.admitted(f, now, AclVerdict.AllowedTracked);
      }
      // The responder of a flow opening one of its own on the same tuple: judged as new.
      if (policy !== null && !policy.allows(f)) return this.verdict(AclVerdict.DroppedNoRule);
      flows.update(slot, f, now);
      return this.admitted(f, now, policy === null ? AclVerdict.AllowedNoPolicy : AclVerdict.AllowedRule);
    }
    if (f.kind === FlowKind.EchoReply) {
      // Replies start nothing: pass them only when a rule allows ICMP from there.
      if (policy === null) return this.verdict(AclVerdict.AllowedNoPolicy);
      return this.verdict(policy.allows(f) ? AclVerdict.AllowedRule : AclVerdict.DroppedNoRule);
    }
    if (policy !== null && !policy.allows(f)) return this.verdict(AclVerdict.DroppedNoRule);
    flows.insert(f, now, true);
    return this.admitted(f, now, policy === null ? AclVerdict.AllowedNoPolicy : AclVerdict.AllowedRule);
  }

  /** Tracked flows, for status pages (allocates). */
  flowSnapshot(): FlowInfo[] { return this.flows.snapshot(this.clock.now()); }

  private admitted(f: PacketFlow, now: number, v: AclVerdict): true {
    if (f.firstFragment) this.fragments.remember(f, now);
    return this.verdict(v) as true;
  }

  private verdict(v: AclVerdict): boolean {
    this.lastVerdict = v;
    const c = this.counters;
    switch (v) {
      case AclVerdict.AllowedRule: c.inAllowedRule++; return true;
      case AclVerdict.AllowedTracked: c.inAllowedTracked++; return true;
      case AclVerdict.AllowedRelated: c.inAllowedRelated++; return true;
      case AclVerdict.AllowedFragment: c.inAllowedFragment++; return true;
      case AclVerdict.AllowedNoPolicy: c.inAllowedNoPolicy++; return true;
      case AclVerdict.DroppedNoRule: c.inDroppedNoRule++; return false;
      case AclVerdict.DroppedUnrelated: c.inDroppedUnrelated++; return false;
      case AclVerdict.DroppedFragment: c.inDroppedFragment++; return false;
      case AclVerdict.DroppedNeighborDiscovery: c.inDroppedNeighborDiscovery++; return false;
      default: c.inDroppedMalformed++; return false;
    }
  }
}

function sameAddress(a: Int32Array, b: Int32Array): boolean {
  return a[0] === b[0] && a[1] === b[1] && a[2] === b[2] && a[3] === b[3];
}
