// Userspace-stack benchmark: the same TCP download through two meshtun paths, in one run.
//
//   ns "a" (client side)                                   ns "b" (server side)
//   userspace: client -> SOCKS5 127.0.0.1:1080 ->          meshtun (kernel TUN) 100.64.<n>.2
//              meshtun --userspace (stack + engine) ------> TCP source on 100.64.<n>.2:5001
//   kernel:    client -> meshtun (kernel TUN) 100.64.<n>.1 -^
//
// For each path a client asks the source for BYTES (default 1 GiB) and reads until the end or
// until SECONDS pass (default 30), and the run reports goodput (payload bits per second), the CPU
// time (user + system, from /proc/<pid>/stat) of the client-side meshtun and of the peer, and
// CPU seconds per Gbit moved. The peer is meshtun with a kernel TUN in both runs, so the
// difference is the client side: userspace TCP + SOCKS5 relay vs the kernel's TCP and a TUN.
// Namespaces and processes (by PID) are removed at the end, on failure and on SIGINT/SIGTERM.
// Needs root, /dev/net/tun, ip.
//
// Run: npm run bench:stack -- [--bytes 1G] [--seconds 30] [--json]
// Env: BENCH_BYTES, BENCH_SECONDS, BENCH_JSON=1 (flags win).

import { execFileSync } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  MESHTUN_BIN, SUBNET, benchTag, cleanup, cpuSeconds, handleSignals, namespacePair, pingOnce, start, stop, tempDir, waitUntil, type Proc,
} from './netns-bench.js';

const LISTEN_PORT = 51820;
const SOURCE_PORT = 5001;
const SOCKS_PORT = 1080;
const UP_TIMEOUT_MS = 25_000;

interface Options { bytes: number; seconds: number; json: boolean }
interface Result {
  path: string; bytes: number; seconds: number; gbps: number;
  cpuClientSide: number; cpuPeer: number; cpuPerGbitClientSide: number; cpuPerGbitPeer: number; error?: string;
}

function parseBytes(text: string): number {
  const m = /^(\d+(?:\.\d+)?)([KMG]?)i?B?$/i.exec(text.trim());
  if (!m) fail(`--bytes "${text}": use a number with an optional K, M or G suffix, e.g. 1G`);
  const mult = { '': 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3 }[m[2]!.toUpperCase() as '' | 'K' | 'M' | 'G'];
  return Math.floor(Number(m[1]) * mult);
}

function parseOptions(argv: string[]): Options {
  const o: Options = { bytes: parseBytes(process.env.BENCH_BYTES ?? '1G'), seconds: Number(process.env.BENCH_SECONDS ?? 30), json: process.env.BENCH_JSON === '1' };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const value = (): string => argv[++i] ?? fail(`${a} needs a value`);
    if (a === '--bytes') o.bytes = parseBytes(value());
    else if (a === '--seconds' || a === '-t') o.seconds = Number(value());
    else if (a === '--json') o.json = true;
    else if (a === '--help' || a === '-h') { console.log('usage: node dist/bench/stack.js [--bytes 1G] [--seconds 30] [--json]'); process.exit(0); }
    else fail(`unknown option ${a}`);
  }
  if (!(o.seconds > 0) || !(o.bytes > 0)) fail('--bytes and --seconds must be positive');
  return o;
}

function fail(msg: string): never {
  process.stderr.write(`bench:stack: ${msg}\n`);
  process.exit(2);
}

const TAG = benchTag('mts');
const NS_A = `${TAG}a`;
const NS_B = `${TAG}b`;
const UNDER_A = `198.18.${SUBNET}.1`;
const UNDER_B = `198.18.${SUBNET}.2`;
const OVER_A = `100.64.${SUBNET}.1`;
const OVER_B = `100.64.${SUBNET}.2`;
let workDir = '';

function keypair(): { key: string; pub: string } {
  const key = execFileSync(process.execPath, [MESHTUN_BIN, 'genkey'], { encoding: 'utf8' }).trim();
  const pub = execFileSync(process.execPath, [MESHTUN_BIN, 'pubkey'], { encoding: 'utf8', input: key + '\n' }).trim();
  return { key, pub };
}

/** A TCP source: each client sends "<bytes>\n" and gets that many bytes, then FIN. */
const SOURCE = `
const net = require('node:net'); const [host, port] = process.argv.slice(1);
const block = Buffer.alloc(1 << 20, 0x5a);
net.createServer((s) => {
  s.on('error', () => {});
  let line = '';
  s.on('data', (d) => {
    if (line === null) return;
    line += d; const nl = line.indexOf('\\n'); if (nl < 0) return;
    let left = Number(line.slice(0, nl)); line = null;
    const pump = () => { while (left > 0) { const n = Math.min(left, block.length); left -= n; if (!s.write(n === block.length ? block : block.subarray(0, n))) { s.once('drain', pump); return; } } s.end(); };
    pump();
  });
}).listen(Number(port), host, () => console.log('listening'));`;

/** The client: optional SOCKS5 CONNECT, then asks for <bytes> and reads until the end or <seconds>. */
const CLIENT = `
const net = require('node:net'); const [mode, host, port, bytes, seconds, socksPort] = process.argv.slice(1);
const s = net.connect(mode === 'socks' ? { host: '127.0.0.1', port: Number(socksPort) } : { host, port: Number(port) });
s.setNoDelay(true);
let got = 0, t0 = 0, stage = mode === 'socks' ? 0 : 2, pending = Buffer.alloc(0);
const finish = (err) => { const ms = t0 ? Date.now() - t0 : 0; console.log(JSON.stringify({ bytes: got, ms, error: err })); process.exit(0); };
const go = () => { stage = 2; t0 = Date.now(); s.write(bytes + '\\n'); setTimeout(() => { s.destroy(); finish(); }, Number(seconds) * 1000); };
s.on('connect', () => { if (mode === 'socks') s.write(Buffer.from([5, 1, 0])); else go(); });
s.on('data', (d) => {
  if (stage === 2) { got += d.length; return; }
  pending = Buffer.concat([pending, d]);
  if (stage === 0 && pending.length >= 2) {
    pending = pending.subarray(2); stage = 1;
    const req = Buffer.from([5, 1, 0, 1, ...host.split('.').map(Number), 0, 0]); req.writeUInt16BE(Number(port), 8); s.write(req);
  }
  if (stage === 1 && pending.length >= 10) { if (pending[1] !== 0) finish('SOCKS reply ' + pending[1]); go(); }
});
s.on('end', () => finish());
s.on('error', (e) => finish(String(e)));`;

function writeConf(name: string, key: string, overlay: string, peerPub: string, peerOverlay: string, peerUnder: string, extra: string): string {
  const file = join(workDir, `${name}.conf`);
  writeFileSync(file, [
    '[Interface]', `PrivateKey = ${key}`, `ListenPort = ${LISTEN_PORT}`, `Address = ${overlay}/24`, 'MTU = 1420', '',
    extra,
    '[Peer]', `PublicKey = ${peerPub}`, `AllowedIPs = ${peerOverlay}/32`, `Endpoint = ${peerUnder}:${LISTEN_PORT}`, '',
  ].join('\n'), { mode: 0o600 });
  return file;
}

function waitFor(what: string, fn: () => boolean | Promise<boolean>, procs: Proc[]): Promise<void> {
  return waitUntil(fn, {
    timeoutMs: UP_TIMEOUT_MS, intervalMs: 100, watch: procs.map((p) => [`${what}: a process`, p]),
    timedOut: () => `${what}: not within ${UP_TIMEOUT_MS / 1000} s; logs:\n${procs.map((p) => p.output().trim()).join('\n---\n')}`,
  });
}

function runClient(mode: 'socks' | 'direct', o: Options): Promise<{ bytes: number; ms: number; error?: string }> {
  return new Promise((resolve) => {
    const p = start(NS_A, process.execPath, ['-e', CLIENT, mode, OVER_B, String(SOURCE_PORT), String(o.bytes), String(o.seconds), String(SOCKS_PORT)]);
    p.child.once('exit', () => {
      const line = p.output().trim().split('\n').pop() ?? '';
      try { resolve(JSON.parse(line) as { bytes: number; ms: number; error?: string }); } catch { resolve({ bytes: 0, ms: 0, error: `client: ${p.output()}` }); }
    });
  });
}

async function measure(path: string, mode: 'socks' | 'direct', clientSide: Proc, peer: Proc, o: Options): Promise<Result> {
  const before = [cpuSeconds(clientSide.pid), cpuSeconds(peer.pid)];
  const r = await runClient(mode, o);
  const after = [cpuSeconds(clientSide.pid), cpuSeconds(peer.pid)];
  const seconds = r.ms / 1000;
  const gbit = (r.bytes * 8) / 1e9;
  const cpuA = after[0]! - before[0]!;
  const cpuB = after[1]! - before[1]!;
  return {
    path, bytes: r.bytes, seconds, gbps: seconds > 0 ? gbit / seconds : 0, cpuClientSide: cpuA, cpuPeer: cpuB,
    cpuPerGbitClientSide: gbit > 0 ? cpuA / gbit : NaN, cpuPerGbitPeer: gbit > 0 ? cpuB / gbit : NaN, ...(r.error ? { error: r.error } : {}),
  };
}

function table(results: Result[], o: Options): string {
  const f = (v: number, d: number) => (Number.isFinite(v) ? v.toFixed(d) : '-');
  const rows = results.map((r) => `| ${r.path} | ${f(r.bytes / 1024 ** 3, 2)} | ${f(r.seconds, 1)} | ${f(r.gbps, 3)} | ${f(r.cpuClientSide, 2)} | ${f(r.cpuPerGbitClientSide, 2)} | ${f(r.cpuPeer, 2)} | ${f(r.cpuPerGbitPeer, 2)} |${r.error ? ` ${r.error}` : ''}`);
  const [u, k] = [results[0], results[1]];
  const ratio = u && k && k.gbps > 0 ? `\nuserspace / kernel goodput: ${(u.gbps / k.gbps).toFixed(2)}; CPU per Gbit (client side): ${(u.cpuPerGbitClientSide / k.cpuPerGbitClientSide).toFixed(2)}x\n` : '\n';
  return `TCP download from the peer, up to ${f(o.bytes / 1024 ** 3, 2)} GiB or ${o.seconds} s, MTU 1420, one stream\n\n` +
    '| path | GiB | s | Gbit/s | client-side meshtun CPU s | CPU s per Gbit | peer CPU s | peer CPU s per Gbit |\n' +
    '|---|---|---|---|---|---|---|---|\n' + rows.join('\n') + '\n' + ratio;
}

async function main(): Promise<void> {
  const o = parseOptions(process.argv.slice(2));
  if (process.getuid?.() !== 0) fail('needs root (network namespaces)');
  if (!existsSync('/dev/net/tun')) fail('needs /dev/net/tun');
  handleSignals();
  workDir = tempDir('meshtun-bench-stack-');
  const results: Result[] = [];
  try {
    namespacePair(TAG, UNDER_A, UNDER_B);
    const a = keypair();
    const b = keypair();
    const peerConf = writeConf(`${TAG}pb`, b.key, OVER_B, a.pub, OVER_A, UNDER_A, '');
    const peer = start(NS_B, process.execPath, [MESHTUN_BIN, 'up', peerConf]);
    await waitFor('the peer', () => peer.output().includes('is up'), [peer]);
    const source = start(NS_B, process.execPath, ['-e', SOURCE, OVER_B, String(SOURCE_PORT)]);
    await waitFor('peer and source', () => source.output().includes('listening'), [peer, source]);

    process.stderr.write('bench:stack: userspace stack + SOCKS5 ...\n');
    const usConf = writeConf(`${TAG}ua`, a.key, OVER_A, b.pub, OVER_B, UNDER_B, `[Meshtun]\nMode = userspace\nSocks5 = 127.0.0.1:${SOCKS_PORT}\nHttpProxy = off\n`);
    const us = start(NS_A, process.execPath, [MESHTUN_BIN, 'up', usConf]);
    await waitFor('meshtun --userspace', () => us.output().includes('is up in userspace mode'), [us, peer]);
    results.push(await measure('userspace stack + SOCKS5', 'socks', us, peer, o));
    await stop(us.child);

    process.stderr.write('bench:stack: kernel TUN ...\n');
    const tunConf = writeConf(`${TAG}ka`, a.key, OVER_A, b.pub, OVER_B, UNDER_B, '');
    const kt = start(NS_A, process.execPath, [MESHTUN_BIN, 'up', tunConf]);
    await waitFor('meshtun (TUN) and a ping through it', () => kt.output().includes('is up') && pingOnce(NS_A, OVER_B), [kt, peer]);
    results.push(await measure('kernel TUN', 'direct', kt, peer, o));
    await stop(kt.child);
  } finally {
    await cleanup();
  }
  process.stdout.write(o.json ? JSON.stringify(results, null, 2) + '\n' : table(results, o));
}

main().catch(async (err: unknown) => {
  await cleanup();
  process.stderr.write(`bench:stack: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
