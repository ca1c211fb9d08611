// An engine Endpoint over a DatagramStream (the HTTPS or TCP rung): the engine sends a peer's
// datagrams through Endpoint.send, which writes them to the stream instead of the UDP Bind.
// Datagrams arriving on the stream are handed to Engine.receiveDatagrams with this endpoint as
// their sender (pipeToEngine), so the engine's roaming keeps replies on the same stream.
//
// address/port name the other end of the stream's connection (for display: wg show, status);
// toString() says which rung carries it: "https://198.18.0.1:7443", "tcp://[fd00::1]:51820".
import { isIPv6 } from 'node:net';
import type { Endpoint, Engine } from '../wireguard/index.js';
import { STREAM_RX_BATCH, type DatagramStream } from './datagram-stream.js';

const V4_MAPPED = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i;

export class StreamEndpoint implements Endpoint {
  readonly family: 4 | 6;
  readonly address: string;
  readonly port: number;
  readonly transport: 'https' | 'tcp';
  private readonly text: string;

  /** `address` and `port` default to the remote end of the stream's connection (an IPv4-mapped
   * IPv6 address shown as IPv4). */
  constructor(readonly stream: DatagramStream, address = stream.remoteAddress, port = stream.remotePort) {
    const mapped = V4_MAPPED.exec(address);
    this.address = mapped !== null ? mapped[1]! : address;
    this.family = isIPv6(this.address) ? 6 : 4;
    this.port = port;
    this.transport = stream.transport;
    this.text = `${this.transport}://${this.family === 6 ? `[${this.address}]` : this.address}:${port}`;
  }

  toString(): string {
    return this.text;
  }

  /** Engine hook: the peer's datagrams go into the stream (one write per batch). */
  send(bufs: Buffer[], offsets: Uint32Array, sizes: Uint32Array, count: number): number {
    return this.stream.send(bufs, offsets, sizes, count);
  }
}

/** What pipeToEngine needs of an Engine. */
export type DatagramReceiver = Pick<Engine, 'receiveDatagrams'>;

/** Hands every datagram arriving on `stream` to `engine.receiveDatagrams` with `endpoint` as its
 * sender. The stream calls from the event loop (its 'data' events), never from inside the
 * engine's own processing, as receiveDatagrams requires. One closure, bound here. */
export function pipeToEngine(stream: DatagramStream, endpoint: Endpoint, engine: DatagramReceiver): void {
  const endpoints: Endpoint[] = new Array<Endpoint>(STREAM_RX_BATCH).fill(endpoint);
  stream.onDatagrams((bufs, sizes, count) => engine.receiveDatagrams(bufs, sizes, endpoints, count));
}
