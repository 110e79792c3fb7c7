// The tracing runtime of one generation: the RequestTrace the core drives (src/pipeline/types.ts),
// a lightweight span recorder feeding the bounded export queue (span-export.ts), OTLP/JSON
// encoded by otlp-json.ts. Not the OpenTelemetry SDK's TracerProvider: the decision record is in
// docs/architecture.md ("Tracing: our own span recorder"), the measurements in docs/tracing.md.
// Spans are opened explicitly at the pipeline's fixed points with their parent passed by hand: no
// context manager, no AsyncLocalStorage, no patched modules.
import type { IncomingMessage } from 'node:http';
// not the global: Node 20's `performance` global is an accessor, run on every call from code that is not optimised
import { performance } from 'node:perf_hooks';
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
  ATTR_TELEMETRY_SDK_LANGUAGE,
  ATTR_TELEMETRY_SDK_NAME,
  ATTR_TELEMETRY_SDK_VERSION,
  ATTR_URL_PATH,
  ATTR_URL_SCHEME,
  ATTR_USER_AGENT_ORIGINAL,
} from '@opentelemetry/semantic-conventions';
import type { CompiledRoute } from '../../src/config/compile.ts';
import { stripPort } from '../../src/routing/match.ts';
import { registerKnownHeaderNames } from '../../src/upstream/undici-names.ts';
import type { RequestTrace, TraceSpan } from '../../src/pipeline/types.ts';
import type { TracingRuntime } from '../../src/pipeline/feature.ts';
import type { TracingSettings } from './settings.ts';
import { OtlpJsonEncoder, type AttributeValue, type SpanRecord } from './otlp-json.ts';
import { OtlpProtoEncoder } from './otlp-proto.ts';
import { SpanExportQueue, otlpHttpSender, type ExportEvents, type SendBatch } from './span-export.ts';
import { otlpEnvironment, type ExportTransport } from './otlp-http.ts';
import { RatioSampler, TraceIdParts, formatTraceparent, hexWord, idPartA, idPartB, idPartC, lastRootTraceIdParts, lastSpanIdHi, lastSpanIdLo, newSpanId, parseTraceparent, rootTraceId, type RemoteParent } from './trace-context.ts';

export { hrTime } from './otlp-json.ts';
export type { ExportEvents } from './span-export.ts';

/** `00-<trace id>-<span id>-<flags>` (flags: W3C trace flags, bit 0 = sampled) */
export function traceparentOf(sc: { traceId: string; spanId: string; traceFlags: number }): string {
  return formatTraceparent(sc.traceId, sc.spanId, (sc.traceFlags & 1) === 1);
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

// OTLP SpanKind
const KIND_INTERNAL = 1;
const KIND_SERVER = 2;
const KIND_CLIENT = 3;

/**
 * The trace of one sampled request: `server` is the recorded server span, which holds the ids.
 * An unsampled request has none: Tracing.start returns only its `traceparent` (flags 00), so the
 * core's trace sites see `undefined` as with tracing off (docs/tracing.md "Session 19").
 */
class Trace implements RequestTrace {
  current: TraceSpan;
  constructor(
    readonly server: RecordedSpan,
    /** the server span's name before the route is known (`GET`, or `HTTP` for other methods) */
    readonly method: string,
    /** the server span's last attributes, set by finish(): `url.path`, `network.peer.address` and `.port` */
    private readonly path: string,
    private readonly peerAddress: string,
    private readonly peerPort: number,
  ) {
    this.current = server;
  }
  get traceId(): string {
    return this.server.traceId;
  }
  get spanId(): string {
    return this.server.spanId;
  }
  child(name: string, kind: 'internal' | 'client', startTime?: number): TraceSpan {
    const s = this.server;
    // children share the trace's tracestate; their parent (the server span) is local
    return new RecordedSpan(s.queue, s.traceId, s.spanId, false, s.traceState, name, kind === 'client' ? KIND_CLIENT : KIND_INTERNAL, startTime ?? performance.now(), [], s.traceParts, s.sidA, s.sidB, s.sidC);
  }
  finish(status: number, errorType: string | undefined): void {
    const s = this.server;
    s.set(ATTR_HTTP_RESPONSE_STATUS_CODE, status);
    // the plugin's own keys, set nowhere else
    if (s.endMs === 0) s.attributes.push(ATTR_URL_PATH, this.path, ATTR_NETWORK_PEER_ADDRESS, this.peerAddress, ATTR_NETWORK_PEER_PORT, this.peerPort);
    // Server spans: 4xx are the client's business, not an error of the server (semantic conventions).
    if (status >= 500 || errorType !== undefined) s.fail(errorType ?? String(status));
    s.end();
  }
}

/** A recorded span: a plain object the export queue takes as it is when it ends. */
class RecordedSpan implements TraceSpan, SpanRecord {
  readonly spanId = newSpanId();
  /** the span id as numbers for the protobuf encoder (trace-context.ts) */
  readonly sidA: number;
  readonly sidB: number;
  readonly sidC: number;
  endMs = 0;
  failed = false;
  private tp: string | undefined;
  constructor(
    readonly queue: SpanExportQueue,
    readonly traceId: string,
    readonly parentSpanId: string,
    readonly remoteParent: boolean,
    readonly traceState: string | undefined,
    public name: string,
    readonly kind: number,
    readonly startMs: number,
    readonly attributes: AttributeValue[],
    /** the trace id and the parent span id (0s for a root) as numbers */
    readonly traceParts: TraceIdParts,
    readonly pidA: number,
    readonly pidB: number,
    readonly pidC: number,
  ) {
    const hi = lastSpanIdHi();
    const lo = lastSpanIdLo();
    this.sidA = idPartA(hi);
    this.sidB = idPartB(hi, lo);
    this.sidC = idPartC(lo);
  }
  get traceparent(): string {
    return (this.tp ??= formatTraceparent(this.traceId, this.spanId, true));
  }
  set(key: string, value: AttributeValue): void {
    // a span is encoded when it ends: later values would not be exported, and the encoder keeps
    // the ended span's attributes as they are (otlp-proto.ts, the attribute runs)
    if (this.endMs !== 0) return;
    const a = this.attributes;
    for (let i = 0; i < a.length; i += 2) {
      if (a[i] === key) {
        a[i + 1] = value;
        return;
      }
    }
    a.push(key, value);
  }
  fail(errorType: string): void {
    this.set(ATTR_ERROR_TYPE, errorType);
    this.failed = true;
  }
  end(): void {
    if (this.endMs !== 0) return; // ended once
    this.endMs = performance.now();
    this.queue.add(this);
  }
}

/** A route's `http.route` template and server span name per method (the last method's first). */
interface RouteNames {
  readonly template: string | undefined;
  readonly names: Map<string, string>;
  lastMethod: string;
  lastName: string;
}

export class Tracing implements TracingRuntime {
  private readonly sampler: RatioSampler;
  private readonly queue: SpanExportQueue;
  /** undefined when the test gave its own sender */
  private readonly transport: ExportTransport | undefined;
  /** OTEL_EXPORTER_OTLP_* settings that could not be used (the plugin logs them) */
  readonly warnings: readonly string[];
  private readonly scheme: string;
  /** route -> [http.route template, server span name per method] (a generation's routes are fixed) */
  private readonly routeNames = new Map<CompiledRoute, RouteNames>();
  private lastRoute: CompiledRoute | undefined;
  /**
   * A connection's `network.peer.address` and `.port`, read once: socket.remoteAddress and
   * .remotePort are getters through Socket#_getpeername (megamorphic keyed loads, ~1k instructions
   * the pair a request under callgrind), and a connection carries many requests.
   */
  private readonly peers = new WeakMap<object, { readonly address: string; readonly port: number }>();
  /** the last request's Host header and its `server.address` */
  private lastHost = '';
  private lastAddress = '';
  private lastKnown: RouteNames | undefined;

  /** `send` replaces the OTLP/HTTP sender (tests); `env` is where OTEL_EXPORTER_OTLP_* are read. */
  constructor(settings: TracingSettings, identity: { instanceId: string; version: string }, events: ExportEvents, scheme = 'http', send?: SendBatch, env: NodeJS.ProcessEnv = process.env) {
    this.scheme = scheme;
    this.sampler = new RatioSampler(settings.samplingRate);
    // every upstream request now carries a traceparent: undici finds its name at the first lookup
    registerKnownHeaderNames(['traceparent']);
    const resource = {
      [ATTR_SERVICE_NAME]: settings.serviceName,
      [ATTR_SERVICE_INSTANCE_ID]: identity.instanceId,
      [ATTR_SERVICE_VERSION]: identity.version,
      [ATTR_TELEMETRY_SDK_NAME]: 'sentinel',
      [ATTR_TELEMETRY_SDK_LANGUAGE]: 'nodejs',
      [ATTR_TELEMETRY_SDK_VERSION]: identity.version,
    };
    const scope = { name: 'sentinel', version: identity.version };
    const encoding = settings.protocol === 'http/json' ? new OtlpJsonEncoder(resource, scope) : new OtlpProtoEncoder(resource, scope);
    if (send) {
      this.queue = new SpanExportQueue(settings, encoding, send, events);
      this.transport = undefined;
      this.warnings = [];
    } else {
      const environment = otlpEnvironment(env);
      const sender = otlpHttpSender(settings, encoding.contentType, `Sentinel/${identity.version}`, environment, settings.exportThread);
      this.queue = new SpanExportQueue(settings, encoding, sender.send, events);
      this.transport = sender.transport;
      this.warnings = environment.warnings;
    }
  }

  /** A sampled request's trace, or an unsampled one's `traceparent` (flags 00) and nothing else. */
  start(req: IncomingMessage, method: string, path: string, startTime: number): RequestTrace | string {
    const h = req.headers;
    // Parent-based: a valid client traceparent decides; otherwise the trace id's ratio does.
    const parent = h.traceparent === undefined ? undefined : parseTraceparent(h.traceparent);
    if (parent) {
      if (!parent.sampled) return formatTraceparent(parent.traceId, newSpanId(), false);
      return this.record(req, method, path, startTime, parent, parent.traceId, TraceIdParts.ofHex(parent.traceId));
    }
    const sampler = this.sampler;
    const traceparent = sampler.rootTraceparent();
    // unsampled (99 in 100 at 1%): the ready traceparent is all there is
    if (!sampler.lastSampled) return traceparent;
    return this.record(req, method, path, startTime, undefined, rootTraceId(traceparent), lastRootTraceIdParts());
  }

  /**
   * A sampled request's server span and trace. A method of its own, not a branch of `start`: at 1%
   * its call is too rare for TurboFan to inline it into `start`, so what its loads see on the few
   * sampled requests (socket and header objects of another shape: a "wrong map") deoptimises this
   * method alone, not `start` (run on every request) and whatever inlined it, which a 1% gateway
   * then recompiled while serving (docs/tracing.md, session 25).
   */
  private record(req: IncomingMessage, method: string, path: string, startTime: number, parent: RemoteParent | undefined, traceId: string, traceParts: TraceIdParts): Trace {
    const h = req.headers;
    const standard = STANDARD_METHODS.has(method);
    const socket = req.socket;
    // What repeats from request to request comes first, then the route's (routed), the status and
    // what varies by request or connection (finish): the encoder copies a span's leading
    // attributes that equal the previous server span's as one run (otlp-proto.ts).
    const attributes: AttributeValue[] = [
      ATTR_HTTP_REQUEST_METHOD,
      standard ? method : '_OTHER',
      ATTR_URL_SCHEME,
      (socket as { encrypted?: boolean }).encrypted ? 'https' : this.scheme,
      ATTR_NETWORK_PROTOCOL_VERSION,
      req.httpVersion,
    ];
    if (!standard) attributes.push(ATTR_HTTP_REQUEST_METHOD_ORIGINAL, method);
    const host = h.host ?? (h[':authority'] as string | undefined);
    if (host) {
      // the last Host's address when it repeats: no slice, and the same string object for the
      // encoder's attribute run to compare
      if (host !== this.lastHost) {
        const name = stripPort(host);
        this.lastHost = host;
        this.lastAddress = name.startsWith('[') ? name.slice(1, -1) : name;
      }
      attributes.push(ATTR_SERVER_ADDRESS, this.lastAddress);
    }
    const ua = h['user-agent'];
    if (ua) attributes.push(ATTR_USER_AGENT_ORIGINAL, ua);
    const name = standard ? method : 'HTTP';
    const tracestate = parent && typeof h.tracestate === 'string' ? h.tracestate : undefined;
    let pidA = 0;
    let pidB = 0;
    let pidC = 0;
    if (parent) {
      const hi = hexWord(parent.spanId, 0);
      const lo = hexWord(parent.spanId, 8);
      pidA = idPartA(hi);
      pidB = idPartB(hi, lo);
      pidC = idPartC(lo);
    }
    const server = new RecordedSpan(this.queue, traceId, parent ? parent.spanId : '', parent !== undefined, tracestate, name, KIND_SERVER, startTime, attributes, traceParts, pidA, pidB, pidC);
    let peer = this.peers.get(socket);
    if (peer === undefined) {
      peer = { address: stripMapped(socket.remoteAddress ?? ''), port: socket.remotePort ?? 0 };
      // a destroyed socket has no address: not remembered
      if (socket.remoteAddress !== undefined) this.peers.set(socket, peer);
    }
    return new Trace(server, name, path, peer.address, peer.port);
  }

  routed(t: RequestTrace, route: CompiledRoute): void {
    const trace = t as Trace;
    const span = trace.server;
    span.set('sentinel.route.id', route.id);
    // the route and method of the last request first: most requests repeat them (two Map lookups less)
    let known = this.lastRoute === route ? this.lastKnown : this.routeNames.get(route);
    if (!known) {
      known = { template: routeTemplate(route), names: new Map(), lastMethod: '', lastName: '' };
      this.routeNames.set(route, known);
    }
    this.lastRoute = route;
    this.lastKnown = known;
    if (known.template === undefined) return;
    span.set(ATTR_HTTP_ROUTE, known.template);
    const method = trace.method;
    let name = known.lastMethod === method ? known.lastName : known.names.get(method);
    if (name === undefined) known.names.set(method, (name = `${method} ${known.template}`));
    known.lastMethod = method;
    known.lastName = name;
    span.name = name;
  }

  /**
   * Flushes what is queued, bounded: a dead or hanging collector never holds a reload or
   * shutdown. Past the bound the exports still out are cut (counted as export_failed) and the
   * sockets closed, so nothing of this generation's exporter outlives it.
   */
  async shutdown(boundMs: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const transport = this.transport;
    const flush = this.queue.close().then(() => transport?.close());
    const inTime = await Promise.race([flush.then(() => true, () => true), new Promise<boolean>((resolve) => (timer = setTimeout(resolve, boundMs, false)))]);
    clearTimeout(timer);
    if (inTime || !transport) return;
    await transport.destroy();
    await flush.catch(() => undefined); // the queue's last exports have failed by now: its counts are in
  }
}

function stripMapped(ip: string): string {
  return ip.startsWith('::ffff:') ? ip.slice(7) : ip;
}
