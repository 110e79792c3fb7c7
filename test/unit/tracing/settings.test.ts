// The tracing block: validation (clear errors through the real config loader) and the resolved
// settings; the pure helpers of the tracer (route template, traceparent, span clock).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TraceFlags } from '@opentelemetry/api';
import { loadConfigText } from '../../../src/config/load.ts';
import { ConfigError, formatDiagnostic } from '../../../src/config/diagnostics.ts';
import { pluginValidators } from '../../../src/server/validators.ts';
import { tracesUrl, tracingSettings, validateTracing, type RawTracing } from '../../../plugins/tracing/settings.ts';
import { hrTime, routeTemplate, traceparentOf } from '../../../plugins/tracing/tracer.ts';
import type { CompiledRoute } from '../../../src/config/compile.ts';

const base = `listeners { listener "http" { address "127.0.0.1:0" } }
routes { route "r" { builtin-handler "health" } }
`;

/** Loads a config with the tracing block; returns its diagnostics as printed. */
function diagnostics(tracing: string): { errors: string[]; warnings: string[] } {
  try {
    const c = loadConfigText(`${base}observability { tracing { ${tracing} } }`, { validators: pluginValidators });
    return { errors: [], warnings: c.warnings.map((w) => (typeof w === 'string' ? w : formatDiagnostic(w))) };
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    return { errors: err.diagnostics.filter((d) => d.severity === 'error').map(formatDiagnostic), warnings: [] };
  }
}

const cases: { name: string; tracing: string; error?: RegExp; warning?: RegExp }[] = [
  { name: 'reference form', tracing: 'backend "otlp" { endpoint "http://127.0.0.1:4318" }; sampling-rate 0.01; service-name "sentinel"' },
  { name: 'integer rate', tracing: 'backend "otlp" { endpoint "http://127.0.0.1:4318" }; sampling-rate 1' },
  { name: 'disabled without a backend', tracing: 'enabled #false' },
  { name: 'no backend', tracing: 'sampling-rate 0.5', error: /observability > tracing: a backend is required, e\.g\. backend "otlp"/ },
  { name: 'no endpoint', tracing: 'backend "otlp"', error: /observability > tracing > backend: an endpoint is required/ },
  { name: 'jaeger', tracing: 'backend "jaeger" { endpoint "http://127.0.0.1:14268" }', error: /backend "jaeger" is not built: only "otlp"/ },
  { name: 'zipkin', tracing: 'backend "zipkin" { endpoint "http://127.0.0.1:9411" }', error: /backend "zipkin" is not built/ },
  { name: 'unknown backend', tracing: 'backend "datadog" { endpoint "http://x" }', error: /unknown backend "datadog": expected "otlp"/ },
  { name: 'not a URL', tracing: 'backend "otlp" { endpoint "collector:4318" }', error: /endpoint: .*(not a URL|http:\/\/ or https:\/\/)/ },
  { name: 'grpc scheme', tracing: 'backend "otlp" { endpoint "grpc://127.0.0.1:4317" }', error: /needs an http:\/\/ or https:\/\/ URL/ },
  { name: 'json protocol', tracing: 'backend "otlp" { endpoint "http://127.0.0.1:4318"; protocol "http/json" }' },
  { name: 'grpc protocol', tracing: 'backend "otlp" { endpoint "http://127.0.0.1:4318"; protocol "grpc" }', error: /protocol/ },
  { name: 'rate above 1', tracing: 'backend "otlp" { endpoint "http://127.0.0.1:4318" }; sampling-rate 2', error: /sampling-rate/ },
  { name: 'negative rate', tracing: 'backend "otlp" { endpoint "http://127.0.0.1:4318" }; sampling-rate -0.1', error: /sampling-rate/ },
  { name: 'batch above queue', tracing: 'backend "otlp" { endpoint "http://127.0.0.1:4318" }; max-queue-size 10; max-export-batch-size 20', error: /max-export-batch-size: 20 is larger than max-queue-size 10/ },
  { name: 'gRPC port', tracing: 'backend "otlp" { endpoint "http://127.0.0.1:4317" }', warning: /port 4317 is the OTLP\/gRPC port/ },
];

for (const c of cases) {
  test(`tracing config: ${c.name}`, () => {
    const d = diagnostics(c.tracing);
    if (c.error) {
      assert.ok(d.errors.some((e) => c.error!.test(e)), `expected an error ${c.error}, got: ${d.errors.join(' | ') || 'none'}`);
    } else {
      assert.deepEqual(d.errors, []);
      if (c.warning) assert.ok(d.warnings.some((w) => c.warning!.test(w)), `expected a warning ${c.warning}, got: ${d.warnings.join(' | ')}`);
      else assert.ok(!d.warnings.some((w) => /tracing/.test(w)), `no tracing warning: ${d.warnings.join(' | ')}`);
    }
  });
}

test('settings: defaults, the /v1/traces path, and off when disabled or absent', () => {
  const raw = { backend: { type: 'otlp', endpoint: 'http://127.0.0.1:4318' } } as RawTracing;
  assert.deepEqual(validateTracing(raw), []);
  assert.deepEqual(tracingSettings(raw), {
    url: 'http://127.0.0.1:4318/v1/traces',
    protocol: 'http/protobuf',
    samplingRate: 0.01,
    serviceName: 'sentinel',
    maxQueueSize: 2048,
    maxExportBatchSize: 512,
    scheduledDelayMs: 1000,
    exportTimeoutMs: 10_000,
    exportThread: false,
  });
  assert.equal(tracingSettings({ ...raw, 'export-thread': true })?.exportThread, true);
  assert.equal(tracingSettings({ ...raw, 'scheduled-delay': '250ms', 'export-timeout': 3 })?.exportTimeoutMs, 3000);
  assert.equal(tracingSettings({ ...raw, 'scheduled-delay': '250ms' })?.scheduledDelayMs, 250);
  assert.equal(tracingSettings({ ...raw, backend: { ...raw.backend!, protocol: 'http/json' } })?.protocol, 'http/json');
  assert.equal(tracingSettings({ ...raw, enabled: false }), undefined);
  assert.equal(tracingSettings(undefined), undefined);
  assert.deepEqual(validateTracing({ enabled: false } as RawTracing), []);
  for (const [given, url] of [
    ['http://c:4318', 'http://c:4318/v1/traces'],
    ['http://c:4318/', 'http://c:4318/v1/traces'],
    ['https://c/otlp/v1/traces', 'https://c/otlp/v1/traces'],
    ['http://c:4318/custom', 'http://c:4318/custom'],
  ] as const) assert.equal(tracesUrl(given), url, given);
});

test('route template: one exact path or one prefix, else none', () => {
  const route = (matches: Record<string, string[]> | undefined) => ({ raw: { matches } }) as unknown as CompiledRoute;
  const table: [Record<string, string[]> | undefined, string | undefined][] = [
    [{ path: ['/login'] }, '/login'],
    [{ 'path-prefix': ['/api'] }, '/api/*'],
    [{ 'path-prefix': ['/api/'] }, '/api/*'],
    [{ 'path-prefix': ['/'] }, '/*'],
    [{ 'path-prefix': ['/a', '/b'] }, undefined],
    [{ path: ['/a'], 'path-prefix': ['/b'] }, undefined],
    [{ 'path-regex': ['^/x'] }, undefined],
    [{ host: ['example.test'] } as Record<string, string[]>, undefined],
    [undefined, undefined],
  ];
  for (const [matches, want] of table) assert.equal(routeTemplate(route(matches)), want, JSON.stringify(matches));
});

test('traceparent of a span context', () => {
  const traceId = '0af7651916cd43dd8448eb211c80319c';
  const spanId = 'b7ad6b7169203331';
  assert.equal(traceparentOf({ traceId, spanId, traceFlags: TraceFlags.SAMPLED }), `00-${traceId}-${spanId}-01`);
  assert.equal(traceparentOf({ traceId, spanId, traceFlags: TraceFlags.NONE }), `00-${traceId}-${spanId}-00`);
});

test('span clock: performance.now() on the time origin, nanoseconds normalised and ordered', () => {
  const toNs = ([s, ns]: [number, number]) => BigInt(s) * 1_000_000_000n + BigInt(ns);
  const origin = toNs(hrTime(0));
  const originMs = BigInt(Math.round(performance.timeOrigin));
  assert.ok(origin / 1_000_000n - originMs <= 1n && originMs - origin / 1_000_000n <= 1n, 'hrTime(0) is the time origin');
  const samples = [0, 0.0005, 1, 999.9999, 1000, 1234.5678, 86_400_000.25];
  for (const ms of samples) {
    const [s, ns] = hrTime(ms);
    assert.ok(Number.isInteger(s) && Number.isInteger(ns) && ns >= 0 && ns < 1e9, `normalised at ${ms}`);
    const delta = Number(toNs([s, ns]) - origin) / 1e6;
    assert.ok(Math.abs(delta - ms) < 0.001, `${ms} ms after the origin (got ${delta})`);
  }
  for (let i = 1; i < samples.length; i++) assert.ok(toNs(hrTime(samples[i]!)) > toNs(hrTime(samples[i - 1]!)));
});
