// The metric names the gateway exports, read three ways, for the tests that keep docs/metrics.md
// and the Grafana dashboard honest: the names documented, the names registered in the source,
// and the names in a scraped exposition.
import { readFileSync, readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';

export const repoRoot = resolve(import.meta.dirname, '..', '..');

/** The backticked first cell of every table row in docs/metrics.md, with the row's type. */
export function documentedMetrics(): Map<string, string> {
  const out = new Map<string, string>();
  const text = readFileSync(join(repoRoot, 'docs', 'metrics.md'), 'utf8');
  for (const m of text.matchAll(/^\|\s*`(sentinel_[a-z0-9_]+)`\s*\|\s*(counter|gauge|histogram|summary)\s*\|/gm)) out.set(m[1]!, m[2]!);
  return out;
}

function sourceFiles(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...sourceFiles(p));
    else if (/\.(ts|mjs|js)$/.test(e.name)) out.push(p);
  }
  return out;
}

/**
 * Names registered in the runtime code: the Metrics get-or-create helpers
 * (`.counter('sentinel_…'`), prom-client constructors (`name: 'sentinel_…'`) and the hot-path
 * primitives (`new FastCounter('sentinel_…'`).
 */
export function registeredInSource(): Set<string> {
  const out = new Set<string>();
  const re = /(?:\.(?:counter|gauge|histogram)\(\s*|\bname:\s*|new Fast(?:Counter|Histogram)\(\s*)['"`](sentinel_[a-z0-9_]+)['"`]/g;
  for (const dir of ['src', 'plugins', 'agents']) {
    for (const file of sourceFiles(join(repoRoot, dir))) for (const m of readFileSync(file, 'utf8').matchAll(re)) out.add(m[1]!);
  }
  return out;
}

/** Metric family names (from `# TYPE` lines) in a Prometheus text exposition. */
export function exposedMetrics(exposition: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const m of exposition.matchAll(/^# TYPE (\S+) (\S+)$/gm)) out.set(m[1]!, m[2]!);
  return out;
}
