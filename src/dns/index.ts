// The node's DNS responder for network names (<name>.mesh and <name>.<network>): a
// transport-agnostic core, hosts for kernel and userspace-stack UDP sockets, an optional upstream
// forwarder, and the DNS64 hook point.
export { DnsResponder, DnsOutcome, DEFAULT_DNS_TTL_S, DNS_EDNS_UDP_SIZE, DNS_CLASSIC_UDP_SIZE, DNS_MIN_RESPONSE_BUFFER, type DnsResponderOptions } from './responder.js';
export { NameTable, MESH_ZONE, type NameRecord } from './names.js';
export { DnsCounters } from './counters.js';
export type { Dns64Synthesizer } from './dns64.js';
export {
  DnsSocketBinding, DnsServer, startDnsServer, DEFAULT_MAX_IN_FLIGHT,
  type DnsDatagramSocket, type DnsRemote, type DnsBindingOptions, type DnsServerOptions,
} from './server.js';
export {
  DnsForwarder, parseDnsUpstream, DEFAULT_UPSTREAM_TIMEOUT_MS, DEFAULT_MAX_PENDING,
  type DnsUpstream, type DnsForwarderOptions, type ForwardDone,
} from './forwarder.js';
