// The upstream contract between the core forwarder and the balancing/health plugins.
//
// The core owns one UpstreamGroup per `upstream "id"` per generation. The group keeps one
// TargetState per target (shared with the balancer and the health trackers), asks the
// balancer for a target per attempt, and reports every attempt's outcome back.

export interface TargetState {
  /** "host:port" exactly as configured (never shown in client-facing error bodies) */
  readonly address: string;
  readonly host: string;
  readonly port: number;
  readonly weight: number;
  /** index in the group's target list (stable for the generation) */
  readonly index: number;
  /** false while active health checks or the circuit breaker say so; balancers skip it */
  healthy: boolean;
  /** requests currently in flight to this target */
  inFlight: number;
}

/** What a balancer may look at to choose (all cheap to read). */
export interface PickContext {
  readonly clientIp: string;
  readonly path: string;
  /** lower-cased request header lookup */
  header(name: string): string | undefined;
  cookie(name: string): string | undefined;
  /** targets already tried by this request (retries prefer others) */
  readonly exclude?: ReadonlySet<number>;
}

export interface Pick {
  target: TargetState;
  /** e.g. a sticky-session Set-Cookie to add to the response */
  setCookie?: string;
}

export interface Balancer {
  readonly name: string;
  pick(targets: readonly TargetState[], ctx: PickContext): Pick | undefined;
  /** feedback for latency/error-aware algorithms (EWMA, adaptive) */
  observe?(target: TargetState, latencyMs: number, ok: boolean): void;
}

export type AttemptOutcome =
  | { kind: 'response'; status: number; latencyMs: number }
  | { kind: 'error'; reason: UpstreamErrorReason; latencyMs: number };

export type UpstreamErrorReason = 'connect_refused' | 'connect_timeout' | 'reset' | 'timeout' | 'tls' | 'protocol' | 'other';
