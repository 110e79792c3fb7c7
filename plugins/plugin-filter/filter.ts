// The RequestFilter the core runs for one plugin filter: the user's hooks, each call bounded by
// the filter's timeout, with the failure mode applied when a hook throws or times out, and
// counted in sentinel_plugin_filter_calls_total{filter,phase,result}.
//
// Failure answers (the agents' convention): a request-phase failure under fail-closed answers
// 503 (error) or 504 (timeout); a response-phase failure answers 502 while the response has not
// started (after that the core can only cut the connection). Under fail-open the hook's effect is
// skipped: the request or response continues as if the filter were not there.
import type { Logger } from 'pino';
import type { LocalResponse, RequestContext, RequestFilter, ResponseBodyHandler, UpstreamResponseInfo } from '../../src/pipeline/types.ts';

/** The hooks a plugin defines (the RequestFilter contract, src/pipeline/types.ts). */
export type PluginFilterHooks = Pick<RequestFilter, 'onRequest' | 'onResponse' | 'onResponseBody' | 'onComplete' | 'close'>;

export type Phase = 'request' | 'response' | 'response_body' | 'complete';
export type CallResult = 'ok' | 'blocked' | 'error' | 'timeout';

export interface PluginFilterRuntime {
  readonly id: string;
  readonly timeoutMs: number;
  /** the filter's own failure-mode, else the route's */
  failureMode(ctx: RequestContext): 'open' | 'closed';
  count(phase: Phase, result: CallResult): void;
  readonly log: Logger;
}

class HookTimeout extends Error {}

/** The value, or the promise bounded by `ms` (the timer only exists for hooks that return a promise). */
function bounded<T>(value: T | Promise<T>, ms: number): T | Promise<T> {
  if (!(value instanceof Promise)) return value;
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new HookTimeout(`hook did not answer within ${ms} ms`)), ms);
  });
  return Promise.race([value, timeout]).finally(() => clearTimeout(timer));
}

function failed(status: number, reason: string): LocalResponse {
  return { status, headers: { 'content-type': 'text/plain; charset=utf-8' }, body: status === 504 ? 'Gateway Timeout' : status === 502 ? 'Bad Gateway' : 'Service Unavailable', blockReason: reason };
}

export function createPluginFilter(hooks: PluginFilterHooks, rt: PluginFilterRuntime): RequestFilter {
  const { id } = rt;
  /** what a failed hook turns into: a local answer (closed) or undefined (open: carry on) */
  const onFailure = (ctx: RequestContext, phase: Phase, err: unknown, closedStatus: (timeout: boolean) => number): LocalResponse | undefined => {
    const timeout = err instanceof HookTimeout;
    rt.count(phase, timeout ? 'timeout' : 'error');
    const mode = rt.failureMode(ctx);
    ctx.log.warn({ filter: id, phase, err: (err as Error)?.message ?? String(err), failure_mode: mode }, `plugin filter failed; failure-mode ${mode}`);
    return mode === 'closed' ? failed(closedStatus(timeout), 'plugin_filter_failed') : undefined;
  };
  const filter: { -readonly [K in keyof RequestFilter]: RequestFilter[K] } = { id, type: 'plugin' };
  const { onRequest, onResponse, onResponseBody, onComplete, close } = hooks;
  if (onRequest) {
    filter.onRequest = async (ctx) => {
      try {
        const local = await bounded(onRequest.call(hooks, ctx), rt.timeoutMs);
        rt.count('request', local ? 'blocked' : 'ok');
        return local ?? undefined;
      } catch (err) {
        return onFailure(ctx, 'request', err, (t) => (t ? 504 : 503));
      }
    };
  }
  if (onResponse) {
    filter.onResponse = async (ctx, res) => {
      try {
        const local = await bounded(onResponse.call(hooks, ctx, res), rt.timeoutMs);
        rt.count('response', local ? 'blocked' : 'ok');
        return local ?? undefined;
      } catch (err) {
        return onFailure(ctx, 'response', err, () => 502);
      }
    };
  }
  if (onResponseBody) {
    filter.onResponseBody = async (ctx, res) => {
      let handler: ResponseBodyHandler | undefined;
      try {
        handler = (await bounded(onResponseBody.call(hooks, ctx, res), rt.timeoutMs)) ?? undefined;
      } catch (err) {
        const local = onFailure(ctx, 'response_body', err, () => 502);
        return local ? refuse(local) : undefined;
      }
      return handler ? guardBody(handler, ctx, res, rt, onFailure) : undefined;
    };
  }
  if (onComplete) {
    filter.onComplete = (ctx, info) => {
      try {
        onComplete.call(hooks, ctx, info);
        rt.count('complete', 'ok');
      } catch (err) {
        rt.count('complete', 'error');
        rt.log.warn({ filter: id, err: (err as Error)?.message ?? String(err) }, 'plugin filter onComplete failed');
      }
    };
  }
  if (close) filter.close = () => close.call(hooks);
  return filter;
}

/** A body handler that answers `local` at once (a failed onResponseBody under fail-closed). */
function refuse(local: LocalResponse): ResponseBodyHandler {
  return { holdHeaders: true, onChunk: () => local };
}

/**
 * The user's body handler with every chunk bounded and guarded. After a failure under fail-open
 * the rest of the body passes through unchanged (and bytes the handler was holding are lost: the
 * core cuts the response when that leaves it inconsistent, see ResponseBodyHandler).
 */
function guardBody(
  h: ResponseBodyHandler,
  ctx: RequestContext,
  _res: UpstreamResponseInfo,
  rt: PluginFilterRuntime,
  onFailure: (ctx: RequestContext, phase: Phase, err: unknown, closedStatus: (timeout: boolean) => number) => LocalResponse | undefined,
): ResponseBodyHandler {
  let bypass = false;
  return {
    holdHeaders: h.holdHeaders,
    async onChunk(chunk, isLast) {
      if (bypass) return undefined;
      try {
        const out = await bounded(h.onChunk(chunk, isLast), rt.timeoutMs);
        if (isLast) rt.count('response_body', out !== undefined && !(out instanceof Buffer) ? 'blocked' : 'ok');
        return out;
      } catch (err) {
        h.abort?.();
        const local = onFailure(ctx, 'response_body', err, () => 502);
        if (local) return local;
        bypass = true;
        return undefined;
      }
    },
    abort() {
      h.abort?.();
    },
  };
}
