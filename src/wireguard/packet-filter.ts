// The optional packet filter hook of the engine: a firewall (the mesh ACL filter, for one) that
// sees every IP packet going into the tunnel and every packet coming out of it. Lives here, not in
// mesh, because wireguard may not import mesh; any object with these two methods fits.

/** Judges IP packets at buf[off, off+len). Called on the hot path: must not allocate or throw. */
export interface PacketFilter {
  /** A packet read from the device, about to be sent to a peer. False: drop it. */
  outbound(buf: Buffer, off: number, len: number): boolean;
  /** A decrypted packet from a peer (source address already checked against the peer's
   * allowed-ips), about to be written to the device. False: drop it. */
  inbound(buf: Buffer, off: number, len: number): boolean;
}
