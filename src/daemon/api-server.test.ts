// Prometheus exposition: the coordinator's control-channel counters (mesh.control in the status)
// appear as meshtun_control_events_total, one line per counter; LAN discovery (mesh.lan) as
// meshtun_lan_events_total.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { prometheusMetrics, type InterfaceStatus } from './api-server.js';

const base: InterfaceStatus = { interface: 'meshtun0', pid: 1, publicKey: null, listenPort: 51820, mtu: 1420, peers: [], counters: {} };

test('metrics: the control channel\'s counters of a coordinator', () => {
  const st = { ...base, mesh: { role: 'coordinator', control: { connectionsRefusedSource: 3, handshakesRefusedRate: 7, authSessionCharges: 61 } } };
  const text = prometheusMetrics(st);
  assert.match(text, /^# TYPE meshtun_control_events_total counter$/m);
  assert.match(text, /^meshtun_control_events_total\{interface="meshtun0",event="connectionsRefusedSource"\} 3$/m);
  assert.match(text, /^meshtun_control_events_total\{interface="meshtun0",event="handshakesRefusedRate"\} 7$/m);
  assert.match(text, /^meshtun_control_events_total\{interface="meshtun0",event="authSessionCharges"\} 61$/m);
  assert.doesNotMatch(prometheusMetrics(base), /meshtun_control_events_total/, 'a member (no control block) has none');
});

test('metrics: LAN discovery counters (status mesh.lan) as meshtun_lan_events_total', () => {
  const st = { ...base, mesh: { role: 'member', lan: { sent: 12, accepted: 5, refusedBadMac: 2, refusedReplay: 1 } } };
  const text = prometheusMetrics(st);
  assert.match(text, /^# TYPE meshtun_lan_events_total counter$/m);
  assert.match(text, /^meshtun_lan_events_total\{interface="meshtun0",event="sent"\} 12$/m);
  assert.match(text, /^meshtun_lan_events_total\{interface="meshtun0",event="refusedBadMac"\} 2$/m);
  assert.match(text, /^meshtun_lan_events_total\{interface="meshtun0",event="refusedReplay"\} 1$/m);
  assert.doesNotMatch(prometheusMetrics(base), /meshtun_lan_events_total/, 'none without a lan block');
});
