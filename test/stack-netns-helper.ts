// The rootless side of test/stack-netns.test.ts: a WireGuard engine whose device is a
// UserspaceStack (no TUN, no privileges), on a real UDP socket, run as an unprivileged user:
//
//   setpriv --reuid=65534 --regid=65534 --clear-groups node dist/test/stack-netns-helper.js '<json>'
//
// It serves UDP echo on `echoPort` (v4 and v6) and a TCP sink on the same port that answers
// "<bytes>:<sha256>" when the sender closes. Commands arrive as JSON lines on stdin:
//   {"cmd":"ping","family":4,"dst":"100.64.0.2","size":56}   -> {"step":"ping","ok":true,"rtt":1.2}
//   {"cmd":"tcp-send","dst":"100.64.0.2","port":9000,"size":N} -> {"step":"tcp-send","ok":true,...}
//   {"cmd":"stats"}                                          -> {"step":"stats","stack":{...},"engine":{...}}
// It prints {"step":"ready","uid":<uid>,"gid":<gid>,"tcp":<bool>} once listening; errors as
// {"step":"error","error":"..."}.

import { createInterface } from 'node:readline';
import { createHash, randomBytes } from 'node:crypto';
import { Engine, parseCidr } from '../src/wireguard/index.js';
import { createUdpBind } from '../src/transport/index.js';
import { decodeBase64Key } from '../src/crypto/index.js';
import { UserspaceStack, parseIpLiteral, type UdpRemoteInfo } from '../src/stack/index.js';

export interface StackHelperConfig {
  privateKey: string;
  peerPublicKey: string;
  listenPort: number;
  peerEndpoint: string;
  addresses: string[];
  peerAllowedIps: string[];
  echoPort: number;
  mtu?: number;
}

function report(step: string, fields: Record<string, unknown> = {}): void {
  process.stdout.write(JSON.stringify({ step, ...fields }) + '\n');
}

function keyOrDie(text: string, what: string): Buffer {
  const k = decodeBase64Key(text);
  if (!k) throw new Error(`bad ${what}`);
  return k;
}

async function main(): Promise<void> {
  const cfg = JSON.parse(process.argv[2] ?? '{}') as StackHelperConfig;
  const stack = new UserspaceStack({ addresses: cfg.addresses, mtu: cfg.mtu ?? 1420, name: 'rootless' });
  const bind = createUdpBind();
  const engine = new Engine({ device: stack, bind, name: 'rootless' });
  engine.setPrivateKey(keyOrDie(cfg.privateKey, 'private key'));
  await engine.setListenPort(cfg.listenPort);
  const peer = engine.addPeer(keyOrDie(cfg.peerPublicKey, 'peer public key'));
  for (const c of cfg.peerAllowedIps) engine.allowedIps.insertCidr(parseCidr(c), peer);
  engine.setEndpoint(peer, bind.parseEndpoint(cfg.peerEndpoint));
  await engine.up();

  for (const family of [4, 6] as const) {
    const sock = stack.udp.createSocket(family).bind(cfg.echoPort);
    sock.on('message', (m: Buffer, r: UdpRemoteInfo) => sock.send(m, r.port, r.address));
  }
  const tcp = true;
  stack.listenTcp({ port: cfg.echoPort }, (sock) => {
    const h = createHash('sha256');
    let n = 0;
    sock.on('data', (d: Buffer) => { h.update(d); n += d.length; });
    sock.on('end', () => sock.end(`${n}:${h.digest('hex')}`));
    sock.on('error', () => sock.destroy());
  });

  const rl = createInterface({ input: process.stdin });
  rl.on('line', (line) => {
    void (async () => {
      const cmd = JSON.parse(line) as { cmd: string; family?: 4 | 6; dst?: string; size?: number; port?: number };
      if (cmd.cmd === 'ping') {
        const dst = parseIpLiteral(cmd.dst ?? '');
        if (!dst) { report('ping', { ok: false, error: `bad address ${cmd.dst}` }); return; }
        try {
          const rtt = await stack.icmp.ping(dst.family, dst.addr, { timeoutMs: 3000, payload: Buffer.alloc(cmd.size ?? 56, 0x5a) });
          report('ping', { ok: true, rtt });
        } catch (err) {
          report('ping', { ok: false, error: String(err) });
        }
      } else if (cmd.cmd === 'tcp-send') {
        // Connects through the stack, sends `size` random bytes, and reports the sink's answer.
        const data = randomBytes(cmd.size ?? 0);
        const mine = `${data.length}:${createHash('sha256').update(data).digest('hex')}`;
        const sock = stack.connectTcp({ host: cmd.dst ?? '', port: cmd.port ?? 0 }, () => sock.end(data));
        let answer = '';
        sock.on('data', (d: Buffer) => { answer += d.toString(); });
        sock.on('end', () => report('tcp-send', { ok: answer === mine, answer, mine }));
        sock.on('error', (err) => report('tcp-send', { ok: false, error: String(err) }));
      } else if (cmd.cmd === 'stats') {
        report('stats', { stack: { ...stack.counters }, fragments: { ...stack.reassembler.counters }, tcp: { ...stack.tcpLayer.counters }, engine: { ...engine.counters } });
      }
    })();
  });
  rl.on('close', () => { engine.close(); process.exit(0); });
  process.on('SIGTERM', () => { engine.close(); process.exit(0); });
  report('ready', { uid: process.getuid?.(), gid: process.getgid?.(), tcp, port: bind.port });
}

main().catch((err: unknown) => {
  report('error', { error: String(err instanceof Error ? err.stack : err) });
  process.exit(1);
});
