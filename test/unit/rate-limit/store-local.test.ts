import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LocalStore } from '../../../plugins/rate-limit/store-local.ts';
import { bucketParams } from '../../../plugins/rate-limit/limiter.ts';

function clock(start = 1_000_000) {
  const c = { t: start, now: () => c.t };
  return c;
}

test('a flood of distinct keys never holds more than max-keys buckets', () => {
  const c = clock();
  let forced = 0;
  const store = new LocalStore({ params: bucketParams(10, 0), maxKeys: 1000, now: c.now, onKeysChanged: (_s, _i, f) => (forced += f) });
  for (let i = 0; i < 50_000; i++) {
    store.take(`i:10.0.${i >> 8}.${i & 255}`);
    assert.ok(store.size <= 1000);
  }
  assert.equal(store.size, 1000);
  assert.equal(forced, 49_000);
});

test('idle keys are evicted first, so active keys keep their state', () => {
  const c = clock();
  let idleDropped = 0;
  const store = new LocalStore({ params: bucketParams(1, 0), maxKeys: 3, now: c.now, onKeysChanged: (_s, i) => (idleDropped += i) });
  store.take('idle-1');
  store.take('idle-2');
  c.t += 11_000; // both idle > 10 s
  store.take('hot');
  assert.equal(store.take('hot').allowed, false, 'hot key used its only token');
  store.take('new-1');
  store.take('new-2');
  assert.equal(idleDropped, 2);
  assert.equal(store.size, 3);
  // The hot key was not evicted: still limited.
  assert.equal(store.take('hot').allowed, false);
});

test('least recently used key goes when the map is full of active keys', () => {
  const c = clock();
  const store = new LocalStore({ params: bucketParams(1, 0), maxKeys: 2, now: c.now });
  store.take('a');
  store.take('b');
  store.take('a'); // a is now more recent than b
  store.take('c'); // evicts b
  assert.equal(store.take('a').allowed, false, 'a kept its (empty) bucket');
  assert.equal(store.take('b').allowed, true, 'b started over');
});

test('keys still refilling are not treated as idle', () => {
  const c = clock();
  // 0.01 rps: a bucket takes 100 s to refill, longer than the 10 s idle threshold.
  const store = new LocalStore({ params: bucketParams(0.01, 0), maxKeys: 10, now: c.now });
  store.take('slow');
  c.t += 20_000;
  assert.equal(store.sweep(), 0);
  assert.equal(store.take('slow').allowed, false);
  c.t += 100_001;
  assert.equal(store.sweep(), 1);
});
