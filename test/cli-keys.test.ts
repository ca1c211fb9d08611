// meshtun genkey / pubkey / genpsk against the real wg(8): same public key for the same private
// key, keys accepted both ways, bad input refused the same way (exit 1). The wg parts are skipped
// where wireguard-tools is not installed.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { accessSync, constants } from 'node:fs';

const bin = 'bin/meshtun.js';
const meshtun = (args: string[], input?: string) =>
  spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', input: input ?? '' });
const wg = (args: string[], input?: string) => spawnSync('wg', args, { encoding: 'utf8', input: input ?? '' });

function haveWg(): boolean {
  try { accessSync('/usr/bin/wg', constants.X_OK); return true; } catch { return false; }
}
const skipWg = haveWg() ? false : 'needs wg(8) (wireguard-tools)';
const KEY_LINE = /^[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=\n$/;

test('cli keys: genkey and genpsk print a fresh base64 key and a newline', () => {
  const a = meshtun(['genkey']);
  const b = meshtun(['genkey']);
  assert.equal(a.status, 0, a.stderr);
  assert.match(a.stdout, KEY_LINE);
  assert.notEqual(a.stdout, b.stdout);
  const raw = Buffer.from(a.stdout.trim(), 'base64');
  assert.equal(raw[0]! & 7, 0, 'clamped');
  assert.equal(raw[31]! & 0xc0, 0x40, 'clamped');
  const psk = meshtun(['genpsk']);
  assert.equal(psk.status, 0);
  assert.match(psk.stdout, KEY_LINE);
});

test('cli keys: pubkey matches wg pubkey for the same private key', { skip: skipWg }, () => {
  for (let i = 0; i < 3; i++) {
    const priv = wg(['genkey']).stdout;
    const ours = meshtun(['pubkey'], priv);
    assert.equal(ours.status, 0, ours.stderr);
    assert.equal(ours.stdout, wg(['pubkey'], priv).stdout);
  }
  // RFC 7748 section 6.1: Alice's key pair.
  const alice = Buffer.from('77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a', 'hex').toString('base64');
  const want = Buffer.from('8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a', 'hex').toString('base64') + '\n';
  assert.equal(meshtun(['pubkey'], alice + '\n').stdout, want);
  assert.equal(wg(['pubkey'], alice + '\n').stdout, want);
});

test('cli keys: wg pubkey accepts meshtun genkey output and agrees with meshtun pubkey', { skip: skipWg }, () => {
  const priv = meshtun(['genkey']).stdout;
  const theirs = wg(['pubkey'], priv);
  assert.equal(theirs.status, 0, theirs.stderr);
  assert.equal(meshtun(['pubkey'], priv).stdout, theirs.stdout);
  // A meshtun preshared key is accepted by wg as a key too.
  assert.equal(wg(['pubkey'], meshtun(['genpsk']).stdout).status, 0);
});

test('cli keys: pubkey refuses what wg pubkey refuses, with exit code 1 and a clear message', { skip: skipWg }, () => {
  const good = meshtun(['genkey']).stdout.trim();
  for (const bad of ['', 'hello\n', good.slice(1) + '\n', good + 'x\n', ` ${good}\n`, good.slice(0, 43) + '!\n', `${good}\n${good}\n`]) {
    const ours = meshtun(['pubkey'], bad);
    assert.equal(ours.status, 1, JSON.stringify(bad));
    assert.equal(ours.stdout, '');
    assert.match(ours.stderr, /not a private key: expected 44 base64 characters/);
    assert.equal(wg(['pubkey'], bad).status, 1, `wg also refuses ${JSON.stringify(bad)}`);
  }
  // Trailing whitespace is fine for both.
  assert.equal(meshtun(['pubkey'], `${good}\n\n  \t`).status, 0);
  assert.equal(wg(['pubkey'], `${good}\n\n  \t`).status, 0);
});

test('cli keys: extra arguments are a user error (exit 2) and --help shows an example', () => {
  const r = meshtun(['genkey', 'extra']);
  assert.equal(r.status, 2);
  assert.match(r.stderr, /takes no arguments/);
  const h = meshtun(['pubkey', '--help']);
  assert.equal(h.status, 0);
  assert.match(h.stdout, /Examples:\n {2}meshtun pubkey/);
});
