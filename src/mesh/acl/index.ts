// ACLs: the policy file format (parse, with errors naming rule and problem), its compilation
// against the node table, and the stateful filter each receiving node enforces it with.
export { parsePolicy, parsePrefix, parsePorts, PolicyError, ACL_PROTOS, type AclPolicy, type AclRule, type AclSelector, type AclDestination, type AclProto, type PortRange } from './policy.js';
export { compilePolicy, CompiledPolicy, type AclNode } from './compile.js';
export { AclFilter, AclVerdict, ACL_VERDICT_NAMES, type AclFilterOptions } from './filter.js';
export { AclCounters } from './counters.js';
export { FlowTable, DEFAULT_CONNTRACK_LIMITS, type ConntrackLimits, type FlowInfo } from './conntrack.js';
export { PacketFlow, FlowKind, readFlow } from './flow.js';
export { FragmentMemo, FRAGMENT_MEMO_TTL_MS } from './fragment-memo.js';
export { parseHujson, HujsonSyntaxError, HujsonDocument, type JsonValue, type JsonObject } from './hujson.js';
export { coarseClock, COARSE_CLOCK_TICK_MS } from './coarse-clock.js';
