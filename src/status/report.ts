// The live status report behind the `status-page` builtin (HTML page and JSON): read at request
// time from the running objects (the gateway's reload history and bound listeners, the
// generation's upstream groups, its filters' own status, the cache), never from the config alone.
import type { CompiledConfig } from '../config/compile.ts';
import type { CacheStats } from '../pipeline/feature.ts';
import type { AgentLiveStatus, FilterStatus, RequestFilter } from '../pipeline/types.ts';
import type { UpstreamGroup, UpstreamSnapshot } from '../upstream/group.ts';
import { VERSION } from '../metrics/registry.ts';

/** One attempt to load a configuration: the start and every reload, successful or not. */
export interface ReloadRecord {
  /** when it began (RFC 3339) */
  at: string;
  kind: 'start' | 'reload';
  result: 'success' | 'failure';
  /** the generation it produced (null when it failed) */
  generation: number | null;
  duration_ms: number;
  /** why it failed (the first line of the config error) */
  error?: string;
}

export interface ListenerStatus {
  id: string;
  /** where it is bound (the real port when the config said 0) */
  address: string;
  protocol: string;
  tls: boolean;
  loopback: boolean;
}

/** What only the gateway process knows (the generations come and go under it). */
export interface GatewayStatusInfo {
  /** the generation serving new requests now */
  generation: number;
  /** newest first, bounded */
  reloads: readonly ReloadRecord[];
  listeners: readonly ListenerStatus[];
  /** the cluster worker id, when this process is one */
  worker?: number;
}

/** The live objects the report reads. */
export interface StatusSources {
  config: CompiledConfig;
  instanceId: string;
  startedAt: number;
  /** the generation that answers this request */
  servingGeneration: number;
  gateway(): GatewayStatusInfo | undefined;
  upstreamGroups(): Iterable<UpstreamGroup>;
  filters(): readonly RequestFilter[];
  cacheStats(): CacheStats | undefined;
}

export interface AgentStatusEntry extends AgentLiveStatus {
  /** the agent filters using it */
  filters: string[];
}

export interface StatusReport {
  timestamp: string;
  request_id: string;
  version: string;
  instance_id: string;
  uptime_secs: number;
  worker: number | null;
  generation: { current: number; serving: number };
  summary: { routes: number; upstreams: number; targets: number; targets_unhealthy: number; breakers_open: number; agents: number; agents_down: number };
  reloads: readonly ReloadRecord[];
  listeners: readonly ListenerStatus[];
  routes: { id: string; priority: number; listeners: readonly string[] | null; matches: string; kind: string; upstream: string | null; filters: readonly string[] }[];
  upstreams: UpstreamSnapshot[];
  agents: AgentStatusEntry[];
  rate_limits: FilterStatus[];
  cache: CacheStats | null;
}

/** A route's match conditions in one line (what an operator reads in the config). */
export function describeMatches(matches: Record<string, unknown> | undefined): string {
  if (!matches) return '*';
  const parts: string[] = [];
  for (const [k, v] of Object.entries(matches)) {
    if (v === undefined) continue;
    const values = Array.isArray(v) ? v : [v];
    parts.push(`${k} ${values.map((x) => (typeof x === 'string' ? x : JSON.stringify(x))).join(' ')}`);
  }
  return parts.length === 0 ? '*' : parts.join('; ');
}

/** Folds the agent filters' status into one entry per agent (several filters may share an agent). */
function agentEntries(statuses: readonly FilterStatus[]): AgentStatusEntry[] {
  const byAgent = new Map<string, AgentStatusEntry>();
  for (const s of statuses) {
    if (s.kind !== 'agent' || s.agent === undefined) continue;
    const have = byAgent.get(s.agent.id);
    if (have) {
      have.filters.push(s.filter);
      continue;
    }
    byAgent.set(s.agent.id, { ...s.agent, filters: [s.filter] });
  }
  return [...byAgent.values()];
}

export function statusReport(src: StatusSources, requestId: string, now = Date.now()): StatusReport {
  const gw = src.gateway();
  const upstreams = [...src.upstreamGroups()].map((g) => g.snapshot({ latency: true }));
  const targets = upstreams.flatMap((u) => u.targets);
  const statuses: FilterStatus[] = [];
  for (const f of src.filters()) {
    const s = f.status?.();
    if (Array.isArray(s)) statuses.push(...(s as readonly FilterStatus[]));
    else if (s) statuses.push(s as FilterStatus);
  }
  const agents = agentEntries(statuses);
  const c = src.config;
  return {
    timestamp: new Date(now).toISOString(),
    request_id: requestId,
    version: VERSION,
    instance_id: src.instanceId,
    uptime_secs: Math.floor((now - src.startedAt) / 1000),
    worker: gw?.worker ?? null,
    generation: { current: gw?.generation ?? src.servingGeneration, serving: src.servingGeneration },
    summary: {
      routes: c.routes.length,
      upstreams: upstreams.length,
      targets: targets.length,
      targets_unhealthy: targets.filter((t) => t.status === 'unhealthy').length,
      breakers_open: targets.filter((t) => t.circuit_breaker !== 'closed').length + agents.filter((a) => a.circuit_breaker !== 'closed').length,
      agents: agents.length,
      agents_down: agents.filter((a) => a.state === 'disconnected' || a.circuit_breaker === 'open').length,
    },
    reloads: gw?.reloads ?? [],
    listeners: gw?.listeners ?? [],
    routes: c.routes.map((r) => ({
      id: r.id,
      priority: r.priority,
      listeners: r.listeners ?? null,
      matches: describeMatches(r.raw.matches as Record<string, unknown> | undefined),
      kind: r.builtin ? `builtin:${r.builtin}` : r.serviceType,
      upstream: r.upstream ?? null,
      filters: r.filters,
    })),
    upstreams,
    agents,
    rate_limits: statuses.filter((s) => s.kind === 'rate-limit'),
    cache: src.cacheStats() ?? null,
  };
}
