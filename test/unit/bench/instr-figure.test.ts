import { test } from 'node:test';
import assert from 'node:assert/strict';
import { countedFigure, countedFigureLines, type CountedProcess } from '../../../bench/lib/instr-figure.ts';

const p = (name: string, variant: string, rest: number, define = 0, tree = '', restarts = 0, gc = 20_000): CountedProcess => ({ name, tree, variant, rest, gc, define, restarts });

test('the counted figure: medians over processes, every pair, off against off', () => {
  const f = countedFigure([p('off #1', 'off', 200_000), p('off #2', 'off', 202_000), p('1% #1', '1%', 205_000), p('1% #2', '1%', 207_000)], 'off');
  assert.equal(f.rates.length, 1);
  const r = f.rates[0]!;
  assert.equal(r.variant, '1%');
  assert.equal(r.processes, 2);
  assert.equal(r.ratio, 206_000 / 201_000);
  assert.equal(r.extra, 5_000);
  assert.deepEqual(r.pairs, [205_000 / 202_000, 207_000 / 200_000]);
  assert.deepEqual(f.offAA.get(''), [200_000 / 202_000, 202_000 / 200_000]);
  assert.equal(r.withGc, 226_000 / 221_000);
});

test('a process in the slow V8 state is left out and named; one off process has no A/A', () => {
  const procs = [p('off #1', 'off', 200_000), p('off #2', 'off', 240_000, 24), p('0% #1', '0%', 201_000), p('0% #2', '0%', 241_000, 36, '', 2)];
  const f = countedFigure(procs, 'off');
  assert.deepEqual(f.slow.map((x) => x.name), ['off #2', '0% #2']);
  assert.equal(f.rates[0]!.ratio, 201_000 / 200_000);
  assert.equal(f.offAA.get(''), undefined);
  const lines = countedFigureLines(procs, 'off', 3).join('\n');
  assert.match(lines, /replaced after landing in V8's slow state: 0% #2 2x/);
  assert.match(lines, /left out .*off #2 \(24\.0 define calls\/req\), 0% #2/);
  assert.match(lines, /current 0% \/ off: ×1\.0050 \(\+1000 instr\/req; pairs 1\.0050-1\.0050, 1 process\(es\); with GC ×1\.0045\)/);
});

test('each tree against its own off; a rate with only slow processes gets no figure', () => {
  const f = countedFigure([p('off', 'off', 200_000), p('1%', '1%', 204_000, 36), p('base off', 'off', 210_000, 0, 'base '), p('base 1%', '1%', 212_100, 0, 'base ')], 'off');
  assert.deepEqual(
    f.rates.map((r) => [r.tree, r.variant, r.ratio]),
    [['base ', '1%', 212_100 / 210_000]],
  );
});
