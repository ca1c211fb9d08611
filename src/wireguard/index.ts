// The WireGuard protocol engine and the interfaces its transports and devices implement.
export type { Device, Bind, Endpoint, Clock } from './device-interface.js';
export type { PacketFilter } from './packet-filter.js';
export { systemClock, ManualClock } from './clock.js';
export { Engine, BATCH_SIZE, type EngineOptions, type FrameHandler, type DatagramHandler, type InboundTap } from './engine.js';
export { EngineCounters } from './counters.js';
export { Peer } from './peer.js';
export { AllowedIps, parseCidr, formatCidr, IPV4_BITS, IPV6_BITS, type Cidr, type AllowedIpEntry, type IpFamily } from './allowed-ips.js';
export { ReplayFilter, REPLAY_WINDOW_SIZE, REPLAY_RING_BITS, REJECT_AFTER_MESSAGES_HI, REJECT_AFTER_MESSAGES_LO } from './replay-filter.js';
export { HandshakeRateLimiter, RATELIMIT_PACKETS_PER_SECOND, RATELIMIT_BURST, type RateLimiterOptions } from './ratelimiter.js';
export { IndexTable, cryptoRandomUint32, type RandomUint32 } from './index-table.js';
export * from './constants.js';
export {
  MessageType, messageType, INITIATION, RESPONSE, COOKIE_REPLY, TRANSPORT, TRANSPORT_HEADER_SIZE, KEEPALIVE_SIZE, TAG_LEN,
  InitiationView, ResponseView, CookieReplyView, TransportView, writeTransportHeader, paddedLength,
} from './messages.js';
export {
  LocalIdentity, Handshake, HandshakeState, createInitiation, consumeInitiation, createResponse, consumeResponse, deriveKeys,
  writeTai64n, HANDSHAKE_INITIATION_RATE_MS, type SessionKeys,
} from './noise.js';
export { CookieChecker, CookieGenerator, COOKIE_REFRESH_TIME_MS, endpointCookieBytes } from './cookie.js';
export { UapiServer, uapiSocketPath, UAPI_SOCKET_DIR } from './uapi-server.js';
export {
  UapiError, UapiRequestParser, uapiGetReply, uapiStatusLine, UAPI_ERRNO, parseAllowedIp, parseEndpointValue,
  type UapiDevice, type UapiDeviceState, type UapiSetOp, type UapiPeerState, type UapiRequest,
} from './uapi.js';
export { MemoryUapiDevice } from './uapi-memory-device.js';
