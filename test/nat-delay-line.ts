// A delay line for NAT-topology tests: `node dist/test/nat-delay-line.js <tun name> <ms>`, run
// inside a namespace (NatLab starts it; see test/nat-topology.ts for the routing around it).
//
// This kernel has no netem (no sch_netem, no tc delay) and nftables cannot hold a packet, so
// latency is added in user space: the program opens a TUN interface, and policy routing sends
// the packets to be delayed into it. Every IPv4/IPv6 packet read from the TUN is written back
// into the same TUN `ms` milliseconds later; the kernel then routes it again, now with the TUN
// as its input interface, and it leaves by the ordinary routes. The delay is constant, so one
// FIFO queue and one timer (for its head) keep the order; no packet is dropped unless more
// than QUEUE_LIMIT wait. A new delay (a number on a line of stdin) applies to packets read from
// then on. Prints "ready <name>" once the TUN is open; exits when stdin closes or the TUN goes.

import { createInterface } from 'node:readline';
import { LinuxTun } from '../src/tun/index.js';

const BATCH = 64;
const MTU = 1500;
const QUEUE_LIMIT = 4096;

const [name, msText] = process.argv.slice(2);
let delayMs = Number(msText);
if (!name || !Number.isFinite(delayMs) || delayMs < 0) {
  process.stderr.write('usage: nat-delay-line <tun name> <delay ms>\n');
  process.exit(2);
}

const tun = LinuxTun.open(name, MTU);
const bufs = Array.from({ length: BATCH }, () => Buffer.alloc(MTU));
const sizes = new Uint32Array(BATCH);
const queue: { due: number; packet: Buffer }[] = [];
const one: Buffer[] = [Buffer.alloc(0)];
const zeroOffset = new Uint32Array(1);
const oneSize = new Uint32Array(1);
let timer: NodeJS.Timeout | null = null;
let dropped = 0;

function now(): number {
  return performance.now();
}

function flush(): void {
  timer = null;
  const t = now();
  while (queue.length && queue[0]!.due <= t) {
    const { packet } = queue.shift()!;
    one[0] = packet;
    oneSize[0] = packet.length;
    tun.writeBatch(one, zeroOffset, oneSize, 1);
  }
  arm();
}

function arm(): void {
  if (timer || !queue.length) return;
  timer = setTimeout(flush, Math.max(0, queue[0]!.due - now()));
}

tun.start(() => {
  for (;;) {
    const n = tun.readBatch(bufs, sizes, 0);
    if (n === 0) break;
    const due = now() + delayMs;
    for (let i = 0; i < n; i++) {
      if (queue.length >= QUEUE_LIMIT) { dropped++; continue; }
      queue.push({ due, packet: Buffer.from(bufs[i]!.subarray(0, sizes[i]!)) });
    }
  }
  if (delayMs === 0) flush();
  else arm();
});
tun.onGone(() => process.exit(0));

createInterface({ input: process.stdin }).on('line', (line) => {
  const ms = Number(line.trim());
  if (Number.isFinite(ms) && ms >= 0) delayMs = ms;
  process.stdout.write(`delay ${delayMs} dropped ${dropped}\n`);
}).on('close', () => { tun.close(); process.exit(0); });

process.stdout.write(`ready ${tun.name}\n`);
