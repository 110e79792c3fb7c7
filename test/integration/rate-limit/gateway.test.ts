// End to end through the real gateway (startGateway): KDL config in, HTTP requests to a real
// upstream on 127.0.0.1, rate-limit responses, metrics, audit log, reload, and two gateways
// sharing one Redis (with Redis killed while they run).
import { test, before, after, mock } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startUpstream, type TestUpstream } from '../../helpers/upstream.ts';
import { gatewayFrom } from '../../helpers/gateway.ts';
import { request } from '../../helpers/http.ts';
import { until } from '../../helpers/until.ts';
import { bucketMismatches, slidingWindowMismatches, timedCall, type TimedCall } from '../../helpers/rate-limit.ts';
import { startRedis, type RedisServer } from '../../helpers/redis.ts';
import type { Gateway } from '../../../src/server/gateway.ts';

let up: TestUpstream;
let redis: RedisServer;
const gateways: Gateway[] = [];
const dir = mkdtempSync(join(tmpdir(), 'sentinel-rl-'));

before(async () => {
  up = await startUpstream();
  redis = await startRedis();
});

after(async () => {
  for (const g of gateways) await g.close().catch(() => undefined);
  await up.close();
  await redis.stop();
  rmSync(dir, { recursive: true, force: true });
});

function config(filterBody: string, extra = ''): string {
  return `
system { graceful-shutdown-timeout-secs 1 }
listeners { listener "http" { address "127.0.0.1:0" } }
routes {
  route "limited" { matches { path-prefix "/limited" }; upstream "backend"; filters "rl" }
  route "open" { matches { path-prefix "/open" }; upstream "backend" }
}
upstreams { upstream "backend" { target "${up.address}" } }
filters { filter "rl" { type "rate-limit"; ${filterBody} } }
${extra}
`;
}

async function start(kdl: string) {
  const g = await gatewayFrom(kdl);
  gateways.push(g.gw);
  return g;
}

async function burst(url: string, n: number, headers: Record<string, string> = {}): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < n; i++) out.push((await request(url, { headers })).status);
  return out;
}

function count(statuses: number[], s: number): number {
  return statuses.filter((x) => x === s).length;
}

test('local limit: 429 with headers and body, allowed responses carry X-RateLimit-*, metrics and audit', async () => {
  const audit = join(dir, 'audit.log');
  // The local bucket reads Date.now() (the function, taken when the gateway starts): with the
  // wall clock held still the counts are exact (3 at once, then nothing until a token refills in
  // 333 ms) however slow the machine is; on the real clock a slow loop refilled tokens.
  const now = 1_800_000_000_000;
  mock.timers.enable({ apis: ['Date'], now });
  const replies: Awaited<ReturnType<typeof request>>[] = [];
  let refilled: number[];
  let started: Awaited<ReturnType<typeof start>>;
  try {
    started = await start(config('max-rps 3; burst 0', `observability { logging { audit-log { file "${audit}" } } }`));
    const { url } = started;
    for (let i = 0; i < 8; i++) replies.push(await request(`${url()}/limited/a`));
    mock.timers.tick(334); // one token's worth
    refilled = await burst(`${url()}/limited/a`, 2);
  } finally {
    mock.timers.reset();
  }
  const { gw, url } = started;
  assert.deepEqual(replies.map((r) => r.status), [200, 200, 200, 429, 429, 429, 429, 429]);
  assert.deepEqual(refilled, [200, 429]);
  const first = replies[0]!;
  assert.equal(first.headers['x-ratelimit-limit'], '3');
  assert.equal(first.headers['x-ratelimit-remaining'], '2');
  assert.equal(first.headers['x-ratelimit-reset'], String(now / 1000 + 1));
  const rejected = 6; // five of the eight, and one after the refill
  const limited = replies[3]!;
  assert.equal(limited.body, 'Rate limit exceeded');
  assert.equal(limited.headers['x-ratelimit-limit'], '3');
  assert.equal(limited.headers['x-ratelimit-remaining'], '0');
  assert.equal(limited.headers['x-ratelimit-reset'], String(now / 1000 + 1));
  assert.equal(limited.headers['retry-after'], '1');
  // Routes without the filter are not limited and carry no rate-limit headers.
  const open = await request(`${url()}/open`);
  assert.equal(open.status, 200);
  assert.equal(open.headers['x-ratelimit-limit'], undefined);

  const text = await gw.metrics.render();
  assert.match(text, new RegExp(`sentinel_rate_limited_total\\{route="limited"\\} ${rejected}\\n`));
  assert.match(text, new RegExp(`sentinel_blocked_requests_total\\{reason="rate_limited"\\} ${rejected}\\n`));
  await gw.close();
  // The audit sink writes asynchronously: wait (bounded) for the lines to land.
  const events = () =>
    (existsSync(audit) ? readFileSync(audit, 'utf8').split('\n').filter((l) => l.endsWith('}')) : [])
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .filter((e) => e.event_type === 'rate_limit_exceeded');
  await until(() => `${rejected} audit events, have ${events().length}`, () => events().length >= rejected);
  const seen = events();
  assert.equal(seen.length, rejected);
  assert.equal(seen[0]!.route_id, 'limited');
  assert.equal(seen[0]!.client_ip, '127.0.0.1');
  assert.equal(seen[0]!.path, '/limited/a');
});

// Below, max-rps 0.1 refills one token per 10 s, so sequential requests see exact counts
// however slow the machine is.
test('header key: each API key has its own bucket, a missing header its own too', async () => {
  const { url } = await start(config('max-rps 0.1; burst 1; key "header:X-Api-Key"'));
  const a = await burst(`${url()}/limited`, 2, { 'x-api-key': 'alpha' });
  const b = await burst(`${url()}/limited`, 2, { 'x-api-key': 'beta' });
  const none = await burst(`${url()}/limited`, 2);
  assert.deepEqual([a, b, none], [
    [200, 429],
    [200, 429],
    [200, 429],
  ]);
});

test('log-only lets everything through; delay holds a request until a token frees', async () => {
  const logOnly = await start(config('max-rps 1; burst 0; on-limit "log-only"'));
  assert.deepEqual(await burst(`${logOnly.url()}/limited`, 4), [200, 200, 200, 200]);
  const delay = await start(config('max-rps 10; burst 0; on-limit "delay"; max-delay-ms 2000'));
  const statuses = await Promise.all(Array.from({ length: 15 }, () => request(`${delay.url()}/limited`).then((r) => r.status)));
  assert.equal(count(statuses, 200), 15, 'the five over the limit were delayed, not rejected');
});

test('global rate-limits block applies to every route', async () => {
  const { url } = await start(config('max-rps 100', 'rate-limits { global { max-rps 0.1; burst 2 } }'));
  const statuses = [...(await burst(`${url()}/open`, 2)), ...(await burst(`${url()}/limited`, 2))];
  assert.deepEqual(statuses, [200, 200, 429, 429]);
});

test("Sentinel's route policies { rate-limit } is enforced, per route, before the route's filters", async () => {
  // 0.01 a second refills a token every 100 s: exact counts however slow the machine is.
  const kdl = `
system { graceful-shutdown-timeout-secs 1 }
listeners { listener "http" { address "127.0.0.1:0" } }
routes {
  route "legacy" { matches { path-prefix "/legacy" }; upstream "backend"; filters "per-route"
    policies { rate-limit { requests-per-second 0.01; burst 1; key "header:X-Api-Key" } } }
  route "other" { matches { path-prefix "/other" }; upstream "backend"; policies { rate-limit { requests-per-second 0.01; burst 1; key "header:X-Api-Key" } } }
}
upstreams { upstream "backend" { target "${up.address}" } }
filters { filter "per-route" { type "rate-limit"; max-rps 0.01; burst 2; key "route" } }
`;
  const { gw, url } = await start(kdl);
  const legacy = [];
  for (const key of ['alpha', 'alpha', 'beta', 'gamma']) legacy.push((await request(`${url()}/legacy`, { headers: { 'x-api-key': key } })).status);
  // The policy limit first: alpha's second is refused by it and never takes a token of
  // "per-route", so beta still passes and gamma finds "per-route" empty. Run the other way
  // round, alpha's second would have taken per-route's last token and beta been refused.
  assert.deepEqual(legacy, [200, 429, 200, 429]);
  // the other route's limit has its own buckets: alpha has not used it yet
  assert.deepEqual(await burst(`${url()}/other`, 2, { 'x-api-key': 'alpha' }), [200, 429]);
  const text = await gw.metrics.render();
  assert.match(text, /sentinel_rate_limit_exceeded_total\{filter="route:legacy:rate-limit",action="reject"\} 1\n/);
  assert.match(text, /sentinel_rate_limit_exceeded_total\{filter="per-route",action="reject"\} 1\n/);
  assert.match(text, /sentinel_rate_limit_exceeded_total\{filter="route:other:rate-limit",action="reject"\} 1\n/);
  assert.match(text, /sentinel_rate_limited_total\{route="legacy"\} 2\n/);
});

test('a bad policies { rate-limit } is a config error naming where it was written', async () => {
  const kdl = (limit: string) => `
listeners { listener "http" { address "127.0.0.1:0" } }
routes { route "api" { matches { path-prefix "/" }; upstream "backend"; policies { rate-limit { ${limit} } } } }
upstreams { upstream "backend" { target "${up.address}" } }
`;
  await assert.rejects(gatewayFrom(kdl('burst 5')), /routes > route "api" > policies > rate-limit: missing "requests-per-second"/);
  await assert.rejects(gatewayFrom(kdl('requests-per-second 0')), /routes > route "api" > policies > rate-limit: requests-per-second must be > 0/);
  await assert.rejects(gatewayFrom(kdl('requests-per-second 5; key "cookie:session"')), /routes > route "api" > policies > rate-limit > key: invalid key "cookie:session"/);
});

test('limits { max-requests-per-second-per-client / -per-route / -global } cap every proxied route', async () => {
  // 0.01 a second: a bucket of one request that refills in 100 s, exact however slow the machine is
  const withLimits = (key: string) => start(config('max-rps 100', `limits { max-requests-per-second-${key} 0.01 }`));
  // two clients: 127.0.0.1 and 127.0.0.2 (Linux routes all of 127/8 to loopback)
  const other = new http.Agent({ localAddress: '127.0.0.2' });
  const seq = async (g: Awaited<ReturnType<typeof start>>) => [
    ...(await burst(`${g.url()}/limited`, 2)),
    (await request(`${g.url()}/limited`, { agent: other })).status,
    (await request(`${g.url()}/open`, { agent: other })).status,
  ];
  const perClient = await withLimits('per-client');
  const perRoute = await withLimits('per-route');
  const global = await withLimits('global');
  assert.deepEqual(await seq(perClient), [200, 429, 200, 429], 'each client one budget across routes');
  assert.deepEqual(await seq(perRoute), [200, 429, 429, 200], 'each route one budget across clients');
  assert.deepEqual(await seq(global), [200, 429, 429, 429], 'one budget for all');
  const text = await perRoute.gw.metrics.render();
  assert.match(text, /sentinel_rate_limit_exceeded_total\{filter="limits:per-route",action="reject"\} 2\n/);
});

test('a reload with the same limit keeps the buckets; a changed limit starts fresh', async () => {
  const kdl = config('max-rps 0.1; burst 1');
  const { gw, url } = await start(kdl);
  assert.deepEqual(await burst(`${url()}/limited`, 2), [200, 429]);
  await gw.reload(kdl);
  assert.equal((await request(`${url()}/limited`)).status, 429, 'state survived the reload');
  await gw.reload(config('max-rps 0.2; burst 1'));
  assert.equal((await request(`${url()}/limited`)).status, 200);
});

test('an invalid key is a config error naming the filter', async () => {
  await assert.rejects(gatewayFrom(config('key "cookie:session"')), /filters > filter "rl" > key: invalid key "cookie:session"/);
});

test('two gateways sharing one Redis enforce the combined limit; killing Redis surfaces no errors', async () => {
  // redis-timeout-ms 5000: the first calls wait for the pools to connect (bounded by it) rather
  // than being decided by the local fallback on a loaded machine; a killed Redis fails fast anyway.
  const kdl = config(`max-rps 10; burst 0; backend "redis"; redis-url "${redis.url}"; redis-timeout-ms 5000`);
  const g1 = await start(kdl);
  const g2 = await start(kdl);
  const calls: TimedCall[] = [];
  const statuses: number[] = [];
  const call = async (i: number) => {
    let status = 0;
    calls.push(await timedCall(async () => (status = (await request(`${(i % 2 ? g1 : g2).url()}/limited`)).status) === 200));
    statuses.push(status);
  };
  for (let i = 0; i < 30; i++) await call(i);
  assert.equal(count(statuses, 200) + count(statuses, 429), 30);
  // Sliding 1 s window shared through Redis: 10 in any second, whichever gateway is asked.
  assert.deepEqual(slidingWindowMismatches(calls, 10, 1000), [], `statuses ${statuses.join(',')}`);

  await redis.kill();
  try {
    calls.length = 0;
    statuses.length = 0;
    for (let i = 0; i < 40; i++) await call(i);
    assert.deepEqual(
      statuses.filter((s) => s !== 200 && s !== 429),
      [],
      'only 200/429 while Redis is down',
    );
    // Each gateway falls back to its own local bucket (at most 10 at once, then 10/s).
    for (const parity of [0, 1]) {
      assert.deepEqual(bucketMismatches(calls.filter((_, i) => i % 2 === parity), 10, 10, { startsFull: false }), [], `during ${statuses.join(',')}`);
    }
    const m = await g1.gw.metrics.render();
    assert.match(m, /sentinel_rate_limit_fallbacks_total\{backend="redis",filter="rl",mode="local"\} [1-9]/);
  } finally {
    await redis.start();
  }
});
