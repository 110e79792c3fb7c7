// The health feature's blocks of an upstream: `health-check { }` (active checks) and
// `circuit-breaker { }` (passive health; also a route's own breaker and an agent's).
import { Type, type Static } from 'typebox';
import { Block } from '../../src/config/types-helpers.ts';

export const HealthCheckTypeSchema = Block(
  {
    kind: Type.String(),
    path: Type.Optional(Type.String({ default: '/health' })),
    'expected-status': Type.Optional(Type.Union([Type.Integer(), Type.String()])),
    host: Type.Optional(Type.String()),
    service: Type.Optional(Type.String()),
    endpoint: Type.Optional(Type.String()),
  },
  { argKey: 'kind' },
);

export const HealthCheckSchema = Block({
  type: Type.Optional(HealthCheckTypeSchema),
  'interval-secs': Type.Optional(Type.Number({ exclusiveMinimum: 0, default: 10 })),
  'timeout-secs': Type.Optional(Type.Number({ exclusiveMinimum: 0, default: 5 })),
  'healthy-threshold': Type.Optional(Type.Integer({ minimum: 1, default: 2 })),
  'unhealthy-threshold': Type.Optional(Type.Integer({ minimum: 1, default: 3 })),
});

const breakerKeys = {
  'failure-threshold': Type.Optional(Type.Integer({ minimum: 1, default: 5 })),
  'success-threshold': Type.Optional(Type.Integer({ minimum: 1, default: 2 })),
  'timeout-seconds': Type.Optional(Type.Number({ exclusiveMinimum: 0, default: 30 })),
  'half-open-max-requests': Type.Optional(Type.Integer({ minimum: 1, default: 1 })),
};

/** An agent's breaker (its failures are the agent's own errors and timeouts). */
export const CircuitBreakerSchema = Block(breakerKeys);

/**
 * An upstream's or a route's breaker: also `failure-status-codes`, the 5xx statuses relayed from
 * the application that count as failures (none by default: docs/security.md, "Upstream blame").
 */
export const TargetBreakerSchema = Block({
  ...breakerKeys,
  'failure-status-codes': Type.Optional(Type.Array(Type.Integer({ minimum: 500, maximum: 599 }))),
});

export type HealthCheckConfig = Static<typeof HealthCheckSchema>;
export type CircuitBreakerConfig = Static<typeof TargetBreakerSchema>;

/** The keys the health feature adds to the config (its manifest's `schema`): the route's own breaker too. */
export const HealthConfigKeys = {
  upstream: { 'health-check': Type.Optional(HealthCheckSchema), 'circuit-breaker': Type.Optional(TargetBreakerSchema) },
  route: { 'circuit-breaker': Type.Optional(TargetBreakerSchema) },
};
declare module '../../src/config/schema.ts' {
  interface UpstreamKeys {
    'health-check': (typeof HealthConfigKeys)['upstream']['health-check'];
    'circuit-breaker': (typeof HealthConfigKeys)['upstream']['circuit-breaker'];
  }
  interface RouteKeys {
    'circuit-breaker': (typeof HealthConfigKeys)['route']['circuit-breaker'];
  }
}
