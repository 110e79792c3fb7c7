// The hot-path metric primitives must expose exactly what prom-client would for the same updates.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Counter, Histogram, Registry } from 'prom-client';
import { FastCounter, FastHistogram } from '../../../src/metrics/fast.ts';

const BUCKETS = [0.001, 0.01, 0.1, 1];

test('FastHistogram renders the same exposition text as prom-client', async () => {
  const ours = new Registry();
  const theirs = new Registry();
  const h1 = new FastHistogram('lat_seconds', 'latency', ['route', 'method'], BUCKETS, ours);
  const h2 = new Histogram({ name: 'lat_seconds', help: 'latency', labelNames: ['route', 'method'], buckets: BUCKETS, registers: [theirs] });
  const samples: Array<[string, string, number]> = [
    ['a', 'GET', 0.0005],
    ['a', 'GET', 0.001], // on a bound: counts in that bucket (le is inclusive)
    ['a', 'GET', 0.05],
    ['b', 'POST', 3],
    ['a', 'GET', 2],
    ['b', 'POST', 0.1],
  ];
  const cell = h1.child('a', 'GET');
  for (const [route, method, v] of samples) {
    if (route === 'a') cell.observe(v);
    else h1.observe({ route, method }, v);
    h2.observe({ route, method }, v);
  }
  assert.equal(await ours.metrics(), await theirs.metrics());
});

test('FastCounter renders the same exposition text as prom-client', async () => {
  const ours = new Registry();
  const theirs = new Registry();
  const c1 = new FastCounter('req_total', 'requests', ['route', 'status'], ours);
  const c2 = new Counter({ name: 'req_total', help: 'requests', labelNames: ['route', 'status'], registers: [theirs] });
  const hot = c1.child('r1', '200');
  for (let i = 0; i < 5; i++) {
    hot.value++;
    c2.inc({ route: 'r1', status: '200' });
  }
  c1.inc({ route: 'r2', status: '503' }, 2);
  c2.inc({ route: 'r2', status: '503' }, 2);
  assert.equal(await ours.metrics(), await theirs.metrics());
  assert.deepEqual(
    (await c1.get()).values.map((v) => [v.labels, v.value]),
    [
      [{ route: 'r1', status: '200' }, 5],
      [{ route: 'r2', status: '503' }, 2],
    ],
  );
});

test('a child with the wrong number of label values is refused', () => {
  const c = new FastCounter('x_total', 'x', ['a', 'b'], new Registry());
  assert.throws(() => c.child('only-one'), /expected 2 label values, got 1/);
  assert.throws(() => new FastHistogram('h', 'h', [], [1, 1], new Registry()), /buckets must increase/);
});
