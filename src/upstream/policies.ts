// The policies an UpstreamGroup is built with, as the core sees them. The balancing, health and
// retry features implement them (plugins/balancing, plugins/health, plugins/retry) and hand them
// over in their manifests' `upstreamPolicies`; the composition root (src/features.ts) collects
// them and the forwarding feature passes them to every group it creates. The core never imports
// a feature: settings and states are opaque here except for what the group itself reads.
//
// Members are methods (not function-typed properties) on purpose: an implementation may take its
// own, richer settings and state types where the core only knows the fields it reads.
import type { Dispatcher } from 'undici';
import type { ConnectionOptions } from 'node:tls';
import type { RawUpstream } from '../config/schema.ts';
import type { AttemptOutcome, Balancer } from './types.ts';

/** The `circuit-breaker` block of an upstream or a route. */
export type CircuitBreakerBlock = NonNullable<RawUpstream['circuit-breaker']>;

/** `load-balancing`: the algorithms (the balancing feature). */
export interface BalancingPolicy {
  /** canonical algorithm name for the `upstreams` builtin */
  algorithmName(block: unknown): string;
  /** a problem with the block, or undefined */
  validate(block: unknown): string | undefined;
  create(block: unknown, deps: { rng: () => number; now: () => number }): Balancer;
}

export type BreakerPhase = 'closed' | 'open' | 'half-open';
/** A breaker's state: the group reads the phase only, the policy owns the rest. */
export interface BreakerState {
  readonly phase: BreakerPhase;
}
export type BreakerEvent = { type: 'success' } | { type: 'failure' } | { type: 'acquire' } | { type: 'release' };
/** Settings of one breaker, opaque to the group. */
export type BreakerSettings = object;

/** Passive health: circuit breakers per target and per route (the health feature). */
export interface BreakerPolicy {
  settings(block: CircuitBreakerBlock | undefined): BreakerSettings;
  readonly closed: BreakerState;
  /** may a request pass now? (pure; `acquire` moves open -> half-open) */
  canPass(state: BreakerState, now: number, settings: BreakerSettings): boolean;
  next(state: BreakerState, event: BreakerEvent, now: number, settings: BreakerSettings): BreakerState;
  /** whether an attempt's outcome is a failure for a breaker with these settings (and the passive window, with the upstream's) */
  isFailure(outcome: AttemptOutcome, settings: BreakerSettings): boolean;
  /** the value of sentinel_circuit_breaker_state for a phase */
  gauge(phase: BreakerPhase): number;
}

/** Active health-check settings: the group reads the kind and the interval. */
export interface HealthCheckSettings {
  readonly kind: string;
  readonly intervalMs: number;
}
/** The active-check verdict of one target (thresholds applied). */
export interface HealthVerdict {
  readonly healthy: boolean;
}
export interface ProbeResult {
  ok: boolean;
  detail: string;
}
/** What a probe may use of one target. */
export interface ProbeTarget {
  readonly host: string;
  readonly port: number;
  /** e.g. "http://127.0.0.1:9001" */
  readonly origin: string;
  readonly tls: ConnectionOptions | undefined;
  /** the target's own keep-alive client for checks (created on first use; closed by the group) */
  checkClient(timeoutMs: number, keepAliveMs: number): Dispatcher;
}
export interface HealthCheckScheduler {
  start(): void;
  stop(): void;
  add(id: number): void;
  remove(id: number): void;
}

/** Active health checks (the health feature). */
export interface HealthPolicy {
  /** normalised settings of a `health-check` block, or a problem */
  settings(block: NonNullable<RawUpstream['health-check']>): HealthCheckSettings | string;
  readonly initial: HealthVerdict;
  next(verdict: HealthVerdict, ok: boolean, settings: HealthCheckSettings): HealthVerdict;
  probe(target: ProbeTarget, settings: HealthCheckSettings): Promise<ProbeResult>;
  /** runs `check(id)` for every id, jittered, every interval */
  scheduler(ids: Iterable<number>, intervalMs: number, check: (id: number) => Promise<void>, rng: () => number): HealthCheckScheduler;
}

export interface RetryInput {
  method: string;
  /** the attempt that just finished, 1 = the first */
  attempt: number;
  outcome: AttemptOutcome;
  bodyReplayable: boolean;
  responseStarted: boolean;
}
/** Retry settings of one upstream, opaque to the group. */
export type RetrySettings = object;
export interface RetryBudget {
  recordRequest(nowMs: number): void;
  /** takes one retry from the budget; false when it is spent */
  tryTake(nowMs: number): boolean;
}

/** Retries and the retry budget (the retry feature). */
export interface RetryPolicy {
  settings(block: RawUpstream['retry-policy']): RetrySettings;
  budget(settings: RetrySettings): RetryBudget;
  /** the decision without the budget; `rng` jitters the backoff */
  decide(settings: RetrySettings, input: RetryInput, rng: () => number): { retry: boolean; delayMs: number };
}

export interface UpstreamPolicies {
  readonly balancing: BalancingPolicy;
  readonly breakers: BreakerPolicy;
  readonly health: HealthPolicy;
  readonly retry: RetryPolicy;
}

/**
 * Merges the manifests' contributions into one set; throws when a slot is missing or given
 * twice (a programming error in the composition root).
 */
export function collectUpstreamPolicies(parts: Iterable<Partial<UpstreamPolicies> | undefined>): UpstreamPolicies {
  const out: Partial<Record<keyof UpstreamPolicies, unknown>> = {};
  for (const p of parts) {
    if (!p) continue;
    for (const [k, v] of Object.entries(p) as [keyof UpstreamPolicies, unknown][]) {
      if (out[k] !== undefined) throw new Error(`upstream policy "${k}" is contributed twice`);
      out[k] = v;
    }
  }
  for (const k of ['balancing', 'breakers', 'health', 'retry'] as const) {
    if (out[k] === undefined) throw new Error(`no feature contributes the upstream policy "${k}"`);
  }
  return out as unknown as UpstreamPolicies;
}
