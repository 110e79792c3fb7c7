// Every ```kdl block in README.md and docs/*.md loads with the real loader without a word from
// it about the keys: no unknown or misplaced key, no wrong type, no deprecated spelling, no
// "ignored" warning. So a key the docs show that the loader does not know (renamed, removed, never
// there) fails here, as schema-docs.test.ts fails a key the loader knows that no doc names.
// A block may be a fragment: a top-level `route`/`upstream`/`filter`/`listener`/`agent` node is
// read inside its block (routes { ... }), and what a fragment leaves out (a listener, the upstream
// or filter a route names) is not held against it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadConfigText } from '../../../src/config/load.ts';
import { ConfigError, formatDiagnostic, type Diagnostic } from '../../../src/config/diagnostics.ts';
import { repoRoot } from '../../helpers/metric-names.ts';

const PLURAL: Record<string, string> = { route: 'routes', upstream: 'upstreams', filter: 'filters', listener: 'listeners', agent: 'agents' };

/** What a fragment leaves out: references to things it does not define. */
const FRAGMENT_GAPS = [/at least one listener is required/, /unknown (upstream|filter|agent|listener) "/, /default-route .*unknown route/];

/** The block with each top-level singular node (starting at column 0) put inside its plural block. */
export function wrapFragment(kdl: string): string {
  const out: string[] = [];
  let open: string | undefined;
  for (const line of kdl.split('\n')) {
    const top = /^([a-z][a-z-]*)\b/.exec(line)?.[1];
    if (top !== undefined) {
      if (open) out.push('}');
      open = PLURAL[top];
      if (open) out.push(`${open} {`);
    }
    out.push(line);
  }
  if (open) out.push('}');
  return out.join('\n');
}

function kdlBlocks(): { where: string; text: string }[] {
  const docsDir = join(repoRoot, 'docs');
  const files = ['README.md', ...readdirSync(docsDir).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`)];
  const blocks: { where: string; text: string }[] = [];
  for (const f of files) {
    const text = readFileSync(join(repoRoot, f), 'utf8');
    for (const m of text.matchAll(/^```kdl\n([\s\S]*?)^```/gm)) blocks.push({ where: `${f}:${text.slice(0, m.index).split('\n').length + 1}`, text: m[1]! });
  }
  return blocks;
}

test('wrapFragment puts singular top-level nodes inside their blocks', () => {
  assert.equal(wrapFragment('route "a" {\n}\nrate-limits { default-rps 5 }'), 'routes {\nroute "a" {\n}\n}\nrate-limits { default-rps 5 }');
});

test('every ```kdl block of the docs loads with no diagnostic about its keys', () => {
  const blocks = kdlBlocks();
  assert.ok(blocks.length >= 20, `only ${blocks.length} kdl blocks found`);
  const problems: string[] = [];
  for (const { where, text } of blocks) {
    let diagnostics: readonly Diagnostic[];
    try {
      diagnostics = loadConfigText(wrapFragment(text), { name: where, baseDir: repoRoot }).warnings;
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      diagnostics = err.diagnostics;
    }
    for (const d of diagnostics) {
      const line = formatDiagnostic(d).split('\n')[0]!;
      if (!FRAGMENT_GAPS.some((re) => re.test(line))) problems.push(`${where}: ${line}`);
    }
  }
  assert.deepEqual(problems, [], 'docs show KDL the loader does not take as written');
});
