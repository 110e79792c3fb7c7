// Writes config/schema.json (JSON Schema of the KDL config's data model) from the TypeBox schemas.
// `npm run schema` regenerates it; test/unit/config/schema-drift.test.ts fails when it is stale.
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { filterSchema } from '../src/config/schema.ts';
import { COMPOSITION } from '../src/features.ts';

export function renderSchema(): string {
  const { schemas, filterTypes } = COMPOSITION.language;
  const schema = {
    $schema: 'http://json-schema.org/draft-07/schema#',
    title: 'Sentinel configuration (KDL data model)',
    description:
      'Generated from src/config/schema.ts by `npm run schema`. KDL nodes map to keys: a setting is a node whose first argument is the value, lists are multiple arguments, named collections (listener "id", route "id", ...) are arrays of objects with an id. Filter blocks are described per type under definitions.',
    ...JSON.parse(JSON.stringify(schemas.config)),
    definitions: Object.fromEntries(Object.keys(filterTypes).map((t) => [`filter:${t}`, JSON.parse(JSON.stringify(filterSchema(filterTypes, t)))])),
  };
  return JSON.stringify(schema, null, 2) + '\n';
}

export const SCHEMA_PATH = fileURLToPath(new URL('../config/schema.json', import.meta.url));

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  writeFileSync(SCHEMA_PATH, renderSchema());
  console.log(`wrote ${SCHEMA_PATH}`);
}
