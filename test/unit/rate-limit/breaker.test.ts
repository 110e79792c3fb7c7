import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Breaker } from '../../../plugins/rate-limit/backend-breaker.ts';

const opts = { failureThreshold: 3, cooldownMs: 1000, maxCooldownMs: 4000 };

test('opens after consecutive failures and skips the backend during the cooldown', () => {
  const b = new Breaker(opts);
  for (let i = 0; i < 2; i++) {
    assert.equal(b.allow(0), true);
    b.failure(0);
  }
  assert.equal(b.state, 'closed');
  b.success(); // a success resets the count
  for (let i = 0; i < 3; i++) b.failure(10);
  assert.equal(b.state, 'open');
  assert.equal(b.allow(500), false);
  assert.equal(b.allow(1009), false);
});

test('half-open lets exactly one probe through; success closes', () => {
  const b = new Breaker(opts);
  for (let i = 0; i < 3; i++) b.failure(0);
  assert.equal(b.allow(1000), true);
  assert.equal(b.state, 'half-open');
  assert.equal(b.allow(1001), false, 'second caller waits for the probe');
  b.success();
  assert.equal(b.state, 'closed');
  assert.equal(b.allow(1002), true);
  assert.equal(b.allow(1002), true);
});

test('a failed probe reopens with a doubled cooldown, capped', () => {
  const b = new Breaker(opts);
  for (let i = 0; i < 3; i++) b.failure(0);
  const rows: Array<[probeAt: number, nextOpenUntil: number]> = [
    [1000, 3000], // cooldown 2000
    [3000, 7000], // 4000
    [7000, 11000], // capped at 4000
  ];
  for (const [at, until] of rows) {
    assert.equal(b.allow(at - 1), false);
    assert.equal(b.allow(at), true);
    b.failure(at);
    assert.equal(b.state, 'open');
    assert.equal(b.allow(until - 1), false);
  }
  assert.equal(b.allow(11000), true);
  b.success();
  for (let i = 0; i < 3; i++) b.failure(20_000);
  assert.equal(b.allow(21_000), true, 'cooldown back to 1000 after recovery');
});
