// IPC between the cluster primary and its workers (process.send / worker.send, JSON-serialised).
// Every message carries a `sentinel:` type so other listeners on the channel (node:cluster's own
// internal messages) are never confused with ours.
import type { MetricObjectWithValues, MetricValue } from 'prom-client';

export type WorkerMetricsJson = MetricObjectWithValues<MetricValue<string>>[];

/** primary -> worker */
export type ToWorker =
  | { type: 'sentinel:reload'; id: number }
  | { type: 'sentinel:metrics-snapshot'; id: number }
  | { type: 'sentinel:metrics-text'; id: number; text?: string; error?: string };

/** worker -> primary */
export type ToPrimary =
  | { type: 'sentinel:ready'; listeners: string[] }
  | { type: 'sentinel:reload-result'; id: number; ok: boolean; error?: string }
  | { type: 'sentinel:metrics-snapshot'; id: number; metrics?: WorkerMetricsJson; error?: string }
  | { type: 'sentinel:metrics-request'; id: number };

function isTyped(m: unknown): m is { type: string } {
  return typeof m === 'object' && m !== null && typeof (m as { type?: unknown }).type === 'string' && (m as { type: string }).type.startsWith('sentinel:');
}

export function isToWorker(m: unknown): m is ToWorker {
  return isTyped(m);
}

export function isToPrimary(m: unknown): m is ToPrimary {
  return isTyped(m);
}

/** Environment variable with the cluster's size, set by the primary on every worker it forks. */
export const CLUSTER_WORKERS_ENV = 'SENTINEL_CLUSTER_WORKERS';
