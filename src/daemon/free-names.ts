// Names and ports a node takes by itself when the user did not choose them, so a second
// `meshtun up` on one machine (another namespace sharing /var/run, or a second network in the same
// namespace) comes up beside the first instead of failing: the next free interface name
// (meshtun0, meshtun1, ...), the next free UDP port from 51820 and the next free control port from
// 7443. A name or port the user gave is used as given (and fails clearly when busy).
import { createSocket } from 'node:dgram';
import { createServer, connect } from 'node:net';
import { existsSync, readFileSync } from 'node:fs';
import { UserError } from '../util/index.js';
import { uapiSocketPath } from '../wireguard/index.js';
import { pidFile } from './wg-interface.js';

/** How many names / ports are tried before giving up. */
export const FREE_SEARCH_LIMIT = 100;

/** True when a process accepts connections on the Unix socket at `path`. */
function socketAnswers(path: string): Promise<boolean> {
  if (!existsSync(path)) return Promise.resolve(false);
  return new Promise((resolve) => {
    const s = connect(path);
    s.once('connect', () => { s.destroy(); resolve(true); });
    s.once('error', () => resolve(false));
  });
}

/** True when the pid file of `name` names a live process. */
function pidAlive(name: string): boolean {
  try {
    const pid = Number(readFileSync(pidFile(name), 'utf8').trim());
    if (!Number.isInteger(pid) || pid <= 1) return false;
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** True when `name` is in use: a network interface of this namespace, a live meshtun process
 * (pid file), or a UAPI socket someone answers on (/var/run is shared between namespaces). */
export async function interfaceNameTaken(name: string): Promise<boolean> {
  return existsSync(`/sys/class/net/${name}`) || pidAlive(name) || socketAnswers(uapiSocketPath(name));
}

/** The first free name of `${base}0`, `${base}1`, ... */
export async function freeInterfaceName(base: string): Promise<string> {
  for (let i = 0; i < FREE_SEARCH_LIMIT; i++) {
    const name = `${base}${i}`;
    if (!(await interfaceNameTaken(name))) return name;
  }
  throw new UserError(`no free interface name from ${base}0 to ${base}${FREE_SEARCH_LIMIT - 1}`, 'name one with --interface');
}

function udpFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createSocket({ type: 'udp6', ipv6Only: false });
    s.once('error', (e: NodeJS.ErrnoException) => {
      s.close();
      if (e.code !== 'EAFNOSUPPORT' && e.code !== 'EADDRNOTAVAIL') return resolve(false);
      // No IPv6 here: the socket will be IPv4 only.
      const s4 = createSocket('udp4');
      s4.once('error', () => { s4.close(); resolve(false); });
      s4.bind(port, () => s4.close(() => resolve(true)));
    });
    s.bind(port, () => s.close(() => resolve(true)));
  });
}

/** The first UDP port from `first` that nobody has bound. */
export async function freeUdpPort(first: number): Promise<number> {
  for (let p = first; p < first + FREE_SEARCH_LIMIT && p < 65536; p++) if (await udpFree(p)) return p;
  throw new UserError(`no free UDP port from ${first} to ${first + FREE_SEARCH_LIMIT - 1}`, 'choose one with --listen-port');
}

function tcpFree(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(false));
    s.listen(port, host, () => s.close(() => resolve(true)));
  });
}

/** The first TCP port from `first` free on `host`. */
export async function freeTcpPort(host: string, first: number): Promise<number> {
  for (let p = first; p < first + FREE_SEARCH_LIMIT && p < 65536; p++) if (await tcpFree(host, p)) return p;
  throw new UserError(`no free TCP port on ${host} from ${first} to ${first + FREE_SEARCH_LIMIT - 1}`, 'choose one with --listen HOST:PORT');
}
