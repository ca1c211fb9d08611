import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Prng } from '../../wire/fuzz-harness.js';
import { FlowTable } from './conntrack.js';
import { PacketFlow, FlowKind } from './flow.js';

/** A UDP flow between two of a few addresses (IPv4 or IPv6), in either direction. */
function makeFlow(id: number, reverse: boolean): PacketFlow {
  const f = new PacketFlow();
  f.family = id % 3 === 0 ? 6 : 4;
  f.protocol = 17;
  f.kind = FlowKind.Udp;
  const a = [0x64400000 | (id % 7), f.family === 6 ? id & 0xff : 0, 0, 1];
  const b = [0x64400100 | (id % 5), 0, f.family === 6 ? id >>> 8 : 0, 2];
  const pa = 1000 + (id % 11), pb = 2000 + Math.floor(id / 11);
  for (let i = 0; i < 4; i++) {
    (reverse ? f.dst : f.src)[i] = f.family === 4 && i > 0 ? 0 : a[i]!;
    (reverse ? f.src : f.dst)[i] = f.family === 4 && i > 0 ? 0 : b[i]!;
  }
  f.srcPort = reverse ? pb : pa;
  f.dstPort = reverse ? pa : pb;
  return f;
}

test('conntrack: agrees with a model through inserts, expiry, prunes and backward-shift removals', () => {
  const TTL = 30_000;
  const UNIVERSE = 60;
  // 64 flows at most: capacity 128, so probe runs are long and removals shift entries often.
  const table = new FlowTable({ maxFlows: 64, udpUnrepliedMs: TTL, udpRepliedMs: TTL });
  assert.equal(table.capacity, 128);
  const model = new Map<number, { expires: number; remote: boolean }>();
  const rng = new Prng(42);
  let now = 1;
  const live = (id: number) => { const m = model.get(id); return m !== undefined && m.expires > now; };
  for (let op = 0; op < 200_000; op++) {
    now += rng.int(1500);
    const id = rng.int(UNIVERSE);
    const f = makeFlow(id, rng.int(2) === 1);
    if (rng.int(500) === 0) {
      const parityKeep = (x: PacketFlow) => ((x.srcPort + x.dstPort) & 1) === 0;
      table.prune(parityKeep, now);
      for (const [k, v] of model) {
        const g = makeFlow(k, false);
        if (v.expires <= now || (v.remote && !parityKeep(g))) model.delete(k);
      }
      assert.equal(table.count, model.size, `count after prune at op ${op}`);
      continue;
    }
    const slot = table.lookup(f, now);
    assert.equal(slot >= 0, live(id), `op ${op}: flow ${id} present?`);
    if (slot >= 0) {
      table.update(slot, f, now);
      model.get(id)!.expires = now + TTL;
    } else {
      const remote = rng.int(2) === 1;
      table.insert(f, now, remote);
      model.set(id, { expires: now + TTL, remote });
    }
  }
  assert.equal(table.evicted, 0);
  assert.ok(table.expired > 1000, `expired ${table.expired}`);
});

test('conntrack: a full table evicts the flow closest to expiring and counts it', () => {
  const table = new FlowTable({ maxFlows: 64 });
  let now = 0;
  for (let id = 0; id < 1000; id++) {
    const f = makeFlow(id, false);
    assert.equal(table.lookup(f, now), -1);
    table.insert(f, now, false);
    now += 1;
  }
  assert.equal(table.count, 64);
  assert.equal(table.evicted, 1000 - 64);
  // The newest flows are there; the oldest went first.
  assert.ok(table.lookup(makeFlow(999, true), now) >= 0);
  assert.equal(table.lookup(makeFlow(0, true), now), -1);
  assert.equal(table.snapshot(now).length, 64);
});

test('conntrack: both directions find one flow; who sent what is told apart', () => {
  const table = new FlowTable();
  const out = makeFlow(4, false);
  const back = makeFlow(4, true);
  assert.equal(table.lookup(out, 0), -1);
  const slot = table.insert(out, 0, false);
  assert.equal(table.lookup(back, 1), slot);
  assert.equal(table.fromInitiator(slot), false);
  assert.equal(table.lookup(out, 2), slot);
  assert.equal(table.fromInitiator(slot), true);
  assert.equal(table.remoteInitiated(slot), false);
  const [info] = table.snapshot(2);
  assert.equal(info!.initiator, '100.64.0.4:1004');
  assert.equal(info!.responder, '100.64.1.4:2000');
  assert.equal(info!.replied, false);
  table.lookup(back, 3);
  table.update(slot, back, 3);
  assert.equal(table.snapshot(3)[0]!.replied, true);
  assert.throws(() => new FlowTable({ maxFlows: 0 }), /maxFlows 0 must be a positive number/);
});
