// The balancing feature's block of an upstream: `load-balancing` (sentinel-reference.md §1.7).
// The other upstream policy blocks live with their features (health, retry, forwarding).
import { Type, type Static } from 'typebox';
import { Block, Duration, Enum } from '../../src/config/types-helpers.ts';

/**
 * `load-balancing "<alg>" { ... }` options: cookie-* and fallback for sticky, hash-key
 * ("client-ip" | "path" | "header:Name" | "cookie:name") and virtual-nodes for the hash algorithms.
 */
export const LoadBalancingBlockSchema = Block(
  {
    algorithm: Type.String(),
    'cookie-name': Type.Optional(Type.String({ default: 'SERVERID' })),
    'cookie-ttl': Type.Optional(Duration),
    'cookie-path': Type.Optional(Type.String({ default: '/' })),
    'cookie-secure': Type.Optional(Type.Boolean()),
    'cookie-same-site': Type.Optional(Enum(['lax', 'strict', 'none'] as const)),
    fallback: Type.Optional(Type.String()),
    'hash-key': Type.Optional(Type.String()),
    'virtual-nodes': Type.Optional(Type.Integer({ minimum: 1 })),
  },
  { argKey: 'algorithm' },
);

export type LoadBalancingOptions = Static<typeof LoadBalancingBlockSchema>;

/** `load-balancing "round_robin"` or `load-balancing "sticky" { cookie-name ... }` */
export const LoadBalancingSchema = Type.Union([Type.String(), LoadBalancingBlockSchema], { default: 'round_robin' });

/** The keys the balancing feature adds to the config (its manifest's `schema`). */
export const BalancingConfigKeys = { upstream: { 'load-balancing': Type.Optional(LoadBalancingSchema) } };
declare module '../../src/config/schema.ts' {
  interface UpstreamKeys {
    'load-balancing': (typeof BalancingConfigKeys)['upstream']['load-balancing'];
  }
}
