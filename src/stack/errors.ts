// Errors the stack's sockets report for network outcomes (not user mistakes, which throw
// UserError): each carries a node-style `code` (ETIMEDOUT, ECONNREFUSED, ...) so code written for
// node:net and node:dgram can handle them the same way.

import type { IcmpErrorInfo } from './types.js';

/** Thrown or emitted when the network answered with an error or not at all. `code` is a
 * node-style errno name; `address`/`port` name the remote end when there is one. */
export class StackError extends Error {
  override name = 'StackError';
  constructor(readonly code: string, message: string, readonly address?: string, readonly port?: number) {
    super(message);
  }
}

/** The errno name node reports for each kind of ICMP error. */
export function icmpErrorCode(kind: IcmpErrorInfo['kind']): string {
  switch (kind) {
    case 'port-unreachable': return 'ECONNREFUSED';
    case 'host-unreachable': return 'EHOSTUNREACH';
    case 'net-unreachable': return 'ENETUNREACH';
    case 'admin-prohibited': return 'EACCES';
    case 'packet-too-big': return 'EMSGSIZE';
    case 'time-exceeded': return 'EHOSTUNREACH';
    default: return 'EPROTO';
  }
}
