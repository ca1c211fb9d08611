// A mesh node's ACL enforcement: follows the network map's policy. The map's policy text is
// compiled against the map's node table (self + peers: names, addresses, tags) and installed on
// the engine as an AclFilter (Engine.setPacketFilter); a later map with new nodes or a new policy
// recompiles and swaps it in with setPolicy (flows in the table survive when still allowed). No
// policy in the map: no filter, every packet passes. A policy that does not compile here (the
// coordinator checked it, so this means a newer format) keeps the previous one and is logged.
import { Logger } from '../util/index.js';
import type { Engine } from '../wireguard/index.js';
import { AclFilter, compilePolicy, parsePolicy, type ControlNetworkMap, type ControlMapNode, type AclNode } from '../mesh/index.js';

const log = new Logger('acl');

function aclNode(n: ControlMapNode): AclNode {
  return { name: n.name, addresses: [n.ipv4, n.ipv6].filter((a) => typeof a === 'string' && a !== ''), tags: Array.isArray(n.tags) ? n.tags : [] };
}

export class MeshAcl {
  /** The filter installed on the engine (null: no policy). */
  filter: AclFilter | null = null;
  /** What the current filter was compiled from (policy version + node table). */
  private key = '';

  constructor(private readonly engine: Engine) {}

  /** Brings the engine's filter in line with `map`. Never throws. */
  update(map: ControlNetworkMap): void {
    const policy = map.policy ?? null;
    if (!policy || typeof policy.text !== 'string') {
      if (this.filter) {
        this.engine.setPacketFilter(null);
        this.filter = null;
        this.key = '';
        log.info('ACL policy removed: every packet passes');
      }
      return;
    }
    const nodes = [map.self, ...(map.peers ?? [])].filter((n) => n && typeof n.name === 'string').map(aclNode);
    const key = JSON.stringify([policy.version, policy.text.length, nodes]);
    if (key === this.key) return;
    try {
      const compiled = compilePolicy(parsePolicy(policy.text, `policy v${policy.version}`), nodes);
      for (const w of compiled.warnings) log.debug(`ACL: ${w}`);
      if (this.filter) {
        this.filter.setPolicy(compiled);
      } else {
        this.filter = new AclFilter({ policy: compiled });
        this.engine.setPacketFilter(this.filter);
      }
      this.key = key;
    } catch (e) {
      log.warn(`ACL policy v${policy.version} not applied (keeping the previous one): ${(e as Error).message}`);
    }
  }

  stop(): void {
    if (this.filter) this.engine.setPacketFilter(null);
    this.filter = null;
  }
}
