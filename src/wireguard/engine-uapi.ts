// wg(8)'s view of the engine (the cross-platform UAPI): a snapshot for `get=1`, and applying a
// parsed `set=1` request in order, with wireguard-go's semantics for update_only, remove and
// replace_* lines.

import type { Engine } from './engine.js';
import type { Peer } from './peer.js';
import type { Endpoint } from './device-interface.js';
import { UapiError, UAPI_ERRNO, type UapiDeviceState, type UapiSetOp } from './uapi.js';

export function engineUapiState(engine: Engine): UapiDeviceState {
  return {
    privateKey: engine.privateKey,
    listenPort: engine.listenPort,
    fwmark: engine.fwmark,
    peers: engine.listPeers().map((p) => ({
      publicKey: p.publicKey,
      presharedKey: p.presharedKey,
      // wg(8) parses host:port only: a stream endpoint ("tcp://a:p") shows as its remote address.
      endpoint: p.endpoint ? uapiEndpointText(p.endpoint) : null,
      persistentKeepalive: p.persistentKeepalive,
      lastHandshakeWallMs: p.lastHandshakeWall,
      rxBytes: p.rxBytes,
      txBytes: p.txBytes,
      allowedIps: engine.allowedIps.entriesForPeer(p).map((e) => `${e.address}/${e.prefixLen}`),
      protocolVersion: 1 as const,
    })),
  };
}

export async function applyUapiOps(engine: Engine, ops: UapiSetOp[]): Promise<void> {
  let peer: Peer | null = null;
  let createdNow = false;
  let skipPeer = false;
  for (const op of ops) {
    switch (op.type) {
      case 'private_key': engine.setPrivateKey(op.key); break;
      case 'listen_port':
        try {
          await engine.setListenPort(op.port);
        } catch (err) {
          throw new UapiError(UAPI_ERRNO.EADDRINUSE, `cannot listen on port ${op.port}: ${(err as Error).message}`);
        }
        break;
      case 'fwmark': engine.setFwmark(op.mark); break;
      case 'replace_peers':
        for (const p of engine.listPeers()) engine.removePeer(p.publicKey);
        break;
      case 'public_key':
        createdNow = !engine.getPeer(op.key);
        skipPeer = false;
        peer = engine.addPeer(op.key);
        break;
      default: {
        if (skipPeer) break;
        if (!peer) throw new UapiError(UAPI_ERRNO.EINVAL, `"${op.type}" must follow a public_key line`);
        switch (op.type) {
          case 'update_only':
            if (createdNow) { engine.removePeer(peer.publicKey); skipPeer = true; peer = null; }
            break;
          case 'remove': engine.removePeer(peer.publicKey); skipPeer = true; peer = null; break;
          case 'preshared_key': engine.setPresharedKey(peer, op.key); break;
          case 'endpoint': {
            const ep = engine.bind.parseEndpoint(op.endpoint);
            if (!ep) throw new UapiError(UAPI_ERRNO.EINVAL, `invalid endpoint "${op.endpoint}"`);
            engine.setEndpoint(peer, ep);
            break;
          }
          case 'persistent_keepalive_interval': engine.setPersistentKeepalive(peer, op.seconds); break;
          case 'replace_allowed_ips': engine.allowedIps.removeByPeer(peer); break;
          case 'allowed_ip': engine.allowedIps.insert(op.family, op.address, op.cidr, peer); break;
          case 'protocol_version': break;
        }
      }
    }
  }
}

/** host:port of an endpoint for the UAPI (its own text unless it is a URL-like stream endpoint). */
function uapiEndpointText(ep: Endpoint): string {
  const t = ep.toString();
  if (!t.includes('://')) return t;
  return ep.family === 6 ? `[${ep.address}]:${ep.port}` : `${ep.address}:${ep.port}`;
}
