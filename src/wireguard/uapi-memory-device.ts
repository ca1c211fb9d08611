// A UapiDevice that only stores configuration: no keys are used, no packets move. It applies set
// operations with the same meaning as wireguard-go (peer sections, update_only, remove,
// replace_allowed_ips, an allowed IP belonging to one peer at a time), so tests can check the
// UAPI protocol against the real wg(8) before, and independently of, the engine.

import type { UapiDevice, UapiDeviceState, UapiPeerState, UapiSetOp } from './uapi.js';

interface MemoryPeer {
  publicKey: Buffer;
  presharedKey: Buffer | null;
  endpoint: string | null;
  persistentKeepalive: number;
  /** Canonical prefixes in insertion order. */
  allowedIps: Set<string>;
  lastHandshakeWallMs: number;
  rxBytes: number;
  txBytes: number;
}

export class MemoryUapiDevice implements UapiDevice {
  privateKey: Buffer | null = null;
  listenPort = 0;
  fwmark = 0;
  /** By hex public key, in creation order. */
  readonly peers = new Map<string, MemoryPeer>();
  /** prefix -> hex public key of the peer that owns it. */
  private readonly owners = new Map<string, string>();
  /** Number of applyConfig calls (tests check requests reach the device). */
  applied = 0;

  getConfig(): UapiDeviceState {
    const peers: UapiPeerState[] = [];
    for (const p of this.peers.values()) {
      peers.push({
        publicKey: Buffer.from(p.publicKey),
        presharedKey: p.presharedKey ? Buffer.from(p.presharedKey) : null,
        endpoint: p.endpoint,
        persistentKeepalive: p.persistentKeepalive,
        lastHandshakeWallMs: p.lastHandshakeWallMs,
        rxBytes: p.rxBytes,
        txBytes: p.txBytes,
        allowedIps: [...p.allowedIps],
        protocolVersion: 1,
      });
    }
    return { privateKey: this.privateKey ? Buffer.from(this.privateKey) : null, listenPort: this.listenPort, fwmark: this.fwmark, peers };
  }

  applyConfig(ops: UapiSetOp[]): void {
    this.applied++;
    // The peer the current section configures; null inside a removed / update_only section.
    let peer: MemoryPeer | null = null;
    let created = false;
    for (const op of ops) {
      switch (op.type) {
        case 'private_key': this.privateKey = op.key; break;
        case 'listen_port': this.listenPort = op.port; break;
        case 'fwmark': this.fwmark = op.mark; break;
        case 'replace_peers':
          this.peers.clear();
          this.owners.clear();
          break;
        case 'public_key': {
          const hex = op.key.toString('hex');
          peer = this.peers.get(hex) ?? null;
          created = peer === null;
          if (!peer) {
            peer = {
              publicKey: op.key, presharedKey: null, endpoint: null, persistentKeepalive: 0,
              allowedIps: new Set(), lastHandshakeWallMs: 0, rxBytes: 0, txBytes: 0,
            };
            this.peers.set(hex, peer);
          }
          break;
        }
        case 'update_only':
          if (peer && created) this.removePeer(peer);
          if (created) peer = null;
          break;
        case 'remove':
          if (peer) this.removePeer(peer);
          peer = null;
          break;
        case 'preshared_key': if (peer) peer.presharedKey = op.key; break;
        case 'endpoint': if (peer) peer.endpoint = op.endpoint; break;
        case 'persistent_keepalive_interval': if (peer) peer.persistentKeepalive = op.seconds; break;
        case 'replace_allowed_ips':
          if (peer) {
            for (const prefix of peer.allowedIps) this.owners.delete(prefix);
            peer.allowedIps.clear();
          }
          break;
        case 'allowed_ip': {
          if (!peer) break;
          const hex = peer.publicKey.toString('hex');
          const owner = this.owners.get(op.prefix);
          if (owner !== undefined && owner !== hex) this.peers.get(owner)?.allowedIps.delete(op.prefix);
          this.owners.set(op.prefix, hex);
          peer.allowedIps.add(op.prefix);
          break;
        }
        case 'protocol_version': break;
      }
    }
  }

  private removePeer(peer: MemoryPeer): void {
    for (const prefix of peer.allowedIps) this.owners.delete(prefix);
    this.peers.delete(peer.publicKey.toString('hex'));
  }
}
