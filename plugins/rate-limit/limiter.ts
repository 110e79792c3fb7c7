// Pure rate-limit decisions: no clock, no I/O. Callers pass `now` (ms since the epoch).
//
// Local limiter: a token bucket refilled at max-rps tokens/s holding max-rps + burst tokens.
// Steady traffic gets max-rps; an idle client may send max-rps + burst at once (Sentinel's
// local limiter ignores burst; the issue asks for it). Redis and Memcached use windows of
// `limit` requests (Sentinel's algorithms); `windowFor` shapes that window from max-rps.

export interface Decision {
  allowed: boolean;
  /** X-RateLimit-Limit */
  limit: number;
  /** X-RateLimit-Remaining after this request */
  remaining: number;
  /** ms until at least one more request would be allowed (0 when remaining > 0) */
  retryAfterMs: number;
}

export interface BucketParams {
  /** tokens per ms */
  readonly refillPerMs: number;
  readonly capacity: number;
  /** what X-RateLimit-Limit reports (max-rps) */
  readonly limit: number;
}

export interface Bucket {
  tokens: number;
  updatedAt: number;
}

export function bucketParams(maxRps: number, burst: number): BucketParams {
  // At least one token, so a fractional max-rps (0.5 = one request every 2 s) still admits a request.
  return { refillPerMs: maxRps / 1000, capacity: Math.max(1, maxRps + burst), limit: Math.max(1, Math.floor(maxRps)) };
}

export function newBucket(p: BucketParams, now: number): Bucket {
  return { tokens: p.capacity, updatedAt: now };
}

/** Refills `bucket` up to `now` (moves updatedAt) and returns its tokens, for the caller to store back. */
export function refill(bucket: Bucket, p: BucketParams, now: number): number {
  // A clock that steps back must not mint tokens or make the bucket owe time.
  const elapsed = now > bucket.updatedAt ? now - bucket.updatedAt : 0;
  bucket.updatedAt = Math.max(now, bucket.updatedAt);
  return Math.min(p.capacity, bucket.tokens + elapsed * p.refillPerMs);
}

/** Refills `bucket` up to `now` and tries to take one token. Mutates the bucket (it is the key's state). */
export function takeToken(bucket: Bucket, p: BucketParams, now: number): Decision {
  let tokens = refill(bucket, p, now);
  const allowed = tokens >= 1;
  if (allowed) tokens -= 1;
  bucket.tokens = tokens;
  const remaining = Math.min(p.limit, Math.floor(tokens));
  const retryAfterMs = tokens >= 1 ? 0 : Math.ceil((1 - tokens) / p.refillPerMs);
  return { allowed, limit: p.limit, remaining, retryAfterMs };
}

/** Milliseconds after which an untouched bucket is full again, i.e. forgetting it loses nothing. */
export function refillTimeMs(p: BucketParams): number {
  return Math.ceil(p.capacity / p.refillPerMs);
}

export interface WindowParams {
  readonly windowMs: number;
  /** requests allowed per window */
  readonly limit: number;
}

/**
 * Window shape for the shared backends: `max-rps` requests per second, or, when max-rps < 1,
 * one request per 1/max-rps seconds (so 0.5 is one request every 2 s, not zero).
 */
export function windowFor(maxRps: number): WindowParams {
  if (maxRps >= 1) return { windowMs: 1000, limit: Math.floor(maxRps) };
  return { windowMs: Math.ceil(1000 / maxRps), limit: 1 };
}

/**
 * The local fallback of a shared limit: a bucket shaped like the shared window (`limit` at
 * once, refilled at `limit` per window), so a gateway that loses its backend is never more
 * permissive than the shared limit it stands in for (burst does not apply to the windows either).
 */
export function fallbackParams(w: WindowParams): BucketParams {
  return { refillPerMs: w.limit / w.windowMs, capacity: w.limit, limit: w.limit };
}

/** Fixed window: `count` is this window's counter after counting the current request. */
export function fixedWindowDecision(count: number, w: WindowParams, now: number): Decision {
  const allowed = count <= w.limit;
  const remaining = Math.max(0, w.limit - count);
  const windowEnd = (Math.floor(now / w.windowMs) + 1) * w.windowMs;
  return { allowed, limit: w.limit, remaining, retryAfterMs: remaining > 0 ? 0 : windowEnd - now };
}

export function windowIndex(w: WindowParams, now: number): number {
  return Math.floor(now / w.windowMs);
}

/** The three X-RateLimit-* headers (Reset in unix seconds, never earlier than the next second). */
export function rateLimitHeaders(d: Decision, now: number): { limit: string; remaining: string; reset: string } {
  const nextSecond = Math.floor(now / 1000) + 1;
  const reset = Math.max(nextSecond, Math.ceil((now + d.retryAfterMs) / 1000));
  return { limit: String(d.limit), remaining: String(d.remaining), reset: String(reset) };
}

/** Retry-After in whole seconds, at least 1 (a 0 would invite an immediate retry). */
export function retryAfterSeconds(d: Decision): number {
  return Math.max(1, Math.ceil(d.retryAfterMs / 1000));
}
