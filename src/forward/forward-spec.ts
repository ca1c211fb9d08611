// Static port forward specs, as written in a config file:
//
//   [tcp:|udp:][LISTEN-HOST:]LISTEN-PORT=TARGET-HOST:TARGET-PORT
//
//   Forward = tcp:127.0.0.1:2222=100.64.0.1:22     local -> remote: listen on this machine,
//   Forward = udp:5353=100.64.0.1:53               connect through the tunnel
//   Reverse = tcp:100.64.0.2:80=127.0.0.1:8000     remote -> local: listen on the node's overlay
//   Reverse = udp:53=127.0.0.1:5353                address (through the tunnel), connect to a
//                                                  service on this machine
//
// The protocol defaults to tcp. The listen host defaults to 127.0.0.1 for Forward and to every
// overlay address of the node for Reverse. Listen hosts are IP literals; a target host may be a
// name (a Forward target is resolved through the tunnel's DNS when the config has DNS =). IPv6
// addresses go in brackets: tcp:[::1]:2222=[fd00::1]:22. A listen host of 0.0.0.0 or [::] means
// every address of both families.

import { isIP } from 'node:net';
import { UserError } from '../util/index.js';

/** forward: local listen -> remote target through the tunnel; reverse: the other way. */
export type ForwardDirection = 'forward' | 'reverse';
export type ForwardProtocol = 'tcp' | 'udp';

export interface ForwardSpec {
  direction: ForwardDirection;
  protocol: ForwardProtocol;
  /** IP literal without brackets; "" = every address (of the listening side). */
  listenHost: string;
  listenPort: number;
  /** IP literal without brackets, or a host name. */
  targetHost: string;
  targetPort: number;
  /** Canonical text (protocol and hosts written out), e.g. "tcp:127.0.0.1:2222=100.64.0.1:22". */
  text: string;
}

/** Thrown when a forward spec is malformed. */
export class ForwardSpecError extends UserError {
  override name = 'ForwardSpecError';
}

export const DEFAULT_FORWARD_LISTEN_HOST = '127.0.0.1';
const HOSTNAME_RE = /^(?=.{1,253}$)[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?(\.[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?)*\.?$/;
const EXAMPLE: Record<ForwardDirection, string> = {
  forward: 'e.g. tcp:127.0.0.1:2222=100.64.0.1:22 or udp:5353=100.64.0.1:53',
  reverse: 'e.g. tcp:80=127.0.0.1:8000 or udp:100.64.0.2:53=127.0.0.1:5353',
};

/** A stable identity: the direction and the canonical text. */
export function forwardKey(spec: ForwardSpec): string {
  return `${spec.direction} ${spec.text}`;
}

/** "tcp:127.0.0.1:2222=..." as the key name it is written under: Forward or Reverse. */
export function directionKey(direction: ForwardDirection): string {
  return direction === 'forward' ? 'Forward' : 'Reverse';
}

/** Parses one spec; throws ForwardSpecError saying what is wrong and showing the syntax. */
export function parseForwardSpec(input: string, direction: ForwardDirection): ForwardSpec {
  const text = input.trim();
  const bad = (why: string): never => {
    throw new ForwardSpecError(`${directionKey(direction)} "${text}": ${why}; write [tcp:|udp:][listen-host:]listen-port=target-host:target-port, ${EXAMPLE[direction]}`);
  };
  if (text === '') bad('empty');
  const eq = text.indexOf('=');
  if (eq < 0 || text.indexOf('=', eq + 1) >= 0) bad('expected exactly one "=" between the listen side and the target');
  let left = text.slice(0, eq).trim();
  const right = text.slice(eq + 1).trim();
  let protocol: ForwardProtocol = 'tcp';
  // A leading word is the protocol, unless it could be the first group of an IPv6 address.
  const proto = /^([a-z][a-z0-9]*):/i.exec(left);
  if (proto) {
    const p = proto[1]!.toLowerCase();
    if (p === 'tcp' || p === 'udp') {
      protocol = p;
      left = left.slice(proto[0].length);
    } else if (!/^[0-9a-f]{1,4}$/.test(p)) {
      bad(`unknown protocol "${proto[1]}" (use tcp or udp)`);
    }
  }
  const listen = splitListen(left, bad);
  const target = splitTarget(right, bad);
  const listenHost = listen.host ?? (direction === 'forward' ? DEFAULT_FORWARD_LISTEN_HOST : '');
  // Every address is written as the bare port for Reverse (its default) and as 0.0.0.0 for Forward.
  const canonicalListen = listenHost !== '' ? `${hostText(listenHost)}:${listen.port}`
    : direction === 'reverse' ? String(listen.port) : `0.0.0.0:${listen.port}`;
  return {
    direction, protocol, listenHost, listenPort: listen.port, targetHost: target.host, targetPort: target.port,
    text: `${protocol}:${canonicalListen}=${hostText(target.host)}:${target.port}`,
  };
}

/** Parses a list of specs (one per entry, entries may also hold comma-separated specs) and
 * rejects two specs that listen on the same protocol, address and port. */
export function parseForwardSpecs(entries: readonly string[], direction: ForwardDirection): ForwardSpec[] {
  const out: ForwardSpec[] = [];
  for (const e of entries) for (const part of e.split(',')) if (part.trim() !== '') out.push(parseForwardSpec(part, direction));
  checkListenConflicts(out);
  return out;
}

/** Throws when two specs would listen on the same socket (same direction side, protocol, port,
 * and the same or an every-address host). */
export function checkListenConflicts(specs: readonly ForwardSpec[]): void {
  for (let i = 0; i < specs.length; i++) {
    for (let j = 0; j < i; j++) {
      const a = specs[i]!;
      const b = specs[j]!;
      if (a.direction !== b.direction || a.protocol !== b.protocol || a.listenPort !== b.listenPort) continue;
      if (a.listenHost === b.listenHost || a.listenHost === '' || b.listenHost === '') {
        throw new ForwardSpecError(`${directionKey(a.direction)} "${a.text}" listens on the same ${a.protocol} port as "${b.text}": use another port`);
      }
    }
  }
}

function hostText(host: string): string {
  return isIP(host) === 6 ? `[${host}]` : host;
}

function parsePort(text: string, what: string, bad: (why: string) => never): number {
  if (!/^\d{1,5}$/.test(text) || Number(text) < 1 || Number(text) > 65535) bad(`${what} "${text}" is not a port number from 1 to 65535`);
  return Number(text);
}

function splitListen(text: string, bad: (why: string) => never): { host: string | null; port: number } {
  if (/^\d+$/.test(text)) return { host: null, port: parsePort(text, 'listen port', bad) };
  const hp = splitHostPort(text);
  if (!hp) return bad(`listen side "${text}" is not [host:]port`);
  const host = hp.host;
  if (isIP(host) === 0) bad(`listen host "${host}" is not an IP address (listen hosts are addresses, e.g. 127.0.0.1 or [::1])`);
  if (isIP(host) === 6 && !hp.bracketed) bad(`put the IPv6 listen address in brackets: [${host}]:${hp.port}`);
  return { host: host === '0.0.0.0' || host === '::' ? '' : host, port: parsePort(hp.port, 'listen port', bad) };
}

function splitTarget(text: string, bad: (why: string) => never): { host: string; port: number } {
  const hp = splitHostPort(text);
  if (!hp || hp.host === '') return bad(`target "${text}" is not host:port`);
  const v = isIP(hp.host);
  if (v === 6 && !hp.bracketed) bad(`put the IPv6 target address in brackets: [${hp.host}]:${hp.port}`);
  if (v === 0 && (hp.bracketed || !HOSTNAME_RE.test(hp.host))) bad(`target host "${hp.host}" is neither an IP address nor a host name`);
  if (v === 0 && /^[0-9.]+$/.test(hp.host)) bad(`target host "${hp.host}" is not a valid IPv4 address`);
  if (hp.host === '0.0.0.0' || hp.host === '::') bad(`target host ${hp.host} is not an address one can connect to`);
  return { host: hp.host, port: parsePort(hp.port, 'target port', bad) };
}

function splitHostPort(text: string): { host: string; port: string; bracketed: boolean } | null {
  if (text.startsWith('[')) {
    const close = text.indexOf(']');
    if (close < 0 || text[close + 1] !== ':') return null;
    return { host: text.slice(1, close), port: text.slice(close + 2), bracketed: true };
  }
  const colon = text.lastIndexOf(':');
  if (colon < 0) return null;
  return { host: text.slice(0, colon), port: text.slice(colon + 1), bracketed: false };
}
