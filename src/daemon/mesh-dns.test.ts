// Proxy address flags and the mesh name resolver the userspace node's proxies use.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { UserError } from '../util/index.js';
import { parseProxyAddress, meshProxySettings } from './mesh-dns.js';
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

test('mesh proxies beyond loopback need credentials (flags, or the environment for secrets)', () => {
  const refused = (opts: Parameters<typeof meshProxySettings>[0], re: RegExp, hint: RegExp, env: NodeJS.ProcessEnv = {}) =>
    assert.throws(() => meshProxySettings(opts, env), (e: unknown) => e instanceof UserError && re.test(e.message) && hint.test(e.hint ?? ''), JSON.stringify(opts));
  refused({ socks5: '0.0.0.0:1080' }, /^--socks5 0\.0\.0\.0:1080 listens beyond this machine without credentials$/,
    /--socks5-user NAME with MESHTUN_SOCKS5_PASSWORD \(or --socks5-password\), or a loopback address: --socks5 127\.0\.0\.1:1080/);
  refused({ httpProxy: '[::]:8080' }, /^--http-proxy \[::\]:8080 listens beyond this machine/, /--http-proxy-user NAME with MESHTUN_HTTP_PROXY_PASSWORD/);
  refused({ socks5: '198.18.0.1:1080', httpProxy: 'off' }, /--socks5 198\.18\.0\.1:1080 listens beyond/, /loopback/);
  refused({ socks5User: 'alice' }, /--socks5-user needs a password/, /MESHTUN_SOCKS5_PASSWORD/);
  refused({ httpProxyPassword: 'pw' }, /--http-proxy-password needs --http-proxy-user/, /--http-proxy-user NAME/);
  refused({ socks5: 'off', socks5User: 'a', socks5Password: 'b' }, /--socks5-user is set but --socks5 is off/, /drop/);
  refused({ httpProxyUser: 'a:b', httpProxyPassword: 'c' }, /--http-proxy-user "a:b" contains ":"/, /without/);
  // Loopback needs nothing; the defaults are loopback.
  const plain = meshProxySettings({}, {});
  assert.deepEqual(plain, { socks5: { host: '127.0.0.1', port: 1080, given: false, credentials: null }, http: { host: '127.0.0.1', port: 8080, given: false, credentials: null } });
  // Credentials from flags, a password from the environment, or both from the environment.
  const s = meshProxySettings({ socks5: '0.0.0.0:1080', socks5User: 'alice', httpProxy: 'off' }, { MESHTUN_SOCKS5_PASSWORD: 's3cret' });
  assert.deepEqual(s, { socks5: { host: '0.0.0.0', port: 1080, given: true, credentials: { username: 'alice', password: 's3cret' } }, http: 'off' });
  const e = meshProxySettings({ httpProxy: '[::]:8080' }, { MESHTUN_HTTP_PROXY_USER: 'bob', MESHTUN_HTTP_PROXY_PASSWORD: 'pw:1' });
  assert.deepEqual(e.http, { host: '::', port: 8080, given: true, credentials: { username: 'bob', password: 'pw:1' } });
  // A flag wins over the environment.
  assert.deepEqual(meshProxySettings({ socks5Password: 'flag', socks5User: 'u' }, { MESHTUN_SOCKS5_PASSWORD: 'env' }).socks5, { host: '127.0.0.1', port: 1080, given: false, credentials: { username: 'u', password: 'flag' } });
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
