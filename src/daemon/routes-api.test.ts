// The coordinator's routes API: listing advertised routes, approving a subnet and "exit",
// withdrawing, a user mistake answered as UserError, and auto-approval.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { UserError } from '../util/index.js';
import { generatePrivateKey, publicKey } from '../crypto/index.js';
import { Coordinator } from '../control/index.js';
import { routesApi, autoApproveRoutes, type RouteRow } from './routes-api.js';

function setup() {
  const dir = mkdtempSync(join(tmpdir(), 'meshtun-routes-'));
  const coord = Coordinator.open(dir);
  const key = publicKey(generatePrivateKey());
  coord.createNetwork({ name: 'home', self: { publicKey: key, name: 'router' } });
  coord.reportNodeState(key, { advertisedRoutes: ['198.18.60.0/24', '0.0.0.0/0', '::/0'] });
  return { coord, done: () => { coord.close(); rmSync(dir, { recursive: true, force: true }); } };
}

test('routes api: list, approve a subnet and exit, withdraw', async () => {
  const { coord, done } = setup();
  try {
    const api = routesApi(coord);
    const list = async () => ((await api('GET', '/v1/routes', {}))!.body as { routes: RouteRow[] }).routes;
    const [row] = await list();
    assert.equal(row!.node, 'router');
    assert.deepEqual(row!.approved, []);
    assert.deepEqual([...row!.pending].sort(), ['0.0.0.0/0', '198.18.60.0/24', '::/0']);
    assert.equal(row!.exitNode, false);

    const r = await api('POST', '/v1/routes/approve', { node: 'router', routes: ['198.18.60.0/24'] });
    assert.deepEqual((r!.body as { node: RouteRow }).node.approved, ['198.18.60.0/24']);
    await api('POST', '/v1/routes/approve', { node: 'router', routes: ['exit'] });
    const after = (await list())[0]!;
    assert.equal(after.exitNode, true);
    assert.deepEqual(after.pending, []);
    assert.equal(coord.networkMap(coord.nodes()[0]!.publicKey).self.exitNode, true);

    await api('POST', '/v1/routes/unapprove', { node: 'router', routes: ['exit'] });
    assert.equal((await list())[0]!.exitNode, false);
    assert.deepEqual((await list())[0]!.approved, ['198.18.60.0/24']);

    assert.throws(() => api('POST', '/v1/routes/approve', { node: 'router', routes: ['203.0.113.0/24'] }), UserError, 'a route the node does not advertise');
    assert.throws(() => api('POST', '/v1/routes/approve', { node: 'nobody', routes: ['all'] }), UserError);
    assert.throws(() => api('POST', '/v1/routes/approve', { node: 'router' }), UserError, 'no routes named');
    assert.equal(await api('GET', '/v1/other', {}), undefined);
  } finally {
    done();
  }
});

test('routes api: auto-approval approves what nodes advertise, later reports too', async () => {
  const { coord, done } = setup();
  try {
    const stop = autoApproveRoutes(coord);
    assert.equal(routesRow(coord).pending.length, 0);
    coord.reportNodeState(coord.nodes()[0]!.publicKey, { advertisedRoutes: ['198.18.61.0/24'] });
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(routesRow(coord).approved, ['198.18.61.0/24']);
    stop();
  } finally {
    done();
  }
});

function routesRow(coord: Coordinator): RouteRow {
  return ((routesApi(coord)('GET', '/v1/routes', {}) as { body: { routes: RouteRow[] } }).body.routes)[0]!;
}
