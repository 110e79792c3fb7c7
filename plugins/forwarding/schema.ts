// The policy blocks of `upstream "id" { }` (sentinel-reference.md §1.7): the forwarding feature's
// own (upstream TLS, HTTP version) plus the balancing, health and retry features' blocks, as the
// properties the config schema merges into the upstream block.
import { Type } from 'typebox';
import { Block } from '../../src/config/types-helpers.ts';
import { LoadBalancingSchema } from '../balancing/schema.ts';
import { CircuitBreakerSchema, HealthCheckSchema } from '../health/schema.ts';
import { RetryPolicySchema } from '../retry/schema.ts';

export const UpstreamTlsSchema = Block({
  sni: Type.Optional(Type.String()),
  'insecure-skip-verify': Type.Optional(Type.Boolean({ default: false })),
  'client-cert': Type.Optional(Type.String()),
  'client-key': Type.Optional(Type.String()),
  'ca-cert': Type.Optional(Type.String()),
});

/**
 * `http-version { }`: max-version 2 = h2 when TLS ALPN offers it (cleartext stays HTTP/1.1);
 * min-version 2 = h2 only (ALPN offers only h2; cleartext is h2c with prior knowledge). No default
 * for max-version: it is at least min-version (so `min-version 2` alone is valid), else 1.
 */
export const HttpVersionSchema = Block({
  'min-version': Type.Optional(Type.Integer({ minimum: 1, maximum: 2, default: 1 })),
  'max-version': Type.Optional(Type.Integer({ minimum: 1, maximum: 2 })),
  // seconds between keep-alive PINGs on idle HTTP/2 sessions; 0 = off
  'h2-ping-interval': Type.Optional(Type.Integer({ minimum: 0 })),
  // concurrent streams per HTTP/2 session (the peer's lower limit wins)
  'max-h2-streams': Type.Optional(Type.Integer({ minimum: 1 })),
});

/** Properties merged into the `upstream "id" { }` schema by the core. */
export const UpstreamPolicyProperties = {
  'load-balancing': Type.Optional(LoadBalancingSchema),
  'health-check': Type.Optional(HealthCheckSchema),
  'circuit-breaker': Type.Optional(CircuitBreakerSchema),
  'retry-policy': Type.Optional(RetryPolicySchema),
  tls: Type.Optional(UpstreamTlsSchema),
  'http-version': Type.Optional(HttpVersionSchema),
};
