// The names table of a node's DNS responder: which names exist and their addresses. Records come
// from the network map as { name, network, ipv4, ipv6 }; each answers two names, `<name>.mesh` and
// `<name>.<network>`. Names are kept in lowercased DNS wire form (length-prefixed labels ending
// with the root label), the same form `readDnsQuestion` produces, so a lookup for a question read
// from a packet compares bytes and allocates nothing. A table is immutable once built: the
// responder swaps in a new one to replace the records live.

import { UserError } from '../util/index.js';
import { DnsQuestion, setDnsQuestionName, parseIpv4Address, parseIpv6Address } from '../wire/index.js';

/** One node's names, as the network map gives them. */
export interface NameRecord {
  /** The node's name: one DNS label (letters, digits, '-', '_'), case-insensitive. */
  name: string;
  /** The network's name: one or more labels; `<name>.<network>` is answered besides `<name>.mesh`. */
  network: string;
  /** The node's IPv4 address (answers A queries), if it has one. */
  ipv4?: string | null;
  /** The node's IPv6 address (answers AAAA queries), if it has one. */
  ipv6?: string | null;
}

/** The suffix every node is also known under, whatever its network. */
export const MESH_ZONE = 'mesh';

const IPV4_LEN = 4;
const IPV6_LEN = 16;
const LABEL_RE = /^[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?$/i;

/** A name that exists and its addresses (several when records share a name; duplicates merged). */
export class NameEntry {
  readonly a: Buffer[] = [];
  readonly aaaa: Buffer[] = [];
  constructor(readonly key: DnsQuestion) {}
}

/** A zone the responder is authoritative for: `mesh` or a network's name. */
export class Zone {
  constructor(readonly key: DnsQuestion, readonly text: string) {}
}

function keyOf(text: string): DnsQuestion {
  const q = new DnsQuestion();
  setDnsQuestionName(q, text);
  return q;
}

function checkLabels(text: string, what: string, where: string): void {
  const labels = text.split('.');
  for (const label of labels) {
    if (!LABEL_RE.test(label)) {
      throw new UserError(
        `${where}: ${what} "${text}" is not a valid DNS name: each label must be 1 to 63 letters, digits, '-' or '_', ` +
        'not starting or ending with \'-\'');
    }
  }
}

/** An immutable table of names, built from records. Throws UserError on a bad record. */
export class NameTable {
  /** Entries by the FNV-1a hash of their wire-form name (collisions share a bucket). */
  private readonly byHash = new Map<number, NameEntry[]>();
  readonly zones: Zone[] = [];
  /** Distinct names answered (each record gives two). */
  size = 0;

  constructor(records: readonly NameRecord[]) {
    this.addZone(MESH_ZONE);
    records.forEach((r, i) => this.add(r, `DNS record #${i + 1}`));
  }

  private addZone(text: string): Zone {
    const lower = text.toLowerCase();
    let zone = this.zones.find((z) => z.text === lower);
    if (!zone) {
      zone = new Zone(keyOf(lower), lower);
      this.zones.push(zone);
    }
    return zone;
  }

  private add(r: NameRecord, where: string): void {
    if (r === null || typeof r !== 'object') throw new UserError(`${where}: expected { name, network, ipv4, ipv6 }`);
    if (typeof r.name !== 'string' || r.name.includes('.')) {
      throw new UserError(`${where}: name ${JSON.stringify(r.name)} must be a single DNS label such as "node-a"`);
    }
    checkLabels(r.name, 'name', where);
    if (typeof r.network !== 'string' || r.network === '') {
      throw new UserError(`${where} ("${r.name}"): network ${JSON.stringify(r.network)} must be a DNS name such as "lab"`);
    }
    const network = r.network.replace(/\.$/, '');
    checkLabels(network, 'network', `${where} ("${r.name}")`);
    if (r.name.length + 1 + network.length > 253) {
      throw new UserError(`${where}: "${r.name}.${network}" is longer than the 253 characters a DNS name may have`);
    }
    let v4: Buffer | null = null;
    if (r.ipv4 !== undefined && r.ipv4 !== null && r.ipv4 !== '') {
      const n = typeof r.ipv4 === 'string' ? parseIpv4Address(r.ipv4) : null;
      if (n === null) throw new UserError(`${where} ("${r.name}"): ipv4 ${JSON.stringify(r.ipv4)} is not an IPv4 address`);
      v4 = Buffer.alloc(IPV4_LEN);
      v4.writeUInt32BE(n);
    }
    let v6: Buffer | null = null;
    if (r.ipv6 !== undefined && r.ipv6 !== null && r.ipv6 !== '') {
      v6 = Buffer.alloc(IPV6_LEN);
      if (typeof r.ipv6 !== 'string' || r.ipv6.includes('%') || !parseIpv6Address(r.ipv6, v6)) {
        throw new UserError(`${where} ("${r.name}"): ipv6 ${JSON.stringify(r.ipv6)} is not an IPv6 address`);
      }
    }
    this.addZone(network);
    for (const zone of new Set([MESH_ZONE, network.toLowerCase()])) {
      const entry = this.entryFor(`${r.name}.${zone}`);
      if (v4 && !entry.a.some((b) => b.equals(v4))) entry.a.push(v4);
      if (v6 && !entry.aaaa.some((b) => b.equals(v6))) entry.aaaa.push(v6);
    }
  }

  private entryFor(text: string): NameEntry {
    const key = keyOf(text);
    let bucket = this.byHash.get(key.hash);
    if (!bucket) this.byHash.set(key.hash, (bucket = []));
    let entry = bucket.find((e) => e.key.sameName(key));
    if (!entry) {
      entry = new NameEntry(key);
      bucket.push(entry);
      this.size++;
    }
    return entry;
  }

  /** The entry for the question's name, or null. Allocates nothing. */
  lookup(q: DnsQuestion): NameEntry | null {
    const bucket = this.byHash.get(q.hash);
    if (bucket === undefined) return null;
    for (let i = 0; i < bucket.length; i++) if (bucket[i]!.key.sameName(q)) return bucket[i]!;
    return null;
  }

  /** The longest of our zones the question's name is in or at, or null. Allocates nothing. */
  zoneOf(q: DnsQuestion): Zone | null {
    let best: Zone | null = null;
    for (let i = 0; i < this.zones.length; i++) {
      const z = this.zones[i]!;
      if (best !== null && z.key.nameLength <= best.key.nameLength) continue;
      if (isSuffix(q, z.key)) best = z;
    }
    return best;
  }
}

/** True when `zone`'s name is `q`'s name or ends it at a label boundary (both lowercased). */
function isSuffix(q: DnsQuestion, zone: DnsQuestion): boolean {
  const start = q.nameLength - zone.nameLength;
  if (start < 0) return false;
  // Walk q's labels to see whether one starts exactly at `start`.
  let at = 0;
  while (at < start) at += 1 + q.name[at]!;
  if (at !== start) return false;
  for (let i = 0; i < zone.nameLength; i++) if (q.name[start + i] !== zone.name[i]) return false;
  return true;
}
