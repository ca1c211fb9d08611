// A hostile coordinator for test/mesh-hostile-netns.test.ts: a real Coordinator and ControlServer
// (TLS, Noise, encrypted frames) whose answers are tampered with before they are sent.
//   node dist/test/hostile-coordinator.js <state dir> <mode> <evil value>
//   mode register: the register reply gives the joiner the evil value as its IPv4 address.
//   mode map:      honest until a line "evil" arrives on stdin; then the pushed map gives the
//                  coordinator's own node the evil value as a route (and a policy change bumps
//                  the version, so the map is pushed).
// Prints one JSON line {joinString, token} when it listens on 127.0.0.1.
import { createInterface } from 'node:readline';
import { Coordinator, ControlServer, formatJoinString, type NetworkMap } from '../src/control/index.js';
import { LocalIdentity } from '../src/wireguard/index.js';
import { generatePrivateKey, publicKey } from '../src/crypto/index.js';

const [dir, mode, evil] = process.argv.slice(2) as [string, 'register' | 'map', string];
const key = generatePrivateKey();
const coord = Coordinator.open(dir);
coord.createNetwork({ name: 'home', self: { publicKey: publicKey(key) } });
const server = await ControlServer.listen({ coordinator: coord, identity: new LocalIdentity(key), host: '127.0.0.1', port: 0, tlsDir: dir });

let tamperMaps = false;
const honestMap = coord.networkMap.bind(coord);
coord.networkMap = (ref) => {
  const map = honestMap(ref);
  if (!tamperMaps) return map;
  return { ...map, peers: map.peers.map((p) => ({ ...p, routes: [evil], allowedIps: [...p.allowedIps, evil] })) } as NetworkMap;
};
if (mode === 'register') {
  const honestJoin = coord.join.bind(coord);
  coord.join = (req) => {
    const r = honestJoin(req);
    if (!r.ok) return r;
    return { ...r, node: { ...r.node, ipv4: evil }, map: { ...r.map, self: { ...r.map.self, ipv4: evil } } };
  };
}
createInterface({ input: process.stdin }).on('line', (line) => {
  if (line.trim() !== 'evil') return;
  tamperMaps = true;
  coord.setPolicy(undefined, '{"acls": [{"action": "accept", "src": ["*"], "dst": ["*:*"]}]}', 'policy');
  console.log('tampered');
});
const token = coord.createToken(undefined, { reusable: true, expiresIn: '1h' });
console.log(JSON.stringify({ joinString: formatJoinString({ host: '127.0.0.1', port: server.port, publicKey: publicKey(key) }), token: token.token }));
process.on('SIGTERM', () => { void server.close().then(() => { coord.close(); process.exit(0); }); });
