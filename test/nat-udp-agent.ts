// A tiny UDP (and TCP echo) program for NAT-topology tests, run inside a namespace with
// `ip netns exec <ns> node dist/test/nat-udp-agent.js --port 40000 [--tcp-port 40001]`.
// NatLab.agent() starts it and wraps it (test/nat-topology.ts); nothing of meshtun is used.
//
// It binds one UDP socket (0.0.0.0:<port>) and answers every datagram that is not itself an
// answer with an echo: `{"echo":<their text>,"observed":"<source ip>:<source port>"}`, so a
// public agent works as a STUN-like mirror that says which address and port a NAT gave the
// sender. With --tcp-port it also runs a TCP echo server.
//
// stdin, one JSON object a line:
//   {"op":"send","to":ip,"port":n,"data":text}        one datagram
//   {"op":"ping","id":s,"to":ip,"port":n,"count":n,"gapMs":n,"timeoutMs":n}
//        sends `count` datagrams, each answered by the far agent's echo; RTTs are measured
//        here with hrtime (no pipe latency) and reported as {"ev":"ping","id","rtts":[ms...],"lost"}
//   {"op":"tcp","id":s,"to":ip,"port":n,"timeoutMs":n}
//        connects, writes a line, waits for it back: {"ev":"tcp","id","ok":bool,"ms":n,"error"}
// stdout, one JSON object a line:
//   {"ev":"ready","port":n}
//   {"ev":"recv","from":ip,"port":n,"data":text,"echo"?:text,"observed"?:"ip:port"}
//        every datagram received (echo answers carry the fields of the echo).

import { createSocket, type RemoteInfo } from 'node:dgram';
import { createServer, connect } from 'node:net';
import { createInterface } from 'node:readline';

interface Command {
  op: string;
  id?: string;
  to: string;
  port: number;
  data?: string;
  count?: number;
  gapMs?: number;
  timeoutMs?: number;
}

interface EchoAnswer { echo: string; observed: string }

function arg(name: string): number | undefined {
  const i = process.argv.indexOf(name);
  return i > 0 ? Number(process.argv[i + 1]) : undefined;
}

const udpPort = arg('--port') ?? 0;
const tcpPort = arg('--tcp-port');

function emit(ev: Record<string, unknown>): void {
  process.stdout.write(JSON.stringify(ev) + '\n');
}

function parseEcho(text: string): EchoAnswer | null {
  if (!text.startsWith('{"echo":')) return null;
  try {
    const v = JSON.parse(text) as EchoAnswer;
    return typeof v.echo === 'string' && typeof v.observed === 'string' ? v : null;
  } catch {
    return null;
  }
}

/** Outstanding pings by payload: resolve(rtt in ms). */
const pending = new Map<string, (rttMs: number) => void>();

const sock = createSocket('udp4');
sock.on('message', (msg: Buffer, rinfo: RemoteInfo) => {
  const text = msg.toString('utf8');
  const answer = parseEcho(text);
  if (answer) {
    const done = pending.get(answer.echo);
    if (done) {
      pending.delete(answer.echo);
      done(0);
    }
    emit({ ev: 'recv', from: rinfo.address, port: rinfo.port, data: text, echo: answer.echo, observed: answer.observed });
    return;
  }
  emit({ ev: 'recv', from: rinfo.address, port: rinfo.port, data: text });
  sock.send(JSON.stringify({ echo: text, observed: `${rinfo.address}:${rinfo.port}` }), rinfo.port, rinfo.address);
});
sock.on('error', (err) => emit({ ev: 'error', error: String(err) }));

async function ping(c: Command): Promise<void> {
  const rtts: number[] = [];
  let lost = 0;
  for (let i = 0; i < (c.count ?? 5); i++) {
    const payload = `ping-${c.id ?? ''}-${i}-${Math.random().toString(36).slice(2)}`;
    const start = process.hrtime.bigint();
    const ok = await new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => { pending.delete(payload); resolve(false); }, c.timeoutMs ?? 2000);
      pending.set(payload, () => { clearTimeout(timer); resolve(true); });
      sock.send(payload, c.port, c.to);
    });
    if (ok) rtts.push(Number(process.hrtime.bigint() - start) / 1e6);
    else lost++;
    if (c.gapMs) await new Promise((r) => setTimeout(r, c.gapMs));
  }
  emit({ ev: 'ping', id: c.id, rtts, lost });
}

function tcpCheck(c: Command): void {
  const start = process.hrtime.bigint();
  let done = false;
  const finish = (ok: boolean, error?: string): void => {
    if (done) return;
    done = true;
    clearTimeout(timer);
    s.destroy();
    emit({ ev: 'tcp', id: c.id, ok, ms: Number(process.hrtime.bigint() - start) / 1e6, ...(error ? { error } : {}) });
  };
  const s = connect({ host: c.to, port: c.port });
  const timer = setTimeout(() => finish(false, 'timeout'), c.timeoutMs ?? 2000);
  s.on('connect', () => s.write('hello\n'));
  s.on('data', (d: Buffer) => { if (d.toString().includes('hello')) finish(true); });
  s.on('error', (err) => finish(false, String(err)));
}

function handle(line: string): void {
  let c: Command;
  try {
    c = JSON.parse(line) as Command;
  } catch {
    emit({ ev: 'error', error: `bad command: ${line}` });
    return;
  }
  if (c.op === 'send') sock.send(c.data ?? '', c.port, c.to);
  else if (c.op === 'ping') void ping(c);
  else if (c.op === 'tcp') tcpCheck(c);
  else emit({ ev: 'error', error: `unknown op ${c.op}` });
}

let waiting = tcpPort === undefined ? 1 : 2;
const ready = (): void => {
  if (--waiting === 0) emit({ ev: 'ready', port: sock.address().port });
};
sock.bind(udpPort, '0.0.0.0', ready);
if (tcpPort !== undefined) {
  createServer((c) => { c.on('data', (d) => c.write(d)); c.on('error', () => c.destroy()); }).listen(tcpPort, '0.0.0.0', ready);
}
createInterface({ input: process.stdin }).on('line', handle).on('close', () => process.exit(0));
