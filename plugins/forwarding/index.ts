// The forwarding feature: the generation's upstream groups (pools per target, with the
// balancing, health and retry policies those features decorate the instance with) and the route -> group table the forwarder
// (src/server/forwarder.ts, undici dispatch handlers) sends admitted requests through. A group
// adopts the per-target state of the same upstream in the generation being replaced.
import { defineFeature, DECORATION, previousDecoration, type ForwardingRuntime } from '../../src/pipeline/feature.ts';
import { UpstreamGroup } from '../../src/upstream/group.ts';
import { collectTargets } from '../../src/upstream/address.ts';
import type { UpstreamPolicies } from '../../src/upstream/policies.ts';
import { ForwardingConfigKeys } from './schema.ts';
import { validateForwardingUpstream } from './config-checks.ts';

export const forwardingFeature = defineFeature({
  name: 'forwarding',
  dependencies: ['balancing', 'health', 'retry'],
  after: ['discovery'],
  uses: (config) => config.upstreams.size > 0,
  schema: ForwardingConfigKeys,
  validators: { upstream: validateForwardingUpstream },
  explainRoute(config, route) {
    const u = route.upstream ? config.upstreams.get(route.upstream) : undefined;
    if (!u) return [];
    const t = u.timeouts;
    return [
      {
        title: `upstream "${u.id}"`,
        settings: {
          targets: collectTargets(u).map((x) => (x.weight === 1 ? x.address : `${x.address} weight=${x.weight}`)),
          ...(u.discovery !== undefined ? { discovery: true } : {}),
          tls: u.tls !== undefined,
          timeouts: `connect ${t?.['connect-secs'] ?? 10} s, request ${t?.['request-secs'] ?? 60} s, read ${t?.['read-secs'] ?? 30} s, write ${t?.['write-secs'] ?? 30} s`,
          ...(route.timeoutMs !== undefined ? { 'route timeout-secs': route.timeoutMs / 1000 } : {}),
        },
      },
    ];
  },
  async register(app, host) {
    const { config, services } = host;
    const previous = previousDecoration<ForwardingRuntime>(host, DECORATION.forwarding);
    // registered before this plugin (its dependencies): their policies, injected into every group
    const health = app.getDecorator<Pick<UpstreamPolicies, 'breakers' | 'health'>>('health');
    const policies: UpstreamPolicies = {
      balancing: app.getDecorator<UpstreamPolicies['balancing']>('balancing'),
      breakers: health.breakers,
      health: health.health,
      retry: app.getDecorator<UpstreamPolicies['retry']>('retry'),
    };
    const groups = new Map<string, UpstreamGroup>();
    host.onDispose(async () => {
      await Promise.allSettled([...groups.values()].map((g) => g.close()));
    });
    for (const [id, raw] of config.upstreams) {
      // A route's own circuit-breaker block gives that route a breaker per target of its upstream.
      const routeCbs = new Map(config.routes.filter((r) => r.upstream === id && r.raw['circuit-breaker']).map((r) => [r.id, r.raw['circuit-breaker']!]));
      const prev = previous?.groups.get(id);
      groups.set(id, new UpstreamGroup({ id, config: raw, baseDir: config.baseDir, services, policies, routeCircuitBreakers: routeCbs, ...(prev ? { previous: prev } : {}) }));
    }
    const routeGroups = new Map<string, UpstreamGroup>();
    for (const r of config.routes) {
      const g = r.upstream ? groups.get(r.upstream) : undefined;
      if (g) routeGroups.set(r.id, g.forRoute(r.id));
    }
    // Discovery answers before the generation serves (each bounded; failures are logged).
    await Promise.all([...groups.values()].map((g) => g.ready()));
    const runtime: ForwardingRuntime = { groups, routeGroups };
    app.decorate(DECORATION.forwarding, runtime);
  },
});

export default forwardingFeature;
