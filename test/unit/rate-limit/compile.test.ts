import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compileRateLimitFilter, compileRateLimits, validateRateLimitFilter, validateRateLimits } from '../../../plugins/rate-limit/compile.ts';
import { redisClientPlan } from '../../../plugins/rate-limit/store-redis.ts';
import { memcachedServers } from '../../../plugins/rate-limit/store-memcached.ts';
import type { RateLimitsConfig } from '../../../plugins/rate-limit/schema.ts';
import { decodeFilter, decodeRateLimits } from './fixtures.ts';

test('defaults follow Sentinel (decoded from KDL by the project decoder)', () => {
  const { config, diagnostics } = decodeFilter('');
  assert.deepEqual(diagnostics, []);
  const s = compileRateLimitFilter('f', config);
  assert.deepEqual(s, {
    id: 'f',
    maxRps: 100,
    burst: 10,
    key: { kind: 'client-ip' },
    prefixes: { v4: 32, v6: 64 },
    onLimit: 'reject',
    maxDelayMs: 5000,
    statusCode: 429,
    message: 'Rate limit exceeded',
    maxKeys: 100000,
    backend: { kind: 'local' },
  });
});

test('a full redis filter block', () => {
  const { config, diagnostics } = decodeFilter(`
    max-rps 50; burst 5; key "header:X-Api-Key"; on-limit "delay"; max-delay-ms 200
    status-code 503; message "slow down"; max-keys 10
    backend "redis"; redis-url "redis://10.0.0.1:6380/2"; redis-prefix "gw:"; redis-pool-size 2
    redis-timeout-ms 20; redis-fallback #false`);
  assert.deepEqual(diagnostics, []);
  const s = compileRateLimitFilter('api', config)!;
  assert.deepEqual(s.key, { kind: 'header', name: 'x-api-key' });
  assert.equal(s.onLimit, 'delay');
  assert.deepEqual(s.backend, {
    kind: 'redis',
    prefix: 'gw:',
    fallback: false,
    url: 'redis://10.0.0.1:6380/2',
    mode: 'standalone',
    sentinelMaster: 'mymaster',
    poolSize: 2,
    timeoutMs: 20,
  });
});

test('a memcached filter block', () => {
  const { config } = decodeFilter(`backend "memcached"; memcached-url "memcache://a:11211,b"; memcached-ttl-secs 5; memcached-fallback-local #false`);
  const s = compileRateLimitFilter('m', config)!;
  assert.deepEqual(s.backend, { kind: 'memcached', prefix: 'sentinel:ratelimit:', fallback: false, url: 'memcache://a:11211,b', poolSize: 10, timeoutMs: 50, ttlSecs: 5 });
});

test('invalid keys and backends are config errors naming the KDL path', () => {
  const rows: Array<[string, string, RegExp]> = [
    ['key "cookie"', 'filters > filter "f" > key', /invalid key "cookie": expected one of/],
    ['key "header:"', 'filters > filter "f" > key', /header:<Name> needs a header name/],
    ['backend "redis"; redis-url "http://x"', 'filters > filter "f" > redis-url', /unsupported scheme "http:"/],
    ['backend "redis"; redis-url "redis://a,redis://b"', 'filters > filter "f" > redis-url', /need redis-mode "cluster" or "sentinel"/],
    ['backend "memcached"; memcached-url "a:99999"', 'filters > filter "f" > memcached-url', /invalid port/],
  ];
  for (const [body, path, re] of rows) {
    const { config } = decodeFilter(body);
    const d = validateRateLimitFilter('f', config);
    assert.equal(d.length, 1, body);
    assert.equal(d[0]!.severity, 'error');
    assert.equal(d[0]!.path, path);
    assert.match(d[0]!.message, re);
    assert.equal(compileRateLimitFilter('f', config), undefined);
  }
});

test('the schema itself rejects wrong types and unknown on-limit/backends', () => {
  const rows: Array<[string, RegExp]> = [
    ['on-limit "drop"', /invalid value "drop": expected one of reject, delay, log-only/],
    ['backend "postgres"', /expected one of local, redis, memcached/],
    ['max-rps 0', /must be > 0/],
    ['redis-fallback "true"', /KDL 2.0 strings are not booleans/],
  ];
  for (const [body, re] of rows) {
    const { diagnostics } = decodeFilter(body);
    assert.ok(diagnostics.some((d) => d.severity === 'error' && re.test(d.message)), `${body}: ${JSON.stringify(diagnostics)}`);
  }
});

test('rate-limits block: defaults, global, key variants, invalid key', () => {
  const a = decodeRateLimits('default-rps 100; default-burst 20; key "ip"; global { max-rps 1000 }');
  assert.deepEqual(a.diagnostics, []);
  assert.deepEqual(compileRateLimits(a.config as RateLimitsConfig), {
    perKey: { maxRps: 100, burst: 20, key: { kind: 'client-ip' } },
    global: { maxRps: 1000, burst: 10, key: { kind: 'global' } },
    prefixes: { v4: 32, v6: 64 },
  });
  const b = decodeRateLimits('global { max-rps 5; key "header:X-Custom-Key" }');
  assert.deepEqual(compileRateLimits(b.config as RateLimitsConfig), { global: { maxRps: 5, burst: 10, key: { kind: 'header', name: 'x-custom-key' } }, prefixes: { v4: 32, v6: 64 } });
  const p = decodeRateLimits('default-rps 1; client-ipv6-prefix 56; client-ipv4-prefix 24');
  assert.deepEqual(compileRateLimits(p.config as RateLimitsConfig)?.prefixes, { v4: 24, v6: 56 });
  const c = decodeRateLimits('default-rps 1; key "user"');
  const d = validateRateLimits(c.config as RateLimitsConfig);
  assert.equal(d[0]!.path, 'rate-limits > key');
  assert.match(d[0]!.message, /invalid key "user"/);
  const e = decodeRateLimits('global { burst 3 }');
  assert.ok(e.diagnostics.some((x) => /missing required "max-rps"/.test(x.message)));
  assert.equal(compileRateLimits(undefined), undefined);
});

test('redisClientPlan: standalone, cluster, sentinel', () => {
  assert.deepEqual(redisClientPlan({ url: 'redis://127.0.0.1:6379', mode: 'standalone', sentinelMaster: 'm' }), { kind: 'standalone', url: 'redis://127.0.0.1:6379' });
  assert.deepEqual(redisClientPlan({ url: 'redis://:s3cret@n1:7000, n2:7001,redis://n3', mode: 'cluster', sentinelMaster: 'm' }), {
    kind: 'cluster',
    nodes: [
      { host: 'n1', port: 7000 },
      { host: 'n2', port: 7001 },
      { host: 'n3', port: 6379 },
    ],
    tls: false,
    password: 's3cret',
  });
  assert.deepEqual(redisClientPlan({ url: 'rediss://user:pw@s1:26379/3,s2:26379', mode: 'sentinel', sentinelMaster: 'cache' }), {
    kind: 'sentinel',
    sentinels: [
      { host: 's1', port: 26379 },
      { host: 's2', port: 26379 },
    ],
    name: 'cache',
    db: 3,
    tls: true,
    password: 'pw',
    username: 'user',
  });
  assert.deepEqual(redisClientPlan({ url: 'redis://[::1]:6390', mode: 'cluster', sentinelMaster: 'm' }), { kind: 'cluster', nodes: [{ host: '::1', port: 6390 }], tls: false });
});

test('memcachedServers parses comma lists with optional scheme', () => {
  assert.deepEqual(memcachedServers('memcache://127.0.0.1:11211'), ['127.0.0.1:11211']);
  assert.deepEqual(memcachedServers('memcached://a:1, b ,[::1]:2'), ['a:1', 'b:11211', '[::1]:2']);
  assert.throws(() => memcachedServers(' , '), /memcached-url is empty/);
  assert.throws(() => memcachedServers('a b'), /invalid memcached server "a b"/);
});
