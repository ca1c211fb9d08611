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
export {
  Icmpv4Packet, Icmpv4Repr, Icmpv4Quote, parseIcmpv4, emitIcmpv4, icmpv4Length, parseIcmpv4Quote, icmpv4IsError, icmpv4QuoteLength,
  Icmpv4Type, Icmpv4DstUnreachable, Icmpv4Redirect, Icmpv4TimeExceeded, Icmpv4ParamProblem,
  ICMPV4_HEADER_LEN, ICMPV4_ERROR_MAX_LEN, FIELD as ICMPV4_FIELD,
} from './icmpv4.js';
export {
  Icmpv6Packet, Icmpv6Repr, Icmpv6Quote, parseIcmpv6, emitIcmpv6, icmpv6Length, parseIcmpv6Quote, icmpv6IsError, icmpv6QuoteLength,
  icmpv6ChecksumVerifies, fillIcmpv6Checksum, Icmpv6Type, Icmpv6DstUnreachable, Icmpv6TimeExceeded, Icmpv6ParamProblem,
  ICMPV6_HEADER_LEN, IPV6_MIN_MTU, FIELD as ICMPV6_FIELD,
} from './icmpv6.js';
export {
  NdpPacket, NdpRepr, parseNdp, emitNdp, ndpLength, ndpFixedLength, checkNdpIpHeader,
  NDP_HOP_LIMIT, RA_FLAG_MANAGED, RA_FLAG_OTHER, NA_FLAG_ROUTER, NA_FLAG_SOLICITED, NA_FLAG_OVERRIDE, FIELD as NDP_FIELD,
} from './ndp.js';
export {
  NdpOptionCursor, NdpOptions, NdpPrefixInfo, NdpDnsServer, NdpOption, NDP_OPTION_UNIT, NDP_MAX_PREFIXES, NDP_MAX_DNS_SERVERS,
  PREFIX_FLAG_ON_LINK, PREFIX_FLAG_AUTONOMOUS, OPTION_FIELD as NDP_OPTION_FIELD,
} from './ndp-option.js';
export {
  MldPacket, MldRepr, MldRecordCursor, MldRecordType, parseMld, emitMld, mldLength, writeMldv2Record,
  mldv2MaxResponseDelay, mldv2MaxResponseCode, mldv2QueryInterval, mldv2Qqic,
  MLDV1_LEN, MLDV2_QUERY_MIN_LEN, MLDV2_REPORT_HEADER_LEN, MLDV2_RECORD_HEADER_LEN, MLD_HOP_LIMIT,
  FIELD as MLD_FIELD, RECORD_FIELD as MLD_RECORD_FIELD,
} from './mld.js';
export { crc32 } from './crc32.js';
export {
  StunMessage, StunRepr, StunAddress, StunClass, StunMethod, StunAttr, StunErrorCode, parseStun, emitStun, stunLength, stunFingerprint, stunText,
  stunMessageType, stunMethodOf, stunClassOf, STUN_HEADER_LEN, STUN_ATTR_HEADER_LEN, STUN_MAGIC_COOKIE, STUN_TRANSACTION_ID_LEN, STUN_FINGERPRINT_XOR,
  STUN_FINGERPRINT_ATTR_LEN, STUN_MAX_TEXT_LEN, STUN_MAX_UNKNOWN, FIELD as STUN_FIELD, ATTR_FIELD as STUN_ATTR_FIELD,
} from './stun.js';
