// The fallback path with a scripted backend (the real Redis/Memcached paths are in integration/).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RemoteLimiter } from '../../../plugins/rate-limit/fallback.ts';
import { Breaker } from '../../../plugins/rate-limit/backend-breaker.ts';
import { LocalStore } from '../../../plugins/rate-limit/store-local.ts';
import { bucketParams, fallbackParams, windowFor, type Decision, type WindowParams } from '../../../plugins/rate-limit/limiter.ts';
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

/** A shared window in memory: `limit` admissions per `windowMs`, counted only for what the backend admitted. */
class WindowBackend implements RemoteBackend {
  readonly kind = 'redis' as const;
  healthy = true;
  private log: number[] = [];
  constructor(private readonly clock: { t: number }) {}
  take(_key: string, w: WindowParams): Promise<Decision> {
    if (!this.healthy) return Promise.reject(new Error('ECONNREFUSED'));
    this.log = this.log.filter((t) => t > this.clock.t - w.windowMs);
    if (this.log.length >= w.limit) return Promise.resolve({ allowed: false, limit: w.limit, remaining: 0, retryAfterMs: 100 });
    this.log.push(this.clock.t);
    return Promise.resolve({ allowed: true, limit: w.limit, remaining: w.limit - this.log.length, retryAfterMs: 0 });
  }
  async close() {}
}

function windowSetup() {
  const clock = { t: 10_000 };
  const w = windowFor(10);
  const backend = new WindowBackend(clock);
  const breaker = new Breaker({ failureThreshold: 3, cooldownMs: 1000, maxCooldownMs: 8000 });
  const local = new LocalStore({ params: fallbackParams(w), maxKeys: 10, now: () => clock.t });
  const limiter = new RemoteLimiter(backend, breaker, w, local, {}, () => clock.t);
  const burst = async (n: number) => {
    let ok = 0;
    for (let i = 0; i < n; i++) if ((await limiter.take('shared:route', 'route')).allowed) ok++;
    return ok;
  };
  return { clock, backend, limiter, burst };
}

test('the fallback bucket is shaped like the shared window: max-rps at once, burst does not add', () => {
  assert.deepEqual(fallbackParams(windowFor(10)), { refillPerMs: 0.01, capacity: 10, limit: 10 });
  assert.deepEqual(fallbackParams(windowFor(0.5)), { refillPerMs: 1 / 2000, capacity: 1, limit: 1 });
});

test('going down: the fallback starts from the shared state, not from a full bucket', async () => {
  const { clock, backend, burst } = windowSetup();
  assert.equal(await burst(10), 10, 'the backend admits its limit');
  backend.healthy = false;
  clock.t += 100; // 100 ms later: one token refilled at 10/s
  assert.equal(await burst(20), 1, 'the first failed call is already limited');
});

test('going down after the shared limit was spent elsewhere: the backend\'s "remaining" caps the local bucket', async () => {
  const { clock, backend, burst } = windowSetup();
  // another gateway used 8 of the 10; this one gets 2 and learns that nothing is left
  for (let i = 0; i < 8; i++) await backend.take('shared:route', windowFor(10));
  assert.equal(await burst(5), 2);
  backend.healthy = false;
  assert.equal(await burst(20), 0);
  clock.t += 500;
  assert.equal(await burst(20), 5, 'then the local refill rate');
});

test('coming back: for one window after the last local decision the local bucket bounds the backend too', async () => {
  const { clock, backend, limiter, burst } = windowSetup();
  backend.healthy = false;
  assert.equal(await burst(20), 10, 'an idle key: the local limit');
  clock.t += 1000; // breaker cooldown over; the backend is back with an empty window
  backend.healthy = true;
  const ok = await burst(20);
  assert.equal(limiter.lastSource, 'backend');
  assert.equal(ok, 10, 'refilled local bucket and the empty shared window agree on 10');
  clock.t += 200;
  assert.equal(await burst(20), 0, 'the shared window is full: no local tokens are handed out on top');
  // the degraded period is over by more than a window: the backend alone decides
  clock.t += 1000;
  assert.equal(await burst(20), 10);
});

test('coming back right after a local burst: the gateway never passes more than the local limit per window', async () => {
  const { clock, backend, limiter, burst } = windowSetup();
  backend.healthy = false;
  assert.equal(await burst(20), 10);
  clock.t += 900;
  assert.equal(await burst(3), 3, 'breaker still open: local (9 tokens refilled, 6 left)');
  backend.healthy = true;
  clock.t += 100;
  // the breaker's probe succeeds and the shared window is empty (it never saw the 13), but this
  // gateway's bucket holds 7: that is all it may pass
  assert.equal(await burst(20), 7);
  assert.equal(limiter.lastSource, 'backend');
});
