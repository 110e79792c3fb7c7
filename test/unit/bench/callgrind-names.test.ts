import { test } from 'node:test';
import assert from 'node:assert/strict';
import { costByFunction, jitRenamer, parsePerfMap, PerfMapIndex } from '../../../bench/lib/callgrind-names.ts';

test('PerfMapIndex names an address by the newest entry whose range holds it', () => {
  const map = new PerfMapIndex(
    parsePerfMap(['1000 100 JS:~matchLink file.js:1', '2000 10 Builtin:StringEqual', 'junk line', '1000 80 JS:*matchLink file.js:1'].join('\n')),
  );
  assert.equal(map.nameAt(0x1010), 'JS:*matchLink file.js:1'); // the later (optimised) code
  assert.equal(map.nameAt(0x1090), 'JS:~matchLink file.js:1'); // only the older range reaches it
  assert.equal(map.nameAt(0x2005), 'Builtin:StringEqual');
  assert.equal(map.nameAt(0x2010), undefined); // end is exclusive
  assert.equal(map.nameAt(0x10), undefined);
});

test('jitRenamer drops tier markers so tiers sum, keeps builtins apart, leaves symbols alone', () => {
  const rename = jitRenamer(new PerfMapIndex(parsePerfMap('1000 100 JS:*matchLink a.js:1\n3000 10 Builtin:StringEqual\n4000 10 LazyCompile:~f b.js:2')));
  assert.equal(rename('0x0000000000001004'), 'matchLink a.js:1');
  assert.equal(rename('0x3001'), 'Builtin:StringEqual');
  assert.equal(rename('0x4001'), 'f b.js:2');
  assert.equal(rename('0x9999'), '(JIT, unnamed)');
  assert.equal(rename('re2::DFA::InlinedSearchLoop'), 're2::DFA::InlinedSearchLoop');
});

test('costByFunction: self and inclusive per renamed function; calls within one function not added', () => {
  const dump = [
    'events: Ir',
    'fn=(1) 0x1000',
    '0 100',
    'cfn=(2) 0x1040', // the same JS function (renamed alike): already self cost
    'calls=1 0',
    '0 30',
    'cfn=(3) RE2::Match',
    'calls=2 0',
    '0 500',
    'fn=(2)',
    '0 30',
    'fn=(3)',
    '+1 500',
  ].join('\n');
  const costs = costByFunction(dump, (n) => (n.startsWith('0x10') ? 'matchLink' : n));
  assert.deepEqual(costs.get('matchLink'), { self: 130, inclusive: 630 });
  assert.deepEqual(costs.get('RE2::Match'), { self: 500, inclusive: 500 });
});
