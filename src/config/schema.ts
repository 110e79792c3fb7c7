// The whole Sentinel config as TypeBox schemas (sentinel-reference.md §1): the core's blocks
// here, the keys features add to them from the features' manifests (`schema`), put together by
// configSchemas() for the composition root. `npm run schema` exports the JSON Schema to
// config/schema.json (a test checks it for drift).
import { Type, type Static, type TSchema } from 'typebox';
import { Block, Named, Repeated, Duration, Size, Enum } from './types-helpers.ts';
import { DiscoverySchema } from '../upstream/discovery/schema.ts';
import { WS_MAX_MESSAGE_BYTES_LIMIT } from '../websocket/messages.ts';

// The keys a feature adds to a core block. The core declares them empty; each feature's schema
// module declares its keys with their schema types (TypeScript declaration merging, as Fastify
// does for decorators), so Static<> of the composed schema is exact while src/ imports no
// feature. The schemas themselves travel in the feature's manifest (`schema`); compose() puts
// each key in once, and the schema-drift test sees a declared key no manifest gave.
/* eslint-disable @typescript-eslint/no-empty-object-type */
/** top-level nodes (`agents`, `rate-limits`, `cache`, ...) */
export interface TopLevelKeys {}
/** `listener "id" { }` */
export interface ListenerKeys {}
/** `route "id" { }` */
export interface RouteKeys {}
/** `route "id" { policies { } }` */
export interface PoliciesKeys {}
/** `upstream "id" { }` */
export interface UpstreamKeys {}
/** `observability { }` */
export interface ObservabilityKeys {}
/* eslint-enable @typescript-eslint/no-empty-object-type */

/** Every block features add keys to, with the keys (the composition's, once gathered). */
export interface SchemaKeys {
  top: TopLevelKeys;
  listener: ListenerKeys;
  route: RouteKeys;
  policies: PoliciesKeys;
  upstream: UpstreamKeys;
  observability: ObservabilityKeys;
}

/** What one feature's manifest adds: some keys of some blocks. */
export type SchemaFragment = { readonly [B in keyof SchemaKeys]?: Partial<SchemaKeys[B]> };

/** Per filter type: the keys a `filter "id" { type "<type>" }` block takes besides `type`. */
export type FilterTypeSchemas = Readonly<Record<string, Readonly<Record<string, TSchema>>>>;

export const SystemSchema = Block({
  'worker-threads': Type.Optional(Type.Integer({ minimum: 0, default: 0 })),
  'max-connections': Type.Optional(Type.Integer({ minimum: 1, default: 10000 })),
  'graceful-shutdown-timeout-secs': Type.Optional(Type.Number({ minimum: 0, default: 30 })),
  // accepted and not read (unimplemented.ts): no default, so no dump shows a value that applies nothing
  daemon: Type.Optional(Type.Boolean()),
  'pid-file': Type.Optional(Type.String()),
  user: Type.Optional(Type.String()),
  group: Type.Optional(Type.String()),
  'working-directory': Type.Optional(Type.String()),
  'trace-id-format': Type.Optional(Type.String({ default: 'tinyflake' })),
  'auto-reload': Type.Optional(Type.Boolean({ default: false })),
  'route-cache-size': Type.Optional(Type.Integer({ minimum: 1 })),
  'trusted-proxies': Type.Optional(Type.Array(Type.String())),
  'trusted-proxy-headers': Type.Optional(Type.Array(Type.String())),
});

const LISTENER = {
  address: Type.String(),
  protocol: Type.Optional(Enum(['http', 'https', 'h2', 'h3'] as const, { default: 'http' })),
  'default-route': Type.Optional(Type.String()),
  namespace: Type.Optional(Type.String()),
  'request-timeout-secs': Type.Optional(Type.Number({ minimum: 0, default: 60 })),
  'keepalive-timeout-secs': Type.Optional(Type.Number({ minimum: 0, default: 75 })),
  'max-concurrent-streams': Type.Optional(Type.Integer({ minimum: 1, default: 100 })),
  'keepalive-max-requests': Type.Optional(Type.Integer({ minimum: 0 })),
  'disable-probes': Type.Optional(Type.Boolean({ default: false })),
};

const QueryParam = Block({ name: Type.String(), value: Type.Optional(Type.String()) }, { argKeys: ['name', 'value'] });
const HeaderMatch = Block({ name: Type.String(), value: Type.Optional(Type.String()) }, { argKeys: ['name', 'value'] });

export const MatchesSchema = Block({
  path: Type.Optional(Type.Array(Type.String())),
  'path-prefix': Type.Optional(Type.Array(Type.String())),
  'path-regex': Type.Optional(Type.Array(Type.String())),
  host: Type.Optional(Type.Array(Type.String())),
  header: Repeated(HeaderMatch),
  method: Type.Optional(Type.Array(Type.String())),
  'query-param': Repeated(QueryParam),
  // (ours) "windows": path and path-prefix also match the spellings a Windows / IIS upstream serves
  // as the same path (case, trailing dots and spaces, ::$DATA, 8.3 aliases); docs/security.md
  'path-spelling': Type.Optional(Enum(['exact', 'windows'] as const)),
});

const HeaderOps = Block({
  rename: Type.Optional(Type.Record(Type.String(), Type.String())),
  set: Type.Optional(Type.Record(Type.String(), Type.String())),
  add: Type.Optional(Type.Record(Type.String(), Type.String())),
  remove: Type.Optional(Type.Array(Type.String())),
});

const POLICIES = {
  'request-headers': Type.Optional(HeaderOps),
  'response-headers': Type.Optional(HeaderOps),
  'timeout-secs': Type.Optional(Type.Number({ exclusiveMinimum: 0 })),
  'max-body-size': Type.Optional(Size),
  // (ours) replaces `limits { max-body-buffer-bytes }` for this route: request bodies up to this
  // size are read whole before a target is picked; 0 streams every body of the route
  // (docs/security.md, "Request buffering")
  'max-body-buffer-bytes': Type.Optional(Type.Integer({ minimum: 0 })),
  'failure-mode': Type.Optional(Enum(['open', 'closed'] as const, { default: 'closed' })),
  // (ours) forward X-HTTP-Method-Override / X-HTTP-Method / X-Method-Override on POST when they
  // name one of these methods (docs/security.md, "Identity headers"); default: always removed
  'forward-method-override': Type.Optional(Type.Array(Type.String())),
  // (ours) a body on a method that defines none (GET, HEAD, DELETE, OPTIONS, COPY, MOVE, UNLOCK, …):
  // "refuse" (400 get_body, the default) or "forward" (for an upstream that frames every request by
  // its Content-Length, e.g. Elasticsearch, the Kubernetes API). An upstream that ignores the body
  // reads it as the next request on the pooled connection (docs/security.md, "Bodies on GET and
  // other bodiless methods")
  'get-body': Type.Optional(Enum(['refuse', 'forward'] as const)),
  'rate-limit': Type.Optional(Block({ 'requests-per-second': Type.Optional(Type.Number()), burst: Type.Optional(Type.Integer()), key: Type.Optional(Type.String()) })),
};

/** The route's keys but `policies` (which takes the features' policies keys). */
const ROUTE = {
  matches: Type.Optional(MatchesSchema),
  priority: Type.Optional(Type.Union([Type.Integer(), Type.String()], { default: 'normal' })),
  upstream: Type.Optional(Type.String()),
  'service-type': Type.Optional(Enum(['web', 'api', 'static', 'builtin', 'inference'] as const)),
  'builtin-handler': Type.Optional(Type.String()),
  filters: Type.Optional(Type.Array(Type.String())),
  // (ours) serve this route only on these listeners (ids); default: every listener
  listeners: Type.Optional(Type.Array(Type.String())),
  // (ours) only these client addresses/CIDRs may use this route; others get 403
  'allow-from': Type.Optional(Type.Array(Type.String())),
  'waf-enabled': Type.Optional(Type.Boolean()),
  websocket: Type.Optional(Type.Boolean({ default: false })),
  'websocket-inspection': Type.Optional(Type.Boolean()),
  // (ours) with websocket-inspection: a fragmented message is reassembled (up to
  // websocket-max-message-bytes) and inspected once, whole; #false = each fragment on its own. Default #true
  'websocket-inspect-messages': Type.Optional(Type.Boolean()),
  // (ours) with whole messages: payload bytes of one message, all its fragments together (more:
  // close 1009). Default 1 MiB; at most 4 MiB (why: WS_MAX_MESSAGE_BYTES_LIMIT)
  'websocket-max-message-bytes': Type.Optional(Type.Integer({ minimum: 1, maximum: WS_MAX_MESSAGE_BYTES_LIMIT })),
  // (ours) with websocket-inspection: frames allowed in one data message (more: close 1009). Default 1024
  'websocket-max-fragments': Type.Optional(Type.Integer({ minimum: 1 })),
  // (ours) with websocket-inspection: messages (and control frames) a client may send a second,
  // each one agent call, with a burst of ten seconds' worth (more: close 1008). Default 100; 0 = unbounded
  'websocket-max-messages-per-second': Type.Optional(Type.Integer({ minimum: 0 })),
  // (ours) browsers whose page is at one of these origins (scheme://host[:port]) may open a
  // WebSocket here; others get 403 (cross-site WebSocket hijacking). Default: Origin unchecked
  'websocket-allowed-origins': Type.Optional(Type.Array(Type.String())),
  // seconds without a frame (bytes) in either direction before the session is closed with 1001; 0 = never
  'websocket-idle-timeout-secs': Type.Optional(Type.Number({ minimum: 0 })),
  // Parsed for compatibility; not implemented yet (warned at compile time).
  'api-schema': Type.Optional(Type.Unknown()),
  inference: Type.Optional(Type.Unknown()),
  shadow: Type.Optional(Type.Unknown()),
  fallback: Type.Optional(Type.Unknown()),
};

const TargetSchema = Block({ address: Type.String(), weight: Type.Optional(Type.Integer({ minimum: 0, default: 1 })) }, { argKey: 'address' });

const UPSTREAM = {
  target: Repeated(TargetSchema),
  targets: Type.Optional(Block({ target: Repeated(TargetSchema) })),
  address: Type.Optional(Type.String()),
  'connection-pool': Type.Optional(
    Block({
      'max-connections': Type.Optional(Type.Integer({ minimum: 1, default: 100 })),
      'max-idle': Type.Optional(Type.Integer({ minimum: 0, default: 20 })),
      'idle-timeout-secs': Type.Optional(Type.Number({ minimum: 0, default: 60, aliases: ['idle-timeout'] })),
      'max-lifetime-secs': Type.Optional(Type.Number({ minimum: 0, aliases: ['max-lifetime'] })),
    }),
  ),
  timeouts: Type.Optional(
    Block({
      'connect-secs': Type.Optional(Type.Number({ exclusiveMinimum: 0, default: 10, aliases: ['connect'] })),
      'request-secs': Type.Optional(Type.Number({ exclusiveMinimum: 0, default: 60, aliases: ['request'] })),
      'read-secs': Type.Optional(Type.Number({ exclusiveMinimum: 0, default: 30, aliases: ['read'] })),
      'write-secs': Type.Optional(Type.Number({ exclusiveMinimum: 0, default: 30, aliases: ['write'] })),
    }),
  ),
  discovery: Type.Optional(DiscoverySchema),
  // (ours) answers read from the upstream for a client that stops reading, so the upstream
  // connection goes back to the pool (docs/upstreams.md, "Response buffering"); event streams,
  // gRPC and `X-Accel-Buffering: no` answers are never buffered
  'response-buffering': Type.Optional(
    Block({
      enabled: Type.Optional(Type.Boolean({ default: true })),
      // an answer's bytes held in memory (default 256 KiB)
      'memory-bytes': Type.Optional(Type.Integer({ minimum: 16384, maximum: 67108864 })),
      // past memory-bytes, an answer's bytes in an unlinked temp file (default 64 MiB); 0 = memory only
      'file-bytes': Type.Optional(Type.Integer({ minimum: 0 })),
    }),
  ),
};

/** A filter block of one type: `type` plus that type's keys. */
export function filterSchema(filterTypes: FilterTypeSchemas, type: string) {
  return Block({ type: Type.String(), ...(filterTypes[type] ?? {}) });
}

export const LimitsSchema = Block({
  'max-header-size-bytes': Type.Optional(Type.Integer({ minimum: 1, default: 8192, aliases: ['max-header-size'] })),
  'max-header-count': Type.Optional(Type.Integer({ minimum: 1, default: 100 })),
  'max-header-name-bytes': Type.Optional(Type.Integer({ minimum: 1, default: 256 })),
  'max-header-value-bytes': Type.Optional(Type.Integer({ minimum: 1, default: 4096 })),
  'max-body-size-bytes': Type.Optional(Type.Integer({ minimum: 0, default: 10485760, aliases: ['max-body-size'] })),
  // request bodies up to this size are read whole before a target is picked (docs/security.md,
  // "Request buffering"); 0 streams every body. Default: min(1 MiB, max-body-size-bytes)
  'max-body-buffer-bytes': Type.Optional(Type.Integer({ minimum: 0 })),
  'max-body-inspection-bytes': Type.Optional(Type.Integer({ minimum: 0, default: 1048576 })),
  'max-decompression-ratio': Type.Optional(Type.Number({ exclusiveMinimum: 0, default: 100 })),
  'max-decompressed-size-bytes': Type.Optional(Type.Integer({ minimum: 0, default: 104857600 })),
  'max-connections-per-client': Type.Optional(Type.Integer({ minimum: 1 })),
  // Sentinel extension: request bodies streaming upstream (above max-body-buffer-bytes, gRPC) per
  // client address (docs/security.md, "Request buffering"); default 16 (upload-slots.ts), 0 = no cap
  'max-streaming-uploads-per-client': Type.Optional(Type.Integer({ minimum: 0 })),
  // Sentinel extension: how many connections' worth of the per-connection budgets (a body's small
  // pieces, inspected WebSocket messages) one client address shares over all its connections
  // (docs/security.md, "Session 27 audit"); default 8 (client-budgets.ts), 0 = per connection only
  'max-connection-budgets-per-client': Type.Optional(Type.Integer({ minimum: 0 })),
  // Sentinel extension: response buffering (docs/upstreams.md, "Response buffering"): memory and
  // temp-file bytes for answers held for clients that stopped reading, per process (defaults 64 MiB,
  // 1 GiB) and per client address (memory + file, default 64 MiB; IPv6 per /64)
  'max-response-buffer-memory-bytes': Type.Optional(Type.Integer({ minimum: 0 })),
  'max-response-buffer-file-bytes': Type.Optional(Type.Integer({ minimum: 0 })),
  'max-response-buffer-bytes-per-client': Type.Optional(Type.Integer({ minimum: 0 })),
  // answers of one client address held unbuffered past those bounds (default 16, 0 = no cap; one more is cut)
  'max-unbuffered-responses-per-client': Type.Optional(Type.Integer({ minimum: 0 })),
  'max-connections-per-route': Type.Optional(Type.Integer({ minimum: 1 })),
  'max-total-connections': Type.Optional(Type.Integer({ minimum: 1 })),
  'max-idle-connections-per-upstream': Type.Optional(Type.Integer({ minimum: 0 })),
  'max-in-flight-requests': Type.Optional(Type.Integer({ minimum: 1 })),
  'max-in-flight-requests-per-worker': Type.Optional(Type.Integer({ minimum: 1 })),
  'max-queued-requests': Type.Optional(Type.Integer({ minimum: 0 })),
  'max-agent-queue-depth': Type.Optional(Type.Integer({ minimum: 0 })),
  'max-agent-body-bytes': Type.Optional(Type.Integer({ minimum: 0 })),
  'max-agent-response-bytes': Type.Optional(Type.Integer({ minimum: 0 })),
  'max-requests-per-second-global': Type.Optional(Type.Number({ exclusiveMinimum: 0 })),
  'max-requests-per-second-per-client': Type.Optional(Type.Number({ exclusiveMinimum: 0 })),
  'max-requests-per-second-per-route': Type.Optional(Type.Number({ exclusiveMinimum: 0 })),
  'client-header-timeout-secs': Type.Optional(Type.Number({ exclusiveMinimum: 0, default: 10 })),
});

const LogSink = Block({
  enabled: Type.Optional(Type.Boolean({ default: true })),
  file: Type.Optional(Type.String()),
  format: Type.Optional(Enum(['json', 'combined'] as const, { default: 'json' })),
  level: Type.Optional(Type.String()),
  'buffer-size': Type.Optional(Type.Integer({ minimum: 0 })),
  'sample-rate': Type.Optional(Type.Number({ minimum: 0, maximum: 1 })),
  'include-trace-id': Type.Optional(Type.Boolean()),
  'log-blocked': Type.Optional(Type.Boolean()),
  'log-agent-decisions': Type.Optional(Type.Boolean()),
  'log-waf-events': Type.Optional(Type.Boolean()),
});

/** `audit-log { syslog { ... } }`: the audit events also to a syslog receiver (src/logging/syslog). */
const SyslogSink = Block({
  enabled: Type.Optional(Type.Boolean({ default: true })),
  address: Type.String(),
  protocol: Type.Optional(Enum(['udp', 'tcp', 'tls'] as const, { default: 'udp' })),
  facility: Type.Optional(
    Enum(['kern', 'user', 'mail', 'daemon', 'auth', 'syslog', 'lpr', 'news', 'uucp', 'cron', 'authpriv', 'ftp', 'ntp', 'security', 'console', 'solaris', 'local0', 'local1', 'local2', 'local3', 'local4', 'local5', 'local6', 'local7'] as const, {
      default: 'local0',
    }),
  ),
  'queue-size': Type.Optional(Type.Integer({ minimum: 1, default: 1024 })),
  'ca-file': Type.Optional(Type.String()),
  'server-name': Type.Optional(Type.String()),
  hostname: Type.Optional(Type.String()),
});

const AuditLogSink = Block({ ...LogSink.properties, syslog: Type.Optional(SyslogSink) });

const OBSERVABILITY = {
  metrics: Type.Optional(
    Block({
      enabled: Type.Optional(Type.Boolean({ default: true })),
      address: Type.Optional(Type.String()),
      path: Type.Optional(Type.String({ default: '/metrics' })),
      'high-cardinality': Type.Optional(Type.Boolean({ default: false })),
    }),
  ),
  logging: Type.Optional(
    Block({
      level: Type.Optional(Enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const, { default: 'info' })),
      format: Type.Optional(Enum(['json', 'pretty'] as const, { default: 'json' })),
      timestamps: Type.Optional(Type.Boolean()),
      'access-log': Type.Optional(LogSink),
      'error-log': Type.Optional(LogSink),
      'audit-log': Type.Optional(AuditLogSink),
    }),
  ),
};

/** The core's top-level nodes (the blocks above and the config-wide ones). */
const TOP_LEVEL_NAMES = { 'schema-version': true, system: true, server: true, listeners: true, routes: true, upstreams: true, filters: true, limits: true, observability: true, namespace: true };

/**
 * The config's schemas: the core's blocks with the features' keys (each block's own keys
 * first, then the features' in manifest order). Top level: unknown nodes are hard errors (as in
 * Sentinel).
 */
export function configSchemas(keys: SchemaKeys) {
  const core: Record<keyof SchemaKeys, object> = { top: TOP_LEVEL_NAMES, listener: LISTENER, route: { ...ROUTE, policies: true }, policies: POLICIES, upstream: UPSTREAM, observability: OBSERVABILITY };
  for (const block of Object.keys(core) as (keyof SchemaKeys)[]) {
    for (const key of Object.keys(keys[block])) if (key in core[block]) throw new Error(`config key ${block} > ${key} is the core's; a feature cannot redefine it`);
  }
  const listener = Block({ ...LISTENER, ...keys.listener });
  const policies = Block({ ...POLICIES, ...keys.policies });
  const route = Block({ ...ROUTE, policies: Type.Optional(policies), ...keys.route });
  const upstream = Block({ ...UPSTREAM, ...keys.upstream });
  const observability = Block({ ...OBSERVABILITY, ...keys.observability });
  const config = Block(
    {
      'schema-version': Type.Optional(Type.String({ aliases: ['version'] })),
      system: Type.Optional(SystemSchema),
      server: Type.Optional(SystemSchema),
      listeners: Named('listener', listener),
      routes: Named('route', route),
      upstreams: Named('upstream', upstream),
      filters: Type.Optional(Type.Unknown()),
      limits: Type.Optional(LimitsSchema),
      observability: Type.Optional(observability),
      namespace: Type.Optional(Type.Unknown()),
      ...keys.top,
    },
    { closed: 'error' },
  );
  return { config, listener, policies, route, upstream, observability };
}

export type ConfigSchemas = ReturnType<typeof configSchemas>;
export type ConfigSchema = ConfigSchemas['config'];

export type RawConfig = Static<ConfigSchemas['config']>;
export type RawListener = Static<ConfigSchemas['listener']>;
export type RawRoute = Static<ConfigSchemas['route']> & { id: string };
export type RawUpstream = Static<ConfigSchemas['upstream']> & { id: string };
export type RawLimits = Static<typeof LimitsSchema>;
export type RawSystem = Static<typeof SystemSchema>;
export type RawObservability = Static<ConfigSchemas['observability']>;
export { Duration, Size };
