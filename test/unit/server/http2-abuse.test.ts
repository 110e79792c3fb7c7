// The fixed-window counter behind the HTTP/2 per-session abuse limits.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { WindowCounter } from '../../../src/server/http2-abuse.ts';

test('over the limit within one window; a new window starts from zero', () => {
  const c = new WindowCounter(3, 1000);
  assert.deepEqual([c.hit(0), c.hit(10), c.hit(20), c.hit(30)], [false, false, false, true]);
  assert.equal(c.hit(999), true, 'still the same window');
  assert.deepEqual([c.hit(1000), c.hit(1001), c.hit(1002), c.hit(1003)], [false, false, false, true]);
});

test('a steady rate under the limit never trips', () => {
  const c = new WindowCounter(10, 1000);
  for (let t = 0; t < 60_000; t += 101) assert.equal(c.hit(t), false, `at ${t}`);
});
