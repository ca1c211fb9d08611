// The WireGuard protocol engine and the interfaces its transports and devices implement.
export type { Device, Bind, Endpoint, Clock } from './device-interface.js';
export { systemClock, ManualClock } from './clock.js';
