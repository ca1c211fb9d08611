#!/usr/bin/env bash
# Captures real ICMPv4 / ICMPv6 / Neighbor Discovery / MLD traffic with tcpdump in network
# namespaces and writes it as hex (one Ethernet frame per line, each after a comment with tcpdump's
# one-line decoding) to new files under testdata/captures/:
#   icmpv4-extra.hex  ICMPv4 errors (frag needed, net/host unreachable, admin prohibited,
#                     protocol unreachable, time exceeded, redirect, parameter problem) + echoes
#   icmpv6-extra.hex  ICMPv6 errors (packet too big, unreachable codes, time exceeded,
#                     parameter problem) + echoes
#   ndp.hex           Neighbor Discovery: RS, RA from radvd (prefixes, MTU, RDNSS), NS, NA, Redirect
#   mld.hex           MLDv2 reports/queries (with sources) and MLDv1 query/report/done
# Needs root and radvd (apt-get install radvd). Run: bash scripts/capture-icmp.sh
# The namespaces and processes it makes are removed on exit, also on failure.
#
# Topology (one Ethernet segment = a bridge in namespace L, which is also the MLD querier):
#   H (host, SLAAC) --+
#   R (router, radvd) +-- br0 in L        R --(MTU 1280)-- B (far host)
#   R2 (router)     --+                   R2 owns 198.18.30.0/24 and fd00:cafe:30::/64 on lo
set -euo pipefail
cd "$(dirname "$0")/.."
out=testdata/captures
mkdir -p "$out"
command -v radvd >/dev/null || { echo "radvd not found: apt-get install radvd" >&2; exit 1; }
h=mticH$$ r=mticR$$ r2=mticS$$ b=mticB$$ l=mticL$$
pids=()
tmp=$(mktemp -d /tmp/mtic.XXXXXX)
cleanup() {
  for p in "${pids[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done
  for n in $h $r $r2 $b $l; do ip netns del "$n" 2>/dev/null || true; done
  rm -rf "$tmp"
}
trap cleanup EXIT
for n in $h $r $r2 $b $l; do ip netns add "$n"; ip -n "$n" link set lo up; done
# No DAD delays: addresses are usable at once (DAD probes are still sent for link-locals).
for n in $h $r $r2 $b; do ip netns exec "$n" sysctl -qw net.ipv6.conf.default.accept_dad=0 net.ipv6.conf.all.accept_dad=0; done

ip -n $l link add br0 type bridge mcast_snooping 1 mcast_querier 1 mcast_mld_version 2 \
  mcast_startup_query_interval 100 mcast_query_interval 300 mcast_query_response_interval 100
ip link add vh netns $h type veth peer name lh netns $l
ip link add vr netns $r type veth peer name lr netns $l
ip link add vs netns $r2 type veth peer name ls netns $l
ip link add vrb netns $r mtu 1280 type veth peer name vb netns $b mtu 1280
for p in lh lr ls; do ip -n $l link set $p master br0; done
ip -n $l link set br0 up; ip -n $l link set lr up; ip -n $l link set ls up

ip -n $r addr add 198.18.10.1/24 dev vr; ip -n $r addr add fd00:cafe:10::1/64 dev vr
ip -n $r addr add 198.18.20.1/24 dev vrb; ip -n $r addr add fd00:cafe:20::1/64 dev vrb
ip -n $r2 addr add 198.18.10.2/24 dev vs; ip -n $r2 addr add fd00:cafe:10::2/64 dev vs
ip -n $r2 addr add 198.18.30.1/24 dev lo; ip -n $r2 addr add fd00:cafe:30::1/64 dev lo
ip -n $b addr add 198.18.20.2/24 dev vb; ip -n $b addr add fd00:cafe:20::2/64 dev vb
ip -n $h addr add 198.18.10.10/24 dev vh
for n in $r $r2; do ip netns exec "$n" sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1; done
# No per-destination ICMP rate limit at R: every error below must be sent. (IPv4 route errors
# keep their own per-source budget of about one per second, so those pings are spaced below.)
ip netns exec $r sysctl -qw net.ipv4.icmp_ratelimit=0 net.ipv6.icmp.ratelimit=0
ip -n $r link set vr up; ip -n $r link set vrb up; ip -n $r2 link set vs up; ip -n $b link set vb up
ip -n $b route add default via 198.18.20.1; ip -n $b -6 route add default via fd00:cafe:20::1
ip -n $r2 route add default via 198.18.10.1; ip -n $r2 -6 route add default via fd00:cafe:10::1
# R: routes that make errors: no route (net unreachable), unreachable and prohibit routes, and
# R2's network through R2 on the same link (R forwards out of the interface it came in: redirect).
ip -n $r route add unreachable 198.18.40.0/24; ip -n $r route add prohibit 198.18.41.0/24
ip -n $r -6 route add unreachable fd00:cafe:40::/64; ip -n $r -6 route add prohibit fd00:cafe:41::/64
ip -n $r route add 198.18.30.0/24 via 198.18.10.2
r2ll=$(ip -n $r2 -6 addr show dev vs scope link | awk '/inet6/ {sub(/\/.*/, "", $2); print $2; exit}')
ip -n $r -6 route add fd00:cafe:30::/64 via "$r2ll" dev vr

cat >"$tmp/radvd.conf" <<'EOF'
interface vr {
  AdvSendAdvert on;
  MinRtrAdvInterval 3;
  MaxRtrAdvInterval 10;
  AdvManagedFlag off;
  AdvOtherConfigFlag on;
  AdvCurHopLimit 64;
  AdvDefaultLifetime 1800;
  AdvReachableTime 30000;
  AdvRetransTimer 1000;
  AdvLinkMTU 1400;
  AdvSourceLLAddress on;
  prefix fd00:cafe:10::/64 { AdvOnLink on; AdvAutonomous on; AdvValidLifetime 86400; AdvPreferredLifetime 14400; };
  prefix fd00:cafe:11::/64 { AdvOnLink on; AdvAutonomous off; AdvValidLifetime 7200; AdvPreferredLifetime 3600; };
  RDNSS fd00:cafe:10::53 fd00:cafe:10::54 { AdvRDNSSLifetime 600; };
};
EOF
ip netns exec $r radvd -n -C "$tmp/radvd.conf" -p "$tmp/radvd.pid" -m stderr >"$tmp/radvd.log" 2>&1 & pids+=($!)

# H comes up with the capture already running: its RS, DAD probes and MLD reports are recorded.
ip -n $h link set vh up
pcap="$tmp/icmp.pcap"
ip netns exec $h tcpdump -i vh -U -s 0 -w "$pcap" 'icmp or icmp6 or (ip6 and ip6[6] == 0)' >/dev/null 2>&1 & pids+=($!)
sleep 1
ip -n $l link set lh up
# Wait for SLAAC from the RA (up to 10 s).
for _ in $(seq 20); do ip -n $h -6 addr show dev vh | grep -q 'fd00:cafe:10:' && break; sleep 0.5; done
ip -n $h route add default via 198.18.10.1 2>/dev/null || true
sleep 1

ping_h() { ip netns exec $h ping "$@" >/dev/null 2>&1 || true; }
# Unreachable codes: no route at R, unreachable route, prohibit route.
ping_h -c 1 -W 1 fd00:cafe:50::1
ping_h -c 1 -W 1 fd00:cafe:41::1
for dst in 198.18.50.1 198.18.40.1 198.18.41.1; do ping_h -c 1 -W 1 $dst; sleep 1.2; done
# Packet too big / fragmentation needed: R's link to B has MTU 1280.
ping_h -c 1 -s 1400 fd00:cafe:20::2
ping_h -c 1 -M do -s 1400 198.18.20.2
# Redirect: R forwards H's packets for R2's networks back out of the same link.
ping_h -c 2 -i 0.3 fd00:cafe:30::1
ping_h -c 2 -i 0.3 198.18.30.1
# Time exceeded (hop limit / TTL 1 through R).
ping_h -c 1 -t 1 fd00:cafe:20::2
ping_h -c 1 -t 1 198.18.20.2
# Parameter problem: an unknown next header (IPv6) and a bad IPv4 option (record route, length 2);
# protocol unreachable for an unknown IPv4 protocol.
ip netns exec $h python3 - <<'EOF'
import socket, struct
s = socket.socket(socket.AF_INET6, socket.SOCK_RAW, 253)
s.sendto(b'z' * 16, ('fd00:cafe:10::1', 0))
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, 253)
s.sendto(b'q' * 16, ('198.18.10.1', 0))
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
opts = bytes([7, 2, 0, 0])  # record route with a length below its minimum of 3
hdr = struct.pack('!BBHHHBBH4s4s', 0x46, 0, 24 + 8, 0x1234, 0, 64, 17, 0,
                  socket.inet_aton('198.18.10.10'), socket.inet_aton('198.18.10.1'))
udp = struct.pack('!HHHH', 40000, 9, 8, 0)
s.sendto(hdr + opts + udp, ('198.18.10.1', 0))
EOF
sleep 1

# MLD: source-specific join and leave (MLDv2 ALLOW / BLOCK records, the bridge answers a BLOCK
# with a group-and-source-specific query), any-source join (TO_EX) and the general queries.
mld_py() {
  ip netns exec $h python3 - "$@" <<'EOF'
import socket, struct, sys, time
ifindex = socket.if_nametoindex('vh')
def sa6(addr):
    raw = struct.pack('<HHI16sI', socket.AF_INET6, 0, 0, socket.inet_pton(socket.AF_INET6, addr), 0)
    return raw + bytes(128 - len(raw))
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
mode, group = sys.argv[1], sys.argv[2]
if mode == 'ssm':
    MCAST_JOIN_SOURCE_GROUP, MCAST_LEAVE_SOURCE_GROUP = 46, 47
    req = struct.pack('<I4x', ifindex) + sa6(group) + sa6(sys.argv[3])
    s.setsockopt(socket.IPPROTO_IPV6, MCAST_JOIN_SOURCE_GROUP, req)
    time.sleep(float(sys.argv[4]))
    s.setsockopt(socket.IPPROTO_IPV6, MCAST_LEAVE_SOURCE_GROUP, req)
else:
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_JOIN_GROUP,
                 socket.inet_pton(socket.AF_INET6, group) + struct.pack('@I', ifindex))
    time.sleep(float(sys.argv[3]))
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_LEAVE_GROUP,
                 socket.inet_pton(socket.AF_INET6, group) + struct.pack('@I', ifindex))
time.sleep(1.5)
EOF
}
mld_py ssm ff35::1:3 fd00:cafe:10::99 4
mld_py any ff05::1:3 4
# MLDv1: the host is forced to version 1 and the querier speaks version 1.
ip netns exec $h sysctl -qw net.ipv6.conf.vh.force_mld_version=1
ip -n $l link set br0 type bridge mcast_mld_version 1
mld_py any ff05::1:4 5
sleep 1

kill "${pids[1]}"; wait "${pids[1]}" 2>/dev/null || true
# One-line decodings from tcpdump become the per-frame comments.
tcpdump -nn -t -r "$pcap" 2>/dev/null >"$tmp/decoded.txt"
node --input-type=module - "$pcap" "$tmp/decoded.txt" "$out" <<'EOF'
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
const [pcapFile, decodedFile, outDir] = process.argv.slice(2);
const b = readFileSync(pcapFile);
const decoded = readFileSync(decodedFile, 'utf8').split('\n').filter((l) => l.length > 0);
const le = b.readUInt32LE(0) === 0xa1b2c3d4;
const u32 = (o) => (le ? b.readUInt32LE(o) : b.readUInt32BE(o));
const files = {
  'icmpv4-extra': 'ICMPv4 errors and the echoes that caused them',
  'icmpv6-extra': 'ICMPv6 errors and echoes',
  ndp: 'ICMPv6 Neighbor Discovery (RFC 4861) incl. a radvd RA and a Redirect',
  mld: 'MLDv1 and MLDv2 behind a hop-by-hop header',
};
const groups = new Map(Object.keys(files).map((k) => [k, []]));
let off = 24, n = 0;
while (off + 16 <= b.length) {
  const incl = u32(off + 8);
  const pkt = b.subarray(off + 16, off + 16 + incl);
  off += 16 + incl;
  const desc = decoded[n++] ?? '?';
  const et = pkt.readUInt16BE(12);
  let key = null;
  if (et === 0x0800 && pkt[23] === 1) key = 'icmpv4-extra';
  else if (et === 0x86dd) {
    let nh = pkt[20], at = 54;
    if (nh === 0) { nh = pkt[54]; at = 54 + (pkt[55] + 1) * 8; }
    if (nh === 58) {
      const t = pkt[at];
      if (t >= 133 && t <= 137) key = 'ndp';
      else if (t === 130 || t === 131 || t === 132 || t === 143) key = 'mld';
      else key = 'icmpv6-extra';
    }
  }
  if (key) groups.get(key).push(`# ${desc}\n${pkt.toString('hex')}`);
}
if (n !== decoded.length) throw new Error(`pcap has ${n} frames but tcpdump decoded ${decoded.length}`);
for (const [key, lines] of groups) {
  writeFileSync(join(outDir, `${key}.hex`),
    `# ${key}: ${files[key]}; real frames captured by scripts/capture-icmp.sh\n${lines.join('\n')}\n`);
  console.log(`${key}: ${lines.length} frames`);
}
EOF
