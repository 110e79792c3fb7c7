// The per-request context object (src/pipeline/types.ts RequestContext), a class so every
// request has the same shape (V8 keeps one hidden class for all of them).
import { EventEmitter } from 'node:events';
import type { IncomingMessage } from 'node:http';
import type { Logger } from 'pino';
import type { HeaderMap, RequestContext, RequestTrace, TlsInfo } from '../pipeline/types.ts';

export class Context implements RequestContext {
  private _timestamp: string | undefined;
  private readonly wallStart = Date.now();
  body: Buffer | undefined = undefined;
  /** set by the generation right after construction when tracing is on and the request sampled */
  trace: RequestTrace | undefined = undefined;
  /** set by the generation right after construction when tracing is on and the request not sampled */
  traceparent: string | undefined = undefined;
  readonly responseHeaders: HeaderMap = {};
  readonly audit = { tags: [] as string[], ruleIds: [] as string[], rateLimited: false, blocked: undefined as string | undefined };
  private _state: Map<string, unknown> | undefined;
  /** RequestContext.keyPath: set by the generation for routes with `path-spelling "windows"` */
  keyPath: string | undefined = undefined;
  /** plugins/agents' per-request state (RequestContext.agentState); declared so every context has the same shape */
  agentState: unknown = undefined;
  private _log: Logger | undefined;
  // An AbortController costs more than the rest of the context together (profiled); the
  // forwarder hands undici the cheap `cancelToken` and the AbortSignal exists only if a filter asks.
  private abort: AbortController | undefined;
  private cancelReason: Error | undefined;
  private token: CancelToken | undefined;
  private cancelListeners: (() => void)[] | undefined;

  constructor(
    readonly traceId: string,
    readonly startTime: number,
    readonly raw: IncomingMessage,
    readonly method: string,
    readonly path: string,
    readonly query: string,
    readonly host: string,
    readonly clientIp: string,
    readonly clientPort: number,
    readonly listenerId: string,
    readonly protocol: 'http' | 'https',
    readonly tls: TlsInfo | undefined,
    readonly routeId: string | undefined,
    readonly upstreamId: string | undefined,
    readonly upstreamHeaders: HeaderMap,
    private readonly baseLog: Logger,
  ) {}

  /** RFC 3339 arrival time, formatted only when someone asks (agents, audit). */
  get timestamp(): string {
    return (this._timestamp ??= isoAt(this.wallStart));
  }

  get httpVersion(): string {
    return this.raw.httpVersion;
  }
  get signal(): AbortSignal {
    if (!this.abort) {
      this.abort = new AbortController();
      if (this.cancelReason) this.abort.abort(this.cancelReason);
    }
    return this.abort.signal;
  }
  /** An EventEmitter-style abort signal for undici (`aborted` + 'abort' event). */
  get cancelToken(): CancelToken {
    if (!this.token) {
      this.token = new CancelToken();
      if (this.cancelReason) this.token.cancel();
    }
    return this.token;
  }
  get cancelled(): boolean {
    return this.cancelReason !== undefined;
  }
  onCancel(listener: () => void): void {
    if (this.cancelReason) listener();
    else (this.cancelListeners ??= []).push(listener);
  }
  offCancel(listener: () => void): void {
    const ls = this.cancelListeners;
    const i = ls ? ls.indexOf(listener) : -1;
    if (i >= 0) ls!.splice(i, 1);
  }
  get state(): Map<string, unknown> {
    return (this._state ??= new Map());
  }
  get log(): Logger {
    // Child loggers cost an allocation; only made when a filter logs.
    return (this._log ??= this.baseLog.child({ trace_id: this.traceId }));
  }
  /** Aborts upstream work for this request (client gone, or a filter gave up). */
  cancel(reason: string): void {
    if (this.cancelReason) return;
    this.cancelReason = new Error(reason);
    this.abort?.abort(this.cancelReason);
    this.token?.cancel();
    const ls = this.cancelListeners;
    this.cancelListeners = undefined;
    if (ls) for (const l of ls) l();
  }
}

// Requests arriving in the same millisecond share one formatted timestamp (every agent event
// carries one; toISOString was ~1% of the gateway on the agent path). Within a second only the
// milliseconds change: the text up to them is kept and the three digits appended (toISOString's
// C++ formatting is ~7 k instructions a call, a new millisecond every few requests).
let isoMs = -1;
let isoText = '';
let isoSecond = Number.NaN;
/** toISOString of isoSecond without its last four characters (`sssZ`): ends with the '.' */
let isoPrefix = '';

/** `new Date(ms).toISOString()` for an integer `ms` (Date.now()); exported for its test. */
export function isoAt(ms: number): string {
  if (ms !== isoMs) {
    const second = Math.floor(ms / 1000);
    if (second !== isoSecond) {
      isoPrefix = new Date(second * 1000).toISOString().slice(0, -4);
      isoSecond = second;
    }
    const frac = ms - second * 1000;
    isoText = `${isoPrefix}${frac < 10 ? '00' : frac < 100 ? '0' : ''}${frac}Z`;
    isoMs = ms;
  }
  return isoText;
}

export class CancelToken extends EventEmitter {
  aborted = false;
  cancel(): void {
    if (this.aborted) return;
    this.aborted = true;
    this.emit('abort');
  }
}
