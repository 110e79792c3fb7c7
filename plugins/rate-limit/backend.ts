// The interface the shared backends (Redis, Memcached) implement, and a bounded-wait helper.
import type { Decision, WindowParams } from './limiter.ts';

export interface RemoteBackend {
  readonly kind: 'redis' | 'memcached';
  /** Counts one request for `key` and decides. Rejects on error or when `timeoutMs` passes. */
  take(key: string, w: WindowParams): Promise<Decision>;
  close(): Promise<void>;
}

export class BackendTimeoutError extends Error {
  constructor(kind: string, ms: number) {
    super(`${kind} did not answer within ${ms} ms`);
    this.name = 'BackendTimeoutError';
  }
}

/** Settles with `p`, or rejects with BackendTimeoutError after `ms`; the timer never outlives the call. */
export function withTimeout<T>(p: Promise<T>, ms: number, kind: string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new BackendTimeoutError(kind, ms)), ms);
    p.then(
      (v) => {
        clearTimeout(timer);
        resolve(v);
      },
      (e: unknown) => {
        clearTimeout(timer);
        reject(e instanceof Error ? e : new Error(String(e)));
      },
    );
  });
}
