// The per-route filter chain: every phase of the filter contract (src/pipeline/types.ts) runs
// here, over arrays built once per route when the generation is built. Each phase's array holds
// only the filters that have that hook, already in the phase's order (request order for
// onRequest and onComplete, reverse for the response phases), so a request walks exactly the
// hooks it will call: no lookups, no skipped entries. A phase no filter of the route has costs a
// flag test at the call site (`hasRequestHooks`, `hasResponseHooks`, `wantsBodies`): no async call.
import type { Logger } from 'pino';
import type { CompletionInfo, LocalResponse, RequestContext, RequestFilter, RequestTrace, ResponseBodyHandler, UpstreamFailure, UpstreamResponseInfo } from './types.ts';

/** Where FilterChain.onRequest records the filter it asked last: the one that answered, when one did. */
export interface RefusalOut {
  refusedBy: RequestFilter | undefined;
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
    this.hasCompleteHooks = this.complete.length > 0;
  }

  /** some filter has onRequest (else the caller skips the phase: no async call for nothing) */
  readonly hasRequestHooks: boolean;
  /** some filter has onResponse */
  readonly hasResponseHooks: boolean;
  /** some filter may want a response's body (else the plain relay needs no asking) */
  readonly wantsBodies: boolean;
  /** some filter has onComplete (else the caller builds no completion info for it) */
  readonly hasCompleteHooks: boolean;

  /**
   * onRequest of each filter in order; the first answer stops the chain, and `out.refusedBy` is
   * the filter that gave it (the last one asked). With `trace`, each filter runs in its own span
   * (agents see it as the parent in their metadata). Synchronous while every filter answers
   * synchronously; a promise from the last filter (an agent route's usual case) is returned as
   * it is, so the caller awaits the filter's own promise (no async frame of the chain's around it);
   * from any other filter that returns one, the rest run in an async continuation.
   */
  onRequest(ctx: RequestContext, trace: RequestTrace | undefined, out: RefusalOut): LocalResponse | undefined | Promise<LocalResponse | undefined> {
    const fs = this.request;
    for (let i = 0; i < fs.length; i++) {
      const filter = fs[i]!;
      out.refusedBy = filter;
      const local = trace ? tracedOnRequest(trace, filter, ctx) : filter.onRequest!(ctx);
      if (isPromise(local)) return i === fs.length - 1 ? local : this.requestFrom(i, local, ctx, trace, out);
      if (local) return local;
    }
    return undefined;
  }

  private async requestFrom(i: number, pending: Promise<LocalResponse | undefined>, ctx: RequestContext, trace: RequestTrace | undefined, out: RefusalOut): Promise<LocalResponse | undefined> {
    const first = await pending;
    if (first) return first;
    const fs = this.request;
    for (let j = i + 1; j < fs.length; j++) {
      const filter = fs[j]!;
      out.refusedBy = filter;
      const local = trace ? await tracedOnRequest(trace, filter, ctx) : await filter.onRequest!(ctx);
      if (local) return local;
    }
    return undefined;
  }

  /**
   * onResponse in reverse order (filters edit `info.headers` in place); the first answer replaces
   * the response. Synchronous while every filter answers synchronously (an agent route without a
   * response_headers agent: no async call, no promise per response); from the first filter that
   * returns a promise on, the rest run in an async continuation.
   */
  onResponse(ctx: RequestContext, info: UpstreamResponseInfo): LocalResponse | undefined | Promise<LocalResponse | undefined> {
    const fs = this.response;
    for (let i = 0; i < fs.length; i++) {
      const r = fs[i]!.onResponse!(ctx, info);
      if (isPromise(r)) return this.responseFrom(i, r, ctx, info);
      if (r) return r;
    }
    return undefined;
  }

  private async responseFrom(i: number, pending: Promise<void | LocalResponse>, ctx: RequestContext, info: UpstreamResponseInfo): Promise<LocalResponse | undefined> {
    const first = await pending;
    if (first) return first;
    const fs = this.response;
    for (let j = i + 1; j < fs.length; j++) {
      const local = await fs[j]!.onResponse!(ctx, info);
      if (local) return local;
    }
    return undefined;
  }

  /** The body handlers the filters choose for this response (reverse order), or undefined when none does; synchronous as onResponse is. */
  onResponseBody(ctx: RequestContext, info: UpstreamResponseInfo): ResponseBodyHandler[] | undefined | Promise<ResponseBodyHandler[] | undefined> {
    let handlers: ResponseBodyHandler[] | undefined;
    const fs = this.body;
    for (let i = 0; i < fs.length; i++) {
      const h = fs[i]!.onResponseBody!(ctx, info);
      if (isPromise(h)) return this.bodyFrom(i, h, handlers, ctx, info);
      if (h) (handlers ??= []).push(h);
    }
    return handlers;
  }

  private async bodyFrom(i: number, pending: Promise<ResponseBodyHandler | undefined>, handlers: ResponseBodyHandler[] | undefined, ctx: RequestContext, info: UpstreamResponseInfo): Promise<ResponseBodyHandler[] | undefined> {
    const first = await pending;
    if (first) (handlers ??= []).push(first);
    const fs = this.body;
    for (let j = i + 1; j < fs.length; j++) {
      const h = await fs[j]!.onResponseBody!(ctx, info);
      if (h) (handlers ??= []).push(h);
    }
    return handlers;
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

/** A filter's answer that is still to come (a promise or any thenable: awaited like one). */
export function isPromise<T>(v: T | Promise<T>): v is Promise<T> {
  return typeof v === 'object' && v !== null && typeof (v as { then?: unknown }).then === 'function';
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
