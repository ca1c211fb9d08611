// The ACL policy file: what traffic nodes accept from each other. Written by people, kept on the
// coordinator, pushed to nodes in the network map; each node enforces it on what it RECEIVES.
//
// Format: HuJSON (JSON with // and /* */ comments and trailing commas), e.g.
//
//   {
//     // Named sets of nodes (by node name).
//     "groups": { "group:ops": ["alice-laptop", "bob-desktop"] },
//     // Tags nodes may carry (given at join: `meshtun token create --tag ops`). Declared here so
//     // a misspelt tag in a rule is an error instead of a rule that silently matches nothing.
//     "tags": ["tag:ops", "tag:web"],
//     // Allow rules. Anything no rule allows is denied (once a policy exists).
//     "acls": [
//       { "src": ["tag:ops", "group:ops"], "dst": ["tag:web:22"], "proto": "tcp" },
//       { "src": ["*"], "dst": ["tag:web:80,443", "node-b:8000-8999"] },
//       { "src": ["100.64.0.0/10"], "dst": ["[fd00::1]:53", "fd00::/8:53"], "proto": "udp" },
//       { "src": ["group:ops"], "dst": ["*:*"], "proto": "icmp" },
//     ],
//   }
//
// Selectors (src, and dst before the ports): `*` (everyone), `group:<name>`, `tag:<name>`, a
// node's name, an IP address, or a CIDR prefix. dst entries end with `:<ports>`: `*`, a port, a
// range `first-last`, or a comma list of those; an IPv6 address takes brackets (`[fd00::1]:22`).
// proto: `tcp`, `udp`, `icmp` (ICMP and ICMPv6) or `any` (the default). Ports apply to TCP and
// UDP; with proto `any`, other protocols (ICMP, GRE, ...) are allowed only by dst entries whose
// ports are `*`, and `icmp` rules must use `*`. A rule may say "action": "accept" (the only action).
// Mistakes throw PolicyError naming the file, the line, the rule (index and text) and the problem.

import { ConfigError } from '../../util/index.js';
import { parseIpv4Address, parseIpv6Address } from '../../wire/index.js';
import { parseHujson, HujsonSyntaxError, type HujsonDocument, type JsonObject, type JsonValue } from './hujson.js';

export type AclProto = 'tcp' | 'udp' | 'icmp' | 'any';
export const ACL_PROTOS: readonly AclProto[] = ['tcp', 'udp', 'icmp', 'any'];

/** Who a selector names. Prefixes hold their address as 16 bytes (IPv4 in the first 4). */
export type AclSelector =
  | { kind: 'any' }
  | { kind: 'group'; name: string }
  | { kind: 'tag'; name: string }
  | { kind: 'node'; name: string }
  | { kind: 'prefix'; family: 4 | 6; address: Uint8Array; length: number };

/** Inclusive port range. */
export interface PortRange { first: number; last: number }

export interface AclDestination {
  target: AclSelector;
  /** null: every port. */
  ports: PortRange[] | null;
  /** As written. */
  text: string;
}

export interface AclRule {
  /** Position in "acls" (0-based). */
  index: number;
  line: number;
  /** The rule as compact JSON, for messages. */
  text: string;
  src: AclSelector[];
  dst: AclDestination[];
  proto: AclProto;
}

export interface AclPolicy {
  file: string;
  /** Group name (with its `group:` prefix) -> node names (lowercased). */
  groups: Map<string, string[]>;
  /** Declared tags, with their `tag:` prefix. */
  tags: Set<string>;
  rules: AclRule[];
}

/** Thrown when a policy file is invalid: says where (file:line), which rule, and what is wrong. */
export class PolicyError extends ConfigError {
  override name = 'PolicyError';
  constructor(file: string, line: number, what: string, readonly ruleIndex: number | null = null) {
    super(file, line, what);
  }
}

const TOP_FIELDS = ['groups', 'tags', 'acls'];
const RULE_FIELDS = ['action', 'src', 'dst', 'proto'];
const NAME_RE = /^[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?$/i;
const MAX_PORT = 65535;
const RULE_TEXT_MAX = 160;

const isObject = (v: JsonValue | undefined): v is JsonObject => v !== null && typeof v === 'object' && !Array.isArray(v);

function ruleText(v: JsonValue): string {
  const t = JSON.stringify(v);
  return t.length > RULE_TEXT_MAX ? `${t.slice(0, RULE_TEXT_MAX - 3)}...` : t;
}

/** Parses an IP address or CIDR prefix; returns null when `text` is neither, a message when it is
 * almost one (bad length, host bits set). */
export function parsePrefix(text: string): AclSelector | string | null {
  const slash = text.indexOf('/');
  const addrText = slash < 0 ? text : text.slice(0, slash);
  const address = new Uint8Array(16);
  let family: 4 | 6;
  const v4 = parseIpv4Address(addrText);
  if (v4 !== null) {
    family = 4;
    address[0] = v4 >>> 24; address[1] = (v4 >>> 16) & 255; address[2] = (v4 >>> 8) & 255; address[3] = v4 & 255;
  } else if (addrText.includes(':') && !addrText.includes('%') && parseIpv6Address(addrText, address)) {
    family = 6;
  } else {
    return slash < 0 && !/^[\d.]+$/.test(text) ? null : `"${text}" is not an IP address or CIDR prefix`;
  }
  const max = family === 4 ? 32 : 128;
  let length = max;
  if (slash >= 0) {
    const lenText = text.slice(slash + 1);
    if (!/^\d{1,3}$/.test(lenText) || Number(lenText) > max) {
      return `"${text}": prefix length "${lenText}" must be 0 to ${max} for IPv${family}`;
    }
    length = Number(lenText);
    for (let bit = length; bit < max; bit++) {
      if ((address[bit >>> 3]! >>> (7 - (bit & 7))) & 1) {
        const net = Uint8Array.from(address);
        for (let b = length; b < max; b++) net[b >>> 3]! &= ~(1 << (7 - (b & 7)));
        const netText = family === 4 ? `${net[0]}.${net[1]}.${net[2]}.${net[3]}` : 'its network address';
        return `"${text}" has host bits set after /${length}: did you mean ${family === 4 ? `"${netText}/${length}"` : netText}?`;
      }
    }
  }
  return { kind: 'prefix', family, address, length };
}

/** Parses a port list: "*", "22", "80,443", "8000-8999", "22,8000-8999". */
export function parsePorts(text: string): PortRange[] | null | string {
  if (text === '*') return null;
  if (text === '') return 'the port list is empty';
  const ranges: PortRange[] = [];
  for (const item of text.split(',')) {
    const m = /^(\d{1,5})(?:-(\d{1,5}))?$/.exec(item.trim());
    if (!m) return `"${item}" is not a port or a range (e.g. 22, 80,443 or 8000-8999)`;
    const first = Number(m[1]);
    const last = m[2] === undefined ? first : Number(m[2]);
    if (first < 1 || first > MAX_PORT || last < 1 || last > MAX_PORT) return `port ${first > MAX_PORT || first < 1 ? first : last} is outside 1-${MAX_PORT}`;
    if (last < first) return `bad port range "${item}": ${first} comes after ${last}`;
    ranges.push({ first, last });
  }
  return ranges;
}

/** Parses a policy file's text. Throws PolicyError. */
export function parsePolicy(text: string, file = 'policy'): AclPolicy {
  let doc: HujsonDocument;
  try {
    doc = parseHujson(text);
  } catch (e) {
    if (e instanceof HujsonSyntaxError) throw new PolicyError(file, e.line, `not valid JSON: ${e.what} (column ${e.column})`);
    throw e;
  }
  const root = doc.value;
  if (!isObject(root)) throw new PolicyError(file, doc.lineOf(root) || 1, 'the policy must be an object: { "groups": {...}, "tags": [...], "acls": [...] }');
  for (const key of Object.keys(root)) {
    if (!TOP_FIELDS.includes(key)) {
      throw new PolicyError(file, doc.lineOfKey(root, key), `unknown field "${key}" (fields: ${TOP_FIELDS.join(', ')})`);
    }
  }
  const policy: AclPolicy = { file, groups: new Map(), tags: new Set(), rules: [] };

  const groups = root['groups'];
  if (groups !== undefined) {
    if (!isObject(groups)) throw new PolicyError(file, doc.lineOfKey(root, 'groups'), '"groups" must be an object: { "group:ops": ["node-a", ...] }');
    for (const [name, members] of Object.entries(groups)) {
      const line = doc.lineOfKey(groups, name);
      if (!/^group:[a-z0-9_-]+$/i.test(name)) throw new PolicyError(file, line, `group "${name}": group names look like "group:ops"`);
      if (!Array.isArray(members)) throw new PolicyError(file, line, `group "${name}" must be a list of node names`);
      const names: string[] = [];
      for (const m of members) {
        if (typeof m !== 'string' || !NAME_RE.test(m)) {
          throw new PolicyError(file, line, `group "${name}": member ${JSON.stringify(m)} is not a node name (groups list node names, not tags, groups or addresses)`);
        }
        names.push(m.toLowerCase());
      }
      policy.groups.set(name.toLowerCase(), names);
    }
  }

  const tags = root['tags'];
  if (tags !== undefined) {
    if (!Array.isArray(tags)) throw new PolicyError(file, doc.lineOfKey(root, 'tags'), '"tags" must be a list such as ["tag:web", "tag:ops"]');
    for (const t of tags) {
      if (typeof t !== 'string' || !/^tag:[a-z0-9_-]+$/i.test(t)) {
        throw new PolicyError(file, doc.lineOfKey(root, 'tags'), `tag ${JSON.stringify(t)}: tags look like "tag:web"`);
      }
      policy.tags.add(t.toLowerCase());
    }
  }

  const acls = root['acls'];
  if (acls === undefined) throw new PolicyError(file, doc.lineOf(root), 'no "acls" list: add "acls": [ { "src": [...], "dst": [...] } ] (an empty list denies everything)');
  if (!Array.isArray(acls)) throw new PolicyError(file, doc.lineOfKey(root, 'acls'), '"acls" must be a list of rules');
  acls.forEach((raw, index) => policy.rules.push(parseRule(raw, index, doc, policy, doc.lineOf(raw) || doc.lineOfKey(root, 'acls'))));
  return policy;
}

function parseRule(raw: JsonValue, index: number, doc: HujsonDocument, policy: AclPolicy, line: number): AclRule {
  const text = ruleText(raw);
  const fail = (what: string, at = line): never => { throw new PolicyError(policy.file, at, `acls[${index}] ${text}: ${what}`, index); };
  if (!isObject(raw)) return fail('a rule must be an object: { "src": [...], "dst": [...], "proto": "tcp" }');
  for (const key of Object.keys(raw)) {
    if (!RULE_FIELDS.includes(key)) fail(`unknown field "${key}" (fields: ${RULE_FIELDS.join(', ')})`, doc.lineOfKey(raw, key));
  }
  const action = raw['action'];
  if (action !== undefined && action !== 'accept') {
    fail(`action ${JSON.stringify(action)} is not supported: rules allow ("accept"); whatever no rule allows is denied`, doc.lineOfKey(raw, 'action'));
  }
  const proto = raw['proto'] ?? 'any';
  if (typeof proto !== 'string' || !ACL_PROTOS.includes(proto.toLowerCase() as AclProto)) {
    fail(`proto ${JSON.stringify(proto)} is not one of ${ACL_PROTOS.join(', ')}`, doc.lineOfKey(raw, 'proto'));
  }
  const rule: AclRule = { index, line, text, src: [], dst: [], proto: (proto as string).toLowerCase() as AclProto };

  const list = (field: 'src' | 'dst'): string[] => {
    const v = raw[field];
    const at = doc.lineOfKey(raw, field);
    if (v === undefined) fail(`no "${field}" list`);
    if (!Array.isArray(v) || v.length === 0) fail(`"${field}" must be a non-empty list of strings`, at);
    for (const s of v as JsonValue[]) if (typeof s !== 'string') fail(`"${field}" entry ${JSON.stringify(s)} is not a string`, at);
    return v as string[];
  };

  const selector = (s: string, field: string, at: number): AclSelector => {
    const t = s.trim();
    if (t === '*') return { kind: 'any' };
    const lower = t.toLowerCase();
    if (lower.startsWith('group:')) {
      if (!policy.groups.has(lower)) {
        const known = [...policy.groups.keys()];
        fail(`unknown group "${t}" in ${field} (${known.length ? `groups defined: ${known.join(', ')}` : 'no "groups" are defined'})`, at);
      }
      return { kind: 'group', name: lower };
    }
    if (lower.startsWith('tag:')) {
      if (!policy.tags.has(lower)) {
        const known = [...policy.tags];
        fail(`unknown tag "${t}" in ${field} (${known.length ? `tags declared: ${known.join(', ')}` : 'declare it in "tags": ["' + lower + '"]'})`, at);
      }
      return { kind: 'tag', name: lower };
    }
    const prefix = parsePrefix(t);
    if (typeof prefix === 'string') fail(`bad ${field} ${prefix}`, at);
    if (prefix !== null) return prefix as AclSelector;
    if (NAME_RE.test(t)) return { kind: 'node', name: lower };
    return fail(`${field} "${s}" is not a selector: use *, group:<name>, tag:<name>, a node name, an IP address or a CIDR prefix`, at);
  };

  const srcLine = doc.lineOfKey(raw, 'src');
  for (const s of list('src')) {
    const t = s.trim();
    if (/^(tag|group):[^:]*:/i.test(t) || /^[^:]+:[\d*,-]+$/.test(t) || /^\[.*\]:/.test(t)) {
      fail(`src "${s}" has ports: sources take no ports (put ports on the dst entries)`, srcLine);
    }
    rule.src.push(selector(t, 'src', srcLine));
  }
  const dstLine = doc.lineOfKey(raw, 'dst');
  for (const d of list('dst')) {
    const t = d.trim();
    const [targetText, portsText] = splitDestination(t, (what) => fail(`dst "${d}" ${what}`, dstLine));
    const ports = parsePorts(portsText);
    if (typeof ports === 'string') fail(`dst "${d}": ${ports}`, dstLine);
    if (rule.proto === 'icmp' && ports !== null) {
      fail(`dst "${d}": ICMP has no ports: write "${t.slice(0, t.length - portsText.length)}*" with proto "icmp"`, dstLine);
    }
    rule.dst.push({ target: selector(targetText, 'dst', dstLine), ports: ports as PortRange[] | null, text: t });
  }
  return rule;
}

/** Splits a dst entry into its target and its ports ("tag:web:80,443" -> "tag:web", "80,443";
 * "[fd00::1]:22" -> "fd00::1", "22"; "fd00::/8:53" -> "fd00::/8", "53"). */
function splitDestination(t: string, fail: (what: string) => never): [string, string] {
  const bracketed = /^\[([^\]]+)\]:(.*)$/.exec(t);
  if (bracketed) return [bracketed[1]!, bracketed[2]!];
  const whole = parsePrefix(t);
  const isAddress = whole !== null && typeof whole !== 'string';
  if (isAddress || t === '*' || /^(tag|group):[^:]*$/i.test(t) || !t.includes(':')) {
    const v6 = isAddress && whole.kind === 'prefix' && whole.family === 6 && !t.includes('/');
    const ex = v6 ? `[${t}]` : t;
    fail(`has no ports${v6 ? ' (an IPv6 address with ports takes brackets)' : ''}: write "${ex}:22", "${ex}:80,443", "${ex}:8000-8999" or "${ex}:*"`);
  }
  const colon = t.lastIndexOf(':');
  const target = t.slice(0, colon);
  if (target.includes(':') && !target.includes('/') && !/^(tag|group):[^:]+$/i.test(target)) {
    fail(`needs brackets around an IPv6 address with ports, e.g. "[${target}]:${t.slice(colon + 1)}"`);
  }
  return [target, t.slice(colon + 1)];
}
