// The feature contract: every feature (routing, forwarding, balancing, agents, rate limits ...)
// is a Fastify plugin plus a manifest saying when a config needs it and what it depends on.
//
// A generation (src/server/generation.ts) takes the manifests from the composition root
// (src/features.ts: the only src/ module that imports plugins/), keeps the ones its compiled
// config uses (plus their hard dependencies), and registers them on its own Fastify instance in
// dependency order. fastify-plugin's `dependencies` make avvio refuse a plugin whose
// dependency is not registered before it. Each plugin reads its slice of the compiled config
// from `opts.host`, decorates the instance with its runtime, and contributes filter factories
// and global filters. After `ready()` the generation compiles the per-route filter arrays once:
// requests never look a plugin up.
import fp from 'fastify-plugin';
import type { FastifyInstance, FastifyPluginAsync, FastifyPluginCallback } from 'fastify';
import type { CompiledConfig, CompiledFilter, CompiledRoute, BuiltinHandler, ConfigCompileSteps, ConfigValidators } from '../config/compile.ts';
import type { FilterTypeSchemas, SchemaFragment } from '../config/schema.ts';
import { configLanguage, type ConfigLanguage } from '../config/language.ts';
import type { IncomingMessage } from 'node:http';
import type { FilterFactory, GenerationServices, LocalResponse, RequestContext, RequestFilter, RequestTrace, ResponseSource } from './types.ts';
import type { UpstreamGroup } from '../upstream/group.ts';
import { collectUpstreamPolicies, type UpstreamPolicies } from '../upstream/policies.ts';
import { validateUpstreamBlock } from '../upstream/validate.ts';
import type { ListenerTlsFactory } from '../server/listener-tls.ts';
import type { ForwardResult } from '../server/forwarder.ts';
import type { WsProxyOptions } from '../websocket/proxy.ts';
import type { BuiltinRequest } from '../builtins/handlers.ts';
import type { GatewayStatusInfo } from '../status/report.ts';

/** What a generation hands every feature plugin it registers (the plugin's options). */
export interface FeatureHost {
  readonly config: CompiledConfig;
  readonly services: GenerationServices;
  /** process identity (the builtins report it) */
  readonly instance: { readonly id: string; readonly startedAt: number };
  /**
   * The Fastify instance of the generation this one replaces, while this one is being built
   * (a feature adopts its own runtime's state from it, e.g. upstream target state). Read it
   * with `previousDecoration()`: the previous config may not have used the feature.
   */
  readonly previous: FastifyInstance | undefined;
  /** the factory for `filter "id" { type "<type>" }` (one per type; a second one is an error) */
  filterType(type: string, factory: FilterFactory): void;
  /** a filter that runs before a proxied route's own filters (e.g. the global rate limit) */
  globalFilter(filter: RequestFilter): void;
  /**
   * A filter for one proxied route that runs after the route's own filters (so rate limits and
   * agents see every request) and, on the response, before them (e.g. the cache).
   */
  routeFilter(routeId: string, filter: RequestFilter): void;
  /** released when the generation is disposed (or its build failed), after in-flight requests */
  onDispose(fn: () => Promise<void> | void): void;
  /** the generation's filters once it is built (the status page asks each for its status) */
  filters(): readonly RequestFilter[];
  /** what the gateway process knows: current generation, reload history, bound listeners */
  gateway(): GatewayStatusInfo | undefined;
}

export interface FeatureOptions {
  readonly host: FeatureHost;
}

/** A feature's Fastify plugin (wrapped with fastify-plugin: its decorations reach the generation's instance). */
export type FeaturePlugin = FastifyPluginCallback<FeatureOptions> | FastifyPluginAsync<FeatureOptions>;

export interface FeatureManifest {
  /** the Fastify plugin name (printPlugins(), fastify-plugin `dependencies`) */
  readonly name: string;
  /** features that must be registered before this one whenever this one is (avvio checks) */
  readonly dependencies: readonly string[];
  /** features registered before this one when the config uses them too (ordering only) */
  readonly after?: readonly string[];
  /** whether a compiled config needs this feature */
  uses(config: CompiledConfig): boolean;
  /** the keys this feature adds to the config's blocks (declared in its schema module, src/config/schema.ts SchemaKeys) */
  readonly schema?: SchemaFragment;
  /** KDL schema fragments of the filter types this feature provides (kebab-case keys) */
  readonly filterTypes?: FilterTypeSchemas;
  /** its part of the config compiler: its slices of the compiled routes and config */
  readonly compile?: ConfigCompileSteps;
  /** config checks owned by this feature, run by the config compiler */
  readonly validators?: ConfigValidators;
  /** the upstream policies it provides (balancer, breakers, health checks, retries), src/upstream/policies.ts */
  readonly upstreamPolicies?: Partial<UpstreamPolicies>;
  /** TLS termination for `protocol "https"` listeners (listeners outlive generations: the gateway holds it) */
  readonly listenerTls?: ListenerTlsFactory;
  /**
   * Checks that need I/O (files, modules), run by `sentinel test` for a config that uses the
   * feature; error messages (empty: fine). A generation's build reports the same problems.
   */
  check?(config: CompiledConfig): Promise<string[]>;
  /** `sentinel explain`: what this feature does to the requests `route` serves (nothing: []) */
  explainRoute?(config: CompiledConfig, route: CompiledRoute): ExplainSection[];
  /** `sentinel explain`: the key settings of a filter of a type this feature provides, else undefined */
  explainFilter?(config: CompiledConfig, filter: CompiledFilter, route: CompiledRoute): ExplainSettings | undefined;
  /**
   * Whether a filter of a type this feature provides is shown the frames of a route with
   * `websocket-inspection #true` (without one, frames are relayed raw and compression offers
   * pass): `sentinel explain` and the WebSocket proxy, through frameInspectingFilters
   */
  inspectsWebSocketFrames?(config: CompiledConfig, filter: CompiledFilter): boolean;
  readonly plugin: FeaturePlugin;
}

/** A value `sentinel explain` prints (and puts in its --json output). */
export type ExplainValue = string | number | boolean | null | readonly ExplainValue[] | { readonly [k: string]: ExplainValue };
export type ExplainSettings = Readonly<Record<string, ExplainValue>>;
/** One titled block of `sentinel explain` output, e.g. `load balancing`. */
export interface ExplainSection {
  readonly title: string;
  readonly settings: ExplainSettings;
}

export interface FeatureDefinition extends Omit<FeatureManifest, 'plugin'> {
  register: (app: FastifyInstance, host: FeatureHost) => Promise<void> | void;
}

/** A manifest whose plugin is wrapped with fastify-plugin (`name`, `fastify: '5.x'`, `dependencies`). */
export function defineFeature(def: FeatureDefinition): FeatureManifest {
  const { register, ...manifest } = def;
  const plugin = fp<FeatureOptions>(
    async (app, opts) => {
      await register(app, opts.host);
    },
    { name: def.name, fastify: '5.x', dependencies: [...def.dependencies] },
  );
  return { ...manifest, plugin };
}

/**
 * The manifests' config checks as one set of validators for the config compiler: every
 * validator of every feature runs, in the order given (all problems are reported at once).
 */
export function collectValidators(parts: Iterable<ConfigValidators | undefined>): ConfigValidators {
  const list = [...parts].filter((v): v is ConfigValidators => v !== undefined);
  const upstream = list.flatMap((v) => (v.upstream ? [v.upstream] : []));
  const filter = list.flatMap((v) => (v.filter ? [v.filter] : []));
  const top = list.flatMap((v) => (v.top ? [v.top] : []));
  return {
    upstream: (u, baseDir) => upstream.flatMap((fn) => fn(u, baseDir)),
    filter: (f) => filter.flatMap((fn) => fn(f)),
    top: (raw, baseDir) => top.flatMap((fn) => fn(raw, baseDir)),
  };
}

/** What the composition root hands the core: the features and what their manifests contribute. */
export interface Composition {
  readonly features: readonly FeatureManifest[];
  /** the config language: the core's schemas with the features' keys, filter types and compile steps */
  readonly language: ConfigLanguage;
  /** the core's upstream checks (using the policies) plus every manifest's validators */
  readonly validators: ConfigValidators;
  readonly upstreamPolicies: UpstreamPolicies;
  readonly listenerTls: ListenerTlsFactory;
}

/**
 * Collects the manifests' contributions; throws when a required one is missing or doubled (two
 * features with one name, one config key or filter type, one upstream policy, listener TLS).
 */
export function compose(features: readonly FeatureManifest[]): Composition {
  const names = new Set<string>();
  for (const f of features) {
    if (names.has(f.name)) throw new Error(`two features are named "${f.name}"`);
    names.add(f.name);
  }
  const language = configLanguage(features.map((f) => ({ name: f.name, ...(f.schema ? { schema: f.schema } : {}), ...(f.filterTypes ? { filterTypes: f.filterTypes } : {}), ...(f.compile ? { compile: f.compile } : {}) })));
  const upstreamPolicies = collectUpstreamPolicies(features.map((f) => f.upstreamPolicies));
  const tls = features.flatMap((f) => (f.listenerTls ? [f.listenerTls] : []));
  if (tls.length > 1) throw new Error('more than one feature contributes listener TLS');
  const listenerTls: ListenerTlsFactory =
    tls[0] ??
    (() => {
      throw new Error('no feature contributes listener TLS');
    });
  return {
    features,
    language,
    validators: collectValidators([{ upstream: (u, baseDir) => validateUpstreamBlock(u, baseDir, upstreamPolicies) }, ...features.map((f) => f.validators)]),
    upstreamPolicies,
    listenerTls,
  };
}

/**
 * The features a config uses, with their hard dependencies, in registration order: every
 * feature after its dependencies and after the used features it lists in `after`; otherwise
 * in the order of `all`. Throws on an unknown dependency or a cycle (a programming error).
 */
export function planFeatures(all: readonly FeatureManifest[], config: CompiledConfig): FeatureManifest[] {
  const byName = new Map(all.map((m) => [m.name, m]));
  const wanted = new Set<string>();
  const want = (m: FeatureManifest): void => {
    if (wanted.has(m.name)) return;
    wanted.add(m.name);
    for (const d of m.dependencies) {
      const dep = byName.get(d);
      if (!dep) throw new Error(`feature "${m.name}" depends on unknown feature "${d}"`);
      want(dep);
    }
  };
  for (const m of all) if (m.uses(config)) want(m);
  const order: FeatureManifest[] = [];
  const state = new Map<string, 'visiting' | 'done'>();
  const visit = (m: FeatureManifest, path: string[]): void => {
    const s = state.get(m.name);
    if (s === 'done') return;
    if (s === 'visiting') throw new Error(`feature dependency cycle: ${[...path, m.name].join(' -> ')}`);
    state.set(m.name, 'visiting');
    for (const d of [...m.dependencies, ...(m.after ?? [])]) {
      const dep = byName.get(d);
      if (dep && wanted.has(d)) visit(dep, [...path, m.name]);
    }
    state.set(m.name, 'done');
    order.push(m);
  };
  for (const m of all) if (wanted.has(m.name)) visit(m, []);
  return order;
}

/**
 * The filters of `route` that a feature says are shown its WebSocket frames under
 * `websocket-inspection #true` (inspectsWebSocketFrames); none: the flag has no effect, frames
 * are relayed raw. `sentinel explain` and the generation (which strips compression offers only
 * where frames are inspected) both ask this.
 */
export function frameInspectingFilters(config: CompiledConfig, features: readonly FeatureManifest[], route: CompiledRoute): string[] {
  return route.filters.filter((id) => {
    const filter = config.filters.get(id);
    return filter !== undefined && features.some((feature) => feature.inspectsWebSocketFrames?.(config, filter) === true);
  });
}

/** A decoration of the previous generation's instance, when it has one. */
export function previousDecoration<T>(host: FeatureHost, name: string): T | undefined {
  const p = host.previous;
  return p && p.hasDecorator(name) ? p.getDecorator<T>(name) : undefined;
}

// Decorations the core itself reads once a generation is built. Features provide them; the
// core declares their shape so it never imports a feature.

/** `forwarding`: the upstream groups of the generation and the forwarder. */
export interface ForwardingRuntime {
  readonly groups: ReadonlyMap<string, UpstreamGroup>;
  /** per route: its upstream group as seen by that route (route-bound circuit breakers) */
  readonly routeGroups: ReadonlyMap<string, UpstreamGroup>;
}

/** `routeTable`: the compiled routes and each listener's default route. */
export interface RouteTable {
  readonly routes: readonly CompiledRoute[];
  readonly defaultRoutes: ReadonlyMap<string, CompiledRoute>;
}

/** `builtins`: answers a `builtin-handler` route. */
export interface BuiltinsRuntime {
  run(handler: BuiltinHandler, traceId: string, req: BuiltinRequest): Promise<LocalResponse>;
}

/** `cache`: what the cache-purge and cache-stats builtins ask of the HTTP cache. */
export interface CacheAdminRuntime {
  /** the counters and size the cache-stats builtin and the status page show */
  stats(): CacheStats;
  statsResponse(traceId: string): LocalResponse;
  /** `pattern`: a normalised path (and query), a glob when `wildcard`; `host` limits it to one host */
  purgeResponse(pattern: string, wildcard: boolean, host: string | undefined, traceId: string): Promise<{ response: LocalResponse; purged: number }>;
}

export interface CacheStats {
  hits: number;
  misses: number;
  stores: number;
  evictions: number;
  hit_ratio: number;
  stale_served: number;
  purges: number;
  coalesced_waits: number;
  entries: number;
  size_bytes: number;
  backend: string;
  /** per storage tier (hybrid: memory and disk) */
  tiers: Partial<Record<'memory' | 'disk', { entries: number; bytes: number }>>;
}

/** `staticFiles`: answers the routes that serve files (`static-files { }`) instead of an upstream. */
export interface StaticFilesRuntime {
  /** whether this route is served from files */
  serves(routeId: string): boolean;
  /** the response for one admitted request (relayed through the route's response filters) */
  respond(ctx: RequestContext, routeId: string): Promise<ResponseSource>;
}

/** `websocket`: proxies an admitted upgrade (only registered when a route allows WebSocket). */
export interface WebSocketRuntime {
  proxy(opts: WsProxyOptions): Promise<ForwardResult>;
}

/** `tracing`: opens the server span of each request (only registered when tracing is on). */
export interface TracingRuntime {
  /**
   * The request's trace when it is sampled (the client's `traceparent`/`tracestate` are its
   * parent; `startTime` is the performance.now() of arrival); when it is not, only the
   * `traceparent` the next hops get, `00-<trace id>-<span id>-00`: an unsampled request carries
   * no trace object (docs/tracing.md "Session 19").
   */
  start(req: IncomingMessage, method: string, path: string, startTime: number): RequestTrace | string;
  /** called once the route is known: names the server span `METHOD route` and sets http.route */
  routed(trace: RequestTrace, route: CompiledRoute): void;
}

/** The decoration names the core reads. */
export const DECORATION = {
  forwarding: 'forwarding',
  routeTable: 'routeTable',
  builtins: 'builtins',
  websocket: 'websocket',
  cache: 'cache',
  tracing: 'tracing',
  staticFiles: 'staticFiles',
} as const;

/** Whether any `filter "id" { type "<type>" }` of the config has this type (a common `uses`). */
export function usesFilterType(config: CompiledConfig, type: string): boolean {
  for (const f of config.filters.values()) if (f.type === type) return true;
  return false;
}
