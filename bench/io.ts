// Packet I/O rates of the native addon paths (rough numbers; not a test):
//   udp-batch   UdpBind.sendBatch -> receiveBatch on loopback, 64 datagrams per call, one thread
//   udp-gso     the same with sendSegments (UDP GSO: one sendmsg per 64 segments)
//   udp-sticky, udp-gso-sticky   the same two to an endpoint with a sticky source address
//               (IP_PKTINFO on every message); the receiver reads each datagram's local address
//               in all four (compare with an addon built before sticky sources via MESHTUN_NATIVE)
//   udp-dgram   the node:dgram fallback (DgramUdpBind), event-driven
//   tun         a LinuxTun read -> write reflector: a generator in a network namespace sends UDP
//               through the TUN as fast as it can; the bench reads packets in batches, swaps the
//               addresses and ports (checksums stay valid) and writes them back
// Run (root for tun): npx tsc -p . && node dist/bench/io.js [udp|tun|all] [seconds] [payload-bytes]
// Internal: node dist/bench/io.js --generate <host> <port> <seconds> <payload-bytes>

import { execFileSync, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { Endpoint } from '../src/wireguard/index.js';
import {
  DgramUdpBind, UdpBind, UDP_BATCH_SIZE, defaultEndpointPool, parseEndpoint, sourceRecord, udpNativeUnavailable,
} from '../src/transport/index.js';
import { LinuxTun, tunNativeUnavailable } from '../src/tun/index.js';

const BATCH = UDP_BATCH_SIZE;
const BUF = 2048;

function report(name: string, packets: number, bytes: number, seconds: number, extra = ''): void {
  const pps = packets / seconds;
  console.log(`${name.padEnd(15)} ${(pps / 1000).toFixed(0).padStart(6)} kpps  ${((bytes * 8) / seconds / 1e9).toFixed(2).padStart(6)} Gbit/s  ${extra}`);
}

function batchOf(payload: number): { bufs: Buffer[]; offsets: Uint32Array; sizes: Uint32Array } {
  return {
    bufs: Array.from({ length: BATCH }, (_, i) => Buffer.alloc(BUF, i)),
    offsets: new Uint32Array(BATCH),
    sizes: new Uint32Array(BATCH).fill(payload),
  };
}

async function benchUdpNative(seconds: number, payload: number, gso: boolean, sticky: boolean): Promise<void> {
  const a = new UdpBind(), b = new UdpBind();
  await a.open(0);
  const plain = parseEndpoint(`127.0.0.1:${await b.open(0)}`)!;
  const to = sticky ? defaultEndpointPool.withSource(plain, sourceRecord('127.0.0.1')!, 0) : plain;
  const out = batchOf(payload);
  const inBufs = Array.from({ length: BATCH }, () => Buffer.alloc(BUF));
  const sizes = new Uint32Array(BATCH);
  const eps: (Endpoint | null)[] = new Array(BATCH).fill(null);
  let received = 0, bytes = 0, sent = 0;
  const start = performance.now(), end = start + seconds * 1000;
  let now = start;
  while (now < end) {
    for (let k = 0; k < 16; k++) {
      sent += gso ? a.sendSegments(out.bufs, out.offsets, out.sizes, BATCH, payload, to) : a.sendBatch(out.bufs, out.offsets, out.sizes, BATCH, to);
      let n;
      while ((n = b.receiveBatch(inBufs, sizes, eps)) > 0) {
        received += n;
        for (let i = 0; i < n; i++) bytes += sizes[i]!;
      }
    }
    now = performance.now();
  }
  const lost = sent - received;
  report(`${gso ? 'udp-gso' : 'udp-batch'}${sticky ? '-sticky' : ''}`, received, bytes, (now - start) / 1000,
    `(${payload}-byte payloads, ${BATCH}/call${gso ? `, GSO ${a.gsoSupported ? 'on' : 'unavailable: plain batches'}` : ''}` +
    `${sticky ? `, ${a.stickyEnabled ? `${a.stats.stickySent} from a sticky source` : 'no sticky sources in this addon'}` : ''}, ${lost} lost)`);
  a.close();
  b.close();
}

async function benchUdpDgram(seconds: number, payload: number): Promise<void> {
  const a = new DgramUdpBind(), b = new DgramUdpBind();
  await a.open(0);
  const to = parseEndpoint(`127.0.0.1:${await b.open(0)}`)!;
  const out = batchOf(payload);
  const inBufs = Array.from({ length: BATCH }, () => Buffer.alloc(BUF));
  const sizes = new Uint32Array(BATCH);
  const eps: (Endpoint | null)[] = new Array(BATCH).fill(null);
  let received = 0, bytes = 0, inFlight = 0;
  const start = performance.now();
  await new Promise<void>((resolve) => {
    const pump = () => {
      if (performance.now() - start > seconds * 1000) { resolve(); return; }
      // Keep a few batches in flight so neither side idles.
      while (inFlight < 4 * BATCH) inFlight += a.sendBatch(out.bufs, out.offsets, out.sizes, BATCH, to);
    };
    b.start(() => {
      let n;
      while ((n = b.receiveBatch(inBufs, sizes, eps)) > 0) {
        received += n;
        inFlight -= n;
        for (let i = 0; i < n; i++) bytes += sizes[i]!;
      }
      pump();
    });
    pump();
    // Datagrams lost on loopback would stall the pump: top it up periodically.
    const t = setInterval(() => { inFlight = 0; pump(); }, 50);
    setTimeout(() => { clearInterval(t); resolve(); }, seconds * 1000 + 100);
  });
  report('udp-dgram', received, bytes, (performance.now() - start) / 1000, `(${payload}-byte payloads, node:dgram fallback)`);
  a.close();
  b.close();
}

/** The generator run inside the namespace: sends UDP batches as fast as the socket takes them. */
async function generate(host: string, port: number, seconds: number, payload: number): Promise<void> {
  const a = new UdpBind({ socketBuffer: 1 << 20 });
  await a.open(0);
  const to = parseEndpoint(`${host}:${port}`)!;
  const out = batchOf(payload);
  let sent = 0;
  const end = performance.now() + seconds * 1000;
  while (performance.now() < end) for (let k = 0; k < 8; k++) sent += a.sendBatch(out.bufs, out.offsets, out.sizes, BATCH, to);
  console.log(`sent ${sent}`);
  a.close();
}

const IPV4_SRC = 12, IPV4_DST = 16;

async function benchTun(seconds: number, payload: number): Promise<void> {
  const tag = `mtb${process.pid % 100000}`;
  const ns = `${tag}ns`;
  const sh = (...args: string[]) => execFileSync('ip', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  sh('netns', 'add', ns);
  const tun = LinuxTun.open(tag, 1500);
  try {
    sh('link', 'set', tag, 'netns', ns);
    sh('-n', ns, 'link', 'set', 'lo', 'up');
    sh('-n', ns, 'addr', 'add', '100.64.91.1/24', 'dev', tag);
    sh('-n', ns, 'link', 'set', tag, 'txqueuelen', '1000', 'up');
    const bufs = Array.from({ length: BATCH }, () => Buffer.alloc(16 + BUF));
    const sizes = new Uint32Array(BATCH), offsets = new Uint32Array(BATCH).fill(16);
    let read = 0, written = 0, batches = 0;
    tun.start(() => {
      let n;
      while ((n = tun.readBatch(bufs, sizes, 16)) > 0) {
        read += n;
        batches++;
        for (let i = 0; i < n; i++) {
          const p = bufs[i]!;
          if (p[16]! >> 4 !== 4) continue;
          // Swap IPv4 addresses and UDP/TCP ports: every checksum stays valid.
          const s = p.readUInt32BE(16 + IPV4_SRC);
          p.writeUInt32BE(p.readUInt32BE(16 + IPV4_DST), 16 + IPV4_SRC);
          p.writeUInt32BE(s, 16 + IPV4_DST);
          const l4 = 16 + (p[16]! & 15) * 4;
          const sp = p.readUInt16BE(l4);
          p.writeUInt16BE(p.readUInt16BE(l4 + 2), l4);
          p.writeUInt16BE(sp, l4 + 2);
        }
        written += tun.writeBatch(bufs, offsets, sizes, n);
      }
    });
    const self = fileURLToPath(import.meta.url);
    const gen = spawn('ip', ['netns', 'exec', ns, process.execPath, self, '--generate', '100.64.91.2', '9', String(seconds), String(payload)], { stdio: ['ignore', 'pipe', 'inherit'] });
    let genOut = '';
    gen.stdout.on('data', (d: Buffer) => { genOut += d.toString(); });
    const t0 = performance.now();
    await new Promise((r) => gen.once('exit', r));
    const secs = (performance.now() - t0) / 1000;
    const sent = Number(/sent (\d+)/.exec(genOut)?.[1] ?? 0);
    report('tun', read, read * (payload + 28), secs,
      `(read->swap->write of ${payload + 28}-byte IPv4/UDP packets; ${(read / Math.max(batches, 1)).toFixed(1)} packets per read call; ` +
      `${written} written; generator sent ${sent}, the rest dropped by the TUN queue)`);
  } finally {
    tun.close();
    try { sh('netns', 'del', ns); } catch { /* already gone */ }
  }
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  if (args[0] === '--generate') {
    await generate(args[1]!, Number(args[2]), Number(args[3]), Number(args[4]));
    return;
  }
  const what = args[0] ?? 'all';
  const seconds = Number(args[1] ?? '3');
  const payload = Number(args[2] ?? '1400');
  if (what === 'udp' || what === 'all') {
    if (udpNativeUnavailable()) console.log(`udp-batch/udp-gso skipped: ${udpNativeUnavailable()}`);
    else {
      for (const sticky of [false, true]) {
        await benchUdpNative(seconds, payload, false, sticky);
        await benchUdpNative(seconds, payload, true, sticky);
      }
    }
    await benchUdpDgram(seconds, payload);
  }
  if (what === 'tun' || what === 'all') {
    if (tunNativeUnavailable()) console.log(`tun skipped: ${tunNativeUnavailable()}`);
    else if (process.getuid?.() !== 0) console.log('tun skipped: needs root');
    else await benchTun(seconds, payload);
  }
}

await main();
