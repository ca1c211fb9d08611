// The userspace router's guard rails: routes follow setRoutes, and destinations on the router's
// own loopback (or the overlay) are never relayed, even inside an approved route.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { UserspaceStack, MemoryLink, type TcpSocket } from '../stack/index.js';
import { UserspaceRouter } from './userspace-router.js';

function pair() {
  const peer = new UserspaceStack({ addresses: ['100.64.0.1/10'], name: 'peer' });
  const node = new UserspaceStack({ addresses: ['100.64.0.2/10'], name: 'node' });
  const link = new MemoryLink(peer, node);
  return { peer, node, close: () => { link.close(); peer.close(); node.close(); } };
}

function outcome(s: TcpSocket): Promise<string> {
  return new Promise((resolve) => {
    s.on('data', () => undefined);
    s.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? 'error'));
    s.on('end', () => resolve('end'));
  });
}

test('userspace router: loopback and overlay destinations are reset even inside a route; no route: nothing is accepted', async () => {
  const { peer, node, close } = pair();
  const router = new UserspaceRouter(node, { overlay: ['100.64.0.0/10'] });
  try {
    router.setRoutes(['0.0.0.0/0']);
    assert.deepEqual(router.prefixes, ['0.0.0.0/0']);
    assert.equal(await outcome(peer.connectTcp({ host: '127.0.0.1', port: 22 })), 'ECONNRESET');
    assert.equal(router.counters.tcpRefused, 1);
    assert.equal(router.counters.tcpAccepted, 0);
    router.setRoutes([]);
    const before = node.counters.rxNotForUs;
    const s = peer.connectTcp({ host: '198.19.5.2', port: 80 });
    s.on('error', () => undefined);
    await new Promise((r) => setTimeout(r, 20));
    assert.ok(node.counters.rxNotForUs > before, 'with no routes the stack does not accept the SYN');
    s.destroy();
  } finally {
    router.close();
    close();
  }
});
