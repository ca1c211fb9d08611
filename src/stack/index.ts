// The userspace network stack: a Device for the WireGuard engine with IPv4/IPv6, ICMP, UDP and
// TCP sockets, for rootless mode, port forwarding and proxies.
export type { IpFamily, IpAddr, IpOutput, IcmpErrorInfo } from './types.js';
export {
  UserspaceStack, DEFAULT_STACK_LIMITS, DEFAULT_STACK_MTU,
  type UserspaceStackOptions, type StackLimits,
} from './stack.js';
export { connectTcp, listenTcp, udpSocket, ping, type ConnectTcpOptions, type ListenTcpOptions, type TcpServer } from './api.js';
export {
  TcpLayer, TcpSocket, TcpListener, TcpSocketError, TcpCounters, TcpState, TCP_STATE_NAMES,
  type TcpLimits, type TcpSocketOptions, type ListenOptions, type TcpErrorCode,
} from './tcp/index.js';
export { StackCounters } from './counters.js';
export { StackError, icmpErrorCode } from './errors.js';
export {
  AddressSet, parseStackAddress, parseIpLiteral, formatIpAddr, copyIpAddr, ipAddrEqual, isUnspecified,
  type StackAddressV4, type StackAddressV6, type IpLiteral,
} from './addresses.js';
export { Reassembler, ReassemblyCounters, DEFAULT_REASSEMBLY_LIMITS, type ReassemblyLimits, type Reassembled } from './fragments.js';
export { PathMtuCache, DEFAULT_PMTU_LIMITS, IPV4_MIN_PMTU, IPV6_MIN_PMTU, type PmtuLimits } from './pmtu.js';
export { IcmpHandler, TokenBucket, type IcmpHost } from './icmp.js';
export { Pinger, type PingOptions } from './ping.js';
export { IpSender } from './output.js';
export { UdpSocket, UdpLayer, DEFAULT_UDP_LIMITS, type UdpLimits, type UdpRemoteInfo, type UdpAddressInfo } from './udp.js';
export { PacketQueue } from './packet-queue.js';
export { PrefixSet, parsePrefix } from './prefix-set.js';
export { UdpForwarding, type ForwardedDatagram } from './forwarding.js';
export { MemoryLink, type MemoryLinkStats, type MemoryLinkFilter } from './memory-link.js';
