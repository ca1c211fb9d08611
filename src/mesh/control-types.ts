// The control channel's wire vocabulary, shared by the node's client (mesh) and the coordinator's
// server (control imports it from here, since mesh may not import control): paths, header names,
// the JSON messages, and the framing of encrypted messages. docs/control-protocol.md has the full
// protocol; in short:
//
//   record  = length (u32 BE, of what follows) | counter (u64 LE) | ChaCha20-Poly1305(JSON) + tag
//
// The key is the Noise session key of the direction; the nonce is WireGuard's (32 zero bits then
// the counter); the associated data is the purpose of the frame ("node:/v1/register",
// "coordinator:/v1/map" ...), so a frame cannot be moved to another endpoint or direction. The
// sender counts up from 0; the receiver accepts each counter once, within WireGuard's replay
// window (HTTP/2 streams of one connection may be read slightly out of order), and only after the
// tag verified. A frame that does not open is dropped and never throws.
import { aeadSeal, aeadOpen, AEAD_TAG_SIZE } from '../crypto/index.js';
import { ReplayFilter } from '../wireguard/index.js';
import type { NatType } from './stun.js';

export const CONTROL_PATH_HANDSHAKE = '/v1/handshake';
export const CONTROL_PATH_REGISTER = '/v1/register';
export const CONTROL_PATH_MAP = '/v1/map';
export const CONTROL_PATH_REPORT = '/v1/report';
/** "Call me maybe": asks the coordinator to tell a peer to sweep its paths toward this node now. */
export const CONTROL_PATH_CALL = '/v1/call';
/** Request header naming the Noise session (8 hex digits, the coordinator's handshake index). */
export const CONTROL_SESSION_HEADER = 'meshtun-session';
/** GET /v1/map carries its (encrypted) request frame base64-encoded in this header. */
export const CONTROL_FRAME_HEADER = 'meshtun-frame';
export const CONTROL_CONTENT_TYPE = 'application/x-meshtun-frames';
export const CONTROL_HANDSHAKE_CONTENT_TYPE = 'application/x-wireguard-handshake';

export const FRAME_LENGTH_SIZE = 4;
export const FRAME_COUNTER_SIZE = 8;
export const FRAME_HEADER_SIZE = FRAME_LENGTH_SIZE + FRAME_COUNTER_SIZE;
/** The largest record body accepted (counter + ciphertext + tag): a map of thousands of nodes. */
export const MAX_FRAME_BODY = 8 * 1024 * 1024;
/** The largest answer that is not frames (a handshake response, a plain JSON error) a node reads. */
export const MAX_PLAIN_ANSWER = 64 * 1024;
const TWO_POW_32 = 0x1_0000_0000;

/** Who sends a frame: part of its associated data. */
export type ControlSide = 'node' | 'coordinator';

/** The associated data of a frame sent by `side` on `path`. */
export function framePurpose(side: ControlSide, path: string): Buffer {
  return Buffer.from(`meshtun-control ${side}:${path}`);
}

// --- messages ---

export interface ControlMapNode {
  id: string;
  name: string;
  /** Base64 public key. */
  publicKey: string;
  ipv4: string;
  ipv6: string;
  tags: string[];
  endpoints: string[];
  /** Approved subnet routes (no exit routes). */
  routes: string[];
  exitNode: boolean;
  allowedIps: string[];
  /** Id of the node to reach this one through, when the two cannot reach each other directly
   * (multi-hop); absent or null: directly. */
  via?: string | null;
  /** What the node found out about its NAT with STUN (stun.ts): "none" when servers saw its own
   * address (it may serve STUN to others as a second server), else the NAT's mapping or
   * "unknown"; absent from coordinators older than endpoint discovery (read as unknown). */
  nat?: NatType;
  /** The node relays for others; its stream transports (HTTPS: MASQUE CONNECT-UDP on this TLS
   * port; TCP: framed datagrams on this port), reached at the node's endpoint addresses. */
  relay?: { https?: number; tcp?: number } | null;
}

/** A node's view of its direct path to a peer: heard from on it, or never answered. */
export type PathState = 'direct' | 'failed';

/** The network map as the coordinator sends it (the same shape as control's NetworkMap). */
export interface ControlNetworkMap {
  version: number;
  /** `discoveryKey`: 32 bytes (base64) keying the network's LAN beacons (lan-beacon.ts); absent
   * from coordinators older than LAN discovery (no beacons then). */
  network: { id: string; name: string; ipv4Pool: string; ulaPrefix: string; discoveryKey?: string };
  self: ControlMapNode;
  peers: ControlMapNode[];
  /** The network's ACL policy text (acl/policy.ts format) and its version; null or absent: none. */
  policy?: { text: string; version: number } | null;
  /** Multi-hop paths this node relays on (node ids, end to end, this node strictly inside):
   * a relay forwards frames only between two nodes of a path, and only along it. */
  relayPaths?: string[][];
}

/** POST /v1/register request. The node's key is the Noise static key of the session. */
export interface RegisterRequest {
  token: string;
  name?: string | null;
  hostname?: string | null;
  endpoints?: string[];
  advertisedRoutes?: string[];
}

/** An error answer (register refusals, bad requests). `retryAfterMs` is 0 when retrying now is fine. */
export interface ControlErrorReply {
  error: string;
  reason: string;
  retryAfterMs: number;
}

export interface RegisterReply {
  node: { id: string; name: string; ipv4: string; ipv6: string; networkId: string };
  map: ControlNetworkMap;
  rejoined: boolean;
}

/** POST /v1/report request. */
export interface ReportRequest {
  endpoints?: string[];
  advertisedRoutes?: string[];
  /** Direct path state per peer node id (peers still being tried are left out). */
  paths?: Record<string, PathState>;
  /** The node's NAT type from its latest STUN probe (ControlMapNode.nat). */
  nat?: NatType;
  /** The node offers relaying for pairs that cannot reach each other (`meshtun up --relay`). */
  relay?: boolean;
  /** Where it serves the stream transports for members without UDP (issue 11). */
  relayPorts?: { https?: number; tcp?: number };
  /** Round-trip times (ms) of the node's direct paths, per peer node id (relays are chosen by them). */
  rtts?: Record<string, number>;
}

export interface ReportReply {
  ok: true;
  version: number;
}

/** GET /v1/map request frame: the version the node already holds (0: none). */
export interface MapRequest {
  version: number;
}

/** POST /v1/call request: the peer (node id) that should sweep toward the caller. */
export interface CallRequest {
  peer: string;
}

/** Frames of the GET /v1/map stream. */
export type MapStreamMessage =
  | { type: 'map'; map: ControlNetworkMap }
  | { type: 'keepalive'; version: number }
  | { type: 'removed'; message: string }
  /** A peer (node id `from`) asks this node to sweep its paths toward it now (hole punching). */
  | { type: 'call'; from: string };

// --- framing ---

/** One direction pair of a Noise session: seals outgoing frames, opens incoming ones. */
export class ControlCipher {
  private sendCounter = 0;
  private readonly replay = new ReplayFilter();
  private readonly sendKey: Buffer;
  private readonly receiveKey: Buffer;
  /** Frames refused (bad tag, replayed counter, bad JSON). */
  rejected = 0;

  constructor(sendKey: Uint8Array, receiveKey: Uint8Array, readonly localSide: ControlSide) {
    this.sendKey = Buffer.from(sendKey);
    this.receiveKey = Buffer.from(receiveKey);
  }

  private get remoteSide(): ControlSide {
    return this.localSide === 'node' ? 'coordinator' : 'node';
  }

  /** A whole record (length, counter, sealed JSON) for `msg` sent on `path`. */
  seal(path: string, msg: unknown): Buffer {
    const counter = this.sendCounter++;
    const sealed = aeadSeal(this.sendKey, counter, Buffer.from(JSON.stringify(msg)), framePurpose(this.localSide, path));
    const out = Buffer.allocUnsafe(FRAME_HEADER_SIZE + sealed.length);
    out.writeUInt32BE(FRAME_COUNTER_SIZE + sealed.length, 0);
    out.writeUInt32LE(counter >>> 0, FRAME_LENGTH_SIZE);
    out.writeUInt32LE(Math.floor(counter / TWO_POW_32) >>> 0, FRAME_LENGTH_SIZE + 4);
    sealed.copy(out, FRAME_HEADER_SIZE);
    return out;
  }

  /** Opens a record body (counter + sealed) received on `path`: the JSON value, or undefined when
   * the tag does not verify, the counter was seen, or the payload is not JSON. Never throws. */
  open(path: string, body: Buffer): unknown {
    if (body.length < FRAME_COUNTER_SIZE + AEAD_TAG_SIZE) return this.reject();
    const lo = body.readUInt32LE(0);
    const hi = body.readUInt32LE(4);
    const plain = aeadOpen(this.receiveKey, hi * TWO_POW_32 + lo, body.subarray(FRAME_COUNTER_SIZE), framePurpose(this.remoteSide, path));
    if (!plain || !this.replay.validate(lo, hi)) return this.reject();
    try {
      return JSON.parse(plain.toString('utf8'));
    } catch {
      return this.reject();
    }
  }

  private reject(): undefined {
    this.rejected++;
    return undefined;
  }

  wipe(): void {
    this.sendKey.fill(0);
    this.receiveKey.fill(0);
  }
}

/** Splits a byte stream into record bodies (counter + sealed). Never throws. */
export class FrameReader {
  private buf: Buffer = Buffer.alloc(0);
  /** Set when a record announced a length over MAX_FRAME_BODY: the stream is unusable. */
  broken = false;

  /** Appends a chunk; returns the complete record bodies now available. */
  push(chunk: Buffer): Buffer[] {
    if (this.broken) return [];
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    const out: Buffer[] = [];
    let off = 0;
    while (this.buf.length - off >= FRAME_LENGTH_SIZE) {
      const len = this.buf.readUInt32BE(off);
      if (len > MAX_FRAME_BODY || len < FRAME_COUNTER_SIZE) {
        this.broken = true;
        this.buf = Buffer.alloc(0);
        return out;
      }
      if (this.buf.length - off - FRAME_LENGTH_SIZE < len) break;
      out.push(Buffer.from(this.buf.subarray(off + FRAME_LENGTH_SIZE, off + FRAME_LENGTH_SIZE + len)));
      off += FRAME_LENGTH_SIZE + len;
    }
    this.buf = off === 0 ? this.buf : Buffer.from(this.buf.subarray(off));
    return out;
  }

  /** Bytes held of an incomplete record. */
  get pending(): number {
    return this.buf.length;
  }
}

/** True when `v` looks like a ControlErrorReply. */
export function isControlError(v: unknown): v is ControlErrorReply {
  return typeof v === 'object' && v !== null && typeof (v as ControlErrorReply).error === 'string' && typeof (v as ControlErrorReply).reason === 'string';
}
