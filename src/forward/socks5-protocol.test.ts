// SOCKS5 codec tests: addresses of each type emitted and parsed back (with hex vectors from
// RFC 1928's layout), replies, the errno -> reply map, and the datagram-header parser fuzzed
// (never throws, never reads past its end).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  parseSocksAddress, emitSocksAddress, socksAddressLength, socksReply, udpDatagramHeader, replyForError,
  SocksAtyp, SocksReply, type SocksAddress,
} from './socks5-protocol.js';
import { Status } from '../wire/index.js';
import { fuzzParser, fuzzIterations } from '../wire/fuzz-harness.js';

test('addresses: IPv4, IPv6 and domain names round-trip', () => {
  const cases: [string, number, string][] = [
    // ATYP=1, 100.64.0.1, port 22
    ['100.64.0.1', 22, '01' + '64400001' + '0016'],
    // ATYP=4, fd00::1, port 443
    ['fd00::1', 443, '04' + 'fd000000000000000000000000000001' + '01bb'],
    // ATYP=3, length 8, "mesh.dev", port 80
    ['mesh.dev', 80, '03' + '08' + Buffer.from('mesh.dev').toString('hex') + '0050'],
  ];
  for (const [host, port, hex] of cases) {
    const buf = Buffer.alloc(socksAddressLength(host));
    assert.equal(emitSocksAddress(host, port, buf, 0), buf.length);
    assert.equal(buf.toString('hex'), hex, host);
    const out: SocksAddress = { host: '', port: 0, atyp: 0 };
    assert.equal(parseSocksAddress(buf, 0, buf.length, out), buf.length);
    assert.deepEqual(out, { host, port, atyp: buf[0] });
  }
});

test('addresses: truncated, unknown type and empty name', () => {
  const out: SocksAddress = { host: '', port: 0, atyp: 0 };
  const v4 = Buffer.from('01644000010016', 'hex');
  for (let n = 0; n < v4.length; n++) assert.equal(parseSocksAddress(v4, 0, n, out), -Status.Truncated, `length ${n}`);
  assert.equal(parseSocksAddress(Buffer.from('0201020304', 'hex'), 0, 5, out), -Status.Unsupported);
  assert.equal(parseSocksAddress(Buffer.from('03000050', 'hex'), 0, 4, out), -Status.Malformed);
});

test('replies and datagram headers', () => {
  assert.equal(socksReply(SocksReply.Succeeded, '100.64.0.2', 40000).toString('hex'), '050000' + '01' + '64400002' + '9c40');
  assert.equal(socksReply(SocksReply.ConnectionRefused).toString('hex'), '050500' + '01' + '00000000' + '0000');
  assert.equal(socksReply(SocksReply.Succeeded, 'not-an-ip', 1).toString('hex'), '050000' + '01' + '00000000' + '0001');
  assert.equal(udpDatagramHeader('100.64.0.1', 53).toString('hex'), '000000' + '01' + '64400001' + '0035');
  assert.equal(udpDatagramHeader('fd00::53', 53)[3], SocksAtyp.Ipv6);
});

test('errno names map to reply codes', () => {
  assert.equal(replyForError('ECONNREFUSED'), 0x05);
  assert.equal(replyForError('ENETUNREACH'), 0x03);
  assert.equal(replyForError('EHOSTUNREACH'), 0x04);
  assert.equal(replyForError('ENOTFOUND'), 0x04);
  assert.equal(replyForError('ETIMEDOUT'), 0x06);
  assert.equal(replyForError('EACCES'), 0x02);
  assert.equal(replyForError('EIO'), 0x01);
});

test('fuzz: parseSocksAddress never throws or reads past its end', () => {
  const seeds = [
    Buffer.from('01644000010016', 'hex'),
    Buffer.from('04fd00000000000000000000000000000101bb', 'hex'),
    Buffer.from('03086d6573682e6465760050', 'hex'),
  ];
  const out: SocksAddress = { host: '', port: 0, atyp: 0 };
  fuzzParser(seeds, (buf, off, len) => {
    const r = parseSocksAddress(buf, off, off + len, out);
    return r < 0 ? r : `${r - off} ${out.host} ${out.port} ${out.atyp}`;
  }, { iterations: fuzzIterations(100_000), maxLen: 300 });
});
