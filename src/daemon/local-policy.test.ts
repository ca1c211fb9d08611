import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError } from '../util/index.js';
import { PolicyError } from '../mesh/index.js';
import { ipv4Packet, udpPacket } from '../stack/testing.js';
import { parseWgQuickConfig } from './wg-quick-config.js';
import { compileLocalPolicy, loadLocalPolicy, localPolicyFilter, localPolicyPath } from './local-policy.js';

const dir = mkdtempSync(join(tmpdir(), 'meshtun-policy-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const CONF = `[Interface]
PrivateKey = yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk=
Address = 100.64.0.2/24

[Meshtun]
Policy = acl.hujson
`;

const SSH_FROM_NET = `{
  // SSH from the office prefix only
  "acls": [ { "src": ["100.64.0.0/24"], "dst": ["100.64.0.2:22"], "proto": "tcp" } ],
}`;

function tcpSyn(src: string, dst: string, dport: number): Buffer {
  const h = Buffer.alloc(20);
  h.writeUInt16BE(40000, 0);
  h.writeUInt16BE(dport, 2);
  h[12] = 5 << 4;
  h[13] = 0x02;
  return ipv4Packet(src, dst, 6, h);
}

test('[Meshtun] Policy: parsed, single, not empty; relative to the config file', () => {
  const m = parseWgQuickConfig(CONF, '/etc/wireguard/mt0.conf').meshtun;
  assert.equal(m.policy, 'acl.hujson');
  assert.equal(localPolicyPath(m.policy!, '/etc/wireguard/mt0.conf'), '/etc/wireguard/acl.hujson');
  assert.equal(localPolicyPath('/srv/acl.hujson', '/etc/wireguard/mt0.conf'), '/srv/acl.hujson');
  assert.equal(parseWgQuickConfig(CONF.replace('[Meshtun]\nPolicy = acl.hujson\n', ''), 'mt0.conf').meshtun.policy, null);
  assert.throws(() => parseWgQuickConfig(`${CONF}Policy = b.hujson\n`, 'mt0.conf'), ConfigError);
  assert.throws(() => parseWgQuickConfig(CONF.replace('acl.hujson', ''), 'mt0.conf'), /mt0\.conf:6: Policy has no value/);
});


test('local policy: a filter from the file allows what the rules allow and nothing else', () => {
  writeFileSync(join(dir, 'acl.hujson'), SSH_FROM_NET);
  const f = localPolicyFilter('acl.hujson', join(dir, 'mt0.conf'), 6);
  const ok = tcpSyn('100.64.0.1', '100.64.0.2', 22);
  assert.equal(f.inbound(ok, 0, ok.length), true);
  const web = tcpSyn('100.64.0.1', '100.64.0.2', 80);
  assert.equal(f.inbound(web, 0, web.length), false);
  const far = tcpSyn('100.64.9.1', '100.64.0.2', 22);
  assert.equal(f.inbound(far, 0, far.length), false, 'source outside the prefix');
  const dns = udpPacket('100.64.0.1', '100.64.0.2', 5000, 22, Buffer.from('x'));
  assert.equal(f.inbound(dns, 0, dns.length), false, 'TCP only');
});

test('local policy: mistakes are refused with file, line and rule', () => {
  assert.throws(() => loadLocalPolicy(join(dir, 'missing.hujson'), 'mt0.conf', 6), (e: unknown) =>
    e instanceof ConfigError && /^mt0\.conf:6: cannot read the Policy file .*missing\.hujson/.test(e.message));
  const tagged = `{\n  "tags": ["tag:ops"],\n  "acls": [\n    { "src": ["100.64.0.0/24"], "dst": ["*:53"] },\n    { "src": ["tag:ops"], "dst": ["*:22"], "proto": "tcp" },\n  ],\n}`;
  assert.throws(() => compileLocalPolicy(tagged, 'acl.hujson'), (e: unknown) =>
    e instanceof PolicyError && e.ruleIndex === 1 && /^acl\.hujson:5: acls\[1\] .*"tag:ops" needs the mesh's node table/.test(e.message));
  assert.throws(() => compileLocalPolicy('{ "acls": [ { "src": ["web-1"], "dst": ["*:*"] } ] }', 'acl.hujson'), /"web-1" needs the mesh's node table/);
  assert.throws(() => compileLocalPolicy('{ "acls": [ { "src": ["100.64.0.1/24"], "dst": ["*:*"] } ] }', 'acl.hujson'), PolicyError, 'host bits set');
  assert.equal(compileLocalPolicy('{ "acls": [] }', 'acl.hujson').warnings.length, 0);
});
