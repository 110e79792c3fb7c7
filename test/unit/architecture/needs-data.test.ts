// A fresh clone without ../shared/conformance: `npm test` (test/run.sh through test/select.ts)
// leaves out, loudly, the tests and suites that read the missing data, and in CI refuses to run
// with a message saying how to get it. Every test file that reads the data says so (a
// `// needs-data:` line, or a per-test conformanceData() guard), so the list stays true.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { promisify } from 'node:util';
import { declaredNeeds, testFiles } from '../../select.ts';

const run = promisify(execFile);
const repoRoot = resolve(import.meta.dirname, '..', '..', '..');

/** Modules whose import means "reads the conformance data" (paths from the checkout). */
const DATA_READERS: Record<string, string> = {
  'test/unit/waf-regex/crs-rules.ts': 'crs',
  'test/helpers/charset-waf.ts': 'crs',
  'test/unit/libinjection/harness.ts': 'libinjection',
};

test('every test file that reads ../shared/conformance declares it (needs-data) or guards its tests (conformanceData)', () => {
  const undeclared: string[] = [];
  for (const f of testFiles()) {
    const text = readFileSync(join(repoRoot, f), 'utf8');
    const declared: string[] = declaredNeeds(text);
    for (const m of text.matchAll(/from '(\.[^']+)'/g)) {
      const set = DATA_READERS[relative(repoRoot, resolve(repoRoot, dirname(f), m[1]!))];
      if (set && !declared.includes(set) && !text.includes(`conformanceData('${set}')`)) undeclared.push(`${f} (${set})`);
    }
  }
  assert.deepEqual(undeclared, []);
});

const select = (what: string, env: Record<string, string | undefined>) =>
  run(process.execPath, ['--import', 'tsx', join(repoRoot, 'test', 'select.ts'), what], { cwd: repoRoot, env: { ...process.env, CI: '', ...env }, timeout: 60_000 }).then(
    (r) => ({ code: 0, stdout: r.stdout, stderr: r.stderr }),
    (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, stdout: e.stdout, stderr: e.stderr }),
  );

test('without the CRS data, outside CI: its files and suite are left out with a loud SKIPPING line, the rest runs', async () => {
  const all = await select('files', {});
  const without = await select('files', { CRS_DIR: '/nonexistent/crs' });
  assert.equal(without.code, 0, without.stderr);
  const allFiles = all.stdout.trim().split('\n');
  const kept = without.stdout.trim().split('\n');
  const left = allFiles.filter((f) => !kept.includes(f));
  assert.ok(left.includes('test/unit/waf-regex/crs-compile.test.ts') && left.includes('test/integration/waf-agent/agent.test.ts'), left.join(' '));
  assert.ok(kept.includes('test/unit/architecture/needs-data.test.ts') && kept.includes('test/unit/libinjection/cases.test.ts'));
  assert.match(without.stderr, new RegExp(`\\*\\*\\* SKIPPING ${left.length} test files .*missing the crs test data \\(no /nonexistent/crs/crs-setup\\.conf\\.example, from CRS_DIR\\).*\\.\\./shared/conformance.* \\*\\*\\*`));
  const suites = await select('suites', { CRS_DIR: '/nonexistent/crs' });
  assert.deepEqual(suites.stdout.trim().split('\n'), ['libinjection', 'seclang']);
  assert.match(suites.stderr, /\*\*\* SKIPPING the crs conformance suite: missing the crs test data/);
});

test('without the libinjection data in CI: exit 1 before anything runs, saying how to get it', async () => {
  const r = await select('files', { CI: 'true', LIBINJECTION_DIR: '/nonexistent/libinjection' });
  assert.equal(r.code, 1);
  assert.equal(r.stdout, '');
  assert.match(r.stderr, /^CI: the libinjection tests and the libinjection conformance suite: missing the libinjection test data \(no \/nonexistent\/libinjection\/tests, from LIBINJECTION_DIR\); .*at \.\.\/shared\/conformance beside the checkout.*LIBINJECTION_DIR/m);
});
