// Streams one request to an upstream group and the response back, with retries (when the
// group's policy allows), the error taxonomy, client-abort propagation, and socket destruction
// when an upstream fails after the response headers went out.
import { ServerResponse, type IncomingMessage } from 'node:http';
import http2, { type Http2ServerResponse } from 'node:http2';
import { Readable, Transform } from 'node:stream';
import type { Dispatcher } from 'undici';
import { CancelToken, type Context } from './context.ts';
import type { UpstreamGroup } from '../upstream/group.ts';
import type { AttemptOutcome, PickContext } from '../upstream/types.ts';
import type { HeaderMap, CompletionInfo, LocalResponse, ResponseBodyHandler, ResponseSource, TraceSpan, UpstreamResponseInfo } from '../pipeline/types.ts';
import type { FilterChain } from '../pipeline/chain.ts';
import { BufferedRelay, ResponseBufferBudget, relayBuffering, responseBufferBudget, type ResponseBufferPolicy } from '../upstream/response-buffer.ts';
import { classifyUpstreamError, errorBody } from '../errors/index.ts';
import { applyHeaderOps, http2HeaderValue, singleValuedForHttp2 } from './headers.ts';
import { UnbufferedCapReached, UpstreamExchange, opensStream } from '../upstream/exchange.ts';
import { bodylessMethod, Gather, h2BodyFollows, readBody, requestHasBody } from './request-body.ts';
import { responseChunkRead, type ResponseChunkRead } from './body-seams.ts';
import type { CompiledRoute } from '../config/compile.ts';
import type { Metrics } from '../metrics/registry.ts';
import type { CounterCell, HistogramCell } from '../metrics/fast.ts';
import { bodyArrived, type UploadGate } from './upload-slots.ts';

export class BodyTooLarge extends Error {
  constructor(readonly limit: number) {
    super(`request body larger than ${limit} bytes`);
  }
}

/**
 * Counts streamed request bytes and fails the stream once the limit is passed. Chunks under
 * SMALL_CHUNK (request-body.ts) bytes are passed on gathered, one Buffer per socket read (or per SMALL_CHUNK bytes):
 * a body sent one byte per HTTP/1.1 chunk or HTTP/2 DATA frame went upstream as one write, and one
 * upstream chunk, per byte (docs/security.md, "Session 24 audit").
 */
export function limitStream(limit: number): Transform & { bytes: number } {
  let bytes = 0;
  const small = new Gather();
  let later: NodeJS.Immediate | undefined;
  const push = (block: Buffer): void => {
    t.push(block);
  };
  const pass = (): void => {
    if (later) clearImmediate(later);
    later = undefined;
    const block = small.take();
    if (block) t.push(block);
  };
  const t = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      bytes += chunk.length;
      if (bytes > limit) return cb(new BodyTooLarge(limit));
      small.offer(chunk, push);
      // what is left gathered goes at the end of this socket read (the rest of it comes in first)
      if (small.bytes > 0) later ??= setImmediate(pass);
      else if (later) {
        clearImmediate(later);
        later = undefined;
      }
      cb();
    },
    flush(cb) {
      pass();
      cb();
    },
    destroy(err, cb) {
      if (later) clearImmediate(later);
      cb(err);
    },
  }) as Transform & { bytes: number };
  Object.defineProperty(t, 'bytes', { get: () => bytes });
  return t;
}


/**
 * Requests whose body is a stream by protocol (gRPC, including client and bidirectional streams
 * over HTTP/2, and gRPC-Web): the upstream must see each message as it is sent, so they are never
 * buffered.
 */
function streamedProtocol(req: IncomingMessage): boolean {
  const ct = req.headers['content-type'];
  return ct !== undefined && ct.length >= 16 && ct.slice(0, 16).toLowerCase() === 'application/grpc';
}

/** What the balancer may look at for this request (also used by the WebSocket proxy). */
export function pickContext(ctx: Context, exclude: ReadonlySet<number> | undefined): PickContext {
  return new RequestPick(ctx.clientIp, ctx.path, exclude, ctx.raw.headers);
}

/** A PickContext as one object a pick (its lookups are methods, not two closures and their context). */
class RequestPick implements PickContext {
  private cookies: Map<string, string> | undefined = undefined;
  constructor(
    readonly clientIp: string,
    readonly path: string,
    readonly exclude: ReadonlySet<number> | undefined,
    private readonly headers: IncomingMessage['headers'],
  ) {}

  header(name: string): string | undefined {
    const v = this.headers[name];
    return Array.isArray(v) ? v[0] : v;
  }

  cookie(name: string): string | undefined {
    let cookies = this.cookies;
    if (!cookies) {
      cookies = new Map();
      for (const part of (this.headers.cookie ?? '').split(';')) {
        const i = part.indexOf('=');
        if (i > 0) cookies.set(part.slice(0, i).trim(), part.slice(i + 1).trim());
      }
      this.cookies = cookies;
    }
    return cookies.get(name);
  }
}

export interface ForwardResult extends CompletionInfo {
  upstreamAddr?: string;
}

interface UpstreamCells {
  metrics: Metrics;
  attempts: CounterCell;
  duration: HistogramCell;
}
// A route has one upstream, so its metric cells are resolved once per compiled route.
const cellsByRoute = new WeakMap<CompiledRoute, UpstreamCells>();
function upstreamCells(metrics: Metrics, route: CompiledRoute, upstream: string): UpstreamCells {
  let c = cellsByRoute.get(route);
  if (c?.metrics !== metrics) {
    c = { metrics, attempts: metrics.upstreamAttempts.child(upstream, route.id), duration: metrics.upstreamDuration.child(upstream) };
    cellsByRoute.set(route, c);
  }
  return c;
}

const IDEMPOTENT_NO_BODY = new Set(['GET', 'HEAD', 'OPTIONS', 'DELETE', 'TRACE']);

/**
 * Buffered bodies above this size are handed to the dispatcher as a one-chunk stream so a
 * stalled upload is seen (undici writes a Buffer in one call and never pauses it).
 */
export const STREAM_BUFFER_ABOVE = 64 * 1024;

/**
 * `timeouts { write-secs }`: calls `onStall` once the dispatcher has kept `body` paused (it pauses
 * a request body only when the upstream connection or HTTP/2 stream stops accepting bytes) for
 * `ms` without a resume. An idle bound: every resume is progress and restarts the clock. A client
 * that is slow to send never pauses the body, so it is never blamed on the upstream. One lazily
 * re-armed timer per watched attempt, nothing per chunk. Returns the stop function.
 */
export function watchUploadStall(body: Readable, ms: number, onStall: () => void): () => void {
  let pausedAt = -1;
  let timer: NodeJS.Timeout | undefined;
  const check = () => {
    timer = undefined;
    if (pausedAt < 0) return;
    const left = ms - (performance.now() - pausedAt);
    if (left <= 0) {
      stop();
      onStall();
    } else timer = setTimeout(check, left);
  };
  const onPause = () => {
    pausedAt = performance.now();
    timer ??= setTimeout(check, ms);
  };
  const onResume = () => {
    pausedAt = -1;
  };
  const stop = () => {
    if (timer) clearTimeout(timer);
    timer = undefined;
    pausedAt = -1;
    body.off('pause', onPause);
    body.off('resume', onResume);
  };
  body.on('pause', onPause);
  body.on('resume', onResume);
  return stop;
}

/** The attempt's request body stalled for write-secs (the upstream stopped reading it). */
export class UpstreamWriteTimeout extends Error {
  readonly code = 'SENTINEL_WRITE_TIMEOUT';
  constructor(readonly ms: number) {
    super(`upstream stopped reading the request body for ${ms} ms`);
  }
}

/** Checks a POST's whole body for `_method` overrides (src/server/method-param.ts): the refused method, or undefined. */
export interface MethodParamCheck {
  refused(body: Buffer): string | undefined;
}

/** The 400 for a `_method` override another route would take (the method named only when it is a plain one). */
export function methodOverrideMessage(method: string): string {
  const named = /^[A-Z]{1,20}$/.test(method) ? method : 'another method';
  return `Bad Request: the _method parameter names ${named}, and such a request to this path is routed otherwise: send it as that method`;
}

/** The 400 `get_body` answer's message (docs/security.md, "Bodies on GET and other bodiless methods"). */
export function bodyRefusedMessage(method: string): string {
  return `Bad Request: a ${method} request may not carry a body on this route`;
}

export interface ForwardOptions {
  ctx: Context;
  req: IncomingMessage;
  res: ServerResponse;
  route: CompiledRoute;
  group: UpstreamGroup;
  chain: FilterChain;
  maxBodyBytes: number;
  /** bodies up to this many bytes are read whole before a target is picked; 0: always stream */
  bufferBodyBytes: number;
  metrics: Metrics;
  /** `limits { max-streaming-uploads-per-client }`: asked before a body streams upstream */
  uploads?: UploadGate;
  /** a POST whose form body may carry a `_method` override another route would take (src/server/method-param.ts) */
  methodParams?: MethodParamCheck;
}

export function forward(opts: ForwardOptions): Promise<ForwardResult> {
  return new Forwarding(opts).run();
}

/** `timeouts { request-secs }` ran out (a module function with the exchange as its argument: no closure a request). */
function requestTimedOut(f: Forwarding): void {
  f.timedOut = true;
  f.ctx.cancel('upstream request timeout');
}

/**
 * One request's exchange. Its state is this object's fields and its steps are methods: as one
 * function with inner functions, every call made the functions' closures and their shared
 * context (six of them, ~1 KiB a request with the attempt loop's async frame), on every path
 * (docs/waf.md, "Session 29 (waf29b)").
 */
class Forwarding {
  readonly ctx: Context;
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  readonly route: CompiledRoute;
  readonly group: UpstreamGroup;
  readonly chain: FilterChain;
  readonly metrics: Metrics;
  readonly opts: ForwardOptions;
  readonly cells: UpstreamCells;
  hasBody = false;
  limiter: (Transform & { bytes: number }) | undefined = undefined;
  bodyArg: Dispatcher.DispatchOptions['body'] = null;
  // Request buffering (docs/security.md, "Request buffering"): a body that may fit the threshold
  // is read whole before a target is picked, so a client that trickles it holds no upstream socket.
  bufferFirst = false;
  releaseUpload: (() => void) | undefined = undefined;
  bodyReplayable = true;
  timedOut = false;
  /** when the client's request was whole at the gateway, if it took reading (a body, an HTTP/2 GET's empty DATA); 0 until then */
  wholeAt = 0;

  constructor(opts: ForwardOptions) {
    this.ctx = opts.ctx;
    this.req = opts.req;
    this.res = opts.res;
    this.route = opts.route;
    this.group = opts.group;
    this.chain = opts.chain;
    this.metrics = opts.metrics;
    this.opts = opts;
    this.cells = upstreamCells(opts.metrics, opts.route, opts.group.id);
  }

  async run(): Promise<ForwardResult> {
    const { ctx, req, res, route, metrics } = this;
    const contentLength = req.headers['content-length'];
    // `timeouts { request-secs }` bounds the whole exchange: every read of the request body (an
    // HTTP/2 GET's empty one included), all attempts and the response body.
    const requestTimer = setTimeout(requestTimedOut, this.group.timeouts.requestMs, this);
    try {
      // A bodiless method whose head declared a body was refused before the filters
      // (bodylessWithDeclaredBody); what is left is HTTP/2 DATA without content-length, read here
      // (nothing beyond 0 bytes is kept). Before session 21 this read ran before request-secs: a
      // stream that never sent its DATA nor ended waited for the listener's request timeout (60 s).
      if (route.getBody === 'refuse' && bodylessMethod(ctx.method) && (ctx.body !== undefined ? ctx.body.length > 0 : contentLength === undefined && h2BodyFollows(req))) {
        const empty = ctx.body === undefined ? await readBody(req, 0, ctx.signal) : undefined;
        this.wholeAt = performance.now();
        if (empty === undefined || (!empty.ok && empty.reason === 'too_large')) {
          metrics.clientErrors.inc({ kind: 'get_body' });
          return sendError(res, ctx, 400, bodyRefusedMessage(ctx.method), 0, 'get_body');
        }
        if (!empty.ok) return this.bodyReadFailed(empty.received);
      }
      this.hasBody = ctx.body !== undefined || requestHasBody(req);
      if (ctx.body !== undefined) {
        this.bodyArg = ctx.body;
        ctx.upstreamHeaders['content-length'] = String(ctx.body.length);
        delete ctx.upstreamHeaders['transfer-encoding'];
      } else if (this.hasBody) {
        // A body the client breaks off (an HTTP/2 stream reset, e.g. for DATA beyond its
        // Content-Length) ends the request stream as if it were complete: cancel before undici takes
        // that end for an empty or shorter body and sends it as a whole request (docs/security.md,
        // "Request bodies").
        req.once('aborted', () => ctx.cancel('client aborted the request body'));
        // a streamed body's end, for the blame of a request-secs timeout (upstreamHadItsTime)
        req.once('end', () => (this.wholeAt = performance.now()));
        const opts = this.opts;
        this.bufferFirst = opts.bufferBodyBytes > 0 && (contentLength === undefined || Number(contentLength) <= opts.bufferBodyBytes) && !streamedProtocol(req);
        // a body that would stream past the gateway unread cannot be checked for `_method`
        if (!this.bufferFirst && opts.methodParams) return this.methodParamsUnchecked();
        if (!this.bufferFirst && opts.uploads) {
          // HTTP/2 hands over a request at its HEADERS frame, before the DATA that came with it in
          // the same read: one turn of the loop lets a unary gRPC call's message end its stream.
          if (opts.uploads.cap > 0 && !bodyArrived(req)) await new Promise((r) => setImmediate(r));
          const refused = this.takeUploadSlot();
          if (refused) return refused;
        }
        if (this.bufferFirst) {
          // bodyArg is set once the body is read (readFirst)
        } else if (contentLength !== undefined && req.httpVersionMajor !== 2) {
          this.bodyArg = req; // size already checked against the limit by the caller
        } else {
          // HTTP/2 with a content-length too: its DATA frames may be a byte each (limitStream)
          const limiter = limitStream(opts.maxBodyBytes);
          this.limiter = limiter;
          req.pipe(limiter);
          this.bodyArg = limiter;
        }
      }
      this.bodyReplayable = !this.hasBody || ctx.body !== undefined;
      if (this.bufferFirst) {
        const early = await this.readFirst();
        if (early) return early;
      }
      if (this.opts.methodParams && ctx.body !== undefined) {
        const refused = this.opts.methodParams.refused(ctx.body);
        if (refused !== undefined) {
          metrics.blockedRequests.inc({ reason: 'method_override' });
          ctx.audit.blocked = 'method_override';
          return sendError(res, ctx, 400, methodOverrideMessage(refused), 0, 'method_override');
        }
      }
      return await this.attempts();
    } finally {
      clearTimeout(requestTimer);
      this.releaseUpload?.();
    }
  }

  /**
   * Before a body streams (docs/security.md, "Request buffering"): a slot of the client's
   * streaming uploads, held until the body has arrived or the exchange ends, whichever is first.
   * Returns the answer when the client is at its cap: 429, before any target is picked.
   */
  takeUploadSlot(): ForwardResult | undefined {
    const { ctx, req, res } = this;
    const slot = this.opts.uploads?.take(ctx.clientIp, req);
    if (slot === undefined) return undefined;
    if (slot !== null) {
      this.releaseUpload = slot;
      req.once('end', slot);
      return undefined;
    }
    this.metrics.blockedRequests.inc({ reason: 'streaming_uploads_limit' });
    ctx.audit.blocked = 'streaming_uploads_limit';
    res.setHeader('retry-after', '1');
    return sendError(res, ctx, 429, 'Too Many Requests: too many request bodies streaming from this client', 0, 'streaming_uploads_limit');
  }

  /**
   * Reads the body before any target is involved: whole (sent with Content-Length, replayable),
   * or, past the threshold (a chunked or HTTP/2 body without Content-Length that grew), what was
   * read followed by the rest as it arrives. A client that stops or leaves here never reaches an
   * upstream. Returns the answer when the request ends here.
   */
  async readFirst(): Promise<ForwardResult | undefined> {
    const { ctx, req, res, opts } = this;
    const kept: Buffer[] = [];
    const read = await readBody(req, opts.bufferBodyBytes, ctx.signal, undefined, kept);
    if (read.ok) {
      ctx.body = read.body;
      this.bodyArg = read.body;
      this.bodyReplayable = true;
      ctx.upstreamHeaders['content-length'] = String(read.body.length);
      delete ctx.upstreamHeaders['transfer-encoding'];
      return undefined;
    }
    if (read.reason === 'too_large' && !ctx.cancelled) {
      if (read.received > opts.maxBodyBytes) {
        this.metrics.blockedRequests.inc({ reason: 'body_size_exceeded' });
        ctx.audit.blocked = 'body_size_exceeded';
        return sendError(res, ctx, 413, 'Payload Too Large', 0);
      }
      if (opts.methodParams) return this.methodParamsUnchecked();
      const refused = this.takeUploadSlot();
      if (refused) return refused;
      const limiter = limitStream(opts.maxBodyBytes);
      this.limiter = limiter;
      for (const c of kept) limiter.write(c);
      req.pipe(limiter);
      this.bodyArg = limiter;
      return undefined;
    }
    return this.bodyReadFailed(read.received);
  }

  /**
   * Whether the target had the whole request for the time it is given (its headers timeout:
   * read-secs or the route's timeout-secs; request-secs when shorter), less a tenth (at most 1 s)
   * for timer slack. Measured from this attempt's start or the request's end at the gateway,
   * whichever is later (docs/security.md, "Upstream blame").
   */
  upstreamHadItsTime(t0: number): boolean {
    const given = Math.min(this.route.timeoutMs ?? this.group.timeouts.readMs, this.group.timeouts.requestMs);
    return performance.now() - Math.max(t0, this.wholeAt) >= given - Math.min(1000, given / 10);
  }

  /** A form POST that could carry a `_method` another route takes, too large to be read first: 413 (docs/security.md, "Method overrides in parameters"). */
  methodParamsUnchecked(): ForwardResult {
    const { ctx } = this;
    this.metrics.blockedRequests.inc({ reason: 'method_override_unchecked' });
    ctx.audit.blocked = 'method_override_unchecked';
    return sendError(this.res, ctx, 413, `Payload Too Large: a form POST to this path is read whole to check its _method parameter, and this one is larger than the route's max-body-buffer-bytes (${this.opts.bufferBodyBytes})`, 0, 'method_override_unchecked');
  }

  /** A read of the body before any target failed (not for its size): who is to blame, and the answer. */
  bodyReadFailed(received: number): ForwardResult {
    const { ctx, res } = this;
    if (this.timedOut) {
      // request-secs ran out while the client was still sending: the client was slow.
      this.metrics.blockedRequests.inc({ reason: 'request_body_timeout' });
      ctx.audit.blocked = 'request_body_timeout';
      return sendError(res, ctx, 408, 'Request Timeout: the request body did not arrive in time', 0, 'client_timeout');
    }
    if (ctx.cancelled || res.destroyed) {
      return { status: 499, durationMs: 0, requestBodyBytes: received, responseBodyBytes: 0, upstreamAttempts: 0, error: 'client closed request' };
    }
    return sendError(res, ctx, 400, 'Bad Request: the request body could not be read', 0, 'body_read_failed');
  }

  /** The upstream failed: a filter may still answer (onUpstreamError), else the core's error. */
  upstreamFailed(status: number, message: string, attempt: number, reason: string): ForwardResult {
    const { ctx, res } = this;
    const local = res.headersSent ? undefined : this.chain.onUpstreamError(ctx, { status, reason });
    if (local) return { ...writeLocal(res, ctx.traceId, local), upstreamAttempts: attempt, error: reason };
    return sendError(res, ctx, status, message, attempt, reason);
  }

  /** A failure's metric labels (made only when one is counted). */
  failureLabels(reason: string): { upstream: string; route: string; reason: string } {
    return { upstream: this.group.id, route: this.route.id, reason };
  }

  async attempts(): Promise<ForwardResult> {
    const { ctx, req, res, route, group, metrics, cells, bodyArg } = this;
    let attempt = 0;
    // The targets tried: none on the first attempt (no Set made for the usual request), the first
    // one's id until a retry needs the Set.
    let exclude: Set<number> | undefined;
    let firstTried = -1;
    for (;;) {
      attempt++;
      if (attempt > 1 && exclude === undefined) exclude = new Set([firstTried]);
      const pick = group.select(pickContext(ctx, exclude));
      if (!pick) {
        return this.upstreamFailed(503, 'Service Unavailable: no healthy upstream target', attempt - 1, 'no_healthy_target');
      }
      const target = pick.target;
      if (exclude !== undefined) exclude.add(target.index);
      else firstTried = target.index;
      cells.attempts.value++;
      // With tracing on, each attempt of a sampled request is a client span and the upstream sees it
      // as its parent; an unsampled request records nothing: the upstream gets its ids, flags 00.
      let span: TraceSpan | undefined;
      if (ctx.trace) span = attemptSpan(ctx, req.method ?? 'GET', group.origin(target), req.url ?? '/', target.host, target.port, group.id, attempt);
      else if (ctx.traceparent !== undefined) ctx.upstreamHeaders.traceparent = ctx.traceparent;
      const t0 = performance.now();
      let outcome: AttemptOutcome;
      let response: UpstreamExchange;
      // Only attempts that upload a body pay for the write-secs watch (a per-attempt cancel token
      // linked to the client's, and one timer); bodiless requests keep the plain path.
      const watch = bodyArg !== null ? watchAttemptBody(ctx.cancelToken, bodyArg, group.timeouts.writeMs) : undefined;
      const attemptBody = watch !== undefined ? watch.body : bodyArg;
      try {
        response = await UpstreamExchange.send(
          group.dispatcher(target),
          {
            origin: group.origin(target),
            path: req.url ?? '/',
            method: req.method as Dispatcher.HttpMethod,
            headers: ctx.upstreamHeaders as Record<string, string | string[]>,
            body: attemptBody,
            headersTimeout: route.timeoutMs ?? group.timeouts.readMs,
            bodyTimeout: group.timeouts.readMs,
          },
          watch !== undefined ? watch.signal : ctx.cancelToken,
        );
        watch?.stopStall?.();
      } catch (thrown) {
        watch?.stopStall?.();
        watch?.unlink?.();
        const writeTimedOut = watch?.writeTimedOut === true;
        if (span) {
          span.fail(this.timedOut ? 'timeout' : writeTimedOut ? 'write_timeout' : ctx.cancelled ? 'cancelled' : classifyUpstreamError(thrown).reason);
          span.end();
        }
        let err = thrown;
        const latencyMs = performance.now() - t0;
        if (err instanceof BodyTooLarge || (err as { cause?: unknown }).cause instanceof BodyTooLarge) {
          group.abandon(target);
          metrics.blockedRequests.inc({ reason: 'body_size_exceeded' });
          ctx.audit.blocked = 'body_size_exceeded';
          return sendError(res, ctx, 413, 'Payload Too Large', attempt);
        }
        // From here on, errors the client caused say nothing about the target: no report to passive
        // health or breakers, no retry (docs/security.md, "Upstream blame").
        if (this.timedOut && this.hasBody && ctx.body === undefined && !req.readableEnded && (attemptBody as Readable).readableFlowing !== false) {
          // request-secs ran out while the client was still sending a body the upstream was
          // ready to take (the dispatcher had not paused it): the client was slow.
          group.abandon(target);
          metrics.blockedRequests.inc({ reason: 'request_body_timeout' });
          ctx.audit.blocked = 'request_body_timeout';
          return sendError(res, ctx, 408, 'Request Timeout: the request body did not arrive in time', attempt, 'client_timeout');
        }
        if (this.timedOut && !this.upstreamHadItsTime(t0)) {
          // request-secs ran out after the body arrived, but the client's upload had taken so much
          // of it that the target had the whole request for less than its time: a client that
          // trickles its body could make any handler time out and open the breaker for everyone
          group.abandon(target);
          ctx.log.info({ upstream: group.id, target: target.address, hadMs: Math.round(performance.now() - Math.max(t0, this.wholeAt)) }, 'request-secs ran out after a slow request body: not counted against the target');
          return this.upstreamFailed(504, 'Gateway Timeout: upstream did not respond in time', attempt, 'timeout_after_slow_body');
        }
        if (this.timedOut) {
          group.report(target, { kind: 'error', reason: 'timeout', latencyMs });
          metrics.upstreamFailures.inc(this.failureLabels('timeout'));
          return this.upstreamFailed(504, 'Gateway Timeout: upstream did not respond in time', attempt, 'timeout');
        }
        if (writeTimedOut) {
          // A stalled upload: counted like any upstream timeout, retried only if the body replays.
          err = new UpstreamWriteTimeout(group.timeouts.writeMs);
        } else if (ctx.cancelled) {
          if (!uploadCutByUpstream(res, err)) {
            // The client went away: not the upstream's fault.
            group.report(target, { kind: 'response', status: 499, latencyMs });
            return { status: 499, durationMs: 0, requestBodyBytes: this.limiter?.bytes ?? 0, responseBodyBytes: 0, upstreamAttempts: attempt, error: 'client closed request' };
          }
          // undici destroys the request body when the upstream connection fails mid-upload, which
          // reads as a client abort although the client is connected and waiting for an answer.
          if (!req.complete) {
            // The upstream hung up while the client was still sending: maybe its own body timeout
            // against a slow client, which must not count against the target (docs/security.md,
            // "Upstream blame"). The unread rest of the body ends the connection.
            group.abandon(target);
            return sendError(res, ctx, 502, 'Bad Gateway: upstream closed the connection during the upload', attempt, 'upload_reset');
          }
        }
        const c = classifyUpstreamError(err);
        if (c.blame === 'client') {
          group.abandon(target);
          metrics.blockedRequests.inc({ reason: c.reason });
          ctx.audit.blocked = c.reason;
          ctx.log.info({ err: (err as Error).message, code: (err as { code?: string }).code, upstream: group.id }, 'request refused by the upstream client: not forwarded');
          return sendError(res, ctx, c.status, c.message, attempt, c.reason);
        }
        if (c.blame === 'answer') {
          // the target answered (an unsolicited 100): its health hears a response, as for any status
          group.report(target, { kind: 'response', status: c.status, latencyMs });
          metrics.upstreamFailures.inc(this.failureLabels(c.reason));
          ctx.log.warn({ err: (err as Error).message, upstream: group.id, target: target.address, reason: c.reason }, 'upstream sent an interim 100 Continue the gateway cannot relay');
          return this.upstreamFailed(c.status, c.message, attempt, c.reason);
        }
        outcome = { kind: 'error', reason: c.reason, latencyMs };
        group.report(target, outcome);
        metrics.upstreamFailures.inc(this.failureLabels(c.reason));
        const retry = group.shouldRetry({ method: req.method ?? 'GET', attempt, outcome, bodyReplayable: this.bodyReplayable || (c.beforeSend && !this.hasBody), responseStarted: false });
        if (retry.retry) {
          if (retry.delayMs > 0) await delay(retry.delayMs);
          continue;
        }
        ctx.log.warn({ err: (err as Error).message, code: (err as { code?: string }).code, upstream: group.id, target: target.address, reason: c.reason }, 'upstream request failed');
        return this.upstreamFailed(c.status, c.message, attempt, c.reason);
      }
      const latencyMs = performance.now() - t0;
      outcome = { kind: 'response', status: response.statusCode, latencyMs };
      cells.duration.observe(latencyMs / 1000);
      if (span) {
        span.set('http.response.status_code', response.statusCode);
        if (response.statusCode >= 500) span.fail(String(response.statusCode));
      }
      if (response.statusCode >= 500) {
        const retry = group.shouldRetry({ method: req.method ?? 'GET', attempt, outcome, bodyReplayable: this.bodyReplayable || IDEMPOTENT_NO_BODY.has(req.method ?? ''), responseStarted: false });
        if (retry.retry) {
          group.report(target, outcome);
          span?.end();
          response.dump();
          if (retry.delayMs > 0) await delay(retry.delayMs);
          continue;
        }
      }
      try {
        return await relayResponse(ctx, res, response, route, this.chain, pick.setCookie, attempt, target.address, metrics, group.responseBuffering);
      } finally {
        group.report(target, outcome);
        span?.end();
      }
    }
  }
}

/**
 * An attempt that uploads a body (docs: `timeouts { write-secs }`): a Buffer above
 * STREAM_BUFFER_ABOVE as a one-chunk stream, and for a stream its own cancel token linked to the
 * client's and the stall watch. Made only for attempts with a body.
 */
interface AttemptWatch {
  body: Dispatcher.DispatchOptions['body'];
  signal: CancelToken;
  writeTimedOut: boolean;
  stopStall: (() => void) | undefined;
  /** on a failed attempt: the token no longer follows the client's */
  unlink: (() => void) | undefined;
}

function watchAttemptBody(parent: CancelToken, bodyArg: Dispatcher.DispatchOptions['body'], writeMs: number): AttemptWatch {
  let body: Dispatcher.DispatchOptions['body'] = bodyArg;
  if (Buffer.isBuffer(bodyArg) && bodyArg.length > STREAM_BUFFER_ABOVE) body = Readable.from([bodyArg], { objectMode: false });
  const w: AttemptWatch = { body, signal: parent, writeTimedOut: false, stopStall: undefined, unlink: undefined };
  if (body instanceof Readable) {
    const attemptToken = new CancelToken();
    const onParentAbort = () => attemptToken.cancel();
    if (parent.aborted) attemptToken.cancel();
    else parent.once('abort', onParentAbort);
    w.signal = attemptToken;
    // On success only the stall timer stops: the token stays linked so a client abort or
    // request-secs still cancels the response body.
    w.stopStall = watchUploadStall(body, writeMs, () => {
      w.writeTimedOut = true;
      attemptToken.cancel();
    });
    w.unlink = () => parent.off('abort', onParentAbort);
  }
  return w;
}

/** The client span of one upstream attempt (HTTP semantic conventions); sets the upstream `traceparent`. */
function attemptSpan(ctx: Context, method: string, origin: string, path: string, host: string, port: number, upstream: string, attempt: number): TraceSpan {
  const span = ctx.trace!.child(method, 'client');
  // what repeats from request to request first, url.full (the path) last: the encoder copies the
  // leading attributes that equal the previous attempt span's as one run (plugins/tracing/otlp-proto.ts)
  span.set('http.request.method', method);
  span.set('server.address', host);
  span.set('server.port', port);
  span.set('sentinel.upstream.id', upstream);
  span.set('sentinel.upstream.attempt', attempt);
  if (attempt > 1) span.set('http.request.resend_count', attempt - 1);
  span.set('url.full', origin + path);
  ctx.upstreamHeaders.traceparent = span.traceparent;
  return span;
}

/**
 * Relays a response the gateway produced itself (a static file) exactly as an upstream's: the
 * route's response filters, body handlers and header policies apply.
 */
export async function relayLocalSource(opts: { ctx: Context; res: ServerResponse; source: ResponseSource; route: CompiledRoute; chain: FilterChain; metrics: Metrics }): Promise<ForwardResult> {
  try {
    return await relayResponse(opts.ctx, opts.res, opts.source, opts.route, opts.chain, undefined, 0, '', opts.metrics);
  } finally {
    // whatever happened (a filter threw, answered itself, the client left): release the body
    opts.source.dump();
  }
}

async function relayResponse(
  ctx: Context,
  res: ServerResponse,
  response: ResponseSource,
  route: CompiledRoute,
  chain: FilterChain,
  setCookie: string | undefined,
  attempts: number,
  upstreamAddr: string,
  metrics: Metrics,
  buffering?: ResponseBufferPolicy,
): Promise<ForwardResult> {
  const headers: HeaderMap = response.headers;
  for (const k in ctx.responseHeaders) headers[k] = ctx.responseHeaders[k];
  if (setCookie) {
    const cur = headers['set-cookie'];
    headers['set-cookie'] = cur === undefined ? setCookie : Array.isArray(cur) ? [...cur, setCookie] : [cur, setCookie];
  }
  if (route.responseHeaders) applyHeaderOps(headers, route.responseHeaders);
  const info = { status: response.statusCode, headers };
  // the chain answers synchronously when its filters do: no await (a microtask turn) for nothing
  let local = chain.hasResponseHooks ? chain.onResponse(ctx, info) : undefined;
  if (local instanceof Promise) local = await local;
  if (local) {
    response.dump();
    return { ...writeLocal(res, ctx.traceId, local), upstreamAttempts: attempts, upstreamAddr };
  }
  // Ours wins over an upstream's own X-Correlation-Id.
  headers['x-correlation-id'] = ctx.traceId;
  // an HTTP/2 stream takes one value of Content-Type, Location, ETag ... (writeHead throws for a list)
  if (res.req.httpVersionMajor === 2) singleValuedForHttp2(headers);
  if (chain.wantsBodies && responseHasBody(ctx.method, info.status)) {
    // Chosen once per response: only filters that opt in for this response make it leave the
    // plain relay below.
    let handlers = chain.onResponseBody(ctx, info);
    if (handlers instanceof Promise) handlers = await handlers;
    if (handlers) return relayFilteredBody(ctx, res, response.body, info, handlers, attempts, upstreamAddr, metrics, buffering);
  }
  // RFC 9110 §8.6: no Content-Length on a 204 (an upstream's own, e.g. `0`, is dropped)
  if (info.status === 204) delete headers['content-length'];
  else if (info.status === 205) return resetContent(res, response, headers, attempts, upstreamAddr);
  const outcome = await response.relayTo(res, info.status, headers, buffering, ctx.clientIp);
  if (outcome.clientClosed) {
    return { status: 499, durationMs: 0, requestBodyBytes: 0, responseBodyBytes: outcome.bytes, upstreamAttempts: attempts, error: 'client closed request', upstreamAddr };
  }
  if (outcome.error instanceof UnbufferedCapReached) {
    // the client's doing, not the upstream's: its answer is cut (the head is out)
    cutResponse(res);
    return { status: info.status, durationMs: 0, requestBodyBytes: 0, responseBodyBytes: outcome.bytes, upstreamAttempts: attempts, error: outcome.error.message, upstreamAddr };
  }
  if (outcome.error !== undefined) {
    const c = classifyUpstreamError(outcome.error);
    if (!res.headersSent) {
      // The body failed before its first byte: no status went out, so the client gets the
      // gateway's answer (502, or 504 for a body timeout) instead of a cut connection.
      return { ...sendError(res, ctx, c.status, c.message, attempts, `upstream failed before the body: ${c.reason}`), upstreamAddr };
    }
    // Headers are out: the only honest signal left is to cut the connection.
    cutResponse(res);
    return { status: info.status, durationMs: 0, requestBodyBytes: 0, responseBodyBytes: outcome.bytes, upstreamAttempts: attempts, error: `upstream failed mid-body: ${c.reason}`, upstreamAddr };
  }
  return { status: info.status, durationMs: 0, requestBodyBytes: 0, responseBodyBytes: outcome.bytes, upstreamAttempts: attempts, upstreamAddr };
}

/**
 * Copies a body stream to the client with backpressure (the WebSocket proxy relays a refused
 * upgrade's answer with it; proxied HTTP responses go through UpstreamExchange.relayTo). A
 * hand-written pump instead of stream.pipeline, whose generic machinery (eos, destroyer, promise
 * wrapper) was ~9% of CPU in the passthrough profile. Resolves with the bytes sent and the error.
 */
export function relayBody(body: Readable, res: ServerResponse): Promise<{ bytes: number; error?: unknown; clientClosed?: boolean }> {
  return new Promise((resolve) => {
    let bytes = 0;
    let done = false;
    const finish = (error?: unknown, clientClosed = false) => {
      if (done) return;
      done = true;
      body.off('data', onData);
      res.off('drain', onDrain);
      res.off('close', onClose);
      resolve(clientClosed ? { bytes, clientClosed } : error === undefined ? { bytes } : { bytes, error });
    };
    const onData = (chunk: Buffer) => {
      bytes += chunk.length;
      if (!res.write(chunk)) body.pause();
    };
    const onDrain = () => body.resume();
    const onClose = () => {
      if (done) return;
      // The client went away mid-body: stop reading from the upstream.
      body.destroy();
      finish(undefined, true);
    };
    body.on('data', onData);
    body.once('end', () => {
      res.end();
      finish();
    });
    body.once('error', (err) => finish(err));
    res.on('drain', onDrain);
    res.on('close', onClose);
  });
}

/**
 * Cuts a response whose head is out (HTTP/1.1: the connection). An HTTP/2 stream is reset with
 * INTERNAL_ERROR: destroy() alone sends RST_STREAM NO_ERROR, which Node's client (and others) read
 * as the end of a whole body (docs/security.md, "Session 28 (pool28)").
 */
function cutResponse(res: ServerResponse): void {
  const stream = (res as unknown as Partial<Http2ServerResponse>).stream;
  if (stream !== undefined && !stream.destroyed) stream.close(http2.constants.NGHTTP2_INTERNAL_ERROR);
  res.destroy();
  res.socket?.destroy();
}

/** Statuses that never carry content (RFC 9110 §15.3.5, §15.3.6, §15.4.5), whatever a writer was handed. */
export function noContent(status: number): boolean {
  return status === 204 || status === 205 || status === 304;
}

/**
 * The Content-Length a local answer of `size` bytes is framed with: none for 204 and 304 (they
 * never say one), `size` otherwise (0 for a 205, whose content a writer drops: noContent).
 */
export function localContentLength(status: number, size: number): number | undefined {
  return status === 204 || status === 304 ? undefined : size;
}

function responseHasBody(method: string, status: number): boolean {
  return method !== 'HEAD' && status >= 200 && !noContent(status);
}

/**
 * A 205 Reset Content goes out without content (RFC 9110 §15.3.6: `Content-Length: 0`), whatever
 * the upstream sent with it: Node's HTTP/2 layer ends a 205 stream with its HEADERS frame and reset
 * the stream at the first body byte (the client saw a cut, not the 205), and an HTTP/1.1 client
 * that reads a 205 as bodiless (as RFC 9110 tells it to expect) would take the body for the next
 * answer on the connection. The upstream's body is read and dropped (dump keeps a short one's connection).
 */
function resetContent(res: ServerResponse, response: ResponseSource, headers: HeaderMap, attempts: number, upstreamAddr: string): ForwardResult {
  response.dump();
  headers['content-length'] = '0';
  res.writeHead(205, headers as Record<string, string | string[]>);
  res.end();
  return { status: 205, durationMs: 0, requestBodyBytes: 0, responseBodyBytes: 0, upstreamAttempts: attempts, upstreamAddr };
}

const NO_BYTES = Buffer.alloc(0);

/**
 * The relay for responses whose body some filter wants to see (ResponseBodyHandler in
 * src/pipeline/types.ts): each upstream chunk goes through the handler chain, one at a time,
 * before it is written; headers may be held back until the chain releases a byte.
 */
async function relayFilteredBody(
  ctx: Context,
  res: ServerResponse,
  body: Readable,
  info: UpstreamResponseInfo,
  handlers: ResponseBodyHandler[],
  attempts: number,
  upstreamAddr: string,
  metrics: Metrics,
  buffering?: ResponseBufferPolicy,
): Promise<ForwardResult> {
  const headers = info.headers;
  // Response buffering as in the plain relay (UpstreamExchange.relayTo): a client that stops
  // reading must not hold the upstream connection here either (session 29 audit).
  if (opensStream(headers)) buffering = undefined;
  else if (headers['x-accel-buffering'] !== undefined) {
    if (String(headers['x-accel-buffering']).trim().toLowerCase() === 'no') buffering = undefined;
    delete headers['x-accel-buffering'];
  }
  let buffer: BufferedRelay | null = null;
  /** the buffered relay's end: undefined, or why it failed (a spool error, request-secs) */
  let buffered: Promise<unknown> | undefined;
  let bufferFailed: unknown;
  /** wakes emit() waiting for the buffered relay to take more */
  let wake: (() => void) | undefined;
  let holding: string | undefined;
  const onBufferDrain = () => buffer?.drained();
  const cl = headers['content-length'];
  const declared = typeof cl === 'string' && /^\d+$/.test(cl) ? Number(cl) : -1;
  let received = 0;
  let sent = 0;
  let headersOut = false;
  let clientGone = false;
  const result = (status: number, error?: string): ForwardResult => ({
    status,
    durationMs: 0,
    requestBodyBytes: 0,
    responseBodyBytes: sent,
    upstreamAttempts: attempts,
    upstreamAddr,
    ...(error !== undefined ? { error } : {}),
  });
  // Handlers that only look keep the upstream's framing (Content-Length stays).
  const observeOnly = handlers.every((h) => h.observeOnly === true);
  const writeHead = (total: number | undefined) => {
    if (!observeOnly) {
      delete headers['content-length'];
      delete headers['transfer-encoding'];
      if (total !== undefined) headers['content-length'] = String(total);
    }
    res.writeHead(info.status, headers as Record<string, string | string[]>);
    // Streaming: the status line goes out now, not with the first chunk the handlers release.
    if (total === undefined) res.flushHeaders();
    headersOut = true;
  };
  const onClose = () => {
    if (res.writableFinished) return;
    clientGone = true;
    body.destroy();
    wake?.();
  };
  /** Waits until the buffered relay takes more (or failed, the client left, request-secs ran out). */
  const bufferWait = () =>
    new Promise<void>((r) => {
      wake = () => {
        wake = undefined;
        ctx.offCancel(wakeUp);
        r();
      };
      ctx.onCancel(wakeUp);
    });
  const wakeUp = () => wake?.();
  /** A bound kept this answer from buffering: it waits for its client, counted (false: cut it). */
  const mayWait = (): boolean => {
    if (holding !== undefined || buffering === undefined) return true;
    const client = ResponseBufferBudget.clientKey(ctx.clientIp);
    if (!responseBufferBudget.hold(client)) return false;
    holding = client;
    return true;
  };
  /** Waits for the client to take more, or to leave, or for request-secs (the body then fails). */
  const drainOrClose = () =>
    new Promise<void>((r) => {
      const done = () => {
        res.off('drain', done);
        res.off('close', done);
        ctx.offCancel(done);
        r();
      };
      res.on('drain', done);
      res.on('close', done);
      ctx.onCancel(done);
    });
  res.on('close', onClose);
  const abortAll = () => {
    for (const h of handlers) h.abort?.();
  };
  const chain = async (chunk: Buffer, last: boolean): Promise<Buffer | LocalResponse> => {
    let data = chunk;
    for (const h of handlers) {
      const r = await h.onChunk(data, last);
      if (r === undefined) continue;
      if (!Buffer.isBuffer(r)) return r;
      data = r;
    }
    return data;
  };
  /** Writes one output; resolves false when the client went away. */
  const emit = async (out: Buffer, last: boolean): Promise<boolean> => {
    if (clientGone) return false;
    if (!headersOut) {
      if (last) {
        writeHead(out.length);
        sent += out.length;
        res.end(out);
        return true;
      }
      if (out.length === 0) return true;
      writeHead(undefined);
    }
    if (out.length > 0) {
      sent += out.length;
      if (buffer !== null) {
        if (!buffer.data(out)) {
          if (!mayWait()) throw new UnbufferedCapReached();
          await bufferWait();
        }
        if (bufferFailed !== undefined) throw bufferFailed;
      } else if (!res.write(out)) {
        if (buffering !== undefined && startBuffer()) {
          // taken: the upstream goes on while the client catches up
        } else {
          if (!mayWait()) throw new UnbufferedCapReached();
          await drainOrClose();
        }
      }
    }
    if (last) {
      if (buffer === null) res.end();
      else {
        buffer.end();
        const failed = await buffered;
        if (failed !== undefined) throw failed;
      }
    }
    return !clientGone;
  };
  const startBuffer = (): boolean => {
    let settle!: (failed: unknown) => void;
    buffered = new Promise((r) => (settle = r));
    const b = new BufferedRelay(res, relayBuffering(buffering!, ctx.clientIp), ctx.cancelToken, {
      resume: () => wake?.(),
      finish: (error) => {
        bufferFailed = error;
        settle(error);
        wake?.();
      },
    });
    if (!b.start()) return false;
    buffer = b;
    res.on('drain', onBufferDrain);
    return true;
  };
  const stop = (local: LocalResponse): ForwardResult => {
    // taken (and the filter's memory freed) before the paths that send none of it
    const taken = localBodyBytes(local);
    const payload = noContent(local.status) ? NO_BYTES : taken;
    body.destroy();
    abortAll();
    if (local.blockReason) metrics.blockedRequests.inc({ reason: local.blockReason });
    if (clientGone) return result(499, 'client closed request');
    if (headersOut) {
      // Headers (and maybe part of the body) are out: cutting the connection is the only way to stop.
      cutResponse(res);
      return result(info.status, `response body stopped by a filter (${local.blockReason ?? local.status})`);
    }
    const length = localContentLength(local.status, payload.length);
    res.writeHead(local.status, { ...(local.headers as Record<string, string>), ...(length === undefined ? {} : { 'content-length': String(length) }), 'x-correlation-id': ctx.traceId });
    res.end(payload);
    headersOut = true;
    sent = payload.length;
    return result(local.status);
  };
  try {
    if (!handlers.some((h) => h.holdHeaders)) writeHead(undefined);
    let lastSeen = false;
    for await (const chunk of body as AsyncIterable<Buffer>) {
      received += chunk.length;
      if (responseChunkRead.hasSubscribers) responseChunkRead.publish({ path: ctx.path, received } satisfies ResponseChunkRead);
      const last = declared >= 0 && received >= declared;
      const out = await chain(chunk, last);
      if (!Buffer.isBuffer(out)) return stop(out);
      if (!(await emit(out, last))) break;
      // No break on the last chunk: leaving the loop early would destroy undici's body before its
      // 'end' and cost the upstream connection.
      if (last) lastSeen = true;
    }
    if (clientGone) {
      abortAll();
      return result(499, 'client closed request');
    }
    if (!lastSeen) {
      const out = await chain(NO_BYTES, true);
      if (!Buffer.isBuffer(out)) return stop(out);
      if (!(await emit(out, true))) {
        abortAll();
        return result(499, 'client closed request');
      }
    }
    return result(info.status);
  } catch (err) {
    abortAll();
    if (clientGone) return result(499, 'client closed request');
    if (err instanceof UnbufferedCapReached) {
      // the client's doing: its answer is cut (the head is out), the upstream stops
      body.destroy();
      cutResponse(res);
      return result(info.status, err.message);
    }
    const c = classifyUpstreamError(err);
    if (!headersOut) {
      ctx.log.warn({ err: (err as Error).message }, 'upstream response body failed before it could be inspected');
      return { ...sendError(res, ctx, c.status, c.message, attempts, c.reason), upstreamAddr };
    }
    cutResponse(res);
    return result(info.status, `upstream failed mid-body: ${c.reason}`);
  } finally {
    res.off('close', onClose);
    if (buffer !== null) {
      res.off('drain', onBufferDrain);
      (buffer as BufferedRelay).release();
    }
    if (holding !== undefined) responseBufferBudget.unhold(holding);
  }
}

/**
 * Writes a LocalResponse (a filter's or a builtin's answer): x-correlation-id, Content-Length of
 * the body (none for 204/304, which have none), a text content type for a bare body. HEAD: Node
 * sends the headers only, so Content-Length is the GET body's.
 */
export function writeLocal(res: ServerResponse, traceId: string, local: LocalResponse): ForwardResult {
  // 204, 205 and 304 have no content (an agent's block body, 'Blocked by agent' by default): a 205
  // written with one reset the HTTP/2 stream and framed it on HTTP/1.1 for clients that read none
  let body = noContent(local.status) ? '' : (local.body ?? '');
  const size = typeof body === 'string' ? Buffer.byteLength(body) : Buffer.isBuffer(body) ? body.length : partsLength(body);
  let onSent = local.onSent;
  // Not written now (no socket yet: a pipelined response queued behind another; or already gone):
  // a copy is sent if anything, so the caller's memory is free at once.
  if (onSent && (res.headersSent || res.destroyed || !res.socket)) {
    if (typeof body !== 'string' && !res.headersSent && !res.destroyed) body = Buffer.isBuffer(body) ? Buffer.from(body) : Buffer.concat(body, size);
    onSent();
    onSent = undefined;
  }
  if (!res.headersSent) {
    // a refusal before the body was read (403, 404, 429, an agent's block): Node would read and
    // discard the rest, unbounded by any body limit, to keep the connection
    endUnreadBody(res);
    try {
      writeLocalHead(res, traceId, local, size);
      if (typeof body === 'string' || Buffer.isBuffer(body)) res.end(body);
      else {
        const last = body.length - 1;
        for (let i = 0; i < last; i++) res.write(body[i]);
        // end() uncorks: headers and parts leave in one writev
        res.end(last >= 0 ? body[last] : undefined);
      }
    } finally {
      // Nothing left to write (an HTTP/1 socket that took every byte: usual for a hit that fits the
      // socket buffer): the body is free now. Else once the response is written out ('close' follows
      // 'finish') or its connection ends. HTTP/2 streams hold their data in the session: 'close'.
      if (onSent) {
        if (res instanceof ServerResponse && res.writableEnded && res.writableLength === 0) onSent();
        else res.once('close', onSent);
      }
    }
  }
  return { status: local.status, durationMs: 0, requestBodyBytes: 0, responseBodyBytes: size, upstreamAttempts: 0 };
}

/** Status and headers of a LocalResponse (see writeLocal). */
function writeLocalHead(res: ServerResponse, traceId: string, local: LocalResponse, size: number): void {
  // Set on the response one by one (what writeHead(status, object) does anyway) rather than
  // merged into a copy first: `local.headers` is only read (a cache hit passes its stored headers).
  const h = local.headers;
  let typed = false;
  if (h) {
    // a cache hit stored from an HTTP/1.1 answer may hold a list HTTP/2 writes as one value (relayResponse)
    const h2 = res.req.httpVersionMajor === 2;
    for (const k in h) {
      const v = h[k];
      if (v === undefined) continue;
      res.setHeader(k, h2 ? http2HeaderValue(k, v) : v);
      if (k === 'content-type') typed = true;
    }
  }
  res.setHeader('x-correlation-id', traceId);
  const length = localContentLength(local.status, size);
  if (length !== undefined) res.setHeader('content-length', length);
  else res.removeHeader('content-length');
  if (!typed && size > 0) res.setHeader('content-type', 'text/plain; charset=utf-8');
  res.writeHead(local.status);
}

function partsLength(parts: readonly Buffer[]): number {
  let n = 0;
  for (const p of parts) n += p.length;
  return n;
}

/**
 * A LocalResponse's body as one Buffer, for writers that send it their own way: a copy when it
 * is a list or comes with onSent (which is then called: the caller's memory is free).
 */
export function localBodyBytes(local: LocalResponse): Buffer {
  const b = local.body;
  let out: Buffer;
  if (b === undefined) out = NO_BYTES;
  else if (typeof b === 'string') out = Buffer.from(b);
  else if (Buffer.isBuffer(b)) out = local.onSent ? Buffer.from(b) : b;
  else out = Buffer.concat(b, partsLength(b));
  local.onSent?.();
  return out;
}

/**
 * The attempt failed because undici's upload broke (it then destroys the request body, which
 * cancels the request as if the client had left), not because the client left or a filter or
 * timer cancelled it: the client's connection is still open and nothing was answered yet.
 */
function uploadCutByUpstream(res: ServerResponse, err: unknown): boolean {
  const code = (err as { code?: string } | undefined)?.code;
  if (code !== 'UND_ERR_SOCKET' && code !== 'ECONNRESET' && code !== 'EPIPE') return false;
  const socket = res.socket;
  return socket !== null && !socket.destroyed && !res.destroyed && !res.headersSent;
}

export function sendError(res: ServerResponse, ctx: Context, status: number, message: string, attempts: number, reason?: string): ForwardResult {
  if (!res.headersSent) {
    endUnreadBody(res);
    const body = errorBody(status, message, ctx.traceId);
    res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(body), 'x-correlation-id': ctx.traceId });
    res.end(body);
  } else {
    res.destroy();
  }
  return { status, durationMs: 0, requestBodyBytes: 0, responseBodyBytes: 0, upstreamAttempts: attempts, ...(reason ? { error: reason } : {}) };
}

/**
 * An answer before the request body has all arrived (408, 413, 429, a cut upload): Node would
 * read and discard the rest to keep the connection (HTTP/1.1) or leave the stream half open
 * (HTTP/2), which a trickling client stretches to the listener's request-timeout-secs. HTTP/1.1
 * closes the connection after the answer; HTTP/2 resets the stream with NO_ERROR once the answer
 * is out (RFC 9113 §8.1).
 */
function endUnreadBody(res: ServerResponse): void {
  const req = res.req;
  if (req.complete || !requestHasBody(req)) return;
  if (req.httpVersionMajor === 1) res.setHeader('connection', 'close');
  else {
    // the compat response's own 'finish' waits for the stream to close: watch the stream's
    const stream = (res as unknown as Http2ServerResponse).stream;
    stream.once('finish', () => stream.close(http2.constants.NGHTTP2_NO_ERROR));
  }
}

function delay(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
