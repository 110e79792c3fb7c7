import { test } from 'node:test';
import assert from 'node:assert/strict';
import { selfCostByFunction, splitCallgrindDump } from '../../../bench/lib/callgrind-split.ts';

test('splitCallgrindDump sums self costs by category; call costs and repeated names by id', () => {
  const dump = [
    'events: Ir',
    'summary: 1000',
    'ob=(1) /usr/bin/node',
    'fl=(1) ???',
    'fn=(1) 0x000000000d1b0080',
    '0 100',
    '+2 50',
    'cfn=(2) v8::internal::MarkCompactCollector::ProcessMarkingWorklist()',
    'calls=1 0',
    '0 400', // inclusive cost of the call: not the caller's own
    'fn=(2)',
    '0 300',
    'fn=(3) v8::internal::compiler::GraphReducer::Reduce(v8::internal::compiler::Node*)',
    '0 200',
    'fn=(4) Builtins_RecordWriteSaveFP',
    '* 25',
    'fn=(1)',
    '-1 5',
  ].join('\n');
  assert.deepEqual(splitCallgrindDump(dump), { total: 680, gc: 325, compiler: 200, periodic: 0, rest: 155 });
});

test('splitCallgrindDump counts the full GC helpers the V8 names alone do not say are GC', () => {
  const names = [
    'v8::internal::LiveObjectRange<(v8::internal::LiveObjectIterationMode)0>::iterator::AdvanceToNextValidObject()',
    'v8::internal::(anonymous namespace)::RememberedSetUpdatingItem::Process()',
    'heap::base::ActiveSystemPages::Add(unsigned long, unsigned long, unsigned long)',
    'v8::internal::PretenuringHandler::UpdateAllocationSite(v8::internal::Map, v8::internal::HeapObject)',
    '__popcountdi2',
  ];
  const dump = ['events: Ir', ...names.flatMap((n, i) => [`fn=(${i + 1}) ${n}`, '0 10']), 'fn=(9) Builtins_StringEqual', '0 7'].join('\n');
  assert.deepEqual(splitCallgrindDump(dump), { total: 57, gc: 50, compiler: 0, periodic: 0, rest: 7 });
});

test('splitCallgrindDump keeps the once-a-second histogram read out of the rest', () => {
  const names = ['hdr_mean', 'all_values_iter_next', 'node::(anonymous namespace)::HistogramImpl::GetMean(v8::FunctionCallbackInfo<v8::Value> const&)'];
  const dump = ['events: Ir', ...names.flatMap((n, i) => [`fn=(${i + 1}) ${n}`, '0 100']), 'fn=(9) Builtins_StringEqual', '0 7', 'fn=(10) my_hdr_helper', '0 3'].join('\n');
  assert.deepEqual(splitCallgrindDump(dump), { total: 310, gc: 0, compiler: 0, periodic: 300, rest: 10 });
});

test('splitCallgrindDump counts what the histogram functions call (hdr_reset -> memset) as periodic, not what others call', () => {
  const dump = [
    'events: Ir',
    'fn=(1) hdr_reset',
    '0 10',
    'cfn=(2) __memset_avx2_unaligned_erms',
    'calls=1 0',
    '0 900', // inclusive: the memset this timer work ran
    'cfn=(3) hdr_mean',
    'calls=1 0',
    '0 40', // a periodic callee is periodic already (its self cost below)
    'fn=(4) 0x000000000d1b0080',
    '0 5',
    'cfn=(2)',
    'calls=2 0',
    '0 100', // the same memset called by the program: stays in the rest
    'fn=(2)',
    '0 1000',
    'fn=(3)',
    '0 40',
  ].join('\n');
  assert.deepEqual(splitCallgrindDump(dump), { total: 1055, gc: 0, compiler: 0, periodic: 950, rest: 105 });
});

test('selfCostByFunction sums each function\'s own cost by name, not what its calls cost', () => {
  const dump = [
    'events: Ir',
    'fn=(1) 0x000000000d1b0080',
    '0 100',
    '+2 50',
    'cfn=(2) Builtins_KeyedLoadIC_Megamorphic',
    'calls=3 0',
    '0 400', // inclusive cost of the calls: the callee's, not the caller's
    'fn=(2)',
    '0 300',
    'fn=(1)',
    '* 5',
    'fn=(3)',
    '0 1',
  ].join('\n');
  assert.deepEqual(
    [...selfCostByFunction(dump)],
    [
      ['0x000000000d1b0080', 155],
      ['Builtins_KeyedLoadIC_Megamorphic', 300],
      ['', 1],
    ],
  );
});
