import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  checksumAdd, checksumFold, checksumFinish, internetChecksum, checksumVerifies, pseudoHeaderSumV4,
  pseudoHeaderSumV6, checksumUpdate16, checksumUpdate32, checksumUpdateBytes,
} from './checksum.js';
import { IpProtocol } from './ipv4.js';
import { Prng, readHexPackets } from './fuzz-harness.js';

const ETH = 14;

/** Naive ones' complement sum of the concatenated buffers as 16-bit words (odd tail padded with
 * zero), folded: an implementation independent of checksum.ts to compare against. */
function naiveSum(...parts: Uint8Array[]): number {
  const b = Buffer.concat(parts);
  let s = 0;
  for (let i = 0; i < b.length; i += 2) s += (b[i]! << 8) | (b[i + 1] ?? 0);
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  return s;
}

function u16(v: number): Buffer { const b = Buffer.alloc(2); b.writeUInt16BE(v); return b; }
function u32(v: number): Buffer { const b = Buffer.alloc(4); b.writeUInt32BE(v >>> 0); return b; }

// ---- RFC 1071 --------------------------------------------------------------------------------------

test('checksum: the RFC 1071 section 3 example', () => {
  // Bytes 00 01 f2 03 f4 f5 f6 f7: words 0001 + f203 + f4f5 + f6f7 = 2ddf0, folded ddf2.
  const b = Buffer.from('0001f203f4f5f6f7', 'hex');
  assert.equal(checksumAdd(0, b, 0, b.length), 0x2ddf0);
  assert.equal(checksumFold(checksumAdd(0, b, 0, b.length)), 0xddf2);
  assert.equal(internetChecksum(b, 0, b.length), 0x220d); // ~ddf2
  // Storing the checksum after the data makes the whole range verify.
  const withSum = Buffer.concat([b, u16(0x220d)]);
  assert.ok(checksumVerifies(withSum, 0, withSum.length));
  withSum[3] ^= 1;
  assert.ok(!checksumVerifies(withSum, 0, withSum.length));
});

test('checksum: RFC 1071 byte-order independence (swapped input gives a swapped sum)', () => {
  const b = Buffer.from('0001f203f4f5f6f7', 'hex');
  const swapped = Buffer.from(b).swap16(); // 01 00 03 f2 f5 f4 f7 f6
  assert.equal(checksumFold(checksumAdd(0, b, 0, b.length)), 0xddf2);
  assert.equal(checksumFold(checksumAdd(0, swapped, 0, swapped.length)), 0xf2dd);
  const rng = new Prng(1071);
  for (let n = 0; n < 200; n++) {
    const len = 2 * (1 + rng.int(300));
    const x = Buffer.alloc(len);
    rng.fill(x, 0, len);
    const y = Buffer.from(x).swap16();
    const sx = checksumFold(checksumAdd(0, x, 0, len));
    const sy = checksumFold(checksumAdd(0, y, 0, len));
    assert.equal(sy, ((sx & 0xff) << 8) | (sx >>> 8));
  }
});

test('checksum: odd lengths pad the last byte with zero; offsets and chained ranges', () => {
  assert.equal(checksumAdd(0, Buffer.from([1, 2, 3]), 0, 3), 0x0102 + 0x0300);
  assert.equal(checksumAdd(0, Buffer.from([0xff]), 0, 1), 0xff00);
  assert.equal(checksumAdd(0, Buffer.alloc(0), 0, 0), 0);
  assert.equal(internetChecksum(Buffer.alloc(0), 0, 0), 0xffff);
  const rng = new Prng(7);
  for (let n = 0; n < 500; n++) {
    const len = rng.int(200);
    const at = rng.int(5);
    const buf = Buffer.alloc(at + len + 3);
    rng.fill(buf, 0, buf.length);
    const data = buf.subarray(at, at + len);
    // Any offset, odd or even, against the naive sum.
    assert.equal(checksumFold(checksumAdd(0, buf, at, len)), naiveSum(data));
    // Two even-length ranges chained equal one range.
    const cut = 2 * rng.int(Math.floor(len / 2) + 1);
    const chained = checksumAdd(checksumAdd(0, buf, at, cut), buf, at + cut, len - cut);
    assert.equal(checksumFold(chained), checksumFold(checksumAdd(0, buf, at, len)));
  }
});

test('checksum: fold handles large partial sums', () => {
  assert.equal(checksumFold(0), 0);
  assert.equal(checksumFold(0xffff), 0xffff);
  assert.equal(checksumFold(0x10000), 1);
  assert.equal(checksumFold(0x1fffe), 0xffff);
  assert.equal(checksumFold(2 ** 40), 0x100); // 2^16 = 1 (mod 0xffff), so 2^40 = 2^8
  assert.equal(checksumFold(0xffff * 100_000), 0xffff);
  assert.equal(checksumFold(2 ** 53 - 1), checksumFold((2 ** 53 - 1) % 0xffff));
});

test('checksum: pseudo-header sums equal the naive sum of the pseudo-header bytes', () => {
  const src = 0xc6120001;
  const dst = 0xc6120002;
  const v4 = Buffer.concat([u32(src), u32(dst), Buffer.from([0, IpProtocol.Udp]), u16(1380)]);
  assert.equal(checksumFold(pseudoHeaderSumV4(src, dst, IpProtocol.Udp, 1380)), naiveSum(v4));

  const a = Buffer.from('fd00cafe000000000000000000000001', 'hex');
  const b = Buffer.from('fd00cafe000000000000000000000002', 'hex');
  for (const len of [0, 40, 1380, 65535, 70000]) {
    const v6 = Buffer.concat([a, b, u32(len), Buffer.from([0, 0, 0, IpProtocol.Tcp])]);
    assert.equal(checksumFold(pseudoHeaderSumV6(a, 0, b, 0, IpProtocol.Tcp, len)), naiveSum(v6), `length ${len}`);
  }
  assert.equal(checksumFinish(0), 0xffff);
});

// ---- incremental update (RFC 1624) on captured packets ----------------------------------------------

interface L4 { pkt: Buffer; ihl: number; csumAt: number; udp: boolean; v6: boolean }

/** Captured TCP/UDP packets as IP packets, with the transport checksum completed: the captures were
 * taken on a veth, whose offload leaves only the pseudo-header sum in that field. */
function loadL4(file: string, udp: boolean, v6: boolean): L4[] {
  return readHexPackets(`testdata/captures/${file}.hex`).map(({ bytes }) => {
    const pkt = Buffer.from(bytes.subarray(ETH));
    const ihl = v6 ? 40 : (pkt[0]! & 15) * 4;
    const l4 = { pkt, ihl, csumAt: ihl + (udp ? 6 : 16), udp, v6 };
    pkt.writeUInt16BE(fullL4Checksum(l4), l4.csumAt);
    return l4;
  });
}

/** The transport checksum computed from scratch with the naive sum. */
function fullL4Checksum({ pkt, ihl, csumAt, udp, v6 }: L4): number {
  const seg = Buffer.from(pkt.subarray(ihl, v6 ? 40 + pkt.readUInt16BE(4) : pkt.readUInt16BE(2)));
  seg.writeUInt16BE(0, csumAt - ihl);
  const proto = udp ? IpProtocol.Udp : IpProtocol.Tcp;
  const pseudo = v6
    ? Buffer.concat([pkt.subarray(8, 40), u32(seg.length), Buffer.from([0, 0, 0, proto])])
    : Buffer.concat([pkt.subarray(12, 20), Buffer.from([0, proto]), u16(seg.length)]);
  const c = ~naiveSum(pseudo, seg) & 0xffff;
  return udp && c === 0 ? 0xffff : c;
}

/** The IPv4 header checksum computed from scratch. */
function fullIpv4Checksum(pkt: Buffer): number {
  const h = Buffer.from(pkt.subarray(0, (pkt[0]! & 15) * 4));
  h.writeUInt16BE(0, 10);
  return ~naiveSum(h) & 0xffff;
}

const v4 = [...loadL4('ipv4-tcp', false, false), ...loadL4('ipv4-udp', true, false)];
const v6 = [...loadL4('ipv6-tcp', false, true), ...loadL4('ipv6-udp', true, true)];

/** UDP sends a computed 0 as 0xffff; an incremental update must do the same. */
function l4Update(p: L4, c: number): number {
  return p.udp && c === 0 ? 0xffff : c;
}

test('checksum: rewrite an IPv4 source address (NAT) incrementally', () => {
  assert.equal(v4.length, 13);
  const rng = new Prng(1624);
  for (const orig of v4) {
    for (let n = 0; n < 50; n++) {
      const p = { ...orig, pkt: Buffer.from(orig.pkt) };
      const oldAddr = p.pkt.readUInt32BE(12);
      const newAddr = n === 0 ? 0x64400001 : (rng.int(0x10000) * 0x10000 + rng.int(0x10000)) >>> 0; // 100.64.0.1 first
      p.pkt.writeUInt32BE(newAddr, 12);
      p.pkt.writeUInt16BE(checksumUpdate32(p.pkt.readUInt16BE(10), oldAddr, newAddr), 10);
      p.pkt.writeUInt16BE(l4Update(p, checksumUpdate32(p.pkt.readUInt16BE(p.csumAt), oldAddr, newAddr)), p.csumAt);
      assert.equal(p.pkt.readUInt16BE(10), fullIpv4Checksum(p.pkt));
      assert.equal(p.pkt.readUInt16BE(p.csumAt), fullL4Checksum(p));
      assert.ok(checksumVerifies(p.pkt, 0, p.ihl));
    }
  }
});

test('checksum: rewrite a TCP or UDP port incrementally', () => {
  const rng = new Prng(16);
  for (const orig of [...v4, ...v6]) {
    for (const which of [0, 2]) { // source port, destination port
      for (let n = 0; n < 40; n++) {
        const p = { ...orig, pkt: Buffer.from(orig.pkt) };
        const at = p.ihl + which;
        const oldPort = p.pkt.readUInt16BE(at);
        const newPort = n === 0 ? 40000 : rng.int(0x10000);
        p.pkt.writeUInt16BE(newPort, at);
        p.pkt.writeUInt16BE(l4Update(p, checksumUpdate16(p.pkt.readUInt16BE(p.csumAt), oldPort, newPort)), p.csumAt);
        assert.equal(p.pkt.readUInt16BE(p.csumAt), fullL4Checksum(p), `${p.udp ? 'udp' : 'tcp'} port ${oldPort} -> ${newPort}`);
      }
    }
  }
});

test('checksum: rewrite address and port together (full NAPT) on IPv4', () => {
  const p = { ...v4[0]!, pkt: Buffer.from(v4[0]!.pkt) };
  const oldAddr = p.pkt.readUInt32BE(12);
  const oldPort = p.pkt.readUInt16BE(p.ihl);
  p.pkt.writeUInt32BE(0x64400005, 12);
  p.pkt.writeUInt16BE(61000, p.ihl);
  let c = p.pkt.readUInt16BE(p.csumAt);
  c = checksumUpdate32(c, oldAddr, 0x64400005);
  c = checksumUpdate16(c, oldPort, 61000);
  p.pkt.writeUInt16BE(c, p.csumAt);
  p.pkt.writeUInt16BE(checksumUpdate32(p.pkt.readUInt16BE(10), oldAddr, 0x64400005), 10);
  assert.equal(c, fullL4Checksum(p));
  assert.equal(p.pkt.readUInt16BE(10), fullIpv4Checksum(p.pkt));
});

test('checksum: rewrite an IPv6 address incrementally (checksumUpdateBytes)', () => {
  assert.equal(v6.length, 13);
  const rng = new Prng(66);
  const fresh = Buffer.alloc(16);
  for (const orig of v6) {
    for (let n = 0; n < 30; n++) {
      const p = { ...orig, pkt: Buffer.from(orig.pkt) };
      const at = n % 2 === 0 ? 8 : 24; // source or destination
      rng.fill(fresh, 0, 16);
      const old = Buffer.from(p.pkt.subarray(at, at + 16));
      fresh.copy(p.pkt, at);
      const c = checksumUpdateBytes(p.pkt.readUInt16BE(p.csumAt), old, 0, fresh, 0, 16);
      p.pkt.writeUInt16BE(l4Update(p, c), p.csumAt);
      assert.equal(p.pkt.readUInt16BE(p.csumAt), fullL4Checksum(p));
    }
  }
});

test('checksum: an IPv4 TTL decrement updates the header checksum (16-bit word TTL|protocol)', () => {
  for (const orig of v4) {
    const pkt = Buffer.from(orig.pkt);
    const oldWord = pkt.readUInt16BE(8);
    pkt[8] = pkt[8]! - 1;
    pkt.writeUInt16BE(checksumUpdate16(pkt.readUInt16BE(10), oldWord, pkt.readUInt16BE(8)), 10);
    assert.equal(pkt.readUInt16BE(10), fullIpv4Checksum(pkt));
  }
});
