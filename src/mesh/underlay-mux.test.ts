import { test } from 'node:test';
import assert from 'node:assert/strict';
import { classifyUnderlay, DISCO_MAGIC } from './underlay-mux.js';

test('underlay: STUN, discovery and nothing else are told apart by their first bytes', () => {
  // RFC 5769 2.1 sample request header: type 0x0001, length 0x0058, cookie 0x2112a442.
  const stun = Buffer.alloc(20 + 0x58);
  stun.writeUInt16BE(0x0001, 0); stun.writeUInt16BE(0x0058, 2); stun.writeUInt32BE(0x2112a442, 4);
  assert.equal(classifyUnderlay(stun, stun.length), 'stun');
  assert.equal(classifyUnderlay(stun, stun.length - 4), null, 'the length field must cover the datagram');
  const disco = Buffer.concat([DISCO_MAGIC, Buffer.alloc(40)]);
  assert.equal(disco.subarray(0, 7).toString(), 'MTdisco');
  assert.equal(classifyUnderlay(disco, disco.length), 'disco');
  // WireGuard messages (type 1-4, then three zero bytes) are neither.
  for (const t of [1, 2, 3, 4]) {
    const wg = Buffer.alloc(148);
    wg[0] = t;
    assert.equal(classifyUnderlay(wg, wg.length), null);
  }
  assert.equal(classifyUnderlay(Buffer.alloc(3), 3), null);
});
