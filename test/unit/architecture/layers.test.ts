// Layers point one way: src/ (the core) does not import plugins/ (the features) except through
// the composition root, and the runtime import graph of src/ + plugins/ has no cycles.
// `import type` is left out of the graph: it is erased at build time and cannot form a load cycle.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../../../', import.meta.url));

function tsFiles(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...tsFiles(p));
    else if (p.endsWith('.ts') && !p.endsWith('.d.ts')) out.push(p);
  }
  return out;
}

/** Relative runtime imports of a file (import/export ... from, dynamic import of a literal), resolved to repo paths. */
function runtimeImports(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const specs: string[] = [];
  const re = /^\s*(import|export)\s+(type\s+)?([^'";]*?\s+from\s+)?['"]([^'"]+)['"]/gm;
  for (let m = re.exec(text); m; m = re.exec(text)) {
    if (m[2]) continue; // import type / export type
    if (m[3] && /^\{[^}]*\}\s+from\s+$/s.test(m[3]) && m[3].slice(1, m[3].indexOf('}')).split(',').every((s) => s.trim() === '' || s.trim().startsWith('type '))) continue;
    specs.push(m[4]!);
  }
  for (const m of text.matchAll(/import\(\s*['"]([^'"]+)['"]\s*\)/g)) specs.push(m[1]!);
  return specs.filter((s) => s.startsWith('.')).map((s) => relative(root, resolve(dirname(file), s)));
}

const files = [...tsFiles(join(root, 'src')), ...tsFiles(join(root, 'plugins'))].map((f) => relative(root, f));
const graph = new Map(files.map((f) => [f, runtimeImports(join(root, f)).filter((t) => t !== f)]));

/** The one src/ module that imports plugins/: the composition root (docs/architecture.md). */
const COMPOSITION_ROOT = 'src/features.ts';

test('src/ imports plugins/ only from the composition root', () => {
  const offenders = new Map<string, string[]>();
  for (const f of files) {
    if (!f.startsWith('src/')) continue;
    // type-only imports count too here: the core should not even know a feature's types
    const text = readFileSync(join(root, f), 'utf8');
    const hits = [...text.matchAll(/from\s+['"]([^'"]*\/plugins\/[^'"]*)['"]/g)].map((m) => m[1]!);
    if (hits.length > 0) offenders.set(f, hits);
  }
  const unexpected = [...offenders.keys()].filter((f) => f !== COMPOSITION_ROOT);
  assert.deepEqual(unexpected, [], `src/ -> plugins/ imports: ${unexpected.map((f) => `${f}: ${offenders.get(f)!.join(', ')}`).join('; ')}`);
  assert.ok(offenders.has(COMPOSITION_ROOT), 'the composition root imports the features');
});

/** Strongly connected components with more than one module (Tarjan). */
function cycles(g: Map<string, string[]>): string[][] {
  let index = 0;
  const idx = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const on = new Set<string>();
  const out: string[][] = [];
  const visit = (v: string): void => {
    idx.set(v, index);
    low.set(v, index++);
    stack.push(v);
    on.add(v);
    for (const w of g.get(v) ?? []) {
      if (!g.has(w)) continue;
      if (!idx.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (on.has(w)) low.set(v, Math.min(low.get(v)!, idx.get(w)!));
    }
    if (low.get(v) === idx.get(v)) {
      const scc: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        on.delete(w);
        scc.push(w);
      } while (w !== v);
      if (scc.length > 1) out.push(scc.sort());
    }
  };
  for (const v of g.keys()) if (!idx.has(v)) visit(v);
  return out;
}

test('the cycle finder finds a cycle and nothing else (table)', () => {
  const g = (edges: [string, string][]) => {
    const m = new Map<string, string[]>();
    for (const [a, b] of edges) {
      m.set(a, [...(m.get(a) ?? []), b]);
      if (!m.has(b)) m.set(b, []);
    }
    return m;
  };
  assert.deepEqual(cycles(g([['a', 'b'], ['b', 'c']])), []);
  assert.deepEqual(cycles(g([['a', 'b'], ['b', 'a'], ['b', 'c']])), [['a', 'b']]);
  assert.deepEqual(cycles(g([['a', 'b'], ['b', 'c'], ['c', 'a'], ['d', 'a']])), [['a', 'b', 'c']]);
});

test('no runtime import cycles in src/ and plugins/', () => {
  assert.ok(graph.size > 100, `the graph has the repo's modules (${graph.size})`);
  assert.deepEqual(cycles(graph), []);
});
