#!/usr/bin/env bash
# Captures real packets with tcpdump between two network namespaces and writes them as hex
# (one packet per line, with a comment naming it) to testdata/captures/. Run as root:
#   bash scripts/capture-testdata.sh
# The namespaces and processes it makes are removed on exit, also on failure.
set -euo pipefail
cd "$(dirname "$0")/.."
out=testdata/captures
mkdir -p "$out"
a=mtcapA$$ b=mtcapB$$
pids=()
cleanup() {
  for p in "${pids[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done
  ip netns del $a 2>/dev/null || true
  ip netns del $b 2>/dev/null || true
}
trap cleanup EXIT
ip netns add $a; ip netns add $b
ip link add vcap0 netns $a type veth peer name vcap1 netns $b
ip -n $a addr add 198.18.0.1/24 dev vcap0; ip -n $b addr add 198.18.0.2/24 dev vcap1
ip -n $a addr add fd00:cafe::1/64 dev vcap0 nodad; ip -n $b addr add fd00:cafe::2/64 dev vcap1 nodad
ip -n $a link set vcap0 up; ip -n $b link set vcap1 up; ip -n $a link set lo up; ip -n $b link set lo up
pcap=$(mktemp /tmp/mtcap.XXXXXX.pcap)
ip netns exec $a tcpdump -i vcap0 -U -s 0 -w "$pcap" >/dev/null 2>&1 & pids+=($!)
sleep 1
# ICMP echo v4/v6, neighbor discovery, ARP
ip netns exec $a ping -c 2 -s 1372 198.18.0.2 >/dev/null
ip netns exec $a ping -c 2 -s 56 fd00:cafe::2 >/dev/null
# TCP: a small HTTP-like exchange (SYN with options, data, FIN)
ip netns exec $b python3 -m http.server 8080 --bind 198.18.0.2 >/dev/null 2>&1 & pids+=($!)
ip netns exec $b python3 -m http.server 8081 --bind fd00:cafe::2 >/dev/null 2>&1 & pids+=($!)
sleep 1
ip netns exec $a curl -s -o /dev/null http://198.18.0.2:8080/
ip netns exec $a curl -s -o /dev/null 'http://[fd00:cafe::2]:8081/'
# UDP v4 and v6 (connection refused produces ICMP port unreachable / ICMPv6 unreachable)
ip netns exec $a python3 -c "import socket;s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM);s.sendto(b'x'*1372,('198.18.0.2',9999))"
ip netns exec $a python3 -c "import socket;s=socket.socket(socket.AF_INET6,socket.SOCK_DGRAM);s.sendto(b'y'*1372,('fd00:cafe::2',9999))"
# A fragmented IPv4 ping and a fragmented IPv6 ping
ip netns exec $a ping -c 1 -s 3000 198.18.0.2 >/dev/null
ip netns exec $a ping -c 1 -s 3000 fd00:cafe::2 >/dev/null
# ICMP time exceeded (TTL 1 to an address routed beyond b)
ip -n $b addr add 198.18.1.1/24 dev lo
ip -n $b route add 198.18.9.0/24 via 198.18.0.1 2>/dev/null || true
ip -n $a route add 198.18.9.0/24 via 198.18.0.2 2>/dev/null || true
ip netns exec $b sysctl -qw net.ipv4.ip_forward=1
ip netns exec $a ping -c 1 -t 1 198.18.9.9 >/dev/null 2>&1 || true
sleep 1
kill "${pids[0]}"; wait "${pids[0]}" 2>/dev/null || true
node scripts/pcap-to-hex.mjs "$pcap" "$out"
rm -f "$pcap"
