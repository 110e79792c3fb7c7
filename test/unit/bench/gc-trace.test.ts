import { test } from 'node:test';
import assert from 'node:assert/strict';
import { sumGcLines } from '../../../bench/lib/gc-trace.ts';

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
