// Tests of the wg-quick file parser: a full file, wg-quick's leniencies (case, comments,
// whitespace, repeats), every mistake as a ConfigError with file:line and a fix, interface names
// from paths, rendering the wg(8) part, endpoint resolution, and mutated files (ConfigError or a
// result, never anything else).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  parseWgQuickConfig, readWgQuickConfig, interfaceNameFromPath, renderWgConfig, resolveEndpoint, formatPrefix,
  isInterfaceName,
} from './wg-quick-config.js';
import { ConfigError, UserError } from '../util/index.js';
import { encodeBase64Key, publicKey } from '../crypto/index.js';
import { Prng, mutate, fuzzIterations } from '../wire/fuzz-harness.js';

const PRIV = encodeBase64Key(Buffer.alloc(32, 0x11));
const PUB_OWN = encodeBase64Key(publicKey(Buffer.alloc(32, 0x11)));
const PEER1 = encodeBase64Key(Buffer.alloc(32, 0x22));
const PEER2 = encodeBase64Key(Buffer.alloc(32, 0x33));
const PSK = encodeBase64Key(Buffer.alloc(32, 0x44));

const FULL = `# mt0: an example
[Interface]
PrivateKey = ${PRIV}
ListenPort = 51820
FwMark = 0x1234
Address = 100.64.0.1/24, fd00::1/64
Address = 100.64.1.1
DNS = 100.64.0.53, fd00::53, mesh.example, corp.example
MTU = 1420
Table = 1234
PreUp = echo pre-up %i # kept, a shell comment
PostUp = ip rule add table 1234
PostUp = echo second
PreDown = echo pre-down
PostDown = echo post-down
SaveConfig = true

[Peer]
PublicKey = ${PEER1}
PresharedKey = ${PSK}
AllowedIPs = 10.0.0.0/24, fd00:1::/64
AllowedIPs = 10.1.0.0/16
Endpoint = vpn.example.com:51820
PersistentKeepalive = 25

[Peer]
PublicKey = ${PEER2}
AllowedIPs = 100.64.2.3/32
Endpoint = [fd00::2]:51821
PersistentKeepalive = off
`;

function err(text: string, file = 'mt0.conf'): ConfigError {
  try {
    parseWgQuickConfig(text, file);
  } catch (e) {
    assert.ok(e instanceof ConfigError, `not a ConfigError: ${String(e)}`);
    return e;
  }
  assert.fail(`no error for:\n${text}`);
}

const iface = (extra = '') => `[Interface]\nPrivateKey = ${PRIV}\n${extra}`;

test('wg-quick: a full file', () => {
  const c = parseWgQuickConfig(FULL, 'mt0.conf');
  const it = c.interface;
  assert.equal(encodeBase64Key(it.privateKey), PRIV);
  assert.equal(it.listenPort, 51820);
  assert.equal(it.fwmark, 0x1234);
  assert.deepEqual(it.addresses.map(formatPrefix), ['100.64.0.1/24', 'fd00::1/64', '100.64.1.1/32']);
  assert.deepEqual(it.dns, ['100.64.0.53', 'fd00::53']);
  assert.deepEqual(it.dnsSearch, ['mesh.example', 'corp.example']);
  assert.equal(it.mtu, 1420);
  assert.deepEqual(it.table, { kind: 'id', id: 1234 });
  assert.deepEqual(it.preUp, ['echo pre-up %i # kept, a shell comment']);
  assert.deepEqual(it.postUp, ['ip rule add table 1234', 'echo second']);
  assert.deepEqual(it.preDown, ['echo pre-down']);
  assert.deepEqual(it.postDown, ['echo post-down']);
  assert.equal(it.saveConfig, true);
  assert.equal(c.peers.length, 2);
  const [p1, p2] = c.peers;
  assert.equal(encodeBase64Key(p1!.publicKey), PEER1);
  assert.equal(encodeBase64Key(p1!.presharedKey!), PSK);
  assert.deepEqual(p1!.allowedIps.map(formatPrefix), ['10.0.0.0/24', 'fd00:1::/64', '10.1.0.0/16']);
  assert.equal(p1!.endpoint, 'vpn.example.com:51820');
  assert.equal(p1!.persistentKeepalive, 25);
  assert.equal(p1!.line, 18);
  assert.equal(p2!.presharedKey, null);
  assert.equal(p2!.endpoint, '[fd00::2]:51821');
  assert.equal(p2!.persistentKeepalive, 0);
  assert.deepEqual(c.warnings, []);
});

test('wg-quick: case-insensitive keys, comments, whitespace, CRLF, a BOM', () => {
  const text = `\uFEFF  [interface]  \r\n  privatekey=${PRIV}   # my key\r\n\tLISTENPORT =  7 \r\naddress = 10.0.0.1/8 fd00::1/8\r\n# [Peer]\r\n[ Peer ]\r\npublickey = ${PEER1}\r\nallowedips = 10.2.0.0/16 ,fd01::/16\r\nAllowed IPs = 10.3.0.0/16\r\npersistentkeepalive = OFF\r\n`;
  const c = parseWgQuickConfig(text, 'x.conf');
  assert.equal(c.interface.listenPort, 7);
  assert.deepEqual(c.interface.addresses.map(formatPrefix), ['10.0.0.1/8', 'fd00::1/8']);
  assert.deepEqual(c.peers[0]!.allowedIps.map(formatPrefix), ['10.2.0.0/16', 'fd01::/16', '10.3.0.0/16']);
  assert.equal(c.interface.table.kind, 'auto');
  assert.equal(c.interface.mtu, null);
  assert.equal(c.interface.fwmark, null);
  assert.equal(c.interface.saveConfig, false);
});

test('wg-quick: Table, FwMark, AllowedIPs forms', () => {
  assert.deepEqual(parseWgQuickConfig(iface('Table = off'), 'a.conf').interface.table, { kind: 'off' });
  assert.deepEqual(parseWgQuickConfig(iface('Table = Auto'), 'a.conf').interface.table, { kind: 'auto' });
  assert.deepEqual(parseWgQuickConfig(iface('Table = vpn_main'), 'a.conf').interface.table, { kind: 'name', name: 'vpn_main' });
  assert.equal(parseWgQuickConfig(iface('FwMark = off'), 'a.conf').interface.fwmark, 0);
  assert.equal(parseWgQuickConfig(iface('FwMark = 51820'), 'a.conf').interface.fwmark, 51820);
  const c = parseWgQuickConfig(iface(`[Peer]\nPublicKey = ${PEER1}\nAllowedIPs = 10.1.2.3/8, 0.0.0.0/0, ::/0, fd00::1, 10.9.9.9, 10.0.0.0/8`), 'a.conf');
  assert.deepEqual(c.peers[0]!.allowedIps.map(formatPrefix), ['10.0.0.0/8', '0.0.0.0/0', '::/0', 'fd00::1/128', '10.9.9.9/32']);
  assert.deepEqual(c.warnings, ['a.conf:5: AllowedIPs "10.1.2.3/8" has bits set after the prefix; it means 10.0.0.0/8']);
  const empty = parseWgQuickConfig(iface(`[Peer]\nPublicKey = ${PEER1}\nAllowedIPs =`), 'a.conf');
  assert.deepEqual(empty.peers[0]!.allowedIps, []);
});

test('wg-quick: every mistake names file, line, the problem and the fix', () => {
  const peer = `[Peer]\nPublicKey = ${PEER1}\n`;
  const cases: [string, RegExp][] = [
    [iface(`ListenPort = 1\n\n${peer}AllowedIPs = 10.0.0.0/33`), /^mt0\.conf:7: AllowedIPs "10\.0\.0\.0\/33" has a prefix longer than 32$/],
    [iface(`${peer}AllowedIPs = fd00::/129`), /^mt0\.conf:5: AllowedIPs "fd00::\/129" has a prefix longer than 128$/],
    [iface(`${peer}AllowedIPs = 10.0.0/24`), /:5: AllowedIPs "10\.0\.0\/24" is not an IPv4 or IPv6 address with a prefix length/],
    [iface(`${peer}AllowedIPs = 10.0.0.0/x`), /:5: AllowedIPs "10\.0\.0\.0\/x" has a prefix length "x" that is not a number/],
    [iface(`${peer}AllowedIPs = 10.0.0.0/24 10.1.0.0/24`), /:5: AllowedIPs "10\.0\.0\.0\/24 10\.1\.0\.0\/24" contains a space: separate entries with commas/],
    [iface(`${peer}AllowedIPs = 10.0.0.0/24,,10.1.0.0/24`), /:5: .*empty entry: remove the extra comma/],
    [iface('Frobnicate = 1'), /^mt0\.conf:3: unknown key "Frobnicate" in \[Interface\]; known keys: PrivateKey, ListenPort/],
    [iface(`${peer}Address = 10.0.0.1/24`), /:5: Address belongs in \[Interface\], not in \[Peer\]/],
    [iface('Endpoint = 198.18.0.1:1'), /:3: Endpoint belongs in \[Peer\], not in \[Interface\]/],
    ['[Interface]\nListenPort = 1\n', /^mt0\.conf:1: \[Interface\] has no PrivateKey: add "PrivateKey = <key>" \(make one with "wg genkey"\)$/],
    [`[Interface]\nPrivateKey = ${PRIV.slice(1)}\n`, /^mt0\.conf:2: PrivateKey is not a WireGuard key: expected 44 base64 characters \(32 bytes\), as "wg genkey" prints$/],
    [`[Interface]\nPrivateKey = ${'A'.repeat(43)}B\n`, /:2: PrivateKey is not a WireGuard key/],
    [`[Interface]\nPrivateKey = ${Buffer.alloc(33).toString('base64')}\n`, /:2: PrivateKey is not a WireGuard key/],
    [iface(`[Peer]\nPublicKey = not-a-key\n`), /:4: PublicKey "not-a-key" is not a WireGuard key: expected 44 base64 characters \(32 bytes\), as "wg genkey" \/ "wg pubkey" prints/],
    [iface(`${peer}PresharedKey = short\n`), /:5: PresharedKey is not a WireGuard key/],
    [iface(`${peer}AllowedIPs = 10.0.0.0/24\n\n${peer}`), /^mt0\.conf:8: PublicKey \S+ is also the key of the peer on line 3: each peer must appear once/],
    [iface('[Peer]\nAllowedIPs = 10.0.0.0/24\n'), /^mt0\.conf:3: this \[Peer\] has no PublicKey: add "PublicKey = <the peer's key>"/],
    [iface(`[Peer]\nPublicKey = ${PUB_OWN}\n`), /^mt0\.conf:3: the peer's PublicKey .* is this interface's own public key/],
    [iface('ListenPort = 70000'), /^mt0\.conf:3: ListenPort "70000" is out of range: use a port number from 1 to 65535 \(or omit it for a random port\)$/],
    [iface('ListenPort = -1'), /:3: ListenPort "-1" is out of range/],
    [iface(`${peer}Endpoint = 198.18.0.1:0`), /:5: Endpoint "198\.18\.0\.1:0": port "0" is out of range: use a port number from 1 to 65535$/],
    [iface(`${peer}Endpoint = 198.18.0.1:65536`), /:5: Endpoint .* is out of range/],
    [iface(`${peer}Endpoint = 198.18.0.1`), /:5: Endpoint "198\.18\.0\.1" is not host:port: write e\.g\. 198\.18\.0\.1:51820/],
    [iface(`${peer}Endpoint = fd00::1:51820`), /:5: Endpoint "fd00::1:51820": put an IPv6 address in brackets, e\.g\. \[fd00::1\]:51820/],
    [iface(`${peer}Endpoint = [fd00::zz]:51820`), /:5: Endpoint .*"fd00::zz" is not an IPv6 address/],
    [iface(`${peer}Endpoint = 300.1.1.1:1`), /:5: Endpoint .*"300\.1\.1\.1" is not an IPv4 address/],
    [iface(`${peer}Endpoint = bad_host!:1`), /:5: Endpoint .* is not a host name or address/],
    [iface(`${peer}PersistentKeepalive = 70000`), /:5: PersistentKeepalive "70000" is neither "off" nor a number of seconds from 0 to 65535/],
    [iface(`${peer}PersistentKeepalive = sometimes`), /:5: PersistentKeepalive/],
    [iface('MTU = 100'), /:3: MTU "100" is not a number from 576 to 65535/],
    [iface('MTU = 1400x'), /:3: MTU "1400x"/],
    [iface('Address = fd00::1/64\nMTU = 1000'), /^mt0\.conf:1: MTU 1000 is below 1280, the least IPv6 needs/],
    [iface('SaveConfig = yes'), /:3: SaveConfig "yes" is neither true nor false/],
    [iface('FwMark = 0x100000000'), /:3: FwMark "0x100000000" is neither "off" nor a number/],
    [iface('FwMark = mark'), /:3: FwMark "mark"/],
    [iface('Table = 0'), /:3: Table "0" is not a routing table number/],
    [iface('Table = my table!'), /:3: Table "my table!" is not "off", "auto"/],
    [iface('DNS = 1.2.3.999'), /:3: DNS "1\.2\.3\.999" is not an IP address/],
    [iface('DNS = bad!domain'), /:3: DNS "bad!domain" is neither an IP address nor a search domain/],
    [iface('Address = 10.0.0.1/40'), /:3: Address "10\.0\.0\.1\/40" has a prefix longer than 32/],
    [iface('Address = host.example'), /:3: Address "host\.example" is not an IPv4 or IPv6 address/],
    [iface('ListenPort = 1\nListenPort = 2'), /:4: ListenPort is set twice in this section \(also on line 3\): keep one/],
    [iface('ListenPort ='), /:3: ListenPort has no value/],
    [iface(`[Interface]\nPrivateKey = ${PRIV}`), /:3: a second \[Interface\] section \(the first is on line 1\)/],
    [`[Peer]\nPublicKey = ${PEER1}\n`, /^mt0\.conf: no \[Interface\] section/],
    [`PrivateKey = ${PRIV}\n[Interface]\n`, /^mt0\.conf:1: PrivateKey is outside a section/],
    [iface('just words'), /:3: "just words" is not a "Key = value" line/],
    [iface('[Peers]'), /:3: unknown section \[Peers\]: use \[Interface\], \[Peer\] or \[Meshtun\]/],
    [iface(`${peer}AllowedIPs = 0.0.0.0/0\n[Peer]\nPublicKey = ${PEER2}\nAllowedIPs = 0.0.0.0/0`),
      /^mt0\.conf:8: AllowedIPs "0\.0\.0\.0\/0" is already given to the peer on line 3 \(line 5\): an address range can belong to one peer only$/],
  ];
  for (const [text, re] of cases) {
    const e = err(text);
    assert.match(e.message, re, text);
    assert.equal(e.message.includes(PRIV), false, 'a private key is never shown');
  }
});

test('wg-quick: the same allowed IP twice for one peer is kept once', () => {
  const c = parseWgQuickConfig(iface(`[Peer]\nPublicKey = ${PEER1}\nAllowedIPs = 10.0.0.0/24\nAllowedIPs = 10.0.0.0/24, 10.0.0.7/24`), 'a.conf');
  assert.deepEqual(c.peers[0]!.allowedIps.map(formatPrefix), ['10.0.0.0/24']);
});

test('wg-quick: interface names from paths', () => {
  assert.equal(interfaceNameFromPath('/etc/wireguard/mt0.conf'), 'mt0');
  assert.equal(interfaceNameFromPath('wg_home-1.=+.conf'), 'wg_home-1.=+');
  assert.equal(interfaceNameFromPath('/x/abcdefghijklmno.conf'), 'abcdefghijklmno');
  for (const bad of ['/etc/wireguard/mt0', '/etc/wireguard/abcdefghijklmnop.conf', '/x/my vpn.conf', '/x/.conf', '/x/a$b.conf']) {
    assert.throws(() => interfaceNameFromPath(bad), (e: unknown) => e instanceof ConfigError && /must be an interface name/.test(e.message), bad);
  }
  assert.equal(isInterfaceName('mt0'), true);
  assert.equal(isInterfaceName('mt/0'), false);
});

test('wg-quick: the wg(8) part renders as setconf text', () => {
  const c = parseWgQuickConfig(FULL, 'mt0.conf');
  assert.equal(renderWgConfig(c),
    `[Interface]\nPrivateKey = ${PRIV}\nListenPort = 51820\nFwMark = 0x1234\n\n` +
    `[Peer]\nPublicKey = ${PEER1}\nPresharedKey = ${PSK}\nAllowedIPs = 10.0.0.0/24, fd00:1::/64, 10.1.0.0/16\n` +
    'Endpoint = vpn.example.com:51820\nPersistentKeepalive = 25\n\n' +
    `[Peer]\nPublicKey = ${PEER2}\nAllowedIPs = 100.64.2.3/32\nEndpoint = [fd00::2]:51821\n`);
  // Rendered text parses back to the same wg part.
  const back = parseWgQuickConfig(renderWgConfig(c), 'b.conf');
  assert.deepEqual(back.peers, c.peers.map((p) => ({ ...p, line: back.peers[c.peers.indexOf(p)]!.line })));
});

test('wg-quick: endpoints resolve to ip:port', async () => {
  const fake = async (host: string) => {
    if (host === 'v4.example') return { address: '198.18.0.9', family: 4 };
    if (host === 'v6.example') return { address: 'fd00::9', family: 6 };
    throw Object.assign(new Error('not found'), { code: 'ENOTFOUND' });
  };
  assert.equal(await resolveEndpoint('198.18.0.1:51820', fake), '198.18.0.1:51820');
  assert.equal(await resolveEndpoint('[FD00:0::1]:51820', fake), '[fd00::1]:51820');
  assert.equal(await resolveEndpoint('[fe80::1%veth0]:7', fake), '[fe80::1%veth0]:7');
  assert.equal(await resolveEndpoint('v4.example:51820', fake), '198.18.0.9:51820');
  assert.equal(await resolveEndpoint('v6.example:1', fake), '[fd00::9]:1');
  await assert.rejects(resolveEndpoint('nx.example:1', fake), (e: unknown) => e instanceof UserError && /cannot resolve endpoint "nx\.example:1": ENOTFOUND/.test(e.message));
  for (const bad of ['host', 'host:0', 'host:99999', 'fd00::1:5', '[198.18.0.1]:5', ':5', 'a b:5']) {
    await assert.rejects(resolveEndpoint(bad, fake), UserError, bad);
  }
  // The real resolver, through /etc/hosts.
  assert.match(await resolveEndpoint('localhost:51820'), /^(127\.0\.0\.1|\[::1\]):51820$/);
});

test('wg-quick: reading a file', () => {
  const dir = mkdtempSync(join(tmpdir(), 'meshtun-wgq-'));
  try {
    const path = join(dir, 'mt0.conf');
    writeFileSync(path, FULL);
    assert.equal(readWgQuickConfig(path).peers.length, 2);
    assert.throws(() => readWgQuickConfig(join(dir, 'none.conf')), /none\.conf: cannot read the file/);
    writeFileSync(path, iface('MTU = 10'));
    assert.throws(() => readWgQuickConfig(path), new RegExp(`^ConfigError: ${path.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}:3: MTU`));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

const MESHTUN = `[Interface]
PrivateKey = ${PRIV}
Address = 100.64.0.2/24, fd00::2/64
DNS = 100.64.0.53

[Meshtun]
mode = Userspace
Socks5 = 127.0.0.1:1081
Socks5User = alice
Socks5Password = s3cret #1 (a hash is part of the password)
HttpProxy = [::1]:8081
Forward = tcp:127.0.0.1:2222=100.64.0.1:22, udp:5353=100.64.0.1:53
Forward = [::1]:2223=db.corp.example:5432
Reverse = tcp:80=127.0.0.1:8000
Reverse = udp:100.64.0.2:53=127.0.0.1:5353
MaxConnections = 100

[Peer]
PublicKey = ${PEER1}
AllowedIPs = 100.64.0.0/24
`;

test('[Meshtun]: mode, proxies, credentials, forwards both ways, limits', () => {
  const c = parseWgQuickConfig(MESHTUN, 'mt0.conf');
  const m = c.meshtun;
  assert.equal(m.line, 6);
  assert.equal(m.mode, 'userspace');
  assert.deepEqual(m.socks5, { host: '127.0.0.1', port: 1081 });
  assert.equal(m.socks5User, 'alice');
  assert.equal(m.socks5Password, 's3cret #1 (a hash is part of the password)');
  assert.deepEqual(m.httpProxy, { host: '::1', port: 8081 });
  assert.deepEqual(m.forwards.map((f) => f.text), ['tcp:127.0.0.1:2222=100.64.0.1:22', 'udp:127.0.0.1:5353=100.64.0.1:53', 'tcp:[::1]:2223=db.corp.example:5432']);
  assert.deepEqual(m.reverses.map((f) => f.text), ['tcp:80=127.0.0.1:8000', 'udp:100.64.0.2:53=127.0.0.1:5353']);
  assert.equal(m.maxConnections, 100);
  assert.equal(c.peers.length, 1, 'a [Peer] after [Meshtun] is still read');
  assert.doesNotMatch(renderWgConfig(c), /Meshtun|Socks5|Forward/i, 'wg(8) never sees the section');

  const plain = parseWgQuickConfig(FULL, 'mt0.conf').meshtun;
  assert.deepEqual(plain, {
    line: 0, mode: null, socks5: null, socks5User: null, socks5Password: null, httpProxy: null, httpProxyUser: null, httpProxyPassword: null,
    forwards: [], reverses: [], maxConnections: null, policy: null,
  });
  const off = parseWgQuickConfig(iface('[Meshtun]\nMode = tun\nSocks5 = off\nHttpProxy = OFF\nSocks5 = ').replace(/Socks5 = $/, ''), 'mt0.conf').meshtun;
  assert.equal(off.mode, 'tun');
  assert.equal(off.socks5, 'off');
  assert.equal(off.httpProxy, 'off');
  assert.deepEqual(parseWgQuickConfig(iface('[Meshtun]\nSocks5 = 1090\n'), 'mt0.conf').meshtun.socks5, { host: '127.0.0.1', port: 1090 });
});

test('[Meshtun]: proxies beyond loopback with credentials (SOCKS5 username/password, HTTP Basic)', () => {
  const m = parseWgQuickConfig(iface('Address = 100.64.0.2/24\n[Meshtun]\nSocks5 = 0.0.0.0:1080\nSocks5User = alice\nSocks5Password = s3cret\n' +
    'HttpProxy = [::]:8080\nHttpProxyUser = bob\nHttpProxyPassword = #pass word: with colons\n'), 'mt0.conf').meshtun;
  assert.deepEqual(m.socks5, { host: '0.0.0.0', port: 1080 });
  assert.deepEqual(m.httpProxy, { host: '::', port: 8080 });
  assert.equal(m.httpProxyUser, 'bob');
  assert.equal(m.httpProxyPassword, '#pass word: with colons');
});

test('[Meshtun]: every mistake names file, line, the problem and the fix', () => {
  const m = (body: string) => iface(`Address = 100.64.0.2/24\n[Meshtun]\n${body}`);
  const cases: [string, RegExp][] = [
    [m('Mode = kernel'), /^mt0\.conf:5: Mode "kernel" is neither "tun" .* nor "userspace"/],
    [m('Mode = tun\nMode = userspace'), /:6: Mode is set twice in this section \(also on line 5\)/],
    [m('Socks5 = localhost:1080'), /:5: Socks5 "localhost:1080": "localhost" is not an IP address/],
    [m('Socks5 = ::1:1080'), /:5: Socks5 "::1:1080": put an IPv6 address in brackets, e\.g\. \[::1\]:1080/],
    [m('HttpProxy = 127.0.0.1:99999'), /:5: HttpProxy "127\.0\.0\.1:99999" is not address:port, a port, or "off"/],
    [m('Socks5 = [fd00::zz]:1080'), /:5: Socks5 "\[fd00::zz\]:1080": "fd00::zz" is not an IPv6 address/],
    [m('Socks5User = alice'), /:4: \[Meshtun\] has Socks5User without Socks5Password: give both, or neither/],
    [m('Socks5Password = x'), /:4: \[Meshtun\] has Socks5Password without Socks5User/],
    [m(`Socks5User = ${'u'.repeat(256)}`), /:5: Socks5User is longer than 255 bytes/],
    [m('Socks5 = off\nSocks5User = a\nSocks5Password = b'), /:4: Socks5User is set but Socks5 = off/],
    [m('Socks5 = 1080\nHttpProxy = 127.0.0.1:1080'), /:4: Socks5 and HttpProxy both listen on 127\.0\.0\.1:1080/],
    [m('Socks5 = 0.0.0.0:1080'), /:4: Socks5 = 0\.0\.0\.0:1080 listens beyond this machine without credentials: give Socks5User and Socks5Password, or a loopback address such as 127\.0\.0\.1:1080/],
    [m('HttpProxy = [::]:8080\nSocks5User = a\nSocks5Password = b'), /:4: HttpProxy = \[::\]:8080 listens beyond this machine without credentials: give HttpProxyUser and HttpProxyPassword, or a loopback address/],
    [m('HttpProxyUser = alice'), /:4: \[Meshtun\] has HttpProxyUser without HttpProxyPassword: give both, or neither/],
    [m('HttpProxyPassword = x'), /:4: \[Meshtun\] has HttpProxyPassword without HttpProxyUser/],
    [m('HttpProxyUser = a:b\nHttpProxyPassword = c'), /:5: HttpProxyUser "a:b" contains ":", which Basic authentication cannot carry: pick a username without it/],
    [m('HttpProxy = off\nHttpProxyUser = a\nHttpProxyPassword = b'), /:4: HttpProxyUser is set but HttpProxy = off/],
    [m('Forward = tcp:1080=100.64.0.1:22'), /:4: Forward "tcp:127\.0\.0\.1:1080=100\.64\.0\.1:22" listens on the same port as Socks5 = 127\.0\.0\.1:1080/],
    [m('Forward = tcp:2222'), /:5: Forward "tcp:2222": expected exactly one "=" .*; write \[tcp:\|udp:\]\[listen-host:\]listen-port=target-host:target-port/],
    [m('Forward ='), /:5: Forward has no value/],
    [m('Reverse = sctp:80=127.0.0.1:8000'), /:5: Reverse "sctp:80=127\.0\.0\.1:8000": unknown protocol "sctp"/],
    [m('Forward = 2222=100.64.0.1:22\nForward = tcp:127.0.0.1:2222=100.64.0.1:23'), /:6: Forward "tcp:127\.0\.0\.1:2222=100\.64\.0\.1:23" listens on the same tcp port/],
    [m('Reverse = tcp:100.64.0.9:80=127.0.0.1:8000'), /:4: Reverse "tcp:100\.64\.0\.9:80=127\.0\.0\.1:8000" listens on 100\.64\.0\.9, which is not an Address of this interface \(100\.64\.0\.2\)/],
    [m('MaxConnections = 0'), /:5: MaxConnections "0" is not a number from 1 to 1000000/],
    [m('PrivateKey = x'), /:5: PrivateKey belongs in \[Interface\], not in \[Meshtun\]/],
    [iface('Socks5 = 1080'), /:3: Socks5 belongs in \[Meshtun\], not in \[Interface\]/],
    [m('Frobnicate = 1'), /:5: unknown key "Frobnicate" in \[Meshtun\]; known keys: Mode, Socks5/],
    [`${m('')}\n[Meshtun]\n`, /:6: a second \[Meshtun\] section \(the first is on line 4\)/],
  ];
  for (const [text, re] of cases) assert.match(err(text).message, re, text);
});

test('wg-quick: mutated files give a result or a ConfigError, nothing else', () => {
  const rng = new Prng(0xc0f);
  const seed = Buffer.from(FULL + MESHTUN.slice(MESHTUN.indexOf('[Meshtun]')).replace(/\[Peer\][^]*$/, ''));
  const out = Buffer.alloc(4096);
  let ok = 0;
  let refused = 0;
  for (let i = 0; i < fuzzIterations(3000); i++) {
    const n = mutate(rng, seed, out);
    const text = out.toString('latin1', 0, n);
    try {
      parseWgQuickConfig(text, 'f.conf');
      ok++;
    } catch (e) {
      if (!(e instanceof ConfigError)) throw new Error(`input #${i} threw ${String(e)}:\n${text}`);
      assert.match(e.message, /^f\.conf(:\d+)?: /);
      refused++;
    }
  }
  assert.ok(ok > 0 && refused > 0, `${ok} parsed, ${refused} refused`);
});
