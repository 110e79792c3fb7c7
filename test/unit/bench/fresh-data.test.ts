import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { calibrationFromLog, parseFreshData, poolFreshData, poolKey, type FreshData, type FreshRun } from '../../../bench/lib/fresh-data.ts';
import { comparisons, freshReport, interleavingGain } from '../../../bench/lib/fresh-report.ts';
import { logSpread } from '../../../bench/lib/block-ratios.ts';

const freshRun = (block: number, variant: string, cpuUsPerRequest: number, before = 100, after = 100): FreshRun => ({
  block,
  variant,
  cpuUsPerRequest,
  rps: 1e6 / cpuUsPerRequest,
  calibrationMs: Math.max(before, after),
  calibrationBeforeMs: before,
  calibrationAfterMs: after,
  calibrationWallMs: Math.max(before, after) + 3,
  drift: 0.98,
  errors: 0,
  otlpBatches: 0,
});

const dataset = (over: Partial<FreshData> = {}, commit: string | null = 'a'.repeat(40)): FreshData => ({
  variants: [
    { label: 'off', rate: null, tree: 'current', root: '/x', commit, dirty: false },
    { label: '1%', rate: 0.01, tree: 'current', root: '/x', commit, dirty: false },
  ],
  warmup: 60_000,
  requests: 40_000,
  connections: 20,
  threshold: 1.25,
  interleave: 8,
  node: 'v20.0.0',
  runs: [freshRun(1, 'off', 90), freshRun(1, '1%', 92), freshRun(2, '1%', 93), freshRun(2, 'off', 91)],
  ...over,
});

test('parseFreshData: accepts a --json file, names what is missing', () => {
  assert.equal(parseFreshData(JSON.stringify(dataset())).runs.length, 4);
  const cases: Array<[unknown, RegExp]> = [
    [{ runs: [] }, /no variants or runs/],
    [{ ...dataset(), requests: undefined }, /requests missing/],
    [{ ...dataset(), runs: [{ ...freshRun(1, 'off', 90), cpuUsPerRequest: 'x' }] }, /run 0: cpuUsPerRequest missing/],
    [{ ...dataset(), runs: [freshRun(1, '5%', 90)] }, /unknown variant 5%/],
  ];
  for (const [d, err] of cases) assert.throws(() => parseFreshData(JSON.stringify(d), 'f.json'), err);
});

test('poolFreshData: blocks renumbered after each other when commit and options agree', () => {
  const a = dataset({ startedAt: 't1' });
  const b = dataset({ startedAt: 't2', runs: [freshRun(1, 'off', 80), freshRun(1, '1%', 81), freshRun(3, 'off', 82), freshRun(3, '1%', 83)] });
  const p = poolFreshData([
    { name: 'a', data: a },
    { name: 'b', data: b },
  ]);
  assert.deepEqual(
    p.runs.map((r) => [r.block, r.variant, r.cpuUsPerRequest]),
    [
      [1, 'off', 90],
      [1, '1%', 92],
      [2, '1%', 93],
      [2, 'off', 91],
      [3, 'off', 80],
      [3, '1%', 81],
      [5, 'off', 82],
      [5, '1%', 83],
    ],
  );
  assert.equal(p.startedAt, 't1, t2');
  assert.equal(a.runs[0]!.block, 1, 'the inputs are not changed');
  // one file: as it is, even without a recorded commit
  const old = dataset({}, null);
  assert.equal(poolFreshData([{ name: 'old', data: old }]), old);
  assert.throws(() => poolFreshData([]), /no data/);
});

test('poolFreshData: refuses to mix commits, options, designs, or unknown and modified trees', () => {
  const a = dataset();
  const cases: Array<[FreshData, RegExp]> = [
    [dataset({}, 'b'.repeat(40)), /differ in commit or options/],
    [dataset({ requests: 20_000 }), /differ/],
    [dataset({ warmup: 30_000 }), /differ/],
    [dataset({ connections: 10 }), /differ/],
    [dataset({ interleave: 0 }), /differ/],
    [dataset({ node: 'v22.0.0' }), /differ/],
    [dataset({ nodeFlags: ['--min-semi-space-size=16'] }), /differ/],
    [dataset({ threshold: 1.3 }), /differ/],
    [dataset({ variants: [dataset().variants[0]!, { ...dataset().variants[1]!, rate: 0.02, label: '2%' }], runs: [] }), /differ/],
    [dataset({}, null), /has no recorded commit/],
    [dataset({ variants: dataset().variants.map((v) => ({ ...v, dirty: true })) }), /modified tree/],
  ];
  for (const [b, err] of cases) {
    assert.throws(
      () =>
        poolFreshData([
          { name: 'a', data: a },
          { name: 'b', data: b },
        ]),
      err,
    );
  }
  // a file written before --node-flags was recorded pools with one that ran without flags
  assert.equal(poolKey(dataset({ nodeFlags: [] })), poolKey(a));
  // the roots may differ (two worktrees at the same commit)
  assert.equal(poolKey(dataset({ variants: dataset().variants.map((v) => ({ ...v, root: '/elsewhere' })) })), poolKey(a));
});

test('calibrationFromLog: the loops before and after, from the printed lines of the same run', () => {
  const log = [
    'fresh mode: 2 blocks x 2 fresh gateways (off, base 1%) ...',
    '[block 1] off       11561 req/s  85.8 µs CPU/request (2nd half ×0.978)  host loop 104/105 ms CPU  errors 0  OTLP batches 0  | s: start 1.3',
    '[block 1] base 1%   8403 req/s  117.6 µs CPU/request (2nd half ×0.620)  host loop 175/107 ms CPU  errors 0  OTLP batches 5  | s: start 1.2',
    '[block 2] base 1%   8403 req/s  117.6 µs CPU/request (2nd half ×0.620)  host loop 99.5/101 ms CPU  errors 0',
  ].join('\n');
  const runs = [freshRun(1, 'off', 85.8, 0, 0), freshRun(1, 'base 1%', 117.6, 0, 0), freshRun(2, 'base 1%', 117.6, 0, 0)];
  assert.deepEqual(
    calibrationFromLog(runs, log).map((r) => [r.calibrationBeforeMs, r.calibrationAfterMs]),
    [
      [104, 105],
      [175, 107],
      [99.5, 101],
    ],
  );
  assert.throws(() => calibrationFromLog([freshRun(2, 'off', 90)], log), /block 2 off: no "host loop" line/);
});

test('comparisons: each rate against off of its tree, then current against baseline at the same rate', () => {
  const v = (label: string, rate: number | null, tree: 'current' | 'baseline') => ({ label, rate, tree, root: '/' });
  const got = comparisons([v('off', null, 'current'), v('1%', 0.01, 'current'), v('base off', null, 'baseline'), v('base 1%', 0.01, 'baseline')]).map(([a, b]) => `${a.label} / ${b.label}`);
  assert.deepEqual(got, ['1% / off', 'base 1% / base off', 'off / base off', '1% / base 1%']);
  assert.deepEqual(comparisons([v('1%', 0.01, 'current')]), []);
  // a second untraced variant (`off tp`, a constant upstream traceparent): against off, and every traced variant against it too
  const tp = comparisons([v('off', null, 'current'), v('off tp', null, 'current'), v('0%', 0, 'current'), v('1%', 0.01, 'current')]).map(([a, b]) => `${a.label} / ${b.label}`);
  assert.deepEqual(tp, ['off tp / off', '0% / off', '1% / off', '0% / off tp', '1% / off tp']);
});

test('freshReport: the figure of record follows the design, the older figure stays next to it', () => {
  // block 2's "1%" ran in a slow host phase (loop 150 against 100): plain ratio 1.5x, host-normalised 1.0x
  const runs = [1, 2, 3, 4, 5, 6].flatMap((b) => [freshRun(b, 'off', 90), b === 2 ? freshRun(b, '1%', 138.6, 150, 150) : freshRun(b, '1%', 92.4)]);
  const seq = freshReport(dataset({ interleave: 0, runs }));
  const first = seq.split('\n').find((l) => l.startsWith('1% / off: '))!;
  assert.match(first, /^1% \/ off: host-normalised, all blocks \(6 blocks\): CPU\/request ×1\.027 \(95% 1\.027-1\.027\)/);
  assert.match(first, /spread 0\.000; goal <= 3% dearer: CPU\/request meets/);
  assert.match(seq, /older figure: clean blocks \(5 blocks\): CPU\/request ×1\.027/);
  assert.match(seq, /flagged blocks: 2\n/);
  assert.match(seq, /per block CPU\/request: 1\.027, 1\.540\*, 1\.027/);
  assert.match(seq, /one gateway at a time/);
  const inter = freshReport(dataset({ interleave: 8, runs }));
  // interleaved: the plain ratio over every block is the figure of record, the slow block included
  assert.match(inter.split('\n').find((l) => l.startsWith('1% / off: '))!, /^1% \/ off: all blocks \(6 blocks\): CPU\/request ×1\.027 \(95% 1\.027-1\.[1-5]\d+\).*CPU\/request not resolved/);
  assert.match(inter, /in 8 segments taken in turn/);
  assert.doesNotMatch(inter, /older figure/);
  // the diagnostic: one slow run whose CPU rose with its loop
  assert.match(seq, /host dependence \(diagnostic\): .* 12 measurements: slope 1\.00/);
});

test('interleavingGain: the same segments taken in turn against half a measurement apart', () => {
  const seg = (cpuUs: number) => ({ requests: 1000, cpuNs: cpuUs * 1000 * 1000, durationS: 0.1 });
  // the host slows down by 1.5x for the second half of block 1 and the first half of block 2; the variant costs 1.1x
  const slow = (i: number, block: number) => (block === 1 ? i >= 2 : i < 2) ? 1.5 : 1;
  const runs: FreshRun[] = [1, 2].flatMap((b) => [
    { ...freshRun(b, 'off', 100), segments: [0, 1, 2, 3].map((i) => seg(100 * slow(i, b))) },
    { ...freshRun(b, '1%', 110), segments: [0, 1, 2, 3].map((i) => seg(110 * slow(i, b))) },
  ]);
  const g = interleavingGain(runs, '1%', 'off')!;
  assert.deepEqual(g.blocks, [1, 2]);
  assert.deepEqual(g.interleaved.map((x) => x.toFixed(6)), ['1.100000', '1.100000']);
  // block 1: 1%'s first half (fast) against off's second half (slow); block 2: 1%'s second half (fast) against off's first (slow)
  assert.deepEqual(g.separated.map((x) => x.toFixed(6)), [(1.1 / 1.5).toFixed(6), (1.1 / 1.5).toFixed(6)]);
  assert.equal(interleavingGain([freshRun(1, 'off', 90), freshRun(1, '1%', 91)], '1%', 'off'), null, 'no segments: one gateway at a time');
  assert.match(freshReport(dataset({ runs })), /interleaving \(diagnostic, own-segment CPU\): spread 0\.000 taken in turn against 0\.000 for the same segments half a measurement apart \(one side's first half, the other's second\)\n/);
  // a third block, slow in its first half only for 1% (own segment noise in both readings): both spreads, and their ratio squared
  runs.push({ ...freshRun(3, 'off', 100), segments: [100, 100, 100, 100].map(seg) }, { ...freshRun(3, '1%', 110), segments: [132, 110, 110, 110].map(seg) });
  const g3 = interleavingGain(runs, '1%', 'off')!;
  assert.equal(g3.interleaved[2]!.toFixed(6), (462 / 400).toFixed(6));
  assert.equal(g3.separated[2]!.toFixed(6), (242 / 200).toFixed(6));
  const want = ((logSpread(g3.separated) / logSpread(g3.interleaved)) ** 2).toFixed(1);
  assert.match(freshReport(dataset({ runs })), new RegExp(`: ~${want.replace('.', '\\.')}x the blocks without it`));
});

test('bench/tracing-fresh-analyse.ts: prints the pooled report, refuses files that may not be pooled', () => {
  const dir = mkdtempSync(join(tmpdir(), 'fresh-analyse-'));
  try {
    const runs = (first: number) => [first, first + 1, first + 2].flatMap((b) => [freshRun(b, 'off', 90), freshRun(b, '1%', 90 * 1.02)]);
    const write = (name: string, d: FreshData) => {
      writeFileSync(join(dir, name), JSON.stringify(d));
      return join(dir, name);
    };
    const a = write('a.json', dataset({ runs: runs(1) }));
    const b = write('b.json', dataset({ runs: runs(1) }));
    const other = write('c.json', dataset({ runs: runs(1) }, 'c'.repeat(40)));
    const script = join(import.meta.dirname, '..', '..', '..', 'bench', 'tracing-fresh-analyse.ts');
    const out = execFileSync(process.execPath, ['--import', 'tsx', script, '--json', a, '--json', b], { encoding: 'utf8' });
    assert.match(out, /^2 file\(s\): /);
    assert.match(out, /1% \/ off: all blocks \(6 blocks\): CPU\/request ×1\.020 \(95% 1\.020-1\.020\)/);
    const refused = spawnSync(process.execPath, ['--import', 'tsx', script, '--json', a, '--json', other], { encoding: 'utf8' });
    assert.notEqual(refused.status, 0);
    assert.match(refused.stderr, /cannot pool .*c\.json with .*a\.json: they differ in commit or options/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
