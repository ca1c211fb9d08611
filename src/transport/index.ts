// Datagram transports for WireGuard messages: the batched UDP socket on the native addon, a
// node:dgram fallback, in-memory binds for tests, and interned endpoints.
export {
  UdpEndpoint, EndpointPool, defaultEndpointPool, parseEndpoint, sourceRecord, ADDR_RECORD_LEN, ADDR_FIELD, DEFAULT_POOL_GENERATION,
  SRC_RECORD_LEN, SRC_FIELD, MAX_SOURCES,
} from './endpoint.js';
export {
  UdpBind, UDP_BATCH_SIZE, DEFAULT_SOCKET_BUFFER, sourceRefused, type UdpBindOptions, type UdpBindStats, type UdpStickyStats,
} from './udp.js';
export { DgramUdpBind, DGRAM_QUEUE_LIMIT, type DgramUdpBindOptions } from './dgram-udp.js';
export {
  MemoryNetwork, MemoryBind, memoryBindPair, MEMORY_BIND_QUEUE_LIMIT,
  type MemoryDatagram, type MemoryNetworkHooks, type MemoryNetworkStats,
} from './memory.js';
export { createUdpBind } from './create.js';
export { udpNativeUnavailable } from './native.js';
