import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { renderSchema, SCHEMA_PATH } from '../../../scripts/export-schema.ts';

test('config/schema.json matches the TypeBox schemas (run `npm run schema` after changing them)', () => {
  const committed = readFileSync(SCHEMA_PATH, 'utf8');
  assert.equal(committed, renderSchema(), 'config/schema.json is stale: run `npm run schema`');
});
