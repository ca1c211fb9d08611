// The WireGuard protocol engine and the interfaces its transports and devices implement.
export type { Device, Bind, Endpoint, Clock } from './device-interface.js';
export { systemClock, ManualClock } from './clock.js';
export { Engine, BATCH_SIZE, type EngineOptions } from './engine.js';
export { EngineCounters } from './counters.js';
export { Peer } from './peer.js';
export { AllowedIps, parseCidr, formatCidr, type Cidr, type AllowedIpEntry, type IpFamily } from './allowed-ips.js';
export * from './constants.js';
export { MessageType, TRANSPORT_HEADER_SIZE } from './messages.js';
export { LocalIdentity, Handshake } from './noise.js';
export { UapiServer, uapiSocketPath, UAPI_SOCKET_DIR } from './uapi-server.js';
export {
  UapiError, UapiRequestParser, uapiGetReply, uapiStatusLine, UAPI_ERRNO, parseAllowedIp, parseEndpointValue,
  type UapiDevice, type UapiDeviceState, type UapiSetOp, type UapiPeerState, type UapiRequest,
} from './uapi.js';
export { MemoryUapiDevice } from './uapi-memory-device.js';
