// One `upstream "id"` of one generation: its targets (static + discovered, changing while it
// runs), balancer, per-target undici Pools, circuit breakers (passive health), active health
// checks and retry policy. The core's forwarder drives it: select() -> dispatcher()/origin() ->
// report() (once per attempt) -> shouldRetry().
//
// Per-target state (breaker, active-health verdict, passive window, in-flight count) lives in a
// Target object keyed by address that outlives discovery refreshes and config reloads: the next
// generation's group with the same id adopts the previous group's Target objects (`previous`),
// and the balancer too when `load-balancing` is unchanged (latency EWMA, cursors). Pools and
// health-check clients are per group (per generation).
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { resolve } from 'node:path';
import type { ConnectionOptions } from 'node:tls';
import { Client, type Dispatcher } from 'undici';
import type { RawUpstream } from '../config/schema.ts';
import type { GenerationServices } from '../pipeline/types.ts';
import type { AttemptOutcome, Balancer, Pick, PickContext, TargetState } from './types.ts';
import { collectTargets, urlHost, type TargetSpec } from './address.ts';
import type { DiscoverySource } from './discovery/types.ts';
import { createDiscoverySource } from './discovery/index.ts';
import { mergeSpecs, planTargetSet } from './discovery/diff.ts';
import { createTargetPool, type TargetPool, type TargetPoolOptions } from './pool.ts';
import { LatencyStats, type LatencySnapshot } from '../status/latency.ts';
import type { BreakerSettings, BreakerState, CircuitBreakerBlock, HealthCheckSettings, HealthCheckScheduler, HealthVerdict, ProbeResult, RetryBudget, RetrySettings, UpstreamPolicies } from './policies.ts';

export interface UpstreamGroupOptions {
  id: string;
  config: RawUpstream;
  /** directory relative paths in the block (tls ca-cert, client-cert, client-key) are resolved against */
  baseDir: string;
  services: GenerationServices;
  /** balancer, breakers, active health checks and retries (the features' policies, src/upstream/policies.ts) */
  policies: UpstreamPolicies;
  /** routes with their own `circuit-breaker` block: route id -> block (a breaker per route and target) */
  routeCircuitBreakers?: ReadonlyMap<string, CircuitBreakerBlock>;
  /** the same upstream's group in the previous generation: its per-target state is adopted */
  previous?: UpstreamGroup;
  /** the discovery source (default: built from `config.discovery`); tests inject one */
  discovery?: DiscoverySource;
  /** bound on the first resolution before the generation serves (default 5 s) */
  firstResolutionTimeoutMs?: number;
  /** injected clock / randomness (tests); default performance.now / Math.random */
  now?: () => number;
  rng?: () => number;
}

/**
 * Everything known about one target address. Shared by the balancer (the TargetState fields)
 * and kept across discovery refreshes and reloads for as long as the address stays.
 */
class Target implements TargetState {
  healthy = true;
  inFlight = 0;
  breaker: BreakerState;
  /** per-route breakers, for routes with their own circuit-breaker block */
  readonly routeBreakers = new Map<string, BreakerState>();
  /** active health check verdict (thresholds applied); healthy until checks say otherwise */
  active: HealthVerdict;
  lastCheck: ProbeResult | undefined;
  /** last PASSIVE_WINDOW outcomes (true = failure), ring buffer */
  window: boolean[] = [];
  windowPos = 0;
  lastError: string | undefined;
  /** attempt latency for the status page (src/status); kept across reloads with the target */
  readonly latency = new LatencyStats();
  constructor(
    readonly address: string,
    readonly host: string,
    readonly port: number,
    public weight: number,
    readonly index: number,
    policies: UpstreamPolicies,
  ) {
    this.breaker = policies.breakers.closed;
    this.active = policies.health.initial;
  }
}

/** Per-generation connections to one target. */
interface TargetConns {
  pool: TargetPool | undefined;
  checkClient: Client | undefined;
}

/** Target ids are unique across a group and the groups that adopt its targets. */
interface IdCounter {
  next: number;
}

const FIRST_RESOLUTION_TIMEOUT_MS = 5000;

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

export class UpstreamGroup {
  readonly id: string;
  readonly timeouts: UpstreamTimeouts;
  /** canonical load-balancing name */
  readonly algorithm: string;
  /** the current targets (a new array after every change; balancers rebuild their tables on that) */
  private members: Target[] = [];
  private readonly conns = new Map<Target, TargetConns>();
  private readonly ids: IdCounter;
  private readonly pendingWeights = new Map<Target, number>();
  private readonly staticSpecs: TargetSpec[];
  /** last good discovery answer */
  private discovered: TargetSpec[] = [];
  private readonly source: DiscoverySource | undefined;
  private discoveryTimer: NodeJS.Timeout | undefined;
  private refreshing: AbortController | undefined;
  private readonly firstResolutionTimeoutMs: number;
  private previous: UpstreamGroup | undefined;
  private readonly policies: UpstreamPolicies;
  private readonly balancer: Balancer;
  private readonly breakerCfg: BreakerSettings;
  private readonly routeBreakerCfg: ReadonlyMap<string, BreakerSettings>;
  private readonly retry: RetrySettings;
  private readonly budget: RetryBudget;
  private readonly poolOptions: TargetPoolOptions;
  private readonly health: HealthCheckSettings | undefined;
  private scheduler: HealthCheckScheduler | undefined;
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
  private readonly discoveryCounter;
  private readonly discoveryGauge;
  private started = false;
  /** stopped checking and refreshing: the next generation's group took over */
  private retired = false;
  private closed = false;

  constructor(opts: UpstreamGroupOptions) {
    this.id = opts.id;
    this.config = opts.config;
    this.services = opts.services;
    this.now = opts.now ?? (() => performance.now());
    this.rng = opts.rng ?? Math.random;
    this.staticSpecs = collectTargets(opts.config);
    this.source = opts.discovery ?? createDiscoverySource(opts.config.discovery, opts.baseDir);
    if (this.staticSpecs.length === 0 && !this.source && opts.config.discovery === undefined) {
      throw new Error(`upstream "${opts.id}" requires at least one target`);
    }
    this.firstResolutionTimeoutMs = opts.firstResolutionTimeoutMs ?? FIRST_RESOLUTION_TIMEOUT_MS;
    this.previous = opts.previous;
    this.ids = opts.previous ? opts.previous.ids : { next: 0 };
    const lb = opts.config['load-balancing'];
    this.policies = opts.policies;
    this.algorithm = opts.policies.balancing.algorithmName(lb);
    // Same load-balancing block: keep the balancer (EWMA averages, cursors) across the reload.
    this.balancer =
      opts.previous && JSON.stringify(opts.previous.config['load-balancing'] ?? null) === JSON.stringify(lb ?? null)
        ? opts.previous.balancer
        : opts.policies.balancing.create(lb, { rng: this.rng, now: this.now });
    const breakers = opts.policies.breakers;
    this.breakerCfg = breakers.settings(opts.config['circuit-breaker']);
    this.routeBreakerCfg = new Map([...(opts.routeCircuitBreakers ?? new Map<string, CircuitBreakerBlock>())].map(([r, c]) => [r, breakers.settings(c)]));
    this.retry = opts.policies.retry.settings(opts.config['retry-policy']);
    this.budget = opts.policies.retry.budget(this.retry);
    if (opts.config['health-check']) {
      const h = opts.policies.health.settings(opts.config['health-check']);
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
    this.discoveryCounter = m.counter('sentinel_discovery_refresh_total', 'Discovery resolutions by result (changed, unchanged, error)', ['upstream', 'kind', 'result'] as const);
    this.discoveryGauge = m.gauge('sentinel_discovery_targets', 'Targets from the last good discovery answer', ['upstream'] as const);

    // Until the first resolution (ready()), the group has its static targets; a previous
    // generation's last good discovery answer is kept as the fallback for a failed first try.
    this.setMembers(this.plan([]).next);
    for (const target of this.members) this.publish(target);
  }

  /** The current targets (read by tests, the builtins and the forwarder's logs). */
  get targets(): readonly TargetState[] {
    return this.members;
  }

  private component(t: TargetState): string {
    return `upstream:${this.id}:${t.address}`;
  }

  /** A target object for `spec`: the previous generation's one for the same address, else a new one. */
  private make(spec: TargetSpec): Target {
    const adopted = this.previous?.members.find((t) => t.address === spec.address);
    if (adopted) {
      this.setWeight(adopted, spec.weight);
      return adopted;
    }
    return new Target(spec.address, spec.host, spec.port, spec.weight, this.ids.next++, this.policies);
  }

  /**
   * Weights are shared with the previous generation until this group serves: a new weight waits
   * for start(), so a reload whose build fails leaves the running generation's weights alone.
   */
  private setWeight(t: Target, w: number): void {
    if (t.weight === w) return;
    if (this.started || !this.previous?.members.includes(t)) t.weight = w;
    else this.pendingWeights.set(t, w);
  }

  private plan(discovered: readonly TargetSpec[]) {
    return planTargetSet(this.members, mergeSpecs(this.staticSpecs, discovered), (s) => this.make(s));
  }

  private setMembers(next: Target[]): void {
    this.members = next;
    for (const t of next) if (!this.conns.has(t)) this.conns.set(t, { pool: undefined, checkClient: undefined });
  }

  /** Gauges for a target as its (possibly adopted) state says. */
  private publish(t: Target): void {
    this.breakerGauge.set({ component: this.component(t), route: '' }, this.policies.breakers.gauge(t.breaker.phase));
    for (const [route, b] of t.routeBreakers) if (this.routeBreakerCfg.has(route)) this.breakerGauge.set({ component: this.component(t), route }, this.policies.breakers.gauge(b.phase));
    this.updateHealthGauge(t);
  }

  private unpublish(t: Target): void {
    this.breakerGauge.remove({ component: this.component(t), route: '' });
    for (const route of t.routeBreakers.keys()) this.breakerGauge.remove({ component: this.component(t), route });
    this.healthGauge.remove({ upstream: this.id, target: t.address });
  }

  /**
   * Resolves the discovery block once before the generation serves, bounded by
   * firstResolutionTimeoutMs. A failure is logged; the group then serves its static targets
   * plus the previous generation's last good answer for the same discovery block (if any).
   */
  async ready(): Promise<void> {
    if (!this.source || this.closed) return;
    const ok = await this.refresh(this.firstResolutionTimeoutMs);
    if (ok) return;
    const prev = this.previous;
    if (prev && JSON.stringify(prev.config.discovery ?? null) === JSON.stringify(this.config.discovery ?? null) && prev.discovered.length > 0) {
      this.applyDiscovered(prev.discovered);
      this.services.log.warn({ upstream: this.id, targets: prev.discovered.length }, 'discovery: first resolution failed; keeping the previous generation\'s targets');
    }
  }

  /**
   * One discovery resolution: applies the answer when it differs from the current set. Errors
   * keep the last good set (logged, counted). Returns whether the source answered.
   */
  async refresh(timeoutMs = Math.max(1000, Math.min(30_000, this.source?.intervalMs ?? 30_000))): Promise<boolean> {
    const source = this.source;
    if (!source || this.closed) return false;
    const ac = new AbortController();
    this.refreshing = ac;
    const timer = setTimeout(() => ac.abort(new Error(`discovery "${source.kind}" timed out after ${timeoutMs} ms`)), timeoutMs);
    timer.unref();
    try {
      const specs = await Promise.race([
        source.resolve(ac.signal),
        new Promise<never>((_, reject) => ac.signal.addEventListener('abort', () => reject(ac.signal.reason as Error), { once: true })),
      ]);
      if (this.closed) return true;
      const changed = this.applyDiscovered(specs);
      this.discoveryCounter.inc({ upstream: this.id, kind: source.kind, result: changed ? 'changed' : 'unchanged' });
      return true;
    } catch (err) {
      if (this.closed) return false;
      this.discoveryCounter.inc({ upstream: this.id, kind: source.kind, result: 'error' });
      this.services.log.warn({ upstream: this.id, kind: source.kind, err: (err as Error).message, kept: this.discovered.length }, 'discovery failed; keeping the last good targets');
      return false;
    } finally {
      clearTimeout(timer);
      if (this.refreshing === ac) this.refreshing = undefined;
    }
  }

  /** Applies a discovery answer; true when the target set changed. */
  private applyDiscovered(specs: readonly TargetSpec[]): boolean {
    this.discovered = [...specs];
    this.discoveryGauge.set({ upstream: this.id }, specs.length);
    const plan = this.plan(specs);
    if (!plan.changed) return false;
    for (const [t, w] of plan.reweighted) this.setWeight(t, w);
    this.setMembers(plan.next);
    for (const t of plan.added) {
      this.publish(t);
      this.scheduler?.add(t.index);
    }
    for (const t of plan.removed) {
      this.scheduler?.remove(t.index);
      if (this.started) this.unpublish(t);
      this.releaseConns(t);
    }
    this.services.log.info(
      { upstream: this.id, added: plan.added.map((t) => t.address), removed: plan.removed.map((t) => t.address), targets: plan.next.length },
      'upstream targets changed',
    );
    return true;
  }

  /** Closes a removed target's pool gracefully (requests in flight on it finish first). */
  private releaseConns(t: Target): void {
    const c = this.conns.get(t);
    this.conns.delete(t);
    if (!c) return;
    void Promise.allSettled([c.pool?.close(), c.checkClient?.close()]);
  }

  private buildPoolOptions(baseDir: string): TargetPoolOptions {
    const cp = this.config['connection-pool'];
    const lifetimeSecs = cp?.['max-lifetime-secs'];
    const hv = this.config['http-version'];
    // min-version 2 implies max-version 2; see pool.ts for how each mode connects
    const h2Only = (hv?.['min-version'] ?? 1) >= 2;
    const h2 = h2Only || (hv?.['max-version'] ?? 1) >= 2;
    const opts: TargetPoolOptions = {
      connections: cp?.['max-connections'] ?? 100,
      maxIdle: cp?.['max-idle'] ?? 20,
      idleTimeoutMs: (cp?.['idle-timeout-secs'] ?? 60) * 1000,
      maxLifetimeMs: lifetimeSecs !== undefined ? lifetimeSecs * 1000 : undefined,
      connectTimeoutMs: this.timeouts.connectMs,
      headersTimeoutMs: this.timeouts.readMs,
      bodyTimeoutMs: this.timeouts.readMs,
      allowH2: h2,
      h2Only,
      upstream: this.id,
      retryUnprocessed: () => this.budget.tryTake(this.now()),
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

  /** TLS options for one target: SNI defaults to the target's host name (never an IP literal). Also used by the WebSocket proxy's own connections. */
  tlsFor(target: TargetState): ConnectionOptions | undefined {
    const tls = this.poolOptions.tls;
    if (!tls) return undefined;
    if (tls.servername || isIP(target.host) !== 0) return tls;
    return { ...tls, servername: target.host };
  }

  /**
   * Start serving: active health checks (when configured), discovery refreshes, the pool gauges.
   * Retires the previous generation's group (it stops checking and refreshing; its in-flight
   * requests finish on its own pools). Idempotent.
   */
  start(): void {
    if (this.closed || this.started) return;
    this.started = true;
    const prev = this.previous;
    for (const [t, w] of this.pendingWeights) if (this.members.includes(t)) t.weight = w;
    this.pendingWeights.clear();
    if (prev) {
      prev.retire();
      const mine = new Set(this.members);
      for (const t of prev.members) if (!mine.has(t)) this.unpublish(t);
      // the previous group is only needed for adoption; do not keep its whole generation alive
      this.previous = undefined;
    }
    // Without health checks here nothing would ever re-admit a target the old checks ejected.
    if (!this.health) {
      for (const t of this.members) {
        t.active = this.policies.health.initial;
        t.lastCheck = undefined;
      }
    }
    for (const t of this.members) this.publish(t);
    this.statsTimer = setInterval(() => this.updatePoolGauges(), 1000);
    this.statsTimer.unref();
    if (this.health && !this.scheduler) {
      this.scheduler = this.policies.health.scheduler(
        this.members.map((t) => t.index),
        this.health.intervalMs,
        async (id) => {
          await this.runCheck(id);
        },
        this.rng,
      );
      this.scheduler.start();
    }
    this.scheduleRefresh();
  }

  private scheduleRefresh(): void {
    const interval = this.source?.intervalMs;
    if (interval === undefined || this.closed || this.retired) return;
    this.discoveryTimer = setTimeout(() => {
      void this.refresh().finally(() => this.scheduleRefresh());
    }, interval);
    this.discoveryTimer.unref();
  }

  /** Stops health checks and discovery refreshes (the next generation's group took over). */
  private retire(): void {
    this.retired = true;
    this.scheduler?.stop();
    this.scheduler = undefined;
    if (this.discoveryTimer) clearTimeout(this.discoveryTimer);
    this.refreshing?.abort(new Error('superseded'));
  }

  /** One active check of the target with id `index` (also callable directly, e.g. by tests). */
  async runCheck(index: number): Promise<ProbeResult> {
    const h = this.health;
    const target = this.members.find((t) => t.index === index);
    if (!h) return { ok: true, detail: 'no health-check configured' };
    if (!target) return { ok: false, detail: 'target is no longer in the upstream' };
    let result: ProbeResult;
    try {
      result = await this.probe(target, h);
    } catch (e) {
      result = { ok: false, detail: (e as Error).message };
    }
    if (this.closed || this.retired || !this.members.includes(target)) return result;
    const before = target.active.healthy;
    target.active = this.policies.health.next(target.active, result.ok, h);
    target.lastCheck = result;
    if (!result.ok) target.lastError = `health check: ${result.detail}`;
    if (target.active.healthy !== before) {
      this.services.log[target.active.healthy ? 'info' : 'warn'](
        { upstream: this.id, target: target.address, check: h.kind, detail: result.detail },
        target.active.healthy ? 'upstream target healthy again' : 'upstream target unhealthy',
      );
    }
    this.updateHealthGauge(target);
    return result;
  }

  private probe(target: Target, h: HealthCheckSettings): Promise<ProbeResult> {
    return this.policies.health.probe(
      {
        host: target.host,
        port: target.port,
        origin: this.origin(target),
        tls: this.tlsFor(target),
        // own keep-alive client per target: checks must not queue behind a saturated traffic pool
        checkClient: (timeoutMs, keepAliveMs) => {
          const c = this.connsOf(target);
          c.checkClient ??= new Client(this.origin(target), {
            connect: { timeout: timeoutMs, ...(this.tlsFor(target) ?? {}) },
            allowH2: this.poolOptions.allowH2,
            // an h2-only cleartext target answers nothing but h2c
            ...(this.poolOptions.h2Only && this.scheme === 'http' ? { useH2c: true } : {}),
            keepAliveTimeout: keepAliveMs,
          });
          return c.checkClient;
        },
      },
      h,
    );
  }

  private connsOf(target: Target): TargetConns {
    let c = this.conns.get(target);
    if (!c) {
      // a target that left between select() and dispatcher(): closed again at the next change
      c = { pool: undefined, checkClient: undefined };
      this.conns.set(target, c);
    }
    return c;
  }

  private updateHealthGauge(t: Target): void {
    this.healthGauge.set({ upstream: this.id, target: t.address }, t.active.healthy && t.breaker.phase !== 'open' ? 1 : 0);
  }

  private updatePoolGauges(): void {
    let connected = 0;
    let idle = 0;
    for (const [t, c] of this.conns) {
      const s = c.pool?.stats();
      connected += s?.connected ?? 0;
      idle += s?.idle ?? 0;
      // sweep pools of targets that left while a request was being dispatched to them
      if (!this.members.includes(t) && c.pool && (s?.connected ?? 0) === 0) this.releaseConns(t);
    }
    this.poolSizeGauge.set({ upstream: this.id }, connected);
    this.poolIdleGauge.set({ upstream: this.id }, idle);
  }

  /**
   * Refreshes `healthy` from active checks and breakers (an open breaker whose timeout elapsed
   * admits probes); with a route that has its own breaker, that one must admit too.
   */
  private refreshHealth(now: number, route: string | undefined): void {
    const rcfg = route !== undefined ? this.routeBreakerCfg.get(route) : undefined;
    for (const t of this.members) {
      let ok = t.active.healthy && this.policies.breakers.canPass(t.breaker, now, this.breakerCfg);
      if (ok && rcfg) ok = this.policies.breakers.canPass(t.routeBreakers.get(route!) ?? this.policies.breakers.closed, now, rcfg);
      t.healthy = ok;
    }
  }

  /**
   * Chooses a target for one attempt: skips unhealthy / circuit-open targets and prefers targets
   * not in ctx.exclude. Counts the attempt as in flight; the caller must report() it exactly once.
   * undefined -> no usable target (the core answers 503). `route`: the route whose own
   * circuit-breaker applies as well (see forRoute()).
   */
  select(ctx: PickContext, route?: string): Pick | undefined {
    if (this.closed) return undefined;
    const now = this.now();
    if ((ctx.exclude?.size ?? 0) === 0) this.budget.recordRequest(now);
    this.refreshHealth(now, route);
    const targets = this.members;
    let pick = this.balancer.pick(targets, ctx);
    if (!pick && ctx.exclude && ctx.exclude.size > 0) {
      // every other target is unusable: retrying one already tried beats failing
      pick = this.balancer.pick(targets, {
        clientIp: ctx.clientIp,
        path: ctx.path,
        header: (n) => ctx.header(n),
        cookie: (n) => ctx.cookie(n),
      });
    }
    if (!pick) return undefined;
    const target = pick.target as Target;
    if (target.breaker.phase !== 'closed') this.setBreaker(target, this.policies.breakers.next(target.breaker, { type: 'acquire' }, now, this.breakerCfg));
    const rcfg = route !== undefined ? this.routeBreakerCfg.get(route) : undefined;
    if (rcfg) {
      const rb = target.routeBreakers.get(route!) ?? this.policies.breakers.closed;
      if (rb.phase !== 'closed') this.setRouteBreaker(target, route!, this.policies.breakers.next(rb, { type: 'acquire' }, now, rcfg));
    }
    target.inFlight++;
    return pick;
  }

  /** The undici Pool for this target (created on first use, one per target per generation). */
  dispatcher(target: TargetState): Dispatcher {
    const c = this.connsOf(target as Target);
    if (!c.pool) {
      const tls = this.tlsFor(target);
      c.pool = createTargetPool(this.origin(target), { ...this.poolOptions, host: target.host, port: target.port, ...(tls ? { tls } : {}) });
    }
    return c.pool.pool;
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
   * Outcome of one attempt: passive health, circuit breaker(s), latency feedback. Exactly once
   * per attempt. A response status 499 (client closed the request) is neutral, as abandon().
   */
  report(target: TargetState, outcome: AttemptOutcome, route?: string): void {
    if (outcome.kind === 'response' && outcome.status === CLIENT_CLOSED) return this.abandon(target, route);
    const t = target as Target;
    t.inFlight = Math.max(0, t.inFlight - 1);
    const failed = isFailure(outcome);
    if (t.window.length < PASSIVE_WINDOW) t.window.push(failed);
    else t.window[t.windowPos] = failed;
    t.windowPos = (t.windowPos + 1) % PASSIVE_WINDOW;
    if (failed) t.lastError = outcome.kind === 'error' ? outcome.reason : `status ${outcome.status}`;
    const now = this.now();
    const event = { type: failed ? 'failure' : 'success' } as const;
    this.setBreaker(t, this.policies.breakers.next(t.breaker, event, now, this.breakerCfg));
    const rcfg = route !== undefined ? this.routeBreakerCfg.get(route) : undefined;
    if (rcfg) this.setRouteBreaker(t, route!, this.policies.breakers.next(t.routeBreakers.get(route!) ?? this.policies.breakers.closed, event, now, rcfg));
    this.balancer.observe?.(t, outcome.latencyMs, !failed);
    t.latency.observe(outcome.latencyMs);
  }

  /** Ends an attempt that says nothing about the target (the client went away): frees its slot only. */
  abandon(target: TargetState, route?: string): void {
    const t = target as Target;
    t.inFlight = Math.max(0, t.inFlight - 1);
    if (t.breaker.phase === 'half-open') this.setBreaker(t, this.policies.breakers.next(t.breaker, { type: 'release' }, this.now(), this.breakerCfg));
    const rcfg = route !== undefined ? this.routeBreakerCfg.get(route) : undefined;
    const rb = route !== undefined ? t.routeBreakers.get(route) : undefined;
    if (rcfg && rb?.phase === 'half-open') this.setRouteBreaker(t, route!, this.policies.breakers.next(rb, { type: 'release' }, this.now(), rcfg));
  }

  private setBreaker(t: Target, s: BreakerState): void {
    const before = t.breaker.phase;
    t.breaker = s;
    if (s.phase === before) return;
    this.breakerGauge.set({ component: this.component(t), route: '' }, this.policies.breakers.gauge(s.phase));
    this.updateHealthGauge(t);
    this.services.log.warn({ upstream: this.id, target: t.address, from: before, to: s.phase }, 'circuit breaker state changed');
    this.services.audit({ event_type: 'circuit_breaker_change', upstream: this.id, target: t.address, from: before, to: s.phase });
  }

  private setRouteBreaker(t: Target, route: string, s: BreakerState): void {
    const before = (t.routeBreakers.get(route) ?? this.policies.breakers.closed).phase;
    t.routeBreakers.set(route, s);
    if (s.phase === before) return;
    this.breakerGauge.set({ component: this.component(t), route }, this.policies.breakers.gauge(s.phase));
    this.services.log.warn({ upstream: this.id, route, target: t.address, from: before, to: s.phase }, 'route circuit breaker state changed');
    this.services.audit({ event_type: 'circuit_breaker_change', upstream: this.id, route, target: t.address, from: before, to: s.phase });
  }

  /**
   * The group as seen by one route's traffic: when the route has its own circuit-breaker block,
   * select/report/abandon also drive that route's per-target breakers; otherwise the group itself.
   */
  forRoute(route: string): UpstreamGroup {
    if (!this.routeBreakerCfg.has(route)) return this;
    // A view sharing all state: every method runs on the group itself, three are route-bound.
    const view = Object.create(this) as UpstreamGroup;
    const methods = view as unknown as Record<string, unknown>;
    for (const name of Object.getOwnPropertyNames(UpstreamGroup.prototype)) {
      const fn = (this as unknown as Record<string, unknown>)[name];
      if (name !== 'constructor' && typeof fn === 'function' && !Object.getOwnPropertyDescriptor(UpstreamGroup.prototype, name)?.get) {
        methods[name] = (fn as (...a: unknown[]) => unknown).bind(this);
      }
    }
    view.select = (ctx) => this.select(ctx, route);
    view.report = (target, outcome) => this.report(target, outcome, route);
    view.abandon = (target) => this.abandon(target, route);
    return view;
  }

  /** Retry decision for the forwarder (`attempt` = the attempt that just finished, 1-based). */
  shouldRetry(input: { method: string; attempt: number; outcome: AttemptOutcome; bodyReplayable: boolean; responseStarted: boolean }): {
    retry: boolean;
    delayMs: number;
  } {
    const v = this.policies.retry.decide(this.retry, input, this.rng);
    if (!v.retry) return { retry: false, delayMs: 0 };
    if (!this.budget.tryTake(this.now())) {
      this.services.log.debug({ upstream: this.id }, 'retry budget exhausted');
      return { retry: false, delayMs: 0 };
    }
    return { retry: true, delayMs: v.delayMs };
  }

  /**
   * JSON for the `upstreams` builtin (sentinel-reference.md §3.1), one entry of `upstreams[]`;
   * with `latency` (the status page) each target also has its attempt latency.
   */
  snapshot(opts: { latency?: boolean } = {}): UpstreamSnapshot {
    const now = this.now();
    return {
      id: this.id,
      load_balancing: this.algorithm,
      ...(this.source ? { discovery: { kind: this.source.kind, targets: this.discovered.length } } : {}),
      targets: this.members.map((t) => {
        const failures = t.window.filter(Boolean).length;
        const failureRate = t.window.length === 0 ? 0 : failures / t.window.length;
        const unhealthy = !t.active.healthy || (t.breaker.phase === 'open' && !this.policies.breakers.canPass(t.breaker, now, this.breakerCfg)) || failureRate > 0.5;
        const observed = t.window.length > 0 || t.lastCheck !== undefined;
        const routeBreakers = [...t.routeBreakers].filter(([r]) => this.routeBreakerCfg.has(r));
        return {
          address: t.address,
          weight: t.weight,
          status: unhealthy ? 'unhealthy' : observed ? 'healthy' : 'unknown',
          failure_rate: Math.round(failureRate * 1000) / 1000,
          last_error: t.lastError ?? null,
          circuit_breaker: t.breaker.phase,
          in_flight: t.inFlight,
          ...(routeBreakers.length > 0 ? { route_circuit_breakers: Object.fromEntries(routeBreakers.map(([r, b]) => [r, b.phase])) } : {}),
          ...(t.lastCheck ? { last_check: { ok: t.lastCheck.ok, detail: t.lastCheck.detail } } : {}),
          ...(opts.latency ? { latency: t.latency.snapshot() } : {}),
        };
      }),
    };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.retire();
    this.previous = undefined;
    if (this.statsTimer) clearInterval(this.statsTimer);
    await Promise.allSettled([...[...this.conns.values()].flatMap((c) => [c.pool?.close(), c.checkClient?.close()]), this.source?.close?.()]);
    this.conns.clear();
  }
}

export interface UpstreamSnapshot {
  id: string;
  load_balancing: string;
  /** discovery kind and how many targets its last good answer had */
  discovery?: { kind: string; targets: number };
  targets: {
    address: string;
    weight: number;
    status: 'healthy' | 'unhealthy' | 'unknown';
    failure_rate: number;
    last_error: string | null;
    circuit_breaker: string;
    in_flight: number;
    /** per-route breakers (routes with their own circuit-breaker block) */
    route_circuit_breakers?: Record<string, string>;
    last_check?: { ok: boolean; detail: string };
    /** only in the status page's snapshot */
    latency?: LatencySnapshot;
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
