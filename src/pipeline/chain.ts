// The per-route filter chain: every phase of the filter contract (src/pipeline/types.ts) runs
// here, over arrays built once per route when the generation is built. Each phase's array holds
// only the filters that have that hook, already in the phase's order (request order for
// onRequest and onComplete, reverse for the response phases), so a request walks exactly the
// hooks it will call: no lookups, no skipped entries. A phase no filter of the route has costs a
// flag test at the call site (`hasRequestHooks`, `hasResponseHooks`, `wantsBodies`): no async call.
// A phase whose filters all answer synchronously returns its value without a promise (callers
// await only a thenable): an agent route's onResponse/onResponseBody/onComplete cost no
// microtask hops when the agent asked for nothing on the response side.
import type { Logger } from 'pino';
import type { CompletionInfo, LocalResponse, RequestContext, RequestFilter, RequestTrace, ResponseBodyHandler, UpstreamFailure, UpstreamResponseInfo } from './types.ts';

/** A phase's result: a value when every filter answered synchronously, else a promise. */
export type Awaitable<T> = T | Promise<T>;

/** True for a promise (or any thenable) a filter returned; a LocalResponse never has `then`. */
export function isThenable<T>(v: T | PromiseLike<T>): v is PromiseLike<T> {
  return typeof v === 'object' && v !== null && typeof (v as { then?: unknown }).then === 'function';
}

/** A request a filter answered in onRequest (it stops the chain). */
export interface RequestRefusal {
  readonly filter: RequestFilter;
  readonly local: LocalResponse;
}

export class FilterChain {
  /** every filter of the route, in request order (global ones, the route's `filters`, then the features' route filters) */
  readonly filters: readonly RequestFilter[];
  private readonly request: readonly RequestFilter[];
  private readonly response: readonly RequestFilter[];
  private readonly body: readonly RequestFilter[];
  private readonly upstreamError: readonly RequestFilter[];
  private readonly complete: readonly RequestFilter[];

  constructor(filters: readonly RequestFilter[]) {
    this.filters = filters;
    const reverse = [...filters].reverse();
    this.request = filters.filter((f) => f.onRequest !== undefined);
    this.response = reverse.filter((f) => f.onResponse !== undefined);
    this.body = reverse.filter((f) => f.onResponseBody !== undefined);
    this.upstreamError = reverse.filter((f) => f.onUpstreamError !== undefined);
    this.complete = filters.filter((f) => f.onComplete !== undefined);
    this.hasRequestHooks = this.request.length > 0;
    this.hasResponseHooks = this.response.length > 0;
    this.wantsBodies = this.body.length > 0;
  }

  /** some filter has onRequest (else the caller skips the phase: no async call for nothing) */
  readonly hasRequestHooks: boolean;
  /** some filter has onResponse */
  readonly hasResponseHooks: boolean;
  /** some filter may want a response's body (else the plain relay needs no asking) */
  readonly wantsBodies: boolean;

  /**
   * onRequest of each filter in order; the first answer stops the chain. With `trace`, each
   * filter runs in its own span (agents see it as the parent in their metadata). Synchronous
   * while the filters answer synchronously: a promise (and the caller's await) only from the
   * first filter that returns one.
   */
  onRequest(ctx: RequestContext, trace: RequestTrace | undefined): Awaitable<RequestRefusal | undefined> {
    const filters = this.request;
    for (let i = 0; i < filters.length; i++) {
      const filter = filters[i]!;
      const local = trace ? tracedOnRequest(trace, filter, ctx) : filter.onRequest!(ctx);
      if (isThenable(local)) return this.requestFrom(i, local, ctx, trace);
      if (local) return { filter, local };
    }
    return undefined;
  }

  /** The rest of onRequest once filter `i` went asynchronous. */
  private async requestFrom(i: number, pending: PromiseLike<LocalResponse | undefined>, ctx: RequestContext, trace: RequestTrace | undefined): Promise<RequestRefusal | undefined> {
    const filters = this.request;
    let local = await pending;
    for (;;) {
      if (local) return { filter: filters[i]!, local };
      if (++i >= filters.length) return undefined;
      const filter = filters[i]!;
      local = await (trace ? tracedOnRequest(trace, filter, ctx) : filter.onRequest!(ctx));
    }
  }

  /** onResponse in reverse order (filters edit `info.headers` in place); the first answer replaces the response. Synchronous like onRequest. */
  onResponse(ctx: RequestContext, info: UpstreamResponseInfo): Awaitable<LocalResponse | undefined> {
    const filters = this.response;
    for (let i = 0; i < filters.length; i++) {
      const local = filters[i]!.onResponse!(ctx, info);
      if (isThenable(local)) return this.responseFrom(i, local, ctx, info);
      if (local) return local;
    }
    return undefined;
  }

  private async responseFrom(i: number, pending: PromiseLike<void | LocalResponse>, ctx: RequestContext, info: UpstreamResponseInfo): Promise<LocalResponse | undefined> {
    const filters = this.response;
    let local = await pending;
    for (;;) {
      if (local) return local;
      if (++i >= filters.length) return undefined;
      local = await filters[i]!.onResponse!(ctx, info);
    }
  }

  /** The body handlers the filters choose for this response (reverse order), or undefined when none does. Synchronous like onRequest. */
  onResponseBody(ctx: RequestContext, info: UpstreamResponseInfo): Awaitable<ResponseBodyHandler[] | undefined> {
    const filters = this.body;
    let handlers: ResponseBodyHandler[] | undefined;
    for (let i = 0; i < filters.length; i++) {
      const h = filters[i]!.onResponseBody!(ctx, info);
      if (isThenable(h)) return this.bodyFrom(i, h, handlers, ctx, info);
      if (h) (handlers ??= []).push(h);
    }
    return handlers;
  }

  private async bodyFrom(
    i: number,
    pending: PromiseLike<ResponseBodyHandler | undefined>,
    handlers: ResponseBodyHandler[] | undefined,
    ctx: RequestContext,
    info: UpstreamResponseInfo,
  ): Promise<ResponseBodyHandler[] | undefined> {
    const filters = this.body;
    let h = await pending;
    for (;;) {
      if (h) (handlers ??= []).push(h);
      if (++i >= filters.length) return handlers;
      h = await filters[i]!.onResponseBody!(ctx, info);
    }
  }

  /** The upstream failed: the first filter (reverse order) that answers instead of the core's error. */
  onUpstreamError(ctx: RequestContext, failure: UpstreamFailure): LocalResponse | undefined {
    for (const filter of this.upstreamError) {
      const local = filter.onUpstreamError!(ctx, failure);
      if (local) return local;
    }
    return undefined;
  }

  /** onComplete of each filter in order; one that throws is logged and the rest still run. */
  onComplete(ctx: RequestContext, info: CompletionInfo, log: Logger): void {
    for (const filter of this.complete) {
      try {
        filter.onComplete!(ctx, info);
      } catch (err) {
        log.warn({ err, filter: filter.id }, 'filter onComplete failed');
      }
    }
  }
}

/** A filter's onRequest inside its own span. */
async function tracedOnRequest(trace: RequestTrace, filter: RequestFilter, ctx: RequestContext): Promise<LocalResponse | undefined> {
  const span = trace.child(`${filter.type} ${filter.id}`, 'internal');
  span.set('sentinel.filter.id', filter.id);
  span.set('sentinel.filter.type', filter.type);
  trace.current = span;
  try {
    const local = await filter.onRequest!(ctx);
    if (local) {
      span.set('sentinel.filter.decision', 'block');
      span.set('http.response.status_code', local.status);
    }
    return local;
  } catch (err) {
    span.fail((err as Error)?.name ?? 'Error');
    throw err;
  } finally {
    trace.current = trace.server;
    span.end();
  }
}
