import { test } from 'node:test';
import assert from 'node:assert/strict';
import { blocksForHalfWidth, compareByBlock, flagSlowHost, hostDependence, hostLoopMs, logSpread, MIN_BLOCKS_FOR_VERDICT, normaliseByHost, verdictAgainst, type BlockRun } from '../../../bench/lib/block-ratios.ts';

const run = (block: number, variant: string, cpuUsPerRequest: number, rps: number, calibrationMs: number): BlockRun => ({ block, variant, cpuUsPerRequest, rps, calibrationMs });

test('flagSlowHost: against the median calibration of all runs, strictly above the threshold', () => {
  // median calibration = 100 (of 90, 100, 100, 124, 126)
  const runs = [run(1, 'off', 80, 10_000, 90), run(1, '1%', 82, 9_800, 100), run(2, 'off', 81, 9_900, 100), run(2, '1%', 83, 9_700, 125), run(3, 'off', 140, 6_000, 126)];
  const cases: Array<[number, boolean[]]> = [
    [1.25, [false, false, false, false, true]], // 125 is exactly 1.25x: not flagged; 126 is
    [1.2, [false, false, false, true, true]],
    [1.3, [false, false, false, false, false]],
  ];
  for (const [threshold, want] of cases) {
    const got = flagSlowHost(runs, threshold);
    assert.deepEqual(got.map((r) => r.slowHost), want, `threshold ${threshold}`);
    assert.deepEqual(got.map((r) => r.hostSlowdown), [0.9, 1, 1, 1.25, 1.26]);
    assert.equal(got[0]!.cpuUsPerRequest, 80, 'the run itself is kept');
  }
  assert.deepEqual(flagSlowHost([], 1.25), []);
  assert.throws(() => flagSlowHost(runs, 1), RangeError);
  assert.throws(() => flagSlowHost(runs, Number.NaN), RangeError);
});

test('compareByBlock: per-block ratios, flagged blocks kept apart, incomplete blocks skipped', () => {
  const runs = flagSlowHost(
    [
      run(1, 'off', 100, 10_000, 100),
      run(1, '1%', 103, 9_700, 100),
      run(1, '100%', 120, 8_000, 100),
      run(2, '1%', 110, 9_000, 100), // order within a block does not matter
      run(2, 'off', 100, 10_000, 100),
      run(3, 'off', 150, 6_000, 170), // slow host: the block's ratio goes to the second line only
      run(3, '1%', 100, 10_000, 100),
      run(4, '1%', 99, 10_100, 100), // no "off" in block 4: no ratio
      run(5, 'off', 100, 10_000, 100),
      run(5, '1%', 102, 9_800, 100),
    ],
    1.25,
  );
  const c = compareByBlock(runs, '1%', 'off');
  assert.equal(c.variant, '1%');
  assert.equal(c.reference, 'off');
  assert.deepEqual(c.all.blocks, [1, 2, 3, 5]);
  assert.deepEqual(c.clean.blocks, [1, 2, 5]);
  assert.deepEqual(c.flaggedBlocks, [3]);
  assert.deepEqual(c.clean.cpu.ratios, [1.03, 1.1, 1.02]);
  assert.deepEqual(c.clean.rps.ratios, [0.97, 0.9, 0.98]);
  assert.equal(c.clean.cpu.median, 1.03);
  assert.equal(c.all.cpu.ratios.length, 4);
  assert.equal(c.all.cpu.ratios[2], 100 / 150);
  assert.equal(c.all.cpu.median, (1.02 + 1.03) / 2);
  // the interval brackets the median and comes from the block ratios only
  assert.ok(c.clean.cpu.lo <= c.clean.cpu.median && c.clean.cpu.median <= c.clean.cpu.hi);
  assert.ok(c.clean.cpu.lo >= 1.02 && c.clean.cpu.hi <= 1.1);
  // a variant with one block only against the reference
  const h = compareByBlock(runs, '100%', 'off');
  assert.deepEqual(h.all.blocks, [1]);
  assert.deepEqual([h.clean.cpu.median, h.clean.cpu.lo, h.clean.cpu.hi], [1.2, 1.2, 1.2]);
  // no common block: empty summaries, NaN medians
  const none = compareByBlock(runs, '100%', 'nothing');
  assert.deepEqual(none.all.blocks, []);
  assert.ok(Number.isNaN(none.all.cpu.median) && Number.isNaN(none.all.cpu.lo));
  // the same seed gives the same interval
  assert.deepEqual(compareByBlock(runs, '1%', 'off', 9).clean.cpu, compareByBlock(runs, '1%', 'off', 9).clean.cpu);
});

test('verdictAgainst: a cost goal read from an interval', () => {
  const cases: Array<[number, number, number, 'higher' | 'lower', string]> = [
    // CPU per request, "costs <= 3%"
    [0.99, 1.029, 0.03, 'higher', 'meets'],
    [0.99, 1.03, 0.03, 'higher', 'meets'],
    [1.01, 1.05, 0.03, 'higher', 'not resolved'],
    [1.031, 1.08, 0.03, 'higher', 'exceeds'],
    [1.03, 1.08, 0.03, 'higher', 'not resolved'],
    // throughput, "costs <= 3%"
    [0.97, 1.01, 0.03, 'lower', 'meets'],
    [0.95, 1.01, 0.03, 'lower', 'not resolved'],
    [0.9, 0.969, 0.03, 'lower', 'exceeds'],
    // 100%, "costs <= 25%"
    [0.78, 0.86, 0.25, 'lower', 'meets'],
    [1.1, 1.3, 0.25, 'higher', 'not resolved'],
    // no interval
    [Number.NaN, Number.NaN, 0.03, 'higher', 'not resolved'],
  ];
  const five = [1, 1, 1, 1, 1];
  for (const [lo, hi, cost, dearerIs, want] of cases) assert.equal(verdictAgainst({ lo, hi, ratios: five }, cost, dearerIs), want, `${lo}-${hi} ${dearerIs} ${cost}`);
  // an interval over fewer than MIN_BLOCKS_FOR_VERDICT blocks decides nothing, however narrow
  assert.equal(MIN_BLOCKS_FOR_VERDICT, 5);
  assert.equal(verdictAgainst({ lo: 1.2, hi: 1.2, ratios: [1.2] }, 0.03, 'higher'), 'too few blocks');
  assert.equal(verdictAgainst({ lo: 0.99, hi: 1.01, ratios: [0.99, 1, 1, 1.01] }, 0.03, 'higher'), 'too few blocks');
});

test('blocksForHalfWidth: the interval shrinks as 1/sqrt(blocks)', () => {
  const ten = Array.from({ length: 10 }, () => 1);
  const cases: Array<[number, number, number[], number, number | null]> = [
    [0.96, 1.04, ten, 0.02, 40], // +-4% with 10 blocks -> +-2% needs 4x the blocks
    [0.98, 1.02, ten, 0.02, 10], // already there
    [0.99, 1.01, ten, 0.02, 10], // narrower than asked: never fewer blocks than it has
    [0.97, 1.03, ten, 0.01, 90],
    [1, 1, ten, 0.02, 10], // zero width
    [1, 1.1, [1], 0.02, null], // one block: nothing to scale
    [Number.NaN, Number.NaN, ten, 0.02, null],
  ];
  for (const [lo, hi, ratios, half, want] of cases) assert.equal(blocksForHalfWidth({ lo, hi, ratios }, half), want, `${lo}-${hi} n ${ratios.length} +-${half}`);
});

const looped = (block: number, variant: string, cpuUsPerRequest: number, before: number, after: number): BlockRun => ({
  block,
  variant,
  cpuUsPerRequest,
  rps: 1e6 / cpuUsPerRequest,
  calibrationMs: Math.max(before, after),
  calibrationBeforeMs: before,
  calibrationAfterMs: after,
});

test('hostLoopMs: the mean of before and after when both were recorded, else the slower one', () => {
  const cases: Array<[BlockRun, number]> = [
    [looped(1, 'off', 90, 100, 120), 110],
    [looped(1, 'off', 90, 150, 150), 150],
    [run(1, 'off', 90, 10_000, 130), 130], // an older record: only the slower loop
    [{ ...run(1, 'off', 90, 10_000, 130), calibrationBeforeMs: 100 }, 130], // half a pair is not a pair
  ];
  for (const [r, want] of cases) assert.equal(hostLoopMs(r), want);
});

test('normaliseByHost: CPU and req/s scaled by the run\'s loop against the median loop, nothing dropped', () => {
  // loops 100, 100, 150 (mean of 140/160), 50: median 100
  const runs = flagSlowHost([looped(1, 'off', 80, 100, 100), looped(1, '1%', 82, 100, 100), looped(2, 'off', 120, 140, 160), looped(2, '1%', 41, 50, 50)], 1.25);
  const got = normaliseByHost(runs);
  assert.deepEqual(got.map((r) => r.cpuUsPerRequest), [80, 82, 80, 82]);
  assert.deepEqual(
    got.map((r) => Math.round(r.rps)),
    runs.map((r, i) => Math.round(r.rps * [1, 1, 1.5, 0.5][i]!)),
  );
  assert.deepEqual(got.map((r) => r.slowHost), [false, false, true, false], 'flags stay as they were measured');
  assert.equal(runs[2]!.cpuUsPerRequest, 120, 'the input is not changed');
  // a slow phase that hit one side of a block cancels out of its ratio
  const c = compareByBlock(got, '1%', 'off');
  assert.deepEqual(c.all.cpu.ratios, [82 / 80, 82 / 80]);
  // a ratio between two runs at the same host speed is left as it was
  const same = normaliseByHost([looped(1, 'off', 80, 120, 120), looped(1, '1%', 88, 120, 120), looped(2, 'off', 70, 90, 90)]);
  assert.equal(same[1]!.cpuUsPerRequest / same[0]!.cpuUsPerRequest, 88 / 80);
  assert.throws(() => normaliseByHost([looped(1, 'off', 80, 0, 0), looped(1, '1%', 80, 100, 100), looped(2, 'off', 80, 100, 100)]), RangeError);
  assert.deepEqual(normaliseByHost([]), []);
});

test('logSpread: standard deviation of log ratios', () => {
  const cases: Array<[number[], number]> = [
    [[1, 1, 1], 0],
    [[Math.E, 1 / Math.E], Math.sqrt(2)], // logs 1 and -1
    [[2, 2, 0.5, 0.5], Math.sqrt((4 * Math.LN2 ** 2) / 3)],
    [[1.1], Number.NaN],
    [[], Number.NaN],
    [[1, 0, -1, Number.NaN, 1], 0], // non-positive and non-finite ratios are not ratios
  ];
  for (const [xs, want] of cases) {
    const got = logSpread(xs);
    if (Number.isNaN(want)) assert.ok(Number.isNaN(got), String(xs));
    else assert.ok(Math.abs(got - want) < 1e-12, `${xs}: ${got} vs ${want}`);
  }
});

test('hostDependence: slope and correlation of log CPU on log host loop within variants', () => {
  // CPU exactly proportional to the loop in each variant (different levels): slope 1, r 1, no residual
  const prop = [100, 120, 150, 90].flatMap((loop, i) => [looped(i + 1, 'off', 0.8 * loop, loop, loop), looped(i + 1, '1%', 0.85 * loop, loop, loop)]);
  const p = hostDependence(prop);
  assert.equal(p.n, 8);
  assert.ok(Math.abs(p.slope - 1) < 1e-12 && Math.abs(p.r - 1) < 1e-12 && p.residual < 1e-9, JSON.stringify(p));
  assert.ok(p.spread > 0.1);
  // CPU going as loop^2: slope 2
  const sq = [100, 120, 150, 90].map((loop, i) => looped(i + 1, 'off', (loop / 100) ** 2 * 80, loop, loop));
  assert.ok(Math.abs(hostDependence(sq).slope - 2) < 1e-12);
  // the variants' own levels do not make a slope: each variant at one host speed
  const flat = [looped(1, 'off', 80, 100, 100), looped(2, 'off', 80, 100, 100), looped(1, '1%', 90, 130, 130), looped(2, '1%', 90, 130, 130)];
  assert.ok(Number.isNaN(hostDependence(flat).slope));
  assert.ok(Number.isNaN(hostDependence([]).slope));
});
