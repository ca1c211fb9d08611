// Kernel routing for mesh routes and exit nodes (kernel-TUN mode only).
// KernelRoutes keeps the routes through the mesh interface in line with a wanted set
// (`ip route replace <cidr> dev <iface>`; ones no longer wanted are deleted). The advertising side
// (a subnet router or exit node) uses enableForwarding (net.ipv4.ip_forward and IPv6 forwarding:
// logged, since it changes the namespace/host) and OverlayNat: an nftables table `meshtun` that
// masquerades traffic from the overlay leaving through any interface other than the mesh one, so
// hosts behind the router need no route back to the overlay. The table is deleted on stop.
// Rules go to nft as JSON (`nft -j <document>`) built from checked prefixes, never as rule text, and routes to
// `ip` as one checked prefix per argument.
// Everything here is kernel state of the current network namespace.
import { execFile } from 'node:child_process';
import { writeFileSync, readFileSync } from 'node:fs';
import { Logger } from '../util/index.js';
import { EXIT_ROUTES, MapFieldError, checkPrefix, type ControlNetworkMap } from '../mesh/index.js';
import { formatIpv4Address, formatIpv6Address } from '../wire/index.js';
import type { Cidr } from '../wireguard/index.js';
import { isInterfaceName } from './wg-quick-config.js';
import { DEFAULT_ROUTE_TABLE, type WgInterface } from './wg-interface.js';

const log = new Logger('routing');

/** The nftables table meshtun creates for NAT. */
export const NAT_TABLE = 'meshtun';

function run(cmd: string, args: string[], input?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const p = execFile(cmd, args, (err, stdout, stderr) => (err ? reject(new Error(`${cmd} ${args.join(' ')}: ${stderr.trim() || err.message}`)) : resolve(stdout)));
    if (input !== undefined) p.stdin?.end(input);
  });
}

function family(cidr: string): '-4' | '-6' {
  return cidr.includes(':') ? '-6' : '-4';
}

/** The nftables ruleset (JSON, `nft -j -f -`) of OverlayNat: table inet `meshtun` with a NAT
 * postrouting chain that masquerades traffic from the overlay's prefixes leaving by any other
 * interface than `ifname`. Built as data from checked values: a field holds one value of its type
 * and cannot carry a second statement, as rule text could. Throws MapFieldError for a bad prefix. */
export function overlayNatRuleset(ifname: string, overlay: { ipv4Pool: string; ulaPrefix: string }): unknown {
  if (!isInterfaceName(ifname)) throw new MapFieldError('interface', ifname, 'an interface name');
  const family = 'inet';
  const table = NAT_TABLE;
  const chain = 'postrouting';
  const masquerade = (protocol: 'ip' | 'ip6', cidr: Cidr) => ({
    add: {
      rule: {
        family, table, chain,
        expr: [
          { match: { op: '==', left: { payload: { protocol, field: 'saddr' } }, right: { prefix: { addr: cidrAddress(cidr), len: cidr.prefixLen } } } },
          { match: { op: '!=', left: { meta: { key: 'oifname' } }, right: ifname } },
          { masquerade: null },
        ],
      },
    },
  });
  return {
    nftables: [
      { add: { table: { family, name: table } } },
      { add: { chain: { family, table, name: chain, type: 'nat', hook: 'postrouting', prio: 100, policy: 'accept' } } },
      masquerade('ip', checkPrefix(overlay.ipv4Pool, 'ipv4Pool', 4).cidr),
      masquerade('ip6', checkPrefix(overlay.ulaPrefix, 'ulaPrefix', 6).cidr),
    ],
  };
}

function cidrAddress(c: Cidr): string {
  return c.family === 4 ? formatIpv4Address(c.address as number) : formatIpv6Address(c.address as Uint8Array, 0);
}

/** Routes `cidr`s through the mesh interface, as a set that can change. */
export class KernelRoutes {
  private readonly installed = new Set<string>();

  constructor(private readonly ifname: string) {}

  /** Makes the kernel routes through the interface match `wanted`. Never throws: failures are logged. */
  async set(wanted: readonly string[]): Promise<void> {
    const want = new Set(wanted);
    for (const r of [...this.installed]) {
      if (want.has(r)) continue;
      await run('ip', [family(r), 'route', 'delete', r, 'dev', this.ifname]).catch((e: Error) => log.warn(`route ${r} not removed: ${e.message}`));
      this.installed.delete(r);
      log.info(`route ${r} via ${this.ifname} removed`);
    }
    for (const r of want) {
      if (this.installed.has(r)) continue;
      try {
        checkPrefix(r, 'route');
      } catch (e) {
        log.warn(`route not installed: ${(e as Error).message}`);
        continue;
      }
      try {
        await run('ip', [family(r), 'route', 'replace', r, 'dev', this.ifname]);
        this.installed.add(r);
        log.info(`route ${r} via ${this.ifname}`);
      } catch (e) {
        log.warn(`route ${r} not installed: ${(e as Error).message}`);
      }
    }
  }

  get routes(): string[] {
    return [...this.installed];
  }

  clear(): Promise<void> {
    return this.set([]);
  }
}

const FORWARDING_SYSCTLS = ['/proc/sys/net/ipv4/ip_forward', '/proc/sys/net/ipv6/conf/all/forwarding'];

/** Turns on IPv4 and IPv6 forwarding (this network namespace), logging what it changes. */
export function enableForwarding(): void {
  for (const path of FORWARDING_SYSCTLS) {
    try {
      if (readFileSync(path, 'utf8').trim() === '1') continue;
      writeFileSync(path, '1\n');
      log.warn(`this node forwards for the mesh: set ${path.slice('/proc/sys/'.length).replaceAll('/', '.')} = 1 (left on at exit)`);
    } catch (e) {
      log.warn(`cannot enable forwarding (${path}): ${(e as Error).message}`);
    }
  }
}

/** nftables masquerade for traffic from the overlay that leaves by another interface. */
export class OverlayNat {
  private active = false;

  private constructor(private readonly ifname: string) {}

  /** Creates (or recreates) table inet `meshtun`. Logs and returns an inactive NAT on failure. */
  static async start(ifname: string, overlay: { ipv4Pool: string; ulaPrefix: string }): Promise<OverlayNat> {
    const nat = new OverlayNat(ifname);
    await run('nft', ['delete', 'table', 'inet', NAT_TABLE]).catch(() => undefined);
    try {
      // One argument holding the JSON document (nft -j reads its command line as JSON; stdin
      // would be a socket, which nft cannot open as a file).
      await run('nft', ['-j', JSON.stringify(overlayNatRuleset(ifname, overlay))]);
      nat.active = true;
      log.info(`NAT: traffic from ${overlay.ipv4Pool} and ${overlay.ulaPrefix} leaving by other interfaces than ${ifname} is masqueraded (nft table inet ${NAT_TABLE})`);
    } catch (e) {
      log.warn(`no NAT for routed traffic: ${(e as Error).message}`);
    }
    return nat;
  }

  get isActive(): boolean {
    return this.active;
  }

  async stop(): Promise<void> {
    if (!this.active) return;
    this.active = false;
    await run('nft', ['delete', 'table', 'inet', NAT_TABLE]).catch((e: Error) => log.warn(`NAT table not removed: ${e.message}`));
    log.info(`NAT for ${this.ifname} removed`);
  }
}

/** What a mesh node routes: the subnets and exit node it advertises, and the exit node it uses. */
export interface MeshRoutingOptions {
  ifname: string;
  /** The kernel-TUN interface (null in userspace mode: nothing is routed in the kernel). */
  wg: WgInterface | null;
  overlay: { ipv4Pool: string; ulaPrefix: string };
  /** Routes this node advertises (subnets, and 0.0.0.0/0 / ::/0 for an exit node). */
  advertised: readonly string[];
  /** Name of the node to use as exit node. */
  exitNode?: string;
}

/** The kernel side of mesh routes for one node: forwarding and NAT when it advertises routes,
 * kernel routes for the peers' approved subnets, and the default route through the chosen exit
 * node once the map says it is one (wg-quick's policy routing; removed when the interface stops). */
export class MeshRouting {
  private readonly routes: KernelRoutes;
  private nat: OverlayNat | null = null;
  /** The policy-routing rules are in place (added once, removed when the interface stops). */
  private exitRules = false;
  /** The default routes in table 51820 point at the tunnel. */
  private exitActive = false;
  private queue: Promise<void> = Promise.resolve();

  private constructor(private readonly opts: MeshRoutingOptions) {
    this.routes = new KernelRoutes(opts.ifname);
  }

  static async start(opts: MeshRoutingOptions): Promise<MeshRouting> {
    const r = new MeshRouting(opts);
    if (opts.wg && opts.advertised.length > 0) {
      enableForwarding();
      r.nat = await OverlayNat.start(opts.ifname, opts.overlay);
    } else if (!opts.wg && (opts.advertised.length > 0 || opts.exitNode)) {
      log.warn('routes and exit nodes need a kernel TUN (run as root without --userspace); none are set up');
    }
    return r;
  }

  /** Follows a network map (calls are serialized; never throws). */
  onMap(map: ControlNetworkMap): void {
    const wg = this.opts.wg;
    if (!wg) return;
    const subnets = new Set<string>();
    let exitReady = false;
    for (const p of map.peers ?? []) {
      for (const r of p.routes ?? []) subnets.add(r);
      if (this.opts.exitNode !== undefined && p.name === this.opts.exitNode && p.exitNode === true) exitReady = true;
    }
    this.queue = this.queue.then(async () => {
      await this.routes.set([...subnets]);
      if (exitReady === this.exitActive) return;
      this.exitActive = exitReady;
      const table = String(DEFAULT_ROUTE_TABLE);
      for (const cidr of EXIT_ROUTES) {
        // The first time through wg-quick's policy routing; later only the table's route changes
        // (an empty table 51820 falls through to the main table: the usual default route).
        const change = !exitReady
          ? run('ip', [family(cidr), 'route', 'delete', cidr, 'dev', this.opts.ifname, 'table', table])
          : this.exitRules
            ? run('ip', [family(cidr), 'route', 'replace', cidr, 'dev', this.opts.ifname, 'table', table])
            : wg.addDefaultRoute(family(cidr), cidr);
        await change.then(
          () => log.info(exitReady ? `${cidr} goes through exit node "${this.opts.exitNode}"` : `${cidr} no longer goes through "${this.opts.exitNode}" (not an exit node now)`),
          (e: Error) => log.warn(`${cidr} through the exit node not ${exitReady ? 'set' : 'removed'}: ${e.message}`));
      }
      if (exitReady) this.exitRules = true;
    });
  }

  async stop(): Promise<void> {
    await this.queue;
    await this.routes.clear();
    await this.nat?.stop();
  }
}
