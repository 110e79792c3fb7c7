// The whole Sentinel config as TypeBox schemas (sentinel-reference.md §1). Feature blocks
// come from plugins/<name>/schema.ts; this file composes them. `npm run schema` exports the
// JSON Schema to config/schema.json (a test checks it for drift).
import { Type, type Static, type TSchema } from 'typebox';
import { Block, Named, Repeated, Duration, Size, Enum } from './types-helpers.ts';
import { ListenerTlsSchema } from '../../plugins/tls/schema.ts';
import { UpstreamPolicyProperties } from '../../plugins/forwarding/schema.ts';
import { DiscoverySchema } from '../upstream/discovery/schema.ts';
import { RateLimitFilterProperties, RateLimitsSchema } from '../../plugins/rate-limit/schema.ts';
import { AgentSchema, AgentFilterProperties, WafSchema } from '../../plugins/agents/schema.ts';
import { PluginFilterProperties } from '../../plugins/plugin-filter/schema.ts';
import { CacheStorageSchema, RouteCacheSchema } from '../../plugins/caching/schema.ts';
import { TracingSchema } from '../../plugins/tracing/schema.ts';
import { StaticFilesSchema } from '../../plugins/static-files/schema.ts';
import { CompressFilterProperties } from '../../plugins/compress/schema.ts';

export const SystemSchema = Block({
  'worker-threads': Type.Optional(Type.Integer({ minimum: 0, default: 0 })),
  'max-connections': Type.Optional(Type.Integer({ minimum: 1, default: 10000 })),
  'graceful-shutdown-timeout-secs': Type.Optional(Type.Number({ minimum: 0, default: 30 })),
  daemon: Type.Optional(Type.Boolean({ default: false })),
  'pid-file': Type.Optional(Type.String()),
  user: Type.Optional(Type.String()),
  group: Type.Optional(Type.String()),
  'working-directory': Type.Optional(Type.String()),
  'trace-id-format': Type.Optional(Type.String({ default: 'tinyflake' })),
  'auto-reload': Type.Optional(Type.Boolean({ default: false })),
  'route-cache-size': Type.Optional(Type.Integer({ minimum: 1, default: 1000 })),
  'trusted-proxies': Type.Optional(Type.Array(Type.String())),
});

export const ListenerSchema = Block({
  address: Type.String(),
  protocol: Type.Optional(Enum(['http', 'https', 'h2', 'h3'] as const, { default: 'http' })),
  tls: Type.Optional(ListenerTlsSchema),
  'default-route': Type.Optional(Type.String()),
  namespace: Type.Optional(Type.String()),
  'request-timeout-secs': Type.Optional(Type.Number({ minimum: 0, default: 60 })),
  'keepalive-timeout-secs': Type.Optional(Type.Number({ minimum: 0, default: 75 })),
  'max-concurrent-streams': Type.Optional(Type.Integer({ minimum: 1, default: 100 })),
  'keepalive-max-requests': Type.Optional(Type.Integer({ minimum: 0 })),
  'disable-probes': Type.Optional(Type.Boolean({ default: false })),
});

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
});

const HeaderOps = Block({
  rename: Type.Optional(Type.Record(Type.String(), Type.String())),
  set: Type.Optional(Type.Record(Type.String(), Type.String())),
  add: Type.Optional(Type.Record(Type.String(), Type.String())),
  remove: Type.Optional(Type.Array(Type.String())),
});

export const PoliciesSchema = Block({
  'request-headers': Type.Optional(HeaderOps),
  'response-headers': Type.Optional(HeaderOps),
  'timeout-secs': Type.Optional(Type.Number({ exclusiveMinimum: 0 })),
  'max-body-size': Type.Optional(Size),
  'failure-mode': Type.Optional(Enum(['open', 'closed'] as const, { default: 'closed' })),
  'rate-limit': Type.Optional(Block({ 'requests-per-second': Type.Optional(Type.Number()), burst: Type.Optional(Type.Integer()), key: Type.Optional(Type.String()) })),
  cache: Type.Optional(RouteCacheSchema),
});

export const RouteSchema = Block({
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
  policies: Type.Optional(PoliciesSchema),
  'circuit-breaker': UpstreamPolicyProperties['circuit-breaker'],
  'retry-policy': UpstreamPolicyProperties['retry-policy'],
  'waf-enabled': Type.Optional(Type.Boolean()),
  websocket: Type.Optional(Type.Boolean({ default: false })),
  'websocket-inspection': Type.Optional(Type.Boolean()),
  // seconds without a frame (bytes) in either direction before the session is closed with 1001; 0 = never
  'websocket-idle-timeout-secs': Type.Optional(Type.Number({ minimum: 0 })),
  cache: Type.Optional(RouteCacheSchema),
  'static-files': Type.Optional(StaticFilesSchema),
  // Parsed for compatibility; not implemented yet (warned at compile time).
  'api-schema': Type.Optional(Type.Unknown()),
  inference: Type.Optional(Type.Unknown()),
  shadow: Type.Optional(Type.Unknown()),
  fallback: Type.Optional(Type.Unknown()),
});

const TargetSchema = Block({ address: Type.String(), weight: Type.Optional(Type.Integer({ minimum: 0, default: 1 })) }, { argKey: 'address' });

export const UpstreamSchema = Block({
  target: Repeated(TargetSchema),
  targets: Type.Optional(Block({ target: Repeated(TargetSchema) })),
  address: Type.Optional(Type.String()),
  ...UpstreamPolicyProperties,
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
});

/** Keys every filter has; the rest depend on `type`. */
export const FilterTypeProperties: Record<string, Record<string, TSchema>> = {
  'rate-limit': RateLimitFilterProperties,
  agent: AgentFilterProperties,
  plugin: PluginFilterProperties,
  compress: CompressFilterProperties,
  headers: {
    phase: Type.Optional(Enum(['request', 'response', 'both'] as const, { default: 'request' })),
    set: Type.Optional(Type.Record(Type.String(), Type.String())),
    add: Type.Optional(Type.Record(Type.String(), Type.String())),
    remove: Type.Optional(Type.Array(Type.String())),
  },
};

export function filterSchema(type: string) {
  return Block({ type: Type.String(), ...(FilterTypeProperties[type] ?? {}) });
}

export const LimitsSchema = Block({
  'max-header-size-bytes': Type.Optional(Type.Integer({ minimum: 1, default: 8192, aliases: ['max-header-size'] })),
  'max-header-count': Type.Optional(Type.Integer({ minimum: 1, default: 100 })),
  'max-header-name-bytes': Type.Optional(Type.Integer({ minimum: 1, default: 256 })),
  'max-header-value-bytes': Type.Optional(Type.Integer({ minimum: 1, default: 4096 })),
  'max-body-size-bytes': Type.Optional(Type.Integer({ minimum: 0, default: 10485760, aliases: ['max-body-size'] })),
  // default: min(1 MiB, max-body-size-bytes)
  'max-body-buffer-bytes': Type.Optional(Type.Integer({ minimum: 0 })),
  'max-body-inspection-bytes': Type.Optional(Type.Integer({ minimum: 0, default: 1048576 })),
  'max-decompression-ratio': Type.Optional(Type.Number({ exclusiveMinimum: 0, default: 100 })),
  'max-decompressed-size-bytes': Type.Optional(Type.Integer({ minimum: 0, default: 104857600 })),
  'max-connections-per-client': Type.Optional(Type.Integer({ minimum: 1 })),
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

export const ObservabilitySchema = Block({
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
  tracing: Type.Optional(TracingSchema),
});

export const TOP_LEVEL = {
  'schema-version': Type.Optional(Type.String({ aliases: ['version'] })),
  system: Type.Optional(SystemSchema),
  server: Type.Optional(SystemSchema),
  listeners: Named('listener', ListenerSchema),
  routes: Named('route', RouteSchema),
  upstreams: Named('upstream', UpstreamSchema),
  filters: Type.Optional(Type.Unknown()),
  agents: Named('agent', AgentSchema),
  waf: Type.Optional(WafSchema),
  limits: Type.Optional(LimitsSchema),
  observability: Type.Optional(ObservabilitySchema),
  'rate-limits': Type.Optional(RateLimitsSchema),
  cache: Type.Optional(CacheStorageSchema),
  namespace: Type.Optional(Type.Unknown()),
};

/** Top level: unknown nodes are hard errors (as in Sentinel). */
export const ConfigSchema = Block(TOP_LEVEL, { closed: 'error' });

export type RawConfig = Static<typeof ConfigSchema>;
export type RawListener = Static<typeof ListenerSchema>;
export type RawRoute = Static<typeof RouteSchema> & { id: string };
export type RawUpstream = Static<typeof UpstreamSchema> & { id: string };
export type RawLimits = Static<typeof LimitsSchema>;
export type RawSystem = Static<typeof SystemSchema>;
export type RawObservability = Static<typeof ObservabilitySchema>;
export { Duration, Size };
