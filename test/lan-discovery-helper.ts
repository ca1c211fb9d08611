// One node's LAN discovery (src/mesh/lan-discovery.ts) as a process, for namespace tests:
//
//   ip netns exec <ns> node dist/test/lan-discovery-helper.js '<json LanHelperConfig>'
//
// It prints one JSON line per endpoint learned, {"learned":[key, endpoint],"at":<ms>}, and its
// counters every 250 ms, {"counters":{...}}. SIGTERM closes it.
import { LanDiscovery } from '../src/mesh/index.js';

export interface LanHelperConfig {
  /** This node's public key (base64). */
  publicKey: string;
  wireguardPort: number;
  networkId: string;
  discoveryKey: string;
  families?: (4 | 6)[];
  port?: number;
}

const cfg = JSON.parse(process.argv[2] ?? '{}') as LanHelperConfig;
const out = (v: unknown) => process.stdout.write(JSON.stringify(v) + '\n');
const lan = new LanDiscovery({
  publicKey: Buffer.from(cfg.publicKey, 'base64'),
  wireguardPort: () => cfg.wireguardPort,
  onEndpoint: (key, endpoint) => out({ learned: [key, endpoint], at: Date.now() }),
  ...(cfg.families ? { families: cfg.families } : {}),
  ...(cfg.port ? { port: cfg.port } : {}),
});
lan.setNetwork(cfg.networkId, cfg.discoveryKey);
const timer = setInterval(() => out({ counters: lan.counters }), 250);
process.on('SIGTERM', () => {
  clearInterval(timer);
  void lan.close().then(() => process.exit(0));
});
