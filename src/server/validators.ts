// Config checks that need the feature plugins (kept out of src/config to avoid import cycles):
// load-balancing names and upstream policies, rate-limit keys and backends, agent blocks.
import type { Diagnostic } from '../config/diagnostics.ts';
import type { ConfigValidators } from '../config/compile.ts';
import { validateUpstreamPolicies } from '../upstream/group.ts';
import { validateRateLimitFilter, validateRateLimits } from '../../plugins/rate-limit/index.ts';
import { validateAgents, type AgentBlock } from '../../plugins/agents/index.ts';
import { validateTracing } from '../../plugins/tracing/settings.ts';

export const pluginValidators: ConfigValidators = {
  upstream: (u, baseDir) => validateUpstreamPolicies(u, baseDir),
  filter: (f) => (f.type === 'rate-limit' ? validateRateLimitFilter(f.id, f.config) : []),
  top: (raw, baseDir): Diagnostic[] => [
    ...validateRateLimits(raw['rate-limits']),
    ...validateTracing(raw.observability?.tracing),
    ...validateAgents((raw.agents ?? []) as AgentBlock[], baseDir).map((message) => ({ severity: 'error' as const, path: 'agents', message })),
  ],
};
