// Aggregation and rendering of bench results. Pure: run records in, medians, ratios and markdown
// out. Every figure is compared with baselines measured in the same run (same machine, pinning).
import { median, ratio } from './stats.ts';

export const METRIC_KEYS = ['rps', 'p50Ms', 'p99Ms', 'p999Ms', 'cpuPct', 'rssMaxKiB', 'rssSlopeKiBps'] as const;
export type MetricKey = (typeof METRIC_KEYS)[number];

export interface RunMetrics {
  rps: number;
  p50Ms: number;
  p99Ms: number;
  /** Only the open-loop generator reports p99.9. */
  p999Ms: number | null;
  cpuPct: number;
  rssMaxKiB: number;
  rssSlopeKiBps: number;
  errors: number;
  non2xx: number;
  /** Open loop only: requests still queued or in flight when the run ended. */
  unfinished: number | null;
}

export interface RunRecord {
  round: number;
  scenario: string;
  target: string;
  metrics?: RunMetrics;
  /** Why the run produced no numbers (target failed to start, generator failed...). */
  error?: string;
  /** The load generator's own parsed output, kept in the JSON for audits. */
  raw?: unknown;
  /** 1-minute load average when the run ended: other work on a shared machine skews figures. */
  loadavg1?: number;
}

export interface Baseline {
  /** Short name used in column headers and JSON keys, e.g. "raw", "nginx", "passthrough". */
  label: string;
  scenario: string;
  target: string;
}

export interface SummaryRow {
  scenario: string;
  target: string;
  runs: number;
  failed: number;
  errors: number;
  median: Record<MetricKey, number | null>;
  /** ratios[label][metric] = this row's median / the baseline's median. */
  ratios: Record<string, Record<MetricKey, number | null>>;
}

function key(scenario: string, target: string): string {
  return `${scenario}\u0000${target}`;
}

function medians(runs: readonly RunMetrics[]): Record<MetricKey, number | null> {
  const out = {} as Record<MetricKey, number | null>;
  for (const k of METRIC_KEYS) {
    const vals = runs.map((r) => r[k]).filter((v): v is number => v != null && Number.isFinite(v));
    out[k] = vals.length > 0 ? median(vals) : null;
  }
  return out;
}

/** Medians per (scenario, target) over rounds, then ratios to each baseline of that scenario. */
export function summarize(records: readonly RunRecord[], baselinesFor: (scenario: string) => Baseline[]): SummaryRow[] {
  const groups = new Map<string, { scenario: string; target: string; recs: RunRecord[] }>();
  for (const r of records) {
    const k = key(r.scenario, r.target);
    let g = groups.get(k);
    if (!g) groups.set(k, (g = { scenario: r.scenario, target: r.target, recs: [] }));
    g.recs.push(r);
  }
  const rows = new Map<string, SummaryRow>();
  for (const [k, g] of groups) {
    const ok = g.recs.flatMap((r) => (r.metrics ? [r.metrics] : []));
    rows.set(k, {
      scenario: g.scenario,
      target: g.target,
      runs: ok.length,
      failed: g.recs.length - ok.length,
      errors: ok.reduce((a, m) => a + m.errors + m.non2xx, 0),
      median: medians(ok),
      ratios: {},
    });
  }
  for (const row of rows.values()) {
    for (const b of baselinesFor(row.scenario)) {
      const base = rows.get(key(b.scenario, b.target));
      const r = {} as Record<MetricKey, number | null>;
      for (const m of METRIC_KEYS) r[m] = ratio(row.median[m], base?.median[m]);
      row.ratios[b.label] = r;
    }
  }
  return [...rows.values()];
}

export function formatNumber(v: number | null, kind: 'count' | 'ms' | 'pct' | 'mib' | 'slope'): string {
  if (v == null || !Number.isFinite(v)) return '–';
  switch (kind) {
    case 'count':
      return Math.round(v).toLocaleString('en-US');
    case 'ms':
      return v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v >= 1 ? v.toFixed(2) : v.toFixed(3);
    case 'pct':
      return v.toFixed(0);
    case 'mib':
      return v.toFixed(1);
    case 'slope':
      return v.toFixed(1);
  }
}

export function formatRatio(v: number | null): string {
  return v == null ? '–' : `×${v >= 10 ? v.toFixed(1) : v.toFixed(2)}`;
}

interface Column {
  title: string;
  metric: MetricKey;
  kind: 'count' | 'ms' | 'pct' | 'mib' | 'slope';
  scale?: number;
  /** Ratios of RSS slope are meaningless (near-zero denominators); show the value only. */
  noRatio?: boolean;
}

const COLUMNS: Column[] = [
  { title: 'req/s', metric: 'rps', kind: 'count' },
  { title: 'p50 ms', metric: 'p50Ms', kind: 'ms' },
  { title: 'p99 ms', metric: 'p99Ms', kind: 'ms' },
  { title: 'p99.9 ms', metric: 'p999Ms', kind: 'ms' },
  { title: 'CPU %', metric: 'cpuPct', kind: 'pct' },
  { title: 'RSS max MiB', metric: 'rssMaxKiB', kind: 'mib', scale: 1 / 1024 },
  { title: 'RSS slope KiB/s', metric: 'rssSlopeKiBps', kind: 'slope', noRatio: true },
];

/** One markdown table: a row per target, "value (×base1 ×base2)" cells. */
export function renderTable(rows: readonly SummaryRow[], baselineLabels: readonly string[]): string {
  const cols = COLUMNS.filter((c) => rows.some((r) => r.median[c.metric] != null));
  const head = ['target', ...cols.map((c) => c.title), 'runs'];
  const lines = [`| ${head.join(' | ')} |`, `|${head.map((_, i) => (i === 0 ? ':--' : '--:')).join('|')}|`];
  for (const r of rows) {
    const cells = [r.target];
    for (const c of cols) {
      const v = r.median[c.metric];
      let cell = formatNumber(v == null ? null : v * (c.scale ?? 1), c.kind);
      if (!c.noRatio && v != null) {
        const rs = baselineLabels.map((l) => formatRatio(r.ratios[l]?.[c.metric] ?? null));
        if (rs.some((x) => x !== '–')) cell += ` (${rs.join(' ')})`;
      }
      cells.push(cell);
    }
    cells.push(`${r.runs}${r.failed ? ` (+${r.failed} failed)` : ''}${r.errors ? `, ${r.errors} errors` : ''}`);
    lines.push(`| ${cells.join(' | ')} |`);
  }
  return lines.join('\n');
}
