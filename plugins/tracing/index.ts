// The tracing feature: OpenTelemetry spans for each request, exported over OTLP/HTTP
// (docs/tracing.md). Registered only when `observability { tracing { ... } }` is enabled; when
// it is not, the core's per-request cost is one `undefined` check.
import { defineFeature, DECORATION } from '../../src/pipeline/feature.ts';
import { VERSION } from '../../src/metrics/registry.ts';
import { tracingEnabled, tracingSettings, validateTracing } from './settings.ts';
import { Tracing } from './tracer.ts';
import { TracingConfigKeys } from './schema.ts';

/** How long a reload or shutdown waits for the last spans to reach the collector. */
const FLUSH_BOUND_MS = 2000;
/** At most one "export failed" warning per this interval. */
const WARN_EVERY_MS = 60_000;

export const tracingFeature = defineFeature({
  name: 'tracing',
  dependencies: [],
  uses: (config) => tracingEnabled(config.observability.tracing),
  schema: TracingConfigKeys,
  validators: { top: (raw) => validateTracing(raw.observability?.tracing) },
  register(app, host) {
    const settings = tracingSettings(host.config.observability.tracing);
    // validateTracing refused the config already when this is undefined
    if (!settings) throw new Error('observability > tracing: a backend with an endpoint is required');
    const { metrics, log } = host.services;
    const exported = metrics.counter('sentinel_tracing_spans_exported_total', 'Spans the OTLP exporter delivered to the collector');
    const dropped = metrics.counter('sentinel_tracing_spans_dropped_total', 'Spans lost, by reason: queue_full (the bounded export queue was full), closed (ended after the queue closed at reload or shutdown), encode_failed (could not be encoded) or export_failed (the collector refused, failed or timed out)', ['reason'] as const);
    let lastWarn = -Infinity;
    const tracing = new Tracing(
      settings,
      { instanceId: host.instance.id, version: VERSION },
      {
        exported: (n) => exported.inc(n),
        dropped: (n, reason, detail) => {
          dropped.inc({ reason }, n);
          const now = performance.now();
          if (now - lastWarn >= WARN_EVERY_MS) {
            lastWarn = now;
            log.warn({ spans: n, reason, endpoint: settings.url, ...(detail ? { error: detail } : {}) }, 'trace spans dropped');
          }
        },
        rejected: (n, message) => {
          const now = performance.now();
          if (now - lastWarn >= WARN_EVERY_MS) {
            lastWarn = now;
            log.warn({ spans: n, endpoint: settings.url, message }, 'the collector rejected trace spans (OTLP partial success)');
          }
        },
      },
    );
    for (const w of tracing.warnings) log.warn({ endpoint: settings.url }, `tracing export: ${w}`);
    app.decorate(DECORATION.tracing, tracing);
    host.onDispose(() => tracing.shutdown(FLUSH_BOUND_MS));
  },
});
export default tracingFeature;
