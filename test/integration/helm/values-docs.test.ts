// docs/deploy.md's values table names every key of helm/sentinel/values.yaml (the blocks passed
// through whole to Kubernetes, e.g. resources and securityContext, by their own name only), so a
// value added to the chart without a line for operators fails here.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { chartDir } from '../../helpers/helm.ts';
import { repoRoot } from '../../helpers/packed.ts';

/** Blocks whose content is Kubernetes' own (or the probes' timings): named as a whole in the table. */
const PASSED_THROUGH = new Set(['image', 'resources', 'probes', 'podSecurityContext', 'securityContext']);

test('every key of values.yaml is named in docs/deploy.md', () => {
  const values = parse(readFileSync(join(chartDir, 'values.yaml'), 'utf8')) as Record<string, unknown>;
  const words = new Set(readFileSync(join(repoRoot, 'docs', 'deploy.md'), 'utf8').match(/[A-Za-z0-9_]+/g));
  const missing: string[] = [];
  const walk = (obj: Record<string, unknown>, prefix: string): void => {
    for (const [k, v] of Object.entries(obj)) {
      if (!words.has(k)) missing.push(`${prefix}${k}`);
      if (v && typeof v === 'object' && !Array.isArray(v) && !PASSED_THROUGH.has(k)) walk(v as Record<string, unknown>, `${prefix}${k}.`);
    }
  };
  walk(values, '');
  assert.ok(Object.keys(values).length > 20);
  assert.deepEqual(missing, [], 'values.yaml keys docs/deploy.md does not name');
});

/** The values table's rows: `key` / `.sibling` (a sibling of the first key) with their defaults. */
function tableRows(): { keys: string[]; defaults: string[]; line: string }[] {
  const rows: { keys: string[]; defaults: string[]; line: string }[] = [];
  const md = readFileSync(join(repoRoot, 'docs', 'deploy.md'), 'utf8');
  const start = md.indexOf('| key | default | meaning |');
  assert.ok(start >= 0, 'docs/deploy.md has no values table');
  for (const line of md.slice(start).split('\n').slice(2)) {
    if (!line.startsWith('|')) break;
    const [keyCell, defaultCell] = line.split(' | ').map((c) => c.replace(/^\| /, ''));
    const keys: string[] = [];
    for (const m of keyCell!.matchAll(/`([^`]+)`/g)) {
      const k = m[1]!;
      keys.push(k.startsWith('.') ? `${keys[0]!.slice(0, keys[0]!.lastIndexOf('.'))}${k}` : k);
    }
    rows.push({ keys, defaults: defaultCell!.split(' / ').map((d) => d.trim()), line });
  }
  return rows;
}

test('every key docs/deploy.md\'s values table names is in values.yaml, with the default it says', () => {
  const values = parse(readFileSync(join(chartDir, 'values.yaml'), 'utf8')) as Record<string, unknown>;
  const lookup = (key: string): { found: boolean; value?: unknown } => {
    let v: unknown = values;
    for (const part of key.split('.')) {
      if (!v || typeof v !== 'object' || !(part in v)) return { found: false };
      v = (v as Record<string, unknown>)[part];
    }
    return { found: true, value: v };
  };
  const rows = tableRows();
  assert.ok(rows.length > 30, `${rows.length} rows read`);
  const problems: string[] = [];
  for (const { keys, defaults } of rows) {
    keys.forEach((key, i) => {
      const { found, value } = lookup(key);
      if (!found) return void problems.push(`${key}: not in values.yaml`);
      // a default cell per key, as a literal (`8080`, `""`, `[]`, `"1"`, bare 16): compare it
      const said = defaults.length === keys.length ? /^`([^`]*)`$|^(\d+)$/.exec(defaults[i]!) : null;
      if (!said) return;
      const text = said[1] ?? said[2]!;
      const spellings = [String(value), JSON.stringify(value)];
      if (!spellings.includes(text)) problems.push(`${key}: docs say ${text}, values.yaml has ${JSON.stringify(value)}`);
    });
  }
  assert.deepEqual(problems, [], 'docs/deploy.md values table vs values.yaml');
});
