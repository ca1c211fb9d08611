// Types shared by the userspace stack's IP layer (src/stack/*.ts) and its transport protocols
// (src/stack/tcp/, udp). Addresses are allocation-free: IPv4 as an unsigned 32-bit number,
// IPv6 as 16 bytes (a Uint8Array owned by whoever holds it; copy to keep it).

export type IpFamily = 4 | 6;
export type IpAddr = number | Uint8Array;

/** What the IP layer offers its protocols for sending. */
export interface IpOutput {
  /** Sends buf[off, off+len) (a complete TCP/UDP/ICMP message with its checksum already filled
   * over the pseudo-header of src/dst) as the payload of one IP packet from `src` to `dst`.
   * The IP layer copies the bytes (the caller may reuse `buf` at once), builds the header, and
   * fragments where allowed. Returns false when the packet was dropped (no route, queue full). */
  sendIp(family: IpFamily, src: IpAddr, dst: IpAddr, protocol: number, buf: Buffer, off: number, len: number, opts?: { dontFragment?: boolean; ttl?: number }): boolean;
  /** The MTU towards `dst` (path MTU if learned from ICMP, else the interface MTU). */
  mtu(family: IpFamily, dst: IpAddr): number;
}

/** An ICMP error that quoted one of our packets, as the IP layer hands it to the protocol that
 * sent the quoted packet. Addresses and ports are those of the quoted (our) packet. */
export interface IcmpErrorInfo {
  family: IpFamily;
  kind: 'port-unreachable' | 'host-unreachable' | 'net-unreachable' | 'admin-prohibited' | 'packet-too-big' | 'time-exceeded' | 'other';
  /** Next-hop MTU for 'packet-too-big' (IPv4 "fragmentation needed" or ICMPv6 PTB), else 0. */
  mtu: number;
  localAddr: IpAddr;
  remoteAddr: IpAddr;
  localPort: number;
  remotePort: number;
}
