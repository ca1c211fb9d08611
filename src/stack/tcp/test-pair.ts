// Test helper (not exported from index.ts): two TcpLayers on a SimLink, a client (side 0,
// 100.64.0.1 or fd00::1) and a server (side 1, 100.64.0.2 or fd00::2).

import { Prng } from '../../wire/fuzz-harness.js';
import type { IpAddr, IpFamily } from '../types.js';
import type { TcpLimits } from './constants.js';
import { TcpLayer } from './layer.js';
import { SimClock, SimLink, PERFECT_LINK, type LinkConditions } from './sim-link.js';

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
