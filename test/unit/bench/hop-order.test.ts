import { test } from 'node:test';
import assert from 'node:assert/strict';
import { balancedRounds, roundPlan, type Segment } from '../../../bench/lib/hop-order.ts';

const PATHS = ['pass', 'agent'] as const;
const short = (plan: readonly Segment[]) => plan.map((s) => `${s.side}${s.path[0]}${s.measured ? '' : '~'}`).join(' ');

/** The first measured path of each side's block that follows another side's block (the cold start after an idle). */
function coldStarts(plan: readonly Segment[]): Array<[number, string]> {
  const out: Array<[number, string]> = [];
  for (let i = 1; i < plan.length; i++) {
    if (plan[i]!.side === plan[i - 1]!.side) continue;
    const firstMeasured = plan.slice(i).find((s) => s.measured && s.side === plan[i]!.side)!;
    out.push([plan[i]!.side, firstMeasured.path]);
  }
  return out;
}

/** Sum over rounds of each (side, path)'s positions among the round's measured segments. */
function positionSums(plans: readonly Segment[][]): Map<string, number> {
  const sums = new Map<string, number>();
  for (const plan of plans) {
    plan.filter((s) => s.measured).forEach((s, i) => sums.set(`${s.side}${s.path}`, (sums.get(`${s.side}${s.path}`) ?? 0) + i));
  }
  return sums;
}

test('roundPlan: the four rounds of two sides, written out', () => {
  const want = [
    '0p 0a 0a 0p 1p 1a 1a 1p',
    '1p 1a 1a 1p 0p 0a 0a 0p',
    '0a 0p 0p 0a 1a 1p 1p 1a',
    '1a 1p 1p 1a 0a 0p 0p 0a',
  ];
  for (let r = 0; r < 4; r++) assert.equal(short(roundPlan(r, 2, PATHS, 2, false)), want[r], `round ${r}`);
  assert.equal(short(roundPlan(4, 2, PATHS, 2, false)), want[0], 'the cycle repeats');
  assert.equal(short(roundPlan(0, 2, PATHS, 1, true)), '0p~ 0a~ 0p 0a 1p~ 1a~ 1p 1a', 'warm-up: one per path, at the head of each block');
  assert.equal(short(roundPlan(2, 2, PATHS, 1, true)), '0a~ 0p~ 0a 0p 1a~ 1p~ 1a 1p');
});

test('roundPlan: over 2 x sides rounds every side starts after the idle once with each path', () => {
  for (const segments of [1, 2, 3, 4]) {
    const starts = [0, 1, 2, 3].flatMap((r) => coldStarts(roundPlan(r, 2, PATHS, segments, false)));
    assert.deepEqual(
      starts.map(([s, p]) => `${s}${p}`).sort(),
      ['0agent', '0pass', '1agent', '1pass'],
      `segments ${segments}`,
    );
  }
  // what the bench did until session 18 (side order and path order flipped together) fails it:
  // the cold start was always side 1's (the baseline's) pass and side 0's (current's) agent
  const legacy = (r: number): Segment[] => {
    const sides = r % 2 === 0 ? [0, 1] : [1, 0];
    const first = r % 2 === 0 ? ['pass', 'agent'] : ['agent', 'pass'];
    return sides.flatMap((side) => first.map((path) => ({ side, path, measured: true })));
  };
  const legacyStarts = [0, 1, 2, 3].flatMap((r) => coldStarts(legacy(r))).map(([s, p]) => `${s}${p}`);
  assert.deepEqual([...new Set(legacyStarts)].sort(), ['0agent', '1pass']);
});

test('roundPlan: every (side, path) has the same mean position over a balanced cycle, and its segment count in every round', () => {
  for (const sides of [1, 2, 3]) {
    for (const segments of [1, 2, 3, 4]) {
      const cycle = balancedRounds(sides, PATHS.length);
      const plans = Array.from({ length: cycle }, (_, r) => roundPlan(r, sides, PATHS, segments, true));
      const sums = [...positionSums(plans).values()];
      assert.equal(sums.length, sides * PATHS.length);
      assert.ok(sums.every((x) => x === sums[0]), `sides ${sides} segments ${segments}: ${sums.join(' ')}`);
      for (const plan of plans) {
        for (let side = 0; side < sides; side++) {
          for (const path of PATHS) {
            assert.equal(plan.filter((s) => s.measured && s.side === side && s.path === path).length, segments);
            assert.equal(plan.filter((s) => !s.measured && s.side === side && s.path === path).length, 1);
          }
          // a side's segments are one block, its warm-up first
          const idx = plan.flatMap((s, i) => (s.side === side ? [i] : []));
          assert.equal(idx[idx.length - 1]! - idx[0]!, idx.length - 1, 'contiguous');
          assert.deepEqual(idx.slice(0, PATHS.length).map((i) => plan[i]!.measured), [false, false]);
        }
      }
    }
  }
});

test('roundPlan: one side alternates the path order every round; one path keeps its order', () => {
  assert.equal(short(roundPlan(0, 1, PATHS, 2, false)), '0p 0a 0a 0p');
  assert.equal(short(roundPlan(1, 1, PATHS, 2, false)), '0a 0p 0p 0a');
  assert.equal(short(roundPlan(1, 2, ['agent'], 2, false)), '1a 1a 0a 0a');
  assert.equal(balancedRounds(2, 1), 2);
  assert.equal(balancedRounds(2, 2), 4);
  assert.equal(balancedRounds(1, 2), 2);
});

test('roundPlan: bad arguments are refused', () => {
  assert.throws(() => roundPlan(-1, 2, PATHS, 1, false), RangeError);
  assert.throws(() => roundPlan(0.5, 2, PATHS, 1, false), RangeError);
  assert.throws(() => roundPlan(0, 0, PATHS, 1, false), RangeError);
  assert.throws(() => roundPlan(0, 2, PATHS, 0, false), RangeError);
  assert.throws(() => roundPlan(0, 2, [], 1, false), RangeError);
});
