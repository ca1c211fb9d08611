// The `meshtun` command line: parses the command, prints help, and runs it. User mistakes print
// one line saying what was wrong and how to fix it (exit code 2); never a stack trace.

import { UserError } from '../util/index.js';
import { genkey, pubkey, genpsk } from './keys.js';
import { up, down, wgUserspace } from './wg-commands.js';
import { status } from './status.js';
import { token, nodes } from './mesh-commands.js';
import { policy } from './policy-commands.js';
import { routes } from './routes-commands.js';
import { peers, ping, traceroute } from './mesh-net-commands.js';

export interface Command {
  name: string;
  summary: string;
  usage: string;
  examples: string[];
  run(args: string[]): Promise<number>;
}

const commands = new Map<string, Command>();

/** Adds a command to the CLI (each command file calls this at import time). */
export function registerCommand(cmd: Command): void {
  commands.set(cmd.name, cmd);
}

for (const c of [
  up,
  down,
  wgUserspace,
  genkey,
  pubkey,
  genpsk,
  status,
  token,
  nodes,
  policy,
  routes,
  peers,
  ping,
  traceroute,
]) registerCommand(c);

const VERSION = '0.1.0';

export function helpText(): string {
  const width = Math.max(...[...commands.keys()].map((k) => k.length));
  const lines = [
    'meshtun: a mesh VPN that speaks WireGuard',
    '',
    'Usage: meshtun <command> [options]',
    '',
    'Commands:',
    ...[...commands.values()].map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
    '',
    'Options:',
    '  -h, --help     show help (also: meshtun <command> --help)',
    '  -V, --version  print the version',
    '',
    'Examples:',
    '  meshtun up                    start a new network with this machine as its coordinator',
    '  meshtun genkey | meshtun pubkey',
    '  meshtun up mt0.conf           bring up a WireGuard-compatible interface from a wg-quick file',
  ];
  return lines.join('\n') + '\n';
}

function commandHelp(c: Command): string {
  return [`meshtun ${c.name}: ${c.summary}`, '', `Usage: ${c.usage}`, '', 'Examples:', ...c.examples.map((e) => `  ${e}`)].join('\n') + '\n';
}

/** Runs the CLI with the given arguments; returns the process exit code. */
export async function run(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '-h' || name === '--help' || name === 'help') {
    const sub = name === 'help' ? rest[0] : undefined;
    const c = sub ? commands.get(sub) : undefined;
    process.stdout.write(c ? commandHelp(c) : helpText());
    return 0;
  }
  if (name === '-V' || name === '--version' || name === 'version') {
    process.stdout.write(`meshtun ${VERSION}\n`);
    return 0;
  }
  const cmd = commands.get(name);
  if (!cmd) {
    process.stderr.write(`meshtun: unknown command "${name}". Run \`meshtun --help\` to list the commands.\n`);
    return 2;
  }
  if (rest.includes('-h') || rest.includes('--help')) {
    process.stdout.write(commandHelp(cmd));
    return 0;
  }
  try {
    return await cmd.run(rest);
  } catch (err) {
    if (err instanceof UserError) {
      process.stderr.write(`meshtun ${name}: ${err.message}${err.hint ? `\n  hint: ${err.hint}` : ''}\n`);
      return 2;
    }
    throw err;
  }
}
