// A node's persistent identity: its private key in the state directory, and the overlay
// addresses derived from its public key (until a coordinator assigns them: issue 5):
// IPv4 in 100.64.0.0/10, IPv6 in fd6d:7368:7475::/48.
//   state dir: $MESHTUN_STATE_DIR, else /var/lib/meshtun as root, else $XDG_STATE_HOME/meshtun
//   (~/.local/state/meshtun).

import { existsSync, readFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { UserError, mkdirPrivate, writePrivateFile } from '../util/index.js';
import { generatePrivateKey, publicKey, encodeBase64Key, decodeBase64Key } from '../crypto/index.js';
import { formatIpv4Address, formatIpv6Address } from '../wire/index.js';

export function stateDir(): string {
  if (process.env.MESHTUN_STATE_DIR) return process.env.MESHTUN_STATE_DIR;
  if (process.getuid?.() === 0) return '/var/lib/meshtun';
  return join(process.env.XDG_STATE_HOME || join(homedir(), '.local', 'state'), 'meshtun');
}

export interface NodeIdentity {
  dir: string;
  privateKey: Buffer;
  publicKey: Buffer;
  /** 100.64.0.0/10 address from a hash of the public key. */
  ipv4: string;
  /** Address in the ULA prefix fd6d:7368:7475::/48, interface id from a hash of the public key. */
  ipv6: string;
  created: boolean;
}

/** Loads the node key from the state directory, creating it (mode 0600) on first use. */
export function loadNodeIdentity(dir = stateDir()): NodeIdentity {
  const file = join(dir, 'node.key');
  let created = false;
  let priv: Buffer | null;
  if (existsSync(file)) {
    priv = decodeBase64Key(readFileSync(file, 'utf8').trim());
    if (!priv) throw new UserError(`${file} does not hold a valid private key`, 'remove it to create a new node identity');
  } else {
    mkdirPrivate(dir);
    priv = generatePrivateKey();
    writePrivateFile(file, encodeBase64Key(priv) + '\n');
    created = true;
  }
  const pub = publicKey(priv);
  const h = createHash('sha256').update('meshtun node address').update(pub).digest();
  // 100.64.0.0/10: 22 host bits, avoiding .0 and .255 in the last octet.
  let v4 = ((100 << 24) | (64 << 16)) >>> 0;
  v4 = (v4 | (h.readUInt32BE(0) & 0x3fffff)) >>> 0;
  if ((v4 & 255) === 0 || (v4 & 255) === 255) v4 = (v4 ^ 1) >>> 0;
  // fd6d:7368:7475::/48 ("mshtu"), interface id from the hash.
  const v6 = Buffer.from([0xfd, 0x6d, 0x73, 0x68, 0x74, 0x75, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
  h.copy(v6, 8, 4, 12);
  return { dir, privateKey: priv, publicKey: pub, ipv4: formatIpv4Address(v4), ipv6: formatIpv6Address(v6), created };
}
