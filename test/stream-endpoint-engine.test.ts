// Two real Engines (MemoryTun devices, MemoryNetwork binds that carry nothing here) where peer B's
// endpoint at A is a StreamEndpoint over a loopback connection of one of the stream rungs
// (tcp-framed, MASQUE CONNECT-UDP over HTTP/2); the server side pipes what arrives into B's
// engine with its own StreamEndpoint as the sender. The handshake and a UDP packet each way cross
// the stream, B's engine answers through the server-side endpoint (roaming to it), and wg(8)'s
// view of the endpoints names the rung.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { Engine, parseCidr } from '../src/wireguard/index.js';
import { MemoryTun } from '../src/tun/index.js';
import {
  MemoryNetwork, StreamEndpoint, acceptTcpFramed, connectTcpFramed, connectUdp, parseConnectUdpRequest, pipeToEngine, respondConnectUdp,
  type DatagramStream,
} from '../src/transport/index.js';
import { startTestMasqueServer } from '../src/transport/testing.js';
import { generatePrivateKey } from '../src/crypto/index.js';
import { ipv4Packet, udpDatagram } from '../src/stack/testing.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function makeEngine(net: MemoryNetwork, name: string, underlay: string): Promise<{ tun: MemoryTun; engine: Engine }> {
  const tun = new MemoryTun(`stream-${name}`);
  const engine = new Engine({ device: tun, bind: net.createBind(underlay) });
  engine.setPrivateKey(generatePrivateKey());
  await engine.setListenPort(51820);
  await engine.up();
  return { tun, engine };
}

/** Opens the rung's connection from A to a server that pipes into B; returns A's stream and
 * (once accepted) B's. */
async function openRung(kind: 'tcp' | 'https', b: Engine): Promise<{ client: DatagramStream; server: Promise<StreamEndpoint>; close: () => Promise<void> }> {
  let accepted!: (ep: StreamEndpoint) => void;
  const server = new Promise<StreamEndpoint>((resolve) => { accepted = resolve; });
  const onStream = (stream: DatagramStream): void => {
    const ep = new StreamEndpoint(stream);
    pipeToEngine(stream, ep, b);
    accepted(ep);
  };
  if (kind === 'tcp') {
    const sockets: net.Socket[] = [];
    const srv = net.createServer((socket) => {
      sockets.push(socket);
      void acceptTcpFramed(socket, { readHello: true }).then(({ hello, stream }) => {
        if (hello?.toString() !== 'member:a') return stream.close();
        onStream(stream);
      });
    });
    await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
    const port = (srv.address() as AddressInfo).port;
    const client = await connectTcpFramed({ host: '127.0.0.1', port, hello: Buffer.from('member:a') });
    return { client, server, close: () => new Promise((resolve) => { for (const s of sockets) s.destroy(); srv.close(() => resolve()); }) };
  }
  const srv = await startTestMasqueServer({ echo: false });
  srv.server.removeAllListeners('stream');
  srv.server.on('stream', (stream, headers) => {
    const req = parseConnectUdpRequest(headers);
    if (req.ok) onStream(respondConnectUdp(stream));
  });
  const client = await connectUdp({ authority: srv.authority, target: { host: '198.18.0.2', port: 51820 } });
  return { client, server, close: () => srv.close() };
}

for (const kind of ['tcp', 'https'] as const) {
  test(`stream endpoint (${kind}): two engines talk through the stream both ways`, async () => {
    const mem = new MemoryNetwork();
    const a = await makeEngine(mem, 'a', '198.18.0.1');
    const b = await makeEngine(mem, 'b', '198.18.0.2');
    const rung = await openRung(kind, b.engine);
    try {
      const peerB = a.engine.addPeer(b.engine.publicKey!);
      a.engine.allowedIps.insertCidr(parseCidr('100.64.0.2/32'), peerB);
      const peerA = b.engine.addPeer(a.engine.publicKey!);
      b.engine.allowedIps.insertCidr(parseCidr('100.64.0.1/32'), peerA);
      const clientEp = new StreamEndpoint(rung.client);
      assert.match(clientEp.toString(), kind === 'tcp' ? /^tcp:\/\/127\.0\.0\.1:\d+$/ : /^https:\/\/127\.0\.0\.1:\d+$/);
      pipeToEngine(rung.client, clientEp, a.engine);
      a.engine.setEndpoint(peerB, clientEp);

      a.tun.inject(ipv4Packet('100.64.0.1', '100.64.0.2', 17, udpDatagram('100.64.0.1', '100.64.0.2', 4000, 5000, Buffer.from('ping over the stream'))));
      for (let i = 0; i < 200 && b.tun.written.length === 0; i++) await sleep(10);
      assert.equal(b.tun.written.length, 1, 'A -> B delivered');
      assert.ok(b.tun.written[0]!.includes(Buffer.from('ping over the stream')));
      const serverEp = await rung.server;
      assert.equal(peerA.endpoint, serverEp, 'B answers through the stream it heard A on');

      b.tun.inject(ipv4Packet('100.64.0.2', '100.64.0.1', 17, udpDatagram('100.64.0.2', '100.64.0.1', 5000, 4000, Buffer.from('pong over the stream'))));
      for (let i = 0; i < 200 && a.tun.written.length === 0; i++) await sleep(10);
      assert.equal(a.tun.written.length, 1, 'B -> A delivered');
      assert.ok(a.tun.written[0]!.includes(Buffer.from('pong over the stream')));

      assert.equal(mem.stats.sent, 0, 'nothing went through the UDP binds');
      assert.equal(a.engine.counters.txPackets > 0 && b.engine.counters.txPackets > 0, true);
      // Handshake initiation + data, response + data.
      assert.ok(rung.client.counters.txDatagrams >= 2 && rung.client.counters.rxDatagrams >= 2, JSON.stringify(rung.client.counters));
      assert.equal(serverEp.stream.counters.rxDatagrams, rung.client.counters.txDatagrams);
      // What wg show would print for each side.
      // wg(8) sees the stream's remote address as host:port (it parses nothing else).
      const hostPort = (ep: { family: number; address: string; port: number }) => (ep.family === 6 ? `[${ep.address}]:${ep.port}` : `${ep.address}:${ep.port}`);
      assert.equal(a.engine.getConfig().peers[0]!.endpoint, hostPort(clientEp));
      assert.equal(b.engine.getConfig().peers[0]!.endpoint, hostPort(serverEp));
      assert.match(clientEp.toString(), /^(tcp|https):\/\//);
      assert.match(serverEp.toString(), kind === 'tcp' ? /^tcp:\/\/127\.0\.0\.1:\d+$/ : /^https:\/\/127\.0\.0\.1:\d+$/);
    } finally {
      rung.client.close();
      a.engine.close();
      b.engine.close();
      await rung.close();
    }
  });
}
