// The retry feature: the retry policy (attempts, backoff, retryable statuses, idempotency) and
// the retry budget, per upstream (policy.ts). Registered whenever the config has upstreams:
// every upstream has a retry policy (the defaults when it has no `retry-policy` block).
import { defineFeature } from '../../src/pipeline/feature.ts';
import { decideRetry, retrySettings, RetryBudget } from './policy.ts';

export interface RetryRuntime {
  readonly retrySettings: typeof retrySettings;
  readonly decideRetry: typeof decideRetry;
  readonly Budget: typeof RetryBudget;
}

export const retryFeature = defineFeature({
  name: 'retry',
  dependencies: [],
  after: ['health'],
  uses: (config) => config.upstreams.size > 0,
  explainRoute(config, route) {
    const u = route.upstream ? config.upstreams.get(route.upstream) : undefined;
    if (!u) return [];
    const s = retrySettings(u['retry-policy']);
    return [
      {
        title: u['retry-policy'] ? 'retry' : 'retry (no retry-policy: the default)',
        settings: { 'max-attempts': s.maxAttempts, 'retryable-status-codes': [...s.retryableStatus], 'backoff-ms': `${s.backoffBaseMs}..${s.backoffMaxMs}`, 'retry-non-idempotent': s.retryNonIdempotent, budget: `${Math.round(s.budgetRatio * 100)}% of requests` },
      },
    ];
  },
  register(app) {
    const runtime: RetryRuntime = { retrySettings, decideRetry, Budget: RetryBudget };
    app.decorate('retry', runtime);
  },
});

export default retryFeature;
