// The services a mesh node runs beside its data plane, following the network map:
//   - DNS for the network's names (<name>.mesh and <name>.<network>, A and AAAA) on the node's
//     overlay addresses, port 53: a kernel UDP socket on the overlay IPv4 address in kernel-TUN
//     mode; sockets of the userspace stack on the overlay IPv4 and IPv6 addresses in userspace
//     mode (so peers query it through the tunnel);
//   - userspace mode only: a SOCKS5 proxy and an HTTP proxy on the host's loopback (defaults
//     127.0.0.1:1080 and 127.0.0.1:8080; a busy DEFAULT port is logged and skipped, a port given
//     with --socks5 / --http-proxy must be free), whose names resolve from the map first
//     (MeshNameResolver), and the userspace router (userspace-router.ts) for the routes this node
//     is approved to serve (subnets, exit node). A proxy listens beyond loopback only with
//     credentials (meshProxySettings): from the options, else from the environment
//     (MESHTUN_SOCKS5_USER / MESHTUN_SOCKS5_PASSWORD, MESHTUN_HTTP_PROXY_USER /
//     MESHTUN_HTTP_PROXY_PASSWORD), which keeps passwords off the command line.
// A DNS server that cannot start is logged, not fatal.

import { Logger, UserError } from '../util/index.js';
import { EXIT_ROUTES, type ControlNetworkMap } from '../mesh/index.js';
import { DnsResponder, DnsServer, DnsSocketBinding } from '../dns/index.js';
import { KernelTunnelNet, StackTunnelNet, Socks5Server, HttpProxy, SystemResolver, isLoopbackHost } from '../forward/index.js';
import type { IpAddr, UdpSocket } from '../stack/index.js';
import type { Engine } from '../wireguard/index.js';
import { UserspaceInterface } from './userspace-interface.js';
import { DEFAULT_HTTP_PROXY, DEFAULT_SOCKS5, type ListenAddress } from './meshtun-section.js';
import { MeshNameResolver, mapRecords } from './mesh-names.js';
import { UserspaceRouter } from './userspace-router.js';

const log = new Logger('mesh');

/** The DNS port a mesh node answers <name>.mesh on, at its overlay addresses. */
export const MESH_DNS_PORT = 53;

export interface MeshServicesOptions {
  /** The node's overlay addresses (no prefix). */
  ipv4: string;
  ipv6: string;
  /** The overlay's prefixes (never routed to the host by the userspace router). */
  overlay: { ipv4Pool: string; ulaPrefix: string };
  /** "HOST:PORT", "PORT" or "off" (userspace mode; default 127.0.0.1:1080 / 127.0.0.1:8080). */
  socks5?: string;
  httpProxy?: string;
  /** Proxy credentials (SOCKS5 RFC 1929, HTTP Basic); each absent one comes from the environment
   * (PROXY_ENV). Required for a proxy that listens beyond loopback. */
  socks5User?: string;
  socks5Password?: string;
  httpProxyUser?: string;
  httpProxyPassword?: string;
}

/** Where the proxies' credentials come from when the options lack them. */
export const PROXY_ENV = {
  socks5User: 'MESHTUN_SOCKS5_USER', socks5Password: 'MESHTUN_SOCKS5_PASSWORD',
  httpProxyUser: 'MESHTUN_HTTP_PROXY_USER', httpProxyPassword: 'MESHTUN_HTTP_PROXY_PASSWORD',
} as const;

/** One mesh proxy to start: where (`given`: by a flag, so a busy port is an error), and with
 * which credentials. */
export interface MeshProxySetting extends ListenAddress {
  given: boolean;
  credentials: { username: string; password: string } | null;
}

type ProxyFlags = Pick<MeshServicesOptions, 'socks5' | 'httpProxy' | 'socks5User' | 'socks5Password' | 'httpProxyUser' | 'httpProxyPassword'>;

/** The proxies a userspace mesh node starts, from its flags and the environment; a UserError
 * names the flag when the credentials are incomplete, or a proxy would listen beyond loopback
 * without them. */
export function meshProxySettings(opts: ProxyFlags, env: NodeJS.ProcessEnv = process.env): { socks5: MeshProxySetting | 'off'; http: MeshProxySetting | 'off' } {
  const one = (kind: 'socks5' | 'httpProxy'): MeshProxySetting | 'off' => {
    const flag = kind === 'socks5' ? '--socks5' : '--http-proxy';
    const userKey = kind === 'socks5' ? 'socks5User' : 'httpProxyUser';
    const passKey = kind === 'socks5' ? 'socks5Password' : 'httpProxyPassword';
    const given = opts[kind];
    const addr = given === undefined ? { ...(kind === 'socks5' ? DEFAULT_SOCKS5 : DEFAULT_HTTP_PROXY) } : parseProxyAddress(given, flag);
    const user = opts[userKey] ?? nonEmpty(env[PROXY_ENV[userKey]]);
    const pass = opts[passKey] ?? nonEmpty(env[PROXY_ENV[passKey]]);
    const howToGive = `give ${flag}-user NAME with ${PROXY_ENV[passKey]} (or ${flag}-password)`;
    if (user !== undefined && pass === undefined) throw new UserError(`${flag}-user needs a password`, `set ${PROXY_ENV[passKey]} (or give ${flag}-password, which others can see in ps)`);
    if (user === undefined && pass !== undefined) throw new UserError(`${flag}-password needs ${flag}-user`, `give ${flag}-user NAME too (or set ${PROXY_ENV[userKey]})`);
    if (addr === 'off') {
      if (user !== undefined) throw new UserError(`${flag}-user is set but ${flag} is off`, `drop the credentials (and ${PROXY_ENV[userKey]} / ${PROXY_ENV[passKey]}), or enable the proxy`);
      return 'off';
    }
    if (kind === 'httpProxy' && user?.includes(':')) throw new UserError(`${flag}-user "${user}" contains ":", which Basic authentication cannot carry`, 'pick a username without it');
    if (user === undefined && !isLoopbackHost(addr.host)) {
      throw new UserError(`${flag} ${hostPort(addr)} listens beyond this machine without credentials`, `${howToGive}, or a loopback address: ${flag} 127.0.0.1:${addr.port}`);
    }
    return { ...addr, given: given !== undefined, credentials: user !== undefined && pass !== undefined ? { username: user, password: pass } : null };
  };
  return { socks5: one('socks5'), http: one('httpProxy') };
}

function nonEmpty(v: string | undefined): string | undefined {
  return v === undefined || v === '' ? undefined : v;
}

export interface MeshServices {
  readonly responder: DnsResponder;
  readonly resolver: MeshNameResolver;
  readonly router: UserspaceRouter | null;
  /** Lines for `meshtun up` (DNS and proxy addresses). */
  readonly lines: string[];
  update(map: ControlNetworkMap): void;
  close(): Promise<void>;
}

/** Parses a --socks5 / --http-proxy value: "off", "HOST:PORT", "[V6]:PORT" or "PORT". */
export function parseProxyAddress(value: string, flag: string): ListenAddress | 'off' {
  const v = value.trim();
  if (v === 'off') return 'off';
  const m = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d+)$/.exec(v) ?? /^()()(\d+)$/.exec(v);
  const port = m ? Number(m[3]) : NaN;
  const host = m ? (m[1] || m[2] || '127.0.0.1') : '';
  if (!m || !(port >= 0 && port < 65536) || !/^[0-9a-fA-F.:]+$/.test(host)) {
    throw new UserError(`${flag} "${value}" is not HOST:PORT or off`, `e.g. ${flag} 127.0.0.1:1080, ${flag} [::1]:1080 or ${flag} off`);
  }
  return { host, port };
}

function hostPort(a: { host: string; port: number }): string {
  return `${a.host.includes(':') ? `[${a.host}]` : a.host}:${a.port}`;
}

/** Starts DNS (and, on the userspace stack, the proxies and the router); see the file header. */
export async function startMeshServices(iface: { engine: Engine }, opts: MeshServicesOptions): Promise<MeshServices> {
  const responder = new DnsResponder();
  const resolver = new MeshNameResolver(new SystemResolver());
  const lines: string[] = [];
  const closers: (() => Promise<void> | void)[] = [];
  let router: UserspaceRouter | null = null;
  // Checked before anything starts: a proxy beyond loopback without credentials is a user error.
  const proxySettings = iface instanceof UserspaceInterface ? meshProxySettings(opts) : null;
  const close = async () => {
    for (const fn of closers.reverse()) {
      try { await fn(); } catch (e) { log.warn(`cleanup: ${(e as Error).message}`); }
    }
    closers.length = 0;
  };
  try {
    if (iface instanceof UserspaceInterface) {
      const stack = iface.stack;
      const dnsAt: string[] = [];
      for (const [family, address] of [[4, opts.ipv4], [6, opts.ipv6]] as const) {
        if (!address) continue;
        let sock: UdpSocket | null = null;
        try {
          sock = stack.udpSocket(family);
          sock.bind(MESH_DNS_PORT, address);
          const s = sock;
          const binding = new DnsSocketBinding(s, responder);
          closers.push(() => { binding.detach(); s.close(); });
          dnsAt.push(hostPort({ host: address, port: MESH_DNS_PORT }));
        } catch (e) {
          sock?.close();
          log.warn(`no DNS for the network's names on ${address}:${MESH_DNS_PORT} (userspace): ${(e as Error).message}`);
        }
      }
      if (dnsAt.length) lines.push(`DNS for <name>.mesh on ${dnsAt.join(' and ')} (inside the tunnel)`);
      const engine = iface.engine;
      const hasRoute = (family: 4 | 6, addr: IpAddr) => family === 4
        ? engine.allowedIps.lookupV4(addr as number) !== undefined
        : engine.allowedIps.lookupV6(addr as Uint8Array, 0) !== undefined;
      const common = { local: new KernelTunnelNet(), tunnel: new StackTunnelNet(stack, { hasRoute }), resolver };
      const proxies: string[] = [];
      for (const kind of ['socks5', 'http'] as const) {
        const flag = kind === 'socks5' ? '--socks5' : '--http-proxy';
        const addr = proxySettings![kind];
        if (addr === 'off') continue;
        const listen = { ...common, host: addr.host, port: addr.port, ...(addr.credentials ?? {}) };
        try {
          const p = kind === 'socks5' ? await Socks5Server.listen(listen) : await HttpProxy.listen(listen);
          closers.push(() => p.close());
          proxies.push(`${kind === 'socks5' ? 'SOCKS5' : 'HTTP'} proxy on ${hostPort(p.address)}${addr.credentials ? ` (${kind === 'socks5' ? 'username/password' : 'Basic auth'})` : ''}`);
        } catch (e) {
          const msg = `${kind === 'socks5' ? 'SOCKS5' : 'HTTP'} proxy not started on ${hostPort(addr)}: ${(e as Error).message}`;
          if (addr.given) throw new UserError(msg, `pick another address with ${flag} HOST:PORT, or ${flag} off`);
          log.warn(`${msg} (start with ${flag} HOST:PORT to use another port)`);
        }
      }
      if (proxies.length) lines.push(`${proxies.join(', ')}: <name>.mesh names resolve through the network map`);
      const r = new UserspaceRouter(stack, { overlay: [opts.overlay.ipv4Pool, opts.overlay.ulaPrefix] });
      router = r;
      closers.push(() => r.close());
    } else {
      try {
        const server = await DnsServer.start({ responder, address: opts.ipv4, port: MESH_DNS_PORT });
        closers.push(() => server.close());
        lines.push(`DNS for <name>.mesh on ${opts.ipv4}:${MESH_DNS_PORT}`);
      } catch (e) {
        log.warn(`no DNS for the network's names on ${opts.ipv4}:${MESH_DNS_PORT}: ${(e as Error).message}`);
      }
    }
  } catch (e) {
    await close();
    throw e;
  }
  return {
    responder, resolver, router, lines,
    update(map) {
      const records = mapRecords(map);
      try {
        responder.setRecords(records);
      } catch (e) {
        log.warn(`DNS records not updated: ${(e as Error).message}`);
      }
      resolver.setRecords(records);
      router?.setRoutes(map.self ? [...(map.self.routes ?? []), ...(map.self.exitNode ? EXIT_ROUTES : [])] : []);
    },
    close,
  };
}
