// Circuit breaker as a pure state machine: next(state, event, now, config) -> state.
//   closed    --failure-threshold consecutive failures-->  open
//   open      --timeout elapsed, next acquire-->           half-open (that request is a probe)
//   half-open --success-threshold successes-->             closed
//   half-open --any failure-->                             open (timer restarts)
// In half-open at most half-open-max-requests probes are in flight at once.
// What counts as a failure is isFailure(): transport failures always, relayed statuses only when
// the block lists them in `failure-status-codes` (docs/security.md, "Upstream blame").
import type { CircuitBreakerConfig } from './schema.ts';
import type { AttemptOutcome } from '../../src/upstream/types.ts';

export type BreakerPhase = 'closed' | 'open' | 'half-open';

export interface BreakerState {
  readonly phase: BreakerPhase;
  /** consecutive failures while closed */
  readonly failures: number;
  /** successes while half-open */
  readonly successes: number;
  /** probes in flight while half-open */
  readonly probes: number;
  /** when the breaker last opened (ms) */
  readonly openedAt: number;
}

export type BreakerEvent = { type: 'success' } | { type: 'failure' } | { type: 'acquire' } | { type: 'release' };

export interface BreakerSettings {
  failureThreshold: number;
  successThreshold: number;
  timeoutMs: number;
  halfOpenMaxRequests: number;
  /** response statuses (5xx) that count as failures; empty by default */
  failureStatuses: ReadonlySet<number>;
}

export const DEFAULT_BREAKER: BreakerSettings = { failureThreshold: 5, successThreshold: 2, timeoutMs: 30_000, halfOpenMaxRequests: 1, failureStatuses: new Set() };

export function breakerSettings(cfg: CircuitBreakerConfig | undefined): BreakerSettings {
  return {
    failureThreshold: cfg?.['failure-threshold'] ?? DEFAULT_BREAKER.failureThreshold,
    successThreshold: cfg?.['success-threshold'] ?? DEFAULT_BREAKER.successThreshold,
    timeoutMs: (cfg?.['timeout-seconds'] ?? DEFAULT_BREAKER.timeoutMs / 1000) * 1000,
    halfOpenMaxRequests: cfg?.['half-open-max-requests'] ?? DEFAULT_BREAKER.halfOpenMaxRequests,
    failureStatuses: cfg?.['failure-status-codes'] ? new Set(cfg['failure-status-codes']) : DEFAULT_BREAKER.failureStatuses,
  };
}

/**
 * Whether an attempt counts against the target for this breaker: every transport failure the
 * forwarder reports (connect refused or timed out, reset, response timeout, TLS, malformed
 * response), and a relayed response only when its status is in `failure-status-codes`. A status,
 * even 502-504, is the application's answer to one request, which a client can choose inputs to
 * provoke: counted by default, it would let any client open the breaker for everyone.
 */
export function isFailure(o: AttemptOutcome, cfg: BreakerSettings): boolean {
  return o.kind === 'error' || cfg.failureStatuses.has(o.status);
}

export const CLOSED: BreakerState = { phase: 'closed', failures: 0, successes: 0, probes: 0, openedAt: 0 };

function open(now: number): BreakerState {
  return { phase: 'open', failures: 0, successes: 0, probes: 0, openedAt: now };
}

/** May a request pass now? (pure; `acquire` performs the open -> half-open move and counts the probe) */
export function canPass(s: BreakerState, now: number, cfg: BreakerSettings): boolean {
  if (s.phase === 'closed') return true;
  if (s.phase === 'open') return now - s.openedAt >= cfg.timeoutMs;
  return s.probes < cfg.halfOpenMaxRequests;
}

export function next(s: BreakerState, e: BreakerEvent, now: number, cfg: BreakerSettings): BreakerState {
  switch (s.phase) {
    case 'closed':
      if (e.type === 'failure') return s.failures + 1 >= cfg.failureThreshold ? open(now) : { ...s, failures: s.failures + 1 };
      if (e.type === 'success') return s.failures === 0 ? s : { ...s, failures: 0 };
      return s;
    case 'open':
      if (e.type === 'acquire' && now - s.openedAt >= cfg.timeoutMs) return { phase: 'half-open', failures: 0, successes: 0, probes: 1, openedAt: s.openedAt };
      // outcomes of requests admitted before the breaker opened do not move it
      return s;
    case 'half-open':
      if (e.type === 'acquire') return s.probes < cfg.halfOpenMaxRequests ? { ...s, probes: s.probes + 1 } : s;
      if (e.type === 'release') return { ...s, probes: Math.max(0, s.probes - 1) };
      if (e.type === 'failure') return open(now);
      if (s.successes + 1 >= cfg.successThreshold) return CLOSED;
      return { ...s, successes: s.successes + 1, probes: Math.max(0, s.probes - 1) };
  }
}

/** sentinel_circuit_breaker_state value: 0 closed, 1 open, 2 half-open. */
export function phaseGauge(p: BreakerPhase): number {
  return p === 'closed' ? 0 : p === 'open' ? 1 : 2;
}
