// IPv4 addresses as unsigned 32-bit numbers and IPv6 addresses as 16 bytes, with text forms for
// logs and user input. Parsing user text returns null on a bad address (the caller says why).

/** "192.0.2.1" -> 0xc0000201, or null when the text is not a dotted-quad IPv4 address. */
export function parseIpv4Address(text: string): number | null {
  const parts = text.split('.');
  if (parts.length !== 4) return null;
  let v = 0;
  for (const p of parts) {
    if (!/^\d{1,3}$/.test(p)) return null;
    const n = Number(p);
    if (n > 255) return null;
    v = v * 256 + n;
  }
  return v >>> 0;
}

export function formatIpv4Address(v: number): string {
  return `${v >>> 24}.${(v >>> 16) & 255}.${(v >>> 8) & 255}.${v & 255}`;
}

export function readIpv4Address(buf: Uint8Array, off: number): number {
  return ((buf[off]! << 24) | (buf[off + 1]! << 16) | (buf[off + 2]! << 8) | buf[off + 3]!) >>> 0;
}

export function writeIpv4Address(buf: Uint8Array, off: number, v: number): void {
  buf[off] = v >>> 24;
  buf[off + 1] = (v >>> 16) & 255;
  buf[off + 2] = (v >>> 8) & 255;
  buf[off + 3] = v & 255;
}

/** Parses an IPv6 address (RFC 4291 text forms, incl. "::" and an embedded dotted quad) into
 * `out` at `off`. Returns false when the text is not an IPv6 address. */
export function parseIpv6Address(text: string, out: Uint8Array = new Uint8Array(16), off = 0): boolean {
  if (text.length === 0 || text.length > 45) return false;
  const zone = text.indexOf('%');
  if (zone >= 0) text = text.slice(0, zone);
  const halves = text.split('::');
  if (halves.length > 2) return false;
  const words: number[][] = [];
  for (const half of halves) {
    const ws: number[] = [];
    if (half.length > 0) {
      const groups = half.split(':');
      for (let i = 0; i < groups.length; i++) {
        const g = groups[i]!;
        if (i === groups.length - 1 && g.includes('.')) {
          const v4 = parseIpv4Address(g);
          if (v4 === null) return false;
          ws.push(v4 >>> 16, v4 & 0xffff);
        } else {
          if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return false;
          ws.push(parseInt(g, 16));
        }
      }
    }
    words.push(ws);
  }
  let all: number[];
  if (words.length === 2) {
    const fill = 8 - words[0]!.length - words[1]!.length;
    if (fill < 1) return false;
    all = [...words[0]!, ...new Array<number>(fill).fill(0), ...words[1]!];
  } else {
    all = words[0]!;
    if (all.length !== 8) return false;
  }
  for (let i = 0; i < 8; i++) {
    out[off + 2 * i] = all[i]! >>> 8;
    out[off + 2 * i + 1] = all[i]! & 255;
  }
  return true;
}

/** RFC 5952 text form of the 16 bytes at buf[off]. */
export function formatIpv6Address(buf: Uint8Array, off = 0): string {
  const w: number[] = [];
  for (let i = 0; i < 8; i++) w.push((buf[off + 2 * i]! << 8) | buf[off + 2 * i + 1]!);
  // Longest run of zero words (length >= 2) becomes "::".
  let bestStart = -1, bestLen = 0;
  for (let i = 0; i < 8;) {
    if (w[i] !== 0) { i++; continue; }
    let j = i;
    while (j < 8 && w[j] === 0) j++;
    if (j - i > bestLen && j - i >= 2) { bestStart = i; bestLen = j - i; }
    i = j;
  }
  const hex = (a: number, b: number) => w.slice(a, b).map((x) => x.toString(16)).join(':');
  if (bestStart < 0) return hex(0, 8);
  return `${hex(0, bestStart)}::${hex(bestStart + bestLen, 8)}`;
}

/** Compares 16-byte addresses without allocating. */
export function ipv6Equal(a: Uint8Array, aOff: number, b: Uint8Array, bOff: number): boolean {
  for (let i = 0; i < 16; i++) if (a[aOff + i] !== b[bOff + i]) return false;
  return true;
}
