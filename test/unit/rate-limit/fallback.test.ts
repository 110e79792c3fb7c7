// The fallback path with a scripted backend (the real Redis/Memcached paths are in integration/).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RemoteLimiter } from '../../../plugins/rate-limit/fallback.ts';
import { Breaker } from '../../../plugins/rate-limit/breaker.ts';
import { LocalStore } from '../../../plugins/rate-limit/store-local.ts';
import { bucketParams, windowFor, type Decision, type WindowParams } from '../../../plugins/rate-limit/limiter.ts';
import { BackendTimeoutError, withTimeout, type RemoteBackend } from '../../../plugins/rate-limit/backend.ts';

class ScriptedBackend implements RemoteBackend {
  readonly kind = 'redis' as const;
  calls = 0;
  healthy = true;
  take(_key: string, w: WindowParams): Promise<Decision> {
    this.calls++;
    if (!this.healthy) return Promise.reject(new Error('ECONNREFUSED'));
    return Promise.resolve({ allowed: true, limit: w.limit, remaining: w.limit - 1, retryAfterMs: 0 });
  }
  async close() {}
}

function setup(fallback: boolean) {
  const clock = { t: 0 };
  const backend = new ScriptedBackend();
  const breaker = new Breaker({ failureThreshold: 2, cooldownMs: 1000, maxCooldownMs: 8000 });
  const local = fallback ? new LocalStore({ params: bucketParams(2, 0), maxKeys: 10, now: () => clock.t }) : undefined;
  const events: string[] = [];
  const limiter = new RemoteLimiter(
    backend,
    breaker,
    windowFor(2),
    local,
    { onBackendError: (r) => events.push(`error:${r}`), onDegraded: (m, open) => events.push(`degraded:${m}:${open}`) },
    () => clock.t,
  );
  return { clock, backend, limiter, events };
}

test('backend errors fall back to the local limiter, which still enforces the limit', async () => {
  const { backend, limiter, events } = setup(true);
  backend.healthy = false;
  const decisions = [];
  for (let i = 0; i < 5; i++) decisions.push(await limiter.take('sentinel:ratelimit:f:i:1', 'i:1'));
  assert.deepEqual(
    decisions.map((d) => d.allowed),
    [true, true, false, false, false],
  );
  assert.equal(backend.calls, 2, 'the breaker opened after two failures: no more calls');
  assert.deepEqual(events.slice(0, 4), ['error:error', 'degraded:local:false', 'error:error', 'degraded:local:false']);
  assert.equal(events[4], 'degraded:local:true');
  assert.equal(limiter.lastSource, 'fallback');
});

test('after the cooldown one probe goes to the backend; when it answers, the backend decides again', async () => {
  const { clock, backend, limiter } = setup(true);
  backend.healthy = false;
  for (let i = 0; i < 3; i++) await limiter.take('k', 'k');
  assert.equal(backend.calls, 2);
  backend.healthy = true;
  clock.t = 500;
  await limiter.take('k', 'k');
  assert.equal(backend.calls, 2, 'still cooling down');
  clock.t = 1000;
  const d = await limiter.take('k', 'k');
  assert.equal(backend.calls, 3);
  assert.equal(d.allowed, true);
  assert.equal(limiter.lastSource, 'backend');
  await limiter.take('k', 'k');
  assert.equal(backend.calls, 4);
});

test('without fallback a failing backend fails open (Sentinel behaviour)', async () => {
  const { backend, limiter, events } = setup(false);
  backend.healthy = false;
  for (let i = 0; i < 10; i++) assert.equal((await limiter.take('k', 'k')).allowed, true);
  assert.equal(limiter.lastSource, 'fail-open');
  assert.ok(events.includes('degraded:fail_open:true'));
});

test('withTimeout rejects a call that never answers, and passes results and errors through', async () => {
  await assert.rejects(withTimeout(new Promise(() => undefined), 10, 'redis'), (e: unknown) => e instanceof BackendTimeoutError && /redis did not answer within 10 ms/.test(e.message));
  assert.equal(await withTimeout(Promise.resolve(7), 1000, 'redis'), 7);
  await assert.rejects(withTimeout(Promise.reject(new Error('boom')), 1000, 'redis'), /boom/);
});
