// The OpenTelemetry side of tracing: a TracerProvider per generation (parent-based ratio
// sampler, batch processor with a bounded queue, OTLP/HTTP exporter) and the RequestTrace the
// core drives (src/pipeline/types.ts). Spans are opened explicitly at the pipeline's fixed points
// with their parent passed by hand: no context manager, no AsyncLocalStorage, no patched modules.
import type { IncomingMessage } from 'node:http';
import { ROOT_CONTEXT, SpanKind, SpanStatusCode, TraceFlags, createNoopMeter, trace, type Attributes, type Context, type Counter as OtelCounter, type HrTime, type Meter, type MeterProvider, type Span, type SpanContext, type TextMapGetter, type Tracer } from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { BatchSpanProcessor, ParentBasedSampler, TraceIdRatioBasedSampler, TracerProvider } from '@opentelemetry/sdk-trace';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { resourceFromAttributes } from '@opentelemetry/resources';
import {
  ATTR_ERROR_TYPE,
  ATTR_HTTP_REQUEST_METHOD,
  ATTR_HTTP_REQUEST_METHOD_ORIGINAL,
  ATTR_HTTP_RESPONSE_STATUS_CODE,
  ATTR_HTTP_ROUTE,
  ATTR_NETWORK_PEER_ADDRESS,
  ATTR_NETWORK_PEER_PORT,
  ATTR_NETWORK_PROTOCOL_VERSION,
  ATTR_SERVER_ADDRESS,
  ATTR_SERVICE_INSTANCE_ID,
  ATTR_SERVICE_NAME,
  ATTR_SERVICE_VERSION,
  ATTR_URL_PATH,
  ATTR_URL_SCHEME,
  ATTR_USER_AGENT_ORIGINAL,
} from '@opentelemetry/semantic-conventions';
import type { CompiledRoute } from '../../src/config/compile.ts';
import { stripPort } from '../../src/routing/match.ts';
import type { RequestTrace, TraceSpan } from '../../src/pipeline/types.ts';
import type { TracingRuntime } from '../../src/pipeline/feature.ts';
import type { TracingSettings } from './settings.ts';

/** What the exporter side reports (the plugin turns it into Prometheus counters). */
export interface ExportEvents {
  exported(spans: number): void;
  dropped(spans: number, reason: 'queue_full' | 'export_failed'): void;
}

/** `00-<trace id>-<span id>-<flags>` */
export function traceparentOf(sc: SpanContext): string {
  return `00-${sc.traceId}-${sc.spanId}-${(sc.traceFlags & TraceFlags.SAMPLED) === TraceFlags.SAMPLED ? '01' : '00'}`;
}

const STANDARD_METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'CONNECT', 'OPTIONS', 'TRACE', 'PATCH', 'QUERY']);

/**
 * The low-cardinality route template (`http.route`) of a route: its one exact path, or its one
 * path prefix followed by `*`. Undefined when the route matches on several paths, a regex or no
 * path (the span then carries only `sentinel.route.id`).
 */
export function routeTemplate(route: Pick<CompiledRoute, 'raw'>): string | undefined {
  const m = route.raw.matches;
  if (!m) return undefined;
  const exact = m.path ?? [];
  const prefixes = m['path-prefix'] ?? [];
  const regex = m['path-regex'] ?? [];
  if (regex.length > 0 || exact.length + prefixes.length !== 1) return undefined;
  if (exact.length === 1) return exact[0];
  const p = prefixes[0]!;
  return p.endsWith('/') ? `${p}*` : `${p}/*`;
}

// Span times are given to the SDK as [seconds, nanoseconds] from one clock (performance.now()
// on top of the process's time origin). Given a number, the SDK anchors each span to Date.now()
// (millisecond steps) on its own, and a span started at a given time would end at Date.now():
// sibling spans could then appear out of order by up to a millisecond.
const ORIGIN_S = Math.floor(performance.timeOrigin / 1000);
const ORIGIN_NS = Math.round((performance.timeOrigin - ORIGIN_S * 1000) * 1e6);

/** A performance.now() value as OpenTelemetry HrTime (wall clock). */
export function hrTime(perfMs: number): HrTime {
  const whole = Math.floor(perfMs);
  let ns = ORIGIN_NS + Math.round((perfMs - whole) * 1e6) + (whole % 1000) * 1e6;
  let s = ORIGIN_S + Math.floor(whole / 1000);
  s += Math.floor(ns / 1e9);
  ns %= 1e9;
  return [s, ns];
}

/** A span that records nothing: children of an unsampled request carry its context onward. */
class QuietSpan implements TraceSpan {
  constructor(readonly traceparent: string) {}
  set(): void {}
  fail(): void {}
  end(): void {}
}

class OtelSpan implements TraceSpan {
  private tp: string | undefined;
  constructor(readonly span: Span) {}
  get traceparent(): string {
    return (this.tp ??= traceparentOf(this.span.spanContext()));
  }
  set(key: string, value: string | number | boolean): void {
    this.span.setAttribute(key, value);
  }
  fail(errorType: string): void {
    this.span.setAttribute(ATTR_ERROR_TYPE, errorType);
    this.span.setStatus({ code: SpanStatusCode.ERROR });
  }
  end(): void {
    this.span.end(hrTime(performance.now()));
  }
}

class Traced implements RequestTrace {
  readonly traceId: string;
  readonly spanId: string;
  readonly sampled: boolean;
  readonly server: TraceSpan;
  current: TraceSpan;
  private parent: Context | undefined;
  constructor(
    private readonly tracer: Tracer,
    private readonly span: Span,
    readonly method: string,
  ) {
    const sc = span.spanContext();
    this.traceId = sc.traceId;
    this.spanId = sc.spanId;
    this.sampled = span.isRecording();
    this.server = this.sampled ? new OtelSpan(span) : new QuietSpan(traceparentOf(sc));
    this.current = this.server;
  }
  child(name: string, kind: 'internal' | 'client', startTime?: number): TraceSpan {
    if (!this.sampled) return this.server;
    this.parent ??= trace.setSpan(ROOT_CONTEXT, this.span);
    return new OtelSpan(this.tracer.startSpan(name, { kind: kind === 'client' ? SpanKind.CLIENT : SpanKind.INTERNAL, startTime: hrTime(startTime ?? performance.now()) }, this.parent));
  }
  finish(status: number, errorType: string | undefined): void {
    if (!this.sampled) return;
    this.span.setAttribute(ATTR_HTTP_RESPONSE_STATUS_CODE, status);
    // Server spans: 4xx are the client's business, not an error of the server (semantic conventions).
    if (status >= 500 || errorType !== undefined) this.server.fail(errorType ?? String(status));
    this.span.end(hrTime(performance.now()));
  }
}

/** The SDK's own span-processor counter (otel.sdk.processor.span.processed) reported as events. */
function selfObservability(events: ExportEvents): MeterProvider {
  const noop = createNoopMeter();
  const meter = Object.create(noop) as Meter;
  const processed = {
    add(count: number, attrs?: Attributes): void {
      const error = attrs?.[ATTR_ERROR_TYPE];
      if (error === undefined) events.exported(count);
      else events.dropped(count, error === 'queue_full' ? 'queue_full' : 'export_failed');
    },
  } as OtelCounter;
  meter.createCounter = ((name: string, options?: object) => (name === 'otel.sdk.processor.span.processed' ? processed : noop.createCounter(name, options))) as Meter['createCounter'];
  return { getMeter: () => meter };
}

const propagator = new W3CTraceContextPropagator();
const HEADER_GETTER: TextMapGetter<IncomingMessage['headers']> = { get: (c, k) => c[k], keys: (c) => Object.keys(c) };

export class Tracing implements TracingRuntime {
  private readonly provider: TracerProvider;
  private readonly tracer: Tracer;
  private readonly scheme: string;

  constructor(settings: TracingSettings, identity: { instanceId: string; version: string }, events: ExportEvents, scheme = 'http') {
    this.scheme = scheme;
    const batch = Math.min(settings.maxExportBatchSize, settings.maxQueueSize);
    const exporter = new OTLPTraceExporter({
      url: settings.url,
      timeoutMillis: settings.exportTimeoutMs,
      // In steady state the processor sends one batch at a time; a flush (reload, shutdown) sends
      // the whole queue at once, which must not be refused by the exporter's own limit. Bounded
      // either way by the queue.
      concurrencyLimit: Math.ceil(settings.maxQueueSize / batch) + 1,
    });
    this.provider = new TracerProvider({
      resource: resourceFromAttributes({ [ATTR_SERVICE_NAME]: settings.serviceName, [ATTR_SERVICE_INSTANCE_ID]: identity.instanceId, [ATTR_SERVICE_VERSION]: identity.version }),
      sampler: new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(settings.samplingRate) }),
      spanProcessors: [
        new BatchSpanProcessor({
          exporter,
          maxQueueSize: settings.maxQueueSize,
          maxExportBatchSize: batch,
          scheduledDelayMillis: settings.scheduledDelayMs,
          // the exporter's own timeout fires first, so a hung export is reported as failed
          exportTimeoutMillis: settings.exportTimeoutMs + 1000,
          selfObsMeterProvider: selfObservability(events),
        }),
      ],
    });
    this.tracer = this.provider.getTracer('sentinel', identity.version);
  }

  start(req: IncomingMessage, method: string, path: string, startTime: number): RequestTrace {
    const h = req.headers;
    const parent = h.traceparent === undefined ? ROOT_CONTEXT : propagator.extract(ROOT_CONTEXT, h, HEADER_GETTER);
    const standard = STANDARD_METHODS.has(method);
    const span = this.tracer.startSpan(standard ? method : 'HTTP', { kind: SpanKind.SERVER, startTime: hrTime(startTime) }, parent);
    // Attributes only for recorded spans: at 1% sampling the other 99% skip building them.
    if (span.isRecording()) {
      const attributes: Attributes = {
        [ATTR_HTTP_REQUEST_METHOD]: standard ? method : '_OTHER',
        [ATTR_URL_PATH]: path,
        [ATTR_URL_SCHEME]: (req.socket as { encrypted?: boolean }).encrypted ? 'https' : this.scheme,
        [ATTR_NETWORK_PROTOCOL_VERSION]: req.httpVersion,
        [ATTR_NETWORK_PEER_ADDRESS]: stripMapped(req.socket.remoteAddress ?? ''),
        [ATTR_NETWORK_PEER_PORT]: req.socket.remotePort ?? 0,
      };
      if (!standard) attributes[ATTR_HTTP_REQUEST_METHOD_ORIGINAL] = method;
      const host = h.host ?? (h[':authority'] as string | undefined);
      if (host) {
        const name = stripPort(host);
        attributes[ATTR_SERVER_ADDRESS] = name.startsWith('[') ? name.slice(1, -1) : name;
      }
      const ua = h['user-agent'];
      if (ua) attributes[ATTR_USER_AGENT_ORIGINAL] = ua;
      span.setAttributes(attributes);
    }
    return new Traced(this.tracer, span, standard ? method : 'HTTP');
  }

  routed(t: RequestTrace, route: CompiledRoute): void {
    if (!t.sampled) return;
    const span = (t.server as OtelSpan).span;
    span.setAttribute('sentinel.route.id', route.id);
    const template = routeTemplate(route);
    if (template !== undefined) {
      span.setAttribute(ATTR_HTTP_ROUTE, template);
      span.updateName(`${(t as Traced).method} ${template}`);
    }
  }

  /** Flushes what is queued, bounded: a dead or hanging collector never holds a reload or shutdown. */
  async shutdown(boundMs: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.provider.shutdown().catch(() => undefined), new Promise<void>((resolve) => (timer = setTimeout(resolve, boundMs)))]);
    clearTimeout(timer);
  }
}

function stripMapped(ip: string): string {
  return ip.startsWith('::ffff:') ? ip.slice(7) : ip;
}

