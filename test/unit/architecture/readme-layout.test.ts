// README.md's "Layout" block names every top-level folder of the checkout, every script in
// scripts/ and every feature plugin in plugins/, so a folder, script or plugin added without a word
// for newcomers (or one removed and still listed) fails here.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from '../../helpers/metric-names.ts';

/** The tracked files' paths (what a clone has, whatever npm, the build or a test left beside them). */
const tracked = (): string[] => execFileSync('git', ['ls-files'], { cwd: repoRoot, encoding: 'utf8' }).split('\n').filter(Boolean);

test('README.md Layout names every top-level folder, script and plugin, and nothing that is gone', () => {
  const readme = readFileSync(join(repoRoot, 'README.md'), 'utf8');
  const start = readme.indexOf('## Layout');
  assert.ok(start >= 0, 'README.md has no Layout section');
  const layout = /```\n([\s\S]*?)```/.exec(readme.slice(start))![1]!;
  const words = new Set(layout.match(/[A-Za-z0-9_.-]+/g));
  const files = tracked().map((f) => f.split('/'));
  const under = (dir: string) => new Set(files.filter((p) => p[0] === dir && p.length > 1).map((p) => p[1]!));
  const topDirs = [...new Set(files.filter((p) => p.length > 1 && !p[0]!.startsWith('.')).map((p) => p[0]!))];
  const missing: string[] = [];
  for (const d of topDirs) if (!new RegExp(`^${d}/`, 'm').test(layout)) missing.push(`${d}/`);
  for (const f of under('scripts')) if (!words.has(f)) missing.push(`scripts/${f}`);
  for (const p of under('plugins')) if (!words.has(p)) missing.push(`plugins/${p}`);
  assert.deepEqual(missing, [], 'not in README.md Layout');
  const listed = [...layout.matchAll(/^([a-z]+)\//gm)].map((m) => m[1]!);
  assert.deepEqual(listed.filter((d) => !topDirs.includes(d)), [], 'listed in README.md Layout, not in the checkout');
});
