// Packet codecs: zero-copy views and plain reprs. Parsers return a Status and never throw.
export { Status, statusName } from './status.js';
export * from './checksum.js';
export * from './address.js';
export {
  Ipv4Packet, Ipv4Repr, parseIpv4, emitIpv4, ipv4Length, ipv4HeaderLength, IpProtocol,
  IPV4_HEADER_LEN, IPV4_FLAG_DF, IPV4_FLAG_MF, FIELD as IPV4_FIELD,
} from './ipv4.js';
