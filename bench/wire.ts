// Per-packet cost of the wire codecs: parse + checksum verification of 1400-byte TCP/IPv4 and
// UDP/IPv6 packets (plus, for reference, the DNS first-question reader and the DHCPv4 parser).
// Run: npm run bench:wire   (or, after a build: node dist/bench/wire.js [seconds-per-case])
//
// Throughput: each case is warmed up, then timed over several seconds on a ring of 64 distinct
// packets built here. Allocation: V8 has no allocation counter in Node 20's heap statistics, so
// the bench reads the young generation's used bytes (v8.getHeapSpaceStatistics: new_space and
// new_large_object_space) before and after a long loop, and keeps the result only if no garbage
// collection ran in between (seen through a PerformanceObserver on 'gc' entries); otherwise it
// retries with fewer packets. Every short-lived allocation lands in the young generation, so
// the difference is the bytes the loop allocated. The cost of the measurement itself (an empty
// loop) is subtracted, and a calibration loop that allocates one Buffer view per packet shows the
// method sees allocation when there is some.

import { packetsPerSecond, measureAllocation, allocationText, fmt, finishMeasuring } from './measure.js';
import { Ipv4Repr, emitIpv4, parseIpv4, IpProtocol } from '../src/wire/ipv4.js';
import { Ipv6Repr, emitIpv6, parseIpv6, IPV6_HEADER_LEN } from '../src/wire/ipv6.js';
import { TcpRepr, emitTcp, parseTcp, tcpHeaderLength, TcpFlag } from '../src/wire/tcp.js';
import { UdpRepr, emitUdp, parseUdp, UDP_HEADER_LEN } from '../src/wire/udp.js';
import { pseudoHeaderSumV4, pseudoHeaderSumV6 } from '../src/wire/checksum.js';
import { parseIpv4Address, parseIpv6Address } from '../src/wire/address.js';
import { DnsHeader, DnsQuestion, emitDns, readDnsQuestion } from '../src/wire/dns.js';
import { Dhcpv4Repr, emitDhcpv4, dhcpv4Length, parseDhcpv4, DhcpMessageType, BOOTP_REPLY } from '../src/wire/dhcpv4.js';
import { Status } from '../src/wire/status.js';

const PACKET_LEN = 1400;
const RING = 64;
const CHUNK = 20_000;
const SECONDS = Number(process.argv[2] ?? '3');
const WARMUP_SECONDS = 1;
const ALLOC_PACKETS = 400_000;

/** A PRNG so the packets are the same on every run. */
let seed = 0x1234567;
function rand(): number {
  seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
  return seed >>> 16;
}

function buildTcpIpv4(i: number): Buffer {
  const buf = Buffer.alloc(PACKET_LEN);
  const ip = new Ipv4Repr();
  ip.src = parseIpv4Address('198.18.0.1')!;
  ip.dst = parseIpv4Address('198.18.0.2')!;
  ip.protocol = IpProtocol.Tcp;
  ip.ident = i;
  ip.dontFragment = true;
  const tcp = new TcpRepr();
  tcp.srcPort = 40000 + i;
  tcp.dstPort = 443;
  tcp.seqNumber = rand() * 65536 + rand();
  tcp.ackNumber = rand() * 65536 + rand();
  tcp.flags = TcpFlag.Ack | TcpFlag.Psh;
  tcp.window = 502;
  tcp.hasTimestamps = true; // as Linux sends data segments: 32-byte header
  tcp.tsVal = i * 1000;
  tcp.tsEcr = i * 999;
  const tcpLen = PACKET_LEN - 20;
  tcp.payloadLength = tcpLen - tcpHeaderLength(tcp);
  ip.payloadLength = tcpLen;
  const hl = emitIpv4(ip, buf, 0);
  for (let j = hl + tcpHeaderLength(tcp); j < PACKET_LEN; j++) buf[j] = rand() & 255;
  emitTcp(tcp, buf, hl, pseudoHeaderSumV4(ip.src, ip.dst, IpProtocol.Tcp, tcpLen));
  return buf;
}

function buildUdpIpv6(i: number): Buffer {
  const buf = Buffer.alloc(PACKET_LEN);
  const ip = new Ipv6Repr();
  parseIpv6Address('fd00:cafe::1', ip.src);
  parseIpv6Address('fd00:cafe::2', ip.dst);
  ip.nextHeader = IpProtocol.Udp;
  ip.flowLabel = i;
  const udpLen = PACKET_LEN - IPV6_HEADER_LEN;
  ip.payloadLength = udpLen;
  const udp = new UdpRepr();
  udp.srcPort = 51820;
  udp.dstPort = 40000 + i;
  udp.payloadLength = udpLen - UDP_HEADER_LEN;
  emitIpv6(ip, buf, 0);
  for (let j = IPV6_HEADER_LEN + UDP_HEADER_LEN; j < PACKET_LEN; j++) buf[j] = rand() & 255;
  emitUdp(udp, buf, IPV6_HEADER_LEN, pseudoHeaderSumV6(ip.src, 0, ip.dst, 0, IpProtocol.Udp, udpLen));
  return buf;
}

function buildDnsQuery(i: number): Buffer {
  const buf = Buffer.alloc(512);
  const n = emitDns({ id: i, type: 'query', flags: 0x0100, questions: [{ name: `node${i}.lab.test`, type: 'A' }] }, buf, 0);
  return buf.subarray(0, n);
}

function buildDhcpAck(i: number): Buffer {
  const r = new Dhcpv4Repr();
  r.op = BOOTP_REPLY;
  r.xid = i;
  r.yiaddr = parseIpv4Address('198.18.5.100')! + i;
  r.chaddr.set([2, 0, 0, 0, 0, i]);
  r.messageType = DhcpMessageType.Ack;
  r.serverId = parseIpv4Address('198.18.5.1')!;
  r.leaseTime = 3600;
  r.renewalTime = 1800;
  r.rebindingTime = 3150;
  r.subnetMask = parseIpv4Address('255.255.255.0')!;
  r.routers[0] = r.serverId;
  r.routerCount = 1;
  r.dnsServers[0] = r.serverId;
  r.dnsServerCount = 1;
  r.setDomainName('lab.test');
  r.setHostName(`host${i}`);
  const buf = Buffer.alloc(dhcpv4Length(r));
  emitDhcpv4(r, buf, 0);
  return buf;
}

/** A benchmark case: `run(n)` processes n packets from its ring and returns a number derived from
 * the results (summed by the caller so the work cannot be optimised away). Each case has its own
 * loop so every call site stays monomorphic, as in a real receive path. */
interface Case { name: string; bytesPerPacket: number; run: (n: number) => number }

const ip4 = new Ipv4Repr();
const tcp = new TcpRepr();
function tcpIpv4(pkt: Buffer): number {
  if (parseIpv4(pkt, 0, pkt.length, ip4) !== Status.Ok) throw new Error('IPv4 parse failed');
  const sum = pseudoHeaderSumV4(ip4.src, ip4.dst, IpProtocol.Tcp, ip4.payloadLength);
  if (parseTcp(pkt, ip4.payloadOffset, ip4.payloadLength, tcp, sum) !== Status.Ok) throw new Error('TCP parse failed');
  return tcp.payloadLength;
}

const ip6 = new Ipv6Repr();
const udp = new UdpRepr();
function udpIpv6(pkt: Buffer): number {
  if (parseIpv6(pkt, 0, pkt.length, ip6) !== Status.Ok) throw new Error('IPv6 parse failed');
  const sum = pseudoHeaderSumV6(ip6.src, 0, ip6.dst, 0, IpProtocol.Udp, ip6.upperLength);
  if (parseUdp(pkt, ip6.upperOffset, ip6.upperLength, udp, sum, 6) !== Status.Ok) throw new Error('UDP parse failed');
  return udp.payloadLength;
}

const dnsHeader = new DnsHeader();
const question = new DnsQuestion();
function dnsQuestion(pkt: Buffer): number {
  dnsHeader.reset(pkt, 0, pkt.length);
  if (dnsHeader.check() !== Status.Ok || dnsHeader.qr) throw new Error('not a DNS query');
  if (readDnsQuestion(pkt, 0, pkt.length, question) !== Status.Ok) throw new Error('DNS question failed');
  return question.hash & 0xff;
}

const dhcp = new Dhcpv4Repr();
function dhcpv4(pkt: Buffer): number {
  if (parseDhcpv4(pkt, 0, pkt.length, dhcp) !== Status.Ok) throw new Error('DHCP parse failed');
  return dhcp.leaseTime;
}

async function main(): Promise<void> {
  const tcpRing = Array.from({ length: RING }, (_, i) => buildTcpIpv4(i));
  const udpRing = Array.from({ length: RING }, (_, i) => buildUdpIpv6(i));
  const dnsRing = Array.from({ length: RING }, (_, i) => buildDnsQuery(i));
  const dhcpRing = Array.from({ length: RING }, (_, i) => buildDhcpAck(i));
  const cases: Case[] = [
    {
      name: 'TCP/IPv4 1400 B: parseIpv4 + header checksum, parseTcp + checksum', bytesPerPacket: PACKET_LEN,
      run(n) { let a = 0; for (let i = 0; i < n; i++) a += tcpIpv4(tcpRing[i & (RING - 1)]!); return a; },
    },
    {
      name: 'UDP/IPv6 1400 B: parseIpv6 (+ext walk), parseUdp + checksum', bytesPerPacket: PACKET_LEN,
      run(n) { let a = 0; for (let i = 0; i < n; i++) a += udpIpv6(udpRing[i & (RING - 1)]!); return a; },
    },
    {
      name: 'DNS query: DnsHeader view + readDnsQuestion', bytesPerPacket: dnsRing[0]!.length,
      run(n) { let a = 0; for (let i = 0; i < n; i++) a += dnsQuestion(dnsRing[i & (RING - 1)]!); return a; },
    },
    {
      name: 'DHCPv4 ACK: parseDhcpv4', bytesPerPacket: dhcpRing[0]!.length,
      run(n) { let a = 0; for (let i = 0; i < n; i++) a += dhcpv4(dhcpRing[i & (RING - 1)]!); return a; },
    },
  ];
  console.log(`meshtun wire bench: node ${process.version}, ${SECONDS} s per case after ${WARMUP_SECONDS} s warm-up`);

  // The cost of measuring: an empty loop of the same shape.
  const empty: Case = { name: 'empty', bytesPerPacket: 0, run: (n) => { let a = 0; for (let i = 0; i < n; i++) a += i & 1; return a; } };
  empty.run(ALLOC_PACKETS);
  const base = await measureAllocation(empty.run, ALLOC_PACKETS);
  const overhead = base ? base.bytes : 0;
  console.log(`allocation measurement overhead (empty loop): ${fmt(overhead)} B per window, subtracted below`);
  const calibration: Case = {
    name: 'calibration', bytesPerPacket: 0,
    run: (n) => { let a = 0; for (let i = 0; i < n; i++) a += tcpIpv4(tcpRing[i & (RING - 1)]!) + sinkBuf.subarray(0, 20).length; return a; },
  };
  calibration.run(10_000);
  console.log(`calibration (one Buffer.subarray per packet, must be > 0): ${await allocationText(calibration.run, ALLOC_PACKETS, overhead)}`);
  console.log('');

  for (const c of cases) {
    packetsPerSecond(c.run, CHUNK, WARMUP_SECONDS);
    const pps = packetsPerSecond(c.run, CHUNK, SECONDS);
    const gbit = (pps * c.bytesPerPacket * 8) / 1e9;
    console.log(c.name);
    console.log(`  ${fmt(pps)} packets/s, ${fmt(1e9 / pps, 1)} ns/packet` +
      (c.bytesPerPacket >= PACKET_LEN ? `, ${fmt(gbit, 2)} Gbit/s equivalent` : ` (${c.bytesPerPacket} B packets)`));
    console.log(`  ${await allocationText(c.run, ALLOC_PACKETS, overhead)}`);
  }
  finishMeasuring();
}

const sinkBuf = Buffer.alloc(64);

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
