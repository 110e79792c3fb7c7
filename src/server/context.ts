// The per-request context object (src/pipeline/types.ts RequestContext), a class so every
// request has the same shape (V8 keeps one hidden class for all of them).
import type { IncomingMessage } from 'node:http';
import type { Logger } from 'pino';
import type { HeaderMap, RequestContext, TlsInfo } from '../pipeline/types.ts';

export class Context implements RequestContext {
  private _timestamp: string | undefined;
  private readonly wallStart = Date.now();
  body: Buffer | undefined = undefined;
  readonly responseHeaders: HeaderMap = {};
  readonly audit = { tags: [] as string[], ruleIds: [] as string[], rateLimited: false };
  private _state: Map<string, unknown> | undefined;
  private _log: Logger | undefined;
  private readonly abort = new AbortController();

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
    return (this._timestamp ??= new Date(this.wallStart).toISOString());
  }

  get httpVersion(): string {
    return this.raw.httpVersion;
  }
  get signal(): AbortSignal {
    return this.abort.signal;
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
    if (!this.abort.signal.aborted) this.abort.abort(new Error(reason));
  }
}
