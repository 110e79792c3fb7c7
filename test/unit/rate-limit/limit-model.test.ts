// The timing-tolerant checks of test/helpers/rate-limit.ts against limiters run on a simulated
// clock: at any speed a right limiter shows no mismatch, and one that admits one too many does.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { bucketMismatches, slidingWindowMismatches, type TimedCall } from '../../helpers/rate-limit.ts';
import { bucketParams, newBucket, takeToken, type Bucket } from '../../../plugins/rate-limit/limiter.ts';

/** `n` sequential calls, each taking up to `spanMs` (decided somewhere inside), deterministic jitter. */
function timeline(n: number, spanMs: number, decide: (now: number) => boolean): TimedCall[] {
  const calls: TimedCall[] = [];
  let t = 1_000_000;
  for (let i = 0; i < n; i++) {
    const sent = t;
    const at = sent + ((i * 37) % (spanMs + 1));
    const answered = at + ((i * 11) % (spanMs + 1));
    calls.push({ sent, answered, allowed: decide(at) });
    t = answered + ((i * 7) % 5);
  }
  return calls;
}

/** The Redis script's log: allowed calls' times, counted when newer than now - windowMs. */
function slidingLog(limit: number, windowMs: number) {
  const log: number[] = [];
  return (now: number) => {
    const inWindow = log.filter((t) => t > now - windowMs).length;
    if (inWindow >= limit) return false;
    log.push(now);
    return true;
  };
}

function bucket(maxRps: number) {
  const p = bucketParams(maxRps, 0);
  let b: Bucket | undefined;
  return (now: number) => takeToken((b ??= newBucket(p, now)), p, now).allowed;
}

test('sliding window: no mismatch at any speed for a right limit; one too many is caught when the timing decides it', () => {
  for (const span of [0, 5, 40, 150, 700]) {
    assert.deepEqual(slidingWindowMismatches(timeline(60, span, slidingLog(10, 1000)), 10, 1000), [], `span ${span}`);
  }
  assert.notDeepEqual(slidingWindowMismatches(timeline(60, 5, slidingLog(11, 1000)), 10, 1000), []);
  assert.notDeepEqual(slidingWindowMismatches(timeline(60, 5, slidingLog(9, 1000)), 10, 1000), [], 'and one too few');
});

test('token bucket: no mismatch at any speed for the real bucket; a bigger one is caught', () => {
  for (const span of [0, 5, 40, 150, 700]) {
    assert.deepEqual(bucketMismatches(timeline(40, span, bucket(3)), 3, 3, { startsFull: true }), [], `span ${span}`);
  }
  assert.notDeepEqual(bucketMismatches(timeline(40, 5, bucket(4)), 3, 3, { startsFull: true }), []);
  assert.notDeepEqual(bucketMismatches(timeline(40, 5, bucket(2)), 3, 3, { startsFull: true }), [], 'and a smaller one');
});
