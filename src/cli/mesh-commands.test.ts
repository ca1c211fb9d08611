// `meshtun up` flags of a mesh node: values, `--flag=value`, and mistakes named as UserErrors.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { UserError } from '../util/index.js';
import { parseMeshUpFlags } from './mesh-commands.js';

test('mesh up flags: join, token, name, listen, interface, userspace', () => {
  const f = parseMeshUpFlags(['--join', 'meshtun://198.18.0.1:7443/key', '--token=mtj1_x', '--name', 'web', '--listen', '0.0.0.0:7000', '--interface', 'mt9', '--userspace']);
  assert.equal(f.join, 'meshtun://198.18.0.1:7443/key');
  assert.equal(f.token, 'mtj1_x');
  assert.equal(f.name, 'web');
  assert.equal(f.listen, '0.0.0.0:7000');
  assert.equal(f.interfaceName, 'mt9');
  assert.equal(f.userspace, true);
  assert.equal(f.tun, false);
  assert.deepEqual(parseMeshUpFlags([]), { tun: false, userspace: false });
});

test('mesh up flags: mistakes are user errors', () => {
  assert.throws(() => parseMeshUpFlags(['--join']), (e: unknown) => e instanceof UserError && /--join needs a value/.test(e.message));
  assert.throws(() => parseMeshUpFlags(['--token', 'mtj1_x']), (e: unknown) => e instanceof UserError && /--join/.test(e.message));
  assert.throws(() => parseMeshUpFlags(['--bogus']), (e: unknown) => e instanceof UserError && /unknown option "--bogus"/.test(e.message));
});

test('mesh up flags: --tun, proxies (the userspace stack is the default: neither flag set)', () => {
  const f = parseMeshUpFlags(['--tun']);
  assert.equal(f.tun, true);
  assert.equal(f.userspace, false);
  const p = parseMeshUpFlags(['--socks5', '127.0.0.1:1081', '--http-proxy=off']);
  assert.equal(p.socks5, '127.0.0.1:1081');
  assert.equal(p.httpProxy, 'off');
  assert.equal(p.tun, false);
  assert.throws(() => parseMeshUpFlags(['--socks5']), (e: unknown) => e instanceof UserError && /--socks5 needs a value/.test(e.message));
});

test('mesh up flags: proxy credentials', () => {
  const f = parseMeshUpFlags(['--socks5', '0.0.0.0:1080', '--socks5-user', 'alice', '--socks5-password=s3cret', '--http-proxy-user', 'bob', '--http-proxy-password', 'pw']);
  assert.equal(f.socks5, '0.0.0.0:1080');
  assert.equal(f.socks5User, 'alice');
  assert.equal(f.socks5Password, 's3cret');
  assert.equal(f.httpProxyUser, 'bob');
  assert.equal(f.httpProxyPassword, 'pw');
  assert.throws(() => parseMeshUpFlags(['--socks5-user']), (e: unknown) => e instanceof UserError && /--socks5-user needs a value/.test(e.message));
});

test('mesh up flags: --endpoint is repeatable and must be an address:port', () => {
  const f = parseMeshUpFlags(['--endpoint', '198.18.0.7:51820', '--endpoint=[FD00::7]:51820']);
  assert.deepEqual(f.endpoints, ['198.18.0.7:51820', '[fd00::7]:51820']);
  assert.throws(() => parseMeshUpFlags(['--endpoint', 'router.example:51820']),
    (e: unknown) => e instanceof UserError && /^--endpoint "router.example:51820": not an address:port$/.test(e.message));
  assert.throws(() => parseMeshUpFlags(['--endpoint']), (e: unknown) => e instanceof UserError && /--endpoint needs a value/.test(e.message));
});
