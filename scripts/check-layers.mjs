#!/usr/bin/env node
// Enforces the layer import rule of ARCHITECTURE.md section 1: a layer may import only layers
// below it (to its left in the chain). Siblings on the same rank may not import each other.
// `util` is a small shared floor below `wire` (logging, errors) that every layer may use.
// Exits 1 and names every offending import.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative, resolve, dirname, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const src = join(root, 'src');

export const RANK = {
  util: 0,
  wire: 1,
  crypto: 2,
  wireguard: 3,
  transport: 4, tun: 4, stack: 4,
  translate: 5,
  mesh: 6,
  control: 7, forward: 7, dns: 7,
  daemon: 8,
  cli: 9,
};

function* walk(dir) {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) yield* walk(p);
    else if (p.endsWith('.ts')) yield p;
  }
}

const importRe = /(?:^|\s)(?:import|export)\s[^'"`;]*?from\s*['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)|^\s*import\s*['"]([^'"]+)['"]/gm;

const problems = [];
let files = 0;
for (const file of walk(src)) {
  files++;
  const rel = relative(src, file).split(sep);
  const layer = rel[0];
  if (rel.length < 2) { problems.push(`${relative(root, file)}: source files belong in a layer folder under src/`); continue; }
  if (!(layer in RANK)) { problems.push(`${relative(root, file)}: "${layer}" is not a layer of ARCHITECTURE.md (known: ${Object.keys(RANK).join(', ')})`); continue; }
  const isTest = file.endsWith('.test.ts');
  const text = readFileSync(file, 'utf8');
  for (const m of text.matchAll(importRe)) {
    const spec = m[1] ?? m[2] ?? m[3];
    if (!spec || !spec.startsWith('.')) continue;
    const target = resolve(dirname(file), spec);
    const trel = relative(src, target).split(sep);
    if (trel[0] === '..') continue; // outside src (e.g. testdata) is not a layer
    const tlayer = trel[0];
    if (tlayer === layer) continue;
    if (!(tlayer in RANK)) continue;
    // Tests may use helpers from any lower layer but never from a higher one either.
    if (RANK[tlayer] >= RANK[layer]) {
      const why = RANK[tlayer] === RANK[layer] ? 'a sibling on the same rank' : 'a higher layer';
      problems.push(`${relative(root, file)}: imports ${spec} from "${tlayer}", ${why} than "${layer}"${isTest ? ' (test)' : ''}`);
    }
  }
}

if (problems.length) {
  console.error(`layer check: ${problems.length} import(s) break the rule of ARCHITECTURE.md section 1:`);
  for (const p of problems) console.error('  ' + p);
  process.exit(1);
}
console.log(`layer check: ${files} files, imports follow ${Object.keys(RANK).join(' ')} order`);
