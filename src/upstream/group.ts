// One `upstream "id"` of one generation: its targets, balancer, per-target undici Pools,
// circuit breakers (passive health), active health checks and retry policy. The core's
// forwarder drives it: select() -> dispatcher()/origin() -> report() (once per attempt) ->
// shouldRetry().
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { Pool, type Dispatcher } from 'undici';
import type { RawUpstream } from '../config/schema.ts';
import type { GenerationServices } from '../pipeline/types.ts';
import type { AttemptOutcome, Balancer, Pick, PickContext, TargetState } from './types.ts';
import { collectTargets, urlHost } from './address.ts';
import { algorithmOf, canonicalAlgorithm, createBalancer } from '../../plugins/balancing/index.ts';
import type { CircuitBreakerConfig } from '../../plugins/balancing/schema.ts';
import { CLOSED, breakerSettings, canPass, next, phaseGauge, type BreakerSettings, type BreakerState } from '../../plugins/health/breaker.ts';
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
  /** last verdict of active checks; true until a check says otherwise */
  activeHealthy: boolean;
  /** whether any active check or passive outcome has been seen (for "unknown" status) */
  observed: boolean;
  /** last PASSIVE_WINDOW outcomes (true = failure), ring buffer */
  window: boolean[];
  windowPos: number;
  lastError: string | undefined;
  pool: Pool | undefined;
}

const PASSIVE_WINDOW = 100;

export interface UpstreamTimeouts {
  requestMs: number;
  readMs: number;
  writeMs: number;
  connectMs: number;
}

/** An attempt outcome that counts against the target (passive health, breaker). */
export function isFailure(o: AttemptOutcome): boolean {
  return o.kind === 'error' || o.status >= 500;
}

export class UpstreamGroup {
  readonly id: string;
  readonly targets: readonly TargetState[];
  readonly timeouts: UpstreamTimeouts;
  readonly algorithm: string;
  private readonly mutableTargets: MutableTarget[];
  private readonly runtime: TargetRuntime[];
  private readonly balancer: Balancer;
  private readonly breakerCfg: BreakerSettings;
  private readonly retry: RetrySettings;
  private readonly budget: RetryBudget;
  private readonly poolOptions: Pool.Options;
  private readonly scheme: 'http' | 'https';
  private readonly services: GenerationServices;
  private readonly now: () => number;
  private readonly rng: () => number;
  private readonly config: RawUpstream;
  private readonly breakerGauge;
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
      activeHealthy: true,
      observed: false,
      window: [],
      windowPos: 0,
      lastError: undefined,
      pool: undefined,
    }));
    const lb = opts.config['load-balancing'];
    this.algorithm = canonicalAlgorithm(lb) ?? algorithmOf(lb);
    this.balancer = createBalancer(lb, { rng: this.rng, now: this.now });
    this.breakerCfg = breakerSettings(opts.config['circuit-breaker'] ?? opts.routeCircuitBreaker);
    this.retry = retrySettings(opts.config['retry-policy']);
    this.budget = new RetryBudget(this.retry.budgetRatio, this.retry.budgetMinPerSec);

    const t = opts.config.timeouts;
    this.timeouts = {
      connectMs: (t?.['connect-secs'] ?? 10) * 1000,
      requestMs: (t?.['request-secs'] ?? 60) * 1000,
      readMs: (t?.['read-secs'] ?? 30) * 1000,
      writeMs: (t?.['write-secs'] ?? 30) * 1000,
    };
    this.scheme = opts.config.tls ? 'https' : 'http';
    this.poolOptions = this.buildPoolOptions(opts.baseDir);

    this.breakerGauge = opts.services.metrics.gauge(
      'sentinel_circuit_breaker_state',
      'Circuit breaker state (0 closed, 1 open, 2 half-open)',
      ['component', 'route'] as const,
    );
    for (const target of this.targets) this.breakerGauge.set({ component: this.component(target), route: '' }, 0);
  }

  private component(t: TargetState): string {
    return `upstream:${this.id}:${t.address}`;
  }

  private buildPoolOptions(baseDir: string): Pool.Options {
    const cp = this.config['connection-pool'];
    const idleMs = (cp?.['idle-timeout-secs'] ?? 60) * 1000;
    const lifetimeSecs = cp?.['max-lifetime-secs'];
    const hv = this.config['http-version'];
    const h2 = (hv?.['max-version'] ?? 1) >= 2;
    const opts: Pool.Options = {
      connections: cp?.['max-connections'] ?? 100,
      keepAliveTimeout: idleMs,
      keepAliveMaxTimeout: idleMs,
      clientTtl: lifetimeSecs !== undefined ? lifetimeSecs * 1000 : null,
      connectTimeout: this.timeouts.connectMs,
      headersTimeout: this.timeouts.readMs,
      bodyTimeout: this.timeouts.readMs,
      allowH2: h2,
    };
    if (h2 && hv?.['max-h2-streams'] !== undefined) opts.maxConcurrentStreams = hv['max-h2-streams'];
    if (h2 && hv?.['h2-ping-interval'] !== undefined) opts.pingInterval = hv['h2-ping-interval'] * 1000;
    const tls = this.config.tls;
    if (tls) {
      const read = (p: string | undefined): Buffer | undefined => (p ? readFileSync(resolve(baseDir, p)) : undefined);
      const ca = read(tls['ca-cert']);
      const cert = read(tls['client-cert']);
      const key = read(tls['client-key']);
      opts.connect = {
        rejectUnauthorized: !(tls['insecure-skip-verify'] ?? false),
        ...(tls.sni ? { servername: tls.sni } : {}),
        ...(ca ? { ca } : {}),
        ...(cert ? { cert } : {}),
        ...(key ? { key } : {}),
      };
    }
    return opts;
  }

  /** Start active health checks. */
  start(): void {
    // Active checks are added by plugins/health (next commit); passive health works without them.
  }

  /** Refreshes `healthy` from active checks and breakers (an open breaker whose timeout elapsed admits probes). */
  private refreshHealth(now: number): void {
    for (let i = 0; i < this.mutableTargets.length; i++) {
      const rt = this.runtime[i]!;
      this.mutableTargets[i]!.healthy = rt.activeHealthy && canPass(rt.breaker, now, this.breakerCfg);
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
      // every other target is unusable: retrying the same one beats failing
      pick = this.balancer.pick(this.targets, { ...ctx, exclude: undefined, header: ctx.header, cookie: ctx.cookie });
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
    rt.pool ??= new Pool(this.origin(target), this.poolOptions);
    return rt.pool;
  }

  /** Origin URL for undici requests to this target. */
  origin(target: TargetState): string {
    return `${this.scheme}://${urlHost(target.host)}:${target.port}`;
  }

  /** Outcome of one attempt: passive health, circuit breaker, latency feedback. Exactly once per attempt. */
  report(target: TargetState, outcome: AttemptOutcome): void {
    const t = this.mutableTargets[target.index]!;
    const rt = this.runtime[target.index]!;
    t.inFlight = Math.max(0, t.inFlight - 1);
    const failed = isFailure(outcome);
    rt.observed = true;
    if (rt.window.length < PASSIVE_WINDOW) rt.window.push(failed);
    else rt.window[rt.windowPos] = failed;
    rt.windowPos = (rt.windowPos + 1) % PASSIVE_WINDOW;
    if (failed) rt.lastError = outcome.kind === 'error' ? outcome.reason : `status ${outcome.status}`;
    this.setBreaker(t, next(rt.breaker, { type: failed ? 'failure' : 'success' }, this.now(), this.breakerCfg));
    this.balancer.observe?.(t, outcome.latencyMs, !failed);
  }

  private setBreaker(t: TargetState, s: BreakerState): void {
    const rt = this.runtime[t.index]!;
    const before = rt.breaker.phase;
    rt.breaker = s;
    if (s.phase === before) return;
    this.breakerGauge.set({ component: this.component(t), route: '' }, phaseGauge(s.phase));
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
    if (!this.budget.tryTake(this.now())) return { retry: false, delayMs: 0 };
    return { retry: true, delayMs: v.delayMs };
  }

  /** JSON for the `upstreams` builtin (sentinel-reference.md §3.1). */
  snapshot(): {
    id: string;
    load_balancing: string;
    targets: { address: string; weight: number; status: 'healthy' | 'unhealthy' | 'unknown'; failure_rate: number; last_error: string | null; circuit_breaker: string; in_flight: number }[];
  } {
    return {
      id: this.id,
      load_balancing: this.algorithm,
      targets: this.targets.map((t) => {
        const rt = this.runtime[t.index]!;
        const failures = rt.window.filter(Boolean).length;
        const failureRate = rt.window.length === 0 ? 0 : failures / rt.window.length;
        const unhealthy = !rt.activeHealthy || rt.breaker.phase === 'open' || failureRate > 0.5;
        return {
          address: t.address,
          weight: t.weight,
          status: unhealthy ? 'unhealthy' : rt.observed ? 'healthy' : 'unknown',
          failure_rate: Math.round(failureRate * 1000) / 1000,
          last_error: rt.lastError ?? null,
          circuit_breaker: rt.breaker.phase,
          in_flight: t.inFlight,
        };
      }),
    };
  }

  async close(): Promise<void> {
    this.closed = true;
    await Promise.all(this.runtime.map((rt) => rt.pool?.close()));
  }
}
