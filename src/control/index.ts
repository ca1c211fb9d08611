// The coordinator: membership, join tokens, authentication rate limits, the IP pool, names, routes
// and network maps, over an embedded SQLite store. The control channel (HTTP/2 + Noise) is built
// on top of Coordinator; these modules do no I/O beyond the store.
export {
  Coordinator, DEFAULT_TOKEN_LIFETIME, COORDINATOR_NODE_NAME,
  type TokenInfo, type CreatedToken, type CreateNetworkOptions, type CreateTokenOptions, type CoordinatorOptions, type ChangeListener,
} from './coordinator.js';
export { formatWait, type JoinRequest, type JoinResult, type JoinRefusalReason } from './join.js';
export {
  Store, STORE_FILE_NAME, MAX_EVENTS, type StoreOptions, type NetworkRecord, type NodeRecord, type TokenRecord, type EventRecord, type PolicyRecord,
} from './store.js';
export { MIGRATIONS, migrate, schemaVersion, type Migration } from './schema.js';
export {
  generateJoinToken, parseJoinToken, parseJoinTokenArgument, hashTokenSecret, verifyTokenSecret, parseDuration, tokenState,
  TOKEN_PREFIX, TOKEN_LENGTH, MAX_TOKEN_LIFETIME_MS, type TokenParseResult, type NewJoinToken, type TokenState,
} from './tokens.js';
export {
  formatJoinString, parseJoinString, encodeUrlKey, decodeUrlKey, formatHostPort, JOIN_SCHEME, type JoinTarget, type ParseJoinOptions,
} from './join-string.js';
export {
  AuthLimiter, authSourceKey, FAILURE_WEIGHT, AUTH_FREE_FAILURES, AUTH_BASE_DELAY_MS, AUTH_MAX_DELAY_MS, AUTH_FORGIVE_MS_PER_POINT,
  AUTH_GLOBAL_BURST, AUTH_GLOBAL_PER_SECOND, AUTH_CLEAN_BURST, AUTH_CLEAN_PER_SECOND,
  type AuthLimiterOptions, type AuthDecision, type AuthFailureKind, type AuthLimiterStats,
} from './auth-limiter.js';
export {
  DEFAULT_IPV4_POOL, PoolExhaustedError, parseIpv4Pool, formatIpv4Pool, ipv4PoolContains, isAssignableIpv4, assignableIpv4Count,
  firstAssignableIpv4, preferredIpv4, allocateIpv4, networkUlaPrefix, formatUlaPrefix, parseUlaPrefix, nodeIpv6, nodeIpv6Text,
  type Ipv4Pool, type AllocateIpv4Options,
} from './ip-pool.js';
export {
  normalizeNodeName, normalizeNetworkName, isValidNodeName, nameFromHostname, uniqueName, MAX_NAME_LENGTH, RESERVED_NETWORK_NAMES,
} from './names.js';
export {
  normalizeRoute, normalizeRoutes, normalizeEndpoint, normalizeEndpoints, normalizeTags, publicKeyText, cidrsOverlap, isExitRoute,
  EXIT_ROUTES, MAX_ROUTES_PER_NODE, MAX_ENDPOINTS_PER_NODE,
} from './node-fields.js';
export { buildNetworkMap, mapNode, effectiveRoutes, type NetworkMap, type MapNode, type MapPolicy } from './network-map.js';
export { encodeBase32, decodeBase32, randomId } from './base32.js';
export {
  ControlServer, REFUSAL_STATUS, DEFAULT_CONTROL_KEEPALIVE_MS, MAX_REQUEST_BODY, MAX_SESSIONS_PER_CONNECTION, IDLE_CONNECTION_MS,
  MAX_STREAM_BACKLOG, type ControlServerOptions,
} from './server.js';
export { ControlResponder, MAX_REMEMBERED_HANDSHAKES, type ControlHandshakeResult, type HandshakeFailure } from './channel.js';
export { loadOrCreateTlsCert, TLS_KEY_FILE, TLS_CERT_FILE } from './channel-tls.js';
export { PathTable, type PathState } from './paths.js';
