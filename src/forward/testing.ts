// Test helpers for the forward layer (not exported from index.ts): a static file server, a
// tiny UDP DNS responder built on src/wire/dns.ts, curl runs with timing, and free ports.
// Also run as a program by the namespace tests (test/userspace-netns.test.ts):
//   node dist/src/forward/testing.js dns <host> <port> <name>=<ipv4>...   a DNS responder
//   node dist/src/forward/testing.js http <host> <port> <file>            serves <file> at /file
//   node dist/src/forward/testing.js dig <server> <port> <name>            prints the A answer

import { createServer as createHttpServer, type Server } from 'node:http';
import { createServer as createNetServer } from 'node:net';
import { createSocket, type Socket as DgramSocket } from 'node:dgram';
import { createReadStream, statSync } from 'node:fs';
import { execFile } from 'node:child_process';
import { pathToFileURL } from 'node:url';
import { DnsParsed, parseDns, emitDns, Status, DnsRcode, DNS_FLAG_QR, DNS_FLAG_RD, DNS_FLAG_RA, type DnsMessage } from '../wire/index.js';

/** Serves `file` at GET /file (and /file?anything) on host:port; port 0 picks one. */
export async function startFileServer(host: string, port: number, file: string): Promise<{ server: Server; port: number }> {
  const server = createHttpServer((req, res) => {
    if ((req.url ?? '').split('?')[0] === '/file') {
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': statSync(file).size });
      createReadStream(file).pipe(res);
    } else if (req.url === '/echo' && req.method === 'POST') {
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      req.pipe(res);
    } else if (req.url === '/hello') {
      res.writeHead(200, { 'content-type': 'text/plain' }).end(`hello ${req.method} ${req.headers.host ?? ''} ${req.headers.connection ?? ''}\n`);
    } else {
      res.writeHead(404).end('not found\n');
    }
  });
  await new Promise<void>((resolve) => server.listen(port, host, () => resolve()));
  const a = server.address();
  return { server, port: typeof a === 'object' && a ? a.port : port };
}

/** Answers A queries for the names in `table` (lower case, no trailing dot); NXDOMAIN else.
 * Counts the queries it answered. */
export async function startDnsResponder(host: string, port: number, table: Record<string, string>): Promise<{ socket: DgramSocket; port: number; queries: () => number }> {
  const socket = createSocket(host.includes(':') ? 'udp6' : 'udp4');
  let queries = 0;
  const parsed = new DnsParsed();
  const out = Buffer.alloc(1232);
  socket.on('message', (msg, rinfo) => {
    if (parseDns(msg, 0, msg.length, parsed) !== Status.Ok || !parsed.message || parsed.message.type !== 'query') return;
    const q = parsed.message.questions?.[0];
    if (!q) return;
    queries++;
    const name = q.name.toLowerCase().replace(/\.$/, '');
    const addr = table[name];
    const answers = addr && q.type === 'A' ? [{ type: 'A' as const, class: 'IN' as const, name: q.name, ttl: 60, data: addr }] : [];
    const reply: DnsMessage = {
      type: 'response', id: parsed.message.id,
      flags: DNS_FLAG_QR | DNS_FLAG_RD | DNS_FLAG_RA | (addr ? DnsRcode.NoError : DnsRcode.NxDomain),
      questions: [q], answers,
    };
    const n = emitDns(reply, out, 0);
    if (n > 0) socket.send(out.subarray(0, n), rinfo.port, rinfo.address);
  });
  await new Promise<void>((resolve) => socket.bind(port, host, () => resolve()));
  return { socket, port: socket.address().port, queries: () => queries };
}

/** Sends one A query for `name` to server:port over UDP; resolves with the address, or
 * "NXDOMAIN"; rejects after `timeoutMs` (retrying once halfway). */
export function queryA(server: string, port: number, name: string, timeoutMs = 4000): Promise<string> {
  const sock = createSocket(server.includes(':') ? 'udp6' : 'udp4');
  const id = Math.floor(Math.random() * 0x10000);
  const buf = Buffer.alloc(512);
  const n = emitDns({ type: 'query', id, flags: DNS_FLAG_RD, questions: [{ type: 'A', class: 'IN', name }] }, buf, 0);
  return new Promise<string>((resolve, reject) => {
    const parsed = new DnsParsed();
    const send = (): void => sock.send(buf.subarray(0, n), port, server);
    const retry = setTimeout(send, timeoutMs / 2);
    const t = setTimeout(() => reject(new Error(`no DNS answer from ${server}:${port} within ${timeoutMs} ms`)), timeoutMs);
    sock.on('message', (m) => {
      if (parseDns(m, 0, m.length, parsed) !== Status.Ok || parsed.message?.id !== id) return;
      clearTimeout(t);
      clearTimeout(retry);
      const a = parsed.message.answers?.find((x) => x.type === 'A') as { data?: unknown } | undefined;
      resolve(typeof a?.data === 'string' ? a.data : 'NXDOMAIN');
    });
    send();
  }).finally(() => sock.close());
}

/** A TCP port that was free a moment ago on `host`. */
export async function freePort(host = '127.0.0.1'): Promise<number> {
  const s = createNetServer();
  await new Promise<void>((resolve) => s.listen(0, host, () => resolve()));
  const a = s.address();
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return typeof a === 'object' && a ? a.port : 0;
}

export interface CurlResult {
  code: number;
  stdout: string;
  stderr: string;
  ms: number;
}

/** Runs curl with `args`; never rejects (the exit code says what happened). */
export function curl(args: string[], timeoutMs = 120_000): Promise<CurlResult> {
  const t0 = Date.now();
  return new Promise((resolve) => {
    execFile('curl', ['-sS', ...args], { encoding: 'utf8', timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : -1) : 0;
      resolve({ code, stdout, stderr, ms: Date.now() - t0 });
    });
  });
}

async function main(argv: string[]): Promise<void> {
  const [what, host, port, ...rest] = argv;
  if (what === 'dns') {
    const table: Record<string, string> = {};
    for (const kv of rest) {
      const [k, v] = kv.split('=');
      table[k!.toLowerCase()] = v!;
    }
    const r = await startDnsResponder(host!, Number(port), table);
    process.stdout.write(`listening ${r.port}\n`);
  } else if (what === 'http') {
    const r = await startFileServer(host!, Number(port), rest[0]!);
    process.stdout.write(`listening ${r.port}\n`);
  } else if (what === 'dig') {
    process.stdout.write(`${await queryA(host!, Number(port), rest[0]!)}\n`);
    process.exit(0);
  } else {
    process.stderr.write('usage: testing.js dns <host> <port> name=ip... | http <host> <port> <file> | dig <server> <port> <name>\n');
    process.exit(2);
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main(process.argv.slice(2)).catch((err: unknown) => { process.stderr.write(`${String(err)}\n`); process.exit(1); });
}
