// Against a real memcached started on a free port: fixed-window counters shared by limiter
// instances, memcached killed and paused mid-test (local fallback), and recovery.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import memjs from 'memjs';
import { startMemcached, type MemcachedServer } from '../../helpers/memcached.ts';
import { createRateLimitFilter } from '../../../plugins/rate-limit/index.ts';
import { MemcachedBackend } from '../../../plugins/rate-limit/store-memcached.ts';
import { windowFor, windowIndex } from '../../../plugins/rate-limit/limiter.ts';
import type { RequestFilter } from '../../../src/pipeline/types.ts';
import { decodeFilter, fakeCtx, fakeServices, metricValue } from '../../unit/rate-limit/fixtures.ts';
import { notHung, RECOVERY_MS, until } from '../../helpers/until.ts';

let mc: MemcachedServer;
const open: RequestFilter[] = [];
const backends: MemcachedBackend[] = [];

before(async () => {
  mc = await startMemcached();
});

after(async () => {
  for (const f of open) await f.close?.();
  for (const b of backends) await b.close();
  await mc.stop();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Waits until at least `marginMs` remain in the current 1 s window, so a burst stays in one window. */
async function freshWindow(marginMs = 600): Promise<void> {
  const into = Date.now() % 1000;
  if (1000 - into < marginMs) await sleep(1000 - into + 5);
}

function mcFilter(id: string, body: string, services = fakeServices()): RequestFilter {
  const { config } = decodeFilter(`backend "memcached"; memcached-url "${mc.url}"; memcached-pool-size 2; ${body}`);
  const f = createRateLimitFilter(id, config, services);
  open.push(f);
  return f;
}

async function status(f: RequestFilter, ip = '192.0.2.1'): Promise<number> {
  return (await f.onRequest!(fakeCtx({ ip })))?.status ?? 200;
}

async function readCounter(key: string): Promise<string | undefined> {
  const c = memjs.Client.create(mc.url, { retries: 0, logger: { log: () => undefined } });
  try {
    const r = await c.get(key);
    return r.value?.toString();
  } finally {
    c.close();
  }
}

test('two backends sharing one memcached admit exactly the limit within a window', async () => {
  const settings = { url: mc.url, poolSize: 3, timeoutMs: 500, ttlSecs: 2 };
  // Both read one clock held still, so all 100 calls fall into one window however long the
  // burst takes (on the real clock a slow burst could straddle a second).
  const now = Date.now();
  const a = new MemcachedBackend(settings, () => now);
  const b = new MemcachedBackend(settings, () => now);
  backends.push(a, b);
  const w = windowFor(25);
  const decisions = await Promise.all(Array.from({ length: 100 }, (_, i) => (i % 2 ? a : b).take('it:mc:shared', w)));
  assert.equal(decisions.filter((d) => d.allowed).length, 25);
  // The counter counts every request (memcached has no atomic check-and-add): 100.
  assert.equal(await readCounter(`it:mc:shared:${Math.floor(now / 1000)}`), '100');
});

test('two filters with separate connections enforce one combined limit', async () => {
  const s1 = fakeServices();
  const s2 = fakeServices();
  // A generous timeout: on a loaded machine a slow answer must not turn into a local decision.
  const f1 = mcFilter('mc-combined', 'max-rps 10; memcached-timeout-ms 2000', s1);
  const f2 = mcFilter('mc-combined', 'max-rps 10; memcached-timeout-ms 2000', s2);
  await freshWindow(800);
  const w = windowFor(10);
  const first = windowIndex(w, Date.now());
  const statuses: number[] = [];
  for (let i = 0; i < 30; i++) statuses.push(await status(i % 2 ? f1 : f2));
  const last = windowIndex(w, Date.now());
  // No timing assumption: the shared counters say how many requests fell into each window, and
  // each window admits exactly min(limit, its count) however the loop straddled a boundary.
  let counted = 0;
  let expected = 0;
  for (let win = first; win <= last; win++) {
    const n = Number((await readCounter(`sentinel:ratelimit:mc-combined:i:192.0.2.1:${win}`)) ?? 0);
    counted += n;
    expected += Math.min(10, n);
  }
  assert.equal(counted, 30, 'every request was counted by memcached');
  assert.equal(statuses.filter((s) => s === 200).length, expected, `windows ${first}..${last}`);
  assert.equal(statuses.filter((s) => s === 429).length, 30 - expected);
  assert.equal((await metricValue(s1.metrics, 'sentinel_rate_limit_fallbacks_total')) + (await metricValue(s2.metrics, 'sentinel_rate_limit_fallbacks_total')), 0);
});

test('memcached killed mid-test: the local fallback limits, memcached is used again after restart', async () => {
  const services = fakeServices();
  // max-rps 0.1: the shared window is 1 request per 10 s, and so is the local fallback (burst
  // does not widen it): exactly 1 passes for a fresh key.
  const f = mcFilter('mc-failover', 'max-rps 0.1; burst 4; memcached-timeout-ms 100', services);
  assert.equal(await status(f, '198.51.100.1'), 200);
  await mc.kill();
  const during: number[] = [];
  for (let i = 0; i < 20; i++) during.push(await status(f, '198.51.100.2'));
  assert.deepEqual(
    during.filter((s) => s !== 200 && s !== 429),
    [],
  );
  assert.equal(during.filter((s) => s === 200).length, 1, 'fallback enforced the limit');
  assert.ok((await metricValue(services.metrics, 'sentinel_rate_limit_fallbacks_total', { filter: 'mc-failover', mode: 'local' })) >= 19);
  assert.ok((await metricValue(services.metrics, 'sentinel_rate_limit_backend_errors_total', { backend: 'memcached' })) >= 1);

  await mc.start();
  // The breaker probes after its cooldown (1 s, doubling per failed probe up to 30 s): poll,
  // bounded past the longest cooldown.
  let i = 0;
  await until(
    'requests to reach memcached again after it restarts',
    async () => {
      const ip = `203.0.113.${i++ % 250}`;
      await status(f, ip);
      const w = windowIndex(windowFor(0.1), Date.now());
      for (const win of [w, w - 1]) if ((await readCounter(`sentinel:ratelimit:mc-failover:i:${ip}:${win}`)) !== undefined) return true;
      return false;
    },
    RECOVERY_MS,
    100,
  );
});

test('memcached that hangs (SIGSTOP): answers come within the timeout from the fallback', async () => {
  const services = fakeServices();
  const f = mcFilter('mc-hang', 'max-rps 100; memcached-timeout-ms 50', services);
  assert.equal(await status(f), 200);
  await mc.pause();
  try {
    // memcached stays stopped until every answer is in: answers at all mean the client gave up
    // on it (the timeout), and each one was decided locally. No clock: a hang is what fails.
    const before = await metricValue(services.metrics, 'sentinel_rate_limit_fallbacks_total', { filter: 'mc-hang', mode: 'local' });
    const results = await notHung('10 calls to a stopped memcached (memcached-timeout-ms 50 not applied?)', Promise.all(Array.from({ length: 10 }, () => status(f))));
    assert.deepEqual(results, Array(10).fill(200));
    assert.equal((await metricValue(services.metrics, 'sentinel_rate_limit_fallbacks_total', { filter: 'mc-hang', mode: 'local' })) - before, 10, 'every answer came from the local fallback');
    assert.ok((await metricValue(services.metrics, 'sentinel_rate_limit_backend_errors_total', { backend: 'memcached', reason: 'timeout' })) >= 1);
  } finally {
    mc.resume();
  }
});
