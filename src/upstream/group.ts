// One `upstream "id"` of one generation: its targets, balancer, per-target undici Pools,
// circuit breakers (passive health), active health checks and retry policy. The core's
// forwarder drives it: select() -> dispatcher()/origin() -> report() (once per attempt) ->
// shouldRetry().
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { resolve } from 'node:path';
import type { ConnectionOptions } from 'node:tls';
import { Client, type Dispatcher } from 'undici';
import type { RawUpstream } from '../config/schema.ts';
import type { GenerationServices } from '../pipeline/types.ts';
import type { AttemptOutcome, Balancer, Pick, PickContext, TargetState } from './types.ts';
import { collectTargets, urlHost } from './address.ts';
import { createTargetPool, type TargetPool, type TargetPoolOptions } from './pool.ts';
import { algorithmOf, canonicalAlgorithm, createBalancer, validateLoadBalancing } from '../../plugins/balancing/index.ts';
import type { CircuitBreakerConfig } from '../../plugins/balancing/schema.ts';
import { CLOSED, breakerSettings, canPass, next, phaseGauge, type BreakerSettings, type BreakerState } from '../../plugins/health/breaker.ts';
import {
  HealthScheduler,
  INITIAL_THRESHOLD,
  healthCheckSettings,
  httpProbe,
  tcpProbe,
  thresholdNext,
  type HealthCheckSettings,
  type ProbeResult,
  type ThresholdState,
} from '../../plugins/health/active.ts';
import { grpcHealthCheck } from '../../plugins/health/grpc-health.ts';
import { decideRetry, retrySettings, RetryBudget, type RetrySettings } from '../../plugins/retry/policy.ts';

export interface UpstreamGroupOptions {
  id: string;
  config: RawUpstream;
  /** directory relative paths in the block (tls ca-cert, client-cert, client-key) are resolved against */
  baseDir: string;
  services: GenerationServices;
  /** a route's `circuit-breaker` block, used for the targets when the upstream has none of its own */
  routeCircuitBreaker?: CircuitBreakerConfig;
  /** injected clock / randomness (tests); default performance.now / Math.random */
  now?: () => number;
  rng?: () => number;
}

interface MutableTarget extends TargetState {
  healthy: boolean;
  inFlight: number;
}

/** Per-target state the balancer does not see. */
interface TargetRuntime {
  breaker: BreakerState;
  /** active health check verdict (thresholds applied); healthy until checks say otherwise */
  active: ThresholdState;
  lastCheck: ProbeResult | undefined;
  /** last PASSIVE_WINDOW outcomes (true = failure), ring buffer */
  window: boolean[];
  windowPos: number;
  lastError: string | undefined;
  pool: TargetPool | undefined;
  checkClient: Client | undefined;
}

const PASSIVE_WINDOW = 100;
/** nginx's "client closed request", what the forwarder reports when the client aborts */
const CLIENT_CLOSED = 499;

export interface UpstreamTimeouts {
  requestMs: number;
  readMs: number;
  writeMs: number;
  connectMs: number;
}

/** An attempt outcome that counts against the target (passive health, breaker): errors and 5xx. */
export function isFailure(o: AttemptOutcome): boolean {
  return o.kind === 'error' || o.status >= 500;
}

/**
 * Every problem in an upstream block's policies that would make new UpstreamGroup() throw,
 * as messages for the config compiler (load-balancing, health-check, tls files).
 */
export function validateUpstreamPolicies(config: RawUpstream, baseDir: string): string[] {
  // Targets are checked by the config compiler itself (same collectTargets parser).
  const errors: string[] = [];
  const lb = validateLoadBalancing(config['load-balancing']);
  if (lb) errors.push(`load-balancing: ${lb}`);
  if (config['health-check']) {
    const h = healthCheckSettings(config['health-check']);
    if (typeof h === 'string') errors.push(`health-check: ${h}`);
  }
  for (const key of ['ca-cert', 'client-cert', 'client-key'] as const) {
    const p = config.tls?.[key];
    if (!p) continue;
    try {
      readFileSync(resolve(baseDir, p));
    } catch (e) {
      errors.push(`tls > ${key}: cannot read "${p}": ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    }
  }
  if (config.tls && (config.tls['client-cert'] === undefined) !== (config.tls['client-key'] === undefined)) {
    errors.push('tls: client-cert and client-key must be given together');
  }
  const hv = config['http-version'];
  if (hv && (hv['min-version'] ?? 1) > (hv['max-version'] ?? 1)) errors.push('http-version: min-version is greater than max-version');
  return errors;
}

export class UpstreamGroup {
  readonly id: string;
  readonly targets: readonly TargetState[];
  readonly timeouts: UpstreamTimeouts;
  /** canonical load-balancing name */
  readonly algorithm: string;
  private readonly mutableTargets: MutableTarget[];
  private readonly runtime: TargetRuntime[];
  private readonly balancer: Balancer;
  private readonly breakerCfg: BreakerSettings;
  private readonly retry: RetrySettings;
  private readonly budget: RetryBudget;
  private readonly poolOptions: TargetPoolOptions;
  private readonly health: HealthCheckSettings | undefined;
  private scheduler: HealthScheduler | undefined;
  private statsTimer: NodeJS.Timeout | undefined;
  private readonly scheme: 'http' | 'https';
  private readonly services: GenerationServices;
  private readonly now: () => number;
  private readonly rng: () => number;
  private readonly config: RawUpstream;
  private readonly breakerGauge;
  private readonly healthGauge;
  private readonly poolSizeGauge;
  private readonly poolIdleGauge;
  private closed = false;

  constructor(opts: UpstreamGroupOptions) {
    this.id = opts.id;
    this.config = opts.config;
    this.services = opts.services;
    this.now = opts.now ?? (() => performance.now());
    this.rng = opts.rng ?? Math.random;
    const specs = collectTargets(opts.config);
    if (specs.length === 0) throw new Error(`upstream "${opts.id}" requires at least one target`);
    this.mutableTargets = specs.map((s, index) => ({ ...s, index, healthy: true, inFlight: 0 }));
    this.targets = this.mutableTargets;
    this.runtime = specs.map(() => ({
      breaker: CLOSED,
      active: INITIAL_THRESHOLD,
      lastCheck: undefined,
      window: [],
      windowPos: 0,
      lastError: undefined,
      pool: undefined,
      checkClient: undefined,
    }));
    const lb = opts.config['load-balancing'];
    this.algorithm = canonicalAlgorithm(lb) ?? algorithmOf(lb);
    this.balancer = createBalancer(lb, { rng: this.rng, now: this.now });
    this.breakerCfg = breakerSettings(opts.config['circuit-breaker'] ?? opts.routeCircuitBreaker);
    this.retry = retrySettings(opts.config['retry-policy']);
    this.budget = new RetryBudget(this.retry.budgetRatio, this.retry.budgetMinPerSec);
    if (opts.config['health-check']) {
      const h = healthCheckSettings(opts.config['health-check']);
      if (typeof h === 'string') throw new Error(`upstream "${opts.id}" health-check: ${h}`);
      this.health = h;
    }

    const t = opts.config.timeouts;
    this.timeouts = {
      connectMs: (t?.['connect-secs'] ?? 10) * 1000,
      requestMs: (t?.['request-secs'] ?? 60) * 1000,
      readMs: (t?.['read-secs'] ?? 30) * 1000,
      writeMs: (t?.['write-secs'] ?? 30) * 1000,
    };
    this.scheme = opts.config.tls ? 'https' : 'http';
    this.poolOptions = this.buildPoolOptions(opts.baseDir);

    const m = opts.services.metrics;
    this.breakerGauge = m.gauge('sentinel_circuit_breaker_state', 'Circuit breaker state (0 closed, 1 open, 2 half-open)', ['component', 'route'] as const);
    this.healthGauge = m.gauge('sentinel_upstream_target_healthy', 'Whether a target is in rotation (active checks and breaker), 1 or 0', [
      'upstream',
      'target',
    ] as const);
    this.poolSizeGauge = m.gauge('sentinel_connection_pool_size', 'Open upstream connections', ['upstream'] as const);
    this.poolIdleGauge = m.gauge('sentinel_connection_pool_idle', 'Idle upstream keep-alive connections', ['upstream'] as const);
    for (const target of this.targets) {
      this.breakerGauge.set({ component: this.component(target), route: '' }, 0);
      this.healthGauge.set({ upstream: this.id, target: target.address }, 1);
    }
  }

  private component(t: TargetState): string {
    return `upstream:${this.id}:${t.address}`;
  }

  private buildPoolOptions(baseDir: string): TargetPoolOptions {
    const cp = this.config['connection-pool'];
    const lifetimeSecs = cp?.['max-lifetime-secs'];
    const hv = this.config['http-version'];
    const h2 = (hv?.['max-version'] ?? 1) >= 2;
    const opts: TargetPoolOptions = {
      connections: cp?.['max-connections'] ?? 100,
      maxIdle: cp?.['max-idle'] ?? 20,
      idleTimeoutMs: (cp?.['idle-timeout-secs'] ?? 60) * 1000,
      maxLifetimeMs: lifetimeSecs !== undefined ? lifetimeSecs * 1000 : undefined,
      connectTimeoutMs: this.timeouts.connectMs,
      headersTimeoutMs: this.timeouts.readMs,
      bodyTimeoutMs: this.timeouts.readMs,
      allowH2: h2,
    };
    if (h2 && hv?.['max-h2-streams'] !== undefined) opts.maxConcurrentStreams = hv['max-h2-streams'];
    if (h2 && hv?.['h2-ping-interval'] !== undefined && hv['h2-ping-interval'] > 0) opts.pingIntervalMs = hv['h2-ping-interval'] * 1000;
    const tls = this.config.tls;
    if (tls) {
      const read = (p: string | undefined): Buffer | undefined => (p ? readFileSync(resolve(baseDir, p)) : undefined);
      const ca = read(tls['ca-cert']);
      const cert = read(tls['client-cert']);
      const key = read(tls['client-key']);
      opts.tls = {
        rejectUnauthorized: !(tls['insecure-skip-verify'] ?? false),
        ...(tls.sni ? { servername: tls.sni } : {}),
        ...(ca ? { ca } : {}),
        ...(cert ? { cert } : {}),
        ...(key ? { key } : {}),
      };
    }
    return opts;
  }

  /** TLS options for one target: SNI defaults to the target's host name (never an IP literal). */
  private tlsFor(target: TargetState): ConnectionOptions | undefined {
    const tls = this.poolOptions.tls;
    if (!tls) return undefined;
    if (tls.servername || isIP(target.host) !== 0) return tls;
    return { ...tls, servername: target.host };
  }

  /** Start active health checks (when configured) and the pool gauges. Idempotent. */
  start(): void {
    if (this.closed || this.statsTimer) return;
    this.statsTimer = setInterval(() => this.updatePoolGauges(), 1000);
    this.statsTimer.unref();
    if (this.health && !this.scheduler) {
      this.scheduler = new HealthScheduler(this.targets.length, this.health.intervalMs, async (i) => {
        await this.runCheck(i);
      }, this.rng);
      this.scheduler.start();
    }
  }

  /** One active check of target `index` (also callable directly, e.g. by tests). */
  async runCheck(index: number): Promise<ProbeResult> {
    const h = this.health;
    const target = this.targets[index]!;
    if (!h) return { ok: true, detail: 'no health-check configured' };
    let result: ProbeResult;
    try {
      result = await this.probe(target, h);
    } catch (e) {
      result = { ok: false, detail: (e as Error).message };
    }
    if (this.closed) return result;
    const rt = this.runtime[index]!;
    const before = rt.active.healthy;
    rt.active = thresholdNext(rt.active, result.ok, h);
    rt.lastCheck = result;
    if (!result.ok) rt.lastError = `health check: ${result.detail}`;
    if (rt.active.healthy !== before) {
      this.services.log[rt.active.healthy ? 'info' : 'warn'](
        { upstream: this.id, target: target.address, check: h.kind, detail: result.detail },
        rt.active.healthy ? 'upstream target healthy again' : 'upstream target unhealthy',
      );
    }
    this.updateHealthGauge(target);
    return result;
  }

  private probe(target: TargetState, h: HealthCheckSettings): Promise<ProbeResult> {
    const origin = this.origin(target);
    if (h.kind === 'tcp') return tcpProbe(target.host, target.port, h.timeoutMs);
    if (h.kind === 'grpc') return grpcHealthCheck(origin, h.service, h.timeoutMs, this.tlsFor(target) ?? {});
    // own keep-alive client per target: checks must not queue behind a saturated traffic pool
    const rt = this.runtime[target.index]!;
    rt.checkClient ??= new Client(origin, {
      connect: { timeout: h.timeoutMs, ...(this.tlsFor(target) ?? {}) },
      allowH2: this.poolOptions.allowH2,
      keepAliveTimeout: Math.max(h.intervalMs * 2, 4000),
    });
    return httpProbe(rt.checkClient, origin, h, `${urlHost(target.host)}:${target.port}`);
  }

  private updateHealthGauge(t: TargetState): void {
    const rt = this.runtime[t.index]!;
    this.healthGauge.set({ upstream: this.id, target: t.address }, rt.active.healthy && rt.breaker.phase !== 'open' ? 1 : 0);
  }

  private updatePoolGauges(): void {
    let connected = 0;
    let idle = 0;
    for (const rt of this.runtime) {
      const s = rt.pool?.stats();
      connected += s?.connected ?? 0;
      idle += s?.idle ?? 0;
    }
    this.poolSizeGauge.set({ upstream: this.id }, connected);
    this.poolIdleGauge.set({ upstream: this.id }, idle);
  }

  /** Refreshes `healthy` from active checks and breakers (an open breaker whose timeout elapsed admits probes). */
  private refreshHealth(now: number): void {
    for (let i = 0; i < this.mutableTargets.length; i++) {
      const rt = this.runtime[i]!;
      this.mutableTargets[i]!.healthy = rt.active.healthy && canPass(rt.breaker, now, this.breakerCfg);
    }
  }

  /**
   * Chooses a target for one attempt: skips unhealthy / circuit-open targets and prefers targets
   * not in ctx.exclude. Counts the attempt as in flight; the caller must report() it exactly once.
   * undefined -> no usable target (the core answers 503).
   */
  select(ctx: PickContext): Pick | undefined {
    if (this.closed) return undefined;
    const now = this.now();
    if ((ctx.exclude?.size ?? 0) === 0) this.budget.recordRequest(now);
    this.refreshHealth(now);
    let pick = this.balancer.pick(this.targets, ctx);
    if (!pick && ctx.exclude && ctx.exclude.size > 0) {
      // every other target is unusable: retrying one already tried beats failing
      pick = this.balancer.pick(this.targets, {
        clientIp: ctx.clientIp,
        path: ctx.path,
        header: (n) => ctx.header(n),
        cookie: (n) => ctx.cookie(n),
      });
    }
    if (!pick) return undefined;
    const target = this.mutableTargets[pick.target.index]!;
    const rt = this.runtime[target.index]!;
    if (rt.breaker.phase !== 'closed') this.setBreaker(target, next(rt.breaker, { type: 'acquire' }, now, this.breakerCfg));
    target.inFlight++;
    return pick;
  }

  /** The undici Pool for this target (created on first use, one per target per generation). */
  dispatcher(target: TargetState): Dispatcher {
    const rt = this.runtime[target.index]!;
    if (!rt.pool) {
      const tls = this.tlsFor(target);
      rt.pool = createTargetPool(this.origin(target), { ...this.poolOptions, ...(tls ? { tls } : {}) });
    }
    return rt.pool.pool;
  }

  /**
   * The signal for one attempt: aborts with the client (`parent`) or when `timeouts { request-secs }`
   * elapses (a TimeoutError, which classifyUpstreamError maps to 504).
   */
  attemptSignal(parent: AbortSignal): AbortSignal {
    return AbortSignal.any([parent, AbortSignal.timeout(this.timeouts.requestMs)]);
  }

  /** Origin URL for undici requests to this target, e.g. "http://127.0.0.1:9001", "https://[::1]:8443". */
  origin(target: TargetState): string {
    return `${this.scheme}://${urlHost(target.host)}:${target.port}`;
  }

  /**
   * Outcome of one attempt: passive health, circuit breaker, latency feedback. Exactly once per
   * attempt. A response status 499 (client closed the request) is neutral, as abandon().
   */
  report(target: TargetState, outcome: AttemptOutcome): void {
    if (outcome.kind === 'response' && outcome.status === CLIENT_CLOSED) return this.abandon(target);
    const t = this.mutableTargets[target.index]!;
    const rt = this.runtime[target.index]!;
    t.inFlight = Math.max(0, t.inFlight - 1);
    const failed = isFailure(outcome);
    if (rt.window.length < PASSIVE_WINDOW) rt.window.push(failed);
    else rt.window[rt.windowPos] = failed;
    rt.windowPos = (rt.windowPos + 1) % PASSIVE_WINDOW;
    if (failed) rt.lastError = outcome.kind === 'error' ? outcome.reason : `status ${outcome.status}`;
    this.setBreaker(t, next(rt.breaker, { type: failed ? 'failure' : 'success' }, this.now(), this.breakerCfg));
    this.balancer.observe?.(t, outcome.latencyMs, !failed);
  }

  /** Ends an attempt that says nothing about the target (the client went away): frees its slot only. */
  abandon(target: TargetState): void {
    const t = this.mutableTargets[target.index]!;
    const rt = this.runtime[target.index]!;
    t.inFlight = Math.max(0, t.inFlight - 1);
    if (rt.breaker.phase === 'half-open') this.setBreaker(t, next(rt.breaker, { type: 'release' }, this.now(), this.breakerCfg));
  }

  private setBreaker(t: TargetState, s: BreakerState): void {
    const rt = this.runtime[t.index]!;
    const before = rt.breaker.phase;
    rt.breaker = s;
    if (s.phase === before) return;
    this.breakerGauge.set({ component: this.component(t), route: '' }, phaseGauge(s.phase));
    this.updateHealthGauge(t);
    this.services.log.warn({ upstream: this.id, target: t.address, from: before, to: s.phase }, 'circuit breaker state changed');
    this.services.audit({ event_type: 'circuit_breaker_change', upstream: this.id, target: t.address, from: before, to: s.phase });
  }

  /** Retry decision for the forwarder (`attempt` = the attempt that just finished, 1-based). */
  shouldRetry(input: { method: string; attempt: number; outcome: AttemptOutcome; bodyReplayable: boolean; responseStarted: boolean }): {
    retry: boolean;
    delayMs: number;
  } {
    const v = decideRetry(this.retry, input, this.rng);
    if (!v.retry) return { retry: false, delayMs: 0 };
    if (!this.budget.tryTake(this.now())) {
      this.services.log.debug({ upstream: this.id }, 'retry budget exhausted');
      return { retry: false, delayMs: 0 };
    }
    return { retry: true, delayMs: v.delayMs };
  }

  /** JSON for the `upstreams` builtin (sentinel-reference.md §3.1), one entry of `upstreams[]`. */
  snapshot(): UpstreamSnapshot {
    const now = this.now();
    return {
      id: this.id,
      load_balancing: this.algorithm,
      targets: this.targets.map((t) => {
        const rt = this.runtime[t.index]!;
        const failures = rt.window.filter(Boolean).length;
        const failureRate = rt.window.length === 0 ? 0 : failures / rt.window.length;
        const unhealthy = !rt.active.healthy || (rt.breaker.phase === 'open' && !canPass(rt.breaker, now, this.breakerCfg)) || failureRate > 0.5;
        const observed = rt.window.length > 0 || rt.lastCheck !== undefined;
        return {
          address: t.address,
          weight: t.weight,
          status: unhealthy ? 'unhealthy' : observed ? 'healthy' : 'unknown',
          failure_rate: Math.round(failureRate * 1000) / 1000,
          last_error: rt.lastError ?? null,
          circuit_breaker: rt.breaker.phase,
          in_flight: t.inFlight,
          ...(rt.lastCheck ? { last_check: { ok: rt.lastCheck.ok, detail: rt.lastCheck.detail } } : {}),
        };
      }),
    };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.scheduler?.stop();
    if (this.statsTimer) clearInterval(this.statsTimer);
    await Promise.all(this.runtime.flatMap((rt) => [rt.pool?.close(), rt.checkClient?.close()]));
  }
}

export interface UpstreamSnapshot {
  id: string;
  load_balancing: string;
  targets: {
    address: string;
    weight: number;
    status: 'healthy' | 'unhealthy' | 'unknown';
    failure_rate: number;
    last_error: string | null;
    circuit_breaker: string;
    in_flight: number;
    last_check?: { ok: boolean; detail: string };
  }[];
}

/** The whole `upstreams` builtin body (§3.1) for a generation's groups. */
export function upstreamsReport(groups: Iterable<UpstreamGroup>, requestId: string, timestamp: string): Record<string, unknown> {
  const upstreams = [...groups].map((g) => g.snapshot());
  const all = upstreams.flatMap((u) => u.targets);
  return {
    timestamp,
    request_id: requestId,
    summary: {
      total_upstreams: upstreams.length,
      total_targets: all.length,
      healthy: all.filter((t) => t.status === 'healthy').length,
      unhealthy: all.filter((t) => t.status === 'unhealthy').length,
      unknown: all.filter((t) => t.status === 'unknown').length,
    },
    upstreams,
  };
}
