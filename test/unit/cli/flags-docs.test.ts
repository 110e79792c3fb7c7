// Flag by flag, the command lines match their docs: every flag the parsers of `sentinel` (run,
// test, lint, explain, migrate) and `sentinel-waf` (and its `tune`) accept is printed by their
// --help and named in docs/operations.md, and every flag docs/operations.md names is one a parser
// accepts (or Node's own). The accepted flags are read from the parsers' sources, so a flag added
// to a parser without a line in --help and the docs fails here, and so does a flag left in the
// docs after it was removed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from '../../helpers/metric-names.ts';

const src = (f: string): string => readFileSync(join(repoRoot, f), 'utf8');

/** String literals that are flags (`'-c'`, `'--config'`, `'--config='`), as the flags they name. */
function literalFlags(...files: string[]): Set<string> {
  const out = new Set<string>();
  for (const f of files) for (const m of src(f).matchAll(/'(--?[a-zA-Z][a-z-]*)=?'/g)) out.add(m[1]!);
  return out;
}

const sentinelFlags = literalFlags('src/cli/main.ts', 'src/cli/explain/index.ts', 'src/cli/migrate/index.ts');
const wafFlags = new Set([...src('src/waf/agent/config.ts').matchAll(/case '(--[a-z-]+)'/g)].map((m) => m[1]!));
// tune's node:util parseArgs options: `name: { type: ... }` (and `short: 'h'`)
const tuneOptions = /options: \{(.*)\}/.exec(src('src/waf/agent/tune-cli.ts'))![1]!;
const tuneFlags = new Set([...tuneOptions.matchAll(/'?([a-z][a-z-]*)'?: \{ type/g)].map((m) => `--${m[1]}`));

function help(bin: string, ...args: string[]): string {
  return execFileSync(process.execPath, ['--import', 'tsx', join(repoRoot, bin), ...args, '--help'], { cwd: repoRoot, encoding: 'utf8' });
}

/** Does `text` name `flag` as a whole token (not `--config` inside `--config-x`)? */
const names = (text: string, flag: string): boolean => new RegExp(`(^|[^a-zA-Z-])${flag}(?![a-zA-Z-])`).test(text);

test('the parsers were read', () => {
  for (const f of ['-c', '--config', '--workers', '--log-level', '--dump', '-H', '--client-ip', '--write']) assert.ok(sentinelFlags.has(f), f);
  for (const f of ['--socket', '--mode', '--request-side-only']) assert.ok(wafFlags.has(f), f);
  assert.ok(wafFlags.size >= 20, `${wafFlags.size} sentinel-waf flags`);
  assert.deepEqual([...tuneFlags].sort(), ['--extra-rules', '--from', '--global-paths', '--help', '--min-count', '--out']);
});

test('every flag a parser accepts is in its --help and in docs/operations.md', () => {
  const ops = src('docs/operations.md');
  const sentinelHelp = help('src/cli/main.ts');
  const wafHelp = help('src/waf/agent/main.ts');
  const tuneHelp = help('src/waf/agent/main.ts', 'tune');
  const missing: string[] = [];
  const check = (flags: Set<string>, helpText: string, who: string) => {
    for (const f of flags) {
      if (!names(helpText, f)) missing.push(`${who} ${f}: not in --help`);
      if (!names(ops, f)) missing.push(`${who} ${f}: not in docs/operations.md`);
    }
  };
  check(sentinelFlags, sentinelHelp, 'sentinel');
  check(wafFlags, wafHelp, 'sentinel-waf');
  check(tuneFlags, tuneHelp, 'sentinel-waf tune');
  assert.deepEqual(missing, []);
});

test('every flag docs/operations.md names is accepted by a parser (or is a Node flag)', () => {
  const NODE_FLAGS = new Set(['--min-semi-space-size']);
  const known = new Set([...sentinelFlags, ...wafFlags, ...tuneFlags, ...NODE_FLAGS]);
  const named = new Set([...src('docs/operations.md').matchAll(/(?<![a-zA-Z-])(--?[a-zA-Z][a-z-]*)(?![a-zA-Z-])/g)].map((m) => m[1]!));
  // single-dash words in prose (e.g. "-p1" is patch's, a lone "-" is a dash): only -X flags count
  const stale = [...named].filter((f) => (f.startsWith('--') || f.length === 2) && !known.has(f) && f !== '-p');
  assert.deepEqual(stale, [], 'flags docs/operations.md names that no parser accepts');
});
