// A JSON view of a compiled config: what golden tests compare and `sentinel test --dump` prints.
// Secrets are redacted (src/config/redact.ts): the dump may be pasted into an issue.
import type { CompiledConfig } from './compile.ts';
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
      allow_from: r.raw['allow-from'] ?? null,
      service_type: r.serviceType,
      failure_mode: r.failureMode,
      timeout_ms: r.timeoutMs ?? null,
      max_body_bytes: r.maxBodyBytes ?? null,
      matches: r.raw.matches ?? {},
      request_headers: r.requestHeaders ?? null,
      response_headers: r.responseHeaders ?? null,
      ...(r.cache ? { cache: r.cache } : {}),
    })),
    upstreams: Object.fromEntries(c.upstreams),
    filters: Object.fromEntries(c.filters),
    agents: c.raw.agents ?? [],
    limits: c.limits,
    observability: c.observability,
    ...(c.raw.cache ? { cache: c.cache } : {}),
    warnings: c.warnings.map((w) => `${w.path}: ${w.message}`),
  });
}
