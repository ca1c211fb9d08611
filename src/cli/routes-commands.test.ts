// The route flags of `meshtun up` and the `meshtun routes` command's argument checks.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { UserError } from '../util/index.js';
import { parseMeshUpFlags } from './mesh-commands.js';
import { routes } from './routes-commands.js';

test('meshtun up: route flags', () => {
  const f = parseMeshUpFlags(['--advertise-routes', '198.18.60.0/24, 198.18.61.0/24', '--advertise-routes=198.18.62.0/24', '--advertise-exit-node', '--exit-node', 'router', '--auto-approve-routes']);
  assert.deepEqual(f.advertiseRoutes, ['198.18.60.0/24', '198.18.61.0/24', '198.18.62.0/24']);
  assert.equal(f.advertiseExitNode, true);
  assert.equal(f.exitNode, 'router');
  assert.equal(f.autoApproveRoutes, true);
  assert.throws(() => parseMeshUpFlags(['--exit-node']), UserError);
  assert.equal(parseMeshUpFlags([]).advertiseRoutes, undefined);
});

test('meshtun routes: mistakes are named before the daemon is asked', async () => {
  await assert.rejects(routes.run(['approve', 'router']), /name the node and the routes/);
  await assert.rejects(routes.run(['approve']), /name the node and the routes/);
  await assert.rejects(routes.run(['frobnicate']), /unknown routes command/);
});
