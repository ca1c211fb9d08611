// MeshReporter: reports once at start, again only when endpoints or paths change (an address
// change is re-reported), again after the refresh interval, and retries a failed report.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { PathState, ReportRequest } from '../mesh/index.js';
import { MeshReporter } from './mesh-reporter.js';

const settle = async () => { for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r)); };

test('mesh reporter: changes, refresh and retries', async () => {
  let now = 0;
  let endpoints = ['198.18.0.1:51820'];
  let paths: Record<string, PathState> = {};
  let fail = false;
  const sent: ReportRequest[] = [];
  const r = new MeshReporter({
    send: async (req) => { if (fail) throw new Error('coordinator unreachable'); sent.push(req); },
    endpoints: () => endpoints, advertisedRoutes: ['198.19.5.0/24'], paths: () => paths,
    checkMs: 3_600_000, refreshMs: 30_000, now: () => now,
  });
  r.start();
  await settle();
  assert.deepEqual(sent, [{ endpoints: ['198.18.0.1:51820'], advertisedRoutes: ['198.19.5.0/24'], paths: {} }]);
  r.check();
  await settle();
  assert.equal(sent.length, 1, 'nothing changed');
  endpoints = ['198.18.0.9:51820'];
  r.check();
  await settle();
  assert.deepEqual(sent.at(-1)!.endpoints, ['198.18.0.9:51820'], 'a new address is reported');
  paths = { 'node-b': 'direct', 'node-d': 'failed' };
  r.poke();
  await settle();
  assert.deepEqual(sent.at(-1)!.paths, paths);
  now += 30_000;
  r.check();
  await settle();
  assert.equal(sent.length, 4, 'refreshed after 30 s');
  fail = true;
  endpoints = [];
  r.check();
  await settle();
  assert.equal(sent.length, 4);
  fail = false;
  r.check();
  await settle();
  assert.deepEqual(sent.at(-1)!.endpoints, [], 'the failed report is retried');
  r.stop();
});
