// Rootless mode end to end, in network namespaces:
//
//   ns "u": `meshtun up --userspace ut.conf` as user nobody (setpriv), overlay 100.64.0.1/24,
//           SOCKS5 on 127.0.0.1:1080, HTTP proxy on 127.0.0.1:8080, DNS = 100.64.0.2,
//           Forward udp:127.0.0.1:5353=100.64.0.2:53, Reverse tcp:8000=127.0.0.1:8000,
//           and a local service on 127.0.0.1:8000 (reachable only through the Reverse forward);
//   ns "w": wireguard-go with a kernel TUN, 100.64.0.2/24, a web server on 100.64.0.2:80 serving a
//           random file, and a DNS responder on 100.64.0.2:53 (files.mesh -> 100.64.0.2);
//   joined by a veth pair on 198.18.0.0/24.
//
// Checked: the peer pings the userspace node; curl through the SOCKS5 proxy (by name, resolved
// through the tunnel's DNS) and through the HTTP proxy fetches the file with a matching SHA-256,
// without loss and with 3% random loss on the underlay in both directions (nftables); the peer
// reaches 127.0.0.1:8000 of the userspace node through the Reverse forward; a DNS query over UDP
// through the Forward; a closed port is refused at once (SOCKS5 reply 5) instead of timing out;
// SIGHUP reloads the file (a new Reverse pair starts, a removed one stops).
// Needs root, /dev/net/tun, wireguard-go, wg, setpriv, nft and curl.
// MESHTUN_USERSPACE_TEST_MB sets the file size (default 100).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, createWriteStream, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync, chownSync } from 'node:fs';
import { createHash, randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { once } from 'node:events';
import { spawnSync } from 'node:child_process';
import { Topology, uniqueTag, sh, waitFor, captureOutput, isRoot } from './netns.js';

const have = (p: string) => existsSync(p);
const skip = isRoot && ['/usr/bin/wireguard-go', '/usr/bin/wg', '/usr/bin/setpriv', '/usr/sbin/nft', '/usr/bin/curl', '/dev/net/tun'].every(have)
  ? false : 'needs root, /dev/net/tun, wireguard-go, wg, setpriv, nft and curl';

const NOBODY = 65534;
const MESHTUN_PORT = 51831;
const WG_PORT = 51832;
const FILE_MB = Number(process.env.MESHTUN_USERSPACE_TEST_MB ?? 100);
const TESTING = 'dist/src/forward/testing.js';
const LOSS_PERCENT = 3;

function keyPair(): { priv: string; pub: string } {
  const priv = sh('wg', ['genkey']).trim();
  return { priv, pub: sh('wg', ['pubkey'], { input: priv + '\n' }).trim() };
}

function received(pingOutput: string): number {
  const m = /(\d+) (?:packets )?received/.exec(pingOutput);
  return m ? Number(m[1]) : 0;
}

async function writeRandomFile(path: string, mb: number): Promise<string> {
  const h = createHash('sha256');
  const out = createWriteStream(path);
  for (let i = 0; i < mb; i++) {
    const chunk = randomBytes(1024 * 1024);
    h.update(chunk);
    if (!out.write(chunk)) await once(out, 'drain');
  }
  out.end();
  await once(out, 'finish');
  return h.digest('hex');
}

function sha256File(path: string): string {
  return createHash('sha256').update(readFileSync(path)).digest('hex');
}

test('userspace netns: meshtun --userspace as nobody <-> wireguard-go: proxies, forwards both ways, ping, loss, refusals, reload', { skip, timeout: 900_000 }, async (t) => {
  const topo = new Topology(uniqueTag('us'));
  const work = mkdtempSync(join(tmpdir(), 'meshtun-us-'));
  try {
    chmodSync(work, 0o755);
    const nsU = topo.ns('u');
    const nsW = topo.ns('w');
    topo.link(nsU, '198.18.0.1/24', nsW, '198.18.0.2/24');
    const uKeys = keyPair();
    const wKeys = keyPair();
    const fileSha = await writeRandomFile(join(work, 'file'), FILE_MB);

    // The peer: wireguard-go with a kernel TUN, a web server and a DNS responder on its overlay address.
    const wgIface = `${topo.tag}w`.slice(-15);
    const wg = topo.spawn(nsW, 'wireguard-go', ['-f', wgIface], { env: { ...process.env, WG_PROCESS_FOREGROUND: '1' } });
    const wgOut = captureOutput(wg);
    await waitFor(`wireguard-go ${wgIface}`, () => existsSync(`/var/run/wireguard/${wgIface}.sock`), 10_000, 50);
    writeFileSync(join(work, 'wg.key'), wKeys.priv + '\n', { mode: 0o600 });
    topo.exec(nsW, 'wg', ['set', wgIface, 'private-key', join(work, 'wg.key'), 'listen-port', String(WG_PORT),
      'peer', uKeys.pub, 'allowed-ips', '100.64.0.1/32', 'endpoint', `198.18.0.1:${MESHTUN_PORT}`]);
    topo.exec(nsW, 'ip', ['addr', 'add', '100.64.0.2/24', 'dev', wgIface]);
    topo.exec(nsW, 'ip', ['link', 'set', wgIface, 'up']);
    const web = topo.spawn(nsW, process.execPath, [TESTING, 'http', '100.64.0.2', '80', join(work, 'file')]);
    const dns = topo.spawn(nsW, process.execPath, [TESTING, 'dns', '100.64.0.2', '53', 'files.mesh=100.64.0.2']);
    const webOut = captureOutput(web);
    const dnsOut = captureOutput(dns);
    await waitFor('web server and DNS responder', () => webOut.text().includes('listening') && dnsOut.text().includes('listening'), 10_000, 50);

    // The userspace node, as nobody, with its state and runtime dirs its own.
    const home = join(work, 'nobody');
    for (const d of [home, join(home, 'state'), join(home, 'run')]) {
      mkdirSync(d, { recursive: true });
      chownSync(d, NOBODY, NOBODY);
    }
    const iface = `${topo.tag}u`.slice(-15);
    const confPath = join(home, `${iface}.conf`);
    const conf = (extra: string) => `[Interface]
PrivateKey = ${uKeys.priv}
ListenPort = ${MESHTUN_PORT}
Address = 100.64.0.1/24
DNS = 100.64.0.2

[Meshtun]
Mode = userspace
Forward = udp:127.0.0.1:5353=100.64.0.2:53
Reverse = tcp:8000=127.0.0.1:8000
${extra}
[Peer]
PublicKey = ${wKeys.pub}
AllowedIPs = 100.64.0.2/32
Endpoint = 198.18.0.2:${WG_PORT}
`;
    writeFileSync(confPath, conf(''), { mode: 0o600 });
    chownSync(confPath, NOBODY, NOBODY);
    const local = topo.spawn(nsU, process.execPath, [TESTING, 'http', '127.0.0.1', '8000', join(work, 'file')]);
    const localOut = captureOutput(local);
    const mt = topo.spawn(nsU, 'setpriv', [`--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups',
      'env', `HOME=${home}`, `MESHTUN_STATE_DIR=${join(home, 'state')}`, `XDG_RUNTIME_DIR=${join(home, 'run')}`,
      process.execPath, '--enable-source-maps', 'bin/meshtun.js', 'up', '--userspace', confPath]);
    const mtOut = captureOutput(mt);
    const diag = () => `meshtun:\n${mtOut.text()}\nwireguard-go:\n${wgOut.text()}`;
    await waitFor('meshtun userspace up', () => {
      if (mt.exitCode !== null) throw new Error(`meshtun exited ${mt.exitCode}: ${mtOut.text()}`);
      return mtOut.text().includes('is up in userspace mode') && localOut.text().includes('listening');
    }, 20_000, 50).catch((e: Error) => { throw new Error(`${e.message}\n${diag()}`); });
    assert.match(mtOut.text(), /SOCKS5 proxy on 127\.0\.0\.1:1080/);
    assert.match(mtOut.text(), /HTTP proxy on 127\.0\.0\.1:8080/);
    // `ip netns exec`, setpriv and env each exec the next: mt.pid is the node process.
    const status = readFileSync(`/proc/${mt.pid}/status`, 'utf8');
    assert.match(status, /^Name:\s+node/m);
    assert.match(status, /^Uid:\s+65534\s+65534\s+65534/m, 'meshtun runs as nobody');
    assert.ok(existsSync(join(home, 'run', 'meshtun', `${iface}.sock`)), 'the UAPI socket is in $XDG_RUNTIME_DIR/meshtun');
    assert.ok(existsSync(join(home, 'run', 'meshtun', `${iface}.api`)), 'the API socket too');

    // The peer pings the userspace node (the first ping makes the handshake).
    const warm = topo.exec(nsW, 'ping', ['-c', '1', '-W', '5', '100.64.0.1'], { allowFail: true });
    assert.equal(received(warm), 1, `first ping: ${warm}\n${diag()}`);
    const ping = topo.exec(nsW, 'ping', ['-c', '5', '-i', '0.2', '-W', '2', '100.64.0.1'], { allowFail: true });
    assert.equal(received(ping), 5, ping);
    // `meshtun status` as the same unprivileged user finds the rootless interface.
    const st = JSON.parse(topo.exec(nsU, 'setpriv', [`--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups',
      'env', `HOME=${home}`, `MESHTUN_STATE_DIR=${join(home, 'state')}`, `XDG_RUNTIME_DIR=${join(home, 'run')}`,
      process.execPath, 'bin/meshtun.js', 'status', iface, '--json']));
    assert.equal(st.interface, iface);
    assert.ok(st.counters.rxDataPackets >= 6, `status counters: ${JSON.stringify(st.counters)}`);
    const metrics = topo.exec(nsU, 'curl', ['-s', '--unix-socket', join(home, 'run', 'meshtun', `${iface}.api`), 'http://localhost/metrics']);
    assert.match(metrics, /meshtun_stack_events_total\{interface="[^"]+",event="\w+"\} \d+/);
    assert.match(metrics, /meshtun_forward_events_total\{interface="[^"]+",forward="[^"]+",event="\w+"\} \d+/);

    /** curl in ns u: stdout (ending in the status code and speed) + stderr, and the time taken. */
    const curlU = (args: string[], timeoutS = 300) => {
      const t0 = Date.now();
      const r = spawnSync('ip', ['netns', 'exec', nsU, 'curl', '-sS', '--max-time', String(timeoutS), ...args, '-w', '%{http_code} %{speed_download}'], { encoding: 'utf8' });
      return { out: `${r.stdout}${r.stderr}`, code: r.status, ms: Date.now() - t0 };
    };
    const fetchBoth = (label: string) => {
      for (const [how, args] of [
        ['SOCKS5', ['--socks5-hostname', '127.0.0.1:1080', 'http://files.mesh/file']],
        ['HTTP proxy', ['-x', 'http://127.0.0.1:8080', 'http://100.64.0.2/file']],
      ] as const) {
        const out = join(work, 'got');
        rmSync(out, { force: true });
        const r = curlU(['-o', out, ...args]);
        assert.match(r.out, /^200 /, `${how} ${label}: ${r.out}\n${diag()}`);
        assert.equal(sha256File(out), fileSha, `${how} ${label}: SHA-256 of ${FILE_MB} MB`);
        t.diagnostic(`${how} ${label}: ${FILE_MB} MB in ${(r.ms / 1000).toFixed(1)} s (${(FILE_MB * 8 / (r.ms / 1000)).toFixed(0)} Mbit/s)`);
      }
    };
    fetchBoth('no loss');

    // A closed port through the proxy: refused at once (SOCKS5 reply 5), not a timeout.
    const refused = curlU(['--socks5', '127.0.0.1:1080', 'http://100.64.0.2:9/']);
    assert.equal(refused.code, 97, `curl's SOCKS failure: ${refused.out}`);
    assert.match(refused.out, /\(5\)/, `reply 5, connection refused: ${refused.out}`);
    assert.ok(refused.ms < 2000, `refused after ${refused.ms} ms`);
    const bad = curlU(['-i', '-x', 'http://127.0.0.1:8080', 'http://100.64.0.2:9/']);
    assert.match(bad.out, /502 Bad Gateway \(connection refused\)/, bad.out);

    // Remote -> local: the peer reaches the userspace node's loopback service.
    const rev = topo.exec(nsW, 'curl', ['-sS', '--max-time', '10', 'http://100.64.0.1:8000/hello'], { allowFail: true });
    assert.match(rev, /^hello GET 100\.64\.0\.1:8000/, `reverse forward: ${rev}\n${diag()}`);

    // DNS over UDP through the Forward.
    const dig = topo.exec(nsU, process.execPath, [TESTING, 'dig', '127.0.0.1', '5353', 'files.mesh'], { allowFail: true }).trim();
    assert.equal(dig, '100.64.0.2', `DNS through the UDP forward: ${dig}\n${diag()}`);

    // Live reload: add a Reverse pair, drop the UDP Forward.
    writeFileSync(confPath, conf('Reverse = tcp:8001=127.0.0.1:8000\n').replace('Forward = udp:127.0.0.1:5353=100.64.0.2:53\n', ''));
    process.kill(mt.pid!, 'SIGHUP');
    await waitFor('reload', () => /reloaded .*forwards started 1, stopped 1, kept 1/.test(mtOut.text()), 10_000, 50)
      .catch((e: Error) => { throw new Error(`${e.message}\n${diag()}`); });
    const rev2 = topo.exec(nsW, 'curl', ['-sS', '--max-time', '10', 'http://100.64.0.1:8001/hello'], { allowFail: true });
    assert.match(rev2, /^hello GET/, `the new Reverse pair: ${rev2}`);
    const gone = topo.exec(nsU, process.execPath, [TESTING, 'dig', '127.0.0.1', '5353', 'files.mesh'], { allowFail: true }).trim();
    assert.notEqual(gone, '100.64.0.2', 'the removed Forward no longer answers');

    // 3% random loss on the underlay, both directions.
    for (const [ns, port] of [[nsU, MESHTUN_PORT], [nsW, WG_PORT]] as const) {
      topo.exec(ns, 'nft', ['add', 'table', 'inet', 'loss']);
      topo.exec(ns, 'nft', ['add', 'chain', 'inet', 'loss', 'in', '{ type filter hook input priority 0; }']);
      topo.exec(ns, 'nft', ['add', 'rule', 'inet', 'loss', 'in', 'udp', 'dport', String(port), 'numgen', 'random', 'mod', '100', '<', String(LOSS_PERCENT), 'counter', 'drop']);
    }
    fetchBoth(`${LOSS_PERCENT}% loss`);
    const dropped = topo.exec(nsU, 'nft', ['list', 'chain', 'inet', 'loss', 'in']);
    const m = /counter packets (\d+)/.exec(dropped);
    assert.ok(m && Number(m[1]) > 0, `the loss rule dropped packets: ${dropped}`);
    t.diagnostic(`packets dropped on the way to meshtun: ${m?.[1]}`);
  } finally {
    await topo.destroy();
    rmSync(work, { recursive: true, force: true });
  }
});
