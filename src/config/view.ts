// A JSON view of a compiled config: what golden tests compare and `sentinel migrate` checks a rewrite against.
// Secrets are redacted (src/config/redact.ts): the dump may be pasted into an issue.
import type { CompiledConfig, CompiledRoute, ConfigCompileSteps } from './compile.ts';
import { redactSecrets } from './redact.ts';

export function configView(c: CompiledConfig): unknown {
  return redactSecrets({
    system: c.system,
    listeners: c.listeners,
    routes: c.routes.map((r) => ({
      id: r.id,
      priority: r.priority,
      specificity: r.specificity,
      upstream: r.upstream ?? null,
      builtin: r.builtin ?? null,
      filters: r.filters,
      listeners: r.listeners ?? null,
      service_type: r.serviceType,
      ...routePolicyView(r),
      request_headers: r.requestHeaders ?? null,
      response_headers: r.responseHeaders ?? null,
      ...featureEntries(c, (s) => s.routeView?.(r)),
    })),
    upstreams: Object.fromEntries(c.upstreams),
    filters: Object.fromEntries(c.filters),
    limits: c.limits,
    observability: c.observability,
    // the features' blocks (agents, cache ...), from their compile steps
    ...featureEntries(c, (s) => s.view?.(c)),
    warnings: c.warnings.map((w) => `${w.path}: ${w.message}`),
  });
}

/**
 * What a route lets through and how it fails: shared by this view and the admin `config` dump, so
 * an operator reading the dump sees the same per-route policies the golden tests pin.
 */
export function routePolicyView(r: CompiledRoute): Record<string, unknown> {
  return {
    allow_from: r.raw['allow-from'] ?? null,
    failure_mode: r.failureMode,
    timeout_ms: r.timeoutMs ?? null,
    max_body_bytes: r.maxBodyBytes ?? null,
    // only when set, so the views of configs without them keep their shape
    ...(r.bodyBufferBytes !== undefined ? { body_buffer_bytes: r.bodyBufferBytes } : {}),
    ...(r.methodOverrides !== undefined ? { forward_method_override: [...r.methodOverrides] } : {}),
    ...(r.websocketOrigins !== undefined ? { websocket_allowed_origins: [...r.websocketOrigins] } : {}),
    matches: r.raw.matches ?? {},
  };
}

/** What the features' compile steps add to a view, merged in step order. */
export function featureEntries(c: CompiledConfig, pick: (s: ConfigCompileSteps) => Record<string, unknown> | undefined): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const s of c.steps) Object.assign(out, pick(s));
  return out;
}
