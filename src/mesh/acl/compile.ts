// Compiles a parsed ACL policy against the network's node table (name -> addresses, tags) into a
// matcher the packet filter asks about new flows: "may this source send to this destination
// address, protocol and port?". Groups, tags and node names become address prefixes; each rule
// becomes a source prefix set and a list of (destination prefix set, port ranges). Matching reads
// the flow's address words and allocates nothing. Recompile whenever the policy or the node table
// changes, then hand the result to the filter (setPolicy).

import { UserError } from '../../util/index.js';
import { IpProtocol } from '../../wire/index.js';
import { parsePrefix, type AclPolicy, type AclProto, type AclSelector, type PortRange } from './policy.js';
import type { PacketFlow } from './flow.js';

/** A node as the network map knows it. */
export interface AclNode {
  name: string;
  /** Its overlay addresses (IP literals; a CIDR prefix is taken as is). */
  addresses: readonly string[];
  /** Its tags, with or without the `tag:` prefix ("web" and "tag:web" are the same). */
  tags?: readonly string[];
}

const PROTO_TCP = 1;
const PROTO_UDP = 2;
const PROTO_ICMP = 4;
const PROTO_ANY = 8;
const PROTO_BITS: Record<AclProto, number> = { tcp: PROTO_TCP, udp: PROTO_UDP, icmp: PROTO_ICMP, any: PROTO_ANY };
const V6_WORDS = 8; // 4 address words + 4 mask words per prefix

/** A set of address prefixes, as int32 words (the form PacketFlow holds addresses in). Single
 * addresses (/32, /128: what node names, tags and groups expand to) sit in sorted arrays searched
 * by bisection; shorter prefixes are scanned: IPv4 as (network, mask) pairs, IPv6 as 4 network
 * words then 4 mask words. */
class PrefixSet {
  any = false;
  v4Hosts: Int32Array = new Int32Array(0);
  v6Hosts: Int32Array = new Int32Array(0);
  v4: Int32Array = new Int32Array(0);
  v6: Int32Array = new Int32Array(0);
  private readonly v4HostList = new Set<number>();
  private readonly v6HostList = new Map<string, number[]>();
  private readonly v4List: number[] = [];
  private readonly v6List: number[] = [];
  private readonly seen = new Set<string>();

  add(family: 4 | 6, address: Uint8Array, length: number): void {
    const key = `${family}/${Array.from(address).join('.')}/${length}`;
    if (this.seen.has(key)) return;
    this.seen.add(key);
    if (family === 4) {
      const mask = length === 0 ? 0 : (~0 << (32 - length)) | 0;
      const net = ((address[0]! << 24) | (address[1]! << 16) | (address[2]! << 8) | address[3]!) & mask;
      if (length === 32) this.v4HostList.add(net);
      else this.v4List.push(net, mask);
      return;
    }
    const words: number[] = [];
    const masks: number[] = [];
    for (let w = 0; w < 4; w++) {
      const bits = Math.max(0, Math.min(32, length - 32 * w));
      const mask = bits === 0 ? 0 : (~0 << (32 - bits)) | 0;
      const o = 4 * w;
      words.push(((address[o]! << 24) | (address[o + 1]! << 16) | (address[o + 2]! << 8) | address[o + 3]!) & mask);
      masks.push(mask);
    }
    if (length === 128) this.v6HostList.set(words.join(), words);
    else this.v6List.push(...words, ...masks);
  }

  freeze(): void {
    this.v4Hosts = Int32Array.from(this.v4HostList).sort();
    const hosts = [...this.v6HostList.values()].sort((x, y) => compareWords(x, 0, y, 0));
    this.v6Hosts = Int32Array.from(hosts.flat());
    this.v4 = Int32Array.from(this.v4List);
    this.v6 = Int32Array.from(this.v6List);
  }

  has(family: 4 | 6, a: Int32Array): boolean {
    if (this.any) return true;
    if (family === 4) {
      const x = a[0]!;
      const h = this.v4Hosts;
      let lo = 0, hi = h.length - 1;
      while (lo <= hi) {
        const mid = (lo + hi) >>> 1;
        const v = h[mid]!;
        if (v === x) return true;
        if (v < x) lo = mid + 1; else hi = mid - 1;
      }
      const s = this.v4;
      for (let i = 0; i < s.length; i += 2) if ((x & s[i + 1]!) === s[i]) return true;
      return false;
    }
    const h = this.v6Hosts;
    let lo = 0, hi = h.length / 4 - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      const c = compareWords(h, mid * 4, a, 0);
      if (c === 0) return true;
      if (c < 0) lo = mid + 1; else hi = mid - 1;
    }
    const s = this.v6;
    const a0 = a[0]!, a1 = a[1]!, a2 = a[2]!, a3 = a[3]!;
    for (let i = 0; i < s.length; i += V6_WORDS) {
      if ((a0 & s[i + 4]!) === s[i] && (a1 & s[i + 5]!) === s[i + 1] && (a2 & s[i + 6]!) === s[i + 2] && (a3 & s[i + 7]!) === s[i + 3]) return true;
    }
    return false;
  }

  get size(): number { return this.v4Hosts.length + this.v6Hosts.length / 4 + this.v4.length / 2 + this.v6.length / V6_WORDS; }
}

/** Orders two 4-word addresses (as signed words: any consistent order serves bisection). */
function compareWords(x: ArrayLike<number>, xo: number, y: ArrayLike<number>, yo: number): number {
  for (let i = 0; i < 4; i++) {
    const p = x[xo + i]!, q = y[yo + i]!;
    if (p !== q) return p < q ? -1 : 1;
  }
  return 0;
}

class CompiledDestination {
  constructor(readonly addresses: PrefixSet, readonly ports: Int32Array | null) {}

  portAllowed(port: number): boolean {
    const p = this.ports;
    if (p === null) return true;
    for (let i = 0; i < p.length; i += 2) if (port >= p[i]! && port <= p[i + 1]!) return true;
    return false;
  }
}

class CompiledRule {
  constructor(readonly index: number, readonly protoBits: number, readonly src: PrefixSet, readonly dst: CompiledDestination[]) {}
}

/** A policy compiled against a node table: the filter's rule matcher. Immutable. */
export class CompiledPolicy {
  /** Things that are not errors but probably mistakes: rules naming nodes that are not (yet) in
   * the network, rules that match nothing. */
  readonly warnings: string[] = [];

  /** @internal */
  constructor(readonly file: string, private readonly rules: CompiledRule[]) {}

  /** Rules in the policy. */
  get ruleCount(): number { return this.rules.length; }

  /** True when a rule allows `flow` as a new flow from its source to its destination. TCP and UDP
   * need a rule with their protocol (or any) and the destination port; ICMP needs icmp or any
   * with all ports; other protocols need any with all ports. Allocates nothing. */
  allows(flow: PacketFlow): boolean {
    const p = flow.protocol;
    const isTcp = p === IpProtocol.Tcp;
    const isUdp = p === IpProtocol.Udp;
    const isIcmp = p === (flow.family === 4 ? IpProtocol.Icmp : IpProtocol.Icmpv6);
    const want = isTcp ? PROTO_TCP : isUdp ? PROTO_UDP : isIcmp ? PROTO_ICMP : 0;
    const hasPorts = isTcp || isUdp;
    const rules = this.rules;
    for (let r = 0; r < rules.length; r++) {
      const rule = rules[r]!;
      if ((rule.protoBits & (want | PROTO_ANY)) === 0) continue;
      if (!rule.src.has(flow.family, flow.src)) continue;
      const dsts = rule.dst;
      for (let d = 0; d < dsts.length; d++) {
        const dst = dsts[d]!;
        if (!dst.addresses.has(flow.family, flow.dst)) continue;
        if (hasPorts ? dst.portAllowed(flow.dstPort) : dst.ports === null) return true;
      }
    }
    return false;
  }
}

/** Compiles `policy` against the node table. Throws UserError for a node with a bad address. */
export function compilePolicy(policy: AclPolicy, nodes: readonly AclNode[]): CompiledPolicy {
  const byName = new Map<string, AclNode>();
  const byTag = new Map<string, AclNode[]>();
  for (const node of nodes) {
    if (!node || typeof node.name !== 'string' || !Array.isArray(node.addresses)) {
      throw new UserError('compilePolicy: each node needs { name, addresses: [...], tags?: [...] }');
    }
    byName.set(node.name.toLowerCase(), node);
    for (const t of node.tags ?? []) {
      const tag = t.toLowerCase().startsWith('tag:') ? t.toLowerCase() : `tag:${t.toLowerCase()}`;
      let list = byTag.get(tag);
      if (!list) byTag.set(tag, (list = []));
      list.push(node);
    }
  }
  for (const node of nodes) {
    for (const a of node.addresses) {
      const p = parsePrefix(a);
      if (p === null || typeof p === 'string' || p.kind !== 'prefix') {
        throw new UserError(`compilePolicy: node "${node.name}" has address ${JSON.stringify(a)}, which is not an IP address or prefix`);
      }
    }
  }
  const compiled: CompiledRule[] = [];
  const warnings: string[] = [];
  const addNode = (set: PrefixSet, node: AclNode): void => {
    for (const a of node.addresses) {
      const p = parsePrefix(a) as AclSelector & { kind: 'prefix' }; // checked above
      set.add(p.family, p.address, p.length);
    }
  };
  const addSelector = (set: PrefixSet, s: AclSelector, where: string): void => {
    switch (s.kind) {
      case 'any': set.any = true; return;
      case 'prefix': set.add(s.family, s.address, s.length); return;
      case 'tag': for (const n of byTag.get(s.name) ?? []) addNode(set, n); return;
      case 'group':
        for (const member of policy.groups.get(s.name) ?? []) {
          const n = byName.get(member);
          if (n) addNode(set, n);
          else warnings.push(`${where}: ${s.name} member "${member}" is not in the network`);
        }
        return;
      case 'node': {
        const n = byName.get(s.name);
        if (n) addNode(set, n);
        else warnings.push(`${where}: node "${s.name}" is not in the network`);
      }
    }
  };
  for (const rule of policy.rules) {
    const where = `${policy.file}:${rule.line}: acls[${rule.index}]`;
    const src = new PrefixSet();
    for (const s of rule.src) addSelector(src, s, where);
    src.freeze();
    const dsts: CompiledDestination[] = [];
    for (const d of rule.dst) {
      const set = new PrefixSet();
      addSelector(set, d.target, where);
      set.freeze();
      if (set.any || set.size > 0) dsts.push(new CompiledDestination(set, portsArray(d.ports)));
    }
    if ((!src.any && src.size === 0) || dsts.length === 0) {
      warnings.push(`${where}: matches no traffic with the nodes in the network now`);
      continue;
    }
    compiled.push(new CompiledRule(rule.index, PROTO_BITS[rule.proto], src, dsts));
  }
  const out = new CompiledPolicy(policy.file, compiled);
  out.warnings.push(...warnings);
  return out;
}

function portsArray(ports: PortRange[] | null): Int32Array | null {
  if (ports === null) return null;
  const a = new Int32Array(ports.length * 2);
  ports.forEach((r, i) => { a[2 * i] = r.first; a[2 * i + 1] = r.last; });
  return a;
}
