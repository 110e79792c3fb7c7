import { test } from 'node:test';
import assert from 'node:assert/strict';
import { sumGcLines, sumJitLines } from '../../../bench/lib/gc-trace.ts';

test('sumGcLines: scavenges, mark-compacts and promoted bytes of --trace-gc-nvp lines; other lines skipped', () => {
  const cases: { lines: string[]; want: ReturnType<typeof sumGcLines> }[] = [
    { lines: [], want: { scavenges: 0, markCompacts: 0, promotedBytes: 0 } },
    {
      lines: [
        '[123:0x5f]    4521 ms: pause=0.8 mutator=12.1 gc=s reduce_memory=0 time_to_safepoint=0.00 heap.prologue=0.00 promoted=2048 semi_space_copied=10000',
        'listening',
        '[123:0x5f]    4530 ms: pause=4.1 mutator=8.0 gc=ms reduce_memory=0 promoted=0 total_size_before=1',
        '[123:0x5f]    4540 ms: pause=0.5 gc=s promoted=512',
        'a log line that says gc=s but has no promoted field',
      ],
      want: { scavenges: 3, markCompacts: 1, promotedBytes: 2560 },
    },
  ];
  for (const { lines, want } of cases) assert.deepEqual(sumGcLines(lines), want);
});

test('sumJitLines: optimising compiles with their phase times, deoptimisations with function and reason; other lines skipped', () => {
  assert.deepEqual(sumJitLines([]), { compiles: 0, compileMs: 0, deopts: 0, compiled: [], deopted: [] });
  const got = sumJitLines([
    '[marking 0x1b93bd7c1ea1 <JSFunction writeH1 (sfi = 0x4b10bf90ad1)> for optimization to TURBOFAN, ConcurrencyMode::kConcurrent, reason: hot and stable]',
    '[compiling method 0x1b93bd7c1ea1 <JSFunction writeH1 (sfi = 0x4b10bf90ad1)> (target TURBOFAN), mode: ConcurrencyMode::kConcurrent]',
    '[completed compiling 0x1b93bd7c1ea1 <JSFunction writeH1 (sfi = 0x4b10bf90ad1)> (target TURBOFAN) - took 0.009, 112.341, 0.120 ms]',
    '[completed optimizing 0x1b93bd7c1ea1 <JSFunction writeH1 (sfi = 0x4b10bf90ad1)> (target TURBOFAN)]',
    '[bailout (kind: deopt-eager, reason: wrong map): begin. deoptimizing 0x132133b54f21 <JSFunction onConnect (sfi = 0x13507ab5549)>, 0x1ce9561c19f9 <Code TURBOFAN>, opt id 373, bytecode offset 57, deopt exit 3]',
    'listening on 127.0.0.1:8080',
    '[completed compiling 0x2c5b55256a99 <JSFunction  (sfi = 0x2f7e813ce2d1)> (target TURBOFAN) - took 0.5, 1.25, 0.25 ms]',
    '[completed compiling 0x2c5b55256a91 <JSFunction attempts (sfi = 0x2f7e813ce2d9)> (target TURBOFAN) OSR - took 0.5, 1.25, 0.25 ms]',
    '[bailout (kind: deopt-eager, reason: lost precision): begin. deoptimizing 0x2c5b55256a99 <JSFunction writeTime (sfi = 0x2f7e813ce2d1)>, 0x24a9257aa9e1 <Code TURBOFAN>, opt id 316]',
  ]);
  assert.equal(got.compiles, 3);
  assert.ok(Math.abs(got.compileMs - 116.47) < 1e-9, String(got.compileMs));
  assert.deepEqual(got.compiled.map(([fn]) => fn), ['writeH1', '(anonymous)', 'attempts OSR']);
  assert.equal(got.deopts, 2);
  assert.deepEqual(got.deopted, ['onConnect (wrong map)', 'writeTime (lost precision)']);
});
