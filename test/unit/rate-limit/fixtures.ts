// Fake RequestContext / GenerationServices for driving rate-limit filters without the core.
import type { IncomingMessage } from 'node:http';
import { withCancellation } from '../../helpers/cancellation.ts';
import { pino } from 'pino';
import { Metrics } from '../../../src/metrics/registry.ts';
import type { GenerationServices, RequestContext } from '../../../src/pipeline/types.ts';
import { parseKdl } from '../../../src/config/kdl-loader.ts';
import { Decoder } from '../../../src/config/decode.ts';
import { filterSchema } from '../../../src/config/schema.ts';
import { COMPOSITION } from '../../../src/features.ts';
import { RateLimitsSchema } from '../../../plugins/rate-limit/schema.ts';

export interface FakeServices extends GenerationServices {
  readonly auditEvents: Record<string, unknown>[];
}

export function fakeServices(metrics = new Metrics({ defaultMetrics: false })): FakeServices {
  const auditEvents: Record<string, unknown>[] = [];
  return {
    generation: 1,
    log: pino({ level: 'silent' }),
    metrics,
    audit: (e) => auditEvents.push(e),
    routeFailureMode: () => 'closed',
    auditEvents,
  };
}

export function fakeCtx(opts: { ip?: string; path?: string; routeId?: string; headers?: Record<string, string>; signal?: AbortSignal } = {}): RequestContext {
  const signal = opts.signal ?? new AbortController().signal;
  return withCancellation({
    traceId: 'trace-1',
    startTime: 0,
    trace: undefined,
    timestamp: new Date().toISOString(),
    raw: { headers: opts.headers ?? {} } as unknown as IncomingMessage,
    method: 'GET',
    path: opts.path ?? '/api',
    query: '',
    host: 'example.test',
    clientIp: opts.ip ?? '192.0.2.1',
    clientPort: 40000,
    listenerId: 'http',
    protocol: 'http',
    httpVersion: '1.1',
    tls: undefined,
    routeId: opts.routeId ?? 'api',
    upstreamId: 'backend',
    upstreamHeaders: { ...opts.headers },
    responseHeaders: {},
    body: undefined,
    signal,
    audit: { tags: [], ruleIds: [], rateLimited: false },
    state: new Map(),
    log: pino({ level: 'silent' }),
  }, signal);
}

/** Decodes `filter "id" { type "rate-limit" ... }` KDL with the project's decoder, as the core does. */
export function decodeFilter(body: string): { config: Record<string, unknown>; diagnostics: Decoder['diagnostics'] } {
  const [node] = parseKdl(`filter "f" {\n type "rate-limit"\n ${body}\n}`, 'test.kdl');
  const d = new Decoder();
  const config = d.decodeObject(filterSchema(COMPOSITION.language.filterTypes, 'rate-limit'), { values: [], properties: node!.properties, children: node!.children }, 'filters > filter "f"', node);
  return { config, diagnostics: d.diagnostics };
}

export function decodeRateLimits(body: string): { config: Record<string, unknown>; diagnostics: Decoder['diagnostics'] } {
  const [node] = parseKdl(`rate-limits {\n ${body}\n}`, 'test.kdl');
  const d = new Decoder();
  const config = d.decodeObject(RateLimitsSchema, { values: [], properties: {}, children: node!.children }, 'rate-limits', node);
  return { config, diagnostics: d.diagnostics };
}

/** A counter's value for one label set, read from the registry. */
export async function metricValue(metrics: Metrics, name: string, labels: Record<string, string> = {}): Promise<number> {
  const m = metrics.registry.getSingleMetric(name);
  if (!m) return 0;
  const data = await m.get();
  let sum = 0;
  for (const v of data.values) {
    if (Object.entries(labels).every(([k, val]) => String((v.labels as Record<string, unknown>)[k]) === val)) sum += v.value;
  }
  return sum;
}
