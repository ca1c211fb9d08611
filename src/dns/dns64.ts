// The DNS64 hook point (RFC 6147): how a responder turns an IPv4 address into the IPv6 address a
// NAT64 gateway answers on. Only the interface lives here; the address forms (RFC 6052 prefixes)
// belong to the NAT64 translator, which provides an implementation when a node runs one.
//
// Today the responder calls it for its own names: an AAAA query for a node that has an IPv4
// address but no IPv6 one gets the synthesized address. Synthesis for names answered by an
// upstream (a AAAA query answered with no AAAA records, re-asked as A) is for later.

/** Synthesizes the IPv6 address for an IPv4 one. Must not allocate or throw. */
export interface Dns64Synthesizer {
  /** Writes the 16-byte IPv6 address for `ipv4` (a uint32) at out[off, off+16). Returns false
   * when this address must not be synthesized (e.g. RFC 6147 5.1.4 excluded ranges); the
   * responder then answers NODATA. */
  synthesize(ipv4: number, out: Uint8Array, off: number): boolean;
}
