// The userspace stack as the real WireGuard engine's device: two engines joined by an in-memory
// bind network, each with a UserspaceStack instead of a TUN. Ping (v4, v6, fragmented), UDP echo
// (v4, v6, a datagram bigger than the MTU), and TCP transfers of a few MB each way with matching
// SHA-256.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { Engine, parseCidr } from '../src/wireguard/index.js';
import { MemoryNetwork } from '../src/transport/index.js';
import { generatePrivateKey } from '../src/crypto/index.js';
import { UserspaceStack, parseIpLiteral, type UdpRemoteInfo } from '../src/stack/index.js';

interface Node { engine: Engine; stack: UserspaceStack; pub: Buffer; address: string }

async function makeNode(net: MemoryNetwork, underlay: string, overlay: string[]): Promise<Node> {
  const stack = new UserspaceStack({ addresses: overlay, mtu: 1420, name: `stack-${underlay}` });
  const bind = net.createBind(underlay);
  const engine = new Engine({ device: stack, bind });
  engine.setPrivateKey(generatePrivateKey());
  await engine.setListenPort(51820);
  await engine.up();
  return { engine, stack, pub: engine.publicKey!, address: underlay };
}

function peerUp(a: Node, b: Node, bAllowed: string[]): void {
  const p = a.engine.addPeer(b.pub);
  for (const c of bAllowed) a.engine.allowedIps.insertCidr(parseCidr(c), p);
  a.engine.setEndpoint(p, a.engine.bind.parseEndpoint(`${b.address}:51820`));
}

async function twoNodes() {
  const net = new MemoryNetwork();
  const a = await makeNode(net, '198.18.0.1', ['100.64.0.1/24', 'fd00::1/64']);
  const b = await makeNode(net, '198.18.0.2', ['100.64.0.2/24', 'fd00::2/64']);
  peerUp(a, b, ['100.64.0.2/32', 'fd00::2/128']);
  peerUp(b, a, ['100.64.0.1/32', 'fd00::1/128']);
  return { a, b, close: () => { a.engine.close(); b.engine.close(); } };
}

const ip = (t: string) => parseIpLiteral(t)!.addr;

/** `p`, or a rejection naming `what` after `ms` (the timer is cleared either way). */
async function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([p, new Promise<never>((_, rej) => { timer = setTimeout(() => rej(new Error(`timed out: ${what}`)), ms); })]);
  } finally {
    clearTimeout(timer);
  }
}

test('stack + engine: ping over WireGuard (v4, v6, a fragmented 4000-byte ping)', async () => {
  const { a, b, close } = await twoNodes();
  try {
    // The first ping waits for the handshake inside the engine.
    const first = await a.stack.icmp.ping(4, ip('100.64.0.2'), { timeoutMs: 5000 });
    assert.ok(first >= 0);
    for (let i = 0; i < 5; i++) assert.ok((await a.stack.icmp.ping(4, ip('100.64.0.2'), { timeoutMs: 2000 })) >= 0);
    assert.ok((await b.stack.icmp.ping(6, ip('fd00::1'), { timeoutMs: 2000 })) >= 0);
    assert.ok((await a.stack.icmp.ping(4, ip('100.64.0.2'), { timeoutMs: 2000, payload: randomBytes(4000) })) >= 0);
    assert.equal(b.stack.reassembler.counters.reassembled, 1);
    assert.equal(b.stack.counters.echoRequestsIn, 7);
    assert.equal(a.engine.counters.handshakesCompleted + b.engine.counters.handshakesCompleted, 2);
    assert.equal(a.engine.counters.totalDrops(), 0);
    assert.equal(b.engine.counters.totalDrops(), 0);
  } finally {
    close();
  }
});

test('stack + engine: UDP echo (v4 and v6, and a 30000-byte datagram)', async () => {
  const { a, b, close } = await twoNodes();
  try {
    for (const [family, server] of [[4, '100.64.0.2'], [6, 'fd00::2']] as const) {
      const srv = b.stack.udp.createSocket(family).bind(7);
      srv.on('message', (m: Buffer, r: UdpRemoteInfo) => srv.send(m, r.port, r.address));
      const cli = a.stack.udp.createSocket(family);
      for (const size of [1, 1000, 30_000]) {
        const data = randomBytes(size);
        const got = new Promise<Buffer>((resolve) => cli.once('message', (m: Buffer) => resolve(m)));
        cli.send(data, 7, server);
        const echoed = await within(got, 5000, `echo of ${size} bytes over IPv${family}`);
        assert.deepEqual(echoed, data);
      }
      srv.close();
      cli.close();
    }
    assert.equal(a.engine.counters.totalDrops(), 0);
  } finally {
    close();
  }
});

test('stack + engine: TCP transfer of a few MB each way with matching SHA-256 (v4, v6)', async () => {
  const { a, b, close } = await twoNodes();
  try {
    await tcpTransfer(a.stack, b.stack, '100.64.0.2', 4 * 1024 * 1024);
    await tcpTransfer(b.stack, a.stack, 'fd00::1', 4 * 1024 * 1024);
    assert.equal(a.engine.counters.totalDrops(), 0);
    assert.equal(b.engine.counters.totalDrops(), 0);
  } finally {
    close();
  }
});

/** Sends `size` random bytes from `from` to `to` over TCP; the receiver answers with the length
 * and SHA-256 it saw, which must match the sender's. */
async function tcpTransfer(from: UserspaceStack, to: UserspaceStack, host: string, size: number): Promise<void> {
  const server = to.listenTcp({ port: 8080 }, (sock) => {
    const h = createHash('sha256');
    let n = 0;
    sock.on('data', (d: Buffer) => { h.update(d); n += d.length; });
    sock.on('end', () => sock.end(`${n}:${h.digest('hex')}`));
  });
  try {
    const data = randomBytes(size);
    const sent = `${size}:${createHash('sha256').update(data).digest('hex')}`;
    const client = from.connectTcp({ host, port: 8080 });
    await new Promise<void>((resolve, reject) => { client.once('connect', resolve); client.once('error', reject); });
    let answer = '';
    client.on('data', (d: Buffer) => { answer += d.toString(); });
    const ended = new Promise<void>((resolve, reject) => { client.once('end', resolve); client.once('error', reject); });
    for (let at = 0; at < size; at += 65536) {
      if (!client.write(data.subarray(at, at + 65536))) await new Promise((r) => client.once('drain', r));
    }
    client.end();
    await within(ended, 60_000, `TCP transfer of ${size} bytes to ${host}`);
    assert.equal(answer, sent);
  } finally {
    server.close();
  }
}
