import { test } from 'node:test';
import assert from 'node:assert/strict';
import { threadSplitReport, type RunThreads } from '../../../bench/lib/fresh-threads.ts';

const t = (main: number, v8: number, late: number, lateThreads = 0): RunThreads => ({ us: { main, v8, other: 0, late }, threads: { main: 1, v8: 5, other: 4, late: lateThreads }, gone: 0 });

test('threadSplitReport: medians by group, and what each group adds against the reference', () => {
  const runs = [
    { block: 1, variant: 'off', threads: t(90, 10, 0) },
    { block: 1, variant: '1%', threads: t(92, 11, 1, 1) },
    { block: 2, variant: 'off', threads: t(80, 20, 0) },
    { block: 2, variant: '1%', threads: t(82, 21, 1, 1) },
    { block: 3, variant: '1%', threads: t(500, 500, 500, 1) }, // no reference in block 3: not paired
  ];
  const out = threadSplitReport(runs);
  assert.match(out, /\| off \| 2 \| 85\.00 \| 15\.00 \| 0\.00 \| 0\.00 \| 100\.00 \| 1\/5\/4\/0 \|/);
  assert.match(out, /\| 1% \| 3 \| 92\.00 \| 21\.00 \| 0\.00 \| 1\.00 \| 104\.00 \| 1\/5\/4\/1 \|/);
  // per block: main +2/100, v8 +1/100, other 0, late +1/100, all +4/100 in both blocks
  assert.match(out, /\| 1% \| 2 \| 2\.00 \(2\.00 \.\. 2\.00\) \| 1\.00 \(1\.00 \.\. 1\.00\) \| 0\.00 \(0\.00 \.\. 0\.00\) \| 1\.00 \(1\.00 \.\. 1\.00\) \| 4\.00 \(4\.00 \.\. 4\.00\) \|/);
});

test('threadSplitReport: nothing without thread data, no second table without the reference', () => {
  assert.equal(threadSplitReport([{ block: 1, variant: 'off' }]), '');
  const out = threadSplitReport([{ block: 1, variant: '0%', threads: t(1, 1, 0) }]);
  assert.match(out, /\| 0% \| 1 \|/);
  assert.doesNotMatch(out, /adds against/);
});
