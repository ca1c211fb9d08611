// CRC-32 as ISO-HDLC / IEEE 802.3 / zlib compute it (reflected polynomial 0xedb88320, initial
// value and final xor 0xffffffff), table driven. STUN's FINGERPRINT (RFC 8489 14.7) uses it.
// The table is built once at load; crc32 itself allocates nothing.

const POLYNOMIAL = 0xedb88320;

const TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? POLYNOMIAL ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

/** The CRC-32 of buf[off, off+len), as an unsigned 32-bit number. */
export function crc32(buf: Uint8Array, off: number, len: number): number {
  let c = 0xffffffff;
  const end = off + len;
  for (let i = off; i < end; i++) c = TABLE[(c ^ buf[i]!) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}
