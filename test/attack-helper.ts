// Attacker-side tools for test/wg-attacks.test.ts, run inside a namespace:
//   flood <ip> <port> <responderPubB64> <seconds> <perSecond>   initiations from a random key
//   unknown <ip> <port> <responderPubB64>                       one initiation, waits for answers
//   replay <pcap> <ip> <port>                                   resends captured transport packets
// Prints one JSON line with what happened.
import { createSocket } from 'node:dgram';
import { readFileSync } from 'node:fs';
import { LocalIdentity, Handshake, createInitiation, CookieGenerator, INITIATION } from '../src/wireguard/index.js';
import { generatePrivateKey, decodeBase64Key } from '../src/crypto/index.js';

const [mode, ...args] = process.argv.slice(2);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function initiations(ip: string, port: number, pubText: string, seconds: number, perSecond: number): Promise<void> {
  const pub = decodeBase64Key(pubText)!;
  const hs = new Handshake(new LocalIdentity(generatePrivateKey()), pub, null);
  const macs = new CookieGenerator(pub);
  const sock = createSocket(ip.includes(':') ? 'udp6' : 'udp4');
  const seen: Record<number, number> = {};
  sock.on('message', (m) => { seen[m[0]!] = (seen[m[0]!] ?? 0) + 1; });
  await new Promise<void>((r) => sock.bind(0, () => r()));
  let sent = 0;
  const end = Date.now() + seconds * 1000;
  let t = 0;
  while (Date.now() < end) {
    for (let i = 0; i < perSecond / 20; i++) {
      const msg = Buffer.alloc(INITIATION.SIZE);
      createInitiation(hs, ++t, Date.now() + t * 20, msg);
      macs.addMacs(msg, INITIATION.SIZE, performance.now());
      sock.send(msg, port, ip);
      sent++;
    }
    await sleep(50);
  }
  await sleep(1000);
  sock.close();
  console.log(JSON.stringify({ sent, responses: seen[2] ?? 0, cookieReplies: seen[3] ?? 0 }));
}

async function replay(pcap: string, ip: string, port: number): Promise<void> {
  const b = readFileSync(pcap);
  const le = b.readUInt32LE(0) === 0xa1b2c3d4;
  const u32 = (o: number) => (le ? b.readUInt32LE(o) : b.readUInt32BE(o));
  const linkType = u32(20);
  const frames: Buffer[] = [];
  for (let off = 24; off + 16 <= b.length;) {
    const incl = u32(off + 8);
    frames.push(b.subarray(off + 16, off + 16 + incl));
    off += 16 + incl;
  }
  const payloads: Buffer[] = [];
  for (const f of frames) {
    const ip0 = linkType === 1 ? 14 : linkType === 113 ? 16 : 0;
    if (f[ip0]! >> 4 !== 4) continue;
    const hl = (f[ip0]! & 15) * 4;
    if (f[ip0 + 9] !== 17) continue;
    const udp = ip0 + hl;
    if (f.readUInt16BE(udp + 2) !== port) continue;
    const data = f.subarray(udp + 8);
    if (data[0] === 4 && data.length > 32) payloads.push(Buffer.from(data));
  }
  const sock = createSocket('udp4');
  await new Promise<void>((r) => sock.bind(0, () => r()));
  for (const p of payloads) sock.send(p, port, ip);
  await sleep(500);
  sock.close();
  console.log(JSON.stringify({ replayed: payloads.length }));
}

if (mode === 'flood') await initiations(args[0]!, Number(args[1]), args[2]!, Number(args[3]), Number(args[4]));
else if (mode === 'unknown') await initiations(args[0]!, Number(args[1]), args[2]!, 0.05, 20);
else if (mode === 'replay') await replay(args[0]!, args[1]!, Number(args[2]));
else { console.error('usage: flood|unknown|replay ...'); process.exit(2); }
