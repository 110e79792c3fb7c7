// A shared backend guarded by a breaker, with the local limiter as fallback. While the backend
// answers within its timeout it decides; on an error or timeout (or while the breaker is open)
// the local buckets decide (redis-fallback #true), or the request is allowed (fail open, as
// Sentinel does with the fallback disabled). No request waits longer than the backend timeout.
//
// The fallback must not open a gap either way:
// - going down: every backend answer is mirrored into the local bucket (a token taken for each
//   admitted request, capped at what the shared limit had left), so the first degraded
//   decision starts from the shared state instead of a full bucket;
// - coming back: the shared window never saw what the fallback admitted, so for one window
//   after the last degraded decision a request needs both the backend and the local bucket.
import type { RemoteBackend } from './backend.ts';
import { BackendTimeoutError } from './backend.ts';
import type { Breaker } from './backend-breaker.ts';
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
  /** until then (ms), the local bucket also bounds what the backend admits (recovery) */
  private boundUntil = 0;

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
        return this.fallback ? this.mirror(this.fallback, localKey, d) : d;
      },
      (err: Error) => {
        this.breaker.failure(this.now());
        this.hooks.onBackendError?.(err instanceof BackendTimeoutError ? 'timeout' : 'error', err);
        return this.degraded(localKey, false);
      },
    );
  }

  private mirror(local: LocalStore, localKey: string, d: Decision): Decision {
    const now = this.now();
    if (d.allowed && now < this.boundUntil) {
      const l = local.take(localKey, now);
      local.sync(localKey, false, d.remaining, now);
      return l.allowed ? { ...d, remaining: Math.min(d.remaining, l.remaining) } : l;
    }
    local.sync(localKey, d.allowed, d.remaining, now);
    return d;
  }

  private degraded(localKey: string, breakerOpen: boolean): Decision {
    this.boundUntil = this.now() + this.window.windowMs;
    if (this.fallback) {
      this.lastSource = 'fallback';
      this.hooks.onDegraded?.('local', breakerOpen);
      return this.fallback.take(localKey, this.now());
    }
    this.lastSource = 'fail-open';
    this.hooks.onDegraded?.('fail_open', breakerOpen);
    return { allowed: true, limit: this.window.limit, remaining: this.window.limit, retryAfterMs: 0 };
  }
}
