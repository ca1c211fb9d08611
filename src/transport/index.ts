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
// Stream transports (issue 11): MASQUE CONNECT-UDP over HTTP/2 and TCP-framed, for networks
// that block UDP.
export {
  CapsuleReader, CapsuleType, DatagramCapsuleRepr, CONTEXT_ID_UDP, MAX_CAPSULE_PAYLOAD, MAX_DATAGRAM_PAYLOAD, VARINT_MAX, VARINT_MAX_LEN,
  VARINT_WRITE_MAX, datagramCapsuleHeaderSize, encodeDatagramCapsules, parseDatagramCapsule, readVarint, readVarintBigInt, varintLength,
  varintSize, writeDatagramCapsuleHeader, writeVarint, type CapsuleReaderOptions,
} from './capsule.js';
export {
  DuplexDatagramStream, STREAM_RX_BATCH, DEFAULT_WRITE_BUFFER_LIMIT, CLOSE_GRACE_MS, emptyStreamCounters,
  type DatagramStream, type DatagramStreamCounters, type DatagramHandler, type DatagramStreamOptions, type DatagramDecoder, type DatagramFraming,
} from './datagram-stream.js';
export {
  connectUdp, createMasqueServer, masqueServerOptions, widenConnectionWindow, parseConnectUdpRequest, respondConnectUdp, refuseConnectUdp, connectUdpPath,
  parseConnectUdpPath, isValidTargetHost, masqueSessionCount, capsuleFraming, CONNECT_UDP_PATH_PREFIX, CONNECT_UDP_PROTOCOL,
  MASQUE_SERVER_SETTINGS, MASQUE_WINDOW, MASQUE_CONNECTION_WINDOW, MASQUE_MAX_FRAME, DEFAULT_CONNECT_TIMEOUT_MS,
  type ConnectUdpOptions, type ConnectUdpRequest, type UdpTarget,
} from './masque.js';
export {
  connectTcpFramed, acceptTcpFramed, FrameReader, tcpFraming, FRAME_HEADER_LEN, MAX_FRAME_PAYLOAD, DEFAULT_HELLO_TIMEOUT_MS,
  DEFAULT_TCP_CONNECT_TIMEOUT_MS, type TcpFramedConnectOptions, type TcpFramedAcceptOptions,
} from './tcp-framed.js';
export { StreamEndpoint, pipeToEngine, type DatagramReceiver } from './stream-endpoint.js';
export {
  StreamTimeoutError, StreamConnectError, ExtendedConnectUnsupportedError, ConnectUdpRefusedError, TcpHelloError, StreamOptionsError,
} from './stream-errors.js';
