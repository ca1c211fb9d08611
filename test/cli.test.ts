import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';

const bin = 'bin/meshtun.js';

test('cli: --help lists commands with examples', () => {
  const r = spawnSync(process.execPath, [bin, '--help'], { encoding: 'utf8' });
  assert.equal(r.status, 0);
  assert.match(r.stdout, /Usage: meshtun <command>/);
  assert.match(r.stdout, /\bup\b/);
  assert.match(r.stdout, /Examples:/);
});

test('cli: an unknown command is named, with a hint, and exits 2', () => {
  const r = spawnSync(process.execPath, [bin, 'frobnicate'], { encoding: 'utf8' });
  assert.equal(r.status, 2);
  assert.match(r.stderr, /unknown command "frobnicate"/);
  assert.match(r.stderr, /meshtun --help/);
});

test('cli: every command has --help with an example', () => {
  const r = spawnSync(process.execPath, [bin, 'up', '--help'], { encoding: 'utf8' });
  assert.equal(r.status, 0);
  assert.match(r.stdout, /Usage: meshtun up/);
  assert.match(r.stdout, /Examples:\n {2}meshtun up/);
});
