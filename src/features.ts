// The composition root: every feature the gateway knows, as manifests. The only src/ module
// that imports plugins/ (test/unit/architecture/layers.test.ts checks it). COMPOSITION collects
// what the manifests contribute (config validators, upstream policies, listener TLS); the
// gateway hands the features to each generation, which registers the ones its config uses.
import { compose, type Composition, type FeatureManifest } from './pipeline/feature.ts';
import { tlsFeature } from '../plugins/tls/index.ts';
import { routingFeature } from '../plugins/routing/index.ts';
import { metricsFeature } from '../plugins/metrics/index.ts';
import { discoveryFeature } from '../plugins/discovery/index.ts';
import { balancingFeature } from '../plugins/balancing/index.ts';
import { healthFeature } from '../plugins/health/index.ts';
import { retryFeature } from '../plugins/retry/index.ts';
import { forwardingFeature } from '../plugins/forwarding/index.ts';
import { websocketFeature } from '../plugins/websocket/index.ts';
import { rateLimitFeature } from '../plugins/rate-limit/index.ts';
import { agentsFeature } from '../plugins/agents/index.ts';
import { bodyInspectionFeature } from '../plugins/body-inspection/index.ts';
import { headersFeature } from '../plugins/headers/index.ts';
import { pluginFilterFeature } from '../plugins/plugin-filter/index.ts';
import { cachingFeature } from '../plugins/caching/index.ts';
import { staticFilesFeature } from '../plugins/static-files/index.ts';
import { compressFeature } from '../plugins/compress/index.ts';
import { builtinsFeature } from '../plugins/builtins/index.ts';
import { tracingFeature } from '../plugins/tracing/index.ts';

/**
 * In the order a generation registers them when nothing else decides (dependencies and `after`
 * come first). The per-route filter order is the route's `filters` list, not this order; the
 * global rate limit runs before a route's own filters.
 */
export const FEATURES: readonly FeatureManifest[] = [
  tlsFeature,
  metricsFeature,
  tracingFeature,
  routingFeature,
  discoveryFeature,
  balancingFeature,
  healthFeature,
  retryFeature,
  forwardingFeature,
  websocketFeature,
  rateLimitFeature,
  agentsFeature,
  bodyInspectionFeature,
  headersFeature,
  compressFeature,
  pluginFilterFeature,
  cachingFeature,
  staticFilesFeature,
  builtinsFeature,
];

/** The manifests' contributions, collected once (src/pipeline/feature.ts `compose`). */
export const COMPOSITION: Composition = compose(FEATURES);
