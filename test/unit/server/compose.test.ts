// compose(): what the composition root collects from the manifests (upstream policies, listener
// TLS, config validators, the config language's keys, filter types and compile steps), in
// manifest order, and the programming errors it refuses (a contribution missing or given twice).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Type } from 'typebox';
import { compose, defineFeature, type FeatureDefinition, type FeatureManifest } from '../../../src/pipeline/feature.ts';
import { FEATURES, COMPOSITION } from '../../../src/features.ts';
import { loadConfigText } from '../../../src/config/load.ts';
import { ConfigError } from '../../../src/config/diagnostics.ts';
import type { RawUpstream } from '../../../src/config/schema.ts';
import type { ConfigCompileSteps } from '../../../src/config/compile.ts';
import { balancingFeature } from '../../../plugins/balancing/index.ts';
import { healthFeature } from '../../../plugins/health/index.ts';
import { retryFeature } from '../../../plugins/retry/index.ts';
import { tlsFeature } from '../../../plugins/tls/index.ts';
import { cachingFeature } from '../../../plugins/caching/index.ts';
import { staticFilesFeature } from '../../../plugins/static-files/index.ts';

function feature(name: string, extra: Partial<FeatureDefinition> = {}): FeatureManifest {
  return defineFeature({ name, dependencies: [], uses: () => false, register() {}, ...extra });
}
/** the features every composition needs: the upstream policies */
const POLICIES = [balancingFeature, healthFeature, retryFeature];

test('compose: a missing upstream policy is refused, naming it', () => {
  assert.throws(() => compose([]), /no feature contributes the upstream policy "balancing"/);
  assert.throws(() => compose([balancingFeature, healthFeature]), /no feature contributes the upstream policy "retry"/);
});

test('compose: a contribution given twice is refused', () => {
  const again = feature('balancing-2', { upstreamPolicies: balancingFeature.upstreamPolicies! });
  assert.throws(() => compose([...POLICIES, again]), /upstream policy "balancing" is contributed twice/);
  assert.throws(() => compose([...POLICIES, tlsFeature, feature('tls-2', { listenerTls: tlsFeature.listenerTls! })]), /more than one feature contributes listener TLS/);
  assert.throws(() => compose([...POLICIES, feature('x'), feature('x')]), /two features are named "x"/);
  assert.throws(() => compose([...POLICIES, cachingFeature, feature('cache-2', { schema: { route: { cache: cachingFeature.schema!.route!.cache! } } })]), /config key route > cache is given by both "caching" and "cache-2"/);
  assert.throws(() => compose([...POLICIES, feature('a', { filterTypes: { f: {} } }), feature('b', { filterTypes: { f: {} } })]), /filter type "f" is given by both "a" and "b"/);
});

test('compose: a feature cannot redefine a core key', () => {
  // `upstream` is the core's route key; the cast stands for a feature that declared it anyway
  const bad = feature('bad', { schema: { route: { upstream: Type.Optional(Type.Number()) } } as never });
  assert.throws(() => compose([...POLICIES, bad]), /config key route > upstream is the core's/);
});

test('compose: without a listener TLS feature, starting TLS says so', () => {
  const c = compose(POLICIES);
  assert.throws(() => c.listenerTls({} as never), /no feature contributes listener TLS/);
  assert.equal(compose([...POLICIES, tlsFeature]).listenerTls, tlsFeature.listenerTls);
});

test('compose: the upstream policies are the manifests\' own, and the core upstream checks use them', () => {
  const c = compose(POLICIES);
  assert.equal(c.upstreamPolicies.balancing, balancingFeature.upstreamPolicies!.balancing);
  assert.equal(c.upstreamPolicies.retry, retryFeature.upstreamPolicies!.retry);
  const u = { id: 'u', target: [{ address: '127.0.0.1:1' }], 'load-balancing': 'no-such-algorithm' } as RawUpstream;
  const errors = c.validators.upstream!(u, '/');
  assert.equal(errors.length, 1, errors.join('; '));
  assert.match(errors[0]!, /^load-balancing: /);
});

test('compose: every feature\'s validators run, in manifest order', () => {
  const said = (who: string) => ({ filter: () => [{ severity: 'error' as const, path: who, message: `from ${who}` }], top: () => [{ severity: 'warning' as const, path: who, message: `top ${who}` }] });
  const c = compose([...POLICIES, feature('a', { validators: said('a') }), feature('b', { validators: said('b') })]);
  assert.deepEqual(c.validators.filter!({ id: 'f', type: 't', config: {} }).map((d) => d.message), ['from a', 'from b']);
  const r = compose([...POLICIES, feature('b', { validators: said('b') }), feature('a', { validators: said('a') })]);
  assert.deepEqual(r.validators.top!({}, '/').map((d) => d.message), ['top b', 'top a']);
});

const CACHED_ROUTE = `
listeners { listener "l" { address "127.0.0.1:0" } }
upstreams { upstream "u" { target "127.0.0.1:1" } }
routes {
  route "r" {
    matches { path-prefix "/"; }
    upstream "u"
    cache { enabled #true; default-ttl-secs 7; }
  }
}
cache { max-size "1MB" }
`;

test('compose: the features\' schema keys and compile steps make the config language', () => {
  const withCache = compose([...POLICIES, cachingFeature]);
  assert.ok('cache' in withCache.language.schemas.route.properties, 'route > cache is in the route schema');
  assert.ok('cache' in withCache.language.schemas.policies.properties, 'policies > cache too');
  assert.ok('cache' in withCache.language.schemas.config.properties, 'and the top-level cache');
  const config = loadConfigText(CACHED_ROUTE, { language: withCache.language });
  assert.equal(config.routes[0]!.cache?.defaultTtlSecs, 7, 'the caching compile step normalised the route cache');
  assert.equal(config.cache.maxSize, 1024 * 1024, 'and the storage');
  // the same text in a language without the caching feature: the top-level node is unknown
  const without = compose(POLICIES);
  assert.ok(!('cache' in without.language.schemas.config.properties));
  assert.throws(
    () => loadConfigText(CACHED_ROUTE, { language: without.language }),
    (err: unknown) => err instanceof ConfigError && err.diagnostics.some((d) => d.severity === 'error' && d.message.startsWith('unknown key "cache"')),
  );
});

test('compose: a route another feature answers (static files) needs no upstream, and the cache step sees it', () => {
  const text = `
listeners { listener "l" { address "127.0.0.1:0" } }
routes {
  route "s" {
    matches { path-prefix "/"; }
    static-files { root "."; }
    cache { enabled #true; }
  }
}
`;
  const c = compose([...POLICIES, cachingFeature, staticFilesFeature]);
  const config = loadConfigText(text, { language: c.language, baseDir: '/srv' });
  const route = config.routes[0]!;
  assert.equal(route.serviceType, 'static');
  assert.equal(route.staticFiles?.root, '/srv');
  assert.equal(route.cache, undefined, 'not cached: files carry their own validators');
  assert.ok(config.warnings.some((w) => w.path === 'routes > route "s" > cache' && /static-files route/.test(w.message)));
  // without the static-files feature nothing answers the route: it needs an upstream
  const bare = compose([...POLICIES, cachingFeature]);
  assert.throws(() => loadConfigText(text, { language: bare.language }), /needs an upstream/);
});

test('compose: compile steps run in manifest order', () => {
  const step = (who: string): ConfigCompileSteps => ({
    route(_r, ctx) {
      ctx.diagnostics.push({ severity: 'warning', path: who, message: `step ${who}` });
      return {};
    },
  });
  const text = `listeners { listener "l" { address "127.0.0.1:0" } }\nroutes { route "h" { builtin-handler "health" } }`;
  const order = (list: FeatureManifest[]) => loadConfigText(text, { language: compose([...POLICIES, ...list]).language }).warnings.filter((w) => w.message.startsWith('step ')).map((w) => w.path);
  assert.deepEqual(order([feature('a', { compile: step('a') }), feature('b', { compile: step('b') })]), ['a', 'b']);
  assert.deepEqual(order([feature('b', { compile: step('b') }), feature('a', { compile: step('a') })]), ['b', 'a']);
});

test('the composition root: every feature once, in FEATURES order, every filter type Sentinel implements here', () => {
  assert.deepEqual(COMPOSITION.features.map((f) => f.name), FEATURES.map((f) => f.name));
  assert.deepEqual(Object.keys(COMPOSITION.language.filterTypes).sort(), ['agent', 'compress', 'headers', 'plugin', 'rate-limit']);
  for (const key of ['agents', 'waf', 'rate-limits', 'cache']) assert.ok(key in COMPOSITION.language.schemas.config.properties, `top-level ${key}`);
  assert.ok('tls' in COMPOSITION.language.schemas.listener.properties);
  for (const key of ['load-balancing', 'health-check', 'circuit-breaker', 'retry-policy', 'tls', 'http-version']) assert.ok(key in COMPOSITION.language.schemas.upstream.properties, `upstream ${key}`);
  assert.ok('tracing' in COMPOSITION.language.schemas.observability.properties);
});
