// One upstream attempt as an undici dispatch handler (the legacy onConnect/onHeaders/onData/
// onComplete/onError protocol, which undici runs natively).
//
// Why not `dispatcher.request()`: per response it builds an AsyncResource, a BodyReadable stream,
// a parsed header object and a promise chain, and the relay then re-emits every chunk through the
// stream's 'data' events. Here the body goes straight from undici's parser callbacks into the
// client response (`relayTo`), with backpressure through undici's resume callback. Chunks that
// arrive before the caller picks a sink (headers resolve in a microtask; small bodies arrive in
// the same read) are held, up to HOLD_BYTES, then the upstream is paused. Paths that want a
// stream (response-body filters) still get one (`body`), and `dump()` discards the rest.
import { Readable } from 'node:stream';
import type { ServerResponse } from 'node:http';
import { errors, util as undiciUtil, type Dispatcher } from 'undici';
import type { HeaderMap } from '../pipeline/types.ts';
import { NOT_RELAYED_RESPONSE, connectionListed } from '../server/headers.ts';
import { BufferedRelay, ResponseBufferBudget, relayBuffering, responseBufferBudget, type ResponseBufferPolicy } from './response-buffer.ts';

/** What the exchange needs of the request's cancel token (src/server/context.ts CancelToken). */
export interface CancelSignal {
  readonly aborted: boolean;
  once(event: 'abort', listener: () => void): unknown;
  off(event: 'abort', listener: () => void): unknown;
}

/** Bytes held before a sink is attached; past this the upstream is paused. */
const HOLD_BYTES = 64 * 1024;
/** dump(): bytes discarded before giving up on the connection (as undici's body.dump()). */
const DUMP_LIMIT = 128 * 1024;

export interface RelayOutcome {
  bytes: number;
  error?: unknown;
  clientClosed?: boolean;
}

interface Sink {
  /** false = stop sending until resumed */
  data(chunk: Buffer): boolean;
  end(): void;
  error(err: unknown): void;
}

export class UpstreamExchange implements Dispatcher.DispatchHandler {
  statusCode = 0;
  /** end-to-end response headers: lower-cased names, hop-by-hop ones (and those named in Connection) removed */
  headers: HeaderMap = {};
  private abortFn: ((err: Error) => void) | null = null;
  private resumeFn: (() => void) | null = null;
  private abortReason: Error | null = null;
  private resolveHeaders: ((x: UpstreamExchange) => void) | null = null;
  private rejectHeaders: ((err: unknown) => void) | null = null;
  private held: Buffer[] | null = null;
  private heldBytes = 0;
  private paused = false;
  private ended = false;
  private failure: unknown = undefined;
  private sink: Sink | null = null;
  private readable: Readable | undefined;
  /** relayTo: the client key while this relay holds its connection for a client past a buffering bound */
  private holding: string | undefined = undefined;
  private readonly onCancel = (): void => this.abort(new errors.RequestAbortedError());

  private constructor(private readonly signal: CancelSignal) {}

  /**
   * Sends one attempt; resolves once the final response headers are in (rejects like
   * `request()` does: connect errors, timeouts, RequestAbortedError when `signal` fires).
   */
  static send(dispatcher: Dispatcher, opts: Dispatcher.DispatchOptions, signal: CancelSignal): Promise<UpstreamExchange> {
    const ex = new UpstreamExchange(signal);
    return new Promise<UpstreamExchange>((resolve, reject) => {
      ex.resolveHeaders = resolve;
      ex.rejectHeaders = reject;
      if (signal.aborted) ex.abortReason = new errors.RequestAbortedError();
      else signal.once('abort', ex.onCancel);
      dispatcher.dispatch(opts, ex);
    });
  }

  /** Stops the exchange (undici drops the connection if the response is not complete). */
  abort(err: Error): void {
    if (this.ended || this.failure !== undefined) return;
    if (this.abortFn) this.abortFn(err);
    else this.abortReason ??= err;
  }

  // --- undici's handler protocol ---

  onConnect(abort: (err?: Error) => void): void {
    if (this.abortReason) abort(this.abortReason);
    else this.abortFn = abort;
  }

  onHeaders(statusCode: number, rawHeaders: readonly RawHeader[], resume: () => void): boolean {
    if (statusCode < 200) return true; // 1xx: informational, the final response follows
    // 600-999 are not HTTP statuses (RFC 9110 §15: a client treats them as a 5xx)
    const headers = statusCode < 600 ? endToEndHeaders(rawHeaders) : undefined;
    if (headers === undefined) {
      this.abort(new InvalidUpstreamResponse(statusCode < 600 ? 'a transfer coding other than chunked' : `status ${statusCode}`));
      return false;
    }
    this.statusCode = statusCode;
    this.resumeFn = resume;
    this.headers = headers;
    const settle = this.resolveHeaders;
    this.resolveHeaders = this.rejectHeaders = null;
    settle?.(this);
    return true;
  }

  onData(chunk: Buffer): boolean {
    if (this.sink) return this.sink.data(chunk);
    (this.held ??= []).push(chunk);
    this.heldBytes += chunk.length;
    if (this.heldBytes < HOLD_BYTES) return true;
    this.paused = true;
    return false;
  }

  onComplete(): void {
    this.ended = true;
    this.signal.off('abort', this.onCancel);
    this.sink?.end();
  }

  onError(err: Error): void {
    // A 304 (or a 204) has no body, whatever its Content-Length says (RFC 9110 §8.6: a 304 may
    // carry the 200's length). undici exempts only HEAD from its length check and fails such a
    // response after its headers: it is complete (undici drops the connection, which is all it costs).
    if ((this.statusCode === 304 || this.statusCode === 204) && (err as { code?: string }).code === 'UND_ERR_RES_CONTENT_LENGTH_MISMATCH') {
      this.onComplete();
      return;
    }
    this.failure = err;
    this.signal.off('abort', this.onCancel);
    const reject = this.rejectHeaders;
    if (reject) {
      this.resolveHeaders = this.rejectHeaders = null;
      reject(err);
      return;
    }
    this.sink?.error(err);
  }

  // --- consumers of the body (exactly one) ---

  private attach(sink: Sink): void {
    this.sink = sink;
    const held = this.held;
    this.held = null;
    this.heldBytes = 0;
    let open = true;
    if (held) for (const c of held) open = sink.data(c);
    if (this.ended) sink.end();
    else if (this.failure !== undefined) sink.error(this.failure);
    else if (this.paused && open) {
      this.paused = false;
      this.resumeFn?.();
    }
  }

  /**
   * Writes the status line and `headers`, then copies the body to the client with backpressure
   * (resolves when the body ended, failed, or the client went away — then the upstream request is
   * aborted). The status line is written with the first body byte or the end, never before: an
   * HTTP/1.1 response sends nothing before its first write anyway, so a body that fails before
   * any byte (a bad first chunk, the upstream closing short of its Content-Length) resolves with
   * `error` and `res.headersSent` still false, and the caller can answer 502 instead of cutting a
   * connection that never saw a status (docs/security.md, "Upstream responses"). Except an event
   * stream or gRPC response: its client must see the stream open before the first event or
   * message, which may be minutes away, so its head goes out at once.
   */
  relayTo(res: ServerResponse, status: number, headers: HeaderMap, buffering?: ResponseBufferPolicy, clientIp = ''): Promise<RelayOutcome> {
    return new Promise((resolve) => {
      let head = true;
      if (opensStream(headers)) {
        head = false;
        buffering = undefined; // an open stream is read as it comes: nothing to buffer
        res.writeHead(status, headers as Record<string, string | string[]>);
        res.flushHeaders();
      } else if (buffering !== undefined && headers['x-accel-buffering'] !== undefined) {
        // nginx's header: an upstream that streams says `no`; not relayed (nginx does not either)
        if (String(headers['x-accel-buffering']).trim().toLowerCase() === 'no') buffering = undefined;
        delete headers['x-accel-buffering'];
      }
      const relay = new PlainRelay(this, this.signal, res, status, headers, head, buffering, clientIp, resolve);
      res.on('drain', relay.onDrain);
      res.on('close', relay.onClose);
      this.attach(relay);
    });
  }

  /** A sink stopped taking bytes: the upstream is paused until resumeUpstream(). */
  pauseUpstream(): void {
    this.paused = true;
  }

  resumeUpstream(): void {
    this.paused = false;
    this.resumeFn?.();
  }

  /** relayTo's end: gives back the client's hold on the unbuffered-responses budget, if taken. */
  releaseHold(): void {
    if (this.holding !== undefined) responseBufferBudget.unhold(this.holding);
  }

  /**
   * The upstream waits for a client that a buffering bound stopped short (relayTo): counted per
   * client, and one past `max-unbuffered-responses-per-client` is cut instead (false: the caller
   * ends the relay), as request-secs cuts a client too slow for its answer, so that its connection
   * goes back to the pool.
   */
  waitForClient(clientIp: string): boolean {
    this.paused = true;
    if (this.holding !== undefined) return true;
    const client = ResponseBufferBudget.clientKey(clientIp);
    if (!responseBufferBudget.hold(client)) {
      this.abort(new errors.RequestAbortedError());
      return false;
    }
    this.holding = client;
    return true;
  }

  /** The body as a stream, for consumers that want one (response-body filters). */
  get body(): Readable {
    if (this.readable) return this.readable;
    const r = new Readable({
      read: () => {
        if (this.paused) {
          this.paused = false;
          this.resumeFn?.();
        }
      },
      destroy: (err, cb) => {
        if (!this.ended) this.abort(err ?? new errors.RequestAbortedError());
        cb(err);
      },
    });
    this.readable = r;
    this.attach({
      data: (chunk) => {
        if (r.push(chunk)) return true;
        this.paused = true;
        return false;
      },
      end: () => r.push(null),
      error: (err) => r.destroy(err as Error),
    });
    return r;
  }

  /** Discards the rest of the body, keeping the connection when it is short; aborts past DUMP_LIMIT. */
  dump(): void {
    let seen = this.heldBytes;
    this.attach({
      data: (chunk) => {
        seen += chunk.length;
        if (seen > DUMP_LIMIT) this.abort(new errors.RequestAbortedError());
        return true;
      },
      end: () => undefined,
      error: () => undefined,
    });
  }
}

/**
 * relayTo's sink: the body copied to the client response with backpressure. One object a
 * response with its steps as methods (it was five closures, a sink literal and their shared
 * context on every proxied response); the response's drain and close listeners are its only closures.
 */
class PlainRelay implements Sink {
  private bytes = 0;
  private done = false;
  private buffer: BufferedRelay | null = null;

  constructor(
    private readonly ex: UpstreamExchange,
    private readonly signal: CancelSignal,
    private readonly res: ServerResponse,
    private readonly status: number,
    private readonly headers: HeaderMap,
    /** the status line is still to be written (with the first byte or the end) */
    private head: boolean,
    private readonly buffering: ResponseBufferPolicy | undefined,
    private readonly clientIp: string,
    private readonly resolve: (outcome: RelayOutcome) => void,
  ) {}

  readonly onDrain = (): void => {
    if (this.buffer?.drained()) return;
    this.ex.resumeUpstream();
  };

  readonly onClose = (): void => {
    if (this.done) return;
    // The client went away mid-body: stop reading from the upstream.
    this.ex.abort(new errors.RequestAbortedError());
    this.finish({ bytes: this.bytes, clientClosed: true });
  };

  private finish(outcome: RelayOutcome): void {
    if (this.done) return;
    this.done = true;
    this.res.off('drain', this.onDrain);
    this.res.off('close', this.onClose);
    this.buffer?.release();
    this.ex.releaseHold();
    this.resolve(outcome);
  }

  private writeHead(): void {
    this.head = false;
    this.res.writeHead(this.status, this.headers as Record<string, string | string[]>);
  }

  /** The client holds too many unread answers already: the relay ends instead of waiting. */
  private waitOrCut(): boolean {
    if (!this.ex.waitForClient(this.clientIp)) this.finish({ bytes: this.bytes, error: new UnbufferedCapReached() });
    return false;
  }

  data(chunk: Buffer): boolean {
    if (this.head) this.writeHead();
    this.bytes += chunk.length;
    const buffer = this.buffer;
    if (buffer !== null) {
      if (buffer.data(chunk)) return true;
      return this.waitOrCut();
    }
    if (this.res.write(chunk)) return true;
    // The client stopped reading: buffer what the upstream sends instead of holding its connection.
    if (this.buffering !== undefined) {
      const started = new BufferedRelay(this.res, relayBuffering(this.buffering, this.clientIp), this.signal, {
        resume: () => this.ex.resumeUpstream(),
        finish: (error) => this.finish(error === undefined ? { bytes: this.bytes } : { bytes: this.bytes, error }),
      });
      this.buffer = started;
      if (started.start()) return true;
      this.buffer = null;
      return this.waitOrCut();
    }
    this.ex.pauseUpstream();
    return false;
  }

  end(): void {
    if (this.head) this.writeHead();
    if (this.buffer !== null) return this.buffer.end();
    this.res.end();
    this.finish({ bytes: this.bytes });
  }

  error(error: unknown): void {
    this.finish({ bytes: this.bytes, error });
  }
}

/** A raw header name or value: Buffers from undici's HTTP/1.1 parser, strings from our HTTP/2 dispatcher. */
type RawHeader = Buffer | string;

/** A response the gateway does not relay: answered 502 like any malformed response (src/errors). */
export class InvalidUpstreamResponse extends Error {
  readonly code = 'SENTINEL_BAD_RESPONSE';
  constructor(what: string) {
    super(`invalid response from upstream: ${what}`);
  }
}

/** A relay cut because its client holds `max-unbuffered-responses-per-client` unread answers already. */
export class UnbufferedCapReached extends Error {
  readonly code = 'SENTINEL_UNBUFFERED_CAP';
  constructor() {
    super('client not reading: max-unbuffered-responses-per-client reached');
  }
}

const ONLY_CHUNKED = /^[\t ]*chunked[\t ]*$/i;

/**
 * Response headers from raw name/value pairs, minus hop-by-hop ones, any named in Connection and
 * the upstream's own (`NOT_RELAYED_RESPONSE`: Alt-Svc). undefined when the response has a transfer coding other than chunked (`gzip`, `gzip, chunked`):
 * undici removes only the chunked framing, so the body it hands over would still be coded, with
 * nothing left to say so once Transfer-Encoding (hop-by-hop) is gone.
 */
export function endToEndHeaders(raw: readonly RawHeader[]): HeaderMap | undefined {
  const out: HeaderMap = {};
  let connection: string | undefined;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const n = raw[i]!;
    const v = raw[i + 1]!;
    // A well-known name (content-type, date, ...) comes lower-cased from undici's name tree, without
    // a string made and lower-cased; a value is Buffer's latin1 slice, what toString('latin1') ends
    // in after ~1k instructions of argument and encoding handling (two a header, every response).
    const name = typeof n === 'string' ? n.toLowerCase() : headerName(n);
    const value = typeof v === 'string' ? v : (v as LatinSlicing).latin1Slice(0, v.length);
    if (NOT_RELAYED_RESPONSE.has(name)) {
      if (name === 'connection') connection = connection === undefined ? value : `${connection}, ${value}`;
      else if (name === 'transfer-encoding' && !ONLY_CHUNKED.test(value)) return undefined;
      continue;
    }
    const cur = out[name];
    out[name] = cur === undefined ? value : Array.isArray(cur) ? [...cur, value] : [cur, value];
  }
  for (const listed of connectionListed(connection) ?? []) delete out[listed];
  return out;
}

/** Buffer's latin1 slice as toString('latin1') calls it (not in @types/node). */
type LatinSlicing = Buffer & { latin1Slice(start: number, end: number): string };

/** A raw header name, lower-cased: undici's lookup of its well-known names, else latin1 lower-cased. */
const headerName: (name: Buffer) => string = typeof undiciUtil?.headerNameToString === 'function' ? undiciUtil.headerNameToString : (n) => n.toString('latin1').toLowerCase();

/** A response whose client waits on an open stream: Server-Sent Events, gRPC (and gRPC-Web). */
export function opensStream(headers: HeaderMap): boolean {
  const type = headers['content-type'];
  const t = (Array.isArray(type) ? type[0] : type)?.toLowerCase();
  return t !== undefined && (t.startsWith('text/event-stream') || t.startsWith('application/grpc'));
}
