// Issue #17 item 7: two gateways share a Redis-backed limit (max-rps 10, burst 10, key "route",
// local fallback) while Redis is killed and restarted. Before the fix the first burst after the
// kill passed 20 of 20 and, 2.5 s after the restart, 29 of 40 passed across the two. Now every
// burst at one gateway passes at most the local limit (10), and once both are back on Redis the
// shared limit holds.
//
// The local side (fallback buckets, breaker, the recovery bound) reads Date.now(), taken when a
// gateway starts: the test holds the wall clock and moves it by hand, so the local bounds are
// exact however slow the machine is (on the real clock a slow burst refilled the buckets and a
// bound that grew with the burst's length checked nothing). Redis decides on its own real clock
// (TIME): its share is bounded by its window, LIMIT per started second of a burst.
import { test, before, after, mock } from 'node:test';
import assert from 'node:assert/strict';
import { startUpstream, type TestUpstream } from '../../helpers/upstream.ts';
import { gatewayFrom } from '../../helpers/gateway.ts';
import { request } from '../../helpers/http.ts';
import { startRedis, type RedisServer } from '../../helpers/redis.ts';
import type { Gateway } from '../../../src/server/gateway.ts';
import { metricValue } from '../../unit/rate-limit/fixtures.ts';
import { until } from '../../helpers/until.ts';
import { Redis } from 'ioredis';

let up: TestUpstream;
let redis: RedisServer;
const gateways: Gateway[] = [];

before(async () => {
  up = await startUpstream();
  redis = await startRedis();
});

after(async () => {
  for (const g of gateways) await g.close().catch(() => undefined);
  await up.close();
  await redis.stop();
});

const LIMIT = 10;
/** the limited route's key in Redis: redis-prefix (default), filter id, the route's key */
const KEY = 'sentinel:ratelimit:rl:r:limited';

type Gw = Awaited<ReturnType<typeof gatewayFrom>>;

async function start(): Promise<Gw> {
  const g = await gatewayFrom(`
system { graceful-shutdown-timeout-secs 1 }
listeners { listener "http" { address "127.0.0.1:0" } }
routes {
  route "limited" { matches { path-prefix "/limited" }; upstream "backend"; filters "rl" }
  route "probe" { matches { path-prefix "/probe" }; upstream "backend"; filters "rl" }
}
upstreams { upstream "backend" { target "${up.address}" } }
filters {
  filter "rl" {
    type "rate-limit"
    max-rps ${LIMIT}; burst 10; key "route"
    backend "redis"; redis-url "${redis.url}"; redis-timeout-ms 2000; redis-fallback #true
  }
}
`);
  gateways.push(g.gw);
  return g;
}

const fallbacks = (g: Gw) => metricValue(g.gw.metrics, 'sentinel_rate_limit_fallbacks_total');

/** The probe route's decision (its own key: the limited route's budget is untouched) came from Redis. */
async function probeOnRedis(g: Gw): Promise<boolean> {
  const before = await fallbacks(g);
  await request(`${g.url()}/probe`);
  return (await fallbacks(g)) === before;
}

/**
 * Until a request at `g` is decided by Redis. The held clock is moved a second between tries:
 * an open breaker lets a probe through only once its cooldown has passed on that clock.
 */
const untilOnRedis = (g: Gw) =>
  until(
    'the gateway deciding on Redis',
    async () => {
      if (await probeOnRedis(g)) return true;
      mock.timers.tick(1000);
      return false;
    },
    20_000,
  );

/** Until a request on the limited route is refused by Redis: the local bucket then mirrors "nothing left". */
const untilRedisRefuses = (g: Gw) =>
  until('a 429 from Redis on the limited route', async () => {
    const before = await fallbacks(g);
    const status = (await request(`${g.url()}/limited`)).status;
    return status === 429 && (await fallbacks(g)) === before;
  });

interface Burst {
  ok: number[];
  /** ms the whole burst took */
  elapsed: number;
  /** local decisions during the burst, per gateway */
  degraded: number[];
}

/** `n` requests per gateway to the limited route, all at once; counts 200s per gateway. */
async function burst(gws: Gw[], n: number): Promise<Burst> {
  const before = await Promise.all(gws.map(fallbacks));
  const started = performance.now(); // real time: Date is held
  const statuses = await Promise.all(gws.map((g) => Promise.all(Array.from({ length: n }, () => request(`${g.url()}/limited`).then((r) => r.status)))));
  const elapsed = Math.round(performance.now() - started);
  for (const s of statuses.flat()) assert.ok(s === 200 || s === 429, `only 200/429, got ${s}`);
  const afterCount = await Promise.all(gws.map(fallbacks));
  return { ok: statuses.map((s) => s.filter((x) => x === 200).length), elapsed, degraded: afterCount.map((a, i) => a - before[i]!) };
}

/** A command or two to the test's Redis on a connection of its own. */
async function withRedis<T>(fn: (c: Redis) => Promise<T>): Promise<T> {
  const client = new Redis(redis.port, '127.0.0.1', { maxRetriesPerRequest: 0 });
  try {
    return await fn(client);
  } finally {
    client.disconnect();
  }
}

/** What Redis's sliding window (real clock) can admit in a burst that took `elapsed` ms: LIMIT a started second. */
const redisBound = (elapsed: number) => LIMIT * Math.ceil(Math.max(elapsed, 1) / 1000);
/** What Redis's window can admit beyond its first LIMIT in a burst that took `elapsed` ms (0 under a second). */
const redisRefill = (elapsed: number) => LIMIT * Math.floor(elapsed / 1000);

test('two gateways, Redis killed and restarted: no burst passes more than the local limit per gateway; the shared limit holds again', async () => {
  mock.timers.enable({ apis: ['Date'], now: Date.now() });
  try {
    const g1 = await start();
    const g2 = await start();
    await Promise.all([untilOnRedis(g1), untilOnRedis(g2)]);

    // Healthy: Redis decides for both (one shared window of 10).
    const healthy = await burst([g1, g2], 20);
    assert.deepEqual(healthy.degraded, [0, 0], 'Redis decided every request');
    const sum = healthy.ok[0]! + healthy.ok[1]!;
    assert.ok(sum >= LIMIT && sum <= redisBound(healthy.elapsed), `shared ${healthy.ok} in ${healthy.elapsed} ms`);
    assert.equal(await withRedis((c) => c.exists(KEY)), 1, `the window's key is ${KEY}`);
    // Each gateway's last answer from Redis says "nothing left" (a slow burst may end on an admission).
    await Promise.all([untilRedisRefuses(g1), untilRedisRefuses(g2)]);

    // Killed: every decision is local. The buckets were mirrored from Redis's answers ("nothing
    // left") and the clock has not moved: nothing passes (before the fix 20 of 20 passed at once).
    await redis.kill();
    const down = await burst([g1, g2], 20);
    assert.deepEqual(down.degraded, [20, 20], 'the fallback decided');
    assert.deepEqual(down.ok, [0, 0], 'first burst after the kill');

    // Back, 2.5 s later on the gateways' clock (the buckets full again, the breaker's cooldown
    // over): Redis may or may not be reached yet (ioredis reconnects on its own timer); some
    // decisions are local, some may go to Redis again; whichever decides, neither gateway passes
    // more than its local limit (before the fix: 29 of 40 in total).
    await redis.start();
    // ioredis reconnects on its own backoff (up to 2 s): wait until both gateways are connected
    // again, so the burst's first request (the breaker's probe) can reach Redis.
    await withRedis((c) => until('both gateways connected to Redis', async () => String(await c.client('LIST')).trim().split('\n').length > 2));
    mock.timers.tick(2500);
    const back = await burst([g1, g2], 20);
    for (const ok of back.ok) assert.ok(ok <= LIMIT + redisRefill(back.elapsed), `2.5 s after the restart: ${back.ok} in ${back.elapsed} ms`);

    // Both on Redis, a window past the last local decision on the gateways' clock, and Redis's
    // own window (real clock) empty: the shared limit holds again.
    await Promise.all([untilOnRedis(g1), untilOnRedis(g2)]);
    mock.timers.tick(1100);
    // the key expires one window after its last admission (PEXPIRE in the script)
    await withRedis((c) => until("Redis's window for the limited route to empty", async () => (await c.exists(KEY)) === 0));
    const shared = await burst([g1, g2], 20);
    assert.deepEqual(shared.degraded, [0, 0], 'Redis decided every request');
        const total = shared.ok[0]! + shared.ok[1]!;
    assert.ok(total >= LIMIT && total <= redisBound(shared.elapsed), `shared limit after recovery: ${shared.ok} in ${shared.elapsed} ms`);
  } finally {
    mock.timers.reset();
  }
});
