import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseCallgrindCallsTo, parseCallgrindSummary } from '../../../bench/lib/callgrind.ts';

test('parseCallgrindSummary reads the Ir total of a dump', () => {
  const dump = ['# callgrind format', 'version: 1', 'creator: callgrind-3.19.0', 'pid: 30432', 'cmd:  node srv.mjs', 'part: 2', '', 'desc: I1 cache: ', 'positions: line', 'events: Ir', 'summary: 372897123', '', 'ob=(1) /usr/bin/node', 'fl=(1) ???', 'fn=(1) 0x0000000000e1c2a0', '0 12', '', 'totals: 372897123'].join('\n');
  assert.equal(parseCallgrindSummary(dump), 372897123);
  assert.throws(() => parseCallgrindSummary('events: Ir\n'), /no summary/);
  assert.throws(() => parseCallgrindSummary('events: Dr Ir\nsummary: 5\n'), /expected Ir/);
});

test('parseCallgrindCallsTo sums the calls of a function over its callers, compressed names included', () => {
  const dump = [
    'events: Ir',
    'summary: 1000',
    'fn=(1) 0x000000000d1ccc80',
    'cfn=(2) Builtins_CEntry_Return1_ArgvOnStack_NoBuiltinExit',
    'calls=7 0',
    '0 500',
    'fn=(2)',
    'cfn=(3) v8::internal::Runtime_DefineKeyedOwnPropertyInLiteral(int, unsigned long*, v8::internal::Isolate*)',
    'calls=3 0',
    '0 100',
    'cfn=(4) v8::internal::Runtime_StoreIC_Miss(int, unsigned long*, v8::internal::Isolate*)',
    'calls=50 0',
    '0 10',
    'fn=(5) 0x000000000d1eef00',
    'cfn=(3)',
    'calls=4 0',
    '0 40',
    '',
  ].join('\n');
  assert.equal(parseCallgrindCallsTo(dump, 'Runtime_DefineKeyedOwnPropertyInLiteral'), 7);
  assert.equal(parseCallgrindCallsTo(dump, 'CEntry_Return1'), 7);
  assert.equal(parseCallgrindCallsTo(dump, 'Runtime_NoSuchFunction'), 0);
});
