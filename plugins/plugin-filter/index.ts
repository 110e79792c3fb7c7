// The plugin-filter feature: in-process filters written by the user as Fastify plugins.
//
//   filter "stamp" { type "plugin"; module "./plugins/header-stamp.mjs"; config { value "v1" } }
//
// The module's default export is a Fastify plugin. Sentinel registers it (encapsulated) on the
// generation's instance with PluginFilterOptions; the plugin calls `opts.filter({ onRequest,
// onResponse, onResponseBody, onComplete, close })` once with the same hooks as any filter
// (src/pipeline/types.ts), and may use the instance as any Fastify plugin would (decorate its own
// context, onClose hooks: they run when the generation is disposed). See examples/plugins/.
import type { Logger } from 'pino';
import type { FastifyInstance } from 'fastify';
import { defineFeature, usesFilterType, type FeatureHost } from '../../src/pipeline/feature.ts';
import type { CompiledConfig } from '../../src/config/compile.ts';
import type { RequestContext, RequestFilter } from '../../src/pipeline/types.ts';
import { createPluginFilter, type PluginFilterHooks } from './filter.ts';
import { loadPluginFilter, pluginFilterSpec, type PluginFilterModule, type PluginFilterSpec } from './loader.ts';
import { PluginFilterProperties } from './schema.ts';

export { PluginFilterProperties } from './schema.ts';
export type { PluginFilterHooks } from './filter.ts';

/** The options a plugin filter's Fastify plugin is registered with. */
export interface PluginFilterOptions {
  /** the filter id */
  readonly id: string;
  /** the filter's `config { }` block, decoded */
  readonly config: Record<string, unknown>;
  /** the bound on each hook call, ms */
  readonly timeoutMs: number;
  /** the failure mode for a request on this route: the filter's own, else the route's */
  failureMode(routeId: string | undefined): 'open' | 'closed';
  /** the route's `policies { timeout-secs }` in ms, when it has one */
  routeTimeoutMs(routeId: string | undefined): number | undefined;
  readonly log: Logger;
  /** defines this filter's hooks; call it exactly once, during registration */
  filter(hooks: PluginFilterHooks): void;
}

function pluginSpecs(config: CompiledConfig): PluginFilterSpec[] {
  return [...config.filters.values()].filter((f) => f.type === 'plugin').map((f) => pluginFilterSpec(f.id, f.config));
}

async function registerOne(app: FastifyInstance, host: FeatureHost, spec: PluginFilterSpec, mod: PluginFilterModule, raw: Record<string, unknown>): Promise<RequestFilter> {
  const { config, services } = host;
  const own = raw['failure-mode'] as 'open' | 'closed' | undefined;
  const timeoutMs = (raw['timeout-ms'] as number | undefined) ?? 1000;
  const failureMode = (routeId: string | undefined) => own ?? (routeId !== undefined ? services.routeFailureMode(routeId) : 'closed');
  const calls = services.metrics.counter('sentinel_plugin_filter_calls_total', 'Plugin filter hook calls by filter, phase and result (ok, blocked, error, timeout)', ['filter', 'phase', 'result'] as const);
  const log = services.log.child({ filter: spec.id });
  let hooks: PluginFilterHooks | undefined;
  const opts: PluginFilterOptions = {
    id: spec.id,
    config: spec.config,
    timeoutMs,
    failureMode,
    routeTimeoutMs: (routeId) => (routeId !== undefined ? config.routesById.get(routeId)?.timeoutMs : undefined),
    log,
    filter(h) {
      if (hooks) throw new Error('filter() called twice');
      hooks = h;
    },
  };
  const where = `filters > filter "${spec.id}" > module "${spec.module}"`;
  const plugin = mod.default as (instance: FastifyInstance, o: PluginFilterOptions, done?: (err?: Error) => void) => unknown;
  // Registered inside a named wrapper so printPlugins() shows which filter it is, and errors name the module.
  const wrapper = async (child: FastifyInstance) => {
    try {
      await (plugin.length >= 3 ? new Promise<void>((res, rej) => void plugin(child, opts, (err) => (err ? rej(err) : res()))) : plugin(child, opts));
    } catch (err) {
      throw new Error(`${where}: registration failed: ${(err as Error).message}`, { cause: err });
    }
  };
  Object.defineProperty(wrapper, 'name', { value: `plugin-filter:${spec.id}` });
  await app.register(wrapper);
  if (!hooks) throw new Error(`${where}: the plugin did not define its filter (call opts.filter({ onRequest, ... }) while registering)`);
  return createPluginFilter(hooks, {
    id: spec.id,
    timeoutMs,
    failureMode: (ctx: RequestContext) => failureMode(ctx.routeId),
    count: (phase, result) => calls.inc({ filter: spec.id, phase, result }),
    log,
  });
}

export const pluginFilterFeature = defineFeature({
  name: 'plugin-filter',
  dependencies: [],
  uses: (config) => usesFilterType(config, 'plugin'),
  filterTypes: { plugin: PluginFilterProperties },
  explainFilter(_config, filter, route) {
    if (filter.type !== 'plugin') return undefined;
    const c = filter.config;
    return { module: pluginFilterSpec(filter.id, c).module, 'timeout-ms': (c['timeout-ms'] as number | undefined) ?? 1000, 'failure-mode': (c['failure-mode'] as string | undefined) ?? route.failureMode };
  },
  async check(config) {
    const errors: string[] = [];
    for (const spec of pluginSpecs(config)) {
      try {
        await loadPluginFilter(spec, config.baseDir);
      } catch (err) {
        errors.push((err as Error).message);
      }
    }
    return errors;
  },
  async register(app, host) {
    const built = new Map<string, RequestFilter>();
    for (const spec of pluginSpecs(host.config)) {
      const mod = await loadPluginFilter(spec, host.config.baseDir);
      built.set(spec.id, await registerOne(app, host, spec, mod, host.config.filters.get(spec.id)!.config));
    }
    host.filterType('plugin', (id) => {
      const f = built.get(id);
      if (!f) throw new Error(`filters > filter "${id}": plugin filter was not loaded`);
      return f;
    });
  },
});

export default pluginFilterFeature;
