// The cluster's /metrics: one exposition built from every worker's registry snapshot plus the
// few metrics only the primary knows. prom-client's AggregatorRegistry.aggregate() does the
// merging (grouped by metric name, then by metricName + label set, so histogram buckets, _sum and
// _count add up separately); what is decided here is HOW each metric merges.
import { AggregatorRegistry, type Registry } from 'prom-client';
import type { WorkerMetricsJson } from './messages.ts';

type Aggregator = 'sum' | 'first' | 'min' | 'max' | 'average' | 'omit';

/** Cluster-wide facts the primary owns: workers' own values for these are ignored. */
export const PRIMARY_METRICS = new Set(['sentinel_up', 'sentinel_build_info', 'sentinel_config_reloads_total', 'sentinel_config_generation']);

/** Process metrics (collectDefaultMetrics with this prefix) are kept per worker, with a `worker` label. */
export const PROCESS_PREFIX = 'sentinel_process_';

/**
 * Gauges that do not add up. Everything else uses the metric's own aggregator, which is `sum`
 * for our counters, histograms and gauges: requests, in-flight requests, pool and agent
 * connections, rate-limit keys all add across workers.
 */
export const GAUGE_AGGREGATORS: Readonly<Record<string, Aggregator>> = {
  // 0 closed, 1 open, 2 half-open: any worker not closed shows
  sentinel_circuit_breaker_state: 'max',
  // 1 only while the target is in rotation in every worker
  sentinel_upstream_target_healthy: 'min',
  sentinel_discovery_targets: 'max',
  sentinel_tls_certificate_expiry_seconds: 'min',
};

export interface WorkerSnapshot {
  worker: number;
  metrics: WorkerMetricsJson;
}

/** Rewrites one worker's snapshot so AggregatorRegistry.aggregate() merges it the way described above. */
export function prepareWorkerSnapshot(s: WorkerSnapshot): WorkerMetricsJson {
  const out: WorkerMetricsJson = [];
  for (const m of s.metrics) {
    if (PRIMARY_METRICS.has(m.name)) continue;
    if (m.name.startsWith(PROCESS_PREFIX)) {
      // Distinct label sets per worker: nothing is merged; 'first' also keeps the ones
      // prom-client marks 'omit' (process start time) or 'average' (event-loop lag).
      out.push({ ...m, aggregator: 'first', values: m.values.map((v) => ({ ...v, labels: { ...v.labels, worker: String(s.worker) } })) });
      continue;
    }
    const override = GAUGE_AGGREGATORS[m.name];
    out.push(override ? { ...m, aggregator: override } : m);
  }
  return out;
}

/** The Prometheus exposition text of the whole cluster. */
export async function aggregateClusterMetrics(workers: readonly WorkerSnapshot[], primary: Registry): Promise<string> {
  const own = (await primary.getMetricsAsJSON()).filter((m) => PRIMARY_METRICS.has(m.name)) as WorkerMetricsJson;
  const merged = AggregatorRegistry.aggregate([own, ...workers.map(prepareWorkerSnapshot)]);
  return merged.metrics();
}
