import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DEFAULT_RETRY, RetryBudget, backoffMs, decideRetry, retrySettings, type RetryInput } from '../../../plugins/retry/policy.ts';

const configured = retrySettings({ 'max-attempts': 3, 'retryable-status-codes': [502, 503], 'backoff-base-ms': 100, 'backoff-max-ms': 1000 });
const half = () => 0.5;

function input(over: Partial<RetryInput>): RetryInput {
  return { method: 'GET', attempt: 1, outcome: { kind: 'error', reason: 'connect_refused', latencyMs: 1 }, bodyReplayable: true, responseStarted: false, ...over };
}

test('decision table', () => {
  const rows: { name: string; s?: typeof configured; in: Partial<RetryInput>; retry: boolean; reason?: string }[] = [
    { name: 'connect refused GET retries', in: {}, retry: true },
    { name: 'connect refused POST retries (never reached the upstream)', in: { method: 'POST' }, retry: true },
    { name: 'reset on POST does not', in: { method: 'POST', outcome: { kind: 'error', reason: 'reset', latencyMs: 1 } }, retry: false, reason: 'not_idempotent' },
    { name: 'reset on GET retries', in: { outcome: { kind: 'error', reason: 'reset', latencyMs: 1 } }, retry: true },
    { name: 'timeout on PUT retries', in: { method: 'PUT', outcome: { kind: 'error', reason: 'timeout', latencyMs: 1 } }, retry: true },
    { name: 'retryable status', in: { outcome: { kind: 'response', status: 503, latencyMs: 1 } }, retry: true },
    { name: 'other status', in: { outcome: { kind: 'response', status: 500, latencyMs: 1 } }, retry: false, reason: 'status_not_retryable' },
    { name: '2xx never', in: { outcome: { kind: 'response', status: 200, latencyMs: 1 } }, retry: false, reason: 'status_not_retryable' },
    { name: 'attempts exhausted', in: { attempt: 3 }, retry: false, reason: 'attempts_exhausted' },
    { name: 'response bytes already sent', in: { responseStarted: true }, retry: false, reason: 'response_started' },
    { name: 'body not replayable', in: { bodyReplayable: false }, retry: false, reason: 'body_not_replayable' },
    {
      name: 'retry-non-idempotent allows POST after reset',
      s: retrySettings({ 'max-attempts': 2, 'retry-non-idempotent': true }),
      in: { method: 'POST', outcome: { kind: 'error', reason: 'reset', latencyMs: 1 } },
      retry: true,
    },
    { name: 'default (no policy): connect failure retried once', s: DEFAULT_RETRY, in: {}, retry: true },
    { name: 'default: not twice', s: DEFAULT_RETRY, in: { attempt: 2 }, retry: false, reason: 'attempts_exhausted' },
    { name: 'default: a reset GET is retried', s: DEFAULT_RETRY, in: { outcome: { kind: 'error', reason: 'reset', latencyMs: 1 } }, retry: true },
    { name: 'default: a reset POST is not', s: DEFAULT_RETRY, in: { method: 'POST', outcome: { kind: 'error', reason: 'reset', latencyMs: 1 } }, retry: false, reason: 'not_idempotent' },
    {
      name: 'retryErrors off: only connect failures',
      s: { ...DEFAULT_RETRY, retryErrors: false },
      in: { outcome: { kind: 'error', reason: 'timeout', latencyMs: 1 } },
      retry: false,
      reason: 'error_not_retryable',
    },
    { name: 'default: 503 is not retried', s: DEFAULT_RETRY, in: { outcome: { kind: 'response', status: 503, latencyMs: 1 } }, retry: false },
    { name: 'max-attempts 1 disables retries', s: retrySettings({ 'max-attempts': 1 }), in: {}, retry: false, reason: 'attempts_exhausted' },
  ];
  for (const r of rows) {
    const v = decideRetry(r.s ?? configured, input(r.in), half);
    assert.equal(v.retry, r.retry, r.name);
    if (r.reason && !v.retry) assert.equal(v.reason, r.reason, r.name);
  }
});

test('backoff: full jitter under an exponential ceiling', () => {
  assert.equal(backoffMs(configured, 1, () => 0.999), 99);
  assert.equal(backoffMs(configured, 2, () => 0.999), 199);
  assert.equal(backoffMs(configured, 3, () => 0.5), 200);
  assert.equal(backoffMs(configured, 10, () => 0.999), 999); // capped at backoff-max-ms
  assert.equal(backoffMs(configured, 4, () => 0), 0);
  assert.equal(backoffMs(DEFAULT_RETRY, 1, () => 0.9), 0);
});

test('retry budget: ratio of requests, with a floor, over a sliding window', () => {
  const b = new RetryBudget(0.2, 1, 10); // floor: 10 retries per 10 s window
  let t = 1_000_000;
  for (let i = 0; i < 100; i++) b.recordRequest(t);
  let granted = 0;
  while (b.tryTake(t)) granted++;
  assert.equal(granted, 20); // 20% of 100 requests
  // outage: no new requests, the budget stays spent within the window
  t += 5000;
  assert.equal(b.tryTake(t), false);
  // after the window slides past, only the floor remains
  t += 10_000;
  granted = 0;
  while (b.tryTake(t)) granted++;
  assert.equal(granted, 10);
});
