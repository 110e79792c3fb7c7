// The routing feature: the generation's compiled route table (routes sorted by priority and
// specificity by the config compiler, src/routing/match.ts) and each listener's default route.
// The core matches requests against `routeTable` once per request (no plugin lookup).
import { defineFeature, DECORATION, type RouteTable } from '../../src/pipeline/feature.ts';
import type { CompiledRoute } from '../../src/config/compile.ts';

export const routingFeature = defineFeature({
  name: 'routing',
  dependencies: [],
  uses: () => true,
  register(app, host) {
    const defaultRoutes = new Map<string, CompiledRoute>();
    for (const l of host.config.listeners) {
      if (l.defaultRoute) defaultRoutes.set(l.id, host.config.routesById.get(l.defaultRoute)!);
    }
    const table: RouteTable = { routes: host.config.routes, defaultRoutes };
    app.decorate(DECORATION.routeTable, table);
  },
});

export default routingFeature;
