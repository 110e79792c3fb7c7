// The cluster primary (`worker-threads` > 1): validates the config, forks the workers, coordinates
// reload and shutdown, replaces dead workers, and serves the aggregated metrics. It serves no
// traffic itself.
import cluster, { type Worker } from 'node:cluster';
import type { Server } from 'node:http';
import type { Logger } from 'pino';
import type { CompiledConfig } from '../config/compile.ts';
import { formatDiagnostic, reportableError } from '../config/diagnostics.ts';
import { createLogger, createSink, waitFlushed, type LineSink } from '../logging/logger.ts';
import { Metrics } from '../metrics/registry.ts';
import { loadAny, serveMetrics, type GatewayOptions } from '../server/gateway.ts';
import { reloadSources, watchConfigSources, type ConfigWatcher } from '../config/watch.ts';
import { aggregateClusterMetrics, type WorkerSnapshot } from './aggregate.ts';
import { CLUSTER_WORKERS_ENV, isToPrimary, type ToPrimary, type ToWorker, type WorkerMetricsJson } from './messages.ts';
import { DEFAULT_RESTART_POLICY, RestartPolicy, type RestartPolicyOptions } from './policy.ts';
import { workerExecArgv } from './young-generation.ts';

export interface PrimaryOptions extends Pick<GatewayOptions, 'configPath' | 'logLevel'> {
  workers: number;
  /** the config main.ts validated before forking */
  config: CompiledConfig;
  restartPolicy?: RestartPolicyOptions;
}

const RELOAD_TIMEOUT_MS = 60_000;
const SNAPSHOT_TIMEOUT_MS = 5_000;

interface Pending {
  worker: number;
  resolve(m: ToPrimary): void;
  reject(err: Error): void;
  timer: NodeJS.Timeout;
}

export class ClusterPrimary {
  /** only the primary-owned metrics are read from here (see aggregate.ts) */
  private readonly metrics = new Metrics({ defaultMetrics: false });
  readonly log: Logger;
  private config: CompiledConfig;
  private state: 'starting' | 'running' | 'stopping' = 'starting';
  private readonly ready = new Map<number, Worker>();
  private readonly restarts: RestartPolicy;
  private readonly restartTimers = new Set<NodeJS.Timeout>();
  private readonly pending = new Map<number, Pending>();
  private nextRequest = 0;
  private reloading: Promise<void> = Promise.resolve();
  private metricsServer: Server | undefined;
  private watcher: ConfigWatcher | undefined;
  private listenersText: string[] = [];
  private startup: { resolve(): void; reject(err: Error): void } | undefined;
  /** the audit log records reloads the primary rejects (workers record the ones they apply) */
  private readonly auditLog: LineSink | undefined;

  constructor(private readonly opts: PrimaryOptions) {
    this.config = opts.config;
    this.restarts = new RestartPolicy(opts.restartPolicy ?? DEFAULT_RESTART_POLICY);
    this.log = createLogger(opts.config.observability, opts.logLevel).child({ role: 'primary' });
    for (const w of opts.config.warnings) this.log.warn(formatDiagnostic(w));
    this.auditLog = createSink(opts.config.observability.logging?.['audit-log'], false);
  }

  async start(): Promise<void> {
    // SCHED_NONE: the primary creates each listening socket once and hands it to every worker;
    // the kernel then gives each connection to whichever worker accepts first. With the default
    // round-robin policy every connection would be accepted by the primary and passed over IPC
    // (one more hop per connection, and the primary becomes the bottleneck).
    cluster.schedulingPolicy = cluster.SCHED_NONE;
    // The workers' young generation (young-generation.ts): a flag only the command line can set.
    cluster.setupPrimary({ execArgv: workerExecArgv(process.execArgv, process.env) });
    cluster.on('message', (worker, m: unknown) => this.onMessage(worker, m));
    cluster.on('exit', (worker, code, signal) => this.onExit(worker, code, signal));
    process.on('SIGHUP', () => {
      this.log.info('SIGHUP: reloading configuration in every worker');
      void this.reload();
    });
    process.on('SIGTERM', () => this.shutdown(0, 'SIGTERM'));
    process.on('SIGINT', () => this.shutdown(0, 'SIGINT'));

    const started = new Promise<void>((resolve, reject) => (this.startup = { resolve, reject }));
    // A SIGHUP that arrives while workers are starting is applied once they all run (a worker
    // that started early may hold the older file).
    this.reloading = started.catch(() => undefined);
    for (let i = 0; i < this.opts.workers; i++) this.forkWorker();
    await started;
    this.metricsServer = await serveMetrics(this.config, () => this.renderMetrics());
    if (this.config.system['auto-reload'] && this.config.file) this.watcher = watchConfigSources(() => reloadSources(this.config), () => void this.reload());
    this.metrics.generation.set(1);
    const pids = [...this.ready.values()].map((w) => w.process.pid);
    this.log.info({ workers: this.opts.workers, pid: process.pid, worker_pids: pids, listeners: this.listenersText }, 'sentinel cluster started');
  }

  /** A worker told the cluster's size (gateway-wide bounds, e.g. response buffering's, are split by it). */
  private forkWorker(): Worker {
    return cluster.fork({ [CLUSTER_WORKERS_ENV]: String(this.opts.workers) });
  }

  private send(worker: Worker, m: ToWorker): void {
    if (worker.isConnected()) worker.send(m);
  }

  /** Sends a request carrying an id; resolves with the worker's answer carrying the same id. */
  private ask(worker: Worker, make: (id: number) => ToWorker, timeoutMs: number): Promise<ToPrimary> {
    const id = this.nextRequest++;
    return new Promise<ToPrimary>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`worker ${worker.id} did not answer within ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(id, { worker: worker.id, resolve, reject, timer });
      this.send(worker, make(id));
    });
  }

  private onMessage(worker: Worker, raw: unknown): void {
    if (!isToPrimary(raw)) return;
    const m: ToPrimary = raw;
    switch (m.type) {
      case 'sentinel:ready':
        this.ready.set(worker.id, worker);
        if (this.listenersText.length === 0) this.listenersText = m.listeners;
        if (this.state === 'starting') {
          if (this.ready.size === this.opts.workers) {
            this.state = 'running';
            this.startup?.resolve();
          }
        } else {
          this.restarts.onReady();
          this.log.info({ worker: worker.id, pid: worker.process.pid }, 'worker ready');
        }
        break;
      case 'sentinel:metrics-request':
        this.renderMetrics().then(
          (text) => this.send(worker, { type: 'sentinel:metrics-text', id: m.id, text }),
          (err: unknown) => this.send(worker, { type: 'sentinel:metrics-text', id: m.id, error: (err as Error).message }),
        );
        break;
      case 'sentinel:reload-result':
      case 'sentinel:metrics-snapshot': {
        const p = this.pending.get(m.id);
        if (!p) break;
        this.pending.delete(m.id);
        clearTimeout(p.timer);
        p.resolve(m);
        break;
      }
    }
  }

  private onExit(worker: Worker, code: number | null, signal: string | null): void {
    const wasReady = this.ready.delete(worker.id);
    for (const [id, p] of this.pending) {
      if (p.worker !== worker.id) continue;
      this.pending.delete(id);
      clearTimeout(p.timer);
      p.reject(new Error(`worker ${worker.id} exited`));
    }
    if (this.state === 'stopping') {
      if (Object.keys(cluster.workers ?? {}).length === 0) this.exit();
      return;
    }
    const how = { worker: worker.id, pid: worker.process.pid, code, signal };
    if (this.state === 'starting') {
      this.log.error(how, 'worker failed during startup; stopping');
      this.startup?.reject(new Error(`worker ${worker.id} exited during startup (code ${code}, signal ${signal})`));
      return;
    }
    const decision = this.restarts.onDeath(Date.now(), wasReady);
    if (decision.action === 'give-up') {
      this.log.error({ ...how, restarts: decision.restarts }, 'workers keep dying (crash loop); stopping the cluster');
      this.shutdown(1, 'crash loop');
      return;
    }
    this.log.warn({ ...how, restart_in_ms: decision.delayMs }, 'worker died unexpectedly; replacing it');
    const t = setTimeout(() => {
      this.restartTimers.delete(t);
      if (this.state === 'running') this.forkWorker();
    }, decision.delayMs);
    this.restartTimers.add(t);
  }

  /**
   * Validates the config once here; only a valid one is sent to the workers, which each reload
   * it through the gateway's own reload path. Reloads are serialised.
   */
  reload(): Promise<void> {
    const run = this.reloading.then(() => this.doReload());
    this.reloading = run.catch(() => undefined);
    return run;
  }

  private async doReload(): Promise<void> {
    if (this.state !== 'running') return;
    let next: CompiledConfig;
    try {
      next = loadAny(this.opts);
    } catch (err) {
      this.metrics.configReloads.inc({ result: 'failure' });
      // never the config's quoted lines (they may hold a secret): docs/security.md, session 14
      const why = reportableError(err);
      this.auditLog?.write(JSON.stringify({ timestamp: new Date().toISOString(), event_type: 'config_change', action: 'reload_failed', reason: why, role: 'primary' }) + '\n');
      this.log.error({ err: why }, 'config reload failed; no worker was changed, continuing with the previous configuration');
      return;
    }
    for (const w of next.warnings) this.log.warn(formatDiagnostic(w));
    this.config = next;
    this.watcher?.refresh();
    const workers = [...this.ready.values()];
    const results = await Promise.all(
      workers.map((w) =>
        this.ask(w, (id) => ({ type: 'sentinel:reload', id }), RELOAD_TIMEOUT_MS).then(
          (m) => (m.type === 'sentinel:reload-result' && m.ok ? undefined : `worker ${w.id}: ${m.type === 'sentinel:reload-result' ? m.error : 'unexpected answer'}`),
          (err: unknown) => `worker ${w.id}: ${(err as Error).message}`,
        ),
      ),
    );
    const failed = results.filter((r): r is string => r !== undefined);
    if (failed.length > 0) {
      // Only possible when the file changed again between this check and a worker's read.
      this.metrics.configReloads.inc({ result: 'failure' });
      this.log.error({ failed }, 'config reload failed in some workers');
      return;
    }
    this.metrics.configReloads.inc({ result: 'success' });
    this.metrics.generation.inc();
    this.log.info({ workers: workers.length }, 'configuration reloaded in every worker');
  }

  private rendering: Promise<string> | undefined;

  /**
   * The cluster-wide exposition. Scrapes that arrive while one is being built share it: each would
   * otherwise ask every worker for its whole registry and merge in this one thread (session 15:
   * 50 concurrent scrapes of the metrics builtin took 2.8 s, 200 took 7.7 s, and a worker slowed
   * past SNAPSHOT_TIMEOUT_MS fails every scrape waiting on it). The shared answer was started at
   * most one build earlier than the scrape arrived.
   */
  renderMetrics(): Promise<string> {
    this.rendering ??= this.buildMetrics().finally(() => (this.rendering = undefined));
    return this.rendering;
  }

  /** A snapshot from every ready worker, merged (aggregate.ts). */
  private async buildMetrics(): Promise<string> {
    const workers = [...this.ready.values()];
    // A worker that cannot answer fails the scrape: a sum with a worker missing would look like a
    // counter reset to Prometheus.
    const snapshots: WorkerSnapshot[] = await Promise.all(
      workers.map(async (w) => {
        const m = await this.ask(w, (id) => ({ type: 'sentinel:metrics-snapshot', id }), SNAPSHOT_TIMEOUT_MS);
        if (m.type !== 'sentinel:metrics-snapshot' || !m.metrics) throw new Error(`worker ${w.id}: ${m.type === 'sentinel:metrics-snapshot' ? m.error : 'unexpected answer'}`);
        return { worker: w.id, metrics: m.metrics satisfies WorkerMetricsJson };
      }),
    );
    return aggregateClusterMetrics(snapshots, this.metrics.registry);
  }

  private exitCode = 0;
  private shutdownTimer: NodeJS.Timeout | undefined;

  /** SIGTERM to every worker (each drains, bounded by graceful-shutdown-timeout-secs), then exit. */
  shutdown(code: number, why: string): void {
    if (this.state === 'stopping') return;
    const wasStarting = this.state === 'starting';
    this.state = 'stopping';
    this.exitCode = code;
    this.log.info({ reason: why }, 'stopping the cluster');
    for (const t of this.restartTimers) clearTimeout(t);
    this.watcher?.close();
    this.metricsServer?.close();
    this.metricsServer?.closeAllConnections();
    const workers = Object.values(cluster.workers ?? {}).filter((w): w is Worker => w !== undefined);
    if (workers.length === 0) return this.exit();
    for (const w of workers) w.process.kill('SIGTERM');
    // Workers bound their own drain; this is the backstop for one that hangs.
    const boundMs = wasStarting ? 5_000 : this.config.system['graceful-shutdown-timeout-secs'] * 1000 + 5_000;
    this.shutdownTimer = setTimeout(() => {
      for (const w of Object.values(cluster.workers ?? {})) {
        this.log.warn({ worker: w?.id }, 'worker did not stop in time; killing it');
        w?.process.kill('SIGKILL');
      }
    }, boundMs);
    this.shutdownTimer.unref();
  }

  private exit(): void {
    clearTimeout(this.shutdownTimer);
    this.log.info({ code: this.exitCode }, 'cluster stopped');
    const code = this.exitCode;
    void Promise.all([this.auditLog?.flushed?.(), waitFlushed((cb) => this.log.flush(cb))]).then(() => process.exit(code));
  }
}

/** Starts the primary; a worker that fails during startup stops everything and rejects. */
export async function runPrimary(opts: PrimaryOptions): Promise<ClusterPrimary> {
  const p = new ClusterPrimary(opts);
  try {
    await p.start();
  } catch (err) {
    p.shutdown(1, (err as Error).message);
    throw err;
  }
  return p;
}
