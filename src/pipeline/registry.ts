// Filter type -> factory. Feature plugins export their factory; the generation builds one
// RequestFilter per `filter "id"` from here. A type without a factory is reported at config
// compile time ("not implemented yet") and contributes no filter.
import type { FilterFactory, GenerationServices, RequestFilter } from './types.ts';
import type { CompiledConfig, HeaderOpsConfig } from '../config/compile.ts';
import { applyHeaderOps } from '../server/headers.ts';
import { createRateLimitFilter, createGlobalRateLimit } from '../../plugins/rate-limit/index.ts';
import { createAgentFilterFactory, type AgentBlock } from '../../plugins/agents/index.ts';

/** `filter type "headers" { phase; set {}; add {}; remove ... }` */
export const createHeadersFilter: FilterFactory = (id, config): RequestFilter => {
  const ops: HeaderOpsConfig = {
    rename: [],
    set: Object.entries((config.set as Record<string, string> | undefined) ?? {}),
    add: Object.entries((config.add as Record<string, string> | undefined) ?? {}),
    remove: (config.remove as string[] | undefined) ?? [],
  };
  const phase = (config.phase as string | undefined) ?? 'request';
  const onRequest = phase === 'request' || phase === 'both';
  const onResponse = phase === 'response' || phase === 'both';
  return {
    id,
    type: 'headers',
    ...(onRequest
      ? {
          onRequest(ctx) {
            applyHeaderOps(ctx.upstreamHeaders, ops);
            return undefined;
          },
        }
      : {}),
    ...(onResponse
      ? {
          onResponse(_ctx, res) {
            applyHeaderOps(res.headers, ops);
          },
        }
      : {}),
  };
};

/** The factories for one generation (the agent factory holds that generation's agent clients). */
export function filterFactories(config: CompiledConfig): Record<string, FilterFactory> {
  return {
    headers: createHeadersFilter,
    'rate-limit': createRateLimitFilter,
    agent: createAgentFilterFactory({
      agents: (config.raw.agents ?? []) as AgentBlock[],
      waf: config.raw.waf,
      limits: config.limits,
      routeFilters: (routeId) => config.routesById.get(routeId)?.filters,
      baseDir: config.baseDir,
    }),
  };
}

/** Filters that run on every route before the route's own (the top-level `rate-limits` block). */
export function globalFilters(config: CompiledConfig, services: GenerationServices): RequestFilter[] {
  const global = createGlobalRateLimit(config.raw['rate-limits'], services);
  return global ? [global] : [];
}
