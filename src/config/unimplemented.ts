// Settings Sentinel accepts that this version does not act on (issue 17 item 11). Accepting a
// key and doing nothing is the worst answer: a setting whose absence weakens security (privilege
// drop, request-rate caps, geo blocking, namespace scoping) is a config ERROR; any other is a
// WARNING that `sentinel lint` prints. When a feature lands, delete its line here.
import type { Decoder } from './decode.ts';
import type { RawConfig, RawListener, RawObservability, RawRoute } from './schema.ts';

type Severity = 'error' | 'warning';
interface Entry {
  /** node path as diagnostics print it */
  path: string;
  severity: Severity;
  why: string;
  /** true when the setting is present with a value that asks for the missing behaviour */
  given: (raw: RawConfig) => boolean;
}

/** Sentinel's default route cache size: a config that states it asks for nothing different. */
const ROUTE_CACHE_DEFAULT = 1000;
const sys = (raw: RawConfig) => raw.system ?? raw.server ?? {};
const logging = (raw: RawConfig) => (raw.observability as RawObservability | undefined)?.logging;
const lim = (raw: RawConfig) => (raw.limits ?? {}) as Record<string, unknown>;
const limit = (key: string, severity: Severity, why: string): Entry => ({ path: `limits > ${key}`, severity, why, given: (raw) => lim(raw)[key] !== undefined });

export const NOT_IMPLEMENTED: readonly Entry[] = [
  { path: 'system > user', severity: 'error', why: 'privileges are not dropped; start Sentinel as that user (systemd User=, the container\'s USER)', given: (r) => sys(r).user !== undefined },
  { path: 'system > group', severity: 'error', why: 'privileges are not dropped; start Sentinel with that group (systemd Group=, the container\'s USER uid:gid)', given: (r) => sys(r).group !== undefined },
  { path: 'system > daemon', severity: 'warning', why: 'Sentinel runs in the foreground; let the service manager detach it', given: (r) => sys(r).daemon === true },
  { path: 'system > working-directory', severity: 'warning', why: 'the working directory is not changed; relative paths are resolved against the config file\'s folder', given: (r) => sys(r)['working-directory'] !== undefined },
  { path: 'system > route-cache-size', severity: 'warning', why: 'routes are matched for every request, there is no route cache to size', given: (r) => (sys(r)['route-cache-size'] ?? ROUTE_CACHE_DEFAULT) !== ROUTE_CACHE_DEFAULT },
  { path: 'observability > metrics > high-cardinality', severity: 'warning', why: 'metric labels are the same either way (docs/metrics.md)', given: (r) => (r.observability as RawObservability | undefined)?.metrics?.['high-cardinality'] === true },
  { path: 'observability > logging > format', severity: 'warning', why: 'the log is JSON lines; pipe it through pino-pretty to read it', given: (r) => logging(r)?.format === 'pretty' },
  { path: 'observability > logging > timestamps', severity: 'warning', why: 'every log line carries an ISO time', given: (r) => logging(r)?.timestamps === false },
  limit('max-agent-queue-depth', 'warning', 'agent calls are bounded by the agent\'s max-concurrent-calls instead'),
  limit('max-agent-body-bytes', 'warning', 'bodies sent to agents are bounded by waf { body-inspection { max-inspection-bytes } } and the agent\'s max-request-body-bytes instead'),
  limit('max-agent-response-bytes', 'warning', 'agent replies are bounded by the agent protocol\'s frame limit instead'),
  limit('max-connections-per-route', 'warning', 'connections are capped per listener (max-total-connections, max-connections-per-client), not per route'),
  limit('max-idle-connections-per-upstream', 'warning', 'use the upstream\'s connection-pool { max-idle }'),
  limit('max-queued-requests', 'warning', 'requests are not queued; max-in-flight-requests answers 503 beyond the cap'),
  { path: 'namespace', severity: 'error', why: 'namespaces are not implemented: the routes, upstreams and filters inside would be ignored', given: (r) => r.namespace !== undefined },
];

export interface UnimplementedUse {
  path: string;
  severity: Severity;
  message: string;
}

/** Every unimplemented setting the config uses (what the loader reports, and the `config` dump lists). */
export function unimplementedUses(raw: RawConfig): UnimplementedUse[] {
  const out: UnimplementedUse[] = [];
  for (const e of NOT_IMPLEMENTED) if (e.given(raw)) out.push({ path: e.path, severity: e.severity, message: `not implemented: ${e.why}` });
  for (const sink of ['access-log', 'error-log', 'audit-log'] as const) {
    const cfg = logging(raw)?.[sink];
    if (!cfg) continue;
    for (const key of SINK_KEYS_NOT_READ) if (cfg[key] !== undefined) out.push({ path: `observability > logging > ${sink} > ${key}`, severity: 'warning', message: `not implemented: ${sinkWhy(sink, key)}` });
  }
  for (const r of (raw.routes ?? []) as RawRoute[]) {
    if (r['waf-enabled'] !== undefined) out.push({ path: `routes > route "${r.id}" > waf-enabled`, severity: 'warning', message: 'not implemented: a flag only; the WAF inspects the routes whose filters name a WAF agent filter (filters "waf", docs/waf.md)' });
  }
  for (const l of (raw.listeners ?? []) as (RawListener & { id: string })[]) {
    if (l.namespace !== undefined) out.push({ path: `listeners > listener "${l.id}" > namespace`, severity: 'error', message: 'not implemented: namespaces are not implemented, so this listener would serve every route; remove it or give the listener its own routes with route { listeners "<id>" }' });
  }
  return out;
}

/** Reports every unimplemented setting the config uses. */
export function reportUnimplemented(raw: RawConfig, d: Decoder): void {
  for (const u of unimplementedUses(raw)) {
    if (u.severity === 'error') d.error(u.path, u.message);
    else d.warn(u.path, u.message);
  }
}

/** The keys of `system` / `limits` that are accepted and never read: a dump of what applies leaves them out. */
export function unreadKeys(block: 'system' | 'limits'): ReadonlySet<string> {
  const prefix = `${block} > `;
  return new Set(NOT_IMPLEMENTED.filter((e) => e.path.startsWith(prefix)).map((e) => e.path.slice(prefix.length)));
}

/** `obj` without the keys of `block` that nothing reads. */
export function withoutUnread<T extends object>(block: 'system' | 'limits', obj: T): Partial<T> {
  const unread = unreadKeys(block);
  return Object.fromEntries(Object.entries(obj).filter(([k]) => !unread.has(k))) as Partial<T>;
}

/** Log sink keys Sentinel reads and this version does not (every sink writes every line, in full). */
const SINK_KEYS_NOT_READ = ['level', 'buffer-size', 'sample-rate', 'include-trace-id', 'log-blocked', 'log-agent-decisions', 'log-waf-events'] as const;

function sinkWhy(sink: string, key: (typeof SINK_KEYS_NOT_READ)[number]): string {
  switch (key) {
    case 'level':
      return sink === 'error-log' ? 'the error-log is the application log: observability { logging { level } } (or --log-level) sets its level' : `the ${sink} has no level: it gets every line`;
    case 'buffer-size':
      return 'the sinks\' write buffers are fixed (docs/core.md, "Logs")';
    case 'sample-rate':
      return `every line is written to the ${sink}`;
    case 'include-trace-id':
      return 'access and audit lines always carry trace_id';
    default:
      return `the ${sink} writes every event it has (docs/core.md)`;
  }
}
