// A generation: one compiled config with its upstream groups, filters and Fastify instance.
// Listeners dispatch each request to the current generation; a reload builds the next one
// beside it, swaps, then drains and disposes this one. In-flight requests finish here.
import { STATUS_CODES, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { TLSSocket } from 'node:tls';
import type { Http2ServerRequest } from 'node:http2';
import Fastify, { type FastifyInstance } from 'fastify';
import underPressure from '@fastify/under-pressure';
import type { Logger } from 'pino';
import { STATE_REVEALING_BUILTINS, type CompiledConfig, type CompiledListener, type CompiledRoute } from '../config/compile.ts';
import type { FilterFactory, GenerationServices, LocalResponse, RequestFilter, RequestTrace, TlsInfo } from '../pipeline/types.ts';
import { FilterChain, isPromise } from '../pipeline/chain.ts';
import { DECORATION, frameInspectingFilters, planFeatures, type BuiltinsRuntime, type FeatureHost, type FeatureManifest, type ForwardingRuntime, type RouteTable, type StaticFilesRuntime, type TracingRuntime, type WebSocketRuntime } from '../pipeline/feature.ts';
import type { UpstreamGroup } from '../upstream/group.ts';
import { methodLabel, type Metrics } from '../metrics/registry.ts';
import { matchRoute, requestMatchInput, stripPort } from '../routing/match.ts';
import { DEFAULT_MAX_HEADER_NAME_BYTES, DEFAULT_MAX_HEADER_VALUE_BYTES, inFlightCap, oversizedHeader } from './request-limits.ts';
import { Context } from './context.ts';
import { forwardHeaders, applyHeaderOps, forwardMethodOverride, UNTRUSTED_PEER, type PeerTrust } from './headers.ts';
import { pickTraceId, traceIdFormat, type TraceIdFormat } from './trace-id.ts';
import { headerFieldCount, headerListBytes } from './listener-limits.ts';
import { bodyRefusedMessage, forward, methodOverrideMessage, relayLocalSource, sendError, type ForwardResult, type MethodParamCheck, writeLocal } from './forwarder.ts';
import { bodylessWithDeclaredBody, requestHasBody } from './request-body.ts';
import { formKind, methodsNamed, overrideCouldMove, overridesInBody, overridesInUrlencoded, refusedOverride } from './method-param.ts';
import { notFoundBody } from '../builtins/handlers.ts';
import { namesThisMachine } from '../builtins/local-host.ts';
import { formatAccess, loggedMethod, type AccessEntry } from '../logging/access-log.ts';
import type { LineSink } from '../logging/logger.ts';
import { isTrusted, compileTrusted, forwardedAddress, type TrustedMatcher } from './trusted-proxies.ts';
import { localResponder } from '../websocket/proxy.ts';
import { upgradeRefusal } from '../websocket/origin.ts';
import type { WsSession } from '../websocket/session.ts';
import { frontDoor, isAnswer, parserError, requestLineOf, type AdmittedTarget, type FrontDoorAnswer } from './front-door.ts';
import { errorBody } from '../errors/index.ts';
import type { GatewayStatusInfo } from '../status/report.ts';
import { requestAuditEvent, type AuditEventType } from '../logging/audit.ts';
import { DEFAULT_MAX_STREAMING_UPLOADS_PER_CLIENT, UploadGate, UploadSlots } from './upload-slots.ts';
import { ClientBudgetGate, ClientBudgets, DEFAULT_CONNECTION_BUDGETS_PER_CLIENT } from './client-budgets.ts';
import { DEFAULT_PER_CLIENT_BYTES, DEFAULT_UNBUFFERED_PER_CLIENT, DEFAULT_PROCESS_FILE_BYTES, DEFAULT_PROCESS_MEMORY_BYTES, responseBufferBudget } from '../upstream/response-buffer.ts';

export interface ListenerRuntime {
  readonly config: CompiledListener;
  tlsInfo?: (socket: TLSSocket) => TlsInfo;
  /** TLS listeners: false on a connection verified under client verification a reload replaced (421, closed) */
  verifiedNow?: (connection: object) => boolean;
  /** TLS listeners: the Host belongs to another certificate than the connection's SNI selected (421) */
  misdirected?: (socket: TLSSocket, host: string) => boolean;
}

export interface GenerationDeps {
  number: number;
  config: CompiledConfig;
  metrics: Metrics;
  log: Logger;
  audit: (event: Record<string, unknown>) => void;
  accessLog: LineSink | undefined;
  accessFormat: 'json' | 'combined';
  instanceId: string;
  startedAt: number;
  /** true while the process shuts down: readiness fails */
  draining: () => boolean;
  /** the generation this one replaces: upstream groups adopt its per-target state */
  previous?: Generation;
  /** every feature the composition root knows (src/features.ts); the config picks the ones it uses */
  features: readonly FeatureManifest[];
  /** the gateway's view for the status page (reload history, bound listeners) */
  gatewayInfo?: () => GatewayStatusInfo;
  /** streaming uploads in flight per client, shared by the process's generations */
  uploadSlots?: UploadSlots;
  /** the per-client buckets behind the connection budgets, shared by the process's generations */
  clientBudgets?: ClientBudgets;
  /** how many gateway processes share the gateway-wide bounds (cluster workers; 1 alone) */
  processShares?: number;
  /** the gateway's own listeners: discovered targets naming one are dropped */
  ownListeners?: GenerationServices['ownListeners'];
}

const LISTENER = Symbol('sentinel.listener');
const TARGET = Symbol('sentinel.target');
/** Whether the peer is a trusted proxy: asked once, at the front door, and read by every later step. */
const PEER_TRUSTED = Symbol('sentinel.peerTrusted');

/** Set on a socket whose request had faulty framing (an HTTP/1.0 request with Transfer-Encoding). */
const FAULTY_FRAMING = Symbol('sentinel.faultyFraming');
type FramingTagged = Duplex & { [FAULTY_FRAMING]?: true };

type TaggedRequest = IncomingMessage & { [LISTENER]?: ListenerRuntime; [TARGET]?: AdmittedTarget; [PEER_TRUSTED]?: boolean };

/** A feature's runtime, read once when the generation is built (undefined when the config does not use it). */
function decoration<T>(app: FastifyInstance, name: string): T | undefined {
  return app.hasDecorator(name) ? app.getDecorator<T>(name) : undefined;
}

/** What the front half learned about one request (the access log and metrics read it at the end). */
interface Front {
  readonly startTime: number;
  readonly traceId: string;
  readonly method: string;
  readonly path: string;
  readonly query: string;
  route: CompiledRoute | undefined;
  ctx: Context | undefined;
  /** the route's filter chain, set with ctx (onComplete runs over it) */
  chain: FilterChain | undefined;
  result: ForwardResult | undefined;
  /** with tracing on, a sampled request's trace (its server span) */
  readonly trace: RequestTrace | undefined;
  /** with tracing on, an unsampled request's `traceparent` (flags 00): no trace object for it */
  readonly traceparent: string | undefined;
  /** the filter the chain's onRequest asked last (the one that answered, when one did) */
  refusedBy: RequestFilter | undefined;
}

/** A request the front half let through, with what the back half (forward / WebSocket proxy) needs. */
interface Admitted {
  ctx: Context;
  route: CompiledRoute;
  group: UpstreamGroup;
  chain: FilterChain;
  limit: number;
  /** a POST on a listener whose routes differ by method: the route a request with another method would get */
  rematch: ((method: string) => CompiledRoute | undefined) | undefined;
}

/**
 * `Expect: 100-continue` (the listeners' 'checkContinue' event, so Node does not answer it
 * itself): the client holds its body until told to go on. The 100 goes out when the gateway first
 * reads the body (a body-inspecting agent, or the forwarder), after the route match, the limits and
 * the header-phase filters, so any of them can still refuse with its own status and the body is
 * never sent. A refusal closes the connection: the unread body would be parsed as the next request.
 */
/** `limits { max-body-buffer-bytes }` when unset (the reference's default). */
const DEFAULT_BODY_BUFFER_BYTES = 1024 * 1024;

function deferContinue(req: IncomingMessage, res: ServerResponse): void {
  // Node answers any other expectation with 417 before we see the request; HTTP/1.0 gets no 1xx.
  if (req.httpVersion === '1.0' || typeof res.writeContinue !== 'function') return;
  const keepAlive = res.shouldKeepAlive;
  res.shouldKeepAlive = false;
  req.once('resume', () => {
    if (res.headersSent || res.writableEnded) return;
    res.shouldKeepAlive = keepAlive;
    res.writeContinue();
  });
}

export class Generation {
  readonly number: number;
  readonly config: CompiledConfig;
  readonly groups = new Map<string, UpstreamGroup>();
  /** per route: its upstream group as seen by that route (route-bound circuit breakers) */
  private readonly routeGroups = new Map<string, UpstreamGroup>();
  /** per route: its filter chain (src/pipeline/chain.ts), built once with the generation */
  private readonly chains = new Map<string, FilterChain>();
  /** routes whose WebSocket frames a filter inspects (`websocket-inspection #true` with an effect) */
  private readonly frameInspection = new Set<string>();
  private readonly allFilters: RequestFilter[] = [];
  private readonly defaultRoutes = new Map<string, CompiledRoute>();
  private readonly traceFormat: TraceIdFormat;
  private readonly trusted: TrustedMatcher;
  /** a trusted proxy's peer trust: which of its identity headers the front door keeps */
  private readonly proxyTrust: PeerTrust;
  private builtins: BuiltinsRuntime | undefined;
  private websocket: WebSocketRuntime | undefined;
  /** the tracing feature's runtime; undefined when tracing is off (the request path checks only this) */
  private tracing: TracingRuntime | undefined;
  private staticFiles: StaticFilesRuntime | undefined;
  /** what the features asked to release when the generation goes */
  private readonly disposers: (() => Promise<void> | void)[] = [];
  private app!: FastifyInstance;
  private inFlight = 0;
  private drained: (() => void) | undefined;
  private readonly bodyLimit: number;
  /** `limits { max-body-buffer-bytes }`: request bodies up to this size are read before a target is picked */
  private readonly bodyBufferLimit: number;
  private readonly maxHeaderCount: number;
  /** `limits { max-header-size-bytes }`, checked here for HTTP/2 (Node's HTTP/1.1 parser enforces its own) */
  private readonly maxHeaderBytes: number;
  private readonly maxHeaderName: number;
  private readonly maxHeaderValue: number;
  private readonly maxInFlight: number | undefined;
  private readonly uploads: UploadGate;
  /** the client's share of the connection budgets (body pieces, WebSocket messages): `limits { max-connection-budgets-per-client }` */
  readonly clientBudgets: ClientBudgetGate;
  /** upgraded WebSocket connections running on this generation */
  private readonly sessions = new Set<WsSession>();
  /**
   * Per listener whose routes name methods (`matches { method ... }`): those methods. Only there can
   * a `_method` override move a POST to another route (docs/security.md, "Method overrides in
   * parameters"); elsewhere the check costs nothing.
   */
  private readonly routedMethods = new Map<string, readonly string[]>();

  private constructor(private readonly deps: GenerationDeps) {
    this.number = deps.number;
    this.config = deps.config;
    this.traceFormat = traceIdFormat(deps.config.system['trace-id-format']);
    this.trusted = compileTrusted(deps.config.trustedProxies);
    this.proxyTrust = { trustedPeer: true, kept: deps.config.trustedProxyHeaders };
    this.bodyLimit = deps.config.limits['max-body-size-bytes'];
    this.bodyBufferLimit = deps.config.limits['max-body-buffer-bytes'] ?? DEFAULT_BODY_BUFFER_BYTES;
    this.maxHeaderCount = deps.config.limits['max-header-count'];
    this.maxHeaderBytes = deps.config.limits['max-header-size-bytes'];
    this.maxHeaderName = deps.config.limits['max-header-name-bytes'] ?? DEFAULT_MAX_HEADER_NAME_BYTES;
    this.maxHeaderValue = deps.config.limits['max-header-value-bytes'] ?? DEFAULT_MAX_HEADER_VALUE_BYTES;
    this.maxInFlight = inFlightCap(deps.config.limits);
    const trusted = this.trusted;
    this.uploads = new UploadGate(deps.uploadSlots ?? new UploadSlots(), deps.config.limits['max-streaming-uploads-per-client'] ?? DEFAULT_MAX_STREAMING_UPLOADS_PER_CLIENT, (ip) => trusted.any && isTrusted(trusted, ip));
    for (const l of deps.config.listeners) {
      const methods = methodsNamed(deps.config.routesByListener.get(l.id) ?? deps.config.routes);
      if (methods.length > 0) this.routedMethods.set(l.id, methods);
    }
    // response buffering's bounds (src/upstream/response-buffer.ts): the newest generation's. Memory
    // and temp files are bounded for the whole gateway (one pod's memory limit and /tmp volume):
    // each cluster worker takes its share.
    const shares = Math.max(1, deps.processShares ?? 1);
    responseBufferBudget.memoryCap = Math.floor((deps.config.limits['max-response-buffer-memory-bytes'] ?? DEFAULT_PROCESS_MEMORY_BYTES) / shares);
    responseBufferBudget.fileCap = Math.floor((deps.config.limits['max-response-buffer-file-bytes'] ?? DEFAULT_PROCESS_FILE_BYTES) / shares);
    responseBufferBudget.perClientCap = deps.config.limits['max-response-buffer-bytes-per-client'] ?? DEFAULT_PER_CLIENT_BYTES;
    responseBufferBudget.unbufferedCap = deps.config.limits['max-unbuffered-responses-per-client'] ?? DEFAULT_UNBUFFERED_PER_CLIENT;
    const bufferEvents = deps.metrics.responseBuffering;
    responseBufferBudget.onEvent = (event) => bufferEvents.inc({ event });
    this.clientBudgets = new ClientBudgetGate(deps.clientBudgets ?? new ClientBudgets(), deps.config.limits['max-connection-budgets-per-client'] ?? DEFAULT_CONNECTION_BUDGETS_PER_CLIENT, (ip) => trusted.any && isTrusted(trusted, ip));
  }

  static async create(deps: GenerationDeps): Promise<Generation> {
    const gen = new Generation(deps);
    await gen.build();
    return gen;
  }

  private services(): GenerationServices {
    return {
      generation: this.number,
      log: this.deps.log,
      metrics: this.deps.metrics,
      audit: this.deps.audit,
      routeFailureMode: (routeId) => this.config.routesById.get(routeId)?.failureMode ?? 'closed',
      routeUpstream: (routeId) => this.routeGroups.get(routeId),
      ...(this.deps.ownListeners ? { ownListeners: this.deps.ownListeners } : {}),
    };
  }

  private async build(): Promise<void> {
    try {
      this.app = await this.buildApp(this.services());
    } catch (err) {
      await this.closeResources();
      throw err;
    } finally {
      // adoption is done: do not keep the previous generation reachable from this one
      delete this.deps.previous;
    }
  }

  /**
   * The generation's Fastify instance: the features the config uses, registered in dependency
   * order (avvio enforces it), then the per-route filter arrays compiled once from what they
   * contributed.
   */
  private async buildApp(services: GenerationServices): Promise<FastifyInstance> {
    // The instance hosts the features (avvio order, decorations, onClose, under-pressure's
    // event-loop watch for /_/ready); it routes nothing: dispatch() hands every request to handle().
    const app = Fastify({ logger: false });
    this.app = app;
    await app.register(underPressure, {
      maxEventLoopDelay: 1000,
      pressureHandler: () => undefined, // readiness reports pressure; traffic is not rejected
    });
    const factories = new Map<string, FilterFactory>();
    const global: RequestFilter[] = [];
    const tails = new Map<string, RequestFilter[]>();
    const host: FeatureHost = {
      config: this.config,
      services,
      instance: { id: this.deps.instanceId, startedAt: this.deps.startedAt },
      previous: this.deps.previous?.app,
      filterType: (type, factory) => {
        if (factories.has(type)) throw new Error(`filter type "${type}" is provided by two features`);
        factories.set(type, factory);
      },
      globalFilter: (filter) => {
        global.push(filter);
        this.allFilters.push(filter);
      },
      routeFilter: (routeId, filter) => {
        const list = tails.get(routeId) ?? [];
        list.push(filter);
        tails.set(routeId, list);
        this.allFilters.push(filter);
      },
      onDispose: (fn) => {
        this.disposers.push(fn);
      },
      filters: () => this.allFilters,
      gateway: () => this.deps.gatewayInfo?.(),
    };
    for (const feature of planFeatures(this.deps.features, this.config)) app.register(feature.plugin, { host });
    await app.ready();

    const forwarding = decoration<ForwardingRuntime>(app, DECORATION.forwarding);
    for (const [id, g] of forwarding?.groups ?? []) this.groups.set(id, g);
    for (const [id, g] of forwarding?.routeGroups ?? []) this.routeGroups.set(id, g);
    for (const [id, r] of decoration<RouteTable>(app, DECORATION.routeTable)?.defaultRoutes ?? []) this.defaultRoutes.set(id, r);
    this.builtins = decoration<BuiltinsRuntime>(app, DECORATION.builtins);
    this.websocket = decoration<WebSocketRuntime>(app, DECORATION.websocket);
    this.tracing = decoration<TracingRuntime>(app, DECORATION.tracing);
    this.staticFiles = decoration<StaticFilesRuntime>(app, DECORATION.staticFiles);
    const built = new Map<string, RequestFilter | undefined>();
    for (const f of this.config.filters.values()) {
      const factory = factories.get(f.type);
      const filter = factory ? factory(f.id, f.config, services) : undefined;
      built.set(f.id, filter);
      if (filter) this.allFilters.push(filter);
    }
    for (const r of this.config.routes) {
      const own = r.filters.map((id) => built.get(id)).filter((f): f is RequestFilter => f !== undefined);
      this.chains.set(r.id, new FilterChain(r.builtin ? own : [...global, ...own, ...(tails.get(r.id) ?? [])]));
      if (r.websocket && r.raw['websocket-inspection'] === true && frameInspectingFilters(this.config, this.deps.features, r).length > 0) this.frameInspection.add(r.id);
    }
    // Not served before every filter can serve (an in-process agent built): a request must not wait
    // for, or be refused by, work the gateway does once (docs/agents.md, "In-process agents").
    await Promise.all(this.allFilters.map((f) => f.ready?.()));
    return app;
  }

  /** The feature plugins registered on this generation, in registration order (from printPlugins()). */
  get features(): string[] {
    const names = new Set(this.deps.features.map((f) => f.name));
    return this.app
      .printPlugins()
      .split('\n')
      .map((line) => /[\u2500-\u257f ]*(\S+)/.exec(line)?.[1] ?? '')
      .filter((name) => names.has(name));
  }

  /** Entry point from a listener. */
  dispatch(req: IncomingMessage, res: ServerResponse, listener: ListenerRuntime): void {
    (req as TaggedRequest)[LISTENER] = listener;
    if (!this.enter(req as TaggedRequest, res, listener)) return;
    // Straight to the pipeline: Fastify's routing (find-my-way's lookup and query parse, a
    // Request and Reply, under-pressure's onRequest hook, a hijack) only led here, and no feature
    // adds a Fastify hook or route (docs/architecture.md, "Per-generation Fastify instance").
    void this.handle(req as TaggedRequest, res);
  }

  start(): void {
    for (const g of this.groups.values()) g.start();
  }

  private ready(): boolean {
    return !this.deps.draining() && !this.app.isUnderPressure();
  }

  async handle(req: TaggedRequest, res: ServerResponse): Promise<void> {
    const f = this.begin(req);
    if (req.headers.expect !== undefined) deferContinue(req, res);
    try {
      const a = await this.admit(req, res, f);
      if (!a) return;
      // The gateway answered the expectation itself; undici cannot send it (UND_ERR_NOT_SUPPORTED).
      if (req.headers.expect !== undefined) delete a.ctx.upstreamHeaders.expect;
      if (a.route.requestHeaders) applyHeaderOps(a.ctx.upstreamHeaders, a.route.requestHeaders);
      const methodParams = a.rematch !== undefined ? this.methodParamCheck(req, a.route, a.rematch) : undefined;
      f.result = await forward({ ctx: a.ctx, req, res, route: a.route, group: a.group, chain: a.chain, maxBodyBytes: a.limit, bufferBodyBytes: Math.min(a.route.bodyBufferBytes ?? this.bodyBufferLimit, a.limit), metrics: this.deps.metrics, uploads: this.uploads, methodParams });
    } catch (err) {
      this.failed(err, res, f);
    } finally {
      this.finish(req, res, f);
    }
  }

  /**
   * A POST's body check for `_method` (src/server/method-param.ts): only for a body a framework
   * parses as a form (or Laravel's JSON), and only when some override could move the request to
   * another route than `route`; undefined otherwise (the body streams as before).
   */
  private methodParamCheck(req: IncomingMessage, route: CompiledRoute, rematch: (method: string) => CompiledRoute | undefined): MethodParamCheck | undefined {
    const contentType = req.headers['content-type'];
    const kind = formKind(contentType);
    if (kind === undefined || !requestHasBody(req)) return undefined;
    const listener = (req as TaggedRequest)[LISTENER]!;
    if (!overrideCouldMove(this.routedMethods.get(listener.config.id) ?? [], route, route.methodOverrides, rematch)) return undefined;
    return { refused: (body) => refusedOverride(overridesInBody(body, kind, contentType), route, route.methodOverrides, rematch) };
  }

  /**
   * A WebSocket upgrade (the listener's 'upgrade' event, HTTP/1.1). Same front half as handle();
   * local answers go out through a ServerResponse bound to the raw socket. The access log entry
   * and the in-flight count cover the whole session (status 101, duration until both sides closed).
   */
  async upgrade(req: IncomingMessage, socket: Duplex, head: Buffer, listener: ListenerRuntime): Promise<void> {
    (req as TaggedRequest)[LISTENER] = listener;
    const res = localResponder(req, socket);
    if (!this.enter(req as TaggedRequest, res, listener)) return;
    const f = this.begin(req as TaggedRequest);
    try {
      const a = await this.admit(req as TaggedRequest, res, f);
      if (!a) return;
      if (a.route.requestHeaders) applyHeaderOps(a.ctx.upstreamHeaders, a.route.requestHeaders);
      // admit() refuses upgrades on routes without `websocket #true`, so the feature is registered here
      f.result = await this.websocket!.proxy({ ctx: a.ctx, req, socket, head, res, route: a.route, group: a.group, chain: a.chain, inspectFrames: this.frameInspection.has(a.route.id), metrics: this.deps.metrics, sessions: this.sessions, clientBudgets: this.clientBudgets });
    } catch (err) {
      this.failed(err, res, f);
    } finally {
      this.finish(req, res, f);
      // No pooled upstream connection to keep: ending the context releases what filters hold for it.
      f.ctx?.cancel('websocket session ended');
    }
  }

  /**
   * The front door (src/server/front-door.ts): normalises the target and Host in place, or answers
   * here (malformed request, CONNECT, OPTIONS *) with an access log entry. False when answered.
   */
  private enter(req: TaggedRequest, res: ServerResponse, listener: ListenerRuntime): boolean {
    // a request read after faulty framing on its connection: bytes of an earlier body, not a request
    if ((req.socket as FramingTagged | null)?.[FAULTY_FRAMING] === true) {
      req.socket.destroy();
      return false;
    }
    const trusted = (req[PEER_TRUSTED] = this.trusted.any && isTrusted(this.trusted, req.socket.remoteAddress ?? ''));
    // Before the front door: past the limit, Node kept only limit + 1 fields of an HTTP/1.1 request
    // (listener-limits.ts, maxHeadersCount), and the front door would judge a request not sent.
    if (req.rawHeaders.length / 2 > this.maxHeaderCount && headerFieldCount(req.rawHeaders) > this.maxHeaderCount) {
      const f = this.begin(req);
      this.blocked('header_count_exceeded', 431, f, this.clientIp(req), undefined);
      f.result = this.sendLocal(res, f.traceId, { status: 431, body: JSON.stringify({ error: 'Request Header Fields Too Large', status: 431, request_id: f.traceId }), headers: { 'content-type': 'application/json; charset=utf-8', connection: 'close' } });
      this.finish(req, res, f);
      return false;
    }
    // HTTP/2: the SETTINGS_MAX_HEADER_LIST_SIZE a listener advertises binds a client only once it
    // has acknowledged it, after its first requests went out. Answered here, not in the listener's
    // handler, so the 431 has its correlation id and an access log entry as HTTP/1.1's has (session 28).
    if (req.httpVersionMajor === 2 && headerListBytes(req.rawHeaders) > this.maxHeaderBytes) {
      const f = this.begin(req);
      this.blocked('header_size_exceeded', 431, f, this.clientIp(req), undefined);
      f.result = this.sendLocal(res, f.traceId, { status: 431, body: JSON.stringify({ error: 'Request Header Fields Too Large', status: 431, request_id: f.traceId }), headers: { 'content-type': 'application/json; charset=utf-8' } });
      this.finish(req, res, f);
      return false;
    }
    const t = frontDoor(req, listener.config.protocol === 'https' ? 443 : 80, trusted ? this.proxyTrust : UNTRUSTED_PEER);
    if (!isAnswer(t)) {
      req[TARGET] = t;
      return true;
    }
    if (t.kind === 'http10_transfer_encoding' || (t.kind === 'transfer_coding' && req.httpVersionMajor === 1)) {
      // Faulty framing (RFC 9112 §6.1): nothing after it on this connection is a request. Node
      // has parsed a pipelined one already when the bytes came together: refused by the mark.
      // A coding refused with 501 too (session 19 audit): Node framed its body one way (an empty
      // Transfer-Encoding beside a Content-Length by the length: §6.1 says close), a hop in front
      // that reads `identity, chunked` or the empty coding otherwise frames another.
      (req.socket as FramingTagged)[FAULTY_FRAMING] = true;
      res.shouldKeepAlive = false;
    }
    this.answerAtFrontDoor(req, res, t);
    return false;
  }

  private answerAtFrontDoor(req: TaggedRequest, res: ServerResponse, a: FrontDoorAnswer): void {
    const f = this.begin(req);
    if (a.kind) this.deps.metrics.clientErrors.inc({ kind: a.kind });
    const json = a.kind !== undefined;
    f.result = this.sendLocal(res, f.traceId, {
      status: a.status,
      headers: { ...a.headers, ...(json ? { 'content-type': 'application/json; charset=utf-8' } : {}) },
      body: json ? errorBody(a.status, a.message, f.traceId) : '',
    });
    this.finish(req, res, f);
  }

  /**
   * A request Node's HTTP/1.1 parser refused (the listener's 'clientError'): there is no request
   * object, so it is answered on the socket here, counted by kind and access-logged.
   */
  clientError(err: NodeJS.ErrnoException & { rawPacket?: Buffer }, socket: Duplex, listener: ListenerRuntime): void {
    // The client went away (or the socket is already closed): nothing to answer.
    if (err.code === 'ECONNRESET' || !socket.writable) {
      socket.destroy();
      return;
    }
    const a = parserError(err.code);
    this.deps.metrics.clientErrors.inc({ kind: a.kind });
    const traceId = pickTraceId({}, this.traceFormat);
    const body = errorBody(a.status, a.message, traceId);
    // As Node's own handler: no second response when one is already being written on this connection.
    const current = (socket as Duplex & { _httpMessage?: { headersSent?: boolean } | null })._httpMessage;
    let sent = 0;
    if (!current?.headersSent) {
      sent = Buffer.byteLength(body);
      socket.end(
        `HTTP/1.1 ${a.status} ${STATUS_CODES[a.status] ?? 'Error'}\r\ncontent-type: application/json; charset=utf-8\r\ncontent-length: ${sent}\r\nx-correlation-id: ${traceId}\r\nconnection: close\r\n\r\n${body}`,
        () => socket.destroy(),
      );
      setTimeout(() => socket.destroy(), 1000).unref();
    } else socket.destroy();
    const access = this.deps.accessLog;
    if (!access) return;
    const line = requestLineOf(err.rawPacket);
    const q = line.target.indexOf('?');
    const s = socket as Duplex & { remoteAddress?: string };
    access.write(
      formatAccess(
        {
          timestamp: new Date().toISOString(),
          trace_id: traceId,
          method: loggedMethod(line.method),
          path: q >= 0 ? line.target.slice(0, q) : line.target,
          ...(q >= 0 ? { query: line.target.slice(q + 1) } : {}),
          protocol: 'HTTP/1.1',
          status: a.status,
          body_bytes: sent,
          duration_ms: 0,
          client_ip: (s.remoteAddress ?? '').replace(/^::ffff:/, ''),
          upstream_attempts: 0,
          instance_id: this.deps.instanceId,
          body_bytes_sent: sent,
          connection_reused: false,
          rate_limit_hit: false,
          error: a.kind,
          listener: listener.config.id,
        },
        this.deps.accessFormat,
      ),
    );
  }

  private begin(req: TaggedRequest): Front {
    this.inFlight++;
    this.deps.metrics.inFlight++;
    // Requests refused at the front door have no normalised target: the raw one is logged.
    let target = req[TARGET];
    if (!target) {
      const url = req.url ?? '/';
      const q = url.indexOf('?');
      target = { path: q >= 0 ? url.slice(0, q) : url, query: q >= 0 ? url.slice(q + 1) : '' };
    }
    const startTime = performance.now();
    // bounded for the logs and the span (loggedMethod): a longer method is never routed
    const method = loggedMethod(req.method ?? 'GET');
    // The correlation id is the client's id or a generated one whether tracing is on or off
    // (sentinel-reference.md §3.4; Envoy keeps x-request-id apart from the trace id too): the W3C
    // trace id travels in traceparent and the access log's otel_trace_id (docs/tracing.md "Propagation").
    const trace = this.tracing?.start(req, method, target.path, startTime);
    const unsampled = typeof trace === 'string';
    return {
      startTime,
      traceId: pickTraceId(req.headers, this.traceFormat),
      method,
      path: target.path,
      query: target.query,
      route: undefined,
      ctx: undefined,
      chain: undefined,
      result: undefined,
      trace: unsampled ? undefined : trace,
      traceparent: unsampled ? trace : undefined,
      refusedBy: undefined,
    };
  }

  private failed(err: unknown, res: ServerResponse, f: Front): void {
    this.deps.log.error({ err, trace_id: f.traceId }, 'request failed inside the gateway');
    // What made the first write throw (a header Node refuses to write: a Trailer on HTTP/1.1, a
    // connection-specific name or a non-Latin-1 value on HTTP/2) may still be set on the response;
    // writing the 500 with it would throw again, uncaught, and end the process.
    if (!res.headersSent) for (const name of res.getHeaderNames()) res.removeHeader(name);
    try {
      f.result = f.ctx ? sendError(res, f.ctx, 500, 'Internal Server Error', 0) : this.sendLocal(res, f.traceId, { status: 500, body: 'Internal Server Error' });
    } catch (again) {
      this.deps.log.error({ err: again, trace_id: f.traceId }, 'the 500 could not be written either; connection closed');
      res.destroy();
      f.result = { status: 500, durationMs: 0, requestBodyBytes: 0, responseBodyBytes: 0, upstreamAttempts: 0, error: 'internal_error' };
    }
  }

  /** 421 on a connection whose client verification a reload replaced, and the connection closed. */
  private refuseStale(req: TaggedRequest, res: ServerResponse, traceId: string): ForwardResult {
    this.deps.metrics.clientErrors.inc({ kind: 'stale_client_verification' });
    const result = this.sendLocal(res, traceId, {
      status: 421,
      headers: { 'content-type': 'application/json; charset=utf-8', connection: 'close' },
      body: errorBody(421, 'Misdirected Request: this connection was verified under client certificate settings that have changed; reconnect', traceId),
    });
    // HTTP/2 writes no Connection header: GOAWAY, once this answer is out
    if (req.httpVersionMajor === 2) (req as unknown as Http2ServerRequest).stream?.session?.close();
    return result;
  }

  /**
   * The front half shared by requests and upgrades: probes, header limits, route match, the
   * WebSocket gate, body limit, the filters' onRequest (rate limits, agents), builtins. Returns
   * what the back half needs, or undefined when the request was answered here (f.result set).
   */
  private async admit(req: TaggedRequest, res: ServerResponse, f: Front): Promise<Admitted | undefined> {
    const listener = req[LISTENER]!;
    const metrics = this.deps.metrics;
    const { traceId, path } = f;
    // No early res.setHeader('x-correlation-id'): every writer below adds it itself (writeLocal,
    // sendError, the relays), and a header set on `res` before writeHead(status, headers) sends
    // writeHead down Node's slow path, where each of the upstream's headers goes through
    // setHeader (lower-cased, copied into res's header table) before being written.
    // A TLS connection verified under client CA settings a reload has replaced (docs/tls.md, "Hot
    // reload"): nothing on it is served, not even a probe; the client reconnects and is verified afresh.
    if (listener.verifiedNow !== undefined && !listener.verifiedNow(req.httpVersionMajor === 2 ? ((req as unknown as Http2ServerRequest).stream.session ?? req.socket) : req.socket)) {
      f.result = this.refuseStale(req, res, traceId);
      return undefined;
    }
    // Probes answer before anything else (and never touch upstreams).
    if (listener.config.probes && path.charCodeAt(1) === 95 /* '_' */ && (path === '/_/health' || path === '/_/ready')) {
      const ok = path === '/_/health' || this.ready();
      f.result = this.sendLocal(res, traceId, {
        status: ok ? 200 : 503,
        headers: { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-cache, no-store, must-revalidate' },
        body: JSON.stringify({ status: ok ? (path === '/_/health' ? 'healthy' : 'ready') : this.deps.draining() ? 'draining' : 'overloaded', generation: this.number }),
      });
      return undefined;
    }
    // metrics.inFlight counts this request too (every generation of this process)
    if (this.maxInFlight !== undefined && metrics.inFlight > this.maxInFlight) {
      this.blocked('in_flight_limit', 503, f, this.clientIp(req), undefined);
      f.result = this.sendLocal(res, traceId, { status: 503, body: JSON.stringify({ error: 'Service Unavailable', status: 503, message: 'too many requests in flight', request_id: traceId }), headers: { 'content-type': 'application/json; charset=utf-8', 'retry-after': '1' } });
      return undefined;
    }
    // (too many header fields: refused before the front door, in enter())
    const oversized = oversizedHeader(req.rawHeaders, this.maxHeaderName, this.maxHeaderValue) ? 'header_field_too_large' : undefined;
    if (oversized) {
      this.blocked(oversized, 431, f, this.clientIp(req), undefined);
      f.result = this.sendLocal(res, traceId, { status: 431, body: JSON.stringify({ error: 'Request Header Fields Too Large', status: 431, request_id: traceId }), headers: { 'content-type': 'application/json; charset=utf-8', connection: 'close' } });
      return undefined;
    }
    const socket = req.socket;
    const clientIp = this.clientIp(req);
    const rawHost = req.headers.host ?? (req.headers[':authority'] as string | undefined) ?? '';
    const host = stripPort(rawHost).toLowerCase();
    // RFC 9110 §15.5.20: not over a connection negotiated for another certificate (docs/tls.md, "SNI and Host")
    if (listener.misdirected !== undefined && (socket as TLSSocket).encrypted && listener.misdirected(socket as TLSSocket, host)) {
      metrics.clientErrors.inc({ kind: 'misdirected_request' });
      f.result = this.sendLocal(res, traceId, { status: 421, headers: { 'content-type': 'application/json; charset=utf-8' }, body: errorBody(421, 'Misdirected Request: this connection was negotiated for another host', traceId) });
      return undefined;
    }
    const input = requestMatchInput(f.method, path, f.query, host, req.headers);
    // Only a sampled request has a trace and records child spans (an unsampled one carries its
    // traceparent and nothing else).
    const trace = f.trace;
    const matchStart = trace ? performance.now() : 0;
    const route = (f.route = matchRoute(this.config.routesByListener.get(listener.config.id) ?? this.config.routes, input, this.defaultRoutes.get(listener.config.id)));
    if (trace) this.traceRouteMatch(trace, matchStart, route);
    // A query-param condition read a parameter the upstream may see with another value: the
    // route chosen could be one the upstream's reading would not have matched (docs/security.md,
    // "Parser differentials").
    if (input.ambiguousQuery !== undefined) {
      metrics.clientErrors.inc({ kind: 'ambiguous_query_param' });
      f.result = this.sendLocal(res, traceId, { status: 400, headers: { 'content-type': 'application/json; charset=utf-8' }, body: errorBody(400, 'Bad Request: a query parameter the routes read is sent with different values or under another spelling', traceId) });
      return undefined;
    }
    if (!route) {
      f.result = this.sendLocal(res, traceId, notFoundBody(traceId, 'No matching route found'));
      return undefined;
    }
    if (route.allowFrom && !route.allowFrom(clientIp)) {
      this.blocked('client_not_allowed', 403, f, clientIp, route.id);
      f.result = this.sendLocal(res, traceId, { status: 403, headers: { 'content-type': 'application/json; charset=utf-8' }, body: JSON.stringify({ error: 'Forbidden', status: 403, request_id: traceId }) });
      return undefined;
    }
    // `_method` overrides (docs/security.md, "Method overrides in parameters"): frameworks run such
    // a POST as the method named; refused when a request with that method would take another route.
    let rematch: ((method: string) => CompiledRoute | undefined) | undefined;
    if (f.method === 'POST' && this.routedMethods.has(listener.config.id)) {
      const routes = this.config.routesByListener.get(listener.config.id) ?? this.config.routes;
      const fallback = this.defaultRoutes.get(listener.config.id);
      rematch = (method) => matchRoute(routes, { method, path: input.path, host: input.host, header: input.header, query: input.query }, fallback);
      const refused = f.query === '' ? undefined : refusedOverride(overridesInUrlencoded(f.query), route, route.methodOverrides, rematch);
      if (refused !== undefined) {
        this.blocked('method_override', 400, f, clientIp, route.id);
        f.result = this.sendLocal(res, traceId, { status: 400, headers: { 'content-type': 'application/json; charset=utf-8' }, body: errorBody(400, methodOverrideMessage(refused), traceId) });
        return undefined;
      }
    }
    const tls = listener.tlsInfo && (socket as TLSSocket).encrypted ? listener.tlsInfo(socket as TLSSocket) : undefined;
    const peer = socket.remoteAddress ?? '';
    const upstreamHeaders = forwardHeaders({
      headers: req.headers,
      clientIp,
      peerIp: peer.startsWith('::ffff:') ? peer.slice(7) : peer,
      trustedPeer: this.peerTrusted(req),
      protocol: tls ? 'https' : 'http',
      traceId,
    });
    if (route.methodOverrides) forwardMethodOverride(upstreamHeaders, f.method, req.headers, route.methodOverrides);
    const ctx = (f.ctx = new Context(traceId, f.startTime, req, f.method, path, f.query, host, clientIp, socket.remotePort ?? 0, listener.config.id, tls ? 'https' : 'http', tls, route.id, route.upstream, upstreamHeaders, this.deps.log));
    ctx.trace = trace;
    ctx.traceparent = f.traceparent;
    if (route.windowsKeyPath !== undefined) ctx.keyPath = route.windowsKeyPath(path);
    const chain = (f.chain = this.chains.get(route.id)!);
    // `on`, not `once`: a response closes once, and once's wrapper (a bound function and its
    // state object, removed again at the close) is work every request paid for nothing.
    res.on('close', () => {
      if (!res.writableFinished) ctx.cancel('client closed the connection');
    });
    // The WebSocket gate: 403 when the route does not allow upgrades (as Sentinel) or the page's
    // Origin is not in its websocket-allowed-origins, 400 without a valid key (src/websocket/origin.ts).
    const wsRefusal = req.headers.upgrade === undefined ? undefined : upgradeRefusal(route, req.headers);
    if (wsRefusal) {
      this.blocked(wsRefusal.reason, wsRefusal.status, f, clientIp, route.id);
      f.result = this.sendLocal(res, traceId, { status: wsRefusal.status, headers: { 'content-type': 'text/plain; charset=utf-8' }, body: wsRefusal.message });
      return undefined;
    }
    // CL.0 smuggling: an upstream that ignores a GET's (or DELETE's, OPTIONS' …) body reads it as
    // the next request on the pooled connection (docs/security.md, "Bodies on GET and other
    // bodiless methods"). The body is never read: HTTP/1.1 closes after the answer, HTTP/2 resets the stream.
    if (route.getBody === 'refuse' && bodylessWithDeclaredBody(f.method, req)) {
      metrics.clientErrors.inc({ kind: 'get_body' });
      f.result = sendError(res, ctx, 400, bodyRefusedMessage(f.method), 0, 'get_body');
      return undefined;
    }
    const limit = Math.min(this.bodyLimit, route.maxBodyBytes ?? Infinity);
    const cl = req.headers['content-length'];
    if (cl !== undefined && Number(cl) > limit) {
      this.blocked('body_size_exceeded', 413, f, clientIp, route.id);
      f.result = this.sendLocal(res, traceId, { status: 413, headers: { 'content-type': 'application/json; charset=utf-8', connection: 'close' }, body: JSON.stringify({ error: 'Payload Too Large', status: 413, request_id: traceId }) });
      return undefined;
    }
    // filter spans for sampled requests only (an unsampled one's agents still get ctx.traceparent)
    // (the chain's answer is the filter's own promise, awaited here, or a value: no await for it)
    const asked = chain.hasRequestHooks ? chain.onRequest(ctx, trace, f) : undefined;
    const local = isPromise(asked) ? await asked : asked;
    if (local) {
      const filter = f.refusedBy!;
      if (local.blockReason) {
        // rate limits and agents write their own, more specific audit events
        if (filter.type === 'rate-limit' || filter.type === 'agent') metrics.blockedRequests.inc({ reason: local.blockReason });
        else this.blocked(local.blockReason, local.status, f, clientIp, route.id, filter.id);
      }
      try {
        for (const k in ctx.responseHeaders) if (local.headers?.[k] === undefined) res.setHeader(k, ctx.responseHeaders[k]!);
      } catch (err) {
        // The answer will not be written (a filter set an invalid header value): whatever it holds
        // (a cache hit's arena chunks) goes back now, else it would count against the budget for good.
        local.onSent?.();
        throw err;
      }
      f.result = this.sendLocal(res, traceId, local);
      return undefined;
    }
    if (route.builtin) {
      // DNS rebinding: gateway state only to a Host that names this machine, one the route names
      // itself, or over TLS (a browser checks the name against the certificate) (src/builtins/local-host.ts)
      const localHost = (socket as TLSSocket).encrypted === true || route.raw.matches?.host !== undefined || namesThisMachine(host);
      if (!localHost && STATE_REVEALING_BUILTINS.includes(route.builtin)) {
        this.blocked('admin_host', 421, f, clientIp, route.id);
        f.result = this.sendLocal(res, traceId, { status: 421, headers: { 'content-type': 'application/json; charset=utf-8' }, body: errorBody(421, 'Misdirected Request', traceId) });
        return undefined;
      }
      const audit = (type: AuditEventType, fields: Record<string, unknown>) => this.deps.audit(requestAuditEvent(ctx, type, { listener: listener.config.id, ...fields }));
      const answer = await this.builtins!.run(route.builtin, traceId, { accept: req.headers.accept ?? '', detail: (listener.config.loopback || route.allowFrom !== undefined) && localHost, listener: listener.config.id, method: req.method, path, query: f.query, headers: req.headers, prefixes: route.raw.matches?.['path-prefix'] ?? [], audit });
      if (answer.blockReason) this.blocked(answer.blockReason, answer.status, f, clientIp, route.id);
      f.result = this.sendLocal(res, traceId, answer);
      return undefined;
    }
    // A static-files route: the files are its origin, relayed through the route's response filters.
    if (this.staticFiles?.serves(route.id)) {
      const source = await this.staticFiles.respond(ctx, route.id);
      f.result = await relayLocalSource({ ctx, res, source, route, chain, metrics });
      return undefined;
    }
    const group = this.routeGroups.get(route.id);
    if (!group) {
      f.result = this.sendLocal(res, traceId, { status: 500, headers: { 'content-type': 'application/json; charset=utf-8' }, body: JSON.stringify({ error: 'route has no upstream', status: 500, request_id: traceId }) });
      return undefined;
    }
    return { ctx, route, group, chain, limit, rematch };
  }

  /** A request the gateway refused itself: counted, and one `blocked` audit event. */
  private blocked(reason: string, status: number, f: Front, clientIp: string, routeId: string | undefined, filter?: string): void {
    this.deps.metrics.blockedRequests.inc({ reason });
    this.deps.audit(requestAuditEvent({ traceId: f.traceId, method: f.method, path: f.path, clientIp, routeId }, 'blocked', { reason, status_code: status, filter }));
  }

  private traceRouteMatch(trace: RequestTrace, startTime: number, route: CompiledRoute | undefined): void {
    const span = trace.child('route match', 'internal', startTime);
    if (route) {
      span.set('sentinel.route.id', route.id);
      this.tracing!.routed(trace, route);
    } else span.set('sentinel.route.matched', false);
    span.end();
  }

  private finish(req: IncomingMessage, _res: ServerResponse, f: Front): void {
    const { startTime, method, path, query, traceId, route, ctx, chain, result, trace, traceparent } = f;
    const metrics = this.deps.metrics;
    const durationMs = performance.now() - startTime;
    const status = result?.status ?? 500;
    const routeLabel = route?.id ?? '_none';
    this.requestMetrics(routeLabel, methodLabel(method), status).observe(durationMs / 1000);
    metrics.inFlight--;
    trace?.finish(status, result?.error);
    if (ctx) {
      // refusals decided while forwarding (streamed body too large, body timeout, a request the upstream client refuses)
      if (ctx.audit.blocked !== undefined) this.deps.audit(requestAuditEvent(ctx, 'blocked', { reason: ctx.audit.blocked, status_code: status }));
      if (chain?.hasCompleteHooks) chain.onComplete(ctx, { ...(result ?? { status, requestBodyBytes: 0, responseBodyBytes: 0, upstreamAttempts: 0 }), durationMs }, this.deps.log);
      // No abort here: aborting a finished request would make undici drop a reusable upstream
      // connection. Only a client that leaves early cancels (see the 'close' listener).
    }
    const access = this.deps.accessLog;
    if (access) {
      const h = req.headers;
      // One shape for every request: optional fields are undefined rather than spread in, so V8
      // builds the entry as one literal with fixed keys (JSON.stringify omits undefined, the
      // combined format tests them the same way). Conditional spreads made each later property
      // go through the runtime once the shapes varied (docs/architecture.md, "A per-process V8 state").
      const entry: AccessEntry = {
        timestamp: new Date(Date.now() - durationMs).toISOString(),
        trace_id: traceId,
        method,
        path,
        query: query || undefined,
        protocol: `HTTP/${req.httpVersion}`,
        status,
        body_bytes: result?.responseBodyBytes ?? 0,
        duration_ms: Math.round(durationMs * 1000) / 1000,
        client_ip: ctx?.clientIp ?? req.socket.remoteAddress ?? '',
        user_agent: h['user-agent'] || undefined,
        referer: h.referer || undefined,
        host: h.host || undefined,
        route_id: route ? route.id : undefined,
        upstream: route?.upstream || undefined,
        upstream_attempts: result?.upstreamAttempts ?? 0,
        instance_id: this.deps.instanceId,
        body_bytes_sent: result?.responseBodyBytes ?? 0,
        upstream_addr: result?.upstreamAddr || undefined,
        connection_reused: false,
        rate_limit_hit: ctx?.audit.rateLimited ?? false,
        client_cert_subject: ctx?.tls?.clientSubject,
        // an unsampled request's ids are in its traceparent, `00-<trace id>-<span id>-00`
        otel_trace_id: trace ? trace.traceId : traceparent?.slice(3, 35),
        otel_span_id: trace ? trace.spanId : traceparent?.slice(36, 52),
      };
      access.write(formatAccess(entry, this.deps.accessFormat));
    }
    if (--this.inFlight === 0 && this.drained) this.drained();
  }

  // Cells are resolved once per label set (src/metrics/fast.ts).
  private readonly metricChildren = new Map<string, { observe(seconds: number): void }>();
  // The label set asked last, and its cells: most requests repeat it (no key string, no Map lookup).
  private lastRoute = '';
  private lastMethod = '';
  private lastStatus = 0;
  private lastCells: { observe(seconds: number): void } | undefined;
  private requestMetrics(route: string, method: string, status: number): { observe(seconds: number): void } {
    if (this.lastCells !== undefined && this.lastStatus === status && this.lastRoute === route && this.lastMethod === method) return this.lastCells;
    const cells = this.metricCells(route, method, status);
    this.lastRoute = route;
    this.lastMethod = method;
    this.lastStatus = status;
    this.lastCells = cells;
    return cells;
  }
  private metricCells(route: string, method: string, status: number): { observe(seconds: number): void } {
    const key = `${route}\u0000${method}\u0000${status}`;
    let child = this.metricChildren.get(key);
    if (!child) {
      const counter = this.deps.metrics.requestsTotal.child(route, method, String(status));
      const histogram = this.deps.metrics.requestDuration.child(route, method);
      child = {
        observe(seconds) {
          counter.value++;
          histogram.observe(seconds);
        },
      };
      if (this.metricChildren.size < 10_000) this.metricChildren.set(key, child);
    }
    return child;
  }

  private sendLocal(res: ServerResponse, traceId: string, local: LocalResponse): ForwardResult {
    return writeLocal(res, traceId, local);
  }

  /** The front door's answer (every request and upgrade passes it before anything reads this). */
  private peerTrusted(req: TaggedRequest): boolean {
    return req[PEER_TRUSTED] ?? (this.trusted.any && isTrusted(this.trusted, req.socket.remoteAddress ?? ''));
  }

  private clientIp(req: TaggedRequest): string {
    const peer = req.socket.remoteAddress ?? '';
    const ip = peer.startsWith('::ffff:') ? peer.slice(7) : peer;
    if (!this.peerTrusted(req)) return ip;
    // Walk X-Forwarded-For from the right, skipping trusted proxies. An entry that is not an
    // address ends the walk at the proxy that sent it: the client's text is never the address.
    const xff = req.headers['x-forwarded-for'];
    const list = (Array.isArray(xff) ? xff.join(',') : xff ?? '').split(',').map((s) => s.trim()).filter(Boolean);
    let nearest = ip;
    for (let i = list.length - 1; i >= 0; i--) {
      const entry = forwardedAddress(list[i]!);
      if (entry === undefined) return nearest;
      if (!isTrusted(this.trusted, entry)) return entry;
      nearest = entry;
    }
    return nearest;
  }

  get activeRequests(): number {
    return this.inFlight;
  }

  /** Waits for in-flight requests (bounded), then releases pools, filters and timers. */
  async dispose(drainTimeoutMs: number): Promise<void> {
    if (this.inFlight > 0) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, drainTimeoutMs);
        timer.unref();
        this.drained = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
    // WebSocket sessions still open when the drain time is over are closed with 1001 (going away).
    if (this.sessions.size > 0) {
      const ending = [...this.sessions].map((s) => s.done);
      for (const s of this.sessions) s.goingAway();
      await Promise.race([Promise.all(ending), new Promise((r) => setTimeout(r, 2000).unref())]);
    }
    await this.closeResources();
  }

  private async closeResources(): Promise<void> {
    await Promise.allSettled([
      ...this.disposers.map(async (fn) => fn()),
      ...this.allFilters.map(async (f) => f.close?.()),
      this.app ? this.app.close() : Promise.resolve(),
    ]);
  }
}
