import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigError } from '../../util/index.js';
import { parsePolicy, PolicyError } from './policy.js';
import { compilePolicy, type AclNode } from './compile.js';
import { parseHujson, HujsonSyntaxError } from './hujson.js';
import { PacketFlow, FlowKind } from './flow.js';

const POLICY = `// the lab's policy
{
  "groups": {
    "group:ops": ["alice", "Bob"], // people who run things
  },
  /* tags given at join */
  "tags": ["tag:ops", "tag:web"],
  "acls": [
    { "src": ["tag:ops", "group:ops"], "dst": ["tag:web:22"], "proto": "tcp" },
    { "action": "accept", "src": ["*"], "dst": ["tag:web:80,443", "node-db:5432-5433"] },
    { "src": ["100.64.0.0/10", "fd00::/8"], "dst": ["[fd00::53]:53", "100.64.0.53:53"], "proto": "UDP" },
    { "src": ["group:ops"], "dst": ["*:*"], "proto": "icmp" },
  ],
}
`;

const NODES: AclNode[] = [
  { name: 'alice', addresses: ['100.64.0.1', 'fd00::1'] },
  { name: 'bob', addresses: ['100.64.0.2', 'fd00::2'] },
  { name: 'web-1', addresses: ['100.64.0.10', 'fd00::10'], tags: ['web'] },
  { name: 'web-2', addresses: ['100.64.0.11', 'fd00::11'], tags: ['tag:web'] },
  { name: 'robot', addresses: ['100.64.0.20', 'fd00::20'], tags: ['ops'] },
  { name: 'node-db', addresses: ['100.64.0.30'] },
  { name: 'guest', addresses: ['100.64.0.40', 'fd00::40'] },
];

function flow(src: string, dst: string, proto: 'tcp' | 'udp' | 'icmp' | 'gre', dstPort = 0): PacketFlow {
  const f = new PacketFlow();
  const words = (a: string, out: Int32Array) => {
    out.fill(0);
    if (a.includes(':')) {
      const b = Buffer.alloc(16);
      const parts = a.split('::');
      const head = parts[0] ? parts[0].split(':') : [];
      const tail = parts[1] ? parts[1].split(':') : [];
      const all = [...head, ...new Array(8 - head.length - tail.length).fill('0'), ...tail];
      all.forEach((h, i) => b.writeUInt16BE(parseInt(h, 16), 2 * i));
      for (let i = 0; i < 4; i++) out[i] = b.readInt32BE(4 * i);
    } else {
      out[0] = a.split('.').reduce((v, o) => v * 256 + Number(o), 0) | 0;
    }
  };
  f.family = src.includes(':') ? 6 : 4;
  words(src, f.src);
  words(dst, f.dst);
  f.protocol = proto === 'tcp' ? 6 : proto === 'udp' ? 17 : proto === 'gre' ? 47 : f.family === 4 ? 1 : 58;
  f.kind = proto === 'tcp' ? FlowKind.Tcp : proto === 'udp' ? FlowKind.Udp : proto === 'gre' ? FlowKind.Other : FlowKind.EchoRequest;
  f.srcPort = 40000;
  f.dstPort = dstPort;
  return f;
}

test('acl policy: parses groups, tags and rules from HuJSON (comments, trailing commas)', () => {
  const p = parsePolicy(POLICY, 'lab.hujson');
  assert.deepEqual([...p.groups], [['group:ops', ['alice', 'bob']]]);
  assert.deepEqual([...p.tags], ['tag:ops', 'tag:web']);
  assert.equal(p.rules.length, 4);
  const [r0, r1, r2, r3] = p.rules;
  assert.deepEqual(r0!.src, [{ kind: 'tag', name: 'tag:ops' }, { kind: 'group', name: 'group:ops' }]);
  assert.deepEqual(r0!.dst.map((d) => [d.target, d.ports]), [[{ kind: 'tag', name: 'tag:web' }, [{ first: 22, last: 22 }]]]);
  assert.equal(r0!.proto, 'tcp');
  assert.equal(r0!.line, 9);
  assert.equal(r1!.proto, 'any');
  assert.deepEqual(r1!.dst[1]!.ports, [{ first: 5432, last: 5433 }]);
  assert.equal(r2!.proto, 'udp');
  assert.equal(r2!.dst[0]!.target.kind, 'prefix');
  assert.equal(r3!.dst[0]!.ports, null);
});

test('acl policy: compiled rules allow exactly what they say', () => {
  const c = compilePolicy(parsePolicy(POLICY, 'lab.hujson'), NODES);
  assert.deepEqual(c.warnings, []);
  const yes = (s: string, d: string, p: 'tcp' | 'udp' | 'icmp' | 'gre', port = 0) => assert.ok(c.allows(flow(s, d, p, port)), `${s} -> ${d} ${p}/${port} should pass`);
  const no = (s: string, d: string, p: 'tcp' | 'udp' | 'icmp' | 'gre', port = 0) => assert.ok(!c.allows(flow(s, d, p, port)), `${s} -> ${d} ${p}/${port} should not pass`);
  // Rule 0: tag:ops and group:ops -> tag:web tcp/22.
  yes('100.64.0.20', '100.64.0.10', 'tcp', 22); // robot (tag ops) -> web-1
  yes('fd00::1', 'fd00::11', 'tcp', 22); // alice (group ops) -> web-2 over IPv6
  no('100.64.0.40', '100.64.0.10', 'tcp', 22); // guest
  no('100.64.0.20', '100.64.0.10', 'udp', 22); // wrong protocol
  no('100.64.0.20', '100.64.0.10', 'tcp', 23); // wrong port
  no('100.64.0.20', '100.64.0.40', 'tcp', 22); // guest is not tag:web
  // Rule 1: anyone -> tag:web 80,443 and node-db 5432-5433, any protocol with ports.
  yes('100.64.0.40', '100.64.0.11', 'tcp', 443);
  yes('198.51.100.7', '100.64.0.10', 'udp', 80);
  yes('100.64.0.40', '100.64.0.30', 'tcp', 5433);
  no('100.64.0.40', '100.64.0.30', 'tcp', 5434);
  no('100.64.0.40', '100.64.0.10', 'icmp'); // proto any with ports does not cover ICMP
  no('100.64.0.40', '100.64.0.10', 'gre');
  // Rule 2: the overlay -> a DNS server on udp/53, by address.
  yes('100.64.0.40', '100.64.0.53', 'udp', 53);
  yes('fd00::40', 'fd00::53', 'udp', 53);
  no('192.0.2.1', '100.64.0.53', 'udp', 53);
  no('fd00::40', 'fd00::54', 'udp', 53);
  // Rule 3: group:ops -> anyone, ICMP.
  yes('100.64.0.2', '100.64.0.40', 'icmp');
  yes('fd00::2', 'fd00::40', 'icmp');
  no('100.64.0.20', '100.64.0.40', 'icmp'); // robot is tag ops, not group ops
});

test('acl policy: an empty rule list denies everything; unknown nodes are warnings', () => {
  const none = compilePolicy(parsePolicy('{ "acls": [] }'), NODES);
  assert.equal(none.ruleCount, 0);
  assert.ok(!none.allows(flow('100.64.0.1', '100.64.0.2', 'tcp', 22)));
  const c = compilePolicy(parsePolicy('{"groups":{"group:x":["ghost"]},"acls":[{"src":["group:x","nobody"],"dst":["alice:22"]}]}', 'p.json'), NODES);
  assert.deepEqual(c.warnings, [
    'p.json:1: acls[0]: group:x member "ghost" is not in the network',
    'p.json:1: acls[0]: node "nobody" is not in the network',
    'p.json:1: acls[0]: matches no traffic with the nodes in the network now',
  ]);
  assert.throws(() => compilePolicy(parsePolicy('{ "acls": [] }'), [{ name: 'x', addresses: ['100.64.0.300'] }]), /node "x" has address "100.64.0.300"/);
});

test('acl policy: a bad policy is refused with a message naming the file, line, rule and problem', () => {
  const rule = (r: string, extra = '') => `{\n  "groups": { "group:ops": ["alice"] },\n  "tags": ["tag:web"],${extra}\n  "acls": [\n    { "src": ["*"], "dst": ["*:22"] },\n    ${r},\n  ],\n}`;
  const cases: [string, RegExp][] = [
    [rule('{ "src": ["group:opz"], "dst": ["*:22"] }'), /^p\.hujson:6: acls\[1\] \{"src":\["group:opz"\],"dst":\["\*:22"\]\}: unknown group "group:opz" in src \(groups defined: group:ops\)$/],
    [rule('{ "src": ["tag:wbe"], "dst": ["*:22"] }'), /acls\[1\] .*: unknown tag "tag:wbe" in src \(tags declared: tag:web\)/],
    [rule('{ "src": ["*"], "dst": ["tag:web:90-80"] }'), /acls\[1\] .*: dst "tag:web:90-80": bad port range "90-80": 90 comes after 80/],
    [rule('{ "src": ["*"], "dst": ["tag:web:70000"] }'), /dst "tag:web:70000": port 70000 is outside 1-65535/],
    [rule('{ "src": ["*"], "dst": ["tag:web:ssh"] }'), /dst "tag:web:ssh": "ssh" is not a port or a range/],
    [rule('{ "src": ["100.64.0.0/33"], "dst": ["*:22"] }'), /acls\[1\] .*: bad src "100.64.0.0\/33": prefix length "33" must be 0 to 32 for IPv4/],
    [rule('{ "src": ["100.64.0.1/10"], "dst": ["*:22"] }'), /"100.64.0.1\/10" has host bits set after \/10: did you mean "100.64.0.0\/10"\?/],
    [rule('{ "src": ["300.1.2.3"], "dst": ["*:22"] }'), /bad src "300.1.2.3" is not an IP address or CIDR prefix/],
    [rule('{ "src": ["*"], "dst": ["*:22"], "port": 22 }'), /^p\.hujson:6: acls\[1\] .*: unknown field "port" \(fields: action, src, dst, proto\)/],
    [rule('{ "src": ["*"], "dst": ["*:22"], "proto": "tpc" }'), /proto "tpc" is not one of tcp, udp, icmp, any/],
    [rule('{ "src": ["*"], "dst": ["*:22"], "action": "deny" }'), /action "deny" is not supported/],
    [rule('{ "src": ["*"], "dst": ["tag:web"] }'), /dst "tag:web" has no ports: write "tag:web:22", .* or "tag:web:\*"/],
    [rule('{ "src": ["*"], "dst": ["fd00::1"] }'), /dst "fd00::1" has no ports .*: write "\[fd00::1\]:22"/],
    [rule('{ "src": ["*"], "dst": ["fd00::1:22"] }'), /dst "fd00::1:22" has no ports \(an IPv6 address with ports takes brackets\): write "\[fd00::1:22\]:22"/],
    [rule('{ "src": ["*"], "dst": ["fd00::1:80,443"] }'), /dst "fd00::1:80,443" needs brackets around an IPv6 address with ports, e.g. "\[fd00::1\]:80,443"/],
    [rule('{ "src": ["*"], "dst": ["*:22"], "proto": "icmp" }'), /dst "\*:22": ICMP has no ports: write "\*:\*" with proto "icmp"/],
    [rule('{ "src": ["alice:22"], "dst": ["*:22"] }'), /src "alice:22" has ports: sources take no ports/],
    [rule('{ "src": [], "dst": ["*:22"] }'), /"src" must be a non-empty list of strings/],
    [rule('{ "dst": ["*:22"] }'), /acls\[1\] .*: no "src" list/],
    [rule('{ "src": ["bad name"], "dst": ["*:22"] }'), /src "bad name" is not a selector/],
    [rule('"allow all"'), /acls\[1\] "allow all": a rule must be an object/],
    [rule('{ "src": ["*"], "dst": ["*:22"] }', '\n  "hosts": {},'), /^p\.hujson:4: unknown field "hosts" \(fields: groups, tags, acls\)/],
    ['{ "groups": { "ops": ["a"] }, "acls": [] }', /^p\.hujson:1: group "ops": group names look like "group:ops"/],
    ['{ "groups": { "group:a": ["tag:web"] }, "acls": [] }', /member "tag:web" is not a node name/],
    ['{ "tags": ["web"], "acls": [] }', /tag "web": tags look like "tag:web"/],
    ['{ "groups": {} }', /no "acls" list/],
    ['{\n  "acls": [\n    { "src": ["*"] "dst": [] }\n  ]\n}', /^p\.hujson:3: not valid JSON: expected ',' or '}' in an object, found "\\"" \(column 20\)/],
    ['{ "acls": [], "acls": [] }', /key "acls" appears twice/],
    ['{ "acls": [] /* open', /a \/\* comment is never closed/],
    ['[]', /the policy must be an object/],
  ];
  for (const [text, re] of cases) {
    assert.throws(() => parsePolicy(text, 'p.hujson'), (e: Error) => {
      assert.ok(e instanceof PolicyError && e instanceof ConfigError, `${e.name}: ${e.message}`);
      assert.match(e.message, re);
      return true;
    }, `expected ${re} for ${text}`);
  }
  try {
    parsePolicy(rule('{ "src": ["group:opz"], "dst": ["*:22"] }'), 'p.hujson');
  } catch (e) {
    assert.equal((e as PolicyError).ruleIndex, 1);
    assert.equal((e as PolicyError).line, 6);
  }
});

test('acl policy: the HuJSON reader', () => {
  const doc = parseHujson('// c\n{ "a": [1, -2.5e3, true, null, "x\\"y", ], /* b */ "b": {}, }');
  assert.deepEqual(JSON.parse(JSON.stringify(doc.value)), { a: [1, -2500, true, null, 'x"y'], b: {} });
  assert.equal(doc.lineOfKey(doc.value, 'a'), 2);
  for (const bad of ['', '{', '[1 2]', '{"a" 1}', "{'a': 1}", '"abc', '{"a": 1} x', 'tru', '"a\n"']) {
    assert.throws(() => parseHujson(bad), HujsonSyntaxError, bad);
  }
  assert.throws(() => parseHujson('['.repeat(100)), /nested deeper than 64 levels/);
});
