// Pure RFC 9111 decisions, on top of http-cache-semantics with an injected clock: may this
// response be stored, for how long, may a stored one answer this request (fresh, stale while
// revalidating, stale on error), does a conditional request get 304, and how a 304 from the
// origin refreshes a stored response. No I/O: the runtime (filter.ts) does the talking.
import CachePolicy from 'http-cache-semantics';
import type { RouteCacheSettings } from './schema.ts';
import { varyNames } from './key.ts';

export type Headers = Record<string, string | string[] | undefined>;
export type Clock = () => number;

/** http-cache-semantics documents `now()` as its time seam: the subclass reads the injected clock. */
export function policyClass(now: Clock): typeof CachePolicy {
  return class ClockedPolicy extends CachePolicy {
    /** the same clock, for ageOf without building a policy */
    static readonly clock: Clock = now;
    now(): number {
      return now();
    }
  };
}

/** What a stored response carries about its freshness, serialisable (disk backend). */
export interface Freshness {
  /** http-cache-semantics state: response time, Age, directives */
  policy: CachePolicy.CachePolicyObject;
  /** freshness lifetime in seconds (explicit, or the heuristic/default one) */
  lifetime: number;
  /** seconds past the lifetime it may be served while one background refresh runs */
  swr: number;
  /** seconds past the lifetime it may be served when the origin fails */
  sie: number;
}

export type StoreVerdict = ({ store: true; vary: string[] } & Freshness) | { store: false; reason: string };

/** Headers never stored: per-connection (RFC 9110 §7.6.1) or per-request (ours). */
const NOT_STORED = new Set(['connection', 'keep-alive', 'proxy-connection', 'proxy-authenticate', 'proxy-authorization', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'x-correlation-id', 'x-request-id']);

export function parseCacheControl(v: string | string[] | undefined): Map<string, string> {
  const out = new Map<string, string>();
  const s = Array.isArray(v) ? v.join(',') : (v ?? '');
  for (const part of s.split(',')) {
    const eq = part.indexOf('=');
    const k = (eq < 0 ? part : part.slice(0, eq)).trim().toLowerCase();
    if (k === '') continue;
    const val = eq < 0 ? '' : part.slice(eq + 1).trim().replace(/^"(.*)"$/, '$1');
    if (!out.has(k)) out.set(k, val);
  }
  return out;
}

function seconds(v: string | undefined): number | undefined {
  if (v === undefined || !/^\d+$/.test(v)) return undefined;
  return Number(v);
}

/** The response headers kept with a stored response. */
export function storableHeaders(h: Headers): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  const connection = String(h.connection ?? '')
    .split(',')
    .map((x) => x.trim().toLowerCase());
  for (const k in h) {
    const v = h[k];
    if (v === undefined || NOT_STORED.has(k) || connection.includes(k)) continue;
    out[k] = v;
  }
  return out;
}

/**
 * May `res` (to `req`) be stored, and for how long? RFC 9111 §3 plus the route's rules. The
 * freshness lifetime is the explicit one (s-maxage, max-age, Expires); only when there is none
 * and the status is heuristically cacheable (or the response says public) a heuristic applies
 * (RFC 9111 §4.2.2): 10% of the time since Last-Modified, at most default-ttl-secs, or
 * default-ttl-secs without Last-Modified.
 */
export function storeVerdict(req: { method: string; url: string; headers: Headers }, res: { status: number; headers: Headers }, settings: RouteCacheSettings, Policy: typeof CachePolicy): StoreVerdict {
  if (req.method !== 'GET') return { store: false, reason: 'method' };
  if (!settings.statuses.includes(res.status)) return { store: false, reason: 'status' };
  // This cache does not combine or slice ranges.
  if (res.status === 206 || req.headers.range !== undefined) return { store: false, reason: 'range' };
  const reqcc = parseCacheControl(req.headers['cache-control']);
  const rescc = parseCacheControl(res.headers['cache-control']);
  if (reqcc.has('no-store') || rescc.has('no-store')) return { store: false, reason: 'no-store' };
  const shared = !settings.cachePrivate;
  if (rescc.has('private') && shared) return { store: false, reason: 'private' };
  // A shared cache replaying one user's cookie to another is a session leak.
  if (res.headers['set-cookie'] !== undefined) return { store: false, reason: 'set-cookie' };
  // RFC 9111 §3.5, enforced even with cache-private: one user's authorised answer is not another's.
  if (req.headers.authorization !== undefined && !rescc.has('public') && !rescc.has('s-maxage') && !rescc.has('must-revalidate')) {
    return { store: false, reason: 'authorization' };
  }
  const vary = varyNames(settings.varyHeaders, res.headers);
  if (!vary) return { store: false, reason: 'vary' };
  // The policy object is stored with the entry and keeps the request headers it was given when the
  // response has a Vary: only those that matter to it, not the whole request's.
  const reqHeaders: Headers = {};
  for (const n of ['cache-control', 'pragma', 'authorization', 'host', ...vary]) if (req.headers[n] !== undefined) reqHeaders[n] = req.headers[n];
  const policy = new Policy({ ...req, headers: reqHeaders }, res, { shared, cacheHeuristic: 0.1 });
  if (!policy.storable()) return { store: false, reason: 'not-storable' };
  const explicit = (shared && rescc.has('s-maxage')) || rescc.has('max-age') || res.headers.expires !== undefined;
  // A request with a Cookie is often answered for that user: without the origin's own word
  // (explicit freshness or public) a shared cache must not guess, or a personal page that
  // carries no Cache-Control is served to everyone for default-ttl-secs (web cache deception:
  // /account/profile/x.css). The heuristic below is for anonymous requests.
  if (shared && req.headers.cookie !== undefined && !explicit && !rescc.has('public') && !vary.includes('cookie')) return { store: false, reason: 'cookie' };
  let lifetime: number;
  if (rescc.has('no-cache')) lifetime = 0;
  else if (explicit) lifetime = policy.maxAge();
  else {
    const heuristic = res.headers['last-modified'] !== undefined ? policy.maxAge() : 0;
    lifetime = heuristic > 0 ? Math.min(heuristic, settings.defaultTtlSecs) : settings.defaultTtlSecs;
  }
  const hasValidator = res.headers.etag !== undefined || res.headers['last-modified'] !== undefined;
  if (lifetime <= 0 && !hasValidator) return { store: false, reason: 'zero-ttl' };
  const noStale = rescc.has('must-revalidate') || rescc.has('no-cache') || (shared && rescc.has('proxy-revalidate'));
  const swr = noStale ? 0 : (seconds(rescc.get('stale-while-revalidate')) ?? settings.staleWhileRevalidateSecs);
  const sie = noStale ? 0 : (seconds(rescc.get('stale-if-error')) ?? settings.staleIfErrorSecs);
  return { store: true, vary, policy: policy.toObject(), lifetime, swr, sie };
}

export type LookupVerdict =
  /** serve it */
  | { use: 'fresh'; age: number }
  /** serve it, refresh in the background once */
  | { use: 'stale-while-revalidate'; age: number }
  /** ask the origin (conditionally); `staleIfError` says whether it may still be served if that fails */
  | { use: 'revalidate'; age: number; staleIfError: boolean };

/** Current age in seconds (Age header + time resident here). */
export function ageOf(f: Freshness, Policy: typeof CachePolicy): number {
  // what http-cache-semantics' age() computes (Age header + resident time), without rebuilding a
  // CachePolicy from its object on every hit (that parses all the stored headers again)
  const clock = (Policy as { clock?: Clock }).clock;
  if (!clock) return Policy.fromObject(f.policy).age();
  const ageHeader = parseInt(String(f.policy.resh.age), 10);
  return (Number.isFinite(ageHeader) ? ageHeader : 0) + (clock() - f.policy.t) / 1000;
}

/** May the stored response answer `reqHeaders` now (request Cache-Control / Pragma included)? */
export function lookupVerdict(f: Freshness, reqHeaders: Headers, Policy: typeof CachePolicy): LookupVerdict {
  const age = ageOf(f, Policy);
  const cc = parseCacheControl(reqHeaders['cache-control']);
  const sieOk = age < f.lifetime + f.sie;
  const pragmaNoCache = reqHeaders['cache-control'] === undefined && /no-cache/i.test(String(reqHeaders.pragma ?? ''));
  if (cc.has('no-cache') || pragmaNoCache) return { use: 'revalidate', age, staleIfError: sieOk };
  const maxAge = seconds(cc.get('max-age'));
  // max-age=0 is a reload (browsers send it): revalidate even when no time has passed since the
  // entry was stored or refreshed (age 0 is not "greater than 0", but the client wants the origin)
  if (maxAge !== undefined && (maxAge === 0 || age > maxAge)) return { use: 'revalidate', age, staleIfError: sieOk };
  const minFresh = seconds(cc.get('min-fresh'));
  if (minFresh !== undefined && f.lifetime - age < minFresh) return { use: 'revalidate', age, staleIfError: sieOk };
  if (age < f.lifetime) return { use: 'fresh', age };
  // max-stale: the client accepts a stale answer (unless the origin said must-revalidate: swr/sie are 0 then)
  if (cc.has('max-stale') && (f.swr > 0 || f.sie > 0)) {
    const limit = seconds(cc.get('max-stale'));
    if (limit === undefined || age - f.lifetime <= limit) return { use: 'fresh', age };
  }
  if (age < f.lifetime + f.swr) return { use: 'stale-while-revalidate', age };
  return { use: 'revalidate', age, staleIfError: sieOk };
}

/** RFC 9110 §8.8.3.2 weak comparison. */
function weakEqual(a: string, b: string): boolean {
  return a.replace(/^W\//, '') === b.replace(/^W\//, '');
}

/**
 * Does the client's conditional GET/HEAD match the stored response (answer 304)? If-None-Match
 * wins over If-Modified-Since (RFC 9110 §13.2.2).
 */
export function notModified(reqHeaders: Headers, stored: Headers): boolean {
  const inm = reqHeaders['if-none-match'];
  if (inm !== undefined) {
    const etag = typeof stored.etag === 'string' ? stored.etag : undefined;
    const list = String(inm).split(',').map((x) => x.trim());
    if (list.includes('*')) return true;
    return etag !== undefined && list.some((t) => weakEqual(t, etag));
  }
  const ims = reqHeaders['if-modified-since'];
  const lm = stored['last-modified'];
  if (typeof ims !== 'string' || typeof lm !== 'string') return false;
  const since = Date.parse(ims);
  const modified = Date.parse(lm);
  return Number.isFinite(since) && Number.isFinite(modified) && modified <= since;
}

/** Headers a 304 carries (RFC 9110 §15.4.5): what the 200 would have said about caching. */
export function notModifiedHeaders(stored: Headers): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const k of ['cache-control', 'content-location', 'date', 'etag', 'expires', 'vary', 'last-modified', 'age']) {
    const v = stored[k];
    if (v !== undefined) out[k] = v;
  }
  return out;
}

/** Conditional headers that revalidate the stored response with its origin. */
export function revalidationHeaders(stored: Headers): Record<string, string> {
  const out: Record<string, string> = {};
  if (typeof stored.etag === 'string') out['if-none-match'] = stored.etag;
  if (typeof stored['last-modified'] === 'string') out['if-modified-since'] = stored['last-modified'];
  return out;
}

/** Headers of a 304 that must not replace the stored ones (RFC 9111 §3.2). */
const KEEP_ON_304 = new Set(['content-length', 'content-encoding', 'content-type', 'content-range', 'transfer-encoding']);

/**
 * The stored headers refreshed by the origin's 304 (RFC 9111 §4.3.4), or undefined when the 304
 * is about another representation (its strong ETag differs from the stored one).
 */
export function refreshHeaders(stored: Headers, fresh: Headers): Record<string, string | string[]> | undefined {
  const freshTag = typeof fresh.etag === 'string' ? fresh.etag : undefined;
  const storedTag = typeof stored.etag === 'string' ? stored.etag : undefined;
  if (freshTag !== undefined && storedTag !== undefined && !weakEqual(freshTag, storedTag)) return undefined;
  const out = storableHeaders(stored);
  for (const [k, v] of Object.entries(storableHeaders(fresh))) {
    if (!KEEP_ON_304.has(k)) out[k] = v;
  }
  // The 304 restarts the age: an Age it does not carry must not linger from the old response.
  if (fresh.age === undefined) delete out.age;
  return out;
}
