import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loneRequestTraceparent, parseRates } from '../../../bench/lib/tracing-variants.ts';

test('parseRates: rates, off, and the suffixes (one sampled request included)', () => {
  const cases: [string, unknown[]][] = [
    ['off', [{ name: 'off', rate: undefined }]],
    ['0,0.01', [{ name: '0%', rate: 0 }, { name: '1%', rate: 0.01 }]],
    ['0.01:noexport', [{ name: '1% noexport', rate: 0.01, noExport: true }]],
    ['0.01:inline', [{ name: '1% inline', rate: 0.01, exportThread: false }]],
    ['0.01:thread', [{ name: '1% thread', rate: 0.01, exportThread: true }]],
    ['off:tp', [{ name: 'off tp', rate: undefined, upstreamTraceparent: true }]],
    ['0:one', [{ name: '0% one', rate: 0, oneSampled: true }]],
    ['0:one:noexport', [{ name: '0% one noexport', rate: 0, oneSampled: true, noExport: true }]],
    ['0:lone', [{ name: '0% lone', rate: 0, loneUnsampled: true }]],
    ['0:noexport:one', [{ name: '0% noexport one', rate: 0, noExport: true, oneSampled: true }]],
    [' 0 , 0:one ', [{ name: '0%', rate: 0 }, { name: '0% one', rate: 0, oneSampled: true }]],
  ];
  for (const [input, want] of cases) assert.deepEqual(parseRates(input), want, input);
});

test('parseRates: refuses what it cannot read', () => {
  for (const bad of ['2', '-0.1', 'x', ':one', 'off:one', 'off:noexport', '0:two', '0:one:one', '0:one:lone', '0:noexport:thread', 'off:lone']) {
    assert.throws(() => parseRates(bad), Error, bad);
  }
});

test('loneRequestTraceparent: flags 01 for :one, 00 for :lone, none otherwise', () => {
  assert.match(loneRequestTraceparent(parseRates('0:one')[0]!)!, /-01$/);
  assert.match(loneRequestTraceparent(parseRates('0:lone')[0]!)!, /-00$/);
  assert.equal(loneRequestTraceparent(parseRates('0.01')[0]!), undefined);
});
