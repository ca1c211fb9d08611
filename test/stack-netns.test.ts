// The rootless userspace stack against a real WireGuard peer, in network namespaces:
//
//   ns "s": test/stack-netns-helper.ts as user nobody: Engine + UserspaceStack + UDP socket
//   ns "w": wireguard-go with a kernel TUN, addresses 100.64.0.2/24 and fd00::2/64
//   joined by a veth pair on 198.18.0.0/24.
//
// The kernel side pings the stack's overlay addresses (v4, v6, and 3000-byte pings that are
// fragmented both ways), sends UDP to its echo port (v4, v6, one datagram bigger than the MTU),
// and the stack pings the kernel side; 4 MB go over TCP each way (v4 and v6) and the SHA-256
// must match. Needs root, wireguard-go, wg and setpriv.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { ChildProcess } from 'node:child_process';
import { Topology, uniqueTag, sh, waitFor, captureOutput, isRoot } from './netns.js';
import type { StackHelperConfig } from './stack-netns-helper.js';

const have = (p: string) => existsSync(p);
const skip = isRoot && have('/usr/bin/wireguard-go') && have('/usr/bin/wg') && have('/usr/bin/setpriv') && have('/dev/net/tun')
  ? false : 'needs root, /dev/net/tun, wireguard-go, wg and setpriv';

const HELPER = 'dist/test/stack-netns-helper.js';
const UNPRIVILEGED = '65534';
const STACK_PORT = 51821;
const WG_PORT = 51822;
const ECHO_PORT = 7;

/** Reads the helper's JSON lines; `next(step)` waits for the next line of that step. */
class Lines {
  private readonly queue: Record<string, unknown>[] = [];
  private waiter: (() => void) | null = null;
  constructor(p: ChildProcess) {
    createInterface({ input: p.stdout! }).on('line', (l) => {
      try { this.queue.push(JSON.parse(l) as Record<string, unknown>); } catch { return; }
      this.waiter?.();
    });
  }
  async next(step: string, ms = 10_000): Promise<Record<string, unknown>> {
    const end = Date.now() + ms;
    for (;;) {
      const i = this.queue.findIndex((x) => x.step === step || x.step === 'error');
      if (i >= 0) {
        const x = this.queue.splice(i, 1)[0]!;
        if (x.step === 'error') throw new Error(`helper failed: ${String(x.error)}`);
        return x;
      }
      const left = end - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for "${step}" from the helper`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiter = () => { clearTimeout(t); this.waiter = null; resolve(); };
      });
    }
  }
}

function keyPair(): { priv: string; pub: string } {
  const priv = sh('wg', ['genkey']).trim();
  return { priv, pub: sh('wg', ['pubkey'], { input: priv + '\n' }).trim() };
}

/** "3 packets transmitted, 3 received" -> 3. */
function received(pingOutput: string): number {
  const m = /(\d+) (?:packets )?received/.exec(pingOutput);
  return m ? Number(m[1]) : 0;
}

/** A node:dgram client run in a namespace: sends `size` bytes, prints the echo's length and sha. */
const UDP_CLIENT = `
const dgram = require('node:dgram'); const { createHash, randomBytes } = require('node:crypto');
const [host, port, size] = process.argv.slice(1);
const s = dgram.createSocket(host.includes(':') ? 'udp6' : 'udp4');
const data = randomBytes(Number(size));
const sha = (b) => createHash('sha256').update(b).digest('hex');
const t = setTimeout(() => { console.log('timeout'); process.exit(1); }, 5000);
s.on('message', (m) => { console.log(m.length + ':' + (sha(m) === sha(data) ? 'same' : 'different')); clearTimeout(t); s.close(); });
s.send(data, Number(port), host);`;

/** A TCP client run in a namespace: sends `size` bytes, prints what the sink answers and its own sum. */
const TCP_CLIENT = `
const net = require('node:net'); const { createHash, randomBytes } = require('node:crypto');
const [host, port, size] = process.argv.slice(1);
const data = randomBytes(Number(size));
const mine = data.length + ':' + createHash('sha256').update(data).digest('hex');
const s = net.connect({ host, port: Number(port) }, () => s.end(data));
let answer = '';
s.on('data', (d) => { answer += d; });
s.on('end', () => { console.log(JSON.stringify({ answer, mine })); process.exit(0); });
s.on('error', (e) => { console.log(JSON.stringify({ error: String(e) })); process.exit(1); });
setTimeout(() => { console.log(JSON.stringify({ error: 'timeout' })); process.exit(1); }, 60000);`;

/** A TCP sink run in a namespace: for each connection, answers "<bytes>:<sha256>" at its end. */
const TCP_SINK = `
const net = require('node:net'); const { createHash } = require('node:crypto');
const srv = net.createServer((s) => { const h = createHash('sha256'); let n = 0;
  s.on('data', (d) => { h.update(d); n += d.length; }); s.on('end', () => s.end(n + ':' + h.digest('hex'))); s.on('error', () => {}); });
srv.listen(Number(process.argv[1]), '::', () => console.log('listening'));`;
const SINK_PORT = 9000;

test('stack netns: rootless stack <-> wireguard-go with a kernel TUN (ping, fragments, UDP echo, TCP)', { skip, timeout: 120_000 }, async (t) => {
  const topo = new Topology(uniqueTag('sn'));
  const work = mkdtempSync(join(tmpdir(), 'meshtun-sn-'));
  try {
    const nsS = topo.ns('s');
    const nsW = topo.ns('w');
    topo.link(nsS, '198.18.0.1/24', nsW, '198.18.0.2/24');
    const stackKeys = keyPair();
    const wgKeys = keyPair();

    const cfg: StackHelperConfig = {
      privateKey: stackKeys.priv, peerPublicKey: wgKeys.pub, listenPort: STACK_PORT,
      peerEndpoint: `198.18.0.2:${WG_PORT}`, addresses: ['100.64.0.1/24', 'fd00::1/64'],
      peerAllowedIps: ['100.64.0.2/32', 'fd00::2/128'], echoPort: ECHO_PORT,
    };
    const helper = topo.spawn(nsS, 'setpriv', [`--reuid=${UNPRIVILEGED}`, `--regid=${UNPRIVILEGED}`, '--clear-groups',
      process.execPath, '--enable-source-maps', HELPER, JSON.stringify(cfg)], { stdio: ['pipe', 'pipe', 'pipe'] });
    const helperOut = captureOutput(helper);
    const lines = new Lines(helper);
    const ready = await lines.next('ready').catch((e: Error) => { throw new Error(`${e.message}\n${helperOut.text()}`); });
    assert.equal(ready.uid, 65534, 'the stack side runs unprivileged');
    assert.equal(ready.gid, 65534);

    const iface = `${topo.tag}w`.slice(-15);
    const wg = topo.spawn(nsW, 'wireguard-go', ['-f', iface], { env: { ...process.env, WG_PROCESS_FOREGROUND: '1' } });
    const wgOut = captureOutput(wg);
    await waitFor(`wireguard-go ${iface} UAPI socket`, () => existsSync(`/var/run/wireguard/${iface}.sock`), 10_000, 50);
    const keyFile = join(work, 'wg.key');
    writeFileSync(keyFile, wgKeys.priv + '\n', { mode: 0o600 });
    topo.exec(nsW, 'wg', ['set', iface, 'private-key', keyFile, 'listen-port', String(WG_PORT),
      'peer', stackKeys.pub, 'allowed-ips', '100.64.0.1/32,fd00::1/128', 'endpoint', `198.18.0.1:${STACK_PORT}`]);
    topo.exec(nsW, 'ip', ['addr', 'add', '100.64.0.2/24', 'dev', iface]);
    topo.exec(nsW, 'ip', ['-6', 'addr', 'add', 'fd00::2/64', 'dev', iface, 'nodad']);
    topo.exec(nsW, 'ip', ['link', 'set', iface, 'up']);
    const diag = () => `helper:\n${helperOut.text()}\nwireguard-go:\n${wgOut.text()}`;

    // Kernel -> stack: the first ping also makes the handshake.
    const warm = topo.exec(nsW, 'ping', ['-c', '1', '-W', '5', '100.64.0.1'], { allowFail: true });
    assert.equal(received(warm), 1, `first ping: ${warm}\n${diag()}`);
    const p4 = topo.exec(nsW, 'ping', ['-c', '5', '-i', '0.2', '-W', '2', '100.64.0.1'], { allowFail: true });
    assert.equal(received(p4), 5, p4);
    const p6 = topo.exec(nsW, 'ping', ['-6', '-c', '5', '-i', '0.2', '-W', '2', 'fd00::1'], { allowFail: true });
    assert.equal(received(p6), 5, p6);
    const big4 = topo.exec(nsW, 'ping', ['-c', '3', '-i', '0.2', '-W', '2', '-s', '3000', '100.64.0.1'], { allowFail: true });
    assert.equal(received(big4), 3, `fragmented IPv4 ping: ${big4}`);
    const big6 = topo.exec(nsW, 'ping', ['-6', '-c', '3', '-i', '0.2', '-W', '2', '-s', '3000', 'fd00::1'], { allowFail: true });
    assert.equal(received(big6), 3, `fragmented IPv6 ping: ${big6}`);
    t.diagnostic(p4.split('\n').filter((l) => l.startsWith('rtt')).join(' '));

    // Kernel -> stack UDP echo.
    for (const [host, size] of [['100.64.0.1', 100], ['fd00::1', 100], ['100.64.0.1', 8000], ['fd00::1', 8000]] as const) {
      const out = topo.exec(nsW, process.execPath, ['-e', UDP_CLIENT, host, String(ECHO_PORT), String(size)], { allowFail: true }).trim();
      assert.equal(out, `${size}:same`, `UDP echo of ${size} bytes via ${host}: ${out}\n${diag()}`);
    }

    // Stack -> kernel ping.
    for (const [family, dst, size] of [[4, '100.64.0.2', 56], [6, 'fd00::2', 56], [4, '100.64.0.2', 3000]] as const) {
      helper.stdin!.write(JSON.stringify({ cmd: 'ping', family, dst, size }) + '\n');
      const r = await lines.next('ping');
      assert.equal(r.ok, true, `stack ping ${dst} (${size} bytes): ${String(r.error)}`);
    }

    // Kernel -> stack TCP (v4 and v6).
    const size = 4 * 1024 * 1024;
    for (const host of ['100.64.0.1', 'fd00::1']) {
      const started = Date.now();
      const out = topo.exec(nsW, process.execPath, ['-e', TCP_CLIENT, host, String(ECHO_PORT), String(size)], { allowFail: true }).trim();
      const r = JSON.parse(out || '{"error":"no output"}') as { answer?: string; mine?: string; error?: string };
      assert.equal(r.error, undefined, `TCP transfer to ${host}: ${r.error}\n${diag()}`);
      assert.equal(r.answer, r.mine, `the stack received the same bytes via ${host}`);
      t.diagnostic(`kernel -> stack TCP ${host}: ${size} bytes in ${Date.now() - started} ms (incl. node start-up)`);
    }

    // Stack -> kernel TCP: a node:net sink in the kernel namespace answers "<bytes>:<sha256>".
    const sink = topo.spawn(nsW, process.execPath, ['-e', TCP_SINK, String(SINK_PORT)]);
    const sinkOut = captureOutput(sink);
    await waitFor('TCP sink listening', () => sinkOut.text().includes('listening'), 10_000, 50);
    for (const host of ['100.64.0.2', 'fd00::2']) {
      const started = Date.now();
      helper.stdin!.write(JSON.stringify({ cmd: 'tcp-send', dst: host, port: SINK_PORT, size }) + '\n');
      const r = await lines.next('tcp-send', 60_000);
      assert.equal(r.ok, true, `stack -> kernel TCP via ${host}: ${JSON.stringify(r)}\n${diag()}`);
      t.diagnostic(`stack -> kernel TCP ${host}: ${size} bytes in ${Date.now() - started} ms`);
    }

    helper.stdin!.write(JSON.stringify({ cmd: 'stats' }) + '\n');
    const stats = await lines.next('stats');
    const stack = stats.stack as Record<string, number>;
    assert.ok(stack.echoRequestsIn === 17, `echo requests answered: ${stack.echoRequestsIn}`);
    assert.equal(stack.rxV4Checksum, 0);
    assert.equal(stack.rxNotForUs, 0);
    t.diagnostic(`stack counters: rx ${stack.rxPackets} tx ${stack.txPackets} fragments sent ${stack.txFragments} reassembled ${(stats.fragments as Record<string, number>).reassembled}`);
  } finally {
    await topo.destroy();
    rmSync(work, { recursive: true, force: true });
  }
});
