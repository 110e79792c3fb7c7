import { test } from 'node:test';
import assert from 'node:assert/strict';
import { bootstrapMedianInterval, linearSlope, median, percentile, ratio, seededRandom } from '../../../bench/lib/stats.ts';

test('median', () => {
  const cases: Array<[number[], number]> = [
    [[3], 3],
    [[3, 1, 2], 2],
    [[4, 1, 3, 2], 2.5],
    [[10, Number.NaN, 30, 20], 20],
  ];
  for (const [xs, want] of cases) assert.equal(median(xs), want, JSON.stringify(xs));
  assert.ok(Number.isNaN(median([])));
});

test('percentile is nearest-rank', () => {
  const xs = Array.from({ length: 100 }, (_, i) => 100 - i); // 100..1, unsorted on purpose
  const cases: Array<[number, number]> = [
    [0, 1],
    [1, 1],
    [50, 50],
    [99, 99],
    [99.9, 100],
    [100, 100],
  ];
  for (const [p, want] of cases) assert.equal(percentile(xs, p), want, `p${p}`);
  assert.equal(percentile([7, 3], 50), 3);
  assert.ok(Number.isNaN(percentile([], 50)));
  assert.throws(() => percentile([1], 101), RangeError);
});

test('linearSlope', () => {
  assert.equal(linearSlope([0, 1, 2, 3], [10, 12, 14, 16]), 2);
  assert.equal(linearSlope([0, 1, 2], [5, 5, 5]), 0);
  assert.equal(linearSlope([0, 1, 2, 3], [4, 3, 2, 1]), -1);
  // noisy but flat on average
  assert.equal(linearSlope([0, 1, 2, 3], [10, 12, 10, 12]), 0.4);
  assert.equal(linearSlope([1], [1]), 0);
  assert.equal(linearSlope([2, 2], [1, 5]), 0);
  assert.throws(() => linearSlope([1, 2], [1]), RangeError);
});

test('ratio', () => {
  assert.equal(ratio(50, 100), 0.5);
  assert.equal(ratio(3, 0), null);
  assert.equal(ratio(null, 1), null);
  assert.equal(ratio(1, undefined), null);
  assert.equal(ratio(Number.NaN, 1), null);
});

test('bootstrapMedianInterval: seeded, brackets the median, narrows with more data', () => {
  const few = [0.9, 1.1, 1.0, 0.95, 1.05];
  const [lo, hi] = bootstrapMedianInterval(few, { seed: 7 });
  assert.ok(lo <= median(few) && median(few) <= hi, `${lo} <= ${median(few)} <= ${hi}`);
  assert.deepEqual(bootstrapMedianInterval(few, { seed: 7 }), [lo, hi], 'same seed, same interval');
  // the same spread, 20 times the data: the interval of the median shrinks
  const many = Array.from({ length: 100 }, (_, i) => few[i % few.length]!);
  const [lo2, hi2] = bootstrapMedianInterval(many, { seed: 7 });
  assert.ok(hi2 - lo2 < hi - lo, `${hi2 - lo2} < ${hi - lo}`);
  // a constant sample has a zero-width interval at that value
  assert.deepEqual(bootstrapMedianInterval([1.02, 1.02, 1.02]), [1.02, 1.02]);
  const [nlo, nhi] = bootstrapMedianInterval([]);
  assert.ok(Number.isNaN(nlo) && Number.isNaN(nhi));
});

test('seededRandom is reproducible and in [0, 1)', () => {
  const a = seededRandom(42);
  const b = seededRandom(42);
  for (let i = 0; i < 1000; i++) {
    const x = a();
    assert.equal(x, b());
    assert.ok(x >= 0 && x < 1);
  }
});
