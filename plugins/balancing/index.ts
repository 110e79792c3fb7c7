// The balancing feature: the load-balancing algorithms (algorithms.ts) every upstream group
// picks its targets with. Registered whenever the config has upstreams (round robin is the
// default), after discovery (which feeds the target set the balancers see). Its manifest hands
// the core the `balancing` upstream policy (src/upstream/policies.ts).
import { defineFeature } from '../../src/pipeline/feature.ts';
import { BalancingConfigKeys } from './schema.ts';
import type { BalancingPolicy } from '../../src/upstream/policies.ts';
import { algorithmOf, canonicalAlgorithm, createBalancer, validateLoadBalancing } from './algorithms.ts';

export * from './algorithms.ts';

export const balancingPolicy: BalancingPolicy = {
  algorithmName: (block) => canonicalAlgorithm(block) ?? algorithmOf(block),
  validate: validateLoadBalancing,
  create: createBalancer,
};

export const balancingFeature = defineFeature({
  name: 'balancing',
  dependencies: [],
  after: ['discovery'],
  uses: (config) => config.upstreams.size > 0,
  schema: BalancingConfigKeys,
  explainRoute(config, route) {
    const u = route.upstream ? config.upstreams.get(route.upstream) : undefined;
    if (!u) return [];
    const lb = u['load-balancing'];
    const options = typeof lb === 'object' && lb !== null ? Object.fromEntries(Object.entries(lb).filter(([k, v]) => k !== 'algorithm' && (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean'))) : {};
    return [{ title: 'load balancing', settings: { algorithm: canonicalAlgorithm(lb) ?? algorithmOf(lb), ...(lb === undefined ? { default: true } : {}), ...options } }];
  },
  upstreamPolicies: { balancing: balancingPolicy },
  register(app) {
    app.decorate('balancing', balancingPolicy);
  },
});

export default balancingFeature;
