// The filters as the core runs them: fake contexts in, LocalResponses / headers / audit / metrics out.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRateLimitFilter, createGlobalRateLimit } from '../../../plugins/rate-limit/index.ts';
import { sharedCount } from '../../../src/pipeline/shared.ts';
import type { LocalResponse, RequestFilter } from '../../../src/pipeline/types.ts';
import type { RateLimitsConfig } from '../../../plugins/rate-limit/schema.ts';
import { ConfigError } from '../../../src/config/diagnostics.ts';
import { decodeFilter, decodeRateLimits, fakeCtx, fakeServices, metricValue } from './fixtures.ts';

let seq = 0;
function filterFrom(body: string, services = fakeServices()) {
  const { config } = decodeFilter(body);
  const id = `t${++seq}`;
  return { filter: createRateLimitFilter(id, config, services), services, id };
}

async function run(f: RequestFilter, ctx = fakeCtx()): Promise<{ res: LocalResponse | undefined; ctx: ReturnType<typeof fakeCtx> }> {
  const res = await f.onRequest!(ctx);
  return { res, ctx };
}

test('reject: 429 with message, X-RateLimit-* and Retry-After; allowed responses carry the headers too', async () => {
  const { filter, services } = filterFrom('max-rps 3; burst 0');
  const results = [];
  for (let i = 0; i < 5; i++) results.push(await run(filter));
  const allowed = results.filter((r) => r.res === undefined);
  assert.equal(allowed.length, 3);
  assert.deepEqual(
    allowed.map((r) => r.ctx.responseHeaders['x-ratelimit-remaining']),
    ['2', '1', '0'],
  );
  for (const r of allowed) assert.equal(r.ctx.responseHeaders['x-ratelimit-limit'], '3');
  const rejected = results[3]!.res!;
  assert.equal(rejected.status, 429);
  assert.equal(rejected.body, 'Rate limit exceeded');
  assert.equal(rejected.blockReason, 'rate_limited');
  assert.equal(rejected.headers!['x-ratelimit-limit'], '3');
  assert.equal(rejected.headers!['x-ratelimit-remaining'], '0');
  assert.equal(rejected.headers!['retry-after'], '1');
  const reset = Number(rejected.headers!['x-ratelimit-reset']);
  assert.ok(reset > Date.now() / 1000 && reset <= Date.now() / 1000 + 2, `reset ${reset}`);
  assert.equal(results[3]!.ctx.audit.rateLimited, true);
  assert.equal(await metricValue(services.metrics, 'sentinel_rate_limited_total', { route: 'api' }), 2);
  assert.equal(await metricValue(services.metrics, 'sentinel_rate_limit_exceeded_total', { action: 'reject' }), 2);
  await filter.close!();
});

test('every rejection is one audit event without the raw key value', async () => {
  const { filter, services, id } = filterFrom('max-rps 1; burst 0; key "header:X-Api-Key"; status-code 503; message "busy"');
  const ctx = () => fakeCtx({ headers: { 'x-api-key': 'secret-token' }, ip: '203.0.113.9' });
  await run(filter, ctx());
  const { res } = await run(filter, ctx());
  assert.equal(res!.status, 503);
  assert.equal(res!.body, 'busy');
  assert.equal(services.auditEvents.length, 1);
  const e = services.auditEvents[0]!;
  assert.equal(e.event_type, 'rate_limit_exceeded');
  assert.equal(e.client_ip, '203.0.113.9');
  assert.equal(e.route_id, 'api');
  assert.equal(e.status_code, 503);
  assert.deepEqual(e.metadata, { filter: id, key: 'header:x-api-key', limit: 1 });
  assert.ok(!JSON.stringify(e).includes('secret-token'));
  await filter.close!();
});

test('keys separate buckets: another client IP is not limited', async () => {
  const { filter } = filterFrom('max-rps 1; burst 0');
  assert.equal((await run(filter, fakeCtx({ ip: '192.0.2.1' }))).res, undefined);
  assert.equal((await run(filter, fakeCtx({ ip: '192.0.2.1' }))).res?.status, 429);
  assert.equal((await run(filter, fakeCtx({ ip: '192.0.2.2' }))).res, undefined);
  await filter.close!();
});

test('log-only: over the limit is logged and counted but allowed', async () => {
  const { filter, services } = filterFrom('max-rps 1; burst 0; on-limit "log-only"');
  await run(filter);
  const { res, ctx } = await run(filter);
  assert.equal(res, undefined);
  assert.equal(ctx.audit.rateLimited, true);
  assert.equal(ctx.responseHeaders['x-ratelimit-remaining'], '0');
  assert.equal(await metricValue(services.metrics, 'sentinel_rate_limit_exceeded_total', { action: 'log' }), 1);
  assert.equal(await metricValue(services.metrics, 'sentinel_rate_limited_total'), 0);
  await filter.close!();
});

test('delay: a request over the limit waits for the next token instead of failing', async () => {
  // 2 rps: the next token comes 500 ms after the first take, within max-delay-ms. (At 20 rps, 50 ms,
  // a loaded CI machine once took longer than that over the first 20 takes: no wait was needed.)
  const { filter, services } = filterFrom('max-rps 2; burst 0; on-limit "delay"; max-delay-ms 2000');
  for (let i = 0; i < 2; i++) assert.equal((await run(filter)).res, undefined);
  const { res, ctx } = await run(filter);
  assert.equal(res, undefined, 'delayed, then allowed');
  assert.ok(ctx.audit.tags.includes('rate_limit_delayed'));
  assert.equal(await metricValue(services.metrics, 'sentinel_rate_limit_exceeded_total', { action: 'delay' }), 1);
  await filter.close!();
});

test('delay: a wait longer than max-delay-ms is rejected at once', async () => {
  // 1 rps: the next token is 1000 ms away, more than max-delay-ms 10.
  const { filter } = filterFrom('max-rps 1; burst 0; on-limit "delay"; max-delay-ms 10');
  await run(filter);
  const { res } = await run(filter);
  assert.equal(res?.status, 429);
  await filter.close!();
});

test('delay: a client that goes away stops waiting', async () => {
  const { filter } = filterFrom('max-rps 2; burst 0; on-limit "delay"; max-delay-ms 5000');
  await run(filter);
  await run(filter);
  const ac = new AbortController();
  const pending = run(filter, fakeCtx({ signal: ac.signal }));
  ac.abort();
  assert.equal((await pending).res?.status, 429);
  await filter.close!();
});

test('an invalid key throws a ConfigError naming the filter', () => {
  const { config } = decodeFilter('key "session"');
  assert.throws(
    () => createRateLimitFilter('bad', config, fakeServices()),
    (e: unknown) => e instanceof ConfigError && /filters > filter "bad" > key: invalid key "session"/.test(e.message),
  );
});

test('a reload with unchanged settings keeps the buckets; closing the last user frees them', async () => {
  const { config } = decodeFilter('max-rps 2; burst 0');
  const services = fakeServices(); // one gateway: its generations share the Metrics object
  const gen1 = createRateLimitFilter('reloaded', config, services);
  await run(gen1);
  await run(gen1);
  // Another gateway in the same process does not share the buckets.
  const other = createRateLimitFilter('reloaded', config, fakeServices());
  assert.equal((await run(other)).res, undefined);
  await other.close!();
  // The next generation is built before the old one is closed.
  const gen2 = createRateLimitFilter('reloaded', config, fakeServices(services.metrics));
  await gen1.close!();
  assert.equal((await run(gen2)).res?.status, 429, 'state survived the reload');
  assert.equal(sharedCount('local:filter:reloaded:'), 1);
  await gen2.close!();
  assert.equal(sharedCount('local:filter:reloaded:'), 0);
  // Changed settings start fresh.
  const changed = createRateLimitFilter('reloaded', decodeFilter('max-rps 3; burst 0').config, services);
  assert.equal((await run(changed)).res, undefined);
  await changed.close!();
});

test('max-keys bounds the key count under a flood (and the gauge reports it)', async () => {
  const { filter, services, id } = filterFrom('max-rps 5; max-keys 100');
  for (let i = 0; i < 5000; i++) await run(filter, fakeCtx({ ip: `10.1.${i >> 8}.${i & 255}` }));
  assert.equal(await metricValue(services.metrics, 'sentinel_rate_limit_keys', { scope: `filter:${id}` }), 100);
  assert.equal(await metricValue(services.metrics, 'sentinel_rate_limit_key_evictions_total', { scope: `filter:${id}`, reason: 'forced' }), 4900);
  await filter.close!();
});

test('global rate-limits: per-client default and a shared global budget', async () => {
  const services = fakeServices();
  const { config } = decodeRateLimits('default-rps 2; default-burst 0; global { max-rps 3; burst 0 }');
  const f = createGlobalRateLimit(config as RateLimitsConfig, services)!;
  const statuses = [];
  for (const ip of ['a', 'a', 'a', 'b', 'b', 'c']) statuses.push((await run(f, fakeCtx({ ip }))).res?.status ?? 200);
  // a: 2 allowed then its own limit; b: 1 allowed (global budget of 3 used up), c: global limit.
  assert.deepEqual(statuses, [200, 200, 429, 200, 429, 429]);
  assert.equal(await metricValue(services.metrics, 'sentinel_rate_limited_total'), 3);
  await f.close!();
  assert.equal(createGlobalRateLimit(undefined, services), undefined);
  assert.equal(createGlobalRateLimit({ key: 'client-ip' } as RateLimitsConfig, services), undefined);
  assert.throws(() => createGlobalRateLimit({ 'default-rps': 1, key: 'nope' } as RateLimitsConfig, services), ConfigError);
});
