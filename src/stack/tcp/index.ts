// TCP for the userspace stack (RFC 9293 with RFC 7323, 2018, 6298, 5681, 6582, 6675, 5961).
export { TcpLayer, type TcpLayerOptions, type ConnectOptions } from './layer.js';
export { TcpSocket, type TcpSocketOptions } from './socket.js';
export { TcpListener, type ListenOptions } from './listener.js';
export { TcpSocketError, type TcpErrorCode } from './errors.js';
export { TcpCounters } from './counters.js';
export type { TcpConnectionInfo } from './info.js';
export { TcpState, TCP_STATE_NAMES, DEFAULT_LIMITS, type TcpLimits } from './constants.js';
