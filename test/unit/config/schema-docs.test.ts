// Every key of the config's data model (config/schema.json, every block and every filter type,
// aliases included) is named somewhere in the docs (docs/*.md or README.md) as a whole word, so
// a key added to a schema without a word for users fails here. What the docs say about a key is
// for review; an accepted key the code does not read is a warning of src/config/unimplemented.ts
// or a feature's compile step, and is documented too.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { SCHEMA_PATH } from '../../../scripts/export-schema.ts';
import { repoRoot } from '../../helpers/metric-names.ts';

interface SchemaNode {
  properties?: Record<string, SchemaNode & { aliases?: string[] }>;
  items?: SchemaNode | SchemaNode[];
  anyOf?: SchemaNode[];
  oneOf?: SchemaNode[];
  allOf?: SchemaNode[];
  additionalProperties?: SchemaNode | boolean;
  definitions?: Record<string, SchemaNode>;
}

/** key -> the paths it appears at (`routes > policies > rate-limit`, `filter:rate-limit > burst`). */
function schemaKeys(): Map<string, string[]> {
  const keys = new Map<string, string[]>();
  const add = (key: string, path: string) => keys.set(key, [...(keys.get(key) ?? []), path]);
  const walk = (node: SchemaNode | boolean | undefined, path: string): void => {
    if (!node || typeof node !== 'object') return;
    for (const [k, v] of Object.entries(node.properties ?? {})) {
      const p = path ? `${path} > ${k}` : k;
      add(k, p);
      for (const a of v.aliases ?? []) add(a, `${p} (alias)`);
      walk(v, p);
    }
    for (const child of [node.items, node.anyOf, node.oneOf, node.allOf].flat()) walk(child, path);
    walk(node.additionalProperties, path);
    for (const [name, def] of Object.entries(node.definitions ?? {})) walk(def, name);
  };
  walk(JSON.parse(readFileSync(SCHEMA_PATH, 'utf8')) as SchemaNode, '');
  return keys;
}

test('every config key in config/schema.json is named in docs/*.md or README.md', () => {
  const docsDir = join(repoRoot, 'docs');
  const text = [join(repoRoot, 'README.md'), ...readdirSync(docsDir).filter((f) => f.endsWith('.md')).map((f) => join(docsDir, f))].map((f) => readFileSync(f, 'utf8')).join('\n');
  // a KDL key as a whole word: not part of a longer key (max-size in max-size-bytes does not count)
  const words = new Set(text.match(/[A-Za-z0-9_-]+/g));
  const keys = schemaKeys();
  assert.ok(keys.size > 300, `only ${keys.size} keys read from the schema`);
  const missing = [...keys].filter(([k]) => !words.has(k)).map(([k, paths]) => `${k} (${paths.slice(0, 3).join(' | ')})`);
  assert.deepEqual(missing, [], 'config keys no doc names');
});

test('docs/tls.md\'s key table names the tls block\'s keys, each with the schema\'s default', () => {
  const schema = JSON.parse(readFileSync(SCHEMA_PATH, 'utf8')) as { properties: { listeners: { items: { properties: { tls: { properties: Record<string, { default?: unknown }> } } } } } };
  const tls = schema.properties.listeners.items.properties.tls.properties;
  const md = readFileSync(join(repoRoot, 'docs', 'tls.md'), 'utf8');
  const start = md.indexOf('| key | default | meaning |');
  assert.ok(start >= 0, 'docs/tls.md has no key table');
  const documented = new Set<string>();
  const problems: string[] = [];
  for (const line of md.slice(start).split('\n').slice(2)) {
    if (!line.startsWith('|')) break;
    const [keyCell, defaultCell] = line.slice(2).split(' | ');
    const keys = [...keyCell!.matchAll(/`([a-z-]+)(?: \{ \})?`/g)].map((m) => m[1]!);
    const defaults = defaultCell!.split(' / ');
    keys.forEach((k, i) => {
      documented.add(k);
      if (!(k in tls)) return void problems.push(`${k}: not a key of tls`);
      const said = defaults.length === keys.length ? /^`([^`]*)`$/.exec(defaults[i]!.trim())?.[1] : undefined;
      const real = tls[k]!.default;
      if (said === undefined || real === undefined) return;
      const spelled = typeof real === 'boolean' ? `#${real}` : String(real);
      if (said !== spelled) problems.push(`${k}: docs say ${said}, the schema's default is ${spelled}`);
    });
  }
  for (const k of Object.keys(tls)) if (!documented.has(k)) problems.push(`${k}: a tls key the table leaves out`);
  assert.deepEqual(problems, []);
});
