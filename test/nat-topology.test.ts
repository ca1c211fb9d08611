// The building blocks of test/nat-topology.ts, proved with plain UDP/TCP programs
// (test/nat-udp-agent.ts; nothing of meshtun runs here), so NAT-traversal tests (issue 10) can
// trust them:
//
//   1. EIM router ('eim'): the host's UDP source port is kept and the mapping is the same toward
//      two servers; an unsolicited datagram to the router's WAN is dropped, both on a port with
//      no mapping and from a server the host has not sent to on a mapped port (port-restricted
//      filtering); two hosts behind two EIM routers punch through by sending to each other's
//      observed public ip:port at the same time, and both receive.
//   2. Symmetric router ('symmetric'): a new random port per destination; punching between two
//      symmetric routers fails, and between an EIM and a symmetric router fails too (observed:
//      neither side receives a single datagram; the EIM side's filter drops the symmetric
//      side's datagrams because they come from a port it never sent to).
//   3. blockUdp stops UDP both ways on an existing mapping while TCP keeps working; unblockUdp
//      restores it; blockTcpPort stops TCP to that port only; setLossPercent loses about that
//      share of packets each way.
//   4. The delay line: a host's delay adds its value to every RTT of that host (UDP and TCP), a
//      router's `delay(ms, { to })` only to its LAN's traffic toward `to`, the NAT mapping is the
//      same through it. Measured RTTs are printed as test diagnostics; the asserts are loose
//      (delayed > undelayed + half the delay) so a slow machine does not fail them.
//   5. changeAddress / moveTo: the host keeps its socket and reaches the server from its new
//      address (through the same NAT, another NAT, or a plain router).
// Needs root and nft; the delay test also needs /dev/net/tun and the native addon.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { Topology, isRoot, sh } from './netns.js';
import { NatLab, type Host, type Router, type Segment, type UdpAgent } from './nat-topology.js';
import { tunNative } from '../src/tun/index.js';

const haveNft = sh('sh', ['-c', 'command -v nft || true']).trim() !== '';
const skip = isRoot && haveNft ? false : 'needs root and nft';
const skipDelay = skip || (existsSync('/dev/net/tun') && tunNative() ? false : 'needs /dev/net/tun and the native addon');

const TEST_TIMEOUT_MS = 60_000;
/** How long to wait before deciding a datagram will not arrive. */
const SILENCE_MS = 1000;
const SERVER_PORT = 3478;
const SERVER_TCP_PORT = 8080;
const HOST_PORT = 41000;

interface Lab {
  topo: Topology;
  lab: NatLab;
  pub: Segment;
  s1: Host; s2: Host; s3: Host;
  S1: UdpAgent; S2: UdpAgent; S3: UdpAgent;
  eim1: Router; eim2: Router; sym1: Router; sym2: Router; plain: Router;
}
let L: Lab;
let topo: Topology | undefined;

before(async () => {
  if (skip) return;
  topo = new Topology();
  const lab = new NatLab(topo);
  const pub = lab.publicSegment('198.18.90.0/24');
  const s1 = lab.host(pub);
  const s2 = lab.host(pub);
  const s3 = lab.host(pub);
  const eim1 = lab.router(pub, { nat: 'eim', lan: '198.18.91.0/24' });
  const eim2 = lab.router(pub, { nat: 'eim', lan: '198.18.92.0/24' });
  const sym1 = lab.router(pub, { nat: 'symmetric', lan: '198.18.93.0/24' });
  const sym2 = lab.router(pub, { nat: 'symmetric', lan: '198.18.94.0/24' });
  const plain = lab.router(pub, { nat: 'none', lan: '198.18.95.0/24' });
  L = {
    topo, lab, pub, s1, s2, s3, eim1, eim2, sym1, sym2, plain,
    S1: await lab.agent(s1, SERVER_PORT, { tcpPort: SERVER_TCP_PORT }),
    S2: await lab.agent(s2, SERVER_PORT, { tcpPort: SERVER_TCP_PORT }),
    S3: await lab.agent(s3, SERVER_PORT),
  };
});

after(async () => {
  await topo?.destroy();
});

/** A host on `segment` running an agent on `port`. */
async function member(segment: Segment, port = HOST_PORT): Promise<{ host: Host; agent: UdpAgent }> {
  const host = L.lab.host(segment);
  return { host, agent: await L.lab.agent(host, port) };
}

async function observed(agent: UdpAgent, server: Host): Promise<{ addr: string; port: number }> {
  const o = await agent.observedBy(server.addr, SERVER_PORT);
  assert.ok(o, `${server.addr} answered ${agent.ns}`);
  return o;
}

/** Both sides send to each other's public ip:port every 50 ms for 1.5 s; returns what each
 * received from the other. */
async function punch(a: UdpAgent, aPublic: { addr: string; port: number }, b: UdpAgent, bPublic: { addr: string; port: number }, tag: string): Promise<{ aGot: number; bGot: number }> {
  for (let i = 0; i < 30; i++) {
    a.send(bPublic.addr, bPublic.port, `${tag}-from-a`);
    b.send(aPublic.addr, aPublic.port, `${tag}-from-b`);
    await sleep(50);
  }
  await sleep(300);
  return { aGot: a.receivedData(`${tag}-from-b`).length, bGot: b.receivedData(`${tag}-from-a`).length };
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

function median(xs: number[]): number {
  const s = [...xs].sort((x, y) => x - y);
  return s.length ? s[Math.floor(s.length / 2)]! : NaN;
}

const fmt = (xs: number[]): string => xs.map((x) => x.toFixed(1)).join(' ');

test('EIM router: port kept, one mapping for every destination, unsolicited inbound dropped, simultaneous punching works', { skip, timeout: TEST_TIMEOUT_MS }, async (t) => {
  const a = await member(L.eim1.lan);
  const idle = await member(L.eim1.lan, HOST_PORT + 1); // never sends: no mapping for its port
  const viaS1 = await observed(a.agent, L.s1);
  assert.deepEqual(viaS1, { addr: L.eim1.wanAddr, port: HOST_PORT }, 'the source port is preserved');

  // Unsolicited: S2 to the mapped port (a has not sent to S2 yet), S3 to an unmapped port.
  L.S2.send(L.eim1.wanAddr, HOST_PORT, 'unsolicited-mapped');
  L.S3.send(L.eim1.wanAddr, HOST_PORT + 1, 'unsolicited-unmapped');
  await sleep(SILENCE_MS);
  assert.equal(a.agent.receivedData('unsolicited-mapped').length, 0, 'a datagram from a server a never sent to is dropped');
  assert.equal(idle.agent.receivedData('unsolicited-unmapped').length, 0, 'a datagram to a port with no mapping is dropped');

  const viaS2 = await observed(a.agent, L.s2);
  assert.deepEqual(viaS2, viaS1, 'the mapping toward S2 is the one toward S1 (endpoint-independent)');
  // Once a sent to S2, S2's datagrams pass.
  L.S2.send(L.eim1.wanAddr, HOST_PORT, 'solicited');
  assert.ok(await a.agent.next((e) => e.data === 'solicited', 2000), 'S2 reaches a after a sent to S2');
  t.diagnostic(`eim: ${a.host.addr}:${HOST_PORT} is ${viaS1.addr}:${viaS1.port} toward S1 and ${viaS2.addr}:${viaS2.port} toward S2`);

  // Punching between two EIM routers.
  const b = await member(L.eim2.lan);
  const aPub = await observed(a.agent, L.s1);
  const bPub = await observed(b.agent, L.s1);
  const got = await punch(a.agent, aPub, b.agent, bPub, 'eim-eim');
  t.diagnostic(`eim <-> eim punching: a got ${got.aGot}/30 from b, b got ${got.bGot}/30 from a`);
  assert.ok(got.aGot > 0 && got.bGot > 0, 'both sides receive');
  const fromB = a.agent.receivedData('eim-eim-from-b')[0]!;
  assert.deepEqual({ addr: fromB.from, port: fromB.port }, bPub, 'b\'s datagrams come from its observed mapping');
});

test('symmetric router: a new port per destination; punching fails sym <-> sym and eim <-> sym', { skip, timeout: TEST_TIMEOUT_MS }, async (t) => {
  const c = await member(L.sym1.lan);
  const viaS1 = await observed(c.agent, L.s1);
  const viaS2 = await observed(c.agent, L.s2);
  const viaS3 = await observed(c.agent, L.s3);
  t.diagnostic(`symmetric: ${c.host.addr}:${HOST_PORT} is ${viaS1.addr}:${viaS1.port} toward S1, :${viaS2.port} toward S2, :${viaS3.port} toward S3`);
  assert.equal(viaS1.addr, L.sym1.wanAddr);
  // fully-random picks each port at random from 1024-65535: three equal ports would mean the
  // mapping does not depend on the destination (chance of two equal by accident: ~1/64000).
  assert.ok(new Set([viaS1.port, viaS2.port, viaS3.port]).size >= 2, 'the mapping depends on the destination');
  assert.ok([viaS1.port, viaS2.port, viaS3.port].some((p) => p !== HOST_PORT), 'the source port is not kept');

  const d = await member(L.sym2.lan);
  const cPub = await observed(c.agent, L.s1);
  const dPub = await observed(d.agent, L.s1);
  const symSym = await punch(c.agent, cPub, d.agent, dPub, 'sym-sym');
  t.diagnostic(`symmetric <-> symmetric punching: c got ${symSym.aGot}/30, d got ${symSym.bGot}/30`);
  assert.deepEqual(symSym, { aGot: 0, bGot: 0 }, 'nothing gets through two symmetric NATs');

  const e = await member(L.eim2.lan, HOST_PORT + 2);
  const ePub = await observed(e.agent, L.s1);
  const eimSym = await punch(e.agent, ePub, c.agent, cPub, 'eim-sym');
  t.diagnostic(`eim <-> symmetric punching: eim side got ${eimSym.aGot}/30, symmetric side got ${eimSym.bGot}/30`);
  assert.deepEqual(eimSym, { aGot: 0, bGot: 0 }, 'nothing gets through an eim (port-restricted) and a symmetric NAT');
});

test('blockUdp stops UDP both ways and leaves TCP; blockTcpPort stops one TCP port; setLossPercent loses packets', { skip, timeout: TEST_TIMEOUT_MS }, async (t) => {
  const a = await member(L.eim2.lan, HOST_PORT + 3);
  assert.equal((await a.agent.ping(L.s1.addr, SERVER_PORT, { count: 3 })).lost, 0);
  const pub = await observed(a.agent, L.s1);
  L.S1.send(pub.addr, pub.port, 'in-before-block');
  assert.ok(await a.agent.next((e) => e.data === 'in-before-block', 2000), 'the mapping lets S1 in before the block');

  L.eim2.blockUdp();
  L.S1.send(pub.addr, pub.port, 'in-while-blocked');
  a.agent.send(L.s1.addr, SERVER_PORT, 'out-while-blocked');
  await sleep(SILENCE_MS);
  assert.equal(a.agent.receivedData('in-while-blocked').length, 0, 'inbound UDP is blocked');
  assert.equal(L.S1.receivedData('out-while-blocked').length, 0, 'outbound UDP is blocked');
  const tcpBlocked = await a.agent.tcp(L.s1.addr, SERVER_TCP_PORT);
  assert.ok(tcpBlocked.ok, `TCP still works while UDP is blocked (${tcpBlocked.error ?? ''})`);

  L.eim2.unblockUdp();
  assert.equal((await a.agent.ping(L.s1.addr, SERVER_PORT, { count: 3 })).lost, 0, 'UDP works again');

  L.eim2.blockTcpPort(SERVER_TCP_PORT);
  const tcpOff = await a.agent.tcp(L.s1.addr, SERVER_TCP_PORT, 1000);
  assert.equal(tcpOff.ok, false, 'TCP to the blocked port fails');
  assert.equal((await a.agent.ping(L.s1.addr, SERVER_PORT, { count: 3 })).lost, 0, 'UDP is untouched by a TCP block');
  L.eim2.unblockTcp();
  assert.ok((await a.agent.tcp(L.s1.addr, SERVER_TCP_PORT)).ok, 'TCP works again');

  // 30 % each way: a round trip survives with 0.7 * 0.7 = 49 %.
  L.eim2.setLossPercent(30);
  const lossy = await a.agent.ping(L.s1.addr, SERVER_PORT, { count: 60, gapMs: 5, timeoutMs: 300 });
  L.eim2.setLossPercent(0);
  t.diagnostic(`30 % loss each way: ${lossy.lost}/60 round trips lost (expected about 31)`);
  assert.ok(lossy.lost >= 10 && lossy.lost <= 55, `about half the round trips are lost (${lossy.lost}/60)`);
  assert.equal((await a.agent.ping(L.s1.addr, SERVER_PORT, { count: 3 })).lost, 0, 'no loss after setLossPercent(0)');
});

test('delay: a host\'s delay adds to all its RTTs, a router\'s delay `to` one destination only', { skip: skipDelay, timeout: TEST_TIMEOUT_MS }, async (t) => {
  const a = await member(L.eim1.lan, HOST_PORT + 4);
  const opts = { count: 10, gapMs: 20 };
  const base1 = await a.agent.ping(L.s1.addr, SERVER_PORT, opts);
  const base2 = await a.agent.ping(L.s2.addr, SERVER_PORT, opts);
  const tcpBase = await a.agent.tcp(L.s1.addr, SERVER_TCP_PORT);
  t.diagnostic(`no delay: a -> S1 ${fmt(base1.rtts)} ms; a -> S2 ${fmt(base2.rtts)} ms; TCP connect+echo to S1 ${tcpBase.ms.toFixed(1)} ms`);

  // S1 (e.g. the coordinator) slower: everything it sends waits 100 ms.
  const HOST_DELAY = 100;
  await L.s1.delay(HOST_DELAY);
  const slow1 = await a.agent.ping(L.s1.addr, SERVER_PORT, opts);
  const tcpSlow = await a.agent.tcp(L.s1.addr, SERVER_TCP_PORT);
  const other = await a.agent.ping(L.s2.addr, SERVER_PORT, opts);
  await L.s1.clearDelay();
  t.diagnostic(`S1.delay(${HOST_DELAY}): a -> S1 ${fmt(slow1.rtts)} ms (median +${(median(slow1.rtts) - median(base1.rtts)).toFixed(2)}); ` +
    `a -> S2 ${fmt(other.rtts)} ms; TCP connect+echo to S1 ${tcpSlow.ms.toFixed(1)} ms (two answers from S1, each delayed)`);
  assert.equal(slow1.lost, 0);
  assert.ok(median(slow1.rtts) > median(base1.rtts) + HOST_DELAY / 2, 'RTT to S1 grows by about the delay');
  assert.ok(Math.min(...slow1.rtts) >= HOST_DELAY, 'no round trip through the delay line is shorter than the delay');
  assert.ok(tcpSlow.ok && tcpSlow.ms > tcpBase.ms + HOST_DELAY, 'TCP is delayed too');
  assert.ok(median(other.rtts) < HOST_DELAY / 2, 'RTT to S2 stays small');
  const after1 = await a.agent.ping(L.s1.addr, SERVER_PORT, opts);
  assert.ok(median(after1.rtts) < HOST_DELAY / 2, `clearDelay removes it (${fmt(after1.rtts)})`);

  // A slower path from the router's LAN to S2 only; the NAT mapping is unchanged.
  const ROUTER_DELAY = 60;
  await L.eim1.delay(ROUTER_DELAY, { to: L.s2.addr });
  const slow2 = await a.agent.ping(L.s2.addr, SERVER_PORT, opts);
  const fast1 = await a.agent.ping(L.s1.addr, SERVER_PORT, opts);
  const mapping = await observed(a.agent, L.s2);
  await L.eim1.delay(2 * ROUTER_DELAY, { to: L.s2.addr });
  const slower2 = await a.agent.ping(L.s2.addr, SERVER_PORT, opts);
  await L.eim1.clearDelay();
  t.diagnostic(`eim1.delay(${ROUTER_DELAY}, to S2): a -> S2 ${fmt(slow2.rtts)} ms (median +${(median(slow2.rtts) - median(base2.rtts)).toFixed(2)}); a -> S1 ${fmt(fast1.rtts)} ms`);
  t.diagnostic(`eim1.delay(${2 * ROUTER_DELAY}, to S2): a -> S2 ${fmt(slower2.rtts)} ms (median +${(median(slower2.rtts) - median(base2.rtts)).toFixed(2)})`);
  assert.ok(median(slow2.rtts) > median(base2.rtts) + ROUTER_DELAY / 2, 'RTT to S2 grows by about the delay');
  assert.ok(median(fast1.rtts) < ROUTER_DELAY / 2, 'RTT to S1 does not');
  assert.ok(median(slower2.rtts) > median(slow2.rtts) + ROUTER_DELAY / 2, 'a second delay() call changes the delay');
  assert.deepEqual(mapping, { addr: L.eim1.wanAddr, port: HOST_PORT + 4 }, 'the NAT mapping is the same through the delay line');
  const after2 = await a.agent.ping(L.s2.addr, SERVER_PORT, opts);
  assert.ok(median(after2.rtts) < ROUTER_DELAY / 2, `clearDelay removes it (${fmt(after2.rtts)})`);
});

test('changeAddress and moveTo: the host keeps its socket and comes from its new address', { skip, timeout: TEST_TIMEOUT_MS }, async (t) => {
  // Behind a plain router the server sees the host's own address.
  const p = await member(L.plain.lan, HOST_PORT + 5);
  assert.deepEqual(await observed(p.agent, L.s1), { addr: p.host.addr, port: HOST_PORT + 5 });
  const newAddr = p.host.changeAddress('198.18.95.77');
  assert.equal(newAddr, '198.18.95.77');
  assert.deepEqual(await observed(p.agent, L.s1), { addr: '198.18.95.77', port: HOST_PORT + 5 }, 'S1 sees the new address');

  // Behind an EIM router: the new address gets a new mapping. The old address's conntrack entry
  // (30 s, 120 s once answered) still holds wan:port toward S1, so the first flow of the new
  // address, toward S1, gets another port, and the kernel then reuses that mapping for the
  // same source toward every other destination (still endpoint-independent).
  const m = await member(L.eim1.lan, HOST_PORT + 6);
  const before1 = await observed(m.agent, L.s1);
  m.host.changeAddress();
  const after1 = await observed(m.agent, L.s1);
  const after3 = await observed(m.agent, L.s3);
  t.diagnostic(`eim, changeAddress: toward S1 ${before1.addr}:${before1.port} before, :${after1.port} after; toward S3 (first contact) :${after3.port}`);
  assert.deepEqual(before1, { addr: L.eim1.wanAddr, port: HOST_PORT + 6 });
  assert.equal(after1.addr, L.eim1.wanAddr);
  assert.notEqual(after1.port, before1.port, 'the old mapping still holds the port, so the new address gets another');
  assert.equal(after3.port, after1.port, 'the new mapping is used toward every destination');

  // To another LAN (another NAT), then onto the public segment itself.
  m.host.moveTo(L.eim2.lan);
  assert.deepEqual(await observed(m.agent, L.s2), { addr: L.eim2.wanAddr, port: HOST_PORT + 6 }, 'S2 sees the other router');
  const pubAddr = m.host.moveTo(L.pub);
  assert.deepEqual(await observed(m.agent, L.s2), { addr: pubAddr, port: HOST_PORT + 6 }, 'on the public segment S2 sees the host itself');
  // A public host reaches hosts on a plain router's LAN (routed there).
  assert.ok(await m.agent.observedBy(p.host.addr, HOST_PORT + 5), 'a public host reaches a host behind a plain router');
});
