// libinjection's own unit cases (tests/test-{tokens,folding,sqli,html5}-*.txt) and the
// allowance checks on its sample sets, read from the shared conformance folder.
// needs-data: libinjection (test/select.ts leaves this file out, loudly, where the data is missing)
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { actualOutput, evaluateSampleSets, loadUnitCases, requireDataRoot } from './harness.ts';

const root = requireDataRoot();
const cases = loadUnitCases(root);

test('libinjection unit cases are present', () => {
  // tokens, folding, sqli and html5 groups all exist
  for (const kind of ['tokens', 'folding', 'sqli', 'html5']) {
    assert.ok(cases.some((c) => c.file.startsWith(`test-${kind}-`)), `no test-${kind}-* cases under ${root}/tests`);
  }
});

for (const c of cases) {
  test(`${c.file}: ${c.title}`, () => {
    assert.equal(actualOutput(c), c.expected, `input ${JSON.stringify(c.input)}`);
  });
}

for (const set of evaluateSampleSets(root)) {
  test(`${set.name}: at most ${set.allowed} wrong of ${set.total}`, () => {
    assert.ok(set.wrong.length <= set.allowed, `${set.wrong.length} wrong (allowed ${set.allowed}):\n${set.wrong.join('\n')}`);
  });
}
