// The request pipeline contract shared by the core and every feature plugin.
//
// A generation compiles, per route, an ordered list of RequestFilters (from the route's
// `filters` ids and the global features). For each request the core builds one
// RequestContext, runs `onRequest` of each filter in order (a filter may answer the
// request itself by returning a LocalResponse), forwards upstream, runs `onResponse` in
// reverse order (filters may edit the response headers), then, only for filters that opt in
// for this response, `onResponseBody` (see ResponseBodyHandler), and finally `onComplete`.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Readable } from 'node:stream';
import type { Logger } from 'pino';

/** Lower-cased header name -> value(s); what the core sends upstream / downstream. */
export type HeaderMap = Record<string, string | string[] | undefined>;

export interface TlsInfo {
  version: string | null;
  cipher: string | null;
  serverName: string | null;
  /** verified client certificate identity (mTLS) */
  clientSubject?: string;
  clientSans?: string[];
  clientFingerprint256?: string;
}

/**
 * One span of a traced request (plugins/tracing). The core opens and ends spans at fixed points
 * (route match, each filter, each upstream attempt) of sampled requests only; it never sees the
 * OpenTelemetry encoding. A request that is not sampled has no trace object at all, only the
 * `traceparent` (flags 00) the upstream and agents get (RequestContext.traceparent).
 */
export interface TraceSpan {
  /** the W3C `traceparent` naming this span (what the next hop sees as its parent) */
  readonly traceparent: string;
  set(key: string, value: string | number | boolean): void;
  /** marks the span failed (status ERROR) with the semantic-convention `error.type` */
  fail(errorType: string): void;
  end(): void;
}

/** The trace of one sampled request: its server span, and children under it. */
export interface RequestTrace {
  /** 32 hex digits (W3C trace id) */
  readonly traceId: string;
  /** 16 hex digits: the server span */
  readonly spanId: string;
  readonly server: TraceSpan;
  /** the span that is running now (a filter's while its onRequest runs; else the server span) */
  current: TraceSpan;
  /** a child of the server span; `startTime` is a performance.now() value (default: now) */
  child(name: string, kind: 'internal' | 'client', startTime?: number): TraceSpan;
  /** ends the server span with the response status (>= 500, or `errorType`, mark it failed) */
  finish(status: number, errorType: string | undefined): void;
}

export interface RequestContext {
  /** correlation / trace id (reused from X-Trace-Id / X-Correlation-Id / X-Request-Id or generated) */
  readonly traceId: string;
  /** performance.now() at arrival */
  readonly startTime: number;
  /** RFC 3339 arrival time */
  readonly timestamp: string;
  readonly raw: IncomingMessage;
  readonly method: string;
  /** path without query, as received (not decoded) */
  readonly path: string;
  /**
   * the path rate-limit `path` keys count when the route has `path-spelling "windows"`: the route's
   * own reading of the request (src/routing/windows-path.ts windowsKeyPath); undefined otherwise
   */
  readonly keyPath?: string | undefined;
  /** query string without '?', '' when absent */
  readonly query: string;
  /** Host header without port, lower-cased */
  readonly host: string;
  readonly clientIp: string;
  readonly clientPort: number;
  readonly listenerId: string;
  readonly protocol: 'http' | 'https';
  readonly httpVersion: string;
  readonly tls: TlsInfo | undefined;
  readonly routeId: string | undefined;
  readonly upstreamId: string | undefined;
  /** headers that will be sent upstream; filters edit this object in place */
  readonly upstreamHeaders: HeaderMap;
  /** extra headers for the downstream response (applied after the upstream's), edited by filters */
  readonly responseHeaders: HeaderMap;
  /**
   * A body a filter has buffered (e.g. body inspection). When set, the core sends these exact
   * bytes upstream instead of streaming the client's body.
   */
  body: Buffer | undefined;
  /** aborted when the client goes away or the request is finished */
  readonly signal: AbortSignal;
  /** the same event without an AbortSignal (cheaper on hot paths): true once cancelled */
  readonly cancelled: boolean;
  /** `listener` runs once when the request is cancelled (at once if it already is) */
  onCancel(listener: () => void): void;
  offCancel(listener: () => void): void;
  /** audit facts collected along the way (agent tags, WAF rule ids, rate-limit hits, a refusal while forwarding) */
  readonly audit: { tags: string[]; ruleIds: string[]; rateLimited: boolean; blocked?: string | undefined };
  /** per-request scratch space for filters, keyed by filter id */
  readonly state: Map<string, unknown>;
  /**
   * The agent filters' per-request state (plugins/agents/filter.ts), a slot of its own: every
   * request on an agent route has one, and a `state` Map for it cost ~1k instructions a request.
   */
  agentState?: unknown;
  readonly log: Logger;
  /** the request's trace when tracing is on and the request is sampled (plugins/tracing), else undefined */
  readonly trace: RequestTrace | undefined;
  /**
   * With tracing on and the request not sampled: the W3C `traceparent` the upstream and agents get,
   * `00-<trace id>-<span id>-00` (nothing is recorded for it); else undefined.
   */
  readonly traceparent?: string | undefined;
}

/** A response a filter produces instead of forwarding (block, redirect, 429, builtin ...). */
export interface LocalResponse {
  status: number;
  headers?: HeaderMap;
  /** a list of Buffers is sent in order as one body (a cache entry held in arena chunks) */
  body?: string | Buffer | readonly Buffer[];
  /**
   * Called once the body's memory is no longer needed: the response was written out or its
   * connection closed (whoever writes a LocalResponse calls it exactly once). Lets a cache reuse
   * the memory only after the write that reads it has completed.
   */
  onSent?: () => void;
  /** reason for metrics/audit: sentinel_blocked_requests_total{reason} */
  blockReason?: string;
}

export interface UpstreamResponseInfo {
  status: number;
  /** response headers as they will be sent downstream; filters edit in place */
  headers: HeaderMap;
}

export interface UpstreamFailure {
  /** what the core would answer: 502, 503 or 504 */
  status: number;
  /** error taxonomy reason (src/errors), e.g. 'connect_refused', 'timeout', 'no_healthy_target' */
  reason: string;
}

export interface CompletionInfo {
  status: number;
  durationMs: number;
  requestBodyBytes: number;
  responseBodyBytes: number;
  upstreamAttempts: number;
  error?: string;
}

/**
 * Per-response body hook returned by `RequestFilter.onResponseBody`. The core feeds it the
 * upstream body chunk by chunk, in order, one call at a time (the next call waits for the
 * previous promise). The last call has `isLast` true; its chunk may be empty (the core sends
 * an empty final call when the end was not known from Content-Length). Several handlers of a
 * route are chained in the same reverse order as onResponse: the output of one is the input of
 * the next.
 *
 * Return value of `onChunk`:
 *  - `undefined`: send `chunk` unchanged;
 *  - a Buffer: send these bytes instead (an empty Buffer sends nothing now: a handler that
 *    buffers returns empty Buffers and releases the held bytes on a later call);
 *  - a LocalResponse: stop. While the response headers are not out yet it becomes the client's
 *    response (upstream body discarded); after they are out the core can only cut the
 *    connection (the client sees a truncated response).
 *
 * Response headers: with `holdHeaders` true the core keeps the status line and headers back
 * until the handler chain first releases a byte or the body ends; until then the handler may
 * still edit `res.headers` (the object it got in onResponseBody). When the whole body is known
 * before the headers go out, Content-Length is set to its exact size; otherwise the response
 * is sent without Content-Length (chunked), because a handler may change the body's length.
 */
export interface ResponseBodyHandler {
  readonly holdHeaders: boolean;
  /**
   * The handler only looks (every onChunk returns undefined): when all handlers of a response
   * say so, the upstream's Content-Length is kept instead of switching to chunked.
   */
  readonly observeOnly?: boolean;
  onChunk(chunk: Buffer, isLast: boolean): Buffer | undefined | LocalResponse | Promise<Buffer | undefined | LocalResponse>;
  /** the exchange ended early (client gone, upstream failed mid-body): release what is held */
  abort?(): void;
}

export interface RequestFilter {
  readonly id: string;
  readonly type: string;
  onRequest?(ctx: RequestContext): LocalResponse | undefined | Promise<LocalResponse | undefined>;
  onResponse?(ctx: RequestContext, res: UpstreamResponseInfo): void | LocalResponse | Promise<void | LocalResponse>;
  /**
   * Opt-in for this response's body, called after every onResponse and only for responses that
   * have a body (not HEAD, 1xx, 204, 304). Return a handler to see (and possibly change or stop)
   * the body, or undefined to let it stream through. When no filter of the route returns a
   * handler the core uses its plain streaming relay (no buffering, no per-chunk calls).
   */
  onResponseBody?(ctx: RequestContext, res: UpstreamResponseInfo): ResponseBodyHandler | undefined | Promise<ResponseBodyHandler | undefined>;
  /**
   * The upstream could not be used (no healthy target or circuit open, connect failure, timeout,
   * reset) and the core is about to answer `failure.status` itself. A filter may answer instead
   * (e.g. a cache with a stale copy). Called in reverse order; the first LocalResponse wins.
   */
  onUpstreamError?(ctx: RequestContext, failure: UpstreamFailure): LocalResponse | undefined;
  onComplete?(ctx: RequestContext, info: CompletionInfo): void;
  /**
   * Settles when the filter can serve: the generation is not served (start: before the listeners
   * open; reload: before the swap) until every filter's has. A rejection fails the start or the
   * reload (the previous generation keeps serving). For work a filter cannot do on its first
   * request, such as an in-process agent's build (the WAF's CRS compile).
   */
  ready?(): Promise<void>;
  /** called when the generation is disposed */
  close?(): Promise<void> | void;
  /** live state for the status page (src/status): counters, connections, breakers; cheap, read on demand */
  status?(): FilterStatus | readonly FilterStatus[];
}

/** An agent as its filter sees it now (the status page groups filters by agent). */
export interface AgentLiveStatus {
  readonly id: string;
  readonly state: 'connected' | 'partial' | 'disconnected';
  readonly connections: number;
  readonly configured_connections: number;
  readonly circuit_breaker: string;
  readonly in_flight: number;
  readonly queued: number;
  readonly latency: import('../status/latency.ts').LatencySnapshot;
}

/** What a filter reports about itself: `kind` "rate-limit" and "agent" have sections of their own. */
export interface FilterStatus {
  readonly filter: string;
  readonly kind: string;
  readonly agent?: AgentLiveStatus;
  readonly [key: string]: unknown;
}

/** What the core hands every filter factory of one generation. */
export interface GenerationServices {
  readonly generation: number;
  readonly log: Logger;
  readonly metrics: import('../metrics/registry.ts').Metrics;
  /** audit log sink (one JSON object per event) */
  readonly audit: (event: Record<string, unknown>) => void;
  /** the route policies' failure mode for a route id ('closed' default) */
  routeFailureMode(routeId: string): 'open' | 'closed';
  /**
   * The upstream group a route forwards to, as that route sees it (its own breaker), for filters
   * that make requests of their own (a cache's background refresh). Valid once the generation is built.
   */
  routeUpstream?(routeId: string): import('../upstream/group.ts').UpstreamGroup | undefined;
  /** this process's listeners (bound, and configured with a port): addresses a discovered target must not name */
  ownListeners?: () => readonly import('../upstream/discovery/address-policy.ts').ListenAddress[];
}

/**
 * A filter type's factory, called once per generation for each `filter "id" { type "<t>" }`.
 * `config` is the decoded filter block (TypeBox-validated, kebab-case keys as in KDL).
 */
export type FilterFactory = (id: string, config: Record<string, unknown>, services: GenerationServices) => RequestFilter;

/**
 * A response produced inside the gateway that is relayed like an upstream's (response filters,
 * body handlers, header policies all apply): a static file, for instance. The relay consumes
 * `body` exactly once, through `relayTo` (plain relay) or `body` (body handlers), or `dump()`s it.
 */
export interface ResponseSource {
  readonly statusCode: number;
  /** response headers, lower-cased names; filters edit them in place */
  readonly headers: HeaderMap;
  /** the body as a stream (for response-body handlers) */
  readonly body: Readable;
  /**
   * writes the status line and headers, copies the body to the client with backpressure and ends
   * the response; an upstream's writes the status line only with the first body byte or the end
   * (a body that fails before resolves with `error` and nothing written); an upstream's buffers
   * under `buffering` for a client (`clientIp`) that stops reading (src/upstream/response-buffer.ts)
   */
  relayTo(res: ServerResponse, status: number, headers: HeaderMap, buffering?: import('../upstream/response-buffer.ts').ResponseBufferPolicy, clientIp?: string): Promise<{ bytes: number; error?: unknown; clientClosed?: boolean }>;
  /** releases the body unread (a filter answered instead) */
  dump(): void;
}
