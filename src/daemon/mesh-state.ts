// What a member keeps on disk so that it can come up without its coordinator (issue 10, item 5):
// the last network map it applied and, per peer, the direct endpoints that last answered. A
// restarted member applies them before it reaches the coordinator, so its peers, names, ACLs and
// routes are there at once, and paths are tried first where they worked last.
//
// The file (<state dir>/mesh-state.json, mode 0600) is read back as untrusted input: the map
// goes through the same field-by-field checks as one from the network (mesh/map-check.ts), the
// endpoints through the endpoint check; a file that fails is ignored with a warning (the node
// then waits for the coordinator, as before).
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Logger, writePrivateFile } from '../util/index.js';
import { checkNetworkMap, checkEndpoint, checkKey, MapFieldError, type ControlNetworkMap } from '../mesh/index.js';

export const MESH_STATE_FILE = 'mesh-state.json';
/** How often the endpoints are saved again (a map is saved when applied). */
export const MESH_STATE_SAVE_MS = 30_000;
const MAX_ENDPOINTS_PER_PEER = 8;

const log = new Logger('mesh');

export interface SavedMeshState {
  map: ControlNetworkMap;
  /** Peer public key (base64) -> endpoints that answered, best first. */
  endpoints: Record<string, string[]>;
}

/** Reads and checks the saved state of node `nodeId`; null when there is none or it is unusable. */
export function loadMeshState(dir: string, nodeId: string): SavedMeshState | null {
  const file = join(dir, MESH_STATE_FILE);
  if (!existsSync(file)) return null;
  try {
    const raw: unknown = JSON.parse(readFileSync(file, 'utf8'));
    if (typeof raw !== 'object' || raw === null) throw new MapFieldError('state', raw, 'an object');
    const o = raw as Record<string, unknown>;
    const map = checkNetworkMap(o.map, 'map');
    if (map.self.id !== nodeId) throw new MapFieldError('map.self.id', map.self.id, `this node's id ${nodeId}`);
    const endpoints: Record<string, string[]> = {};
    const eps = o.endpoints;
    if (typeof eps === 'object' && eps !== null && !Array.isArray(eps)) {
      for (const [key, list] of Object.entries(eps as Record<string, unknown>)) {
        checkKey(key, `endpoints key`);
        if (!Array.isArray(list)) throw new MapFieldError(`endpoints["${key}"]`, list, 'a list');
        endpoints[key] = list.slice(0, MAX_ENDPOINTS_PER_PEER).map((e, i) => checkEndpoint(e, `endpoints["${key}"][${i}]`));
      }
    }
    return { map, endpoints };
  } catch (e) {
    log.warn(`ignoring the saved mesh state ${file}: ${(e as Error).message}`);
    return null;
  }
}

/** Saves the state now. Never throws (a failure is logged). */
export function saveMeshState(dir: string, state: SavedMeshState): void {
  try {
    writePrivateFile(join(dir, MESH_STATE_FILE), JSON.stringify(state) + '\n');
  } catch (e) {
    log.warn(`cannot save the mesh state in ${dir}: ${(e as Error).message}`);
  }
}
