import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatRatio, renderTable, summarize, type Baseline, type RunMetrics, type RunRecord } from '../../../bench/lib/report.ts';

function m(rps: number, p99Ms: number, extra: Partial<RunMetrics> = {}): RunMetrics {
  return { rps, p50Ms: p99Ms / 2, p99Ms, p999Ms: null, cpuPct: 100, rssMaxKiB: 10240, rssSlopeKiBps: 0, errors: 0, non2xx: 0, unfinished: null, ...extra };
}

const records: RunRecord[] = [
  // three rounds per target; medians: raw 20k, nginx 60k, sentinel 15k
  ...[19_000, 20_000, 25_000].map((rps, i) => ({ round: i + 1, scenario: 'max-100b', target: 'raw', metrics: m(rps, 4) })),
  ...[60_000, 59_000, 61_000].map((rps, i) => ({ round: i + 1, scenario: 'max-100b', target: 'nginx', metrics: m(rps, 1) })),
  ...[15_000, 14_000].map((rps, i) => ({ round: i + 1, scenario: 'max-100b', target: 'sentinel', metrics: m(rps, 8, { errors: 2 }) })),
  { round: 3, scenario: 'max-100b', target: 'sentinel', error: 'exited during start-up' },
  // a feature scenario and its passthrough baseline
  { round: 1, scenario: 'rate-limit', target: 'sentinel', metrics: m(12_000, 10) },
];

const baselines = (scenario: string): Baseline[] =>
  scenario === 'rate-limit'
    ? [{ label: 'passthrough', scenario: 'max-100b', target: 'sentinel' }]
    : [
        { label: 'raw', scenario, target: 'raw' },
        { label: 'nginx', scenario, target: 'nginx' },
      ];

test('summarize: medians over rounds, failed runs counted apart', () => {
  const rows = summarize(records, baselines);
  const sentinel = rows.find((r) => r.scenario === 'max-100b' && r.target === 'sentinel')!;
  assert.equal(sentinel.runs, 2);
  assert.equal(sentinel.failed, 1);
  assert.equal(sentinel.errors, 4);
  assert.equal(sentinel.median.rps, 14_500);
  assert.equal(rows.find((r) => r.target === 'raw')!.median.rps, 20_000);
  assert.equal(rows.find((r) => r.target === 'nginx')!.median.rps, 60_000);
  assert.equal(sentinel.median.p999Ms, null, 'no run reported p99.9');
});

test('summarize: every metric as a ratio to each baseline of the same scenario', () => {
  const rows = summarize(records, baselines);
  const sentinel = rows.find((r) => r.scenario === 'max-100b' && r.target === 'sentinel')!;
  assert.equal(sentinel.ratios.raw!.rps, 14_500 / 20_000);
  assert.equal(sentinel.ratios.nginx!.rps, 14_500 / 60_000);
  assert.equal(sentinel.ratios.raw!.p99Ms, 2);
  assert.equal(sentinel.ratios.nginx!.p99Ms, 8);
  assert.equal(sentinel.ratios.nginx!.cpuPct, 1);
  assert.equal(sentinel.ratios.nginx!.p999Ms, null);
  const raw = rows.find((r) => r.target === 'raw')!;
  assert.equal(raw.ratios.raw!.rps, 1);
  const feature = rows.find((r) => r.scenario === 'rate-limit')!;
  assert.deepEqual(Object.keys(feature.ratios), ['passthrough']);
  assert.equal(feature.ratios.passthrough!.rps, 12_000 / 14_500);
});

test('summarize: a baseline that never ran gives null ratios, not a crash', () => {
  const rows = summarize(records.filter((r) => r.target !== 'nginx'), baselines);
  const sentinel = rows.find((r) => r.scenario === 'max-100b' && r.target === 'sentinel')!;
  assert.equal(sentinel.ratios.nginx!.rps, null);
  assert.equal(sentinel.ratios.raw!.rps, 0.725);
});

test('renderTable: value (×raw ×nginx) cells, run counts, columns without data dropped', () => {
  const rows = summarize(records, baselines).filter((r) => r.scenario === 'max-100b');
  const md = renderTable(rows, ['raw', 'nginx']);
  const lines = md.split('\n');
  assert.equal(lines[0], '| target | req/s | p50 ms | p99 ms | CPU % | RSS max MiB | RSS slope KiB/s | runs |');
  assert.equal(lines.length, 2 + 3);
  const sentinelLine = lines.find((l) => l.startsWith('| sentinel '))!;
  assert.match(sentinelLine, /\| 14,500 \(×0\.72 ×0\.24\) \|/);
  assert.match(sentinelLine, /\| 8\.00 \(×2\.00 ×8\.00\) \|/);
  assert.match(sentinelLine, /\| 2 \(\+1 failed\), 4 errors \|$/);
});

test('formatRatio', () => {
  assert.equal(formatRatio(null), '–');
  assert.equal(formatRatio(0.5), '×0.50');
  assert.equal(formatRatio(12.345), '×12.3');
});
