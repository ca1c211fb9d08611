// Port forwarding and proxies over a node's two sides (the host and the tunnel): static TCP/UDP
// forwards in both directions with live reload, a SOCKS5 proxy and an HTTP proxy.
export {
  KernelTunnelNet, StackTunnelNet, DialError, errorCode, unbracket, bracket, CONNECT_TIMEOUT_MS,
  type TunnelNet, type TunnelSocket, type TunnelListener, type TunnelUdpSocket, type TunnelUdpRemoteInfo,
  type ConnectOptions, type StackTunnelNetOptions,
} from './dialer.js';
export { relay, resetSocket, ConnectionGate, type RelayStats, type RelayOptions } from './relay.js';
export { SystemResolver, TunnelDnsResolver, literalHost, type HostResolver, type ResolvedHost, type TunnelDnsOptions } from './resolver.js';
export { ForwardCounters } from './counters.js';
export { Socks5Server, type Socks5Options } from './socks5.js';
export { SocksReply, replyForError } from './socks5-protocol.js';
export { HttpProxy, splitHostPort, type HttpProxyOptions } from './http-proxy.js';
export { isLoopbackHost, checkExposure, ProxyExposureError, MAX_CREDENTIAL_BYTES } from './proxy-auth.js';
export {
  parseForwardSpec, parseForwardSpecs, checkListenConflicts, forwardKey, directionKey, ForwardSpecError,
  DEFAULT_FORWARD_LISTEN_HOST, type ForwardSpec, type ForwardDirection, type ForwardProtocol,
} from './forward-spec.js';
export { ForwardSet, type ApplyResult, type ForwardStatus } from './forwards.js';
export { DEFAULT_MAX_CONNECTIONS, DEFAULT_UDP_IDLE_MS, type ForwardContext } from './forward-context.js';
