// Raw decoded config -> CompiledConfig: defaults applied, durations in ms, routes compiled and
// sorted, cross-references checked (route -> upstream, route -> filter,
// upstream needs targets or discovery; a feature's own references, e.g. filter -> agent, in its
// compile step). The result is frozen and shared by one generation.
import { Type, type TSchema } from 'typebox';
import type { KdlNode as Node } from './kdl/types.ts';
import { Decoder } from './decode.ts';
import { ConfigError, didYouMean, type Diagnostic, type SourceLocation } from './diagnostics.ts';
import { locationOf, type IncludeLookup } from './kdl-loader.ts';
import {
  filterSchema,
  type RawConfig,
  type RawRoute,
  type RawUpstream,
  type RawLimits,
  type RawSystem,
  type RawObservability,
  type RawListener,
} from './schema.ts';
import { parseSize } from './types-helpers.ts';
import { collectTargets } from '../upstream/address.ts';
import { compileTrusted, isTrusted } from '../server/trusted-proxies.ts';
import { DEFAULT_TRUSTED_PROXY_HEADERS, GATEWAY_OWNED, isTrustableProxyHeader } from '../server/headers.ts';
import { reportUnimplemented } from './unimplemented.ts';
import { allOf, compileChecks, compileHost, compileRouteRegex, priorityValue, RouteYield, specificity, sortRoutes, windowsKeyPathOf, type ConditionCheck, type MatchInput, type RouteConditions } from '../routing/match.ts';
import type { ConfigLanguage } from './language.ts';
import { compileAllowedOrigins } from '../websocket/origin.ts';
import { WS_MAX_FRAME_BYTES } from '../websocket/messages.ts';

export const BUILTIN_HANDLERS = ['status', 'health', 'metrics', 'not-found', 'config', 'upstreams', 'cache-purge', 'cache-stats', 'status-page'] as const;
export type BuiltinHandler = (typeof BUILTIN_HANDLERS)[number];
/**
 * Builtins that show gateway state (config, targets, counters) or change it (cache purge): served
 * only on listeners bound to a loopback address, or to the clients a route's `allow-from` names.
 */
export const STATE_REVEALING_BUILTINS: readonly BuiltinHandler[] = ['config', 'upstreams', 'metrics', 'cache-purge', 'cache-stats', 'status-page'];
/** Sentinel's filter types; the composition's (its features' `filterTypes`) are the ones implemented. */
const SENTINEL_FILTER_TYPES = ['rate-limit', 'agent', 'headers', 'plugin', 'compress', 'cors', 'timeout', 'log', 'geo', 'url-rewrite'];
export const SUPPORTED_SCHEMA_VERSION = '1.0';

export interface HeaderOpsConfig {
  rename: [string, string][];
  set: [string, string][];
  add: [string, string][];
  remove: string[];
}

// What features add to a compiled route / the compiled config: declared empty here, and by each
// feature with its own types (declaration merging, as for the schema keys in schema.ts); the
// values come from the features' compile steps (ConfigCompileSteps).
/* eslint-disable @typescript-eslint/no-empty-object-type */
export interface CompiledRouteSlices {}
export interface CompiledConfigSlices {}
/* eslint-enable @typescript-eslint/no-empty-object-type */

export interface CompiledRoute extends CompiledRouteSlices {
  readonly id: string;
  readonly priority: number;
  readonly specificity: number;
  readonly test: (input: MatchInput) => boolean;
  /** the `matches` conditions in evaluation order; `test` is exactly these AND-ed (explain walks them) */
  readonly conditions: readonly ConditionCheck[];
  /** `path-spelling "windows"`: the request path as the route reads it, for rate-limit path keys (RequestContext.keyPath) */
  readonly windowsKeyPath: ((path: string) => string) | undefined;
  readonly upstream: string | undefined;
  readonly builtin: BuiltinHandler | undefined;
  readonly filters: readonly string[];
  readonly serviceType: string;
  readonly websocket: boolean;
  /** `websocket-allowed-origins`, normalised (src/websocket/origin.ts); undefined = Origin unchecked */
  readonly websocketOrigins: ReadonlySet<string> | undefined;
  readonly failureMode: 'open' | 'closed';
  readonly requestHeaders: HeaderOpsConfig | undefined;
  readonly responseHeaders: HeaderOpsConfig | undefined;
  /** route policies timeout-secs, ms */
  readonly timeoutMs: number | undefined;
  readonly maxBodyBytes: number | undefined;
  /** route policies forward-method-override, upper-cased; undefined = the override headers are removed */
  readonly methodOverrides: ReadonlySet<string> | undefined;
  /** route policies get-body: whether a body on GET, HEAD, DELETE, OPTIONS … (bodylessMethod) is forwarded (default refused, 400) */
  readonly getBody: 'refuse' | 'forward';
  /** route policies max-body-buffer-bytes (replaces the limits' one for this route); undefined = the limits' */
  readonly bodyBufferBytes: number | undefined;
  /** listener ids serving this route; undefined = every listener */
  readonly listeners: readonly string[] | undefined;
  /** `allow-from`: true when the client address may use this route; undefined = anyone */
  readonly allowFrom: ((clientIp: string) => boolean) | undefined;
  readonly raw: RawRoute;
}

export interface CompiledListener {
  readonly id: string;
  readonly host: string;
  readonly port: number;
  readonly protocol: 'http' | 'https' | 'h2' | 'h3';
  /** the `tls { }` block (the tls feature's key) */
  readonly tls: RawListener['tls'];
  readonly defaultRoute: string | undefined;
  readonly requestTimeoutMs: number;
  readonly keepAliveTimeoutMs: number;
  readonly maxConcurrentStreams: number;
  readonly keepAliveMaxRequests: number | undefined;
  /** serve /_/health and /_/ready on this listener */
  readonly probes: boolean;
  /** bound to 127.0.0.0/8, ::1 or localhost: only this host can connect */
  readonly loopback: boolean;
}

export interface CompiledFilter {
  readonly id: string;
  readonly type: string;
  readonly config: Record<string, unknown>;
  /** where a filter the compiler made from another block was written (diagnostics name it, not `filters`) */
  readonly origin?: { readonly path: string; readonly keys: Readonly<Record<string, string>> };
}

export interface CompiledConfig extends CompiledConfigSlices {
  readonly file: string | undefined;
  /** the config file and every file it includes, as given (mounted paths), in load order */
  readonly files: readonly string[];
  /** the folders the include globs looked in, with the names they were after (auto-reload watches them) */
  readonly includeLookups: readonly IncludeLookup[];
  readonly baseDir: string;
  readonly raw: RawConfig;
  readonly system: Required<Pick<RawSystem, 'worker-threads' | 'max-connections' | 'graceful-shutdown-timeout-secs' | 'trace-id-format' | 'auto-reload'>> & RawSystem;
  readonly listeners: readonly CompiledListener[];
  readonly routes: readonly CompiledRoute[];
  readonly routesById: ReadonlyMap<string, CompiledRoute>;
  /** per listener id: the sorted routes it serves (a route's `listeners` key narrows it) */
  readonly routesByListener: ReadonlyMap<string, readonly CompiledRoute[]>;
  readonly upstreams: ReadonlyMap<string, RawUpstream>;
  readonly filters: ReadonlyMap<string, CompiledFilter>;
  readonly limits: Required<Pick<RawLimits, 'max-header-size-bytes' | 'max-header-count' | 'max-body-size-bytes'>> & RawLimits;
  readonly observability: RawObservability;
  /** CIDRs / addresses whose X-Forwarded-For is trusted */
  readonly trustedProxies: readonly string[];
  /** the identity headers a trusted proxy's value is kept for (lower-case; docs/security.md "Identity headers") */
  readonly trustedProxyHeaders: ReadonlySet<string>;
  readonly warnings: readonly Diagnostic[];
  /** the compile steps it was compiled with (the config views ask them for the features' entries) */
  readonly steps: readonly ConfigCompileSteps[];
}

export function parseAddress(addr: string): { host: string; port: number } | undefined {
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d+)$/.exec(addr.trim());
  if (!m) return undefined;
  const port = Number(m[3]);
  if (port > 65535) return undefined;
  return { host: m[1] ?? (m[2] || '0.0.0.0'), port };
}

/** A bind address only this host can reach. */
export function isLoopbackHost(host: string): boolean {
  const h = host.toLowerCase();
  return h === 'localhost' || h === '::1' || /^127\.\d+\.\d+\.\d+$/.test(h) || /^::ffff:127\./.test(h);
}

type RawHeaderOps = { rename?: Record<string, string>; set?: Record<string, string>; add?: Record<string, string>; remove?: string[] };

/**
 * A route's header policy; setting, adding or renaming to a framing or connection-specific header
 * is an error (the gateway writes those itself; on HTTP/2 Node refuses them and the answer was a
 * 500). Removing one is allowed (a no-op: they are never relayed).
 */
function headerOps(raw: RawHeaderOps | undefined, path: string, d: Decoder): HeaderOpsConfig | undefined {
  if (!raw) return undefined;
  const targets = [...Object.keys(raw.set ?? {}), ...Object.keys(raw.add ?? {}), ...Object.values(raw.rename ?? {})];
  for (const name of targets) {
    if (GATEWAY_OWNED.has(name.toLowerCase())) d.error(path, `"${name}" is a framing or connection-specific header the gateway writes itself; a header policy may only remove it`);
  }
  return {
    rename: Object.entries(raw.rename ?? {}),
    set: Object.entries(raw.set ?? {}),
    add: Object.entries(raw.add ?? {}),
    remove: raw.remove ?? [],
  };
}

/** Checks owned by feature plugins, run as part of compilation so every error is reported at once. */
export interface ConfigValidators {
  /** error messages for one upstream block */
  upstream?: (u: RawUpstream, baseDir: string) => string[];
  /** diagnostics for one decoded filter */
  filter?: (f: CompiledFilter) => Diagnostic[];
  /** diagnostics for top-level blocks (rate-limits, agents, ...) */
  top?: (raw: RawConfig, baseDir: string) => Diagnostic[];
}

/** Where a route compile step is, and what the core has decided about the route already. */
export interface RouteCompileContext {
  /** e.g. `routes > route "api"` */
  readonly path: string;
  readonly baseDir: string;
  /** push errors and warnings here */
  readonly diagnostics: Diagnostic[];
  readonly builtin: BuiltinHandler | undefined;
  /** the service type of the feature that answers this route itself (`localService`), if one does */
  readonly localService: string | undefined;
}

/** What a config compile step gets besides the raw config and the compiled routes. */
export interface ConfigCompileContext {
  readonly baseDir: string;
  /** push errors and warnings here */
  readonly diagnostics: Diagnostic[];
  /** the decoded filters (a feature checks the references of its filter types, e.g. agent ids) */
  readonly filters: ReadonlyMap<string, CompiledFilter>;
}

/** A feature's part of the config compiler (its manifest's `compile`). */
export interface ConfigCompileSteps {
  /**
   * The service type this feature answers a route with itself (e.g. `static` for a route with
   * `static-files { }`): such a route needs no upstream. undefined: the feature does not.
   */
  localService?(raw: RawRoute): string | undefined;
  /** the feature's slice of one compiled route; return every key, undefined ones too (one shape for all routes) */
  route?(raw: RawRoute, ctx: RouteCompileContext): Partial<CompiledRouteSlices>;
  /** the feature's slice of the compiled config, after the routes */
  config?(raw: RawConfig, routes: readonly CompiledRoute[], ctx: ConfigCompileContext): Partial<CompiledConfigSlices>;
  /** the feature's top-level entries in the config's JSON view (`sentinel test --dump`, golden tests; src/config/view.ts) */
  view?(config: CompiledConfig): Record<string, unknown>;
  /** the feature's entries in one route's view */
  routeView?(route: CompiledRoute): Record<string, unknown>;
  /** the feature's top-level entries in the `/config` builtin's summary (src/builtins/handlers.ts configDump) */
  dump?(config: CompiledConfig): Record<string, unknown>;
}

export interface CompileOptions {
  file?: string;
  /** the files the config was read from: `file` and its includes, in load order (auto-reload watches them) */
  files?: readonly string[];
  includeLookups?: readonly IncludeLookup[];
  baseDir: string;
  validators?: ConfigValidators;
  /** the composition's config language (src/features.ts COMPOSITION.language) */
  language: ConfigLanguage;
}

/** Methods an override header may name (RFC 9110 §9.1: a token); not the overridden POST itself, nor CONNECT. */
function methodOverrideList(list: string[] | undefined, path: string, d: Decoder, node: Node | undefined): ReadonlySet<string> | undefined {
  if (list === undefined) return undefined;
  if (list.length === 0) d.error(path, 'expected one or more methods, e.g. forward-method-override "PUT" "PATCH" "DELETE"', node);
  const out = new Set<string>();
  for (const m of list) {
    const u = m.toUpperCase();
    if (!/^[A-Z][A-Z0-9_-]{0,31}$/.test(u)) d.error(path, `"${m}" is not a method name`, node);
    else if (u === 'POST' || u === 'CONNECT') d.error(path, `"${m}" cannot be an override: ${u === 'POST' ? 'the headers are only forwarded on POST' : 'the gateway is not a forward proxy'}`, node);
    else out.add(u);
  }
  return out;
}

/**
 * Sentinel's legacy per-route limit, `policies { rate-limit { requests-per-second; burst; key } }`,
 * as a rate-limit filter of the route's own (id `route:<id>:rate-limit`, local store, 429): a config
 * written for Sentinel keeps its limit. Returns route id -> filter id.
 */
function policyRateLimits(routes: readonly RawRoute[], filters: Map<string, CompiledFilter>, nodes: Node[], d: Decoder): Map<string, string> {
  const out = new Map<string, string>();
  for (const r of routes) {
    const limit = r.policies?.['rate-limit'];
    if (limit === undefined) continue;
    const path = `routes > route "${r.id}" > policies > rate-limit`;
    const node = policyNode(nodes, r.id, 'rate-limit');
    const rps = limit['requests-per-second'];
    if (rps === undefined || !(rps > 0)) {
      d.error(path, rps === undefined ? 'missing "requests-per-second" (requests a second, > 0)' : `requests-per-second must be > 0, got ${rps}`, node);
      continue;
    }
    if (limit.burst !== undefined && limit.burst < 0) d.error(`${path} > burst`, `must be >= 0, got ${limit.burst}`, node);
    const id = `route:${r.id}:rate-limit`;
    if (filters.has(id)) {
      d.error(path, `the route's limit is the filter "${id}", and a filter of that id is also written: rename that filter`, node);
      continue;
    }
    const config: Record<string, unknown> = { 'max-rps': rps, burst: limit.burst ?? 10, key: limit.key ?? 'client-ip' };
    filters.set(id, { id, type: 'rate-limit', config, origin: { path, keys: { 'max-rps': 'requests-per-second' } } });
    out.set(r.id, id);
  }
  return out;
}

/** A validator's diagnostic about a filter the compiler made, named where the operator wrote it. */
function atOrigin(x: Diagnostic, f: CompiledFilter): Diagnostic {
  const prefix = `filters > filter "${f.id}"`;
  if (!f.origin || !x.path.startsWith(prefix)) return x;
  const rest = x.path.slice(prefix.length).replace(/^ > ([\w-]+)/, (_m, k: string) => ` > ${f.origin!.keys[k] ?? k}`);
  return { ...x, path: f.origin.path + rest };
}

/** `route "id" { policies { <key> } }`'s node, for a diagnostic's file:line. */
function policyNode(nodes: Node[], id: string, key: string): Node | undefined {
  return routeNode(nodes, id)?.children.find((c) => c.name === 'policies')?.children.find((c) => c.name === key);
}

/** The `route "id" { }` node of a route (for diagnostics that point into it). */
function routeNode(nodes: Node[], id: string): Node | undefined {
  for (const n of nodes) if (n.name === 'routes') for (const c of n.children) if (c.name === 'route' && c.values[0] === id) return c;
  return undefined;
}

/** The source location of the node a diagnostic path names (`routes > route "api" > matches`), as deep as it resolves. */
function locateByPath(nodes: Node[], path: string): SourceLocation | undefined {
  let found: Node | undefined;
  let level = nodes;
  for (const segment of path.split(' > ')) {
    const m = /^([^\s"]+)(?: "(.*)")?$/.exec(segment.trim());
    if (!m) break;
    const next = level.find((n) => n.name === m[1] && (m[2] === undefined || n.values[0] === m[2]));
    if (!next) break;
    found = next;
    level = next.children;
  }
  return found ? locationOf(found) : undefined;
}

/** Decodes and compiles a list of top-level KDL nodes. Throws ConfigError when anything is wrong. */
export function compileConfig(nodes: Node[], opts: CompileOptions, inherited: Diagnostic[] = []): CompiledConfig {
  const d = new Decoder();
  d.diagnostics.push(...inherited);
  // Filters have a per-type schema, so they are decoded separately.
  const filterNodes = nodes.filter((n) => n.name === 'filters');
  const rest = nodes.filter((n) => n.name !== 'filters');
  const { schemas, filterTypes, steps } = opts.language;
  const raw = d.decodeObject(schemas.config, { values: [], properties: {}, children: rest }, '') as unknown as RawConfig;
  const knownFilterTypes = [...new Set([...SENTINEL_FILTER_TYPES, ...Object.keys(filterTypes)])];

  const filters = new Map<string, CompiledFilter>();
  for (const fn of filterNodes) {
    if (fn.values.length > 0) d.surplus('filters', fn.values, 0, 'write filter "<id>" { ... } inside the block', fn);
    for (const c of fn.children) {
      const id = c.values[0];
      const path = `filters > filter${typeof id === 'string' ? ` "${id}"` : ''}`;
      if (c.name !== 'filter') {
        d.error('filters', `unexpected "${c.name}": expected filter "<id>" { type "..." }`, c);
        continue;
      }
      if (typeof id !== 'string') {
        d.error(path, 'expected an id string: filter "<id>" { type "..." }', c);
        continue;
      }
      if (c.values.length > 1) d.surplus(path, c.values, 1, 'filter takes one argument, its id', c);
      const typeNode = c.children.find((x) => x.name === 'type');
      const type = typeNode?.values[0];
      if (typeof type !== 'string') {
        d.error(path, `missing "type" (one of ${knownFilterTypes.join(', ')})`, c);
        continue;
      }
      if (!knownFilterTypes.includes(type)) {
        d.error(path, `unknown filter type "${type}"${didYouMean(type, knownFilterTypes)}; expected one of ${knownFilterTypes.join(', ')}`, typeNode);
        continue;
      }
      // geo is access control: a geo filter that lets everyone through must not load
      if (type === 'geo') d.error(path, 'filter type "geo" is not implemented: it would let every country through; remove it or block at another layer', typeNode);
      else if (!filterTypes[type]) d.warn(path, `filter type "${type}" is not implemented yet; the filter does nothing`, c);
      const schema: TSchema = filterTypes[type] ? filterSchema(filterTypes, type) : Type.Unknown();
      const config = filterTypes[type] ? d.decodeObject(schema, { values: [], properties: c.properties, children: c.children }, path, c) : {};
      if (filters.has(id)) d.error(path, `duplicate filter id "${id}"`, c);
      filters.set(id, { id, type, config });
    }
  }

  const policyLimits = policyRateLimits((raw.routes ?? []) as RawRoute[], filters, nodes, d);

  // Types and required keys must hold before cross-references can be checked.
  if (d.diagnostics.some((x) => x.severity === 'error')) throw new ConfigError(d.diagnostics);

  // schema-version
  const sv = raw['schema-version'];
  if (sv !== undefined) {
    const [maj, min] = sv.split('.').map(Number);
    if (!Number.isFinite(maj) || !Number.isFinite(min)) d.error('schema-version', `malformed version "${sv}" (expected e.g. "1.0")`);
    else if (maj! < 1) d.error('schema-version', `version ${sv} is older than the minimum ${SUPPORTED_SCHEMA_VERSION}`);
    // a newer schema may change what existing keys mean: refuse it rather than half-read it
    else if (maj! > 1 || min! > 0) d.error('schema-version', `version ${sv} is newer than ${SUPPORTED_SCHEMA_VERSION}, the newest this gateway (sentinel-gateway) reads; upgrade the gateway, or write a ${SUPPORTED_SCHEMA_VERSION} config`, nodes.find((n) => n.name === 'schema-version' || n.name === 'version'));
  }

  // system / server
  if (raw.server && !raw.system) d.deprecated('server', 'the "server" block is deprecated; rename it to "system"', nodes.find((n) => n.name === 'server'), { kind: 'rename-node', from: 'server', to: 'system' });
  if (raw.server && raw.system) d.error('server', 'both "system" and "server" given; keep only "system"');
  const system = raw.system ?? raw.server ?? {};
  const systemFull = {
    'worker-threads': 0,
    'max-connections': 10000,
    'graceful-shutdown-timeout-secs': 30,
    'trace-id-format': 'tinyflake',
    'auto-reload': false,
    ...system,
  };

  // The identity headers a trusted proxy writes itself: the front door keeps its value for these only.
  let proxyHeaders = DEFAULT_TRUSTED_PROXY_HEADERS;
  const listedProxyHeaders = systemFull['trusted-proxy-headers'];
  if (listedProxyHeaders !== undefined) {
    proxyHeaders = new Set(listedProxyHeaders.map((h) => h.toLowerCase()));
    for (const h of proxyHeaders) {
      if (h === 'x-forwarded-for') d.error('system > trusted-proxy-headers', 'x-forwarded-for is always read from a trusted proxy (the client address) and need not be listed');
      else if (h === 'x-real-ip') d.error('system > trusted-proxy-headers', 'x-real-ip is always the client address the gateway resolved and cannot be kept');
      else if (!isTrustableProxyHeader(h)) d.error('system > trusted-proxy-headers', `"${h}" is not a header the gateway removes from clients (expected one of the identity headers in docs/security.md, e.g. "x-forwarded-host", "forwarded", "cf-connecting-ip")`);
    }
  }

  // listeners
  const listeners: CompiledListener[] = [];
  const rawListeners = (raw.listeners ?? []) as (RawListener & { id: string })[];
  if (rawListeners.length === 0) d.error('listeners', 'at least one listener is required, e.g. listeners { listener "http" { address "0.0.0.0:8080" } }');
  const seenAddr = new Set<string>();
  for (const l of rawListeners) {
    const path = `listeners > listener "${l.id}"`;
    const addr = parseAddress(l.address);
    if (!addr) {
      d.error(path, `invalid address "${l.address}" (expected "host:port", e.g. "0.0.0.0:8080" or "[::1]:8080")`);
      continue;
    }
    const key = `${addr.host}:${addr.port}`;
    if (addr.port !== 0 && seenAddr.has(key)) d.error(path, `address ${key} is used by another listener`);
    seenAddr.add(key);
    const protocol = (l.protocol ?? 'http') as CompiledListener['protocol'];
    if (protocol === 'h3') d.error(path, 'protocol "h3" (HTTP/3) is not supported; use "https" (HTTP/2 and HTTP/1.1 via ALPN)');
    // protocol "https" without a tls block, or tls on plain http: the tls feature's compile step
    listeners.push({
      id: l.id,
      host: addr.host,
      port: addr.port,
      protocol,
      tls: l.tls,
      defaultRoute: l['default-route'],
      requestTimeoutMs: (l['request-timeout-secs'] ?? 60) * 1000,
      keepAliveTimeoutMs: (l['keepalive-timeout-secs'] ?? 75) * 1000,
      maxConcurrentStreams: l['max-concurrent-streams'] ?? 100,
      keepAliveMaxRequests: l['keepalive-max-requests'],
      probes: !(l['disable-probes'] ?? false),
      loopback: isLoopbackHost(addr.host),
    });
  }

  // upstreams
  const upstreams = new Map<string, RawUpstream>();
  for (const u of (raw.upstreams ?? []) as RawUpstream[]) {
    const path = `upstreams > upstream "${u.id}"`;
    // One target parser for the compiler and the runtime (src/upstream/address.ts).
    try {
      if (collectTargets(u).length === 0 && u.discovery === undefined) d.error(path, 'requires at least one target (target "host:port") or a discovery block');
    } catch (err) {
      d.error(path, (err as Error).message);
    }
    for (const msg of opts.validators?.upstream?.(u, opts.baseDir) ?? []) d.error(path, msg);
    upstreams.set(u.id, u);
  }

  // routes
  const compiled: CompiledRoute[] = [];
  // the routes a GET route's HEAD and an exact path's other trailing-slash spelling yield to
  const routeYield = new RouteYield();
  for (const r of (raw.routes ?? []) as RawRoute[]) {
    const path = `routes > route "${r.id}"`;
    const priority = priorityValue(r.priority);
    if (priority === undefined) d.error(path, `invalid priority "${String(r.priority)}": expected low, normal, high, critical or an integer${didYouMean(String(r.priority), ['low', 'normal', 'high', 'critical'])}`);
    const m = r.matches ?? {};
    const conditions: RouteConditions = {
      path: m.path,
      pathPrefix: m['path-prefix'],
      pathRegex: m['path-regex'],
      host: m.host,
      header: m.header,
      method: m.method,
      queryParam: m['query-param'],
      windowsPaths: m['path-spelling'] === 'windows',
    };
    if (m['path-spelling'] === 'windows' && !m.path?.length && !m['path-prefix']?.length && !m['path-regex']?.length) {
      d.warn(`${path} > matches > path-spelling`, 'has no effect without path, path-prefix or path-regex');
    }
    // RE2 must accept every pattern before the predicate is built (compileConditions throws).
    let regexOk = true;
    for (const re of conditions.pathRegex ?? []) {
      try {
        compileRouteRegex(re);
      } catch (err) {
        regexOk = false;
        d.error(`${path} > matches > path-regex`, (err as Error).message);
      }
    }
    for (const h of conditions.host ?? []) {
      try {
        compileHost(h);
      } catch (err) {
        regexOk = false;
        d.error(`${path} > matches > host`, (err as Error).message);
      }
    }
    if ((m.path?.length ?? 0) + (m['path-prefix']?.length ?? 0) > 1) {
      d.warn(`${path} > matches`, 'several path/path-prefix conditions are AND-ed (as in Sentinel): this route can only match if all of them match; use separate routes for alternatives');
    }
    let builtin: BuiltinHandler | undefined;
    if (r['builtin-handler'] !== undefined) {
      const name = r['builtin-handler'].replace(/_/g, '-') as BuiltinHandler;
      if (!BUILTIN_HANDLERS.includes(name)) d.error(`${path} > builtin-handler`, `unknown handler "${r['builtin-handler']}"${didYouMean(r['builtin-handler'], BUILTIN_HANDLERS)}; expected one of ${BUILTIN_HANDLERS.join(', ')}`);
      else {
        builtin = name;
        if (name !== r['builtin-handler']) {
          d.deprecated(`${path} > builtin-handler`, `"${r['builtin-handler']}" is a deprecated spelling; write "${name}"`, routeNode(nodes, r.id)?.children.find((c) => c.name === 'builtin-handler'), { kind: 'replace-value', from: r['builtin-handler'], to: name });
        }
      }
    }
    let localService: string | undefined;
    for (const s of steps) localService ??= s.localService?.(r);
    const serviceType = r['service-type'] ?? (builtin ? 'builtin' : (localService ?? (r['api-schema'] ? 'api' : r.inference ? 'inference' : 'web')));
    if (r.upstream !== undefined && !upstreams.has(r.upstream)) {
      d.error(`${path} > upstream`, `unknown upstream "${r.upstream}"${didYouMean(r.upstream, upstreams.keys())}`);
    }
    // the features' slices of the route (static files, cache ...), all keys in step order
    const routeCtx: RouteCompileContext = { path, baseDir: opts.baseDir, diagnostics: d.diagnostics, builtin, localService };
    const slices: Partial<CompiledRouteSlices> = {};
    for (const s of steps) if (s.route) Object.assign(slices, s.route(r, routeCtx));
    if (!builtin && localService === undefined && r.upstream === undefined && (serviceType === 'web' || serviceType === 'api')) {
      d.error(path, 'needs an upstream "<id>" (or a builtin-handler, or static-files { root "..." })');
    }
    for (const f of r.filters ?? []) if (!filters.has(f)) d.error(`${path} > filters`, `unknown filter "${f}"${didYouMean(f, filters.keys())}`);
    for (const k of ['api-schema', 'inference', 'shadow', 'fallback'] as const) {
      if (r[k] !== undefined) d.warn(`${path} > ${k}`, `"${k}" is not implemented yet and is ignored`);
    }
    for (const id of r.listeners ?? []) {
      if (!rawListeners.some((l) => l.id === id)) d.error(`${path} > listeners`, `unknown listener "${id}"${didYouMean(id, rawListeners.map((l) => l.id))}`);
    }
    let allowFrom: ((ip: string) => boolean) | undefined;
    if (r['allow-from'] !== undefined) {
      try {
        const matcher = compileTrusted(r['allow-from']);
        allowFrom = (ip) => isTrusted(matcher, ip);
      } catch (err) {
        d.error(`${path} > allow-from`, (err as Error).message.replace('trusted proxy', 'address'));
      }
    }
    let websocketOrigins: ReadonlySet<string> | undefined;
    if (r['websocket-allowed-origins'] !== undefined) {
      try {
        websocketOrigins = compileAllowedOrigins(r['websocket-allowed-origins']);
      } catch (err) {
        d.error(`${path} > websocket-allowed-origins`, (err as Error).message);
      }
      if (r.websocket !== true) d.warn(`${path} > websocket-allowed-origins`, 'has no effect without websocket #true (every upgrade is refused)');
    }
    for (const k of ['websocket-inspect-messages', 'websocket-max-fragments', 'websocket-max-message-bytes', 'websocket-max-messages-per-second'] as const) {
      // frames are parsed only on inspected routes; raw relaying counts nothing
      if (r[k] !== undefined && r['websocket-inspection'] !== true) d.warn(`${path} > ${k}`, 'has no effect without websocket-inspection #true (frames are relayed raw)');
    }
    if (r['websocket-max-message-bytes'] !== undefined && r['websocket-inspection'] === true && r['websocket-inspect-messages'] === false) {
      d.warn(`${path} > websocket-max-message-bytes`, `has no effect with websocket-inspect-messages #false (each frame is limited to ${WS_MAX_FRAME_BYTES} bytes)`);
    }
    let maxBody: number | undefined;
    try {
      maxBody = parseSize(r.policies?.['max-body-size']);
    } catch (err) {
      d.error(`${path} > policies > max-body-size`, (err as Error).message);
    }
    const methodOverrides = methodOverrideList(r.policies?.['forward-method-override'], `${path} > policies > forward-method-override`, d, policyNode(nodes, r.id, 'forward-method-override'));
    const checks = regexOk ? compileChecks(conditions, routeYield) : [];
    compiled.push({
      id: r.id,
      priority: priority ?? 50,
      specificity: regexOk ? specificity(conditions) : 0,
      test: regexOk ? allOf(checks) : () => false,
      conditions: checks,
      windowsKeyPath: conditions.windowsPaths ? windowsKeyPathOf(conditions) : undefined,
      upstream: r.upstream,
      builtin,
      // the route's own policies { rate-limit } runs before the filters it names
      filters: policyLimits.has(r.id) ? [policyLimits.get(r.id)!, ...(r.filters ?? [])] : (r.filters ?? []),
      serviceType,
      websocket: r.websocket ?? false,
      websocketOrigins,
      failureMode: (r.policies?.['failure-mode'] ?? 'closed') as 'open' | 'closed',
      requestHeaders: headerOps(r.policies?.['request-headers'], `${path} > policies > request-headers`, d),
      responseHeaders: headerOps(r.policies?.['response-headers'], `${path} > policies > response-headers`, d),
      timeoutMs: r.policies?.['timeout-secs'] !== undefined ? r.policies['timeout-secs'] * 1000 : undefined,
      maxBodyBytes: maxBody,
      bodyBufferBytes: r.policies?.['max-body-buffer-bytes'],
      methodOverrides,
      getBody: r.policies?.['get-body'] ?? 'refuse',
      // every feature's route step ran (the composition has them all): the slices are complete
      ...(slices as CompiledRouteSlices),
      listeners: r.listeners,
      allowFrom,
      raw: r,
    });
    if (regexOk) routeYield.add(compiled[compiled.length - 1]!, conditions);
  }
  const routesById = new Map(compiled.map((r) => [r.id, r]));
  const sorted = sortRoutes(compiled);
  const routesByListener = new Map(listeners.map((l) => [l.id, sorted.filter((r) => r.listeners === undefined || r.listeners.includes(l.id))]));
  for (const l of listeners) {
    if (l.defaultRoute === undefined) continue;
    const r = routesById.get(l.defaultRoute);
    if (!r) d.error(`listeners > listener "${l.id}" > default-route`, `unknown route "${l.defaultRoute}"${didYouMean(l.defaultRoute, routesById.keys())}`);
    else if (r.listeners && !r.listeners.includes(l.id)) d.error(`listeners > listener "${l.id}" > default-route`, `route "${r.id}" is not served on this listener (its listeners: ${r.listeners.join(', ')})`);
  }
  // Safe defaults (issue 13 item 6): a state-revealing builtin reachable from a listener that
  // outsiders can connect to needs an explicit allow-from.
  for (const r of compiled) {
    if (!r.builtin || !STATE_REVEALING_BUILTINS.includes(r.builtin) || r.allowFrom) continue;
    for (const l of listeners) {
      if (l.loopback || (r.listeners && !r.listeners.includes(l.id))) continue;
      d.error(
        `routes > route "${r.id}"`,
        `builtin-handler "${r.builtin}" shows gateway state, and listener "${l.id}" (${l.host}:${l.port}) is not bound to a loopback address: ` +
          `serve it on a localhost listener only (listeners "<id>"), or say who may ask (allow-from "10.0.0.0/8")`,
      );
    }
  }

  // Validators see decoded values, not nodes: their diagnostics get the node their path names
  // (`filters > filter "a" > key`), so a warning says file:line like the decoder's own.
  const located = (list: Diagnostic[]) => list.map((x) => (x.location ? x : { ...x, location: locateByPath(nodes, x.path) }));
  for (const f of filters.values()) d.diagnostics.push(...located((opts.validators?.filter?.(f) ?? []).map((x) => (f.origin ? atOrigin(x, f) : x))));
  d.diagnostics.push(...located(opts.validators?.top?.(raw, opts.baseDir) ?? []));

  const configSlices: Partial<CompiledConfigSlices> = {};
  for (const s of steps) {
    if (!s.config) continue;
    // a feature's checks name paths too: located like the validators'
    const own: Diagnostic[] = [];
    Object.assign(configSlices, s.config(raw, compiled, { baseDir: opts.baseDir, diagnostics: own, filters }));
    d.diagnostics.push(...located(own));
  }

  reportUnimplemented(raw, d);

  // limits
  const limits = {
    'max-header-size-bytes': 8192,
    'max-header-count': 100,
    'max-body-size-bytes': 10 * 1024 * 1024,
    ...(raw.limits ?? {}),
  };
  if (limits['max-body-buffer-bytes'] !== undefined && limits['max-body-buffer-bytes'] > limits['max-body-size-bytes']) {
    d.error('limits > max-body-buffer-bytes', 'must not exceed max-body-size-bytes');
  }
  for (const r of compiled) {
    // as for the limits' value: a threshold no body may reach is a mistake, not a setting
    const bodyLimit = Math.min(limits['max-body-size-bytes'], r.maxBodyBytes ?? Infinity);
    if (r.bodyBufferBytes !== undefined && r.bodyBufferBytes > bodyLimit) {
      const node = policyNode(nodes, r.id, 'max-body-buffer-bytes');
      d.error(`routes > route "${r.id}" > policies > max-body-buffer-bytes`, `must not exceed the route's body size limit (${bodyLimit} bytes: limits max-body-size-bytes${r.maxBodyBytes !== undefined ? ', policies max-body-size' : ''})`, node);
    }
  }

  const errors = d.diagnostics.filter((x) => x.severity === 'error');
  if (errors.length > 0) throw new ConfigError(d.diagnostics);

  const config: CompiledConfig = {
    file: opts.file,
    files: opts.files ?? (opts.file ? [opts.file] : []),
    includeLookups: opts.includeLookups ?? [],
    baseDir: opts.baseDir,
    raw,
    system: systemFull,
    listeners,
    routes: sorted,
    routesById,
    routesByListener,
    upstreams,
    filters,
    limits,
    observability: raw.observability ?? {},
    // every feature's config step ran (the composition has them all): the slices are complete
    ...(configSlices as CompiledConfigSlices),
    trustedProxies: systemFull['trusted-proxies'] ?? [],
    trustedProxyHeaders: proxyHeaders,
    warnings: d.diagnostics.filter((x) => x.severity === 'warning'),
    steps,
  };
  return Object.freeze(config);
}

export { locationOf };
