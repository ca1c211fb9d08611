// The overlay: ACL policy and stateful filter (more to come: routing, multi-hop, discovery).
export * from './acl/index.js';
export * from './control-types.js';
export {
  ControlClient, ControlError, ControlHandshakeError, CONTROL_BACKOFF_INITIAL_MS, CONTROL_BACKOFF_MAX_MS, CONTROL_REQUEST_TIMEOUT_MS,
  CONTROL_STREAM_IDLE_MS, type ControlClientOptions, type RegisterResult, type ReportResult,
} from './control-client.js';
export {
  MeshNode, MESH_PERSISTENT_KEEPALIVE, EXIT_ROUTES, RELAY_GRACE_MS, peerAllowedIps, type MapSource, type MeshApplyResult, type MeshNodeOptions, type PeerPath,
} from './node.js';
export { Relay, RelayEndpoint, RelayCounters, DEFAULT_RELAY_LIMITS, type RelayDirectory, type RelayLimits } from './relay.js';
export * from './relay-frame.js';
export * from './probe.js';
export {
  checkNetworkMap, checkRegisterReply, checkMembership, checkNetwork, checkIpv4, checkIpv6, checkPrefix, checkEndpoint, checkLabel, checkId, checkKey,
  checkHost, checkCount, checkDiscoveryKey, showValue, MapFieldError, MAP_LIMITS, type Membership,
} from './map-check.js';
export { UnderlayMux, UnderlayCounters, classifyUnderlay, DISCO_MAGIC, STUN_MAGIC_COOKIE, type UnderlayKind, type UnderlayHandler } from './underlay-mux.js';
export {
  StunServer, StunServerCounters, StunClient, StunClientCounters, routeStun, natVerdict, formatStunAddress, DEFAULT_STUN_SERVER_LIMITS, STUN_CLIENT_DEFAULTS,
  STUN_MAX_GROWTH, STUN_MAX_PENDING, NAT_TYPES, type StunServerLimits, type StunClientOptions, type StunAnswer, type StunProbeResult, type NatMapping, type NatType,
} from './stun.js';
export { Disco, DiscoCounters, PeerPaths, DISCO_TIMING, TRANSPORT_PENALTY_MS, endpointText, transportOf, type PathTransport, type Candidate, type CandidateSource, type PathKind, type DiscoHost } from './disco.js';
export { sealDisco, openDisco, discoPairKey, discoSender, newTxid, DISCO_HEADER_SIZE, DISCO_MAX_SIZE, type DiscoMessage } from './disco-message.js';
export {
  LanBeaconKeys, LanBeaconResult, BeaconReplayGuard, parseLanBeacon, emitLanBeacon, lanBeaconLength, newLanBeaconRepr, DISCOVERY_KEY_SIZE, LAN_BEACON_MAX_SKEW_MS,
  type LanBeaconRepr,
} from './lan-beacon.js';
export { LanDiscovery, LanCounters, LAN_DISCOVERY, LAN_DISCOVERY_PORT, LAN_GROUP_V4, LAN_GROUP_V6, type LanDiscoveryOptions, type LocalAddress } from './lan-discovery.js';
export { RelayStreamServer, RelayStreamCounters, RelayLinks, RelayLinkCounters, RUNG_TIMEOUT_MS, UDP_GRACE_MS, LINK_IDLE_MS, type RelayLinksHost } from './relay-streams.js';
export { makeRelayAuth, RelayAuthChecker, RELAY_AUTH_HEADER, RELAY_AUTH_SIZE, type RelayTransport } from './relay-auth.js';
