// `meshtun routes [list] [--json]` and `meshtun routes approve|unapprove <node> <cidr|exit|all>...`:
// the subnet routes and exit nodes the network's nodes advertise, and their approval, through the
// coordinator daemon's local API.
import { UserError } from '../util/index.js';
import { callMeshApi } from './mesh-commands.js';
import type { Command } from './main.js';

interface RouteRow { node: string; ipv4: string; advertised: string[]; approved: string[]; pending: string[]; exitNode: boolean }

function describe(r: RouteRow): string {
  const show = (l: string[]) => (l.length ? l.join(',') : '-');
  return `${r.node.padEnd(20)} ${r.ipv4.padEnd(16)} approved ${show(r.approved)}  pending ${show(r.pending)}${r.exitNode ? '  (exit node)' : ''}`;
}

export const routes: Command = {
  name: 'routes',
  summary: 'list advertised subnet routes and exit nodes, approve them (on the coordinator)',
  usage: 'meshtun routes [list] [--json] | meshtun routes approve|unapprove <node> <cidr|exit|all>...',
  examples: ['meshtun routes', 'meshtun routes approve router 198.18.60.0/24', 'meshtun routes approve router exit', 'meshtun routes unapprove router all'],
  async run(args) {
    const json = args.includes('--json');
    const rest = args.filter((a) => a !== '--json');
    const sub = rest[0] ?? 'list';
    if (sub === 'approve' || sub === 'unapprove') {
      const node = rest[1];
      const list = rest.slice(2).flatMap((a) => a.split(',')).filter(Boolean);
      if (!node || list.length === 0) throw new UserError(`name the node and the routes to ${sub}`, `e.g. meshtun routes ${sub} router 198.18.60.0/24 (or exit, or all)`);
      const r = await callMeshApi('POST', `/v1/routes/${sub}`, { node, routes: list }) as { node: RouteRow };
      if (json) process.stdout.write(JSON.stringify(r) + '\n');
      else process.stdout.write(describe(r.node) + '\n');
      return 0;
    }
    if (sub !== 'list') throw new UserError(`unknown routes command "${sub}"`, 'use `meshtun routes list`, `meshtun routes approve <node> <cidr|exit|all>`');
    const r = await callMeshApi('GET', '/v1/routes') as { routes: RouteRow[] };
    if (json) process.stdout.write(JSON.stringify(r) + '\n');
    else if (r.routes.length === 0) process.stdout.write('no node advertises routes (meshtun up --advertise-routes 192.0.2.0/24, --advertise-exit-node)\n');
    else for (const row of r.routes) process.stdout.write(describe(row) + '\n');
    return 0;
  },
};
