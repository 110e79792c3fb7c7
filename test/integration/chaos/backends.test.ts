// Chaos: the rate-limit backends misbehave while the gateway serves traffic. Redis and Memcached
// flap (killed and restarted several times), Memcached hangs (SIGSTOP) and comes back. Configured behaviour:
// every request is answered 200 or 429 (local fallback, never a 5xx), and once the fault is gone
// the shared backend decides again (bounded waits on the fallback counter).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { RECOVERY_MS, until } from '../../helpers/until.ts';
import { startUpstream, type TestUpstream } from '../../helpers/upstream.ts';
import { gatewayFrom } from '../../helpers/gateway.ts';
import { request } from '../../helpers/http.ts';
import { startRedis, type RedisServer } from '../../helpers/redis.ts';
import { startMemcached, type MemcachedServer } from '../../helpers/memcached.ts';
import { metricValue } from '../../unit/rate-limit/fixtures.ts';

let up: TestUpstream;
let redis: RedisServer;
let mc: MemcachedServer;
let g: Awaited<ReturnType<typeof gatewayFrom>>;

before(async () => {
  up = await startUpstream();
  redis = await startRedis();
  mc = await startMemcached();
  g = await gatewayFrom(`
system { graceful-shutdown-timeout-secs 1 }
listeners { listener "http" { address "127.0.0.1:0" } }
routes {
  route "r" { matches { path-prefix "/r" }; upstream "backend"; filters "redis-rl" }
  route "m" { matches { path-prefix "/m" }; upstream "backend"; filters "mc-rl" }
}
upstreams { upstream "backend" { target "${up.address}" } }
filters {
  filter "redis-rl" { type "rate-limit"; max-rps 50; backend "redis"; redis-url "${redis.url}"; redis-timeout-ms 50 }
  filter "mc-rl" { type "rate-limit"; max-rps 50; backend "memcached"; memcached-url "${mc.url}"; memcached-timeout-ms 50 }
}
`);
});

after(async () => {
  await g?.gw.close();
  await up?.close();
  redis?.resume();
  mc?.resume();
  await redis?.stop();
  await mc?.stop();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const fallbacks = (filter: string) => metricValue(g.gw.metrics, 'sentinel_rate_limit_fallbacks_total', { filter });

/** Sends requests one after another until `stop` resolves; returns every status. */
async function trafficUntil(path: string, stop: Promise<unknown>): Promise<number[]> {
  let done = false;
  void stop.then(() => (done = true));
  const out: number[] = [];
  while (!done && out.length < 5000) out.push((await request(`${g.url()}${path}`, { timeoutMs: 10_000 })).status);
  return out;
}

/**
 * Until a request is decided by the backend again (the fallback counter stays put). Bounded past
 * the breaker's longest cooldown (RECOVERY_MS).
 */
async function untilBackendDecides(path: string, filter: string): Promise<void> {
  await until(
    `${filter}: a request decided by the backend again after the fault was removed`,
    async () => {
      const before = await fallbacks(filter);
      await request(`${g.url()}${path}`);
      return (await fallbacks(filter)) === before;
    },
    RECOVERY_MS,
    100,
  );
}

test('Redis flapping under traffic: only 200/429, then Redis decides again', async () => {
  await untilBackendDecides('/r', 'redis-rl');
  const flap = (async () => {
    for (let i = 0; i < 3; i++) {
      await redis.kill();
      await sleep(300);
      await redis.start();
      await sleep(300);
    }
  })();
  const statuses = await trafficUntil('/r', flap);
  assert.ok(statuses.length > 0);
  assert.deepEqual([...new Set(statuses)].filter((s) => s !== 200 && s !== 429), [], 'never a 5xx while Redis flaps');
  assert.ok((await fallbacks('redis-rl')) > 0, 'the local fallback decided while Redis was down');
  await untilBackendDecides('/r', 'redis-rl');
});

test('Memcached hung (SIGSTOP) under traffic: answers keep coming from the fallback, then Memcached decides again', async () => {
  await untilBackendDecides('/m', 'mc-rl');
  await mc.pause();
  let statuses: number[];
  try {
    statuses = await trafficUntil('/m', sleep(1500));
  } finally {
    mc.resume();
  }
  assert.ok(statuses.length > 0);
  assert.deepEqual([...new Set(statuses)].filter((s) => s !== 200 && s !== 429), [], 'never a 5xx while Memcached hangs');
  assert.ok((await metricValue(g.gw.metrics, 'sentinel_rate_limit_backend_errors_total', { backend: 'memcached', reason: 'timeout' })) >= 1);
  await untilBackendDecides('/m', 'mc-rl');
});

test('Memcached flapping under traffic: only 200/429, then Memcached decides again', async () => {
  await untilBackendDecides('/m', 'mc-rl');
  const before = await fallbacks('mc-rl');
  const flap = (async () => {
    for (let i = 0; i < 4; i++) {
      await mc.kill();
      await sleep(300);
      await mc.start();
      await sleep(300);
    }
  })();
  const statuses = await trafficUntil('/m', flap);
  assert.ok(statuses.length > 0);
  assert.deepEqual([...new Set(statuses)].filter((s) => s !== 200 && s !== 429), [], 'never a 5xx while Memcached flaps');
  assert.ok((await fallbacks('mc-rl')) > before, 'the local fallback decided while Memcached was down');
  await untilBackendDecides('/m', 'mc-rl');
});
