#!/usr/bin/env bash
# Captures real DHCPv4 and DNS packets between two network namespaces and writes them as hex
# (one Ethernet frame per line, each after a comment naming it) to testdata/captures/dhcpv4.hex
# and testdata/captures/dns.hex. Run as root (needs dnsmasq, busybox udhcpc, dhclient, dig, ethtool):
#   bash scripts/capture-dhcp-dns.sh
# dnsmasq serves DHCP and DNS in one namespace; clients in the other run two DHCP exchanges
# (busybox udhcpc and ISC dhclient: DISCOVER/OFFER/REQUEST/ACK) and dig queries (A, AAAA, a
# CNAME answer that uses name compression, NXDOMAIN) over IPv4 and IPv6. Answers come from names
# configured here, with addresses in 198.18.0.0/15 and fd00::/8 only. The namespaces and
# processes it makes are removed on exit, also on failure.
set -euo pipefail
cd "$(dirname "$0")/.."
out=testdata/captures
mkdir -p "$out"
srv=mtdhS$$ cli=mtdhC$$
pids=()
tmp=$(mktemp -d /tmp/mtdhcp.XXXXXX)
cleanup() {
  for p in "${pids[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done
  if [ -s "$tmp/dhclient.pid" ]; then kill "$(cat "$tmp/dhclient.pid")" 2>/dev/null || true; fi
  ip netns del $srv 2>/dev/null || true
  ip netns del $cli 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT
ip netns add $srv; ip netns add $cli
ip link add vdhs0 netns $srv type veth peer name vdhc0 netns $cli
ip -n $srv addr add 198.18.5.1/24 dev vdhs0; ip -n $srv addr add fd00:d5::1/64 dev vdhs0 nodad
ip -n $cli addr add 198.18.5.2/24 dev vdhc0; ip -n $cli addr add fd00:d5::2/64 dev vdhc0 nodad
for ns in $srv $cli; do ip -n $ns link set lo up; done
# Fixed (locally administered) MACs: dnsmasq picks the address it offers from the client's MAC.
ip -n $srv link set vdhs0 address 02:00:00:00:d5:01; ip -n $cli link set vdhc0 address 02:00:00:00:d5:02
ip -n $srv link set vdhs0 up; ip -n $cli link set vdhc0 up
# Checksums computed in software, so the captured frames carry final UDP checksums.
ip netns exec $srv ethtool -K vdhs0 tx off >/dev/null; ip netns exec $cli ethtool -K vdhc0 tx off >/dev/null

pcap=$tmp/capture.pcap
ip netns exec $srv tcpdump -i vdhs0 -U -s 0 -w "$pcap" 'udp port 67 or udp port 68 or udp port 53' \
  >/dev/null 2>&1 & pids+=($!)

ip netns exec $srv dnsmasq --keep-in-foreground --conf-file=/dev/null --no-resolv --no-hosts \
  --user=root --group=root --pid-file= --log-facility="$tmp/dnsmasq.log" \
  --interface=vdhs0 --bind-interfaces --listen-address=198.18.5.1 --listen-address=fd00:d5::1 \
  --dhcp-leasefile="$tmp/dnsmasq.leases" --dhcp-authoritative --no-ping \
  --dhcp-range=198.18.5.100,198.18.5.150,255.255.255.0,1h \
  --dhcp-option=option:router,198.18.5.1 --dhcp-option=option:dns-server,198.18.5.1 \
  --domain=lab.test --dhcp-option=option:domain-name,lab.test \
  --local=/lab.test/ --address=/svc.lab.test/198.18.7.7 \
  --host-record=node.lab.test,198.18.7.8,fd00:7::8 --cname=alias.lab.test,node.lab.test \
  & pids+=($!)
sleep 2

# DHCP exchange 1: busybox udhcpc with a hostname and a client id; exits after the lease (-q).
# The script is /bin/true so nothing on the host (routes, resolv.conf) is touched.
ip netns exec $cli busybox udhcpc -f -q -n -t 3 -T 1 -i vdhc0 -s /bin/true \
  -x hostname:mtclient -x 0x3d:01aabbccddeeff >/dev/null 2>&1
# DHCP exchange 2: ISC dhclient, one try, then a release (DHCPRELEASE).
cat > "$tmp/dhclient.conf" <<'EOF'
send host-name "mtdhclient";
request subnet-mask, broadcast-address, time-offset, routers, domain-name, domain-name-servers, host-name;
EOF
ip netns exec $cli dhclient -4 -1 -v -cf "$tmp/dhclient.conf" -lf "$tmp/dhclient.leases" \
  -pf "$tmp/dhclient.pid" -sf /bin/true vdhc0 >/dev/null 2>&1
ip netns exec $cli dhclient -4 -r -v -cf "$tmp/dhclient.conf" -lf "$tmp/dhclient.leases" \
  -pf "$tmp/dhclient.pid" -sf /bin/true vdhc0 >/dev/null 2>&1 || true

# DNS: A, AAAA, a CNAME (compressed names in the answer), NXDOMAIN; over IPv4 and IPv6.
q() { ip netns exec $cli dig +tries=1 +time=2 "$@" >/dev/null; }
q @198.18.5.1 node.lab.test A
q @198.18.5.1 node.lab.test AAAA
q @198.18.5.1 alias.lab.test A
q @198.18.5.1 missing.lab.test A
q @198.18.5.1 svc.lab.test A +noedns
q @fd00:d5::1 node.lab.test AAAA
q @fd00:d5::1 alias.lab.test AAAA +noedns
sleep 1
kill "${pids[0]}"; wait "${pids[0]}" 2>/dev/null || true

# Split the pcap into the two hex files, naming each packet from its contents.
node --input-type=module - "$pcap" "$out" <<'EOF'
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
const [inFile, outDir] = process.argv.slice(2);
const b = readFileSync(inFile);
const le = b.readUInt32LE(0) === 0xa1b2c3d4;
const u32 = (o) => (le ? b.readUInt32LE(o) : b.readUInt32BE(o));
const DHCP_TYPES = ['', 'DISCOVER', 'OFFER', 'REQUEST', 'DECLINE', 'ACK', 'NAK', 'RELEASE', 'INFORM'];
const RCODES = ['NOERROR', 'FORMERR', 'SERVFAIL', 'NXDOMAIN', 'NOTIMP', 'REFUSED'];
const QTYPES = { 1: 'A', 5: 'CNAME', 28: 'AAAA' };
function dhcpType(p) {
  for (let i = 240; i < p.length && p[i] !== 255;) {
    if (p[i] === 0) { i++; continue; }
    if (p[i] === 53) return DHCP_TYPES[p[i + 2]] ?? `type ${p[i + 2]}`;
    i += 2 + p[i + 1];
  }
  return 'no type';
}
function dnsDesc(p) {
  const labels = [];
  let i = 12;
  while (p[i] !== 0) { labels.push(p.toString('latin1', i + 1, i + 1 + p[i])); i += 1 + p[i]; }
  const qtype = p.readUInt16BE(i + 1);
  const flags = p.readUInt16BE(2);
  const kind = flags & 0x8000 ? `response ${RCODES[flags & 15]} answers ${p.readUInt16BE(6)}` : 'query';
  return `${kind} ${labels.join('.')} ${QTYPES[qtype] ?? qtype} additionals ${p.readUInt16BE(10)}`;
}
const dhcp = [], dns = [];
let off = 24;
while (off + 16 <= b.length) {
  const incl = u32(off + 8);
  const f = b.subarray(off + 16, off + 16 + incl);
  off += 16 + incl;
  const et = f.readUInt16BE(12);
  let udp, ver;
  if (et === 0x0800 && f[23] === 17) { udp = 14 + (f[14] & 15) * 4; ver = 'IPv4'; }
  else if (et === 0x86dd && f[20] === 17) { udp = 54; ver = 'IPv6'; }
  else continue;
  const sport = f.readUInt16BE(udp), dport = f.readUInt16BE(udp + 2);
  const payload = f.subarray(udp + 8);
  const where = `UDP payload at byte ${udp + 8} (Ethernet frame, captured with tcpdump)`;
  if (sport === 67 || dport === 67) {
    dhcp.push(`# DHCP ${dhcpType(payload)} ${sport}->${dport}, ${where}\n${f.toString('hex')}`);
  } else if (sport === 53 || dport === 53) {
    dns.push(`# DNS ${ver} ${dnsDesc(payload)}, ${where}\n${f.toString('hex')}`);
  }
}
const head = (k) => `# ${k}: real frames captured by scripts/capture-dhcp-dns.sh\n`;
writeFileSync(join(outDir, 'dhcpv4.hex'), head('dhcpv4') + dhcp.join('\n') + '\n');
writeFileSync(join(outDir, 'dns.hex'), head('dns') + dns.join('\n') + '\n');
console.log(`dhcpv4: ${dhcp.length} packets, dns: ${dns.length} packets`);
EOF
