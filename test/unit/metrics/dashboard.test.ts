// helm/sentinel/dashboards/sentinel.json: every query is valid PromQL (promtool parses it as a
// recording rule) and names only metrics the gateway exports (docs/metrics.md, itself checked
// against the code by test/integration/metrics/exposition.test.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { documentedMetrics, repoRoot } from '../../helpers/metric-names.ts';

interface Panel {
  type: string;
  title: string;
  targets?: { expr: string }[];
}

const dashboard = JSON.parse(readFileSync(join(repoRoot, 'helm', 'sentinel', 'dashboards', 'sentinel.json'), 'utf8')) as { panels: Panel[] };
const queries = dashboard.panels.flatMap((p) => (p.targets ?? []).map((t) => ({ panel: p.title, expr: t.expr })));

const KEYWORDS = new Set(['by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'and', 'or', 'unless', 'bool', 'offset']);

/** The metric names an expression selects: identifiers left once strings, label matchers, ranges and grouping clauses are removed, that are not function calls or keywords. */
function metricNames(expr: string): string[] {
  const bare = expr
    .replace(/"(?:[^"\\]|\\.)*"/g, '""')
    .replace(/\{[^}]*\}/g, ' ')
    .replace(/\[[^\]]*\]/g, ' ')
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ');
  const names: string[] = [];
  for (const m of bare.matchAll(/[A-Za-z_:][A-Za-z0-9_:]*(?=\s*(\(?))/g)) {
    if (m[1] === '(' || KEYWORDS.has(m[0])) continue;
    names.push(m[0]);
  }
  return names;
}

test('metricNames finds the selected metrics only', () => {
  assert.deepEqual(metricNames('histogram_quantile(0.95, sum by (le, route) (rate(a_bucket{job=~"$job",x="y"}[5m])))'), ['a_bucket']);
  assert.deepEqual(metricNames('sum(rate(a_total[5m])) / (sum(rate(b_total{r="rate(c)"}[5m])) + sum without (x) (c))'), ['a_total', 'b_total', 'c']);
  assert.deepEqual(metricNames('label_replace(rate(m[1m]), "class", "${1}xx", "status", "(.)..")'), ['m']);
});

test('the dashboard has the panels the chart promises, and every query names only exported metrics', () => {
  const titles = dashboard.panels.filter((p) => p.type === 'row').map((p) => p.title);
  assert.deepEqual(titles, ['Traffic', 'Errors', 'Latency', 'Upstream health and breakers', 'Rate limits', 'Agents', 'WAF', 'Cache', 'Gateway']);
  assert.ok(queries.length > 30);
  const known = new Set<string>();
  for (const [name, type] of documentedMetrics()) {
    known.add(name);
    if (type === 'histogram') for (const s of ['_bucket', '_sum', '_count']) known.add(name + s);
  }
  const unknown: string[] = [];
  for (const q of queries) {
    const names = metricNames(q.expr);
    assert.ok(names.length > 0, `${q.panel}: no metric in ${q.expr}`);
    for (const n of names) if (!known.has(n)) unknown.push(`${q.panel}: ${n}`);
  }
  assert.deepEqual(unknown, [], 'dashboard queries naming metrics the gateway does not export');
});

test('every query parses as PromQL (promtool check rules)', () => {
  const r0 = spawnSync('sh', ['-c', 'command -v promtool'], { encoding: 'utf8' });
  if (r0.status !== 0) throw new Error("promtool is needed by this test: apt-get install -y prometheus (Debian's package ships promtool; scripts/setup.sh installs it)");
  // Grafana's variables replaced by what they stand for at query time.
  const concrete = (e: string) => e.replaceAll('$__rate_interval', '5m').replaceAll('$job', '.*').replaceAll('$waf_agent', 'waf');
  const rules = queries.map((q, i) => `      - record: dashboard:query_${i}\n        expr: ${JSON.stringify(concrete(q.expr))}`).join('\n');
  const dir = mkdtempSync(join(tmpdir(), 'sentinel-dashboard-'));
  try {
    const file = join(dir, 'rules.yaml');
    writeFileSync(file, `groups:\n  - name: dashboard\n    rules:\n${rules}\n`);
    const r = spawnSync('promtool', ['check', 'rules', file], { encoding: 'utf8' });
    assert.equal(r.status, 0, `${r.stdout}${r.stderr}`);
    assert.match(r.stdout, new RegExp(`SUCCESS: ${queries.length} rules found`));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
