// Prometheus metrics (prom-client). One Metrics object lives for the whole process so counters
// survive reloads; generations only add labels. Names follow Sentinel (`sentinel_` prefix).
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { FastCounter, FastHistogram } from './fast.ts';

export const VERSION = '0.1.0';

const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

// Methods a client can send are open-ended (HTTP/2 takes any token); the `method` label keeps
// the registered ones and folds the rest into OTHER so a client cannot grow the series count.
const KNOWN_METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'CONNECT', 'OPTIONS', 'TRACE', 'PATCH']);

/** The `method` label value for a request method: a standard method as is, anything else `OTHER`. */
export function methodLabel(method: string): string {
  return KNOWN_METHODS.has(method) ? method : 'OTHER';
}

export class Metrics {
  readonly registry = new Registry();

  // The per-request metrics use the cell-per-label-set primitives of fast.ts (see there why).
  readonly requestsTotal = new FastCounter('sentinel_requests_total', 'Requests handled, by route, method and status', ['route', 'method', 'status'], this.registry);
  readonly requestDuration = new FastHistogram(
    'sentinel_request_duration_seconds',
    'Request duration from arrival to the last response byte',
    ['route', 'method'],
    LATENCY_BUCKETS,
    this.registry,
  );
  /** requests in flight; read by the gauge at scrape time instead of a gauge update per request */
  inFlight = 0;
  readonly activeRequests: Gauge = new Gauge({
    name: 'sentinel_active_requests',
    help: 'Requests in flight',
    registers: [this.registry],
    collect: (): void => this.activeRequests.set(this.inFlight),
  });
  readonly upstreamAttempts = new FastCounter('sentinel_upstream_attempts_total', 'Attempts sent to upstreams', ['upstream', 'route'], this.registry);
  readonly upstreamFailures = new Counter({
    name: 'sentinel_upstream_failures_total',
    help: 'Failed upstream attempts by reason',
    labelNames: ['upstream', 'route', 'reason'] as const,
    registers: [this.registry],
  });
  readonly upstreamDuration = new FastHistogram('sentinel_upstream_duration_seconds', 'Time to upstream response headers', ['upstream'], LATENCY_BUCKETS, this.registry);
  readonly blockedRequests = new Counter({
    name: 'sentinel_blocked_requests_total',
    help: 'Requests answered by the gateway itself instead of the upstream, by reason',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  });
  readonly responseBuffering = new Counter({
    name: 'sentinel_response_buffering_total',
    help: 'Answers buffered for clients that stopped reading (buffered, spooled to a temp file) and the bounds that made a relay wait for its client instead (limit_memory, limit_file, limit_client, file_error)',
    labelNames: ['event'] as const,
    registers: [this.registry],
  });
  readonly clientErrors = new Counter({
    name: 'sentinel_client_errors_total',
    help: 'Requests refused before routing because the client sent something malformed or unsupported (parser errors, front-door normalisation), by kind',
    labelNames: ['kind'] as const,
    registers: [this.registry],
  });
  readonly websocketConnections = new Counter({
    name: 'sentinel_websocket_connections_total',
    help: 'WebSocket upgrades proxied (101 relayed to the client), by route',
    labelNames: ['route'] as const,
    registers: [this.registry],
  });
  readonly websocketClosedByGateway = new Counter({
    name: 'sentinel_websocket_closed_by_gateway_total',
    help: 'WebSocket sessions the gateway closed itself, by route and reason (idle, going_away, agent, protocol, too_big, too_many_fragments, message_rate, client_message_rate, inspection_error)',
    labelNames: ['route', 'reason'] as const,
    registers: [this.registry],
  });
  readonly websocketFrames = new Counter({
    name: 'sentinel_websocket_frames_total',
    help: 'Inspected WebSocket frames by route, direction (c2s, s2c), opcode and decision (allow, drop, close)',
    labelNames: ['route', 'direction', 'opcode', 'decision'] as const,
    registers: [this.registry],
  });
  readonly websocketInspectionDuration = new Histogram({
    name: 'sentinel_websocket_inspection_duration_seconds',
    help: 'Time to decide about one inspected WebSocket frame',
    labelNames: ['route'] as const,
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [this.registry],
  });
  readonly websocketFrameSize = new Histogram({
    name: 'sentinel_websocket_frame_size_bytes',
    help: 'Payload size of inspected WebSocket frames',
    labelNames: ['route', 'direction'] as const,
    buckets: [16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576],
    registers: [this.registry],
  });
  readonly websocketMessagesReassembled = new Counter({
    name: 'sentinel_websocket_messages_reassembled_total',
    help: 'Fragmented WebSocket messages inspected whole (websocket-inspect-messages), by route, direction and decision',
    labelNames: ['route', 'direction', 'decision'] as const,
    registers: [this.registry],
  });
  readonly up = new Gauge({ name: 'sentinel_up', help: '1 while the gateway runs', registers: [this.registry] });
  readonly buildInfo = new Gauge({ name: 'sentinel_build_info', help: 'Build information', labelNames: ['version', 'node'] as const, registers: [this.registry] });
  readonly configReloads = new Counter({
    name: 'sentinel_config_reloads_total',
    help: 'Configuration reloads by result',
    labelNames: ['result'] as const,
    registers: [this.registry],
  });
  readonly generation = new Gauge({ name: 'sentinel_config_generation', help: 'Number of the active config generation', registers: [this.registry] });

  constructor(opts: { defaultMetrics?: boolean } = {}) {
    this.up.set(1);
    this.buildInfo.set({ version: VERSION, node: process.version }, 1);
    if (opts.defaultMetrics !== false) {
      collectDefaultMetrics({ register: this.registry, prefix: 'sentinel_process_' });
      // prom-client names these three gauges `_total`, which Prometheus reserves for counters
      // (`promtool check metrics` flags them); the per-type gauges without the suffix stay.
      for (const name of ['active_handles_total', 'active_requests_total', 'active_resources_total']) this.registry.removeSingleMetric(`sentinel_process_nodejs_${name}`);
    }
  }

  /** Get or create a metric so plugins can register theirs once per process (reloads reuse them). */
  counter<L extends string>(name: string, help: string, labelNames: readonly L[] = []): Counter<L> {
    const existing = this.registry.getSingleMetric(name);
    if (existing) return existing as Counter<L>;
    return new Counter({ name, help, labelNames, registers: [this.registry] });
  }
  /** As counter(), as a fast.ts counter: for per-request paths (resolve a cell with child() once, then add to it). */
  fastCounter(name: string, help: string, labelNames: readonly string[]): FastCounter {
    const existing = this.registry.getSingleMetric(name);
    if (existing instanceof FastCounter) return existing;
    if (existing) throw new Error(`metric ${name} is already registered as another kind`);
    return new FastCounter(name, help, labelNames, this.registry);
  }
  gauge<L extends string>(name: string, help: string, labelNames: readonly L[] = []): Gauge<L> {
    const existing = this.registry.getSingleMetric(name);
    if (existing) return existing as Gauge<L>;
    return new Gauge({ name, help, labelNames, registers: [this.registry] });
  }
  histogram<L extends string>(name: string, help: string, labelNames: readonly L[] = [], buckets?: number[]): Histogram<L> {
    const existing = this.registry.getSingleMetric(name);
    if (existing) return existing as Histogram<L>;
    return new Histogram({ name, help, labelNames, registers: [this.registry], ...(buckets ? { buckets } : {}) });
  }

  /** As histogram(), as a fast.ts histogram (per-call paths: resolve a cell with child() once). */
  fastHistogram(name: string, help: string, labelNames: readonly string[], buckets: readonly number[]): FastHistogram {
    const existing = this.registry.getSingleMetric(name);
    if (existing instanceof FastHistogram) return existing;
    if (existing) throw new Error(`metric ${name} is already registered as another kind`);
    return new FastHistogram(name, help, labelNames, buckets, this.registry);
  }

  async render(): Promise<string> {
    return this.registry.metrics();
  }
}
