// Picks the UDP Bind for this machine: the batched native one, or the node:dgram fallback.
import { UdpBind, type UdpBindOptions } from './udp.js';
import { DgramUdpBind } from './dgram-udp.js';

/** A UdpBind when the native addon loaded, else a DgramUdpBind (see UdpBind.unavailableReason()). */
export function createUdpBind(options: UdpBindOptions = {}): UdpBind | DgramUdpBind {
  return UdpBind.available() ? new UdpBind(options) : new DgramUdpBind(options);
}
