// The Internet checksum (RFC 1071), pseudo-header sums for IPv4 and IPv6, and incremental update
// (RFC 1624) for rewriting addresses and ports without summing the whole packet again.
//
// Partial sums are plain numbers that may exceed 16 bits; fold them with `checksumFold`. A number
// holds 2^53 exactly, so a sum of 32-bit words cannot overflow for any packet size we handle.
// Nothing here allocates.

/** Adds the bytes buf[off, off+len) to `sum` as big-endian 16-bit words. `off` parity does not
 * matter, but when chaining several ranges every range except the last must have even length. */
export function checksumAdd(sum: number, buf: Uint8Array, off: number, len: number): number {
  let i = off;
  const end = off + len;
  const end4 = end - 3;
  // Four bytes at a time: (hi16 + lo16) via one 32-bit read is the same as two 16-bit adds.
  while (i < end4) {
    const w = ((buf[i]! << 24) | (buf[i + 1]! << 16) | (buf[i + 2]! << 8) | buf[i + 3]!) >>> 0;
    sum += (w >>> 16) + (w & 0xffff);
    i += 4;
  }
  if (i + 1 < end) {
    sum += (buf[i]! << 8) | buf[i + 1]!;
    i += 2;
  }
  if (i < end) sum += buf[i]! << 8;
  return sum;
}

/** Folds a partial sum to 16 bits (ones' complement addition), without inverting it. */
export function checksumFold(sum: number): number {
  // Up to 2^53: fold the high part down repeatedly.
  while (sum > 0xffff) sum = (sum % 0x10000) + Math.floor(sum / 0x10000);
  return sum;
}

/** The final checksum field value for a partial sum: the inverted fold. */
export function checksumFinish(sum: number): number {
  return ~checksumFold(sum) & 0xffff;
}

/** The Internet checksum of buf[off, off+len): the value to store in a checksum field. */
export function internetChecksum(buf: Uint8Array, off: number, len: number): number {
  return checksumFinish(checksumAdd(0, buf, off, len));
}

/** True when the range, including its stored checksum field, sums to 0xffff (verifies). */
export function checksumVerifies(buf: Uint8Array, off: number, len: number, initial = 0): boolean {
  return checksumFold(checksumAdd(initial, buf, off, len)) === 0xffff;
}

/** The IPv4 pseudo-header partial sum (RFC 768/793): source, destination, protocol, length. */
export function pseudoHeaderSumV4(src: number, dst: number, protocol: number, length: number): number {
  return (src >>> 16) + (src & 0xffff) + (dst >>> 16) + (dst & 0xffff) + protocol + length;
}

/** The IPv6 pseudo-header partial sum (RFC 8200 section 8.1). Addresses are 16 bytes at the given
 * offsets of their buffers; `length` is the upper-layer packet length. */
export function pseudoHeaderSumV6(
  srcBuf: Uint8Array, srcOff: number, dstBuf: Uint8Array, dstOff: number, nextHeader: number, length: number,
): number {
  let sum = checksumAdd(0, srcBuf, srcOff, 16);
  sum = checksumAdd(sum, dstBuf, dstOff, 16);
  return sum + (length >>> 16) + (length & 0xffff) + nextHeader;
}

/** RFC 1624 eqn. 3: the new checksum after a 16-bit word changes from `oldWord` to `newWord`. */
export function checksumUpdate16(checksum: number, oldWord: number, newWord: number): number {
  const sum = (~checksum & 0xffff) + (~oldWord & 0xffff) + (newWord & 0xffff);
  return ~checksumFold(sum) & 0xffff;
}

/** RFC 1624 for a 32-bit value (an IPv4 address) changing from `oldValue` to `newValue`. */
export function checksumUpdate32(checksum: number, oldValue: number, newValue: number): number {
  const sum = (~checksum & 0xffff) +
    (~(oldValue >>> 16) & 0xffff) + (~oldValue & 0xffff) +
    ((newValue >>> 16) & 0xffff) + (newValue & 0xffff);
  return ~checksumFold(sum) & 0xffff;
}

/** RFC 1624 for a run of bytes (even length, e.g. an IPv6 address) changing from old to new. */
export function checksumUpdateBytes(
  checksum: number, oldBuf: Uint8Array, oldOff: number, newBuf: Uint8Array, newOff: number, len: number,
): number {
  let sum = ~checksum & 0xffff;
  for (let i = 0; i < len; i += 2) {
    const o = (oldBuf[oldOff + i]! << 8) | oldBuf[oldOff + i + 1]!;
    const n = (newBuf[newOff + i]! << 8) | newBuf[newOff + i + 1]!;
    sum += (~o & 0xffff) + n;
  }
  return ~checksumFold(sum) & 0xffff;
}
