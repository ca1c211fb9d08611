#!/usr/bin/env node
// `meshtun wg-userspace` as a single executable, for wg-quick, which runs its userspace
// implementation as one word: WG_QUICK_USERSPACE_IMPLEMENTATION=meshtun-wg-userspace wg-quick up wg0
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const main = new URL('../dist/src/cli/main.js', import.meta.url);
if (!existsSync(fileURLToPath(main))) {
  console.error('meshtun-wg-userspace: the compiled program is missing (dist/). Run `npm install` (or `npm run build`) in the meshtun folder first.');
  process.exit(1);
}
const { run } = await import(main.href);
process.exitCode = await run(['wg-userspace', ...process.argv.slice(2)]);
