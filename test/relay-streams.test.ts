// The stream rungs between a member and a relaying node, in process: two Engines with MeshNodes
// (their UDP binds on a memory network where the member cannot reach the relay's UDP endpoint),
// the relay's RelayStreamServer on loopback (an HTTP/2 TLS server with extended CONNECT, and TCP),
// and the member's RelayLinks: the member's path to the relay becomes the stream (https, then tcp
// when HTTPS is not offered), discovery pongs come back over it, WireGuard packets cross.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer as createNetServer } from 'node:net';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Engine } from '../src/wireguard/index.js';
import { MemoryTun } from '../src/tun/index.js';
import { MemoryNetwork, createMasqueServer } from '../src/transport/index.js';
import { generatePrivateKey, encodeBase64Key } from '../src/crypto/index.js';
import { MeshNode, RelayLinks, RelayStreamServer, type ControlMapNode, type ControlNetworkMap } from '../src/mesh/index.js';
import { loadOrCreateTlsCert } from '../src/control/index.js';
import { ipv4Packet, udpDatagram } from '../src/stack/testing.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function engineAt(net: MemoryNetwork, addr: string) {
  const tun = new MemoryTun(`rs-${addr}`);
  const engine = new Engine({ device: tun, bind: net.createBind(addr) });
  engine.setPrivateKey(generatePrivateKey());
  await engine.setListenPort(51820);
  await engine.up();
  return { tun, engine };
}

for (const rung of ['https', 'tcp'] as const) {
  test(`relay streams: a member without UDP to the relay reaches it over ${rung}`, { timeout: 30_000 }, async () => {
    const net = new MemoryNetwork();
    const r = await engineAt(net, '198.18.200.1');
    const m = await engineAt(net, '198.18.200.2');
    const network = { id: 'net_0000000000000000', name: 'rs', ipv4Pool: '100.64.0.0/10', ulaPrefix: 'fd00:77::/48' };
    const tls = loadOrCreateTlsCert(mkdtempSync(join(tmpdir(), 'mtrs-')));
    const h2 = createMasqueServer({ ...tls, allowHTTP1: false });
    const tcp = createNetServer();
    await new Promise<void>((res) => h2.listen(0, '127.0.0.1', () => res()));
    await new Promise<void>((res) => tcp.listen(0, '127.0.0.1', () => res()));
    const ports = rung === 'https' ? { https: (h2.address() as { port: number }).port } : { tcp: (tcp.address() as { port: number }).port };
    const node = (e: Engine, id: string, ip: string, endpoints: string[]): ControlMapNode => ({
      id, name: id.slice(5, 6), publicKey: encodeBase64Key(e.publicKey!), ipv4: ip, ipv6: '', tags: [], endpoints, routes: [], exitNode: false, allowedIps: [],
    });
    // The member sees the relay at 127.0.0.1 (the streams' address) with no usable UDP endpoint there.
    const relayNode = { ...node(r.engine, 'node_rrrrrrrr', '100.64.0.1', ['127.0.0.1:51820']), relay: ports };
    const memberNode = node(m.engine, 'node_mmmmmmmm', '100.64.0.2', ['198.19.99.2:51820']);
    const rMesh = new MeshNode(r.engine);
    const mMesh = new MeshNode(m.engine);
    const map = (self: ControlMapNode, peers: ControlMapNode[]): ControlNetworkMap => ({ version: 1, network, self, peers });
    rMesh.apply(map(relayNode, [memberNode]));
    mMesh.apply(map(memberNode, [relayNode]));
    const server = new RelayStreamServer(r.engine, (k) => k === memberNode.publicKey);
    h2.on('stream', (s, h) => { if (!server.handleHttp2(s, h)) s.close(); });
    server.serveTcp(tcp);
    const links = new RelayLinks({
      engine: m.engine, map: () => mMesh.map, paths: (k) => mMesh.peerPaths(k),
      offer: (k, ep) => mMesh.offerStream(k, ep), withdraw: (k, ep) => mMesh.withdrawStream(k, ep),
    }, 100);
    try {
      let path = null;
      for (let i = 0; i < 100; i++) {
        await sleep(100);
        path = mMesh.pathOf(relayNode.publicKey);
        if (path?.kind === 'direct' && path.transport === rung) break;
      }
      assert.equal(path?.transport, rung, JSON.stringify({ path, links: links.status(), server: server.counters, disco: mMesh.disco.counters, rdisco: rMesh.disco.counters }));
      assert.equal(path?.kind, 'direct');
      assert.equal(server.counters[rung === 'https' ? 'httpsAccepted' : 'tcpAccepted'], 1);
      // WireGuard over it: a packet from the member reaches the relay's device.
      for (let i = 0; i < 30 && r.tun.written.length === 0; i++) {
        m.tun.inject(ipv4Packet('100.64.0.2', '100.64.0.1', 17, udpDatagram('100.64.0.2', '100.64.0.1', 1, 2, Buffer.from(`over ${rung}`))));
        await sleep(100);
      }
      assert.ok(r.tun.takeWritten().some((p) => p.includes(Buffer.from(`over ${rung}`))), 'a packet crossed');
    } finally {
      links.stop();
      server.close();
      rMesh.stop();
      mMesh.stop();
      r.engine.close();
      m.engine.close();
      h2.close();
      tcp.close();
    }
  });
}
