#!/usr/bin/env node
// Splits a pcap (Ethernet link type) into testdata hex files by protocol, one packet per line,
// each preceded by a comment describing it. Usage: node scripts/pcap-to-hex.mjs in.pcap outdir
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const [inFile, outDir] = process.argv.slice(2);
const b = readFileSync(inFile);
const le = b.readUInt32LE(0) === 0xa1b2c3d4;
const u32 = (o) => (le ? b.readUInt32LE(o) : b.readUInt32BE(o));
const groups = new Map();
let off = 24, n = 0;
while (off + 16 <= b.length) {
  const incl = u32(off + 8);
  const pkt = b.subarray(off + 16, off + 16 + incl);
  off += 16 + incl;
  n++;
  const et = pkt.readUInt16BE(12);
  let key = 'other', desc = `frame ${n}`;
  if (et === 0x0806) { key = 'arp'; desc = `ARP op ${pkt.readUInt16BE(20)}`; }
  else if (et === 0x0800) {
    const proto = pkt[23];
    const frag = pkt.readUInt16BE(20) & 0x3fff;
    key = { 1: 'ipv4-icmp', 6: 'ipv4-tcp', 17: 'ipv4-udp' }[proto] ?? 'ipv4-other';
    if (frag && proto !== 6) key = 'ipv4-frag';
    desc = `IPv4 proto ${proto} len ${pkt.readUInt16BE(16)}${frag ? ' fragment' : ''}`;
    if (proto === 1 && !frag) desc += ` icmp type ${pkt[14 + (pkt[14] & 15) * 4]}`;
  } else if (et === 0x86dd) {
    const nh = pkt[20];
    key = { 58: 'ipv6-icmp', 6: 'ipv6-tcp', 17: 'ipv6-udp', 44: 'ipv6-frag', 0: 'ipv6-hbh' }[nh] ?? 'ipv6-other';
    desc = `IPv6 next-header ${nh} payload ${pkt.readUInt16BE(18)}`;
    if (nh === 58) desc += ` icmpv6 type ${pkt[54]}`;
  }
  if (!groups.has(key)) groups.set(key, []);
  groups.get(key).push(`# ${desc} (Ethernet frame, captured with tcpdump)\n${pkt.toString('hex')}`);
}
for (const [key, lines] of groups) {
  writeFileSync(join(outDir, `${key}.hex`), `# ${key}: real frames captured by scripts/capture-testdata.sh\n${lines.join('\n')}\n`);
  console.log(`${key}: ${lines.length} packets`);
}
