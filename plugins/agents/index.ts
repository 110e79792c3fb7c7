// Agents feature: the factory the core calls for every `filter "id" { type "agent" }` of a
// generation (registered by agentsFeature below, see docs/agents.md).
//
// Agent clients are created on first use and shared with the next generation when the agent
// block did not change (manager.ts); closing the generation's filters releases them.
import type { FilterFactory, GenerationServices, RequestFilter } from '../../src/pipeline/types.ts';
import { defineAgent, defineAgentFilter, defineBodyPolicy, inspectsUnknownTypes, overLimitAnswer, sendsRequestBodies, type AgentBlock, type AgentDefinition, type AgentFilterSettings, type BodyPolicy, type LimitsLike } from './definition.ts';
import { defineFeature, usesFilterType, type ExplainSettings } from '../../src/pipeline/feature.ts';
import type { CompiledConfig } from '../../src/config/compile.ts';
import { AgentFilterProperties, AgentsConfigKeys } from './schema.ts';
import { AgentFilter, type AgentGeneration } from './filter.ts';
import { AgentManager } from './manager.ts';
import { agentsCompile } from './config-checks.ts';
import type { WafConfig } from './schema.ts';

export { defineAgent, defineAgentFilter, defineBodyPolicy } from './definition.ts';
export type { AgentBlock, AgentDefinition, AgentFilterSettings, BodyPolicy } from './definition.ts';
export { AgentSchema, AgentFilterProperties, WafSchema, type AgentConfig, type WafConfig } from './schema.ts';

export interface AgentPluginOptions {
  /** decoded `agents { agent "id" {} }` blocks */
  agents: readonly AgentBlock[];
  waf: WafConfig | undefined;
  limits: LimitsLike | undefined;
  /** a route's filter ids in order (enables parallel chains); without it each agent filter runs alone */
  routeFilters?: (routeId: string) => readonly string[] | undefined;
  /** relative unix-socket paths resolve against this (the config file's directory) */
  baseDir?: string;
  /** the body-inspection feature's policy, read when the first filter is built (default: from `waf` and `limits`) */
  bodyPolicy?: () => BodyPolicy | undefined;
}

/** Semantic problems in the agents/waf blocks (for the core's config validation). */
export function validateAgents(agents: readonly AgentBlock[], baseDir?: string): string[] {
  return agents.flatMap((a) => defineAgent(a, baseDir).errors);
}

export function createAgentFilterFactory(opts: AgentPluginOptions): FilterFactory {
  const defs = new Map<string, AgentDefinition>();
  for (const a of opts.agents) {
    const { definition, errors } = defineAgent(a, opts.baseDir);
    if (errors.length > 0) throw new Error(errors.join('\n'));
    defs.set(a.id, definition);
  }
  const defaultBody = defineBodyPolicy(opts.waf, opts.limits);
  let gen: AgentGeneration | undefined;
  let open = 0;

  return (id: string, config: Record<string, unknown>, services: GenerationServices): RequestFilter => {
    gen ??= {
      manager: new AgentManager(defs, services.metrics, services.audit),
      body: opts.bodyPolicy?.() ?? defaultBody,
      services,
      filters: new Map(),
      routeFilters: opts.routeFilters,
    };
    const g = gen;
    const settings = defineAgentFilter(id, config);
    if (!defs.has(settings.agent)) throw new Error(`filters > filter "${id}" > agent: unknown agent "${settings.agent}"`);
    g.filters.set(id, settings);
    g.manager.client(settings.agent); // connect now, not on the first request
    open += 1;
    let closed = false;
    return new AgentFilter(id, settings, g, async () => {
      if (closed) return;
      closed = true;
      open -= 1;
      if (open === 0) await g.manager.release();
    });
  };
}

/** Name of the body-inspection feature's decoration (its BodyPolicy). */
export const BODY_POLICY_DECORATION = 'bodyInspection';

/**
 * `sentinel explain`: what a request body gets from a filter that sends bodies to its agent, as
 * filter.ts decides it: over the agent's limit (413 or forwarded uninspected) and outside the
 * content-type allowlist (sent to the agent or forwarded without it); "by failure-mode" when the
 * filter does not say. Nothing for a filter whose agent never sees a request body.
 */
function requestBodyAnswers(config: CompiledConfig, s: AgentFilterSettings, def: AgentDefinition, failureMode: 'open' | 'closed'): ExplainSettings {
  const policy = defineBodyPolicy(config.raw.waf, config.limits);
  if (!policy.enabled || !sendsRequestBodies(s, def)) return {};
  const by = (said: unknown) => (said === undefined ? ` (by failure-mode ${failureMode})` : '');
  const limit = s.maxBodyBytes ?? def.maxRequestBodyBytes ?? policy.maxInspectionBytes;
  const over = overLimitAnswer(s, failureMode) === 'reject' ? 'reject: 413' : 'forward: uninspected';
  const unknown = inspectsUnknownTypes(s, failureMode) ? 'sent to the agent' : 'forwarded without the agent';
  return {
    'body-over-limit': `${over} over ${limit} bytes${by(s.bodyOverLimit)}`,
    'unknown-types': `${unknown}${by(s.inspectUnknownTypes)}`,
  };
}

/**
 * The agents feature: `filter "id" { type "agent" }` backed by the `agents { agent "id" {} }`
 * blocks. Registered when a filter has type "agent". The request/response body policy comes
 * from the body-inspection feature (registered after this one when an agent reads bodies).
 */
export const agentsFeature = defineFeature({
  name: 'agents',
  dependencies: [],
  uses: (config) => usesFilterType(config, 'agent'),
  schema: AgentsConfigKeys,
  filterTypes: { agent: AgentFilterProperties },
  compile: agentsCompile,
  explainFilter(config, filter, route) {
    if (filter.type !== 'agent') return undefined;
    const s = defineAgentFilter(filter.id, filter.config);
    const block = ((config.raw.agents ?? []) as AgentBlock[]).find((a) => a.id === s.agent);
    const def = block ? defineAgent(block, config.baseDir).definition : undefined;
    const failureMode = s.failureMode ?? route.failureMode;
    return {
      agent: s.agent,
      transport: def?.socketPath ? `unix-socket ${def.socketPath}` : null,
      events: def ? [...def.events] : [],
      phase: s.phase ?? 'by events',
      'timeout-ms': s.timeoutMs ?? def?.timeoutMs ?? 1000,
      // the filter's own failure-mode, else the route's (filter.ts failureMode)
      'failure-mode': failureMode,
      ...(s.inspectBody !== undefined ? { 'inspect-body': s.inspectBody } : {}),
      ...(def ? requestBodyAnswers(config, s, def, failureMode) : {}),
      ...(def ? { 'circuit-breaker': `${def.breaker.failureThreshold} failures -> open ${def.breaker.openMs / 1000} s` } : {}),
    };
  },
  inspectsWebSocketFrames(config, filter) {
    // as AgentFilter.webSocketInspector: the route's agent filters whose agent subscribes to websocket_frame
    if (filter.type !== 'agent') return false;
    const s = defineAgentFilter(filter.id, filter.config);
    const block = ((config.raw.agents ?? []) as AgentBlock[]).find((a) => a.id === s.agent);
    return block !== undefined && defineAgent(block, config.baseDir).definition.events.has('websocket_frame');
  },
  explainRoute(config, route) {
    // the WAF is an agent (sentinel-waf) with its own settings: nothing of the waf block but
    // body-inspection reaches it (config-checks.ts warns), so the section says so
    const waf = config.raw.waf;
    if (!waf || !route.filters.some((id) => config.filters.get(id)?.type === 'agent')) return [];
    return [{ title: 'waf block (not acted on: sentinel-waf takes these from its flags or its agent config { })', settings: { engine: waf.engine ?? 'coraza', mode: waf.mode ?? 'prevention', 'paranoia-level': waf.ruleset?.['paranoia-level'] ?? 1, 'anomaly-threshold': waf.ruleset?.['anomaly-threshold'] ?? 5 } }];
  },
  validators: {
    top: (raw, baseDir) => validateAgents((raw.agents ?? []) as AgentBlock[], baseDir).map((message) => ({ severity: 'error' as const, path: 'agents', message })),
  },
  register(app, host) {
    const { config } = host;
    const filterFactory = createAgentFilterFactory({
      agents: (config.raw.agents ?? []) as AgentBlock[],
      waf: config.raw.waf,
      limits: config.limits,
      routeFilters: (routeId) => config.routesById.get(routeId)?.filters,
      baseDir: config.baseDir,
      bodyPolicy: () => (app.hasDecorator(BODY_POLICY_DECORATION) ? app.getDecorator<BodyPolicy>(BODY_POLICY_DECORATION) : undefined),
    });
    host.filterType('agent', filterFactory);
    app.decorate('agents', { filterFactory });
  },
});

export default agentsFeature;
