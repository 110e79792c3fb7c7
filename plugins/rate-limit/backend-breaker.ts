// A small circuit breaker for a shared backend (Redis, Memcached): after `failureThreshold`
// consecutive failures the backend is skipped for `cooldownMs` (doubling on every failed probe
// up to `maxCooldownMs`), then one probe request at a time tests it (half-open). A dead backend
// therefore costs one call per cooldown, not one per request. Pure: the caller passes `now`.

export interface BreakerOptions {
  failureThreshold: number;
  cooldownMs: number;
  maxCooldownMs: number;
}

export const DEFAULT_BREAKER: BreakerOptions = { failureThreshold: 3, cooldownMs: 1000, maxCooldownMs: 30_000 };

export type BreakerMode = 'closed' | 'open' | 'half-open';

export class Breaker {
  private mode: BreakerMode = 'closed';
  private failures = 0;
  private openUntil = 0;
  private cooldown: number;
  private probeInFlight = false;

  constructor(private readonly opts: BreakerOptions = DEFAULT_BREAKER) {
    this.cooldown = opts.cooldownMs;
  }

  get state(): BreakerMode {
    return this.mode;
  }

  /** Whether a call may go to the backend now. A `true` in half-open is the single probe. */
  allow(now: number): boolean {
    if (this.mode === 'closed') return true;
    if (this.mode === 'open') {
      if (now < this.openUntil) return false;
      this.mode = 'half-open';
    }
    if (this.probeInFlight) return false;
    this.probeInFlight = true;
    return true;
  }

  success(): void {
    this.mode = 'closed';
    this.failures = 0;
    this.cooldown = this.opts.cooldownMs;
    this.probeInFlight = false;
  }

  failure(now: number): void {
    if (this.mode === 'half-open') {
      this.probeInFlight = false;
      this.cooldown = Math.min(this.cooldown * 2, this.opts.maxCooldownMs);
      this.open(now);
      return;
    }
    if (this.mode === 'open') return;
    this.failures++;
    if (this.failures >= this.opts.failureThreshold) this.open(now);
  }

  private open(now: number): void {
    this.mode = 'open';
    this.openUntil = now + this.cooldown;
    this.failures = 0;
  }
}
