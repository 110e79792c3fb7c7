// The retry feature: the retry policy (attempts, backoff, retryable statuses, idempotency) and
// the retry budget, per upstream (policy.ts). Registered whenever the config has upstreams:
// every upstream has a retry policy (the defaults when it has no `retry-policy` block). Its
// manifest hands the core the `retry` upstream policy (src/upstream/policies.ts).
import { defineFeature } from '../../src/pipeline/feature.ts';
import { RetryConfigKeys } from './schema.ts';
import type { RetryPolicy } from '../../src/upstream/policies.ts';
import { decideRetry, retrySettings, RetryBudget, type RetrySettings } from './policy.ts';

export const retryPolicy: RetryPolicy = {
  settings: retrySettings,
  budget: (settings) => {
    const s = settings as RetrySettings;
    return new RetryBudget(s.budgetRatio, s.budgetMinPerSec);
  },
  decide: decideRetry,
};

export const retryFeature = defineFeature({
  name: 'retry',
  dependencies: [],
  after: ['health'],
  uses: (config) => config.upstreams.size > 0,
  schema: RetryConfigKeys,
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
  upstreamPolicies: { retry: retryPolicy },
  register(app) {
    app.decorate('retry', retryPolicy);
  },
});

export default retryFeature;
