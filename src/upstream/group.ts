// One `upstream "id"` of one generation. The core's forwarder drives it: select() ->
// dispatcher()/origin() -> report() (once per attempt) -> shouldRetry(). The group composes
// focused parts:
//
//   target-set.ts     static + discovered targets, refreshed while it serves; adoption on reload
//   connections.ts    per-target undici pools and health-check clients, upstream TLS, timeouts
//   target-health.ts  circuit breakers (per target, per route and target) and active checks
//   selection.ts      the balancer's pick, with the fallback to an already tried target
//   retries.ts        the retry decision and the retry budget
//   gauges.ts         the group's metrics
//   report.ts         the `upstreams` builtin's view
//
// The balancer, breakers, health checks and retries are the features' policies, injected
// (src/upstream/policies.ts): the core does not import plugins/.
//
// Per-target state (breaker, active-health verdict, passive window, in-flight count) lives in a
// Target object keyed by address that outlives discovery refreshes and config reloads: the next
// generation's group with the same id adopts the previous group's Target objects (`previous`),
// and the balancer too when `load-balancing` is unchanged (latency EWMA, cursors). Pools and
// health-check clients are per group (per generation).
import type { LookupFunction } from 'node:net';
import type { ConnectionOptions } from 'node:tls';
import type { Dispatcher } from 'undici';
import type { RawUpstream } from '../config/schema.ts';
import type { GenerationServices } from '../pipeline/types.ts';
import type { AttemptOutcome, Balancer, Pick, PickContext, TargetState } from './types.ts';
import type { DiscoverySource } from './discovery/types.ts';
import { createDiscoverySource } from './discovery/index.ts';
import type { CircuitBreakerBlock, HealthCheckSettings, ProbeResult, RetryInput, UpstreamPolicies } from './policies.ts';
import type { Target } from './target.ts';
import { TargetSet } from './target-set.ts';
import { TargetConnections, upstreamTimeouts, type UpstreamTimeouts } from './connections.ts';
import { TargetHealth } from './target-health.ts';
import { Retries } from './retries.ts';
import { pickTarget } from './selection.ts';
import { UpstreamGauges } from './gauges.ts';
import { targetSnapshot, type UpstreamSnapshot } from './report.ts';
import { responseBufferPolicy, type ResponseBufferPolicy } from './response-buffer.ts';

export { upstreamsReport, type UpstreamSnapshot } from './report.ts';
export type { UpstreamTimeouts } from './connections.ts';

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

const FIRST_RESOLUTION_TIMEOUT_MS = 5000;

/** nginx's "client closed request", what the forwarder reports when the client aborts */
const CLIENT_CLOSED = 499;

export class UpstreamGroup {
  readonly id: string;
  readonly timeouts: UpstreamTimeouts;
  /** `response-buffering { }`: undefined when off */
  readonly responseBuffering: ResponseBufferPolicy | undefined;
  /** canonical load-balancing name */
  readonly algorithm: string;
  private readonly set: TargetSet;
  private readonly conns: TargetConnections;
  private readonly health: TargetHealth;
  private readonly retries: Retries;
  private readonly gauges: UpstreamGauges;
  private readonly balancer: Balancer;
  private readonly loadBalancingKey: string;
  private readonly firstResolutionTimeoutMs: number;
  private previous: UpstreamGroup | undefined;
  private statsTimer: NodeJS.Timeout | undefined;
  private readonly now: () => number;
  private readonly rng: () => number;
  private started = false;
  /** stopped checking and refreshing: the next generation's group took over */
  private retired = false;
  private closed = false;

  constructor(opts: UpstreamGroupOptions) {
    const { id, config, policies, services } = opts;
    this.id = id;
    this.now = opts.now ?? (() => performance.now());
    this.rng = opts.rng ?? Math.random;
    this.gauges = new UpstreamGauges(id, services.metrics, policies.breakers);
    this.firstResolutionTimeoutMs = opts.firstResolutionTimeoutMs ?? FIRST_RESOLUTION_TIMEOUT_MS;
    this.previous = opts.previous;
    const source = opts.discovery ?? createDiscoverySource(config.discovery, opts.baseDir);
    this.set = new TargetSet(id, config, source, opts.previous?.set, policies, this.gauges, services.log, {
      tracked: (t) => this.conns.track(t),
      added: (t) => {
        this.gauges.publish(t, this.health.routeBreakerCfg);
        this.health.added(t);
      },
      removed: (t) => {
        this.health.removed(t);
        if (this.started) this.gauges.unpublish(t);
        this.conns.release(t);
      },
    }, services.ownListeners);
    const lb = config['load-balancing'];
    this.algorithm = policies.balancing.algorithmName(lb);
    this.loadBalancingKey = JSON.stringify(lb ?? null);
    // Same load-balancing block: keep the balancer (EWMA averages, cursors) across the reload.
    this.balancer =
      opts.previous && opts.previous.loadBalancingKey === this.loadBalancingKey ? opts.previous.balancer : policies.balancing.create(lb, { rng: this.rng, now: this.now });
    let checks: HealthCheckSettings | undefined;
    if (config['health-check']) {
      const h = policies.health.settings(config['health-check']);
      if (typeof h === 'string') throw new Error(`upstream "${id}" health-check: ${h}`);
      checks = h;
    }
    this.health = new TargetHealth(id, config['circuit-breaker'], opts.routeCircuitBreakers ?? new Map(), checks, policies, this.gauges, services);
    this.retries = new Retries(id, config['retry-policy'], policies.retry, this.now, this.rng, services.log);
    this.timeouts = upstreamTimeouts(config);
    this.responseBuffering = responseBufferPolicy(config['response-buffering']);
    this.conns = new TargetConnections(id, config, this.timeouts, opts.baseDir, () => this.retries.take(), (t) => this.set.connectLookup(t as Target));

    // Until the first resolution (ready()), the group has its static targets; a previous
    // generation's last good discovery answer is kept as the fallback for a failed first try.
    this.set.init();
    for (const t of this.set.members) this.gauges.publish(t, this.health.routeBreakerCfg);
  }

  /** The current targets (read by tests, the builtins and the forwarder's logs). */
  get targets(): readonly TargetState[] {
    return this.set.members;
  }

  /**
   * Resolves the discovery block once before the generation serves, bounded by
   * firstResolutionTimeoutMs. A failure is logged; the group then serves its static targets
   * plus the previous generation's last good answer for the same discovery block (if any).
   */
  async ready(): Promise<void> {
    await this.set.ready(this.firstResolutionTimeoutMs, () => this.closed);
  }

  /**
   * One discovery resolution: applies the answer when it differs from the current set. Errors
   * keep the last good set (logged, counted). Returns whether the source answered.
   */
  async refresh(timeoutMs = Math.max(1000, Math.min(30_000, this.set.source?.intervalMs ?? 30_000))): Promise<boolean> {
    return this.set.refresh(timeoutMs, () => this.closed);
  }

  /**
   * The checked resolver for connections to a target named by a host name (undefined: an IP
   * literal), for the WebSocket proxy's own connections; the pools get theirs from conns.
   */
  connectLookup(target: TargetState): LookupFunction | undefined {
    return this.set.connectLookup(target as Target);
  }

  /** TLS options for one target: SNI defaults to the target's host name (never an IP literal). Also used by the WebSocket proxy's own connections. */
  tlsFor(target: TargetState): ConnectionOptions | undefined {
    return this.conns.tlsFor(target);
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
    const prevSet = this.set.start(() => this.refresh());
    if (prev) {
      prev.retire();
      const mine = new Set(this.set.members);
      for (const t of prevSet?.members ?? []) if (!mine.has(t)) this.gauges.unpublish(t);
      // the previous group is only needed for adoption; do not keep its whole generation alive
      this.previous = undefined;
    }
    const members = this.set.members;
    this.health.forgetChecks(members);
    for (const t of members) this.gauges.publish(t, this.health.routeBreakerCfg);
    this.statsTimer = setInterval(() => this.updatePoolGauges(), 1000);
    this.statsTimer.unref();
    this.health.startChecks(members, (id) => this.runCheck(id), this.rng);
  }

  /** Stops health checks and discovery refreshes (the next generation's group took over). */
  private retire(): void {
    this.retired = true;
    this.health.stopChecks();
    this.set.stop();
  }

  /** One active check of the target with id `index` (also callable directly, e.g. by tests). */
  async runCheck(index: number): Promise<ProbeResult> {
    const target = this.set.members.find((t) => t.index === index);
    if (!this.health.checks) return { ok: true, detail: 'no health-check configured' };
    if (!target) return { ok: false, detail: 'target is no longer in the upstream' };
    const probe = {
      host: target.host,
      port: target.port,
      origin: this.conns.origin(target),
      tls: this.conns.tlsFor(target),
      checkClient: (timeoutMs: number, keepAliveMs: number) => this.conns.checkClient(target, timeoutMs, keepAliveMs),
    };
    return this.health.check(target, probe, () => this.closed || this.retired || !this.set.members.includes(target));
  }

  private updatePoolGauges(): void {
    const s = this.conns.stats(this.set.members);
    this.gauges.pools(s.connected, s.idle);
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
    if ((ctx.exclude?.size ?? 0) === 0) this.retries.recordRequest(now);
    const targets = this.set.members;
    this.health.refresh(targets, now, route);
    const pick = pickTarget(this.balancer, targets, ctx);
    if (!pick) return undefined;
    const target = pick.target as Target;
    this.health.acquire(target, now, route);
    target.inFlight++;
    return pick;
  }

  /** The undici Pool for this target (created on first use, one per target per generation). */
  dispatcher(target: TargetState): Dispatcher {
    return this.conns.dispatcher(target);
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
    return this.conns.origin(target);
  }

  /**
   * Outcome of one attempt: passive health, circuit breaker(s), latency feedback. Exactly once
   * per attempt. A response status 499 (client closed the request) is neutral, as abandon().
   */
  report(target: TargetState, outcome: AttemptOutcome, route?: string): void {
    if (outcome.kind === 'response' && outcome.status === CLIENT_CLOSED) return this.abandon(target, route);
    const t = target as Target;
    t.inFlight = Math.max(0, t.inFlight - 1);
    const failed = this.health.record(t, outcome, this.now(), route);
    this.balancer.observe?.(t, outcome.latencyMs, !failed);
    t.latency.observe(outcome.latencyMs);
  }

  /** Ends an attempt that says nothing about the target (the client went away): frees its slot only. */
  abandon(target: TargetState, route?: string): void {
    const t = target as Target;
    t.inFlight = Math.max(0, t.inFlight - 1);
    this.health.release(t, this.now, route);
  }

  /**
   * The group as seen by one route's traffic: when the route has its own circuit-breaker block,
   * select/report/abandon also drive that route's per-target breakers; otherwise the group itself.
   */
  forRoute(route: string): UpstreamGroup {
    if (!this.health.routeBreakerCfg.has(route)) return this;
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
  shouldRetry(input: RetryInput): { retry: boolean; delayMs: number } {
    return this.retries.decide(input);
  }

  /**
   * JSON for the `upstreams` builtin (sentinel-reference.md §3.1), one entry of `upstreams[]`;
   * with `latency` (the status page) each target also has its attempt latency.
   */
  snapshot(opts: { latency?: boolean } = {}): UpstreamSnapshot {
    const now = this.now();
    const source = this.set.source;
    return {
      id: this.id,
      load_balancing: this.algorithm,
      ...(source ? { discovery: { kind: source.kind, targets: this.set.discovered.length } } : {}),
      targets: this.set.members.map((t) => targetSnapshot(t, this.health.openNow(t, now), this.health.routeBreakerCfg, opts.latency ?? false)),
    };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.retire();
    this.previous = undefined;
    this.set.forgetPrevious();
    if (this.statsTimer) clearInterval(this.statsTimer);
    await Promise.allSettled([this.conns.close(), this.set.source?.close?.()]);
  }
}
