// The OTLP/HTTP transport: one encoded batch POSTed to the collector on a small undici Pool of
// its own (docs/tracing.md "Export and failure behaviour").
//
// Why undici and not Node's http client (what @opentelemetry/otlp-exporter-base used): the export
// runs on the request thread about once a second, and Node's client shares its classes with the
// HTTP server (OutgoingMessage, IncomingMessage, the HTTP parser's callbacks, Readable/Writable):
// a ClientRequest next to every ServerResponse turned ~286 of the server's inline-cache sites
// polymorphic or megamorphic at 1% sampling that stay monomorphic at 0% (docs/tracing.md "Where
// 1% went"). undici is what the gateway already forwards with (its sites are hot either way), has
// its own llhttp parser and no OutgoingMessage/IncomingMessage. It is driven here as the
// forwarder drives it (src/upstream/exchange.ts): `dispatch` with a handler object on the legacy
// onConnect/onHeaders/onData/onComplete/onError protocol and a Buffer body, so no streams and no
// `request()` machinery are added next to the server's.
//
// Behaviour kept from the OpenTelemetry transport it replaces (otlp-exporter-base 0.223.1):
// `export-timeout` bounds one export, retries included; up to 5 retries of a retryable failure
// (HTTP 429, 502, 503, 504, as the OTLP spec lists them; connection refused/reset, timeouts, DNS
// errors), backoff 1 s x1.5 up to 5 s with ±20% jitter, a `Retry-After` honoured, no retry that
// would end past the deadline; an answer over 4 MiB is a failure; OTEL_EXPORTER_OTLP_(TRACES_)HEADERS,
// _COMPRESSION (gzip), _CERTIFICATE, _CLIENT_CERTIFICATE and _CLIENT_KEY are honoured.
import { readFileSync } from 'node:fs';
import { resolve as resolvePath } from 'node:path';
import { gzip } from 'node:zlib';
import { Pool, type Dispatcher } from 'undici';
import { decodeExportResponse } from './otlp-proto.ts';

/** What one export came to, after its retries. */
export interface SendOutcome {
  /** why the batch was not delivered; undefined when it was */
  readonly error?: string;
  /** spans the collector accepted the request for but rejected (OTLP partial success) */
  readonly rejected?: { readonly spans: number; readonly message: string };
}

/**
 * How the export queue reaches the collector: this file's OtlpHttpTransport on the request thread,
 * or export-thread.ts's ThreadTransport (the same transport inside a worker thread). `send` never
 * throws and calls back exactly once; `close` waits for what is in flight, `destroy` cuts it.
 */
export interface ExportTransport {
  send(body: Uint8Array, done: (outcome: SendOutcome) => void): void;
  close(): Promise<void>;
  destroy(): Promise<void>;
}

export const MAX_RETRIES = 5;
export const INITIAL_BACKOFF_MS = 1000;
export const MAX_BACKOFF_MS = 5000;
const BACKOFF_MULTIPLIER = 1.5;
const JITTER = 0.2;
/** An idle socket is kept this long (exports come every `scheduled-delay`, 1 s by default). */
const KEEP_ALIVE_MS = 4000;
/** A larger answer is refused (and the connection dropped): a collector never sends one. */
export const MAX_RESPONSE_BYTES = 4 << 20;

/** The HTTP statuses the OTLP/HTTP spec says to retry; any other non-2xx is final. */
export function isRetryableStatus(status: number): boolean {
  return status === 429 || status === 502 || status === 503 || status === 504;
}

/**
 * Network errors worth another attempt: the ones Node's client reports for a collector that is
 * down, restarting or unreachable, and undici's names for a closed socket and its timeouts.
 */
const RETRYABLE_CODES = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'EPIPE',
  'ETIMEDOUT',
  'EAI_AGAIN',
  'ENOTFOUND',
  'ENETUNREACH',
  'EHOSTUNREACH',
  'UND_ERR_SOCKET',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
]);

export function isRetryableError(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && RETRYABLE_CODES.has(code);
}

/**
 * A `Retry-After` value in milliseconds: delay-seconds (0 retries at once) or an HTTP date;
 * undefined when absent or unreadable (the backoff applies then).
 */
export function retryAfterMs(value: string | undefined, now = Date.now()): number | undefined {
  if (value === undefined) return undefined;
  const v = value.trim();
  if (/^\d+$/.test(v)) return Number(v) * 1000;
  if (!/^[A-Za-z]{3}/.test(v)) return undefined; // an HTTP date (any of its three forms) starts with the day's name
  const at = Date.parse(v);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

/** The wait before retry number `n` (0-based) without a Retry-After: 1 s x1.5^n, capped, ±20%. */
export function backoffMs(n: number, random = Math.random): number {
  const base = INITIAL_BACKOFF_MS * BACKOFF_MULTIPLIER ** n;
  return Math.max(0, Math.min(base * (1 + (random() * 2 - 1) * JITTER), MAX_BACKOFF_MS));
}

export interface OtlpEnvironment {
  /** extra request headers (lower-case names) */
  headers: Record<string, string>;
  compression: 'gzip' | 'none';
  /** for an https endpoint: a CA bundle to trust, a client certificate and key */
  tls: { ca?: Buffer; cert?: Buffer; key?: Buffer };
  /** settings present but unusable (a bad compression name, an unreadable file) */
  warnings: string[];
}

/**
 * The OTEL_EXPORTER_OTLP_* variables the exporter honours where the config says nothing; the
 * traces-specific one wins over the general one (for headers: name by name). Headers are
 * `name=value` pairs separated by commas, URL-encoded (the W3C Baggage format the spec names).
 */
export function otlpEnvironment(env: NodeJS.ProcessEnv, readFile: (path: string) => Buffer = (p) => readFileSync(resolvePath(p))): OtlpEnvironment {
  const warnings: string[] = [];
  const pick = (name: string): [string, string] | undefined => {
    for (const key of [`OTEL_EXPORTER_OTLP_TRACES_${name}`, `OTEL_EXPORTER_OTLP_${name}`]) {
      const v = env[key];
      if (v !== undefined && v.trim() !== '') return [key, v.trim()];
    }
    return undefined;
  };
  const headers: Record<string, string> = {};
  for (const key of ['OTEL_EXPORTER_OTLP_HEADERS', 'OTEL_EXPORTER_OTLP_TRACES_HEADERS']) Object.assign(headers, parseHeaderList(env[key], key, warnings));
  let compression: 'gzip' | 'none' = 'none';
  const c = pick('COMPRESSION');
  if (c) {
    if (c[1] === 'gzip' || c[1] === 'none') compression = c[1];
    else warnings.push(`${c[0]}="${c[1]}" is not "gzip" or "none": not compressing`);
  }
  const file = (name: string, what: string): Buffer | undefined => {
    const p = pick(name);
    if (!p) return undefined;
    try {
      return readFile(p[1]);
    } catch (err) {
      warnings.push(`${p[0]}: cannot read the ${what} "${p[1]}" (${(err as Error).message}): not used`);
      return undefined;
    }
  };
  const tls: OtlpEnvironment['tls'] = {};
  const ca = file('CERTIFICATE', 'CA certificate');
  const cert = file('CLIENT_CERTIFICATE', 'client certificate');
  const key = file('CLIENT_KEY', 'client key');
  if (ca) tls.ca = ca;
  if (cert) tls.cert = cert;
  if (key) tls.key = key;
  return { headers, compression, tls, warnings };
}

function parseHeaderList(raw: string | undefined, variable: string, warnings: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  if (raw === undefined) return out;
  for (const entry of raw.split(',')) {
    const pair = entry.split(';', 1)[0]!; // baggage-style properties after ';' are not headers
    const eq = pair.indexOf('=');
    if (eq < 0) {
      if (pair.trim() !== '') warnings.push(`${variable}: "${pair.trim()}" is not name=value: ignored`);
      continue;
    }
    try {
      const name = decodeURIComponent(pair.slice(0, eq).trim()).toLowerCase();
      const value = decodeURIComponent(pair.slice(eq + 1).trim());
      if (name !== '' && value !== '') out[name] = value;
    } catch {
      warnings.push(`${variable}: "${pair.trim()}" is not valid URL encoding: ignored`);
    }
  }
  return out;
}

export interface OtlpHttpOptions {
  /** the full traces URL (http:// or https://) */
  readonly url: string;
  readonly contentType: string;
  /** one export, retries included */
  readonly timeoutMs: number;
  readonly userAgent: string;
  /** sockets at most (steady state uses one; a flush sends every queued batch at once) */
  readonly connections: number;
  readonly environment: OtlpEnvironment;
}

/**
 * Posts encoded batches to one collector. `send` never throws and calls back exactly once;
 * `close` waits for what is in flight, `destroy` cuts it (those exports fail) and cancels pending
 * retries. Neither leaves a socket or a timer behind.
 */
export class OtlpHttpTransport implements ExportTransport {
  private readonly pool: Pool;
  private readonly origin: string;
  private readonly path: string;
  private readonly backstopMs: number;
  private readonly headers: Record<string, string>;
  private readonly gzip: boolean;
  /** exports waiting for a retry: their timer, and how to end them if the transport is destroyed */
  private readonly waiting = new Map<NodeJS.Timeout, () => void>();
  private readonly attempts = new Set<ExportAttempt>();
  /** exports between send() and their outcome; close() waits for none */
  private exports = 0;
  private readonly idle: (() => void)[] = [];
  private closing = false;

  constructor(private readonly o: OtlpHttpOptions) {
    const url = new URL(o.url);
    this.path = url.pathname + url.search;
    this.gzip = o.environment.compression === 'gzip';
    this.headers = { ...o.environment.headers, 'content-type': o.contentType, 'user-agent': o.userAgent };
    if (this.gzip) this.headers['content-encoding'] = 'gzip';
    const tls = url.protocol === 'https:' ? o.environment.tls : {};
    this.origin = url.origin;
    // The options, like the dispatch options below, have the keys (and order) the forwarder's
    // pools use (src/upstream/pool.ts), so undici's code sees objects of the same shape as its
    // hot path's. Our own timer (ExportAttempt) bounds each attempt; undici's are a backstop.
    this.pool = new Pool(url.origin, {
      connections: o.connections,
      keepAliveTimeout: KEEP_ALIVE_MS,
      keepAliveMaxTimeout: KEEP_ALIVE_MS,
      clientTtl: null,
      headersTimeout: o.timeoutMs + 1000,
      bodyTimeout: o.timeoutMs + 1000,
      connect: { timeout: Math.min(o.timeoutMs, 10_000), ...tls },
    });
    this.backstopMs = o.timeoutMs + 1000;
  }

  /** `elapsedMs`: export-timeout already spent before this call (the hand-over to the export thread). */
  send(body: Uint8Array, done: (outcome: SendOutcome) => void, elapsedMs = 0): void {
    if (this.closing) {
      done({ error: 'the exporter is closed' });
      return;
    }
    this.exports++;
    const finish = (outcome: SendOutcome): void => {
      done(outcome);
      if (--this.exports === 0) for (const wake of this.idle.splice(0)) wake();
    };
    const deadline = performance.now() + this.o.timeoutMs - elapsedMs;
    const payload = Buffer.from(body.buffer, body.byteOffset, body.byteLength);
    if (!this.gzip) {
      this.exportWithRetries(payload, deadline, finish);
      return;
    }
    // zlib's thread pool, not the request thread
    gzip(payload, (err, zipped) => {
      if (err) finish({ error: `gzip: ${err.message}` });
      else if (this.closing) finish({ error: 'the exporter was closed' });
      else this.exportWithRetries(zipped, deadline, finish);
    });
  }

  private exportWithRetries(payload: Buffer, deadline: number, done: (outcome: SendOutcome) => void): void {
    let retries = 0;
    const attempt = (): void => {
      const a = new ExportAttempt(this.o.contentType, deadline - performance.now(), (result) => {
        this.attempts.delete(a);
        if (result.error === undefined) {
          done(result.rejected ? { rejected: result.rejected } : {});
          return;
        }
        if (!result.retryable || retries >= MAX_RETRIES || this.closing) {
          done({ error: result.error });
          return;
        }
        const wait = result.retryAfterMs ?? backoffMs(retries);
        retries++;
        if (wait >= deadline - performance.now()) {
          done({ error: `${result.error} (no time left for a retry within export-timeout)` });
          return;
        }
        const timer = setTimeout(() => {
          this.waiting.delete(timer);
          attempt();
        }, wait).unref();
        this.waiting.set(timer, () => done({ error: `${result.error} (retry cancelled: the exporter was closed)` }));
      });
      this.attempts.add(a);
      a.start(this.pool, { origin: this.origin, path: this.path, method: 'POST', headers: this.headers, body: payload, headersTimeout: this.backstopMs, bodyTimeout: this.backstopMs });
    };
    attempt();
  }

  /** Waits for the exports in flight (their retries included), then closes the sockets. */
  async close(): Promise<void> {
    if (this.exports > 0) await new Promise<void>((wake) => this.idle.push(wake));
    this.closing = true;
    if (!this.pool.destroyed) await this.pool.close();
  }

  /** Ends every export now (they fail), cancels pending retries and closes the sockets. */
  async destroy(): Promise<void> {
    this.closing = true;
    for (const [timer, cancel] of this.waiting) {
      clearTimeout(timer);
      cancel();
    }
    this.waiting.clear();
    for (const a of this.attempts) a.cancel('the exporter was closed before the collector answered');
    if (!this.pool.destroyed) await this.pool.destroy();
  }
}

interface AttemptResult {
  error?: string;
  retryable: boolean;
  retryAfterMs?: number;
  rejected?: { spans: number; message: string };
}

/** One POST as an undici dispatch handler, bounded by its own timer. */
class ExportAttempt implements Dispatcher.DispatchHandler {
  private abortFn: ((err: Error) => void) | undefined;
  private finished = false;
  private timer: NodeJS.Timeout | undefined;
  private status = 0;
  private retryAfter: string | undefined;
  private body: Buffer[] = [];
  private bytes = 0;

  constructor(
    private readonly contentType: string,
    private readonly timeoutMs: number,
    private readonly onResult: (result: AttemptResult) => void,
  ) {}

  start(pool: Pool, opts: Dispatcher.DispatchOptions): void {
    if (this.timeoutMs <= 0) {
      this.finish({ error: 'export-timeout reached', retryable: false });
      return;
    }
    this.timer = setTimeout(() => this.cancel('timed out (export-timeout) waiting for the collector', true), this.timeoutMs).unref();
    try {
      pool.dispatch(opts, this);
    } catch (err) {
      this.finish({ error: describe(err), retryable: false });
    }
  }

  /** Stops the attempt (undici drops the connection) and reports it failed. */
  cancel(reason: string, retryable = false): void {
    if (this.finished) return;
    this.finish({ error: reason, retryable });
    this.abortFn?.(new Error(reason));
  }

  private finish(result: AttemptResult): void {
    if (this.finished) return;
    this.finished = true;
    clearTimeout(this.timer);
    this.body = [];
    this.onResult(result);
  }

  // --- undici's handler protocol ---

  onConnect(abort: (err?: Error) => void): void {
    // an attempt already given up (timer, destroy) while it waited for a socket
    if (this.finished) abort(new Error('export attempt cancelled'));
    else this.abortFn = abort;
  }

  onHeaders(statusCode: number, rawHeaders: Buffer[]): boolean {
    if (statusCode < 200) return true; // 1xx: the final answer follows
    this.status = statusCode;
    if (isRetryableStatus(statusCode)) {
      for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
        if (rawHeaders[i]!.length === 11 && rawHeaders[i]!.toString('latin1').toLowerCase() === 'retry-after') this.retryAfter = rawHeaders[i + 1]!.toString('latin1');
      }
    }
    return true;
  }

  onData(chunk: Buffer): boolean {
    if (this.finished) return true;
    this.bytes += chunk.length;
    if (this.bytes > MAX_RESPONSE_BYTES) {
      this.cancel(`the collector's answer is larger than ${MAX_RESPONSE_BYTES} bytes`);
      return true;
    }
    this.body.push(chunk);
    return true;
  }

  onComplete(): void {
    if (this.finished) return;
    const s = this.status;
    if (s >= 200 && s < 300) {
      const rejected = partialSuccess(Buffer.concat(this.body), this.contentType);
      this.finish(rejected ? { retryable: false, rejected } : { retryable: false });
      return;
    }
    const text = Buffer.concat(this.body).toString('utf8', 0, Math.min(this.bytes, 200)).trim();
    const error = `HTTP ${s}${text ? `: ${text}` : ''}`;
    if (isRetryableStatus(s)) {
      const after = retryAfterMs(this.retryAfter);
      this.finish(after === undefined ? { error, retryable: true } : { error, retryable: true, retryAfterMs: after });
    } else {
      this.finish({ error, retryable: false });
    }
  }

  onError(err: Error): void {
    if (this.finished) return;
    // the answer's head was in: judge by its status, as if the body had ended (the spans were sent)
    if (this.status >= 200 && this.status < 300) this.finish({ retryable: false });
    else if (isRetryableStatus(this.status)) this.finish({ error: `HTTP ${this.status} (${describe(err)})`, retryable: true });
    else if (this.status !== 0) this.finish({ error: `HTTP ${this.status} (${describe(err)})`, retryable: false });
    else this.finish({ error: describe(err), retryable: isRetryableError(err) });
  }
}

/** An OTLP partial success with rejected spans in a 2xx answer; undefined otherwise (or unreadable). */
function partialSuccess(body: Buffer, contentType: string): { spans: number; message: string } | undefined {
  if (body.length === 0) return undefined;
  try {
    if (contentType === 'application/json') {
      const p = (JSON.parse(body.toString('utf8')) as { partialSuccess?: { rejectedSpans?: number | string; errorMessage?: string } }).partialSuccess;
      const spans = Number(p?.rejectedSpans ?? 0);
      return spans > 0 || p?.errorMessage ? { spans, message: p?.errorMessage ?? '' } : undefined;
    }
    const p = decodeExportResponse(body);
    return p && (p.rejectedSpans > 0 || p.errorMessage !== '') ? { spans: p.rejectedSpans, message: p.errorMessage } : undefined;
  } catch {
    return undefined; // the spans were accepted (2xx); an unreadable answer changes nothing
  }
}

function describe(err: unknown): string {
  const e = err as { code?: unknown; message?: unknown } | null;
  const code = typeof e?.code === 'string' ? e.code : undefined;
  const message = typeof e?.message === 'string' ? e.message : String(err);
  return code && !message.includes(code) ? `${code}: ${message}` : message;
}
