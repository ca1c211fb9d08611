// The meshtun side of test/wg-handshake-interop.test.ts, run inside its own network namespace.
// It uses only meshtun's crypto/wire/wireguard modules and node:dgram: no engine, no TUN.
//
//   node dist/test/wg-interop-helper.js '<json config>'
//
// mode "initiator": send a handshake initiation to wireguard-go, consume its response, send an
//   ICMP echo request inside a transport message, decrypt wireguard-go's transport message
//   holding the ICMP echo reply.
// mode "responder": wait for wireguard-go's initiation (the test pings through wireguard-go),
//   answer with a response, decrypt the ICMP echo request it then sends, and answer it with an
//   ICMP echo reply so the ping in the other namespace succeeds.
// Prints one JSON line per step on stdout ({"step": ..., ...}) and a final {"step":"done"} line;
// on failure {"step":"error","error":...} and exit code 1.

import dgram from 'node:dgram';
import { once } from 'node:events';
import { ChaChaPolyKey, decodeBase64Key, AEAD_TAG_SIZE } from '../src/crypto/index.js';
import {
  Ipv4Repr, emitIpv4, parseIpv4, IpProtocol, internetChecksum, parseIpv4Address,
  formatIpv4Address, Status,
} from '../src/wire/index.js';
import {
  LocalIdentity, Handshake, createInitiation, consumeInitiation, createResponse, consumeResponse, deriveKeys,
  type SessionKeys,
} from '../src/wireguard/noise.js';
import { CookieChecker, CookieGenerator } from '../src/wireguard/cookie.js';
import {
  INITIATION, RESPONSE, TRANSPORT_HEADER_SIZE, MessageType, messageType, writeTransportHeader, TransportView,
  paddedLength,
} from '../src/wireguard/messages.js';

export interface HelperConfig {
  mode: 'initiator' | 'responder';
  privateKey: string;
  peerPublicKey: string;
  presharedKey?: string;
  listenPort: number;
  /** wireguard-go's UDP endpoint (initiator mode). */
  peerHost: string;
  peerPort: number;
  /** Our tunnel address and wireguard-go's. */
  tunnelAddress: string;
  peerTunnelAddress: string;
  timeoutMs?: number;
}

const ICMP_ECHO_REQUEST = 8;
const ICMP_ECHO_REPLY = 0;
const ICMP_HEADER_LEN = 8;
const MTU = 1420;
const ECHO_ID = 0x4d54; // "MT"
const ECHO_PAYLOAD = Buffer.from('meshtun interop ping payload 0123456789');

function report(step: string, fields: Record<string, unknown> = {}): void {
  process.stdout.write(JSON.stringify({ step, ...fields }) + '\n');
}

/** A queue of received datagrams with an awaitable `next`. */
class Inbox {
  private queue: { msg: Buffer; host: string; port: number }[] = [];
  private waiter: (() => void) | null = null;
  constructor(sock: dgram.Socket) {
    sock.on('message', (msg, rinfo) => {
      this.queue.push({ msg, host: rinfo.address, port: rinfo.port });
      this.waiter?.();
    });
  }
  async next(type: MessageType, deadline: number): Promise<{ msg: Buffer; host: string; port: number }> {
    for (;;) {
      const i = this.queue.findIndex((d) => messageType(d.msg, 0, d.msg.length) === type);
      if (i >= 0) return this.queue.splice(i, 1)[0]!;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for a message of type ${type}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiter = () => { clearTimeout(t); this.waiter = null; resolve(); };
      });
    }
  }
}

/** Builds an IPv4 ICMP echo message (request or reply) at buf[off]; returns its length. */
function buildEcho(buf: Buffer, off: number, type: number, src: number, dst: number, id: number, seq: number, payload: Buffer): number {
  const ip = new Ipv4Repr();
  ip.src = src;
  ip.dst = dst;
  ip.protocol = IpProtocol.Icmp;
  ip.ttl = 64;
  ip.payloadLength = ICMP_HEADER_LEN + payload.length;
  const hl = emitIpv4(ip, buf, off);
  const icmp = off + hl;
  buf[icmp] = type;
  buf[icmp + 1] = 0;
  buf.writeUInt16BE(0, icmp + 2);
  buf.writeUInt16BE(id, icmp + 4);
  buf.writeUInt16BE(seq, icmp + 6);
  payload.copy(buf, icmp + ICMP_HEADER_LEN);
  buf.writeUInt16BE(internetChecksum(buf, icmp, ICMP_HEADER_LEN + payload.length), icmp + 2);
  return hl + ICMP_HEADER_LEN + payload.length;
}

interface Echo { type: number; src: string; dst: string; id: number; seq: number; payload: Buffer; checksumOk: boolean }

function parseEcho(buf: Buffer, off: number, len: number): Echo | null {
  const ip = new Ipv4Repr();
  if (parseIpv4(buf, off, len, ip) !== Status.Ok || ip.protocol !== IpProtocol.Icmp) return null;
  const icmp = ip.payloadOffset;
  if (ip.payloadLength < ICMP_HEADER_LEN) return null;
  return {
    type: buf[icmp]!,
    src: formatIpv4Address(ip.src),
    dst: formatIpv4Address(ip.dst),
    id: buf.readUInt16BE(icmp + 4),
    seq: buf.readUInt16BE(icmp + 6),
    payload: Buffer.from(buf.subarray(icmp + ICMP_HEADER_LEN, icmp + ip.payloadLength)),
    checksumOk: internetChecksum(buf, icmp, ip.payloadLength) === 0,
  };
}

/** Seals an IP packet at plain[0, len) into a transport message; returns the datagram. */
function sealTransport(keys: SessionKeys, sendKey: ChaChaPolyKey, counter: number, plain: Buffer, len: number): Buffer {
  const padded = paddedLength(len, MTU);
  const out = Buffer.alloc(TRANSPORT_HEADER_SIZE + padded + AEAD_TAG_SIZE);
  const body = Buffer.alloc(padded);
  plain.copy(body, 0, 0, len);
  writeTransportHeader(out, 0, keys.remoteIndex, counter);
  sendKey.seal(counter, body, 0, padded, out, TRANSPORT_HEADER_SIZE);
  return out;
}

/** Waits for transport messages until one decrypts to an ICMP echo; keepalives are counted. */
async function receiveEcho(inbox: Inbox, keys: SessionKeys, receiveKey: ChaChaPolyKey, deadline: number): Promise<{ echo: Echo; keepalives: number; counter: number }> {
  let keepalives = 0;
  const view = new TransportView();
  for (;;) {
    const { msg } = await inbox.next(MessageType.Transport, deadline);
    view.reset(msg, 0);
    if (view.receiverIndex !== keys.localIndex) throw new Error(`transport message for index ${view.receiverIndex}, ours is ${keys.localIndex}`);
    const plain = Buffer.alloc(msg.length - TRANSPORT_HEADER_SIZE - AEAD_TAG_SIZE);
    if (!receiveKey.open(view.counter, msg, TRANSPORT_HEADER_SIZE, msg.length - TRANSPORT_HEADER_SIZE, plain, 0)) {
      throw new Error(`transport message (counter ${view.counter}) did not decrypt`);
    }
    if (plain.length === 0) { keepalives++; continue; }
    const echo = parseEcho(plain, 0, plain.length);
    if (!echo) throw new Error(`decrypted a non-ICMP packet: ${plain.toString('hex')}`);
    return { echo, keepalives, counter: view.counter };
  }
}

function keyOrDie(text: string | undefined, what: string): Buffer {
  const k = text ? decodeBase64Key(text) : null;
  if (!k) throw new Error(`bad ${what}`);
  return k;
}

async function run(cfg: HelperConfig): Promise<void> {
  const deadline = Date.now() + (cfg.timeoutMs ?? 15000);
  const local = new LocalIdentity(keyOrDie(cfg.privateKey, 'private key'));
  const peerPub = keyOrDie(cfg.peerPublicKey, 'peer public key');
  const psk = cfg.presharedKey ? keyOrDie(cfg.presharedKey, 'preshared key') : null;
  const hs = new Handshake(local, peerPub, psk);
  const checker = new CookieChecker(local.publicKey);
  const generator = new CookieGenerator(peerPub);
  const ourAddr = parseIpv4Address(cfg.tunnelAddress)!;
  const peerAddr = parseIpv4Address(cfg.peerTunnelAddress)!;

  const sock = dgram.createSocket('udp4');
  const inbox = new Inbox(sock);
  sock.bind(cfg.listenPort);
  await once(sock, 'listening');
  report('listening', { port: sock.address().port });
  const send = (b: Buffer, host: string, port: number): Promise<void> =>
    new Promise((resolve, reject) => sock.send(b, port, host, (err) => (err ? reject(err) : resolve())));

  try {
    if (cfg.mode === 'initiator') {
      const localIndex = 0x1234abcd;
      const init = Buffer.alloc(INITIATION.SIZE);
      if (!createInitiation(hs, localIndex, Date.now(), init)) throw new Error('createInitiation failed');
      generator.addMacs(init, init.length, performance.now());
      await send(init, cfg.peerHost, cfg.peerPort);
      report('sent-initiation', { localIndex });

      const { msg } = await inbox.next(MessageType.Response, deadline);
      if (!checker.checkMac1(msg, msg.length)) throw new Error('response mac1 does not verify');
      const done = consumeResponse(local, msg, msg.length, (i) => (i === localIndex ? hs : undefined));
      if (!done) throw new Error('consumeResponse refused wireguard-go\'s response');
      const keys = deriveKeys(done)!;
      report('handshake', { initiator: keys.isInitiator, localIndex: keys.localIndex, remoteIndex: keys.remoteIndex });
      const sendKey = new ChaChaPolyKey(keys.sendKey);
      const receiveKey = new ChaChaPolyKey(keys.receiveKey);

      const packet = Buffer.alloc(MTU);
      const seq = 1;
      const len = buildEcho(packet, 0, ICMP_ECHO_REQUEST, ourAddr, peerAddr, ECHO_ID, seq, ECHO_PAYLOAD);
      await send(sealTransport(keys, sendKey, 0, packet, len), cfg.peerHost, cfg.peerPort);
      report('sent-echo-request', { bytes: len });

      const { echo, keepalives, counter } = await receiveEcho(inbox, keys, receiveKey, deadline);
      report('received-echo', {
        type: echo.type, src: echo.src, dst: echo.dst, id: echo.id, seq: echo.seq, checksumOk: echo.checksumOk,
        payloadMatches: echo.payload.equals(ECHO_PAYLOAD), keepalives, counter,
      });
    } else {
      const { msg, host, port } = await inbox.next(MessageType.Initiation, deadline);
      if (!checker.checkMac1(msg, msg.length)) throw new Error('initiation mac1 does not verify');
      const peer = consumeInitiation(local, msg, msg.length, (k) => (k.equals(peerPub) ? hs : undefined), performance.now());
      if (!peer) throw new Error('consumeInitiation refused wireguard-go\'s initiation');
      report('consumed-initiation', { remoteIndex: peer.remoteIndex, from: `${host}:${port}` });
      const localIndex = 0x5678ef01;
      const resp = Buffer.alloc(RESPONSE.SIZE);
      if (!createResponse(peer, localIndex, resp)) throw new Error('createResponse failed');
      generator.addMacs(resp, resp.length, performance.now());
      await send(resp, host, port);
      const keys = deriveKeys(peer)!;
      report('handshake', { initiator: keys.isInitiator, localIndex: keys.localIndex, remoteIndex: keys.remoteIndex });
      const sendKey = new ChaChaPolyKey(keys.sendKey);
      const receiveKey = new ChaChaPolyKey(keys.receiveKey);

      const { echo, keepalives, counter } = await receiveEcho(inbox, keys, receiveKey, deadline);
      report('received-echo', {
        type: echo.type, src: echo.src, dst: echo.dst, id: echo.id, seq: echo.seq, checksumOk: echo.checksumOk,
        payloadLength: echo.payload.length, keepalives, counter,
      });
      if (echo.type === ICMP_ECHO_REQUEST) {
        const packet = Buffer.alloc(MTU);
        const len = buildEcho(packet, 0, ICMP_ECHO_REPLY, ourAddr, parseIpv4Address(echo.src)!, echo.id, echo.seq, echo.payload);
        await send(sealTransport(keys, sendKey, 0, packet, len), host, port);
        report('sent-echo-reply', { bytes: len });
      }
    }
    report('done');
  } finally {
    sock.close();
  }
}

// Run only as a script (the test imports nothing but the config type from this file).
if (process.argv[2]) {
  run(JSON.parse(process.argv[2]) as HelperConfig).catch((err: Error) => {
    report('error', { error: err.message });
    process.exitCode = 1;
  });
}
