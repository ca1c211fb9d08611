// Test helper (not exported from index.ts): two TcpLayers on a SimLink, a client (side 0,
// 100.64.0.1 or fd00::1) and a server (side 1, 100.64.0.2 or fd00::2).

import { Prng } from '../../wire/fuzz-harness.js';
import type { IpAddr, IpFamily } from '../types.js';
import { TcpRepr, parseTcp, emitTcp, tcpHeaderLength } from '../../wire/tcp.js';
import { pseudoHeaderSumV4, pseudoHeaderSumV6 } from '../../wire/checksum.js';
import { Status } from '../../wire/status.js';
import { IP_PROTO_TCP, type TcpLimits } from './constants.js';
import { TcpLayer, type ConnectOptions } from './layer.js';
import type { TcpListener } from './listener.js';
import type { TcpSocket } from './socket.js';
import { SimClock, SimLink, PERFECT_LINK, runUntil, type LinkConditions } from './sim-link.js';

export const V4_CLIENT = 0x64400001;
export const V4_SERVER = 0x64400002;
export const V6_CLIENT = Uint8Array.from([0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
export const V6_SERVER = Uint8Array.from([0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]);

export interface Pair {
  clock: SimClock;
  link: SimLink;
  client: TcpLayer;
  server: TcpLayer;
  family: IpFamily;
  clientAddr: IpAddr;
  serverAddr: IpAddr;
}

export interface PairOptions {
  seed?: number;
  family?: IpFamily;
  cond?: Partial<LinkConditions>;
  clientLimits?: Partial<TcpLimits>;
  serverLimits?: Partial<TcpLimits>;
}

export function makePair(opts: PairOptions = {}): Pair {
  const seed = opts.seed ?? 1;
  const rng = new Prng(seed);
  const clock = new SimClock();
  const link = new SimLink(clock, rng, { ...PERFECT_LINK, ...opts.cond });
  const random32 = (): number => Math.floor(rng.next() * 4294967296) >>> 0;
  const client = new TcpLayer({ clock, output: link.output(0), limits: opts.clientLimits, random32 });
  const server = new TcpLayer({ clock, output: link.output(1), limits: opts.serverLimits, random32 });
  link.layers[0] = client;
  link.layers[1] = server;
  const family = opts.family ?? 4;
  return {
    clock, link, client, server, family,
    clientAddr: family === 4 ? V4_CLIENT : V6_CLIENT,
    serverAddr: family === 4 ? V4_SERVER : V6_SERVER,
  };
}

/** A segment seen on the link, decoded for assertions. */
export interface SeenSegment {
  at: number;
  from: number;
  flags: number;
  seq: number;
  ack: number;
  window: number;
  len: number;
  /** Options as parsed (a copy). */
  mss: number | null;
  windowScale: number | null;
  sackPermitted: boolean;
  timestamps: boolean;
  sackBlocks: number[];
}

/** Records every segment offered to the link (before loss), keeping any existing tap. */
export function recordSegments(p: Pair): SeenSegment[] {
  const seen: SeenSegment[] = [];
  const prev = p.link.tap;
  const r = new TcpRepr();
  p.link.tap = (from, family, bytes) => {
    if (parseTcp(bytes, 0, bytes.length, r, 0, false) === Status.Ok) {
      seen.push({
        at: p.clock.now(), from, flags: r.flags, seq: r.seqNumber, ack: r.ackNumber, window: r.window, len: r.payloadLength,
        mss: r.hasMss ? r.mss : null, windowScale: r.hasWindowScale ? r.windowScale : null,
        sackPermitted: r.sackPermitted, timestamps: r.hasTimestamps, sackBlocks: Array.from(r.sackBlocks.subarray(0, 2 * r.sackCount)),
      });
    }
    return prev ? prev(from, family, bytes) : 'pass';
  };
  return seen;
}

export interface Injected {
  srcPort: number;
  dstPort: number;
  seq: number;
  ack: number;
  flags: number;
  window?: number;
  payload?: Buffer;
}

/** Builds a segment as if sent by side `from` and hands it straight to the other side's layer. */
export function inject(p: Pair, from: number, s: Injected): void {
  const r = new TcpRepr();
  r.srcPort = s.srcPort;
  r.dstPort = s.dstPort;
  r.seqNumber = s.seq >>> 0;
  r.ackNumber = s.ack >>> 0;
  r.flags = s.flags;
  r.window = s.window ?? 65535;
  const payload = s.payload ?? Buffer.alloc(0);
  r.payloadLength = payload.length;
  const hl = tcpHeaderLength(r);
  const buf = Buffer.alloc(hl + payload.length);
  payload.copy(buf, hl);
  const src = from === 0 ? p.clientAddr : p.serverAddr;
  const dst = from === 0 ? p.serverAddr : p.clientAddr;
  const sum = p.family === 4
    ? pseudoHeaderSumV4(src as number, dst as number, IP_PROTO_TCP, buf.length)
    : pseudoHeaderSumV6(src as Uint8Array, 0, dst as Uint8Array, 0, IP_PROTO_TCP, buf.length);
  emitTcp(r, buf, 0, sum);
  (from === 0 ? p.server : p.client).input(p.family, src, dst, buf, 0, buf.length);
}

/** Connects a client socket to a listener on `port` and runs until both ends are established. */
export async function establish(p: Pair, port = 80, opts: { backlog?: number; clientOpts?: Partial<ConnectOptions> } = {}):
  Promise<{ client: TcpSocket; server: TcpSocket; listener: TcpListener }> {
  const listener = p.server.listen(p.family, null, port, { allowHalfOpen: true, backlog: opts.backlog });
  let server: TcpSocket | null = null;
  listener.on('connection', (s: TcpSocket) => { server = s; });
  const client = p.client.connect({
    family: p.family, localAddr: p.clientAddr, remoteAddr: p.serverAddr, remotePort: port, allowHalfOpen: true, ...opts.clientOpts,
  });
  let connected = false;
  client.once('connect', () => { connected = true; });
  const ok = await runUntil(p.link, () => connected && server !== null, 60_000);
  if (!ok) throw new Error('connection was not established');
  return { client, server: server!, listener };
}
