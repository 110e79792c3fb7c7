import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DEFAULTS, parseArgs, QUICK } from '../../../bench/lib/args.ts';

test('parseArgs: defaults, --quick, explicit values win over --quick', () => {
  assert.deepEqual(parseArgs([]), DEFAULTS);
  const q = parseArgs(['--quick']);
  assert.equal(q.durationS, QUICK.durationS);
  assert.equal(q.rounds, QUICK.rounds);
  const q2 = parseArgs(['--quick', '--duration', '5']);
  assert.equal(q2.durationS, 5);
  assert.equal(q2.rounds, 1);
});

test('parseArgs: lists, = syntax, numbers', () => {
  const o = parseArgs(['--targets', 'nginx, raw', '--scenarios=max-100b', '--rounds=2', '--rate', '5000', '--connections', '20', '--no-pin']);
  assert.deepEqual(o.targets, ['nginx', 'raw']);
  assert.deepEqual(o.scenarios, ['max-100b']);
  assert.equal(o.rounds, 2);
  assert.equal(o.rate, 5000);
  assert.equal(o.connections, 20);
  assert.equal(o.pin, false);
});

test('parseArgs rejects bad input with the reason', () => {
  const bad: Array<[string[], RegExp]> = [
    [['--duration', '0'], /--duration needs a positive integer/],
    [['--duration', '1.5'], /--duration needs a positive integer/],
    [['--rounds'], /--rounds needs a positive integer/],
    [['--targets', ','], /--targets needs a comma-separated list/],
    [['--proxy-cpu', '1', '--load-cpu', '1'], /must differ/],
    [['--frobnicate'], /unknown option --frobnicate/],
  ];
  for (const [argv, re] of bad) assert.throws(() => parseArgs(argv), re, argv.join(' '));
});
