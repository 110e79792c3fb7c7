// needs-data: libinjection (test/select.ts leaves this file out, loudly, where the data is missing)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';

import { generateTables, generatedTablesPath } from '../../../scripts/gen-libinjection-tables.ts';
import { requireDataRoot } from './harness.ts';

test('tables.generated.ts is up to date with the libinjection data', () => {
  const fresh = generateTables(requireDataRoot());
  const committed = readFileSync(generatedTablesPath, 'utf8');
  assert.ok(committed === fresh, 'src/waf/libinjection/tables.generated.ts is stale: run npx tsx scripts/gen-libinjection-tables.ts');
});

test('generated tables carry the attribution note', () => {
  const head = readFileSync(generatedTablesPath, 'utf8').split('\n').slice(0, 6).join('\n');
  assert.match(head, /libinjection/);
  assert.match(head, /BSD-3-Clause/);
  assert.match(head, /Nick Galbreath/);
  assert.match(head, /commit [0-9a-f]{40}/);
});
