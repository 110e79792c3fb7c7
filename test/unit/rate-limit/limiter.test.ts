import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  bucketParams,
  newBucket,
  takeToken,
  refillTimeMs,
  windowFor,
  fixedWindowDecision,
  windowIndex,
  rateLimitHeaders,
  retryAfterSeconds,
} from '../../../plugins/rate-limit/limiter.ts';

test('token bucket: an idle key gets max-rps + burst at once, then max-rps per second', () => {
  const p = bucketParams(10, 5);
  const t0 = 1_000_000;
  const b = newBucket(p, t0);
  const first = Array.from({ length: 20 }, () => takeToken(b, p, t0));
  assert.equal(first.filter((d) => d.allowed).length, 15);
  // After one second exactly ten more tokens have been refilled.
  const later = Array.from({ length: 20 }, () => takeToken(b, p, t0 + 1000));
  assert.equal(later.filter((d) => d.allowed).length, 10);
});

test('token bucket decisions: remaining, limit and retry-after', () => {
  const p = bucketParams(2, 0); // one token every 500 ms, capacity 2
  const t0 = 5000;
  const b = newBucket(p, t0);
  const cases: Array<{ at: number; allowed: boolean; remaining: number; retryAfterMs: number }> = [
    { at: t0, allowed: true, remaining: 1, retryAfterMs: 0 },
    { at: t0, allowed: true, remaining: 0, retryAfterMs: 500 },
    { at: t0 + 100, allowed: false, remaining: 0, retryAfterMs: 400 },
    { at: t0 + 500, allowed: true, remaining: 0, retryAfterMs: 500 },
    { at: t0 + 2000, allowed: true, remaining: 1, retryAfterMs: 0 },
  ];
  for (const c of cases) {
    const d = takeToken(b, p, c.at);
    assert.deepEqual(d, { allowed: c.allowed, limit: 2, remaining: c.remaining, retryAfterMs: c.retryAfterMs }, `at +${c.at - t0} ms`);
  }
});

test('token bucket: a clock stepping back mints no tokens', () => {
  const p = bucketParams(1, 0);
  const b = newBucket(p, 10_000);
  assert.equal(takeToken(b, p, 10_000).allowed, true);
  assert.equal(takeToken(b, p, 5_000).allowed, false);
  assert.equal(takeToken(b, p, 10_500).allowed, false);
  assert.equal(takeToken(b, p, 11_000).allowed, true);
});

test('token bucket: fractional max-rps admits one request per 1/max-rps seconds', () => {
  const p = bucketParams(0.5, 0);
  assert.equal(p.capacity, 1);
  assert.equal(p.limit, 1);
  const b = newBucket(p, 0);
  assert.equal(takeToken(b, p, 0).allowed, true);
  const d = takeToken(b, p, 1000);
  assert.equal(d.allowed, false);
  assert.equal(d.retryAfterMs, 1000);
  assert.equal(takeToken(b, p, 2000).allowed, true);
  assert.equal(refillTimeMs(p), 2000);
});

test('windowFor shapes the shared-backend window from max-rps', () => {
  assert.deepEqual(windowFor(100), { windowMs: 1000, limit: 100 });
  assert.deepEqual(windowFor(2.7), { windowMs: 1000, limit: 2 });
  assert.deepEqual(windowFor(0.5), { windowMs: 2000, limit: 1 });
  assert.deepEqual(windowFor(0.3), { windowMs: 3334, limit: 1 });
});

test('fixed window: allowed up to the limit, retry at the window end', () => {
  const w = windowFor(3);
  const now = 7_250;
  assert.equal(windowIndex(w, now), 7);
  const rows: Array<[number, boolean, number, number]> = [
    [1, true, 2, 0],
    [2, true, 1, 0],
    [3, true, 0, 750],
    [4, false, 0, 750],
  ];
  for (const [count, allowed, remaining, retry] of rows) {
    assert.deepEqual(fixedWindowDecision(count, w, now), { allowed, limit: 3, remaining, retryAfterMs: retry }, `count ${count}`);
  }
});

test('headers: Reset is unix seconds, never before the next second; Retry-After at least 1', () => {
  const now = 1_700_000_000_400;
  assert.deepEqual(rateLimitHeaders({ allowed: true, limit: 5, remaining: 4, retryAfterMs: 0 }, now), { limit: '5', remaining: '4', reset: '1700000001' });
  assert.deepEqual(rateLimitHeaders({ allowed: false, limit: 5, remaining: 0, retryAfterMs: 2500 }, now), { limit: '5', remaining: '0', reset: '1700000003' });
  assert.equal(retryAfterSeconds({ allowed: false, limit: 5, remaining: 0, retryAfterMs: 30 }), 1);
  assert.equal(retryAfterSeconds({ allowed: false, limit: 5, remaining: 0, retryAfterMs: 2001 }), 3);
});
