// Issue #17 item 7: two gateways share a Redis-backed limit (max-rps 10, burst 10, key "route",
// redis-timeout-ms 50, local fallback) while Redis is killed and restarted. Before the fix the
// first burst after the kill passed 20 of 20 and, 2.5 s after the restart, 29 of 40 passed
// across the two. Now every burst at one gateway passes at most the local limit (10) plus what
// its bucket refilled during the burst, and once both are back on Redis the shared limit holds.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startUpstream, type TestUpstream } from '../../helpers/upstream.ts';
import { gatewayFrom } from '../../helpers/gateway.ts';
import { request } from '../../helpers/http.ts';
import { startRedis, type RedisServer } from '../../helpers/redis.ts';
import type { Gateway } from '../../../src/server/gateway.ts';
import { metricValue } from '../../unit/rate-limit/fixtures.ts';

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

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const LIMIT = 10;

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
    backend "redis"; redis-url "${redis.url}"; redis-timeout-ms 50; redis-fallback #true
  }
}
`);
  gateways.push(g.gw);
  return g;
}

const fallbacks = (g: Gw) => metricValue(g.gw.metrics, 'sentinel_rate_limit_fallbacks_total');

/** Until a request on the probe route (its own key: the limited route's budget is untouched) is decided by Redis. Bounded. */
async function untilOnRedis(g: Gw, deadlineMs = 20_000): Promise<void> {
  const end = Date.now() + deadlineMs;
  while (Date.now() < end) {
    const before = await fallbacks(g);
    await request(`${g.url()}/probe`);
    if ((await fallbacks(g)) === before) return;
    await sleep(100);
  }
  throw new Error(`gateway still not on Redis after ${deadlineMs} ms`);
}

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
  const started = Date.now();
  const statuses = await Promise.all(gws.map((g) => Promise.all(Array.from({ length: n }, () => request(`${g.url()}/limited`).then((r) => r.status)))));
  const elapsed = Date.now() - started;
  for (const s of statuses.flat()) assert.ok(s === 200 || s === 429, `only 200/429, got ${s}`);
  const afterCount = await Promise.all(gws.map(fallbacks));
  return { ok: statuses.map((s) => s.filter((x) => x === 200).length), elapsed, degraded: afterCount.map((a, i) => a - before[i]!) };
}

/** The local limit over a burst: a full bucket (LIMIT) plus its refill while the burst ran. */
const localBound = (elapsed: number) => LIMIT + Math.ceil((LIMIT * elapsed) / 1000);

test('two gateways, Redis killed and restarted: no burst passes more than the local limit per gateway; the shared limit holds again', async () => {
  const g1 = await start();
  const g2 = await start();
  await Promise.all([untilOnRedis(g1), untilOnRedis(g2)]);

  // Healthy: Redis decides for both (one shared window of 10).
  const healthy = await burst([g1, g2], 20);
  for (const ok of healthy.ok) assert.ok(ok <= localBound(healthy.elapsed), `healthy ${healthy.ok} in ${healthy.elapsed} ms`);
  if (healthy.degraded.every((d) => d === 0)) {
    assert.ok(healthy.ok[0]! + healthy.ok[1]! <= LIMIT * Math.ceil(healthy.elapsed / 1000), `shared ${healthy.ok} in ${healthy.elapsed} ms`);
  }
  const spentAt = Date.now();

  // Killed: the first burst is limited from the first failed call. The buckets were mirrored
  // from Redis's answers ("nothing left"), so only what refilled since the healthy burst passes.
  await redis.kill();
  const down = await burst([g1, g2], 20);
  const sinceSpent = Date.now() - spentAt;
  assert.ok(down.degraded[0]! > 0 && down.degraded[1]! > 0, 'the fallback decided');
  // (Before the fix 20 of 20 passed at once. No flat "< 20": on a loaded machine the bound
  // below is over 20 and the buckets may rightly have refilled that much: a stress run saw 20,20.)
  for (const ok of down.ok) {
    assert.ok(ok <= Math.ceil((LIMIT * (sinceSpent + healthy.elapsed)) / 1000), `first burst after the kill: ${down.ok} (${sinceSpent} ms after the healthy burst)`);
  }

  // Back, 2.5 s later: some decisions are local, some go to Redis again; whichever decides,
  // neither gateway passes more than its local limit (before the fix: 29 of 40 in total).
  await redis.start();
  await sleep(2500);
  const back = await burst([g1, g2], 20);
  for (const ok of back.ok) assert.ok(ok <= localBound(back.elapsed), `2.5 s after the restart: ${back.ok} in ${back.elapsed} ms`);
  assert.ok(back.ok[0]! + back.ok[1]! <= 2 * localBound(back.elapsed));

  // Both on Redis and a window past the last local decision: the shared limit holds again.
  await Promise.all([untilOnRedis(g1), untilOnRedis(g2)]);
  await sleep(1100);
  const shared = await burst([g1, g2], 20);
  for (const ok of shared.ok) assert.ok(ok <= localBound(shared.elapsed), `recovered ${shared.ok}`);
  if (shared.degraded.every((d) => d === 0)) {
    assert.ok(shared.ok[0]! + shared.ok[1]! <= LIMIT * Math.ceil(shared.elapsed / 1000), `shared limit after recovery: ${shared.ok} in ${shared.elapsed} ms`);
    assert.ok(shared.ok[0]! + shared.ok[1]! >= LIMIT, `Redis admits its limit: ${shared.ok}`);
  }
});
