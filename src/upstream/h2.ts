// HTTP/2 to one upstream target over node:http2, as an undici Dispatcher (so the forwarder's
// `dispatcher.request()` and undici's RequestHandler / body streams are unchanged).
//
// Why not undici's own h2: on a GOAWAY it destroys the socket and fails every stream in flight,
// including those the upstream announced it will finish (id <= last-stream-id), and it cannot
// tell the caller which ones were never processed. Here:
//  - a GOAWAY only drains its session: streams <= last-stream-id complete, new requests go to a
//    new session;
//  - a request the upstream provably never processed (refused: REFUSED_STREAM, above the GOAWAY's
//    last-stream-id, or never sent because the session was already going away) is sent again on
//    another session, any method, when its body can be replayed and `retryUnprocessed()` (the
//    group's retry budget) agrees; the forwarder never sees it, so it is no failure of the target;
//  - `h2Only` (min-version 2) offers only h2 by ALPN and fails clearly when the target does not
//    speak it; cleartext is h2c with prior knowledge;
//  - sessions are multiplexed up to min(max-h2-streams, the peer's SETTINGS_MAX_CONCURRENT_STREAMS),
//    at most `maxSessions` per target; idle sessions get keep-alive PINGs and are closed when a
//    PING goes unanswered for a whole interval.
import http2, { type ClientHttp2Session, type ClientHttp2Stream, type IncomingHttpHeaders, type OutgoingHttpHeaders } from 'node:http2';
import net, { type LookupFunction } from 'node:net';
import tls, { type ConnectionOptions, type TLSSocket } from 'node:tls';
import type { Readable } from 'node:stream';
import { Dispatcher, errors } from 'undici';

const { NGHTTP2_REFUSED_STREAM, NGHTTP2_CANCEL } = http2.constants;

/** How often sessions are checked for idle timeout, max-idle, lifetime and PINGs. */
const SWEEP_MS = 1000;
/** Refused requests are sent again at most this many times (a peer refusing everything must not loop). */
export const MAX_UNPROCESSED_RETRIES = 3;

export interface H2DispatcherOptions {
  /** `upstream "id"`, for error messages */
  upstream: string;
  host: string;
  port: number;
  /** undefined = cleartext h2c with prior knowledge */
  tls?: ConnectionOptions;
  /** TLS: offer only h2 by ALPN (min-version 2); otherwise h2 then http/1.1 */
  h2Only: boolean;
  maxSessions: number;
  /** max-h2-streams: concurrent streams per session (the peer's limit applies when lower) */
  maxStreams: number;
  /** h2-ping-interval in ms, 0 = off */
  pingIntervalMs: number;
  idleTimeoutMs: number;
  maxIdle: number;
  maxLifetimeMs: number | undefined;
  connectTimeoutMs: number;
  headersTimeoutMs: number;
  bodyTimeoutMs: number;
  /** may a refused (provably unprocessed) request be sent again? e.g. the group's retry budget */
  retryUnprocessed?: () => boolean;
  /** the target's checked resolver for a host name (discovery/address-policy.ts checkedLookup) */
  lookup?: LookupFunction;
  /** ALPN chose http/1.1 (only when !h2Only): the HTTP/1.1 dispatcher to use from now on; it gets the connected socket */
  http1Fallback?: (socket: TLSSocket) => Dispatcher;
}

/** Error code for "the target does not speak HTTP/2" (min-version 2). */
export const H2_UNSUPPORTED = 'SENTINEL_H2_UNSUPPORTED';
/** Error code for a request the upstream refused (unprocessed) and that could not be sent again. */
export const H2_REFUSED = 'SENTINEL_H2_REFUSED';

export class H2Error extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** The legacy handler protocol undici's RequestHandler implements (what `request()` passes to dispatch). */
interface LegacyHandler {
  onConnect?(abort: (reason?: Error) => void, context?: object): void;
  onHeaders?(statusCode: number, rawHeaders: string[], resume: () => void, statusText: string): boolean;
  onData?(chunk: Buffer): boolean;
  onComplete?(trailers: string[]): void;
  onError?(err: Error): void;
}

/** What a response's `context` carries: whether the request rode an already-used session. */
export interface H2Context {
  reused: boolean;
}

class Session {
  active = 0;
  /** streams ever started on it (a request is "reused" when this was > 0) */
  started = 0;
  ready = false;
  draining = false;
  closed = false;
  maxStreams: number;
  idleSince = performance.now();
  readonly created = performance.now();
  pingPending = false;
  lastPing = performance.now();
  /** last-stream-id of a received GOAWAY */
  goawayLast = -1;
  constructor(
    readonly session: ClientHttp2Session,
    readonly socket: net.Socket,
    maxStreams: number,
  ) {
    this.maxStreams = maxStreams;
  }
  get hasRoom(): boolean {
    return this.ready && !this.draining && !this.closed && this.active < this.maxStreams;
  }
}

/** session.request() errors that mean the session cannot take streams (others are about the request). */
const SESSION_GONE = new Set(['ERR_HTTP2_INVALID_SESSION', 'ERR_HTTP2_GOAWAY_SESSION', 'ERR_HTTP2_OUT_OF_STREAMS']);
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'http2-settings', 'host', 'te']);

/** Up to this many bytes of a streamed request body are kept so a refused request can be replayed. */
export const REPLAY_BYTES = 64 * 1024;

/**
 * Copies a streamed request body into the current HTTP/2 stream with backpressure (pausing the
 * source, which is what the forwarder's write-secs watch sees), keeping the first REPLAY_BYTES so
 * the request can be sent again on another session after a refusal.
 */
class BodyPump {
  private kept: Buffer[] | undefined = [];
  private keptBytes = 0;
  private ended = false;
  private stream: ClientHttp2Stream | undefined;
  constructor(private readonly src: Readable) {
    src.on('data', this.onData);
    src.once('end', this.onEnd);
  }
  get replayable(): boolean {
    // an ended source is destroyed by autoDestroy, but every byte of it is kept
    return this.kept !== undefined && (this.ended || !this.src.destroyed);
  }
  /** The response started: nothing will be replayed, stop keeping bytes. */
  release(): void {
    this.kept = undefined;
  }
  attach(stream: ClientHttp2Stream): void {
    this.stream = stream;
    stream.on('drain', this.onDrain);
    if (this.kept) for (const c of this.kept) stream.write(c);
    if (this.ended) stream.end();
    else if (!stream.writableNeedDrain) this.src.resume();
  }
  detach(): void {
    this.stream?.off('drain', this.onDrain);
    this.stream = undefined;
  }
  /** The exchange failed: stop reading the source (its owner decides what happens to the rest). */
  dispose(): void {
    this.detach();
    this.kept = undefined;
    this.src.off('data', this.onData);
    this.src.off('end', this.onEnd);
  }
  private readonly onData = (chunk: Buffer) => {
    const st = this.stream;
    if (!st) {
      // Between sessions (the replay was already decided): keep it whatever the size, wait.
      this.kept?.push(chunk);
      this.src.pause();
      return;
    }
    if (this.kept) {
      this.keptBytes += chunk.length;
      if (this.keptBytes <= REPLAY_BYTES) this.kept.push(chunk);
      else this.kept = undefined;
    }
    if (!st.write(chunk)) this.src.pause();
  };
  private readonly onDrain = () => this.src.resume();
  private readonly onEnd = () => {
    this.ended = true;
    this.stream?.end();
  };
}

class Exchange {
  stream: ClientHttp2Stream | undefined;
  session: Session | undefined;
  done = false;
  gotHeaders = false;
  retries = 0;
  headersTimer: NodeJS.Timeout | undefined;
  bodyTimer: NodeJS.Timeout | undefined;
  paused = false;
  trailers: IncomingHttpHeaders | undefined;
  pump: BodyPump | undefined;
  readonly context: H2Context = { reused: false };
  constructor(
    readonly opts: Dispatcher.DispatchOptions,
    readonly handler: LegacyHandler,
    readonly headers: OutgoingHttpHeaders,
    readonly headersTimeoutMs: number,
    readonly bodyTimeoutMs: number,
  ) {}
  get body(): Dispatcher.DispatchOptions['body'] {
    return this.opts.body;
  }
  /** Can the body be sent again? Buffers and strings always; a stream while at most REPLAY_BYTES of it were read. */
  get replayable(): boolean {
    return this.pump ? this.pump.replayable : true;
  }
  clearTimers(): void {
    if (this.headersTimer) clearTimeout(this.headersTimer);
    if (this.bodyTimer) clearTimeout(this.bodyTimer);
    this.headersTimer = undefined;
    this.bodyTimer = undefined;
  }
}

/** A PING's ACK still missing once the socket was read: close the session. */
function pingOverdue(s: Session): void {
  if (!s.pingPending || s.closed) return;
  s.session.destroy(new errors.SocketError('HTTP/2 PING not answered'));
  s.socket.destroy();
}

export class H2Dispatcher extends Dispatcher {
  private readonly sessions = new Set<Session>();
  private connecting = 0;
  /** close() callers waiting for the queue to empty */
  private readonly drainWaiters: (() => void)[] = [];
  private lastConnectFailure = -Infinity;
  private readonly queue: Exchange[] = [];
  private readonly sweepTimer: NodeJS.Timeout;
  private fallback: Dispatcher | undefined;
  private closedFlag = false;
  private readonly authority: string;
  private readonly scheme: 'http' | 'https';

  constructor(private readonly o: H2DispatcherOptions) {
    super();
    const host = net.isIPv6(o.host) ? `[${o.host}]` : o.host;
    this.authority = `${host}:${o.port}`;
    this.scheme = o.tls ? 'https' : 'http';
    this.sweepTimer = setInterval(() => this.sweep(), SWEEP_MS);
    this.sweepTimer.unref();
  }

  /** Open sessions and how many of them carry no stream (for the pool gauges). */
  stats(): { connected: number; idle: number; fallback: boolean } {
    let connected = 0;
    let idle = 0;
    for (const s of this.sessions) {
      if (!s.ready || s.closed) continue;
      connected++;
      if (s.active === 0) idle++;
    }
    return { connected, idle, fallback: this.fallback !== undefined };
  }

  /** The HTTP/1.1 dispatcher in use after ALPN chose http/1.1, if it did. */
  get http1(): Dispatcher | undefined {
    return this.fallback;
  }

  override dispatch(opts: Dispatcher.DispatchOptions, rawHandler: Dispatcher.DispatchHandler): boolean {
    if (this.fallback) return this.fallback.dispatch(opts, rawHandler);
    const handler = rawHandler as unknown as LegacyHandler;
    if (this.closedFlag) {
      handler.onError?.(new errors.ClientClosedError());
      return false;
    }
    if (opts.upgrade || opts.method === 'CONNECT') {
      handler.onError?.(new errors.NotSupportedError('upgrade/CONNECT over an HTTP/2 upstream'));
      return false;
    }
    const ex = new Exchange(
      opts,
      handler,
      this.requestHeaders(opts),
      opts.headersTimeout ?? this.o.headersTimeoutMs,
      opts.bodyTimeout ?? this.o.bodyTimeoutMs,
    );
    handler.onConnect?.((reason) => this.abort(ex, reason ?? new errors.RequestAbortedError()), ex.context);
    if (ex.done) return true;
    const body = opts.body as Readable | null | undefined;
    if (body && typeof body === 'object' && typeof (body as Readable).pipe === 'function') {
      // A failing source (client gone, body too large) fails the exchange with its own error.
      (body as Readable).once('error', (err) => this.fail(ex, err));
    }
    this.queue.push(ex);
    this.pump();
    return true;
  }

  private requestHeaders(opts: Dispatcher.DispatchOptions): OutgoingHttpHeaders {
    const h: OutgoingHttpHeaders = {
      ':method': opts.method,
      ':path': opts.path,
      ':scheme': this.scheme,
      ':authority': this.authority,
    };
    const add = (name: string, value: string | string[] | undefined) => {
      if (value === undefined) return;
      const k = name.toLowerCase();
      if (k === 'host') {
        h[':authority'] = Array.isArray(value) ? value[0] : value;
        return;
      }
      if (HOP_BY_HOP.has(k)) {
        if (k === 'te' && value === 'trailers') h.te = 'trailers';
        return;
      }
      const cur = h[k];
      h[k] = cur === undefined ? value : ([] as string[]).concat(cur as string | string[], value);
    };
    const src = opts.headers;
    if (Array.isArray(src)) {
      for (let i = 0; i + 1 < src.length; i += 2) add(String(src[i]), String(src[i + 1]));
    } else if (src) {
      const rec = src as Record<string, string | string[] | undefined>;
      for (const k in rec) add(k, rec[k]);
    }
    const body = opts.body;
    if ((Buffer.isBuffer(body) || typeof body === 'string') && h['content-length'] === undefined) h['content-length'] = String(Buffer.byteLength(body));
    return h;
  }

  /** Starts queued exchanges on sessions with room; opens sessions when needed. */
  private pump(): void {
    while (this.queue.length > 0) {
      const s = this.pickSession();
      if (!s) break;
      const ex = this.queue.shift()!;
      if (ex.done) continue;
      this.start(ex, s);
    }
    if (this.queue.length === 0) return this.drained();
    if (this.fallback) return;
    // Open as many sessions as the queue needs (each promises maxStreams), within maxSessions.
    let live = 0;
    for (const s of this.sessions) if (!s.draining && !s.closed) live++;
    // After a failed connect, waiters that a live session will serve wait for it instead of a
    // reconnect loop against a refusing target.
    if (live > 0 && performance.now() - this.lastConnectFailure < SWEEP_MS) return;
    const wanted = Math.ceil(this.queue.length / Math.max(1, this.o.maxStreams)) - this.connecting;
    for (let i = 0; i < wanted && live + this.connecting < this.o.maxSessions; i++) this.openConnection();
    // Every session may be draining with maxSessions reached: drained ones leave, the queue waits.
  }

  /** Wakes close() once nothing is queued or running (retiring earlier would refuse a stream just started). */
  private drained(): void {
    if (this.drainWaiters.length === 0 || this.queue.length > 0) return;
    for (const s of this.sessions) if (s.active > 0 && !s.closed) return;
    for (const w of this.drainWaiters.splice(0)) w();
  }

  private pickSession(): Session | undefined {
    // Fill the busiest session first: the others go idle and can be trimmed.
    let best: Session | undefined;
    for (const s of this.sessions) {
      if (!s.hasRoom) continue;
      if (!best || s.active > best.active) best = s;
    }
    return best;
  }

  private openConnection(): void {
    this.connecting++;
    const o = this.o;
    let settled = false;
    let socket: net.Socket;
    /** the session while it waits for the peer's SETTINGS */
    let pending: Session | undefined;
    const noPreface = (why: string) =>
      new H2Error(H2_UNSUPPORTED, `upstream "${o.upstream}" target ${this.authority} ${why}: it does not speak cleartext HTTP/2 (h2c prior knowledge, http-version min-version 2)`);
    const fail = (cause: Error) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      this.connecting--;
      this.lastConnectFailure = performance.now();
      let err = cause;
      if (pending) {
        // TCP worked but no h2 SETTINGS came: for h2c that is the answer to "does it speak h2?"
        if (!o.tls && !(cause instanceof H2Error)) err = noPreface(`closed the connection or stayed silent after the HTTP/2 preface (${cause.message})`);
        pending.closed = true;
        this.sessions.delete(pending);
        pending.session.destroy();
      }
      socket.destroy();
      // Nothing else will serve the queue: fail it (undici does the same on connect errors).
      if (!this.hasLiveSession()) {
        for (const ex of this.queue.splice(0)) this.fail(ex, err);
      }
      this.pump();
    };
    const timer = setTimeout(() => fail(new errors.ConnectTimeoutError(`connect to ${this.authority} timed out after ${o.connectTimeoutMs} ms`)), o.connectTimeoutMs);
    timer.unref();
    const onConnected = () => {
      if (settled) return;
      if (o.tls) {
        const alpn = (socket as TLSSocket).alpnProtocol;
        if (alpn !== 'h2') {
          if (!o.h2Only && o.http1Fallback && (alpn === 'http/1.1' || alpn === false)) {
            settled = true;
            clearTimeout(timer);
            this.connecting--;
            this.switchToHttp1(o.http1Fallback(socket as TLSSocket));
            return;
          }
          fail(new H2Error(H2_UNSUPPORTED, `upstream "${o.upstream}" target ${this.authority} does not speak HTTP/2 (ALPN: ${alpn || 'none'}) and http-version min-version is 2`));
          return;
        }
      }
      pending = this.openSession(
        socket,
        () => {
          settled = true;
          pending = undefined;
          clearTimeout(timer);
          this.connecting--;
        },
        fail,
      );
    };
    if (o.tls) {
      socket = tls.connect({ ...o.tls, host: o.host, port: o.port, ALPNProtocols: o.h2Only ? ['h2'] : ['h2', 'http/1.1'], ...(o.lookup ? { lookup: o.lookup } : {}) });
      socket.once('secureConnect', onConnected);
    } else {
      socket = net.connect({ host: o.host, port: o.port, ...(o.lookup ? { lookup: o.lookup } : {}) });
      socket.once('connect', onConnected);
    }
    socket.setNoDelay(true);
    socket.once('error', (err: Error & { code?: string }) => {
      // A TLS server that knows ALPN but not h2 refuses the handshake with this alert.
      if (err.code === 'ERR_SSL_TLSV1_ALERT_NO_APPLICATION_PROTOCOL') {
        fail(new H2Error(H2_UNSUPPORTED, `upstream "${o.upstream}" target ${this.authority} does not speak HTTP/2 (TLS alert: no application protocol) and http-version min-version is 2`));
      } else fail(err);
    });
  }

  private hasLiveSession(): boolean {
    for (const s of this.sessions) if (!s.closed) return true;
    return this.connecting > 0;
  }

  /**
   * Starts the HTTP/2 session on a connected socket. The session is usable once the peer's
   * SETTINGS arrived: that proves it speaks h2 (h2c prior knowledge gets no other proof) and
   * tells its stream limit.
   */
  private openSession(socket: net.Socket, onReady: () => void, onFail: (err: Error) => void): Session {
    const o = this.o;
    const session = http2.connect(`${this.scheme}://${this.authority}`, {
      createConnection: () => socket,
      peerMaxConcurrentStreams: o.maxStreams,
      settings: { enablePush: false },
    });
    const s = new Session(session, socket, o.maxStreams);
    this.sessions.add(s);
    session.once('remoteSettings', (settings) => {
      if (s.closed) return;
      s.maxStreams = Math.max(1, Math.min(o.maxStreams, settings.maxConcurrentStreams ?? o.maxStreams));
      s.ready = true;
      onReady();
      this.pump();
    });
    session.on('remoteSettings', (settings) => {
      if (s.ready) s.maxStreams = Math.max(1, Math.min(o.maxStreams, settings.maxConcurrentStreams ?? o.maxStreams));
    });
    session.on('goaway', (_code: number, lastStreamId: number) => {
      // Streams above lastStreamId are closed by node with REFUSED_STREAM (retried as unprocessed);
      // the others are finished by the peer. No new stream goes here.
      s.goawayLast = lastStreamId;
      retire(s);
      this.pump();
    });
    session.on('error', () => undefined); // the 'close' that follows does the bookkeeping
    session.on('frameError', () => undefined);
    session.once('close', () => {
      s.closed = true;
      this.sessions.delete(s);
      if (!s.ready) onFail(new errors.SocketError(`HTTP/2 session to ${this.authority} closed before the peer's SETTINGS`));
      this.pump();
    });
    session.unref();
    return s;
  }

  private switchToHttp1(d: Dispatcher): void {
    this.fallback = d;
    for (const ex of this.queue.splice(0)) {
      if (!ex.done) this.fallback.dispatch(ex.opts, ex.handler as unknown as Dispatcher.DispatchHandler);
    }
  }

  private start(ex: Exchange, s: Session): void {
    let stream: ClientHttp2Stream;
    const body = ex.body;
    const isStream = body != null && typeof body === 'object' && typeof (body as Readable).pipe === 'function';
    try {
      stream = s.session.request(ex.headers, { endStream: body == null });
    } catch (err) {
      // node:http2 refused the request itself (a header it will not send): the request's
      // shape, not the session; sending it again would fail the same (src/errors: blame 'client').
      if (!SESSION_GONE.has((err as { code?: string }).code ?? '') && !s.session.closed && !s.session.destroyed) return this.fail(ex, err as Error);
      // The session went away between the pick and the request: nothing was sent.
      s.draining = true;
      this.queue.unshift(ex);
      this.pump();
      return;
    }
    ex.context.reused = s.started > 0;
    s.started++;
    s.active++;
    ex.stream = stream;
    ex.session = s;
    if (s.active === 1) s.session.ref();
    let streamError: Error | undefined;

    const armHeaders = () => {
      if (ex.done || ex.gotHeaders || ex.headersTimeoutMs <= 0) return;
      ex.headersTimer = setTimeout(() => this.fail(ex, new errors.HeadersTimeoutError()), ex.headersTimeoutMs);
    };
    stream.on('response', (headers) => {
      if (ex.done) return;
      const status = Number(headers[':status']);
      if (ex.headersTimer) clearTimeout(ex.headersTimer);
      ex.gotHeaders = true;
      ex.pump?.release();
      const raw = rawHeaders(headers);
      const resume = () => {
        if (ex.paused && !ex.done) {
          ex.paused = false;
          stream.resume();
        }
      };
      this.armBody(ex);
      if (ex.handler.onHeaders?.(status, raw, resume, '') === false) {
        ex.paused = true;
        stream.pause();
      }
    });
    stream.on('headers', (headers) => {
      // 1xx informational responses
      if (!ex.done) ex.handler.onHeaders?.(Number(headers[':status']), rawHeaders(headers), () => undefined, '');
    });
    stream.on('trailers', (t) => {
      ex.trailers = t;
    });
    stream.on('data', (chunk: Buffer) => {
      if (ex.done) return;
      ex.bodyTimer?.refresh();
      if (ex.handler.onData?.(chunk) === false) {
        ex.paused = true;
        stream.pause();
      }
    });
    stream.on('end', () => {
      if (ex.done) return;
      if (!ex.gotHeaders) return; // an empty stream without headers: 'close' decides
      ex.done = true;
      ex.clearTimers();
      ex.handler.onComplete?.(ex.trailers ? rawHeaders(ex.trailers) : []);
    });
    stream.on('error', (err) => {
      streamError = err;
    });
    stream.once('close', () => {
      s.active--;
      if (s.active === 0) {
        s.idleSince = performance.now();
        s.session.unref();
        if (s.draining) retire(s);
      }
      if (!ex.done) {
        const code = stream.rstCode;
        const id = stream.id;
        const unprocessed =
          !ex.gotHeaders &&
          (code === NGHTTP2_REFUSED_STREAM ||
            id === undefined ||
            (s.goawayLast >= 0 && id > s.goawayLast) ||
            (streamError as { code?: string } | undefined)?.code === 'ERR_HTTP2_GOAWAY_SESSION');
        if (unprocessed) this.unprocessed(ex, s, code);
        else {
          const why = streamError?.message ?? `HTTP/2 stream closed with code ${code ?? 'none'}`;
          this.fail(ex, Object.assign(new errors.SocketError(why), { cause: streamError }));
        }
      }
      this.pump();
    });

    if (isStream) {
      stream.once('finish', armHeaders);
      ex.pump ??= new BodyPump(body as Readable);
      ex.pump.attach(stream);
    } else {
      if (body != null) stream.end(body as Buffer | string);
      armHeaders();
    }
  }

  /** The response body timer: idle time between DATA frames while the consumer reads. */
  private armBody(ex: Exchange): void {
    if (ex.bodyTimeoutMs <= 0) return;
    const fire = () => {
      if (ex.done) return;
      if (ex.paused) ex.bodyTimer = setTimeout(fire, ex.bodyTimeoutMs);
      else this.fail(ex, new errors.BodyTimeoutError());
    };
    ex.bodyTimer = setTimeout(fire, ex.bodyTimeoutMs);
  }

  /** A refused request: send it again on another session when allowed, else fail it (not processed). */
  private unprocessed(ex: Exchange, s: Session, code: number | undefined): void {
    ex.clearTimers();
    s.draining ||= code === NGHTTP2_REFUSED_STREAM && s.goawayLast >= 0;
    ex.pump?.detach();
    ex.stream = undefined;
    ex.session = undefined;
    if (!this.closedFlag && ex.retries < MAX_UNPROCESSED_RETRIES && ex.replayable && (this.o.retryUnprocessed?.() ?? true)) {
      ex.retries++;
      ex.context.reused = false;
      this.queue.unshift(ex);
      return;
    }
    this.fail(ex, new H2Error(H2_REFUSED, `upstream refused the HTTP/2 stream (code ${code ?? 'none'}) and it could not be sent again`));
  }

  private abort(ex: Exchange, reason: Error): void {
    if (ex.done) return;
    if (ex.stream && !ex.stream.destroyed) ex.stream.close(NGHTTP2_CANCEL);
    this.fail(ex, reason);
  }

  private fail(ex: Exchange, err: Error): void {
    if (ex.done) return;
    ex.done = true;
    ex.clearTimers();
    ex.pump?.dispose();
    const i = this.queue.indexOf(ex);
    if (i >= 0) {
      this.queue.splice(i, 1);
      if (this.queue.length === 0) this.drained();
    }
    if (ex.stream && !ex.stream.destroyed) ex.stream.close(NGHTTP2_CANCEL);
    ex.handler.onError?.(err);
  }

  /** Idle timeout, max-idle, max-lifetime and keep-alive PINGs, once a second for all sessions (`now`: tests drive it by hand). */
  private sweep(now = performance.now()): void {
    const o = this.o;
    let idle = 0;
    for (const s of this.sessions) {
      if (!s.ready || s.closed) continue;
      if (o.maxLifetimeMs !== undefined && !s.draining && now - s.created >= o.maxLifetimeMs) {
        retire(s); // finishes its streams, takes no new ones
        continue;
      }
      if (s.active > 0 || s.draining) continue;
      idle++;
      if (now - s.idleSince >= o.idleTimeoutMs || idle > o.maxIdle) {
        retire(s);
        continue;
      }
      if (o.pingIntervalMs > 0 && now - s.lastPing >= o.pingIntervalMs) {
        if (s.pingPending) {
          // A whole interval without the PING's ACK: the peer or the path is gone. Judged after
          // the I/O phase that follows (setImmediate runs after poll): timers run first, so after
          // a stall of this process an ACK that came in meanwhile is still unread in the socket.
          setImmediate(pingOverdue, s);
          continue;
        }
        s.lastPing = now;
        s.pingPending = true;
        const sent = s.session.ping((err) => {
          if (!err) s.pingPending = false;
        });
        if (!sent) s.pingPending = false;
      }
    }
  }

  override close(): Promise<void>;
  override close(callback: () => void): void;
  override close(callback?: () => void): Promise<void> | void {
    // Graceful, like undici's Pool.close(): no new requests; queued and running ones finish
    // (queued ones may still open a session), then every session is closed.
    this.closedFlag = true;
    const queued = new Promise<void>((r) => {
      this.drainWaiters.push(r);
      this.drained();
    });
    const p = queued.then(async () => {
      clearInterval(this.sweepTimer);
      const waits: Promise<void>[] = [...this.sessions].map((s) => new Promise<void>((r) => (s.closed ? r() : (s.session.once('close', () => r()), retire(s)))));
      if (this.fallback) waits.push(this.fallback.close());
      await Promise.all(waits);
    });
    if (callback) void p.then(callback);
    else return p;
  }

  override destroy(): Promise<void>;
  override destroy(err: Error | null): Promise<void>;
  override destroy(callback: () => void): void;
  override destroy(err: Error | null, callback: () => void): void;
  override destroy(a?: Error | null | (() => void), b?: () => void): Promise<void> | void {
    const err = typeof a === 'function' ? null : (a ?? null);
    const callback = typeof a === 'function' ? a : b;
    this.closedFlag = true;
    clearInterval(this.sweepTimer);
    for (const ex of this.queue.splice(0)) this.fail(ex, err ?? new errors.ClientDestroyedError());
    this.drained();
    const waits: Promise<void>[] = [...this.sessions].map(
      (s) => new Promise<void>((r) => (s.closed ? r() : (s.session.once('close', () => r()), s.session.destroy(err ?? undefined), s.socket.destroy()))),
    );
    if (this.fallback) waits.push(this.fallback.destroy(err));
    const p = Promise.all(waits).then(() => undefined);
    if (callback) void p.then(callback);
    else return p;
  }
}

/**
 * Takes a session out of rotation: no new streams; once its last stream is done the session and
 * its socket are destroyed. (node's graceful session.close() alone leaves the socket half-open
 * and never emits 'close' when the peer keeps the connection after its GOAWAY.)
 */
function retire(s: Session): void {
  s.draining = true;
  if (s.closed) return;
  if (s.active > 0) {
    if (!s.session.closed) s.session.close();
    return;
  }
  s.session.destroy();
  s.socket.destroy();
}

/** Response headers as undici's flat [name, value, ...] list, pseudo-headers dropped. */
function rawHeaders(h: IncomingHttpHeaders): string[] {
  const raw: string[] = [];
  for (const k in h) {
    if (k.charCodeAt(0) === 58 /* ':' */) continue;
    const v = h[k];
    if (v === undefined) continue;
    if (Array.isArray(v)) for (const x of v) raw.push(k, x);
    else raw.push(k, String(v));
  }
  return raw;
}
