// Per-packet cost of the ACL filter (src/mesh/acl): inbound packets of tracked flows (the common
// case: replies and established connections), inbound new flows a 50-rule policy denies (a rule
// scan), outbound packets of tracked flows, and outbound new flows into a full table (insert plus
// eviction). Prints packets per second and bytes allocated per packet.
// Run: node dist/bench/acl.js [seconds-per-case]   (after npx tsc -p .)
//
// Allocation: the young generation's used bytes (new_space) before and after a loop that saw no
// garbage collection (watched through a PerformanceObserver on 'gc' entries); every short-lived
// allocation lands there, so the difference is what the loop allocated.

import { PerformanceObserver, performance } from 'node:perf_hooks';
import { getHeapSpaceStatistics } from 'node:v8';
import { Ipv4Repr, emitIpv4, Ipv6Repr, emitIpv6, IpProtocol, parseIpv4Address, parseIpv6Address } from '../src/wire/index.js';
import { AclFilter, compilePolicy, parsePolicy, type AclNode } from '../src/mesh/acl/index.js';

const SECONDS = Number(process.argv[2] ?? '2');
const FLOWS = 4096;
const PAYLOAD = 1380;
const CHUNK = 10_000;
const ALLOC_PACKETS = 200_000;

function tcp4(src: string, dst: string, sport: number, dport: number, flags: number, payload = PAYLOAD): Buffer {
  const r = new Ipv4Repr();
  r.src = parseIpv4Address(src)!;
  r.dst = parseIpv4Address(dst)!;
  r.protocol = IpProtocol.Tcp;
  r.payloadLength = 20 + payload;
  const b = Buffer.alloc(20 + r.payloadLength);
  emitIpv4(r, b, 0);
  b.writeUInt16BE(sport, 20);
  b.writeUInt16BE(dport, 22);
  b[32] = 5 << 4;
  b[33] = flags;
  return b;
}

function udp6(src: string, dst: string, sport: number, dport: number, payload = PAYLOAD): Buffer {
  const r = new Ipv6Repr();
  parseIpv6Address(src, r.src);
  parseIpv6Address(dst, r.dst);
  r.nextHeader = IpProtocol.Udp;
  r.payloadLength = 8 + payload;
  const b = Buffer.alloc(40 + r.payloadLength);
  emitIpv6(r, b, 0);
  b.writeUInt16BE(sport, 40);
  b.writeUInt16BE(dport, 42);
  b.writeUInt16BE(8 + payload, 44);
  return b;
}

// A network of 200 nodes and a 50-rule policy, none of which allows what the "denied" case sends.
const nodes: AclNode[] = [];
for (let i = 1; i <= 200; i++) nodes.push({ name: `node-${i}`, addresses: [`100.64.${i >> 8}.${i & 255}`, `fd00::${i.toString(16)}`], tags: [`t${i % 10}`] });
const tags = Array.from({ length: 10 }, (_, i) => `"tag:t${i}"`).join(', ');
const rules: string[] = [];
for (let i = 0; i < 50; i++) rules.push(`{ "src": ["tag:t${i % 10}"], "dst": ["tag:t${(i + 1) % 10}:${1000 + i}"], "proto": "tcp" }`);
const policy = compilePolicy(parsePolicy(`{ "tags": [${tags}], "acls": [${rules.join(',\n')}] }`, 'bench'), nodes);

interface Case { name: string; bytes: number; run: (n: number) => number }

function ring(pkts: Buffer[], fn: (p: Buffer) => boolean): (n: number) => number {
  const mask = pkts.length - 1;
  return (n) => {
    let ok = 0;
    for (let i = 0; i < n; i++) if (fn(pkts[i & mask]!)) ok++;
    return ok;
  };
}

function cases(): Case[] {
  const local = '100.64.0.1', local6 = 'fd00::1';
  const f = new AclFilter({ policy });
  const inTcp: Buffer[] = [], inUdp6: Buffer[] = [], outTcp: Buffer[] = [], denied: Buffer[] = [];
  for (let i = 0; i < FLOWS; i++) {
    const peer = `100.64.0.${2 + (i % 199)}`, peer6 = `fd00::${(2 + (i % 199)).toString(16)}`;
    const o = tcp4(local, peer, 20000 + i, 443, 0x02, 0);
    f.outbound(o, 0, o.length);
    const o6 = udp6(local6, peer6, 20000 + i, 53, 0);
    f.outbound(o6, 0, o6.length);
    inTcp.push(tcp4(peer, local, 443, 20000 + i, 0x10));
    inUdp6.push(udp6(peer6, local6, 53, 20000 + i));
    outTcp.push(tcp4(local, peer, 20000 + i, 443, 0x10));
    denied.push(tcp4(peer, local, 30000 + i, 22, 0x02, 0));
  }
  // Outbound new flows into a full table: a fresh tuple every packet (source port and address walk).
  const churn = new AclFilter({ policy, limits: { maxFlows: 32_768 } });
  const fresh = tcp4(local, '100.64.0.2', 1, 443, 0x02, 0);
  let next = 0;
  const newFlow = (): boolean => {
    next++;
    fresh.writeUInt16BE(1 + (next & 0xfffe), 20);
    fresh[19] = 2 + ((next >>> 16) % 200);
    return churn.outbound(fresh, 0, fresh.length);
  };
  for (let i = 0; i < 40_000; i++) newFlow(); // fill the table
  return [
    { name: 'inbound, tracked TCP/IPv4 flows', bytes: inTcp[0]!.length, run: ring(inTcp, (p) => f.inbound(p, 0, p.length)) },
    { name: 'inbound, tracked UDP/IPv6 flows', bytes: inUdp6[0]!.length, run: ring(inUdp6, (p) => f.inbound(p, 0, p.length)) },
    { name: 'inbound, new TCP flows denied by 50 rules', bytes: denied[0]!.length, run: ring(denied, (p) => !f.inbound(p, 0, p.length)) },
    { name: 'outbound, tracked TCP/IPv4 flows', bytes: outTcp[0]!.length, run: ring(outTcp, (p) => f.outbound(p, 0, p.length)) },
    { name: 'outbound, new flows into a full table (evicting)', bytes: fresh.length, run: (n) => { let ok = 0; for (let i = 0; i < n; i++) if (newFlow()) ok++; return ok; } },
  ];
}

let sink = 0;

function timeCase(c: Case, seconds: number): number {
  const end = performance.now() + seconds * 1000;
  const t0 = performance.now();
  let n = 0;
  while (performance.now() < end) {
    sink += c.run(CHUNK);
    n += CHUNK;
  }
  return n / ((performance.now() - t0) / 1000);
}

const gcStarts: number[] = [];
const gcObserver = new PerformanceObserver((list) => { for (const e of list.getEntries()) gcStarts.push(e.startTime); });
gcObserver.observe({ entryTypes: ['gc'] });

function youngUsed(): number {
  let used = 0;
  for (const s of getHeapSpaceStatistics()) if (s.space_name === 'new_space' || s.space_name === 'new_large_object_space') used += s.space_used_size;
  return used;
}

const pause = () => new Promise<void>((resolve) => setTimeout(resolve, 20));

async function allocationPerPacket(run: (n: number) => number): Promise<string> {
  for (let n = ALLOC_PACKETS; n >= 1000; n = Math.floor(n / 4)) {
    await pause();
    const t0 = performance.now();
    const before = youngUsed();
    sink += run(n);
    const after = youngUsed();
    const t1 = performance.now();
    await pause();
    if (!gcStarts.some((t) => t >= t0 - 1 && t <= t1 + 1)) return `${((after - before) / n).toFixed(3)} B/packet allocated (over ${n} packets, no GC)`;
  }
  return 'allocation not measured (a GC ran in every window)';
}

async function main(): Promise<void> {
  console.log(`acl filter bench: node ${process.version}, ${SECONDS} s per case, ${FLOWS} flows per ring, ${PAYLOAD}-byte payloads`);
  for (const c of cases()) {
    c.run(200_000); // warm up
    const pps = timeCase(c, SECONDS);
    const alloc = await allocationPerPacket(c.run);
    console.log(`${c.name.padEnd(50)} ${(pps / 1e6).toFixed(2).padStart(6)} Mpps  ${(1e9 / pps).toFixed(0).padStart(4)} ns/packet  ` +
      `${((pps * c.bytes * 8) / 1e9).toFixed(1).padStart(6)} Gbit/s of ${c.bytes}-byte packets  ${alloc}`);
  }
  gcObserver.disconnect();
  if (sink === -1) console.log('');
}

void main();
