// The retry feature's block of an upstream: `retry-policy { }`.
import { Type, type Static } from 'typebox';
import { Block } from '../../src/config/types-helpers.ts';

export const RetryPolicySchema = Block({
  'max-attempts': Type.Optional(Type.Integer({ minimum: 1, default: 1 })),
  'retryable-status-codes': Type.Optional(Type.Array(Type.Integer())),
  'backoff-base-ms': Type.Optional(Type.Integer({ minimum: 0, aliases: ['backoff-ms'] })),
  'backoff-max-ms': Type.Optional(Type.Integer({ minimum: 0 })),
  'retry-non-idempotent': Type.Optional(Type.Boolean({ default: false })),
  'retry-budget-percent': Type.Optional(Type.Number({ minimum: 0, maximum: 100 })),
  // legacy key still found in shipped examples (backoff-ms is an alias of backoff-base-ms above)
  'timeout-ms': Type.Optional(Type.Integer({ ignored: 'a retry has no timeout of its own: each attempt gets the upstream timeouts { request-secs }' })),
});

export type RetryPolicyConfig = Static<typeof RetryPolicySchema>;

/** The keys the retry feature adds to the config (its manifest's `schema`): a route may narrow the upstream's policy. */
export const RetryConfigKeys = {
  upstream: { 'retry-policy': Type.Optional(RetryPolicySchema) },
  route: { 'retry-policy': Type.Optional(RetryPolicySchema) },
};
declare module '../../src/config/schema.ts' {
  interface UpstreamKeys {
    'retry-policy': (typeof RetryConfigKeys)['upstream']['retry-policy'];
  }
  interface RouteKeys {
    'retry-policy': (typeof RetryConfigKeys)['route']['retry-policy'];
  }
}
