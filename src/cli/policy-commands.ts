// `meshtun policy set <file>` and `meshtun policy show`: the network's ACL policy, through the
// coordinator's local API (POST/GET /v1/policy). A bad policy is refused with the PolicyError
// message (file:line, the rule and the problem; exit code 2) and the network keeps its previous
// policy.
import { readFileSync } from 'node:fs';
import { UserError } from '../util/index.js';
import { callMeshApi } from './mesh-commands.js';
import type { Command } from './main.js';

const USAGE = 'meshtun policy set <file> | meshtun policy show [--json]';

interface PolicyShow {
  network: string;
  policy: { text: string; version: number; updated: number } | null;
}

export const policy: Command = {
  name: 'policy',
  summary: 'set or show the network\'s ACL policy (on the coordinator)',
  usage: USAGE,
  examples: ['meshtun policy set acl.hujson', 'meshtun policy show'],
  async run(args) {
    const [sub, ...rest] = args;
    if (sub === 'set') {
      const file = rest[0];
      if (!file || rest.length > 1) throw new UserError('meshtun policy set needs one policy file', `usage: ${USAGE}`);
      let text: string;
      try {
        text = readFileSync(file, 'utf8');
      } catch (e) {
        throw new UserError(`cannot read the policy file ${file}: ${(e as Error).message}`, 'give the path of a HuJSON ACL policy');
      }
      const r = await callMeshApi('POST', '/v1/policy', { text, file }) as { network: string; version: number; warnings: string[] };
      for (const w of r.warnings ?? []) process.stderr.write(`meshtun: warning: ${w}\n`);
      process.stderr.write(`meshtun: policy version ${r.version} of network "${r.network}" set from ${file}; nodes apply it within seconds\n`);
      return 0;
    }
    if (sub === 'show') {
      const json = rest.includes('--json');
      const bad = rest.find((a) => a !== '--json');
      if (bad !== undefined) throw new UserError(`unknown option "${bad}"`, `usage: ${USAGE}`);
      const r = await callMeshApi('GET', '/v1/policy') as PolicyShow;
      if (json) process.stdout.write(JSON.stringify(r, null, 2) + '\n');
      else if (!r.policy) process.stderr.write(`meshtun: network "${r.network}" has no ACL policy: every packet passes\n`);
      else {
        process.stderr.write(`meshtun: network "${r.network}" policy version ${r.policy.version}, set ${new Date(r.policy.updated).toISOString()}\n`);
        process.stdout.write(r.policy.text.endsWith('\n') ? r.policy.text : `${r.policy.text}\n`);
      }
      return 0;
    }
    throw new UserError(`unknown policy command "${sub ?? ''}"`, `usage: ${USAGE}`);
  },
};
