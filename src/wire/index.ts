// Packet codecs: zero-copy views and plain reprs. Parsers return a Status and never throw.
export { Status, statusName } from './status.js';
export * from './checksum.js';
export * from './address.js';
export {
  Ipv4Packet, Ipv4Repr, parseIpv4, emitIpv4, ipv4Length, ipv4HeaderLength, IpProtocol,
  IPV4_HEADER_LEN, IPV4_FLAG_DF, IPV4_FLAG_MF, FIELD as IPV4_FIELD,
} from './ipv4.js';
export {
  EthernetFrame, EthernetRepr, parseEthernet, emitEthernet, ethernetHeaderLength, ethernetLength, EtherType,
  MAC_LEN, ETHERNET_HEADER_LEN, ETHERNET_MAX_HEADER_LEN, ETHERNET_MAX_VLAN_TAGS, VLAN_TAG_LEN, VLAN_ID_MASK, ETHERTYPE_MIN,
  copyMac, macEqual, isBroadcastMac, isMulticastMac, formatMacAddress, parseMacAddress, FIELD as ETHERNET_FIELD,
} from './ethernet.js';
export { ArpPacket, ArpRepr, ArpOperation, parseArp, emitArp, arpLength, ARP_LEN, ARP_HTYPE_ETHERNET, FIELD as ARP_FIELD } from './arp.js';
export {
  Ipv6Packet, Ipv6Repr, parseIpv6, emitIpv6, ipv6Length, walkIpv6Extensions, emitIpv6FragmentHeader, Ipv6Option,
  IPV6_HEADER_LEN, IPV6_ADDR_LEN, IPV6_FRAGMENT_HEADER_LEN, IPV6_MAX_EXT_HEADERS, FIELD as IPV6_FIELD, EXT_FIELD as IPV6_EXT_FIELD,
} from './ipv6.js';
export { UdpPacket, UdpRepr, parseUdp, emitUdp, udpLength, UDP_HEADER_LEN, FIELD as UDP_FIELD } from './udp.js';
export {
  TcpPacket, TcpRepr, TcpFlag, TcpOption, parseTcp, emitTcp, tcpHeaderLength, tcpLength,
  TCP_HEADER_LEN, TCP_MAX_HEADER_LEN, TCP_MAX_OPTIONS_LEN, TCP_MAX_SACK_BLOCKS, TCP_MAX_WINDOW_SCALE, FIELD as TCP_FIELD,
} from './tcp.js';
export {
  Dhcpv4Packet, Dhcpv4Repr, Dhcpv4Options, parseDhcpv4, emitDhcpv4, dhcpv4Length, DhcpMessageType, DhcpOption,
  DHCPV4_FIELD, DHCPV4_HEADER_LEN, DHCPV4_MIN_LEN, DHCPV4_MAGIC_COOKIE, DHCPV4_FLAG_BROADCAST,
  DHCPV4_SERVER_PORT, DHCPV4_CLIENT_PORT, BOOTP_REQUEST, BOOTP_REPLY, HTYPE_ETHERNET,
  OVERLOAD_FILE, OVERLOAD_SNAME, DHCPV4_MAX_ADDRESSES,
} from './dhcpv4.js';
export {
  DnsHeader, DnsQuestion, DnsParsed, parseDns, emitDns, dnsLength, readDnsQuestion, setDnsQuestionName,
  DnsRcode, DnsType, DNS_CLASS_IN, DNS_PORT, DNS_HEADER_LEN, DNS_FIELD, DNS_MAX_NAME_LEN,
  DNS_FLAG_QR, DNS_FLAG_AA, DNS_FLAG_TC, DNS_FLAG_RD, DNS_FLAG_RA, DNS_FLAG_AD, DNS_FLAG_CD,
  type DnsMessage, type DecodedDnsMessage, type DnsRecord,
} from './dns.js';
