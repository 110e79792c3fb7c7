// The tracing block, checked and resolved (pure: table-tested in test/unit/tracing/settings.test.ts).
import type { Static } from 'typebox';
import type { Diagnostic } from '../../src/config/diagnostics.ts';
import { parseDurationMs } from '../../src/config/types-helpers.ts';
import type { TracingSchema } from './schema.ts';

export type RawTracing = Static<typeof TracingSchema>;

export interface TracingSettings {
  /** the OTLP/HTTP traces URL spans are POSTed to */
  readonly url: string;
  /** the OTLP/HTTP encoding: protobuf (the default) or JSON */
  readonly protocol: 'http/protobuf' | 'http/json';
  readonly samplingRate: number;
  readonly serviceName: string;
  readonly maxQueueSize: number;
  readonly maxExportBatchSize: number;
  readonly scheduledDelayMs: number;
  readonly exportTimeoutMs: number;
  /** the OTLP/HTTP requests in a worker thread of their own (`export-thread`, default #false: measured dearer, docs/tracing.md "Session 21 quiet figures") */
  readonly exportThread: boolean;
}

const PATH = 'observability > tracing';
const EXAMPLE = 'backend "otlp" { endpoint "http://127.0.0.1:4318" }';

/** Whether the config asks for tracing (a tracing block without `enabled #false`). */
export function tracingEnabled(raw: RawTracing | undefined): raw is RawTracing {
  return raw !== undefined && raw.enabled !== false;
}

/**
 * An OTLP/HTTP endpoint without a path gets the signal path `/v1/traces` (as
 * OTEL_EXPORTER_OTLP_ENDPOINT does); one with a path is used as given.
 */
export function tracesUrl(endpoint: string): string {
  const u = new URL(endpoint);
  if (u.pathname === '/' || u.pathname === '') u.pathname = '/v1/traces';
  return u.toString();
}

/** Problems with an enabled tracing block (a disabled one is not checked). */
export function validateTracing(raw: RawTracing | undefined): Diagnostic[] {
  if (!tracingEnabled(raw)) return [];
  const out: Diagnostic[] = [];
  const error = (path: string, message: string) => out.push({ severity: 'error', path, message });
  const b = raw.backend;
  if (!b) {
    error(PATH, `a backend is required, e.g. ${EXAMPLE}`);
  } else if (b.type !== 'otlp') {
    const known = b.type === 'jaeger' || b.type === 'zipkin';
    error(
      `${PATH} > backend`,
      known
        ? `backend "${b.type}" is not built: only "otlp" (OTLP/HTTP) is; Jaeger and Zipkin both accept OTLP, e.g. ${EXAMPLE}`
        : `unknown backend "${b.type}": expected "otlp" (only OTLP/HTTP is built), e.g. ${EXAMPLE}`,
    );
  } else if (b.endpoint === undefined) {
    error(`${PATH} > backend`, `an endpoint is required, e.g. ${EXAMPLE}`);
  } else {
    let u: URL | undefined;
    try {
      u = new URL(b.endpoint);
    } catch {
      error(`${PATH} > backend > endpoint`, `"${b.endpoint}" is not a URL: expected http(s)://host:port[/path]`);
    }
    if (u && u.protocol !== 'http:' && u.protocol !== 'https:') error(`${PATH} > backend > endpoint`, `"${b.endpoint}": the OTLP/HTTP exporter needs an http:// or https:// URL`);
    else if (u?.port === '4317') out.push({ severity: 'warning', path: `${PATH} > backend > endpoint`, message: `port 4317 is the OTLP/gRPC port; Sentinel exports OTLP/HTTP (collectors listen on 4318 for it)` });
  }
  const queue = raw['max-queue-size'] ?? 2048;
  const batch = raw['max-export-batch-size'] ?? 512;
  if (batch > queue) error(`${PATH} > max-export-batch-size`, `${batch} is larger than max-queue-size ${queue}`);
  for (const key of ['scheduled-delay', 'export-timeout'] as const) {
    try {
      parseDurationMs(raw[key]);
    } catch (err) {
      error(`${PATH} > ${key}`, (err as Error).message);
    }
  }
  return out;
}

/** The settings of a valid, enabled block; undefined when tracing is off. */
export function tracingSettings(raw: RawTracing | undefined): TracingSettings | undefined {
  if (!tracingEnabled(raw) || raw.backend?.endpoint === undefined) return undefined;
  return {
    url: tracesUrl(raw.backend.endpoint),
    protocol: raw.backend.protocol ?? 'http/protobuf',
    samplingRate: raw['sampling-rate'] ?? 0.01,
    serviceName: raw['service-name'] ?? 'sentinel',
    maxQueueSize: raw['max-queue-size'] ?? 2048,
    maxExportBatchSize: raw['max-export-batch-size'] ?? 512,
    scheduledDelayMs: parseDurationMs(raw['scheduled-delay']) ?? 1000,
    exportTimeoutMs: parseDurationMs(raw['export-timeout']) ?? 10_000,
    exportThread: raw['export-thread'] ?? false,
  };
}
