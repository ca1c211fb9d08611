// `meshtun genkey`, `meshtun pubkey` and `meshtun genpsk`: the key commands of wg(8), with the same
// text formats (a base64 key and a newline), so keys move freely between meshtun and WireGuard.
// Like `wg pubkey`, `pubkey` reads exactly one base64 private key on stdin (trailing whitespace
// allowed) and exits 1 with a one-line message for anything else.

import { fstatSync } from 'node:fs';
import { randomFillSync } from 'node:crypto';
import { UserError } from '../util/index.js';
import { generatePrivateKey, publicKey, encodeBase64Key, decodeBase64Key, wipe, KEY_SIZE } from '../crypto/index.js';
import type { Command } from './main.js';

/** Most bytes of stdin worth reading: a key and some whitespace. */
const MAX_INPUT = 4096;
/** World-readable or -writable bits. */
const OTHER_ACCESS = 0o007;

function noArguments(name: string, args: string[]): void {
  if (args.length > 0) throw new UserError(`"meshtun ${name}" takes no arguments, got "${args.join(' ')}"`, `run \`meshtun ${name}\` on its own`);
}

/** Warns, as wg(8) does, when a secret is about to be written to a file others can read. */
function warnIfWorldAccessible(): void {
  try {
    const st = fstatSync(1);
    if (st.isFile() && (st.mode & OTHER_ACCESS) !== 0) {
      process.stderr.write('meshtun: warning: writing a secret key to a file others can read; run `umask 077` first and write it again\n');
    }
  } catch {
    // stdout is not something fstat can look at: nothing to warn about.
  }
}

function printKey(key: Buffer): number {
  warnIfWorldAccessible();
  process.stdout.write(encodeBase64Key(key) + '\n');
  wipe(key);
  return 0;
}

async function readStdin(): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of process.stdin) {
    const b = chunk as Buffer;
    chunks.push(b);
    total += b.length;
    if (total > MAX_INPUT) break;
  }
  return Buffer.concat(chunks);
}

export const genkey: Command = {
  name: 'genkey',
  summary: 'print a new private key (base64, as wg genkey)',
  usage: 'meshtun genkey',
  examples: ['umask 077; meshtun genkey > private.key', 'meshtun genkey | tee private.key | meshtun pubkey > public.key'],
  async run(args) {
    noArguments('genkey', args);
    return printKey(generatePrivateKey());
  },
};

export const genpsk: Command = {
  name: 'genpsk',
  summary: 'print a new preshared key (base64, as wg genpsk)',
  usage: 'meshtun genpsk',
  examples: ['umask 077; meshtun genpsk > psk.key'],
  async run(args) {
    noArguments('genpsk', args);
    return printKey(randomFillSync(Buffer.alloc(KEY_SIZE)));
  },
};

export const pubkey: Command = {
  name: 'pubkey',
  summary: 'read a private key on stdin, print its public key',
  usage: 'meshtun pubkey < private.key',
  examples: ['meshtun pubkey < private.key', 'meshtun genkey | tee private.key | meshtun pubkey'],
  async run(args) {
    noArguments('pubkey', args);
    const input = await readStdin();
    // wg(8) accepts exactly the 44 key characters at the start, then only whitespace.
    const text = input.toString('latin1');
    const key = /^\S{44}\s*$/.test(text) ? decodeBase64Key(text.slice(0, 44)) : null;
    wipe(input);
    if (!key) {
      process.stderr.write('meshtun pubkey: the input is not a private key: expected 44 base64 characters ' +
        '(as `meshtun genkey` or `wg genkey` print them) and nothing else\n');
      return 1;
    }
    process.stdout.write(encodeBase64Key(publicKey(key)) + '\n');
    wipe(key);
    return 0;
  },
};
