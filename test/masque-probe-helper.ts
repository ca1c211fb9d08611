// For test/mesh-ladder-netns.test.ts: opens a CONNECT-UDP stream to a relay as a node that is no
// member (a fresh key), with a valid relay-auth token for that key, or with none ('-').
//   node dist/test/masque-probe-helper.js <https://host:port> <target host> <target port> <relay key base64 | ->
// Prints "accepted" or "refused <status> <reason>".
import { connectUdp, ConnectUdpRefusedError } from '../src/transport/index.js';
import { makeRelayAuth, RELAY_AUTH_HEADER } from '../src/mesh/index.js';
import { generatePrivateKey, publicKey } from '../src/crypto/index.js';

const [authority, host, port, relayKey] = process.argv.slice(2) as [string, string, string, string];
const priv = generatePrivateKey();
const headers: Record<string, string> = {};
if (relayKey !== '-') headers[RELAY_AUTH_HEADER] = makeRelayAuth(priv, publicKey(priv), Buffer.from(relayKey, 'base64'), 'https', Date.now())!.toString('base64');
try {
  const s = await connectUdp({ authority, target: { host, port: Number(port) }, headers, timeoutMs: 5_000 });
  console.log('accepted');
  s.close();
} catch (e) {
  if (e instanceof ConnectUdpRefusedError) console.log(`refused ${e.status} ${e.reason}`);
  else console.log(`failed ${(e as Error).message}`);
}
process.exit(0);
