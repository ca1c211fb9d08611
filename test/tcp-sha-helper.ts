// A TCP bulk-transfer checker for test/wg-interop.test.ts, run inside a network namespace with
// `ip netns exec`. The sender streams deterministic pseudo-random bytes (an AES-256-CTR keystream
// keyed by a seed, so both ends never need to share a file) and the receiver hashes what arrives;
// the test compares the two SHA-256 digests and byte counts.
//
//   node dist/test/tcp-sha-helper.js recv <listen-address> <port> [progress-every-bytes]
//   node dist/test/tcp-sha-helper.js send <address> <port> <bytes> <seed>
//
// Output: one JSON object per line on stdout.
//   recv: {"event":"listening"}, then {"event":"progress","bytes":N} every progress-every-bytes,
//         then {"event":"done","bytes":N,"sha256":"<hex>"} when the sender closes the connection.
//   send: {"event":"done","bytes":N,"sha256":"<hex>"} once the receiver has closed its side too.
//   on failure: {"event":"error","error":"..."} and exit code 1.
// Both give up after TIMEOUT_MS so a broken tunnel cannot leave a process behind.

import net from 'node:net';
import { createCipheriv, createHash } from 'node:crypto';

const CHUNK_SIZE = 256 * 1024;
const TIMEOUT_MS = 120_000;

function emit(obj: Record<string, unknown>): void {
  process.stdout.write(JSON.stringify(obj) + '\n');
}

function fail(err: unknown): never {
  emit({ event: 'error', error: err instanceof Error ? err.message : String(err) });
  process.exit(1);
}

function receive(host: string, port: number, progressEvery: number): void {
  const server = net.createServer({ allowHalfOpen: false }, (sock) => {
    server.close(); // one connection only
    const hash = createHash('sha256');
    let bytes = 0;
    let nextProgress = progressEvery;
    sock.on('data', (d: Buffer) => {
      hash.update(d);
      bytes += d.length;
      if (progressEvery > 0 && bytes >= nextProgress) {
        emit({ event: 'progress', bytes });
        while (nextProgress <= bytes) nextProgress += progressEvery;
      }
    });
    sock.on('end', () => {
      emit({ event: 'done', bytes, sha256: hash.digest('hex') });
      process.exit(0);
    });
    sock.on('error', fail);
  });
  server.on('error', fail);
  server.listen({ host, port }, () => emit({ event: 'listening' }));
}

function send(host: string, port: number, total: number, seed: string): void {
  const key = createHash('sha256').update(seed).digest();
  const cipher = createCipheriv('aes-256-ctr', key, Buffer.alloc(16));
  const zeros = Buffer.alloc(CHUNK_SIZE);
  const hash = createHash('sha256');
  let remaining = total;
  const sock = net.connect({ host, port });
  const pump = (): void => {
    while (remaining > 0) {
      const n = Math.min(CHUNK_SIZE, remaining);
      const chunk = cipher.update(n === CHUNK_SIZE ? zeros : zeros.subarray(0, n));
      hash.update(chunk);
      remaining -= n;
      if (!sock.write(chunk)) {
        sock.once('drain', pump);
        return;
      }
    }
    sock.end();
  };
  sock.on('connect', pump);
  sock.on('error', fail);
  // 'close' without error: our FIN was sent and the receiver closed after hashing everything.
  sock.on('close', (hadError) => {
    if (hadError) return;
    emit({ event: 'done', bytes: total - remaining, sha256: hash.digest('hex') });
    process.exit(0);
  });
}

const [mode, host, portText, a, b] = process.argv.slice(2);
const port = Number(portText);
if (!host || !Number.isInteger(port) || port <= 0 || port > 65535) fail('usage: recv <addr> <port> [progress] | send <addr> <port> <bytes> <seed>');
setTimeout(() => fail(`no result after ${TIMEOUT_MS} ms`), TIMEOUT_MS).unref();
if (mode === 'recv') {
  receive(host, port, Number(a ?? 0));
} else if (mode === 'send') {
  const total = Number(a);
  if (!Number.isInteger(total) || total < 0 || !b) fail('send needs <bytes> <seed>');
  send(host, port, total, b);
} else {
  fail(`unknown mode "${mode}"`);
}
