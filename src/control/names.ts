// Node and network names: each is one DNS label (RFC 1035 / RFC 1123 host-name rules), because
// nodes are answered as `<node>.<network>` and `<node>.mesh`. Names are lowercase ASCII letters,
// digits and hyphens, 1 to 63 characters, not starting or ending with a hyphen. User input is
// normalized (trimmed, lowercased) and refused with a UserError that says what to change;
// host names (which may hold dots, underscores, spaces...) are turned into a valid label for
// joiners that did not ask for a name. Conflicts get a numeric suffix: web, web-2, web-3...
import { UserError } from '../util/index.js';

/** Longest DNS label (RFC 1035 section 2.3.4). */
export const MAX_NAME_LENGTH = 63;
/** The name a node gets when nothing usable can be made of its host name. */
export const FALLBACK_NODE_NAME = 'node';
/** Top-level names the resolver answers for itself; a network cannot take them. */
export const RESERVED_NETWORK_NAMES: readonly string[] = ['mesh', 'local', 'localhost', 'arpa', 'invalid', 'test', 'example'];

const LABEL_RE = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;

/** Why `text` is not a valid label, or null when it is (text already lowercased). */
function labelProblem(text: string): string | null {
  if (text.length === 0) return 'it is empty';
  if (text.length > MAX_NAME_LENGTH) return `it has ${text.length} characters, more than ${MAX_NAME_LENGTH}`;
  const bad = /[^a-z0-9-]/.exec(text);
  if (bad) return `"${bad[0]}" is not allowed (only letters a-z, digits and "-")`;
  if (text.startsWith('-') || text.endsWith('-')) return 'it starts or ends with "-"';
  return LABEL_RE.test(text) ? null : 'it is not a DNS label';
}

/** Normalizes a node name a user asked for (trim, lowercase) and checks it is one DNS label.
 * Throws UserError naming the problem, e.g. `invalid node name "web_1": "_" is not allowed`. */
export function normalizeNodeName(text: string): string {
  const name = String(text ?? '').trim().toLowerCase();
  const problem = labelProblem(name);
  if (problem) {
    throw new UserError(`invalid node name "${text}": ${problem}`,
      'use 1 to 63 letters, digits and hyphens, e.g. "web-1"');
  }
  if (/^\d+$/.test(name)) {
    throw new UserError(`invalid node name "${text}": a name of digits only looks like an address`, 'add a letter, e.g. "node-' + name + '"');
  }
  return name;
}

/** Normalizes a network name: the same rules as a node name, and not one of the reserved
 * top-level names (`mesh`, `local`...), since `<node>.<network>` is answered as a domain. */
export function normalizeNetworkName(text: string): string {
  const name = String(text ?? '').trim().toLowerCase();
  const problem = labelProblem(name);
  if (problem) {
    throw new UserError(`invalid network name "${text}": ${problem}`,
      'use 1 to 63 letters, digits and hyphens, e.g. "home" or "lab-2"');
  }
  if (/^\d+$/.test(name)) throw new UserError(`invalid network name "${text}": a name of digits only looks like an address`, 'add a letter');
  if (RESERVED_NETWORK_NAMES.includes(name)) {
    throw new UserError(`invalid network name "${text}": "${name}" is reserved (names under .${name} mean something else)`,
      'pick another name, e.g. "home"');
  }
  return name;
}

/** True when `text` (as given) is a valid, already normalized node name. */
export function isValidNodeName(text: string): boolean {
  return labelProblem(text) === null && !/^\d+$/.test(text);
}

/** A valid node name made from a host name: its first label, lowercased, other characters turned
 * into hyphens, trimmed to 63 characters; FALLBACK_NODE_NAME when nothing usable is left. */
export function nameFromHostname(hostname: string | undefined | null): string {
  const first = String(hostname ?? '').trim().split('.')[0]!.toLowerCase();
  let name = first.replace(/[^a-z0-9-]+/g, '-').replace(/-{2,}/g, '-').replace(/^-+|-+$/g, '');
  if (name.length > MAX_NAME_LENGTH) name = name.slice(0, MAX_NAME_LENGTH).replace(/-+$/, '');
  if (name.length === 0 || /^\d+$/.test(name)) return name.length === 0 ? FALLBACK_NODE_NAME : `node-${name}`.slice(0, MAX_NAME_LENGTH);
  return name;
}

/** `base` with a suffix when it is taken: base, base-2, base-3... The base is shortened so the
 * result stays a valid label. Throws (a programming error) only after `maxTries` candidates. */
export function uniqueName(base: string, isTaken: (name: string) => boolean, maxTries = 100_000): string {
  if (!isTaken(base)) return base;
  for (let n = 2; n < maxTries + 2; n++) {
    const suffix = `-${n}`;
    let stem = base.slice(0, MAX_NAME_LENGTH - suffix.length).replace(/-+$/, '');
    if (stem.length === 0) stem = FALLBACK_NODE_NAME;
    const candidate = stem + suffix;
    if (!isTaken(candidate)) return candidate;
  }
  throw new Error(`uniqueName: no free name for "${base}" after ${maxTries} tries`);
}
