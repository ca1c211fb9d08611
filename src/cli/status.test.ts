// `meshtun status` on a coordinator: the control channel's non-zero counters (refusals by reason).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatMeshStatus, type MeshNodeStatus } from './status.js';

test('mesh status shows the control channel\'s non-zero counters on a coordinator', () => {
  const st = {
    interface: 'meshtun0', pid: 1, publicKey: null, listenPort: 51820, mtu: 1420, peers: [], counters: {}, meshPeers: [],
    mesh: {
      role: 'coordinator', network: 'home', node: 'hub', ipv4: '100.64.0.1', ipv6: null, peers: { online: 0, total: 0 },
      control: { connectionsOpen: 2, connectionsRefusedSource: 3, handshakesRefusedRate: 0 },
    },
  } as unknown as MeshNodeStatus;
  const text = formatMeshStatus(st);
  assert.match(text, /^ {2}control channel: connectionsOpen 2, connectionsRefusedSource 3$/m);
  const member = formatMeshStatus({ ...st, mesh: { ...st.mesh, role: 'member', control: undefined } } as unknown as MeshNodeStatus);
  assert.doesNotMatch(member, /control channel/);
});
