// The daemon: configuration files, interface lifecycle, local API.
export { WgInterface, signalInterface, pidFile, PID_DIR } from './wg-interface.js';
export {
  readWgQuickConfig, parseWgQuickConfig, worldAccessibleWarning, interfaceNameFromPath, isInterfaceName, resolveEndpoint, renderWgConfig,
  formatPrefix, type WgQuickConfig, type WgQuickPeer, type WgQuickInterface, type IpPrefix,
} from './wg-quick-config.js';
export { uapiSocketPath as uapiSocketPathFor } from '../wireguard/index.js';
export { ApiServer, apiSocketPath, interfaceStatus, prometheusMetrics, type InterfaceStatus, type PeerStatus } from './api-server.js';
export { loadNodeIdentity, stateDir, type NodeIdentity } from './node-identity.js';
export { UserspaceInterface, runPaths, userRunDir, signalUserspaceInterface, signalPidFile, type RunPaths, type UserspaceStatus } from './userspace-interface.js';
export { syncWireGuard, type PeerSyncResult } from './peer-sync.js';
export type { MeshtunSettings, ListenAddress, MeshtunMode } from './meshtun-section.js';
export {
  startMesh, underlayEndpoints, MESH_DNS_PORT, DEFAULT_CONTROL_PORT, DEFAULT_MESH_INTERFACE, DEFAULT_MESH_LISTEN_PORT, DEFAULT_NETWORK_NAME, MEMBERSHIP_FILE, MESH_API_SOCKET, MESH_RUN_DIR,
  type MeshUpOptions, type MeshDaemon, type MeshInterface,
} from './mesh-daemon.js';
export type { ApiRoutes } from './api-server.js';
export { meshProxySettings, PROXY_ENV, type MeshProxySetting } from './mesh-dns.js';
export { MeshNat, parseConfiguredEndpoint, NAT_PROBE_MS } from './mesh-nat.js';
