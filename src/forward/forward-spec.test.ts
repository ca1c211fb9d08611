// Forward spec parsing: the accepted forms and their canonical text, defaults per direction,
// every mistake as a ForwardSpecError that shows the syntax, listen conflicts, and random text
// (a spec or a ForwardSpecError, never anything else).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseForwardSpec, parseForwardSpecs, checkListenConflicts, forwardKey, ForwardSpecError } from './forward-spec.js';
import { Prng } from '../wire/fuzz-harness.js';

test('forms and canonical text', () => {
  const a = parseForwardSpec('tcp:127.0.0.1:2222=100.64.0.1:22', 'forward');
  assert.deepEqual(a, {
    direction: 'forward', protocol: 'tcp', listenHost: '127.0.0.1', listenPort: 2222,
    targetHost: '100.64.0.1', targetPort: 22, text: 'tcp:127.0.0.1:2222=100.64.0.1:22',
  });
  assert.equal(parseForwardSpec('2222=100.64.0.1:22', 'forward').text, 'tcp:127.0.0.1:2222=100.64.0.1:22', 'tcp and 127.0.0.1 are the defaults');
  assert.equal(parseForwardSpec(' UDP:5353 = 100.64.0.1:53 ', 'forward').text, 'udp:127.0.0.1:5353=100.64.0.1:53');
  assert.equal(parseForwardSpec('tcp:[::1]:2222=[fd00::1]:22', 'forward').text, 'tcp:[::1]:2222=[fd00::1]:22');
  assert.equal(parseForwardSpec('[::1]:2222=db.corp.example:5432', 'forward').targetHost, 'db.corp.example');
  const r = parseForwardSpec('tcp:80=127.0.0.1:8000', 'reverse');
  assert.equal(r.listenHost, '', 'a reverse forward listens on every overlay address by default');
  assert.equal(r.text, 'tcp:80=127.0.0.1:8000');
  assert.equal(parseForwardSpec('tcp:100.64.0.2:80=127.0.0.1:8000', 'reverse').listenHost, '100.64.0.2');
  assert.equal(parseForwardSpec('udp:0.0.0.0:53=127.0.0.1:5353', 'reverse').text, 'udp:53=127.0.0.1:5353', '0.0.0.0 means every address');
  const any = parseForwardSpec('tcp:[::]:8080=100.64.0.1:80', 'forward');
  assert.equal(any.listenHost, '');
  assert.equal(any.text, 'tcp:0.0.0.0:8080=100.64.0.1:80');
  assert.deepEqual(parseForwardSpec(any.text, 'forward'), any);
  assert.notEqual(forwardKey(parseForwardSpec('udp:53=127.0.0.1:53', 'reverse')), forwardKey(parseForwardSpec('udp:0.0.0.0:53=127.0.0.1:53', 'forward')));
});

test('mistakes say what is wrong and show the syntax', () => {
  const cases: [string, RegExp][] = [
    ['', /empty/],
    ['tcp:2222', /exactly one "="/],
    ['a=b=c', /exactly one "="/],
    ['sctp:2222=100.64.0.1:22', /unknown protocol "sctp"/],
    ['tcp:70000=100.64.0.1:22', /listen port "70000"/],
    ['tcp:0=100.64.0.1:22', /listen port "0"/],
    ['tcp:localhost:2222=100.64.0.1:22', /listen host "localhost" is not an IP address/],
    ['tcp:::1:2222=100.64.0.1:22', /brackets|not an IP/],
    ['fd00::1:2222=100.64.0.1:22', /brackets/],
    ['tcp:2222=100.64.0.1', /target "100.64.0.1" is not host:port|target port/],
    ['tcp:2222=fd00::1:22', /brackets/],
    ['tcp:2222=100.64.0.300:22', /not a valid IPv4/],
    ['tcp:2222=bad_host!:22', /neither an IP address nor a host name/],
    ['tcp:2222=100.64.0.1:http', /target port "http"/],
    ['tcp:2222=0.0.0.0:22', /not an address one can connect to/],
  ];
  for (const [text, re] of cases) {
    assert.throws(() => parseForwardSpec(text, 'forward'), (err: Error) => {
      assert.ok(err instanceof ForwardSpecError, `${text}: ${err.name}`);
      assert.match(err.message, re, text);
      assert.match(err.message, /^Forward ".*": .*; write \[tcp:\|udp:\]\[listen-host:\]listen-port=target-host:target-port, e\.g\./);
      return true;
    });
  }
  assert.throws(() => parseForwardSpec('x', 'reverse'), /^ForwardSpecError|Reverse "x"/);
});

test('lists: commas, and two specs on one listening socket are refused', () => {
  const list = parseForwardSpecs(['tcp:2222=100.64.0.1:22, udp:2222=100.64.0.1:53', 'tcp:[::1]:2222=100.64.0.1:22'], 'forward');
  assert.equal(list.length, 3);
  assert.throws(() => parseForwardSpecs(['tcp:2222=100.64.0.1:22', '127.0.0.1:2222=100.64.0.9:80'], 'forward'), /same tcp port/);
  assert.throws(() => checkListenConflicts([parseForwardSpec('tcp:80=127.0.0.1:1', 'reverse'), parseForwardSpec('tcp:100.64.0.2:80=127.0.0.1:2', 'reverse')]), /same tcp port/);
  checkListenConflicts([parseForwardSpec('tcp:80=127.0.0.1:1', 'reverse'), parseForwardSpec('tcp:127.0.0.1:80=127.0.0.1:2', 'forward')]);
});

test('random text gives a spec or a ForwardSpecError, never anything else', () => {
  const rng = new Prng(42);
  const alphabet = 'tcpud:[]=.0123456789abcdf,  x';
  for (let i = 0; i < 20_000; i++) {
    let s = '';
    const n = rng.int(40);
    for (let j = 0; j < n; j++) s += alphabet[rng.int(alphabet.length)];
    try {
      const spec = parseForwardSpec(s, rng.int(2) === 0 ? 'forward' : 'reverse');
      assert.deepEqual(parseForwardSpec(spec.text, spec.direction), spec, `canonical text parses back: ${s}`);
    } catch (err) {
      if (!(err instanceof ForwardSpecError)) throw new Error(`"${s}" threw ${String(err)}`);
    }
  }
});
