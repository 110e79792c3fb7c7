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

export const CircuitBreakerSchema = Block({
  'failure-threshold': Type.Optional(Type.Integer({ minimum: 1, default: 5 })),
  'success-threshold': Type.Optional(Type.Integer({ minimum: 1, default: 2 })),
  'timeout-seconds': Type.Optional(Type.Number({ exclusiveMinimum: 0, default: 30 })),
  'half-open-max-requests': Type.Optional(Type.Integer({ minimum: 1, default: 1 })),
});

export type HealthCheckConfig = Static<typeof HealthCheckSchema>;
export type CircuitBreakerConfig = Static<typeof CircuitBreakerSchema>;
