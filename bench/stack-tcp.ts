// Goodput of the userspace TCP: two TcpLayers joined by a lossless in-memory link on one thread,
// one connection streaming one way (the receiver only counts bytes), for a few MTUs.
// Run: npm run bench:stack-tcp   (or, after a build: node dist/bench/stack-tcp.js [seconds-per-case])
//
// The link copies each packet into a preallocated slot (as an IP layer would) and delivers the
// queue from setImmediate, so both layers process packets in batches and socket events run between
// batches, as they would on a real event loop. Reported per case: goodput (application bytes per
// second), CPU time per GB of goodput (user+system from process.cpuUsage; one thread does both
// ends, so this is the cost of sending plus receiving), segments per second, and young-generation
// garbage collections per second (the data path allocates one small Buffer.copy view per copy and
// one Buffer per chunk handed to the reading stream).

import { PerformanceObserver, constants as perfConstants } from 'node:perf_hooks';
import { systemClock } from '../src/wireguard/clock.js';
import { TcpLayer } from '../src/stack/tcp/index.js';
import type { IpAddr, IpFamily, IpOutput } from '../src/stack/types.js';

const SECONDS = Number(process.argv[2] ?? '4');
const WARMUP_SECONDS = 1;
const CHUNK = 256 * 1024;
/** Memory for packets in flight on the link (slots of one MTU each). */
const LINK_BYTES = 32 << 20;
const CLIENT = 0x64400001;
const SERVER = 0x64400002;
const PORT = 5201;

interface Slot { to: TcpLayer | null; family: IpFamily; src: IpAddr; dst: IpAddr; buf: Buffer; len: number }

/** A lossless link: a ring of packet slots delivered in order from setImmediate. */
class MemoryLink {
  private readonly slots: Slot[] = [];
  private readonly size: number;
  private head = 0;
  private count = 0;
  private scheduled = false;
  packets = 0;
  dropped = 0;
  readonly layers: TcpLayer[] = [];
  private readonly flush = (): void => this.deliver();

  constructor(private readonly mtu: number) {
    this.size = Math.ceil(LINK_BYTES / mtu);
    for (let i = 0; i < this.size; i++) this.slots.push({ to: null, family: 4, src: 0, dst: 0, buf: Buffer.alloc(mtu), len: 0 });
  }

  output(side: number): IpOutput {
    return {
      sendIp: (family, src, dst, _protocol, buf, off, len) => {
        if (this.count === this.size) {
          this.dropped++;
          return false;
        }
        const s = this.slots[(this.head + this.count) % this.size]!;
        this.count++;
        s.to = this.layers[1 - side]!;
        s.family = family;
        s.src = src;
        s.dst = dst;
        buf.copy(s.buf, 0, off, off + len);
        s.len = len;
        if (!this.scheduled) {
          this.scheduled = true;
          setImmediate(this.flush);
        }
        return true;
      },
      mtu: () => this.mtu,
    };
  }

  private deliver(): void {
    this.scheduled = false;
    let n = this.count;
    while (n-- > 0) {
      const s = this.slots[this.head]!;
      this.head = (this.head + 1) % this.size;
      this.count--;
      this.packets++;
      s.to!.input(s.family, s.src, s.dst, s.buf, 0, s.len);
    }
  }
}

interface Result { goodput: number; cpuPerGb: number; pps: number; retransmits: number; minorGcPerSec: number }

let minorGcs = 0;
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) {
    if ((e as unknown as { detail?: { kind?: number } }).detail?.kind === perfConstants.NODE_PERFORMANCE_GC_MINOR) minorGcs++;
  }
}).observe({ entryTypes: ['gc'] });

async function runCase(mtu: number, seconds: number): Promise<Result> {
  const link = new MemoryLink(mtu);
  const limits = { sendBufferSize: 4 << 20, receiveBufferSize: 4 << 20, maxOutOfOrderBytes: 4 << 20 };
  const client = new TcpLayer({ clock: systemClock, output: link.output(0), limits });
  const server = new TcpLayer({ clock: systemClock, output: link.output(1), limits });
  link.layers.push(client, server);
  let received = 0;
  const listener = server.listen(4, null, PORT);
  listener.on('connection', (s) => {
    s.on('data', (d: Buffer) => { received += d.length; });
    s.on('error', () => {});
  });
  const sock = client.connect({ family: 4, localAddr: CLIENT, remoteAddr: SERVER, remotePort: PORT, noDelay: true });
  sock.on('error', (e) => { throw e; });
  await new Promise<void>((resolve) => sock.once('connect', () => resolve()));
  const chunk = Buffer.alloc(CHUNK, 0x5a);
  let writing = true;
  const pump = (): void => {
    while (writing && sock.write(chunk)) { /* fill until back-pressure */ }
  };
  sock.on('drain', pump);
  pump();
  // Warm up, then measure.
  await new Promise((r) => setTimeout(r, WARMUP_SECONDS * 1000));
  const r0 = received;
  const p0 = link.packets;
  const g0 = minorGcs;
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  await new Promise((r) => setTimeout(r, seconds * 1000));
  const dt = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(c0);
  const bytes = received - r0;
  writing = false;
  sock.destroy();
  listener.close();
  client.close();
  server.close();
  return {
    goodput: bytes / dt,
    cpuPerGb: ((cpu.user + cpu.system) / 1e6) / (bytes / 1e9),
    pps: (link.packets - p0) / dt,
    retransmits: client.counters.retransmittedSegments,
    minorGcPerSec: (minorGcs - g0) / dt,
  };
}

async function main(): Promise<void> {
  console.log(`userspace TCP over a lossless memory link, one connection, one thread, ${SECONDS} s per case`);
  for (const mtu of [1500, 9000, 65535]) {
    const r = await runCase(mtu, SECONDS);
    console.log(
      `mtu ${String(mtu).padStart(5)}  goodput ${(r.goodput / 1e6).toFixed(1).padStart(7)} MB/s ` +
      `(${((r.goodput * 8) / 1e9).toFixed(2)} Gbit/s)  cpu ${r.cpuPerGb.toFixed(2).padStart(6)} s/GB  ` +
      `${(r.pps / 1000).toFixed(0).padStart(5)} kpkt/s  ${r.minorGcPerSec.toFixed(1).padStart(5)} minor GC/s  retransmits ${r.retransmits}`,
    );
  }
}

void main();
