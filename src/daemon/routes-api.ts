// The coordinator's local API for mesh routes (behind `meshtun routes`):
//   GET  /v1/routes           {routes: [{node, ipv4, advertised, approved, pending, exitNode}]}
//   POST /v1/routes/approve   {node, routes: ["198.18.60.0/24" | "exit" | "all"]} -> {node: row}
//   POST /v1/routes/unapprove {node, routes: [...]} -> {node: row}
// "exit" stands for both exit routes (0.0.0.0/0 and ::/0). autoApproveRoutes approves every
// advertised route as nodes report them.
import { Logger, UserError } from '../util/index.js';
import { EXIT_ROUTES } from '../mesh/index.js';
import type { Coordinator, NodeRecord } from '../control/index.js';
import type { ApiRoutes } from './api-server.js';

const log = new Logger('routes');

export interface RouteRow {
  node: string;
  ipv4: string;
  advertised: string[];
  approved: string[];
  /** Advertised, not approved yet. */
  pending: string[];
  /** An approved exit route. */
  exitNode: boolean;
}

export function routeRow(n: NodeRecord): RouteRow {
  const approved = n.advertisedRoutes.filter((r) => n.approvedRoutes.includes(r));
  return {
    node: n.name, ipv4: n.ipv4, advertised: [...n.advertisedRoutes], approved,
    pending: n.advertisedRoutes.filter((r) => !approved.includes(r)),
    exitNode: approved.some((r) => EXIT_ROUTES.includes(r)),
  };
}

function routeList(body: Record<string, unknown>): string[] | 'all' {
  const raw = Array.isArray(body.routes) ? body.routes.map(String) : typeof body.routes === 'string' ? [body.routes] : [];
  if (raw.length === 0) throw new UserError('name the routes to approve', 'e.g. meshtun routes approve router 198.18.60.0/24 (or exit, or all)');
  if (raw.includes('all')) return 'all';
  return raw.flatMap((r) => (r === 'exit' ? EXIT_ROUTES : [r]));
}

/** The routes endpoints for `coord` (the daemon's other endpoints come first). */
export function routesApi(coord: Coordinator): ApiRoutes {
  return (method, url, body) => {
    const b = (body ?? {}) as Record<string, unknown>;
    if (method === 'GET' && url === '/v1/routes') {
      return { status: 200, body: { routes: coord.nodes().filter((n) => n.advertisedRoutes.length > 0).map(routeRow) } };
    }
    if (method === 'POST' && (url === '/v1/routes/approve' || url === '/v1/routes/unapprove')) {
      const ref = String(b.node ?? '');
      if (!ref) throw new UserError('name the node', 'e.g. meshtun routes approve router 198.18.60.0/24');
      const n = url.endsWith('/approve') ? coord.approveRoutes(undefined, ref, routeList(b)) : coord.unapproveRoutes(undefined, ref, routeList(b));
      return { status: 200, body: { node: routeRow(n) } };
    }
    return undefined;
  };
}

/** Approves every advertised route as it appears. Returns the unsubscribe function. */
export function autoApproveRoutes(coord: Coordinator): () => void {
  let stopped = false;
  const sweep = () => {
    if (stopped) return;
    try {
      for (const n of coord.nodes()) {
        if (n.advertisedRoutes.some((r) => !n.approvedRoutes.includes(r))) coord.approveRoutes(undefined, n.id, 'all');
      }
    } catch (e) {
      log.warn(`routes not auto-approved: ${(e as Error).message}`);
    }
  };
  sweep();
  // Outside the change that triggered it: approving is itself a change.
  const unsubscribe = coord.onChange(() => { setImmediate(sweep); });
  return () => {
    stopped = true;
    unsubscribe();
  };
}
