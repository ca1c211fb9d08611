// Applies the WireGuard part of a wg-quick file to a running engine, like `wg syncconf`: the
// private key and listen port, and the peers, which are made to match the file (peers not in the
// file are removed; new ones added; existing ones get the file's preshared key, allowed IPs and
// keepalive). An endpoint is set for a new peer, and for an existing one only when the file's
// Endpoint text changed, so a peer that roamed keeps its current address across a reload.

import { UserError } from '../util/index.js';
import { parseCidr, type Engine } from '../wireguard/index.js';
import { encodeBase64Key } from '../crypto/index.js';
import { resolveEndpoint, formatPrefix, type WgQuickConfig } from './wg-quick-config.js';

export interface PeerSyncResult {
  added: string[];
  removed: string[];
  updated: string[];
}

/** Makes `engine` match `cfg` (see the file header). `previous` is the config applied before, if
 * any. Throws UserError when an endpoint cannot be resolved or used. */
export async function syncWireGuard(engine: Engine, cfg: WgQuickConfig, previous: WgQuickConfig | null): Promise<PeerSyncResult> {
  const ifc = cfg.interface;
  const result: PeerSyncResult = { added: [], removed: [], updated: [] };
  engine.setPrivateKey(ifc.privateKey);
  const prevPort = previous ? previous.interface.listenPort : undefined;
  if (ifc.listenPort !== prevPort && (ifc.listenPort !== null || previous !== null)) await engine.setListenPort(ifc.listenPort ?? 0);
  const wanted = new Set(cfg.peers.map((p) => encodeBase64Key(p.publicKey)));
  for (const peer of engine.listPeers()) {
    const key = encodeBase64Key(peer.publicKey);
    if (!wanted.has(key)) {
      engine.removePeer(peer.publicKey);
      result.removed.push(key);
    }
  }
  const prevEndpoints = new Map((previous?.peers ?? []).map((p) => [encodeBase64Key(p.publicKey), p.endpoint]));
  for (const p of cfg.peers) {
    const key = encodeBase64Key(p.publicKey);
    const existing = engine.getPeer(p.publicKey);
    const peer = existing ?? engine.addPeer(p.publicKey);
    (existing ? result.updated : result.added).push(key);
    const psk = p.presharedKey;
    if (!(psk === null ? peer.presharedKey === null : peer.presharedKey?.equals(psk))) engine.setPresharedKey(peer, psk);
    if (p.endpoint && (!existing || prevEndpoints.get(key) !== p.endpoint)) {
      const resolved = await resolveEndpoint(p.endpoint);
      const ep = engine.bind.parseEndpoint(resolved);
      if (!ep) throw new UserError(`${cfg.file}:${p.line}: cannot use endpoint "${p.endpoint}" (resolved to ${resolved})`);
      engine.setEndpoint(peer, ep);
    }
    engine.allowedIps.removeByPeer(peer);
    for (const a of p.allowedIps) engine.allowedIps.insertCidr(parseCidr(formatPrefix(a)), peer);
    if (peer.persistentKeepalive !== p.persistentKeepalive) engine.setPersistentKeepalive(peer, p.persistentKeepalive);
  }
  return result;
}
