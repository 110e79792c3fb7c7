// Golden tests for `sentinel migrate`, run through the CLI entry (bin/sentinel.mjs) as a child
// process: test/fixtures/migrate/cases.json lists each case; its expected output is
// test/fixtures/migrate/golden/NAME.txt (exit code, stdout: the diff, stderr: the summary), and
// legacy.kdl rewritten with --write must equal golden/legacy.migrated.kdl.
// UPDATE_GOLDEN=1 rewrites the golden files from the current output (review the diff).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadConfigFile } from '../../../src/config/load.ts';
import { configView } from '../../../src/config/view.ts';
import { ConfigError } from '../../../src/config/diagnostics.ts';
import { pluginValidators } from '../../../src/server/validators.ts';
import { applyFixes } from '../../../src/cli/migrate/edits.ts';
import { unifiedDiff } from '../../../src/cli/migrate/diff.ts';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const bin = join(root, 'bin', 'sentinel.mjs');
const dir = 'test/fixtures/migrate';
const cases = JSON.parse(readFileSync(join(root, dir, 'cases.json'), 'utf8')) as { name: string; file: string; code: number }[];
const update = Boolean(process.env.UPDATE_GOLDEN);

function sentinel(args: string[], cwd = root): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [bin, ...args], { cwd, env: { ...process.env, SENTINEL_CONFIG: '' } }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? -1) : 0, stdout, stderr });
    });
  });
}

function golden(name: string, actual: string): void {
  const path = join(root, dir, 'golden', name);
  if (update) {
    mkdirSync(join(root, dir, 'golden'), { recursive: true });
    writeFileSync(path, actual);
  }
  assert.ok(existsSync(path), `missing ${path} (run with UPDATE_GOLDEN=1 and review it)`);
  assert.equal(actual, readFileSync(path, 'utf8'));
}

const load = (file: string) => loadConfigFile(file, { validators: pluginValidators });

for (const c of cases) {
  test(`sentinel migrate golden: ${c.name}`, async () => {
    const r = await sentinel(['migrate', '-c', `${dir}/${c.file}`]);
    assert.equal(r.code, c.code, r.stderr);
    golden(`${c.name}.txt`, `exit ${r.code}\n--- stdout\n${r.stdout}--- stderr\n${r.stderr}`);
  });
}

test('every deprecated form in legacy.kdl warns in the loader, with a fix', () => {
  const config = load(join(root, dir, 'legacy.kdl'));
  const fixed = config.warnings.filter((w) => w.fix).map((w) => (w.fix!.kind === 'remove-node' ? `-${w.fix!.name}` : `${w.fix!.from}>${w.fix!.to}`));
  // one of each: the server block, every schema alias, the retry legacy keys, builtin spellings
  const expected = [
    'version>schema-version',
    'server>system',
    'max-header-size>max-header-size-bytes',
    'max-body-size>max-body-size-bytes',
    'redis-fallback-local>redis-fallback',
    'memcached-fallback>memcached-fallback-local',
    'not_found>not-found',
    'cache_stats>cache-stats',
    'idle-timeout>idle-timeout-secs',
    'max-lifetime>max-lifetime-secs',
    'connect>connect-secs',
    'request>request-secs',
    'read>read-secs',
    'write>write-secs',
    'backoff-ms>backoff-base-ms',
    '-timeout-ms',
  ];
  for (const e of expected) assert.ok(fixed.includes(e), `no deprecation warning for ${e}; got ${fixed.join(', ')}`);
  assert.equal(fixed.length, expected.length + 2, `the property spellings connect= and "read"= too: ${fixed.join(', ')}`);
});

test('migrate --write: the file is rewritten in place, loads with no deprecation and the same meaning; a second run has nothing to do', async () => {
  const tmp = mkdtempSync(join(tmpdir(), 'sentinel-migrate-'));
  cpSync(join(root, dir, 'legacy.kdl'), join(tmp, 'legacy.kdl'));
  const r = await sentinel(['migrate', '-c', 'legacy.kdl', '--write'], tmp);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /written to legacy\.kdl/);
  const migrated = readFileSync(join(tmp, 'legacy.kdl'), 'utf8');
  golden('legacy.migrated.kdl', migrated);
  const before = load(join(root, dir, 'legacy.kdl'));
  const after = load(join(tmp, 'legacy.kdl'));
  assert.deepEqual(after.warnings.filter((w) => w.fix), []);
  const strip = (v: unknown) => ({ ...(v as Record<string, unknown>), warnings: undefined });
  assert.deepEqual(strip(configView(after)), strip(configView(before)));
  // the printed diff is a real patch: applied to the original it gives the written file
  const orig = join(tmp, 'orig');
  mkdirSync(orig);
  cpSync(join(root, dir, 'legacy.kdl'), join(orig, 'legacy.kdl'));
  const dry = await sentinel(['migrate', '-c', 'legacy.kdl'], orig);
  execFileSync('patch', ['-p1', '--quiet'], { cwd: orig, input: dry.stdout });
  assert.equal(readFileSync(join(orig, 'legacy.kdl'), 'utf8'), migrated);
  const again = await sentinel(['migrate', '-c', 'legacy.kdl'], tmp);
  assert.equal(again.code, 0);
  assert.equal(again.stdout, '');
  assert.match(again.stderr, /nothing to do/);
});

test('a schema-version newer than supported is refused by the loader (sentinel test, run) with a clear message', async () => {
  assert.throws(() => load(join(root, dir, 'newer-schema.kdl')), (err: unknown) => err instanceof ConfigError && /version 1\.1 is newer than 1\.0/.test(err.message));
  const r = await sentinel(['test', '-c', `${dir}/newer-schema.kdl`]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /schema-version: version 1\.1 is newer than 1\.0, the newest this gateway/);
});

test('sentinel --help lists explain and migrate', async () => {
  const r = await sentinel(['--help']);
  assert.match(r.stdout, /sentinel explain -c FILE \[METHOD\] URL/);
  assert.match(r.stdout, /sentinel migrate -c FILE \[--write\]/);
});

test('edits: only the changed words move; quoted names, properties, type annotations, several nodes on a line', () => {
  const table: [string, Parameters<typeof applyFixes>[1], string][] = [
    ['server {\n}', [{ line: 1, column: 1, fix: { kind: 'rename-node', from: 'server', to: 'system' } }], 'system {\n}'],
    ['"server" { }', [{ line: 1, column: 1, fix: { kind: 'rename-node', from: 'server', to: 'system' } }], '"system" { }'],
    ['  (t)read 5 // x', [{ line: 1, column: 3, fix: { kind: 'rename-node', from: 'read', to: 'read-secs' } }], '  (t)read-secs 5 // x'],
    ['t { connect 1; read 2; }', [{ line: 1, column: 5, fix: { kind: 'rename-node', from: 'connect', to: 'connect-secs' } }, { line: 1, column: 16, fix: { kind: 'rename-node', from: 'read', to: 'read-secs' } }], 't { connect-secs 1; read-secs 2; }'],
    ['timeouts connect=3 "read"=7', [{ line: 1, column: 1, fix: { kind: 'rename-property', from: 'read', to: 'read-secs' } }], 'timeouts connect=3 "read-secs"=7'],
    ['builtin-handler "not_found" // not_found', [{ line: 1, column: 1, fix: { kind: 'replace-value', from: 'not_found', to: 'not-found' } }], 'builtin-handler "not-found" // not_found'],
    ['a\n    timeout-ms 5 // gone\nb', [{ line: 2, column: 5, fix: { kind: 'remove-node', name: 'timeout-ms' } }], 'a\nb'],
    ['é { read 1 }', [{ line: 1, column: 5, fix: { kind: 'rename-node', from: 'read', to: 'read-secs' } }], 'é { read-secs 1 }'],
  ];
  for (const [text, fixes, want] of table) {
    const r = applyFixes(text, fixes);
    assert.deepEqual(r.failed, [], text);
    assert.equal(r.text, want);
  }
  const shared = applyFixes('r { max-attempts 2; timeout-ms 5 }', [{ line: 1, column: 21, fix: { kind: 'remove-node', name: 'timeout-ms' } }]);
  assert.equal(shared.failed.length, 1);
  assert.equal(shared.text, 'r { max-attempts 2; timeout-ms 5 }');
  const wrong = applyFixes('x 1', [{ line: 1, column: 1, fix: { kind: 'rename-node', from: 'server', to: 'system' } }]);
  assert.equal(wrong.failed.length, 1);
});

test('unifiedDiff: hunks with context, counts, and nothing for equal texts', () => {
  assert.equal(unifiedDiff('a\nb\n', 'a\nb\n', 'f'), '');
  const lines = Array.from({ length: 20 }, (_, i) => `l${i + 1}`);
  const changed = [...lines];
  changed[1] = 'L2';
  changed[17] = 'L18';
  const d = unifiedDiff(lines.join('\n') + '\n', changed.join('\n') + '\n', 'f');
  assert.equal(d, ['--- a/f', '+++ b/f', '@@ -1,5 +1,5 @@', ' l1', '-l2', '+L2', ' l3', ' l4', ' l5', '@@ -15,6 +15,6 @@', ' l15', ' l16', ' l17', '-l18', '+L18', ' l19', ' l20', ''].join('\n'));
  assert.equal(unifiedDiff('a\nb\nc\n', 'a\nc\n', 'f'), '--- a/f\n+++ b/f\n@@ -1,3 +1,2 @@\n a\n-b\n c\n');
});
