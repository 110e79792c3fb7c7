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
