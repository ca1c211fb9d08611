#!/usr/bin/env node
// Builds the native addon (native/, binding.gyp -> build/Release/meshtun_native.node) with the
// node-gyp that npm bundles, offline against the installed Node headers. Runs as the package's
// "install" script. A failed build is not fatal: it prints why and exits 0, because everything but
// kernel TUN devices (and the faster UDP path) works without the addon.
//   MESHTUN_SKIP_NATIVE=1   skip the build
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const addon = join(root, 'build', 'Release', 'meshtun_native.node');

function warn(why) {
  console.warn(`meshtun: WARNING: the native addon was not built: ${why}`);
  console.warn('meshtun: kernel TUN devices (and batched UDP) are unavailable; use --userspace,');
  console.warn('meshtun: or fix the cause and run `npm rebuild meshtun` (in this folder: `npm run install`).');
  process.exit(0);
}

/** The node-gyp.js that came with npm (or a local one), found without the network. */
function findNodeGyp() {
  const candidates = [];
  if (process.env.npm_config_node_gyp) candidates.push(process.env.npm_config_node_gyp);
  if (process.env.npm_execpath) {
    // .../npm/bin/npm-cli.js -> .../npm/node_modules/node-gyp/bin/node-gyp.js
    candidates.push(resolve(dirname(process.env.npm_execpath), '..', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'));
  }
  candidates.push(join(root, 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'));
  const prefix = resolve(dirname(process.execPath), '..');
  candidates.push(join(prefix, 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'));
  const npmPrefix = spawnSync('npm', ['prefix', '-g'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  if (npmPrefix.status === 0) {
    candidates.push(join(npmPrefix.stdout.trim(), 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'));
  }
  return candidates.find((p) => existsSync(p)) ?? null;
}

/** node-gyp downloads headers unless told where they are; use the ones installed beside node. */
function nodedirArgs() {
  if (process.env.npm_config_nodedir) return [];
  const prefix = resolve(dirname(process.execPath), '..');
  if (existsSync(join(prefix, 'include', 'node', 'node_api.h'))) return [`--nodedir=${prefix}`];
  return [];
}

if (process.env.MESHTUN_SKIP_NATIVE === '1') {
  console.log('meshtun: MESHTUN_SKIP_NATIVE=1, not building the native addon');
  process.exit(0);
}
if (process.platform !== 'linux') warn(`it is Linux only (this is ${process.platform})`);

const gyp = findNodeGyp();
if (!gyp) warn('node-gyp was not found (it ships with npm; install npm, or `npm install -g node-gyp`)');
const args = [gyp, 'rebuild', ...nodedirArgs()];
console.log(`meshtun: building the native addon: node ${args.map((a) => a.replace(root + '/', '')).join(' ')}`);
const r = spawnSync(process.execPath, args, { cwd: root, stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8' });
if (r.error) warn(`could not run node-gyp: ${r.error.message}`);
if (r.status !== 0 || !existsSync(addon)) {
  const out = `${r.stdout ?? ''}${r.stderr ?? ''}`.split('\n').filter((l) => l.trim()).slice(-15).join('\n');
  console.warn(out);
  const hint = /gcc|\bcc\b|make: not found|No such file.*make/.test(out)
    ? 'a C compiler and make are needed (e.g. apt install build-essential python3)'
    : `node-gyp exited with ${r.status} (output above)`;
  warn(hint);
}
console.log(`meshtun: built ${addon.replace(root + '/', '')}`);
