// A shared backend guarded by a breaker, with the local limiter as fallback. While the backend
// answers within its timeout it decides; on an error or timeout (or while the breaker is open)
// the local buckets decide (redis-fallback #true), or the request is allowed (fail open, as
// Sentinel does with the fallback disabled). No request waits longer than the backend timeout.
import type { RemoteBackend } from './backend.ts';
import { BackendTimeoutError } from './backend.ts';
import type { Breaker } from './breaker.ts';
import type { Decision, WindowParams } from './limiter.ts';
import type { LocalStore } from './store-local.ts';

export type DecisionSource = 'backend' | 'fallback' | 'fail-open';

export interface RemoteLimiterHooks {
  onBackendError?(reason: 'timeout' | 'error', err: Error): void;
  onDegraded?(mode: 'local' | 'fail_open', breakerOpen: boolean): void;
}

export class RemoteLimiter {
  /** where the last decision came from (tests and logs) */
  lastSource: DecisionSource = 'backend';

  constructor(
    private readonly backend: RemoteBackend,
    private readonly breaker: Breaker,
    private readonly window: WindowParams,
    private readonly fallback: LocalStore | undefined,
    private readonly hooks: RemoteLimiterHooks = {},
    private readonly now: () => number = Date.now,
  ) {}

  /** `backendKey` is the full shared key (prefix included); `localKey` the fallback bucket's key. */
  take(backendKey: string, localKey: string): Decision | Promise<Decision> {
    if (!this.breaker.allow(this.now())) return this.degraded(localKey, true);
    return this.backend.take(backendKey, this.window).then(
      (d) => {
        this.breaker.success();
        this.lastSource = 'backend';
        return d;
      },
      (err: Error) => {
        this.breaker.failure(this.now());
        this.hooks.onBackendError?.(err instanceof BackendTimeoutError ? 'timeout' : 'error', err);
        return this.degraded(localKey, false);
      },
    );
  }

  private degraded(localKey: string, breakerOpen: boolean): Decision {
    if (this.fallback) {
      this.lastSource = 'fallback';
      this.hooks.onDegraded?.('local', breakerOpen);
      return this.fallback.take(localKey);
    }
    this.lastSource = 'fail-open';
    this.hooks.onDegraded?.('fail_open', breakerOpen);
    return { allowed: true, limit: this.window.limit, remaining: this.window.limit, retryAfterMs: 0 };
  }
}
