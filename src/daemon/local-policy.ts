// A local ACL policy: the `Policy = <file>` key of a wg-quick file's [Meshtun] section. Without a
// coordinator there is no node table, so the file may name sources and destinations only by IP
// address or CIDR prefix (or `*`); groups, tags and node names are refused. The result is handed
// to an AclFilter, which the engine runs on every packet (Engine.setPacketFilter).

import { readFileSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { ConfigError } from '../util/index.js';
import { AclFilter, compilePolicy, parsePolicy, PolicyError, type AclPolicy, type AclSelector, type CompiledPolicy } from '../mesh/index.js';

/** The policy path of a [Meshtun] Policy value: relative paths are taken from the directory of
 * the config file that names them. */
export function localPolicyPath(value: string, configFile: string): string {
  return isAbsolute(value) ? value : resolve(dirname(configFile), value);
}

/** Parses and compiles a local policy text (no node table). Throws PolicyError naming the rule
 * for a selector that needs one (group, tag, node name). */
export function compileLocalPolicy(text: string, file: string): CompiledPolicy {
  const policy = parsePolicy(text, file);
  checkLocalSelectors(policy);
  return compilePolicy(policy, []);
}

/** Reads, parses and compiles the policy file `path` (see compileLocalPolicy). An unreadable
 * file is a ConfigError naming `configFile`:`line` (the Policy line). */
export function loadLocalPolicy(path: string, configFile: string, line: number): CompiledPolicy {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError(configFile, line, `cannot read the Policy file ${path}: ${(err as Error).message}`);
  }
  return compileLocalPolicy(text, path);
}

/** A filter enforcing the local policy of `value` (a Policy value of `configFile`). */
export function localPolicyFilter(value: string, configFile: string, line: number): AclFilter {
  return new AclFilter({ policy: loadLocalPolicy(localPolicyPath(value, configFile), configFile, line) });
}

function checkLocalSelectors(policy: AclPolicy): void {
  for (const rule of policy.rules) {
    const bad = (s: AclSelector): string | null => (s.kind === 'group' || s.kind === 'tag' || s.kind === 'node' ? s.name : null);
    const names = [...rule.src.map(bad), ...rule.dst.map((d) => bad(d.target))].filter((x): x is string => x !== null);
    if (names.length > 0) {
      throw new PolicyError(policy.file, rule.line,
        `acls[${rule.index}] ${rule.text}: "${names[0]}" needs the mesh's node table; a local policy (Policy = in [Meshtun]) names peers only by IP address or CIDR prefix, or "*"`,
        rule.index);
    }
  }
}
