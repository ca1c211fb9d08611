// Proxy address flags and the mesh name resolver the userspace node's proxies use.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { UserError } from '../util/index.js';
import { parseProxyAddress } from './mesh-dns.js';
import { MeshNameResolver, mapRecords } from './mesh-names.js';
import type { ControlNetworkMap } from '../mesh/index.js';

test('proxy address flags: HOST:PORT, [v6]:PORT, PORT, off; mistakes are user errors', () => {
  assert.deepEqual(parseProxyAddress('127.0.0.1:1081', '--socks5'), { host: '127.0.0.1', port: 1081 });
  assert.deepEqual(parseProxyAddress('[::1]:8081', '--http-proxy'), { host: '::1', port: 8081 });
  assert.deepEqual(parseProxyAddress('9050', '--socks5'), { host: '127.0.0.1', port: 9050 });
  assert.equal(parseProxyAddress('off', '--socks5'), 'off');
  for (const bad of ['localhost:1080', '127.0.0.1', '127.0.0.1:70000', ':', '']) {
    assert.throws(() => parseProxyAddress(bad, '--socks5'), (e: unknown) => e instanceof UserError && /--socks5/.test(e.message), bad);
  }
});

function node(name: string, ipv4: string, ipv6: string) {
  return { id: name, name, publicKey: '', ipv4, ipv6, tags: [], endpoints: [], routes: [], exitNode: false, allowedIps: [] };
}

test('mesh names: <name>.mesh and <name>.<network> from the map, unknown names in the zones are ENOTFOUND, others fall back', async () => {
  const map: ControlNetworkMap = {
    version: 1, network: { id: 'n', name: 'home', ipv4Pool: '100.64.0.0/10', ulaPrefix: 'fd00:1::/48' },
    self: node('laptop', '100.64.0.2', 'fd00:1::2'), peers: [node('Web', '100.64.0.3', 'fd00:1::3'), node('v6only', '', 'fd00:1::4')],
  };
  const fallbackAsked: string[] = [];
  const r = new MeshNameResolver({ resolve: async (h) => { fallbackAsked.push(h); return { address: '192.0.2.1', family: 4 }; } });
  r.setRecords(mapRecords(map));
  assert.deepEqual(await r.resolve('web.mesh'), { address: '100.64.0.3', family: 4 });
  assert.deepEqual(await r.resolve('WEB.home.'), { address: '100.64.0.3', family: 4 });
  assert.deepEqual(await r.resolve('laptop.mesh'), { address: '100.64.0.2', family: 4 });
  assert.deepEqual(await r.resolve('v6only.mesh'), { address: 'fd00:1::4', family: 6 });
  assert.deepEqual(await r.resolve('100.64.0.9'), { address: '100.64.0.9', family: 4 });
  await assert.rejects(r.resolve('nobody.mesh'), (e: unknown) => (e as { code?: string }).code === 'ENOTFOUND');
  await assert.rejects(r.resolve('nobody.home'), (e: unknown) => (e as { code?: string }).code === 'ENOTFOUND');
  assert.deepEqual(await r.resolve('example.com'), { address: '192.0.2.1', family: 4 });
  assert.deepEqual(fallbackAsked, ['example.com']);
});
