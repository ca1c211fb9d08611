// meshtun's own messages on the WireGuard UDP socket (ARCHITECTURE section 3): the engine hands
// every datagram that is not a WireGuard message to one handler (Engine.setDatagramHandler); this
// mux tells them apart by their first bytes and passes each to the module that speaks it:
//   STUN (RFC 8489): the two top bits of byte 0 are 0 and bytes 4-7 are the magic cookie
//     0x2112A442; the length at bytes 2-3 covers the rest (a multiple of 4);
//   discovery (disco.ts): the 8-byte magic DISCO_MAGIC.
// WireGuard messages start with a type 1-4 and three zero bytes, so none of these collide.
// Anything else stays a dropInvalidMessage of the engine.
import type { Endpoint, Engine } from '../wireguard/index.js';

export const STUN_MAGIC_COOKIE = 0x2112a442;
const STUN_HEADER_SIZE = 20;
/** First bytes of every discovery message: "MTdisco" and version 1. */
export const DISCO_MAGIC = Buffer.from('4d54646973636f01', 'hex');

export type UnderlayKind = 'stun' | 'disco';

/** What a datagram on the WireGuard socket is, when it is not WireGuard; null when neither. */
export function classifyUnderlay(buf: Buffer, len: number): UnderlayKind | null {
  if (len >= STUN_HEADER_SIZE && (buf[0]! & 0xc0) === 0 && buf.readUInt32BE(4) === STUN_MAGIC_COOKIE) {
    const bodyLen = buf.readUInt16BE(2);
    return bodyLen + STUN_HEADER_SIZE === len && (bodyLen & 3) === 0 ? 'stun' : null;
  }
  if (len >= DISCO_MAGIC.length && buf.compare(DISCO_MAGIC, 0, DISCO_MAGIC.length, 0, DISCO_MAGIC.length) === 0) return 'disco';
  return null;
}

/** A handler of one kind of underlay message: the datagram (valid until it returns) and its
 * sender's endpoint (which it may keep). */
export type UnderlayHandler = (buf: Buffer, len: number, from: Endpoint) => void;

export class UnderlayCounters {
  stun = 0;
  disco = 0;
  /** A known kind nobody handles here (e.g. STUN on a node that runs no STUN module). */
  unhandled = 0;
}

/** Dispatches the engine's non-WireGuard datagrams by kind; sends them back out the same socket. */
export class UnderlayMux {
  readonly counters = new UnderlayCounters();
  private readonly handlers = new Map<UnderlayKind, UnderlayHandler>();

  constructor(readonly engine: Engine) {
    engine.setDatagramHandler((buf, len, from) => this.dispatch(buf, len, from));
  }

  /** Sets the handler of `kind` (one per kind), or removes it with null. */
  on(kind: UnderlayKind, handler: UnderlayHandler | null): void {
    if (handler) this.handlers.set(kind, handler);
    else this.handlers.delete(kind);
  }

  /** Sends a datagram from the WireGuard socket (see Engine.sendDatagram). */
  send(buf: Buffer, off: number, len: number, to: Endpoint): boolean {
    return this.engine.sendDatagram(buf, off, len, to);
  }

  private dispatch(buf: Buffer, len: number, from: Endpoint): boolean {
    const kind = classifyUnderlay(buf, len);
    if (kind === null) return false;
    const h = this.handlers.get(kind);
    if (!h) {
      this.counters.unhandled++;
      return false;
    }
    this.counters[kind]++;
    h(buf, len, from);
    return true;
  }

  close(): void {
    this.handlers.clear();
    this.engine.setDatagramHandler(null);
  }
}
