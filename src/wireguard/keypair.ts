// A keypair: the two transport keys one handshake derives, with the send counter and the
// receive replay filter (whitepaper 5.4.6). A peer holds up to three: previous, current, next.

import { ChaChaPolyKey } from '../crypto/index.js';
import { ReplayFilter } from './replay-filter.js';

export class Keypair<P = unknown> {
  readonly send: ChaChaPolyKey;
  readonly receive: ChaChaPolyKey;
  readonly replay = new ReplayFilter();
  /** The next counter to send with. */
  sendCounter = 0;
  /** False once wiped; a wiped keypair neither sends nor receives. */
  live = true;

  constructor(
    readonly peer: P,
    sendKey: Uint8Array,
    receiveKey: Uint8Array,
    readonly isInitiator: boolean,
    /** Our index: transport messages to us carry it as receiver index. */
    readonly localIndex: number,
    /** Their index: we put it in transport messages we send. */
    readonly remoteIndex: number,
    /** Clock ms when derived. */
    readonly created: number,
  ) {
    this.send = new ChaChaPolyKey(sendKey);
    this.receive = new ChaChaPolyKey(receiveKey);
  }

  wipe(): void {
    this.live = false;
    this.send.wipe();
    this.receive.wipe();
  }
}
