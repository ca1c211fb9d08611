// Who may use the local proxies: a SOCKS5 proxy or an HTTP proxy asked to listen beyond this
// machine (any address that is not loopback) without credentials is refused before it listens;
// with credentials, or on a loopback address, it listens. Basic credentials are parsed strictly.
// (The credentials themselves are exercised end to end in socks5.test.ts and http-proxy.test.ts.)

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { UserError } from '../util/index.js';
import { KernelTunnelNet, type TunnelNet } from './dialer.js';
import { SystemResolver } from './resolver.js';
import { Socks5Server } from './socks5.js';
import { HttpProxy } from './http-proxy.js';
import { isLoopbackHost, parseBasicCredentials, ProxyExposureError } from './proxy-auth.js';

/** A host side that records where it was asked to listen and never opens a socket. */
function recordingNet(): { net: TunnelNet; listened: string[] } {
  const listened: string[] = [];
  const kernel = new KernelTunnelNet();
  return {
    listened,
    net: {
      kind: 'recording',
      connectTcp: (h, p, o) => kernel.connectTcp(h, p, o),
      udpSocket: (f, p, h) => kernel.udpSocket(f, p, h),
      listenTcp: (host, port) => {
        listened.push(host);
        return Promise.resolve({ address: { host, port: port || 1 }, close: () => Promise.resolve() });
      },
    },
  };
}

const BEYOND = ['0.0.0.0', '::', '', '198.18.0.1', 'fd00::1', '::ffff:198.18.0.1'];
const LOOPBACK = ['127.0.0.1', '127.0.0.53', '::1', '::ffff:127.0.0.1', 'localhost'];

for (const kind of ['SOCKS5', 'HTTP'] as const) {
  const listen = (local: TunnelNet, host: string, creds: boolean): Promise<unknown> => {
    const opts = { local, tunnel: local, resolver: new SystemResolver(), host, port: 1080, ...(creds ? { username: 'alice', password: 's3cret' } : {}) };
    return kind === 'SOCKS5' ? Socks5Server.listen(opts) : HttpProxy.listen(opts);
  };

  test(`${kind}: a non-loopback listen address without credentials is a user error, and nothing listens`, async () => {
    const { net, listened } = recordingNet();
    for (const host of BEYOND) {
      await assert.rejects(listen(net, host, false), (e: unknown) => {
        assert.ok(e instanceof ProxyExposureError && e instanceof UserError, String(e));
        assert.match(e.message, /listens beyond this machine/);
        assert.match(e.message + (e.hint ?? ''), /username and (a )?password|loopback address/);
        return true;
      }, `host "${host}"`);
    }
    assert.deepEqual(listened, []);
  });

  test(`${kind}: with credentials it may listen anywhere; without, on loopback only`, async () => {
    const { net, listened } = recordingNet();
    for (const host of BEYOND) await listen(net, host, true);
    for (const host of LOOPBACK) await listen(net, host, false);
    assert.deepEqual(listened, [...BEYOND, ...LOOPBACK]);
  });
}

test('isLoopbackHost', () => {
  for (const h of LOOPBACK) assert.equal(isLoopbackHost(h), true, h);
  for (const h of [...BEYOND, '128.0.0.1', '::2', 'example.com', '[::1]']) assert.equal(isLoopbackHost(h), false, h);
});

test('parseBasicCredentials: "Basic base64(user:password)", the password may hold colons', () => {
  const b64 = (s: string) => Buffer.from(s, 'utf8').toString('base64');
  assert.deepEqual(parseBasicCredentials(`Basic ${b64('alice:s3:cret')}`)?.map(String), ['alice', 's3:cret']);
  assert.deepEqual(parseBasicCredentials(`basic   ${b64('bob:')}`)?.map(String), ['bob', '']);
  for (const bad of [undefined, '', 'Basic', `Bearer ${b64('a:b')}`, `Basic ${b64('nocolon')}`, 'Basic !!!', `Basic ${b64('a:b')} extra`]) {
    assert.equal(parseBasicCredentials(bad), null, String(bad));
  }
});
