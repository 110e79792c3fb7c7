import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseCallgrindSummary } from '../../../bench/lib/callgrind.ts';

test('parseCallgrindSummary reads the Ir total of a dump', () => {
  const dump = ['# callgrind format', 'version: 1', 'creator: callgrind-3.19.0', 'pid: 30432', 'cmd:  node srv.mjs', 'part: 2', '', 'desc: I1 cache: ', 'positions: line', 'events: Ir', 'summary: 372897123', '', 'ob=(1) /usr/bin/node', 'fl=(1) ???', 'fn=(1) 0x0000000000e1c2a0', '0 12', '', 'totals: 372897123'].join('\n');
  assert.equal(parseCallgrindSummary(dump), 372897123);
  assert.throws(() => parseCallgrindSummary('events: Ir\n'), /no summary/);
  assert.throws(() => parseCallgrindSummary('events: Dr Ir\nsummary: 5\n'), /expected Ir/);
});
