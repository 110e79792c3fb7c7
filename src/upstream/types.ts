// The upstream contract between the core forwarder and the balancing/health plugins.
//
// The core owns one UpstreamGroup per `upstream "id"` per generation. The group keeps one
// TargetState per target address (shared with the balancer and the health trackers), asks the
// balancer for a target per attempt, and reports every attempt's outcome back. The target list
// may change while the group runs (discovery): a balancer gets the current list on every pick
// and must not keep positions across calls with a different list.

export interface TargetState {
  /** "host:port" exactly as configured (never shown in client-facing error bodies) */
  readonly address: string;
  readonly host: string;
  readonly port: number;
  readonly weight: number;
  /**
   * Unique id of this target within the group (and the groups that adopt it on reload): what
   * PickContext.exclude holds. NOT a position in the target list, which changes with discovery.
   */
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
  /** ids (TargetState.index) of targets already tried by this request (retries prefer others) */
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

/** 'invalid_request': the upstream client refused the request's shape (blame 'client' in src/errors: never reported). */
export type UpstreamErrorReason = 'connect_refused' | 'connect_timeout' | 'reset' | 'timeout' | 'tls' | 'protocol' | 'other' | 'invalid_request';
