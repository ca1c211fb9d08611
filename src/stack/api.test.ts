import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { UserError } from '../util/index.js';
import { Ipv4Repr, parseIpv4, Status, IpProtocol } from '../wire/index.js';
import { UserspaceStack } from './stack.js';
import { MemoryLink } from './memory-link.js';
import type { TcpSocket, TcpSocketError } from './tcp/index.js';
import { icmpv4Error, icmpv6Error, turns } from './testing.js';

function pair(opts: { mtu?: number } = {}) {
  const a = new UserspaceStack({ addresses: ['100.64.0.1/24', 'fd00::1/64'], name: 'a', ...opts });
  const b = new UserspaceStack({ addresses: ['100.64.0.2/24', 'fd00::2/64'], name: 'b', ...opts });
  const link = new MemoryLink(a, b);
  return { a, b, link, close: () => { link.close(); a.close(); b.close(); } };
}

/** Reads a socket to its end. */
function readAll(sock: TcpSocket): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    sock.on('data', (d: Buffer) => parts.push(d));
    sock.on('end', () => resolve(Buffer.concat(parts)));
    sock.on('error', reject);
  });
}

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

test('api: connectTcp / listenTcp echo over IPv4 and IPv6, with net-like events and addresses', async () => {
  const { a, b, close } = pair();
  try {
    const server = b.listenTcp({ port: 8000 }, (s) => s.pipe(s));
    await new Promise<void>((resolve) => server.once('listening', () => resolve()));
    assert.deepEqual(server.address(), { address: '0.0.0.0', family: 'IPv4', port: 8000 });
    for (const host of ['100.64.0.2', 'fd00::2', '[fd00::2]']) {
      let connected = false;
      const sock = a.connectTcp({ host, port: 8000 }, () => { connected = true; });
      const data = randomBytes(200_000);
      sock.end(data);
      const echoed = await readAll(sock);
      assert.ok(connected, 'connect listener ran');
      assert.equal(sha(echoed), sha(data));
      assert.equal(sock.remoteAddress, host.replace(/[[\]]/g, ''));
      assert.equal(sock.remotePort, 8000);
      assert.equal(sock.localAddress, host.includes(':') ? 'fd00::1' : '100.64.0.1');
    }
    server.close();
  } finally {
    close();
  }
});

test('api: a port nobody listens on refuses the connection (ECONNREFUSED)', async () => {
  const { a, close } = pair();
  try {
    const sock = a.connectTcp({ host: '100.64.0.2', port: 8001 });
    const err = await new Promise<TcpSocketError>((resolve) => sock.once('error', resolve));
    assert.equal(err.code, 'ECONNREFUSED');
  } finally {
    close();
  }
});

test('api: listen on one address only; localAddress and localPort on connect', async () => {
  const s = new UserspaceStack({ addresses: ['100.64.0.2/24', '100.64.0.3/24'], name: 's' });
  const c = new UserspaceStack({ addresses: ['100.64.0.1/24', '100.64.0.5/24'], name: 'c' });
  const link = new MemoryLink(c, s);
  try {
    const seen: string[] = [];
    const server = s.listenTcp({ port: 9000, host: '100.64.0.3' }, (sock) => {
      seen.push(`${sock.remoteAddress}:${sock.remotePort}`);
      sock.end('hi');
    });
    assert.deepEqual(server.address(), { address: '100.64.0.3', family: 'IPv4', port: 9000 });
    const ok = c.connectTcp({ host: '100.64.0.3', port: 9000, localAddress: '100.64.0.5', localPort: 40001 });
    assert.equal((await readAll(ok)).toString(), 'hi');
    assert.deepEqual(seen, ['100.64.0.5:40001']);
    const refused = c.connectTcp({ host: '100.64.0.2', port: 9000 });
    assert.equal((await new Promise<TcpSocketError>((r) => refused.once('error', r))).code, 'ECONNREFUSED');
    assert.throws(() => s.listenTcp({ port: 9000, host: '100.64.0.3' }), /already being listened on/);
    server.close();
  } finally {
    link.close();
    s.close();
    c.close();
  }
});

test('api: argument mistakes throw UserError with a hint', () => {
  const s = new UserspaceStack({ addresses: ['100.64.0.2/24'] });
  assert.throws(() => s.connectTcp({ host: 'example.com', port: 80 }), (e: Error) => e instanceof UserError && /resolve host names/.test(e.message));
  assert.throws(() => s.connectTcp({ host: 'fd00::1', port: 80 }), /no IPv6 address/);
  assert.throws(() => s.connectTcp({ host: '100.64.0.1', port: 80, localAddress: '100.64.0.9' }), /not an address of the userspace stack/);
  assert.throws(() => s.connectTcp({ host: '100.64.0.1', port: 0 }), UserError);
  assert.throws(() => s.listenTcp({ port: 80, host: '100.64.0.9' }), /not an address/);
  assert.throws(() => s.udpSocket('udp5' as 'udp4'), UserError);
  assert.throws(() => s.ping(4, 'fd00::1'), /not an IPv4 address/);
  assert.throws(() => s.ping(4, '100.64.0.1', { timeoutMs: 0 }), /positive/);
  s.close();
  assert.throws(() => s.connectTcp({ host: '100.64.0.1', port: 80 }), /closed/);
  assert.throws(() => s.udpSocket(4), /closed/);
});

test('api: udpSocket and ping with IP literals', async () => {
  const { a, b, close } = pair();
  try {
    const srv = b.udpSocket('udp6').bind(53);
    srv.on('message', (m: Buffer, r: { port: number; address: string }) => srv.send(m, r.port, r.address));
    const cli = a.udpSocket(6);
    const got = new Promise<Buffer>((resolve) => cli.once('message', resolve));
    cli.send('q', 53, 'fd00::2');
    assert.equal((await got).toString(), 'q');
    assert.ok((await a.ping(4, '100.64.0.2')) >= 0);
    assert.ok((await a.ping(6, 'fd00::2', { payload: Buffer.from('hello') })) >= 0);
  } finally {
    close();
  }
});

test('api: TCP finds a smaller path MTU from ICMP and still delivers (v4 and v6)', async () => {
  const { a, b, link, close } = pair({ mtu: 1420 });
  try {
    const PATH_MTU = 1300;
    // A "router" between the stacks: drops a's packets over PATH_MTU and reports them.
    link.filter = (pkt, fromA) => {
      if (!fromA || pkt.length <= PATH_MTU) return true;
      const copy = Buffer.from(pkt);
      setImmediate(() => {
        const err = (copy[0]! >>> 4) === 4
          ? icmpv4Error('100.64.0.254', '100.64.0.1', 3, 4, copy, PATH_MTU)
          : icmpv6Error('fd00::fe', 'fd00::1', 2, 0, copy, PATH_MTU);
        a.writeBatch([err], new Uint32Array(1), new Uint32Array([err.length]), 1);
      });
      return false;
    };
    const server = b.listenTcp({ port: 7000 }, (s) => {
      const h = createHash('sha256');
      s.on('data', (d: Buffer) => h.update(d));
      s.on('end', () => s.end(h.digest('hex')));
    });
    for (const host of ['100.64.0.2', 'fd00::2']) {
      const data = randomBytes(300_000);
      const sock = a.connectTcp({ host, port: 7000 });
      sock.end(data);
      assert.equal((await readAll(sock)).toString(), sha(data), `transfer to ${host}`);
    }
    assert.equal(a.pathMtu(4, 0x64400002), PATH_MTU);
    assert.equal(a.pathMtu(6, Buffer.from('fd000000000000000000000000000002', 'hex')), PATH_MTU);
    assert.ok(a.counters.pmtuUpdates >= 2);
    assert.ok(a.tcpLayer.counters.pmtuDecreases >= 2);
    server.close();
    await turns(2);
  } finally {
    close();
  }
});

test('api: IPv4 TCP segments carry DF', async () => {
  const { a, b, link, close } = pair();
  try {
    const seen: Ipv4Repr[] = [];
    link.filter = (pkt, fromA) => {
      if (fromA && (pkt[0]! >>> 4) === 4) {
        const r = new Ipv4Repr();
        if (parseIpv4(pkt, 0, pkt.length, r) === Status.Ok) seen.push(r);
      }
      return true;
    };
    const server = b.listenTcp({ port: 7001 }, (s) => s.resume().on('end', () => s.end()));
    const sock = a.connectTcp({ host: '100.64.0.2', port: 7001 });
    sock.end(randomBytes(10_000));
    await readAll(sock);
    const tcp = seen.filter((r) => r.protocol === IpProtocol.Tcp);
    assert.ok(tcp.length > 0 && tcp.every((r) => r.dontFragment));
    server.close();
  } finally {
    close();
  }
});
