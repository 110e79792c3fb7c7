import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CircuitBreaker } from '../../../src/agent-protocol/agent-breaker.ts';
import { Semaphore } from '../../../src/agent-protocol/semaphore.ts';

const settings = { failureThreshold: 3, successThreshold: 2, openMs: 1000, halfOpenMaxRequests: 1 };

test('opens after the failure threshold, half-opens after the open period, closes after successes', () => {
  const seen: string[] = [];
  const b = new CircuitBreaker(settings, (s) => seen.push(s));
  for (let i = 0; i < 2; i++) {
    assert.equal(b.tryPass(0), true);
    b.onFailure(0);
  }
  assert.equal(b.state(0), 'closed');
  b.tryPass(0);
  b.onFailure(10);
  assert.equal(b.state(10), 'open');
  assert.equal(b.tryPass(500), false);
  assert.equal(b.tryPass(1010), true, 'one probe after the open period');
  assert.equal(b.state(1010), 'half-open');
  assert.equal(b.tryPass(1010), false, 'only one probe at a time');
  b.onSuccess();
  assert.equal(b.tryPass(1011), true);
  b.onSuccess();
  assert.equal(b.state(1011), 'closed');
  assert.deepEqual(seen, ['open', 'half-open', 'closed']);
});

test('a failed probe re-opens; neutral outcomes free the probe', () => {
  const b = new CircuitBreaker(settings);
  for (let i = 0; i < 3; i++) b.onFailure(0);
  assert.equal(b.tryPass(1000), true);
  b.onNeutral();
  assert.equal(b.tryPass(1000), true, 'probe slot returned');
  b.onFailure(1000);
  assert.equal(b.state(1500), 'open');
});

test('closed is true only while every call passes without a reservation', () => {
  const b = new CircuitBreaker(settings);
  assert.equal(b.closed, true);
  for (let i = 0; i < 3; i++) b.onFailure(0);
  assert.equal(b.closed, false, 'open');
  assert.equal(b.tryPass(1000), true);
  assert.equal(b.closed, false, 'half-open: the clock and the probe budget matter');
  b.onSuccess();
  b.onSuccess();
  assert.equal(b.closed, true);
});

test('success resets the consecutive failure count', () => {
  const b = new CircuitBreaker(settings);
  b.onFailure(0);
  b.onFailure(0);
  b.onSuccess();
  b.onFailure(0);
  b.onFailure(0);
  assert.equal(b.state(0), 'closed');
});

test('semaphore: FIFO permits, aborted waiters leave the queue', async () => {
  const s = new Semaphore(1);
  const order: string[] = [];
  const r1 = await s.acquire();
  const ac = new AbortController();
  const p2 = s.acquire(ac.signal).then(
    () => order.push('2'),
    () => order.push('2-aborted'),
  );
  const p3 = s.acquire().then((r) => {
    order.push('3');
    r();
  });
  assert.equal(s.queued, 2);
  ac.abort(new Error('gone'));
  await p2;
  assert.equal(s.queued, 1);
  r1();
  await p3;
  assert.deepEqual(order, ['2-aborted', '3']);
  assert.equal(s.inUse, 0);
});

test('semaphore: tryAcquire/release without a release function; a release hands the permit to the first waiter', async () => {
  const s = new Semaphore(2);
  assert.equal(s.tryAcquire(), true);
  assert.equal(s.tryAcquire(), true);
  assert.equal(s.tryAcquire(), false, 'no permit left');
  assert.equal(s.inUse, 2);
  const waiter = s.take();
  assert.equal(s.queued, 1);
  assert.equal(s.tryAcquire(), false, 'a waiter is queued: no jumping the queue');
  s.release();
  const r = await waiter.ready;
  assert.equal(s.queued, 0);
  assert.equal(s.inUse, 2, 'the released permit went to the waiter');
  r();
  r(); // idempotent
  s.release();
  assert.equal(s.inUse, 0);
});
