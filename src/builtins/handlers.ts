// Builtin handlers (sentinel-reference.md §3.1): JSON shapes and headers as in Sentinel.
import { STATE_REVEALING_BUILTINS, type BuiltinHandler, type CompiledConfig } from '../config/compile.ts';
import type { LocalResponse } from '../pipeline/types.ts';
import type { CacheAdminRuntime } from '../pipeline/feature.ts';
import type { Metrics } from '../metrics/registry.ts';
import { VERSION } from '../metrics/registry.ts';
import { collectTargets } from '../upstream/address.ts';
import { redactSecrets } from '../config/redact.ts';
import { unimplementedUses, withoutUnread } from '../config/unimplemented.ts';
import { featureEntries, routePolicyView } from '../config/view.ts';
import { upstreamsReport, type UpstreamGroup } from '../upstream/group.ts';
import type { RequestFilter } from '../pipeline/types.ts';
import type { AuditEventType } from '../logging/audit.ts';
import { statusReport, type GatewayStatusInfo } from '../status/report.ts';
import { STATUS_PAGE_CSP, escapeHtml, statusPageHtml } from '../status/page.ts';

export interface BuiltinEnv {
  config: CompiledConfig;
  metrics: Metrics;
  instanceId: string;
  startedAt: number;
  upstreamGroups(): Iterable<UpstreamGroup>;
  /** the HTTP cache (undefined when it is disabled or no route uses it) */
  cache?(): CacheAdminRuntime | undefined;
  /** the status page's live sources beyond the above (the generation's filters, the gateway) */
  status?: { generation: number; filters(): readonly RequestFilter[]; gateway(): GatewayStatusInfo | undefined };
}

const JSON_HEADERS = {
  'content-type': 'application/json; charset=utf-8',
  'cache-control': 'no-cache, no-store, must-revalidate',
};

export function formatUptime(secs: number): string {
  const h = Math.floor(secs / 3600);
  const m = Math.floor((secs % 3600) / 60);
  const s = Math.floor(secs % 60);
  return h > 0 ? `${h}h ${m}m ${s}s` : m > 0 ? `${m}m ${s}s` : `${s}s`;
}

// In a cluster worker the metrics builtin serves the cluster-wide aggregate (the worker asks the
// primary, src/cluster/worker.ts); undefined in a single process.
let clusterMetrics: (() => Promise<string>) | undefined;

export function useClusterMetrics(render: (() => Promise<string>) | undefined): void {
  clusterMetrics = render;
}

function json(status: number, body: unknown, traceId: string, pretty = false): LocalResponse {
  return {
    status,
    headers: { ...JSON_HEADERS, 'x-request-id': traceId },
    body: pretty ? JSON.stringify(body, null, 2) : JSON.stringify(body),
  };
}

export function notFoundBody(traceId: string, message = 'The requested resource could not be found.'): LocalResponse {
  return json(404, { error: 'Not Found', status: 404, message, request_id: traceId, timestamp: new Date().toISOString() }, traceId, true);
}

/**
 * A redacted view of the config: no TLS material, no agent configs, no secret (redact.ts). It
 * shows what applies: keys accepted and never read (unimplemented.ts) are left out of `server`
 * and `limits` and listed under `not_implemented` with the loader's warning when the config sets them.
 */
export function configDump(c: CompiledConfig): unknown {
  return redactSecrets({
    server: withoutUnread('system', c.system),
    listeners: c.listeners.map((l) => ({ id: l.id, address: `${l.host}:${l.port}`, protocol: l.protocol, default_route: l.defaultRoute ?? null, tls: l.tls ? { enabled: true } : null })),
    routes: c.routes.map((r) => ({
      id: r.id,
      priority: r.priority,
      upstream: r.upstream ?? null,
      builtin_handler: r.builtin ?? null,
      filters: r.filters,
      listeners: r.listeners ?? null,
      service_type: r.serviceType,
      ...routePolicyView(r),
      // the features' per-route settings (cache ...), as the view shows them
      ...featureEntries(c, (s) => s.routeView?.(r)),
    })),
    upstreams: [...c.upstreams.values()].map((u) => ({
      id: u.id,
      targets: collectTargets(u).map((t) => ({ address: t.address, weight: t.weight })),
      load_balancing: u['load-balancing'] ?? 'round_robin',
    })),
    filters: [...c.filters.keys()],
    limits: withoutUnread('limits', c.limits),
    // the features' summaries (agents, waf ...), from their compile steps
    ...featureEntries(c, (s) => s.dump?.(c)),
    not_implemented: unimplementedUses(c.raw).map((u) => ({ path: u.path, message: u.message })),
  });
}

/** What a builtin may show: `detail` only on a loopback listener or to an allow-from client. */
export interface BuiltinRequest {
  accept: string;
  detail: boolean;
  /** the listener that received the request (the status page links only what it serves) */
  listener: string;
  /** the request method and target and headers (cache-purge reads its pattern from them) */
  method?: string;
  path?: string;
  query?: string;
  headers?: Record<string, string | string[] | undefined>;
  /** the route's path-prefix matches: the purge endpoint in front of the pattern */
  prefixes?: readonly string[];
  /** writes a request-scoped audit event (admin_action, cache_purge) */
  audit?: (type: AuditEventType, fields: Record<string, unknown>) => void;
}

/** The methods the cache-purge builtin answers: none a page can send cross-site without asking. */
export const PURGE_METHODS = ['POST', 'PURGE', 'DELETE'] as const;

/**
 * Why a cache-purge request is refused, if it is: a state change must not ride a safe method
 * (an `<img>` on any page would purge), nor come from another origin's page in the operator's
 * browser (a form POST needs no CORS preflight). Browsers say where a request comes from
 * (`Sec-Fetch-Site`, and `Origin` on every POST); tools such as curl send neither.
 */
export function purgeRefusal(method: string, headers: Record<string, string | string[] | undefined>): { status: 403 | 405; message: string } | undefined {
  if (!(PURGE_METHODS as readonly string[]).includes(method)) return { status: 405, message: `cache purge takes ${PURGE_METHODS.join(', ')}` };
  const site = headers['sec-fetch-site'];
  const origin = headers.origin;
  const host = headers.host ?? headers[':authority'];
  const crossSite = site !== undefined && site !== 'same-origin' && site !== 'none';
  if (crossSite || (typeof origin === 'string' && (typeof host !== 'string' || originHost(origin) !== host.toLowerCase()))) {
    return { status: 403, message: 'cache purge refused: a cross-origin request from a browser' };
  }
  return undefined;
}

/** `host[:port]` of an Origin header; undefined for `null` (sandboxed, file:) or garbage. */
function originHost(origin: string): string | undefined {
  try {
    return new URL(origin).host;
  } catch {
    return undefined;
  }
}

/**
 * What a cache-purge request asks to purge: the path after the route's path-prefix (the
 * endpoint) plus the query: with path-prefix "/admin/cache/purge",
 * "/admin/cache/purge/assets/app.js?v=2" purges "/assets/app.js?v=2".
 */
export function purgePattern(path: string, query: string, prefixes: readonly string[]): string {
  let p = path;
  for (const prefix of prefixes) {
    const base = prefix.endsWith('/') ? prefix.slice(0, -1) : prefix;
    if (p === base || p.startsWith(`${base}/`)) {
      p = p.slice(base.length);
      break;
    }
  }
  if (p === '') p = '/';
  return query ? `${p}?${query}` : p;
}

/**
 * The status page for browsers: what is running and where to look next (details only when
 * allowed). An anonymous client is not shown where the state-revealing builtins live (an
 * allow-from route's path on a public listener is the operator's, not a visitor's, business).
 */
function welcomePage(env: BuiltinEnv, uptime: number, req: BuiltinRequest): string {
  const served = env.config.routesByListener.get(req.listener) ?? env.config.routes;
  const routes = served
    .filter((r) => r.builtin && r.raw.matches && (req.detail || !STATE_REVEALING_BUILTINS.includes(r.builtin)))
    .map((r) => {
      const m = r.raw.matches!;
      const p = m.path?.[0] ?? m['path-prefix']?.[0];
      return p ? `<li><a href="${escapeHtml(p)}">${escapeHtml(p)}</a> — ${r.builtin}</li>` : '';
    })
    .join('');
  const facts = req.detail ? `<p>Version ${VERSION}, up ${formatUptime(uptime)}, ${env.config.routes.length} routes, ${env.config.upstreams.size} upstreams.</p>\n` : '';
  return `<!DOCTYPE html><html><head><meta charset="utf-8"><title>Sentinel</title>
<style>body{font-family:system-ui,sans-serif;max-width:40rem;margin:3rem auto;color:#222}code{background:#eee;padding:0 .3em}</style></head>
<body><h1>Sentinel is running</h1>
${facts}<p>This is the embedded default configuration. Run your own with <code>sentinel run -c my.kdl</code>.</p>
<ul>${routes}<li><a href="/_/ready">/_/ready</a> — readiness probe</li></ul>
</body></html>`;
}

/** The status page answers JSON to `?format=json` or a client that asks for JSON and not HTML. */
export function wantsJson(query: string, accept: string): boolean {
  const format = new URLSearchParams(query).get('format');
  if (format !== null) return format === 'json';
  return accept.includes('application/json') && !accept.includes('text/html');
}

/** `?refresh=N` seconds for the page's own polling, 1 to 300 (default 2). */
export function refreshSecs(query: string): number {
  const n = Number(new URLSearchParams(query).get('refresh') ?? '');
  return Number.isInteger(n) && n >= 1 && n <= 300 ? n : 2;
}

function statusPage(env: BuiltinEnv, traceId: string, req: BuiltinRequest): LocalResponse {
  const report = statusReport(
    {
      config: env.config,
      instanceId: env.instanceId,
      startedAt: env.startedAt,
      servingGeneration: env.status?.generation ?? 0,
      gateway: () => env.status?.gateway(),
      upstreamGroups: env.upstreamGroups,
      filters: () => env.status?.filters() ?? [],
      cacheStats: () => env.cache?.()?.stats(),
    },
    traceId,
  );
  const query = req.query ?? '';
  // the page's own JSON polls (every few seconds) are not audited, a page view is
  if (wantsJson(query, req.accept)) return json(200, report, traceId);
  req.audit?.('admin_action', { action: 'status-page', status_code: 200 });
  // the page polls its own path for JSON (works for path and path-prefix routes alike)
  const refresh = refreshSecs(query);
  const jsonUrl = `${req.path ?? '/'}?format=json`;
  return {
    status: 200,
    headers: {
      'content-type': 'text/html; charset=utf-8',
      'cache-control': 'no-cache, no-store, must-revalidate',
      'content-security-policy': STATUS_PAGE_CSP,
      'x-content-type-options': 'nosniff',
      'x-frame-options': 'DENY',
      'referrer-policy': 'no-referrer',
      'x-request-id': traceId,
    },
    body: statusPageHtml(report, jsonUrl, refresh),
  };
}

export async function runBuiltin(handler: BuiltinHandler, env: BuiltinEnv, traceId: string, req: BuiltinRequest): Promise<LocalResponse> {
  const now = new Date().toISOString();
  switch (handler) {
    case 'health':
      return json(200, { status: 'healthy', timestamp: now }, traceId);
    case 'status': {
      const uptime = (Date.now() - env.startedAt) / 1000;
      if (req.accept.includes('text/html')) {
        return { status: 200, headers: { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-cache', 'x-request-id': traceId }, body: welcomePage(env, uptime, req) };
      }
      // Version, uptime and instance id help an attacker fingerprint: only for loopback / allow-from.
      if (!req.detail) return json(200, { status: 'ok', timestamp: now }, traceId, true);
      return json(200, { status: 'ok', version: VERSION, uptime: formatUptime(uptime), uptime_secs: Math.floor(uptime), instance_id: env.instanceId, timestamp: now }, traceId, true);
    }
    case 'metrics':
      return {
        status: 200,
        headers: { 'content-type': 'text/plain; version=0.0.4; charset=utf-8', 'cache-control': 'no-cache, no-store, must-revalidate', 'x-request-id': traceId },
        body: await (clusterMetrics ?? (() => env.metrics.render()))(),
      };
    case 'not-found':
      return notFoundBody(traceId);
    case 'config':
      req.audit?.('admin_action', { action: 'config', status_code: 200 });
      return json(200, configDump(env.config), traceId, true);
    case 'upstreams':
      req.audit?.('admin_action', { action: 'upstreams', status_code: 200 });
      return json(200, upstreamsReport(env.upstreamGroups(), traceId, now), traceId, true);
    case 'status-page':
      // Who may ask is the route's business (admin listener / allow-from, see STATE_REVEALING_BUILTINS).
      return statusPage(env, traceId, req);
    case 'cache-purge':
    case 'cache-stats': {
      // Who may ask is the route's business (admin listener / allow-from, see STATE_REVEALING_BUILTINS).
      const h = req.headers ?? {};
      const refused = handler === 'cache-purge' ? purgeRefusal(req.method ?? 'GET', h) : undefined;
      if (refused) {
        // counted and audited as a refused PURGE is (blockReason)
        const answer = json(refused.status, { error: refused.status === 405 ? 'Method Not Allowed' : 'Forbidden', status: refused.status, message: refused.message, request_id: traceId }, traceId);
        if (refused.status === 405) answer.headers = { ...answer.headers, allow: PURGE_METHODS.join(', ') };
        return { ...answer, blockReason: 'cache_purge_denied' };
      }
      const cache = env.cache?.();
      if (!cache) return json(503, { error: 'Service Unavailable', status: 503, message: 'the HTTP cache is disabled (cache { enabled #false }) or no route caches', request_id: traceId }, traceId);
      if (handler === 'cache-stats') {
        req.audit?.('admin_action', { action: 'cache-stats', status_code: 200 });
        return cache.statsResponse(traceId);
      }
      const wildcard = String(h['x-purge-wildcard'] ?? '').toLowerCase() === 'true';
      const host = typeof h['x-purge-host'] === 'string' ? h['x-purge-host'].toLowerCase() : undefined;
      const pattern = purgePattern(req.path ?? '/', req.query ?? '', req.prefixes ?? []);
      const { response, purged } = await cache.purgeResponse(pattern, wildcard, host, traceId);
      req.audit?.('cache_purge', { action: 'purge', pattern, wildcard, host, status_code: response.status, purged_entries: purged });
      return response;
    }
  }
}
