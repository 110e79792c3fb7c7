// The cache as a RequestFilter on one route. onRequest: PURGE, lookup (fresh hit, stale while
// revalidating, conditional 304, HEAD from the stored GET), coalescing of misses. onResponse: a
// 304 refreshes the stored entry, a 5xx may be answered stale (stale-if-error), storability.
// onResponseBody: taps the body while it streams to the client (bounded: over the entry limit it
// is dropped, never truncated) and stores it at the end. onUpstreamError: stale-if-error when the
// origin is down, timed out or its breaker is open.
import type { CompiledRoute } from '../../src/config/compile.ts';
import type { HeaderMap, LocalResponse, RequestContext, RequestFilter, ResponseBodyHandler, UpstreamFailure, UpstreamResponseInfo } from '../../src/pipeline/types.ts';
import { classifyUpstreamError } from '../../src/errors/index.ts';
import { applyHeaderOps } from '../../src/server/headers.ts';
import { requestHasBody } from '../../src/server/request-body.ts';
import type { EntryMeta, EntryWriter, StoredResponse } from './store/entry.ts';
import { globsMatcher } from './glob.ts';
import { normalisePath, normaliseQuery, primaryKey, variantKey } from './key.ts';
import { ageOf, lookupVerdict, notModified, notModifiedHeaders, parseCacheControl, refreshHeaders, revalidationHeaders, storableHeaders, storeVerdict, type Freshness, type Headers } from './policy.ts';
import { appendCacheStatus, cacheStatusMember, type StatusFacts } from './cache-status.ts';
import type { RouteCacheSettings } from './schema.ts';
import type { CacheRuntime } from './runtime.ts';
import { requestAuditEvent } from '../../src/logging/audit.ts';
import type { CounterCell } from '../../src/metrics/fast.ts';

/** Methods whose success makes the stored response for the URL invalid (RFC 9111 §4.4). */
const UNSAFE = new Set(['POST', 'PUT', 'DELETE', 'PATCH']);
const CLIENT_CONDITIONALS = ['if-none-match', 'if-modified-since', 'if-match', 'if-unmodified-since', 'if-range'];

interface Pending extends Freshness {
  status: number;
  /** Content-Length, when the response has one */
  bytes: number | undefined;
  headers: Record<string, string | string[]>;
  vary: string[];
}

/** What the keys read on a route with a request-headers policy: the policy applied (keyHeaders). */
interface KeyHeaders {
  client: Headers;
  upstream: Headers;
}

interface State {
  mode: 'lookup' | 'bypass' | 'invalidate' | 'head-miss';
  bypassDetail?: string;
  primary: string;
  /** the stored response being revalidated (and the stale-if-error candidate) */
  stale?: StoredResponse;
  staleIfError: boolean;
  /** our conditional headers went upstream */
  revalidating: boolean;
  /** a stored variant exists for another Vary value */
  varyMiss: boolean;
  /** the key coalescing (and hit-for-pass) is keyed on */
  lockKey: string;
  /** the key was recently uncacheable: forwarded without waiting on the coalescing lock */
  pass: boolean;
  release?: () => void;
  /** lets go of the stale copy's body (held until the request completes) */
  unhold?: () => void;
  pending?: Pending;
  storing?: Promise<unknown>;
}

/**
 * A not-storable answer that says something about the URL (private, no-store, Set-Cookie, an
 * uncacheable status...), not about this one exchange (a HEAD, a Range, an origin 5xx): such keys
 * become hit-for-pass. A failing origin must not lose coalescing, or every waiter would hit it.
 */
function urlUncacheable(reason: string, status: number): boolean {
  // a Cookie (like a Range) belongs to this request: the next, anonymous one may be stored
  if (reason === 'method' || reason === 'range' || reason === 'cookie') return false;
  return !(reason === 'status' && status >= 500);
}

export class CacheFilter implements RequestFilter {
  readonly id: string;
  readonly type = 'cache';
  private readonly excludedGlob: (path: string) => boolean;
  private readonly hitCount: CounterCell;
  private readonly missCount: CounterCell;
  /** the quick hit path applies to GET / HEAD (when the route caches them) */
  private readonly quickGet: boolean;
  private readonly quickHead: boolean;

  constructor(
    private readonly route: CompiledRoute,
    private readonly s: RouteCacheSettings,
    private readonly rt: CacheRuntime,
  ) {
    this.id = `cache:${route.id}`;
    this.excludedGlob = globsMatcher(s.excludePaths);
    this.hitCount = rt.metrics.hits.child(route.id);
    this.missCount = rt.metrics.misses.child(route.id);
    this.quickGet = s.methods.includes('GET');
    this.quickHead = s.methods.includes('HEAD');
  }

  private excluded(path: string): boolean {
    if (this.excludedGlob(path)) return true;
    if (this.s.excludeExtensions.length === 0) return false;
    const last = path.slice(path.lastIndexOf('/') + 1);
    const dot = last.lastIndexOf('.');
    return dot >= 0 && this.s.excludeExtensions.includes(last.slice(dot + 1).toLowerCase());
  }

  /**
   * The headers the keys read. The route's request-headers policy applies after the filters
   * (src/server/generation.ts), so a key read from the headers before it selected entries stored
   * for other upstream requests: a rename into a Vary'd or URL-shaping header served another
   * client's variant, or stored links to a host a client chose under the plain key (session 19
   * audit). With a policy both are read with it applied, on copies made once a request (onRequest);
   * without one (undefined) the keys read the request's own headers and nothing is allocated.
   */
  private keyHeaders(ctx: RequestContext, ops: Parameters<typeof applyHeaderOps>[1]): KeyHeaders {
    const client: HeaderMap = { ...(ctx.raw.headers as HeaderMap) };
    const upstream: HeaderMap = { ...ctx.upstreamHeaders };
    applyHeaderOps(client, ops);
    applyHeaderOps(upstream, ops);
    return { client, upstream };
  }

  /** What purges match: the normalised path and query. */
  private target(ctx: RequestContext): string {
    const q = normaliseQuery(ctx.query, this.s.ignoreQueryParams);
    return `${normalisePath(ctx.path)}${q ? `?${q}` : ''}`;
  }

  private async find(primary: string, headers: Headers): Promise<{ entry?: StoredResponse; varyMiss: boolean; key: string }> {
    const backend = this.rt.shared.backend;
    const vary = await backend.varyOf(primary);
    if (vary === undefined) return { varyMiss: false, key: primary };
    const key = variantKey(primary, vary, (n) => headers[n]);
    const entry = await backend.get(key);
    return entry ? { entry, varyMiss: false, key } : { varyMiss: true, key };
  }

  onRequest(ctx: RequestContext): LocalResponse | undefined | Promise<LocalResponse | undefined> {
    const ops = this.route.requestHeaders;
    const keyed = ops && this.s.methods.includes(ctx.method) ? this.keyHeaders(ctx, ops) : undefined;
    return this.quickHit(ctx, keyed) ?? this.lookup(ctx, keyed);
  }

  /**
   * The common hit, without the general path's work (state, parsing request Cache-Control twice,
   * awaiting the store): a GET/HEAD without Cache-Control, Pragma, Range or Upgrade whose entry is
   * in memory and fresh. For such a request lookup() decides exactly the same (fresh: age below the
   * lifetime); anything else (undefined here) takes lookup().
   */
  private quickHit(ctx: RequestContext, keyed: KeyHeaders | undefined): LocalResponse | undefined {
    const m = ctx.method;
    if (m === 'GET' ? !this.quickGet : m !== 'HEAD' || !this.quickHead) return undefined;
    const mem = this.rt.shared.backend.inMemory;
    if (!mem) return undefined;
    const h = ctx.raw.headers;
    if (h['cache-control'] !== undefined || h.pragma !== undefined || h.range !== undefined || h.upgrade !== undefined) return undefined;
    // a GET with a body (a fat GET): frameworks that read its parameters answer for the body,
    // which the key does not have; never answered from or stored in the cache
    if (requestHasBody(ctx.raw)) return undefined;
    if (this.excluded(ctx.path)) return undefined;
    const primary = primaryKey(ctx, this.s.ignoreQueryParams, keyed?.client ?? h, this.route.id);
    const vary = mem.varyOf(primary);
    if (vary === undefined) return undefined;
    const up = keyed?.upstream ?? ctx.upstreamHeaders;
    const entry = mem.get(vary.length === 0 ? primary : variantKey(primary, vary, (n) => up[n]));
    if (!entry) return undefined;
    const age = ageOf(entry, this.rt.Policy);
    if (!(age < entry.lifetime)) return undefined;
    const stored = entry.headers;
    // a conditional that may get 304, or stored headers we replace or extend: the general answer
    if ((entry.status === 200 && (h['if-none-match'] !== undefined || h['if-modified-since'] !== undefined)) || stored.age !== undefined || stored['cache-status'] !== undefined) {
      return this.hit(ctx, entry, age, {});
    }
    this.rt.shared.totals.hits++;
    this.hitCount.value++;
    // The stored headers go out as they are (never copied, never changed: writeLocal only reads
    // them); Age and Cache-Status are this response's own, added like any filter's response headers.
    const extra = ctx.responseHeaders;
    extra.age = String(Math.max(0, Math.floor(age)));
    if (this.rt.storage.statusHeader) extra['cache-status'] = cacheStatusMember(this.rt.storage.statusHeaderName, { hit: true, ttl: entry.lifetime - age });
    // an arena body stays held until the write completes (its chunks are not reused meanwhile)
    return { status: entry.status, headers: stored, body: entry.body, onSent: entry.lease?.hold() };
  }

  private async lookup(ctx: RequestContext, keyed: KeyHeaders | undefined): Promise<LocalResponse | undefined> {
    const h = ctx.raw.headers;
    if (ctx.method === 'PURGE') {
      if (!this.rt.mayPurge(ctx.clientIp, h)) return this.rt.forbidden(ctx.traceId);
      const wildcard = String(h['x-purge-wildcard'] ?? '').toLowerCase() === 'true';
      const pattern = ctx.query ? `${ctx.path}?${ctx.query}` : ctx.path;
      const { response, purged } = await this.rt.purgeResponse(pattern, wildcard, ctx.host, ctx.traceId);
      this.rt.services.audit(requestAuditEvent(ctx, 'cache_purge', { action: 'purge', pattern, wildcard, host: ctx.host, status_code: response.status, purged_entries: purged }));
      return response;
    }
    const st: State = { mode: 'lookup', primary: '', staleIfError: false, revalidating: false, varyMiss: false, lockKey: '', pass: false };
    ctx.state.set(this.id, st);
    if (UNSAFE.has(ctx.method)) {
      st.mode = 'invalidate';
      return undefined;
    }
    const bypass = (detail: string) => {
      st.mode = 'bypass';
      st.bypassDetail = detail;
      return undefined;
    };
    if (!this.s.methods.includes(ctx.method)) return bypass('method');
    if (this.excluded(ctx.path)) return bypass('excluded');
    if (h.range !== undefined) return bypass('range');
    if (h.upgrade !== undefined) return bypass('upgrade');
    if (requestHasBody(ctx.raw)) return bypass('body');
    const reqcc = parseCacheControl(h['cache-control']);
    if (reqcc.has('no-store')) return bypass('no-store');
    st.primary = primaryKey(ctx, this.s.ignoreQueryParams, keyed?.client ?? h, this.route.id);
    const up = keyed?.upstream ?? ctx.upstreamHeaders;
    // Variants are keyed on what the upstream gets (docs/cache.md "Vary"), not on what the client sent
    const found = await this.find(st.primary, up);
    st.varyMiss = found.varyMiss;
    const entry = found.entry;
    if (entry) {
      const v = lookupVerdict(entry, h, this.rt.Policy);
      if (v.use === 'fresh') return this.hit(ctx, entry, v.age, {});
      if (v.use === 'stale-while-revalidate') {
        this.staleServed('stale-while-revalidate');
        this.refreshInBackground(ctx, entry);
        return this.hit(ctx, entry, v.age, { detail: 'stale-while-revalidate' });
      }
      st.stale = entry;
      // used after the upstream answers (304, stale-if-error): its body must stay as it is
      st.unhold = entry.lease?.hold();
      st.staleIfError = v.staleIfError;
    } else if (reqcc.has('only-if-cached')) {
      return { status: 504, headers: { 'content-type': 'text/plain; charset=utf-8' }, body: 'Gateway Timeout: not in cache (only-if-cached)' };
    }
    this.rt.shared.totals.misses++;
    this.missCount.value++;
    if (ctx.method === 'HEAD' && !entry) {
      // a HEAD response has no body to store: forward it as it is
      st.mode = 'head-miss';
      return undefined;
    }
    st.lockKey = found.key;
    // hit-for-pass: this key was not storable a moment ago, so waiting for another request to
    // fetch it would only serialise the requests: forward at once (a storable answer is still stored)
    const claim = this.rt.shared.passes.has(found.key) ? undefined : this.rt.shared.locks.claim(found.key);
    if (!claim) st.pass = true;
    else if (claim.leader) st.release = claim.release;
    else {
      this.rt.shared.totals.coalescedWaits++;
      const finished = await claim.wait(this.rt.storage.lockTimeoutMs);
      const again = (await this.find(st.primary, up)).entry;
      if (again && again !== entry) {
        const v = lookupVerdict(again, h, this.rt.Policy);
        if (v.use !== 'revalidate') {
          this.rt.metrics.coalesced.inc({ outcome: 'hit' });
          // the miss counted above turned into a hit
          this.rt.shared.totals.misses--;
          return this.hit(ctx, again, v.age, { collapsed: true });
        }
      }
      this.rt.metrics.coalesced.inc({ outcome: finished ? 'fallthrough' : 'timeout' });
    }
    if (st.stale && !CLIENT_CONDITIONALS.some((k) => h[k] !== undefined)) {
      Object.assign(ctx.upstreamHeaders, revalidationHeaders(st.stale.headers));
      st.revalidating = Object.keys(revalidationHeaders(st.stale.headers)).length > 0;
    }
    return undefined;
  }

  private staleServed(reason: string): void {
    this.rt.shared.totals.staleServed++;
    this.rt.metrics.staleServed.inc({ reason });
  }

  private statusHeader(headers: HeaderMap, facts: StatusFacts): void {
    if (!this.rt.storage.statusHeader) return;
    headers['cache-status'] = appendCacheStatus(headers['cache-status'], cacheStatusMember(this.rt.storage.statusHeaderName, facts));
  }

  /** A stored response as this client's answer: 304 for a matching conditional, headers only for HEAD. */
  private answer(ctx: RequestContext, entry: StoredResponse, age: number, facts: StatusFacts): LocalResponse {
    const headers: HeaderMap = { ...entry.headers, age: String(Math.max(0, Math.floor(age))) };
    this.statusHeader(headers, { ttl: entry.lifetime - age, ...facts });
    if (entry.status === 200 && notModified(ctx.raw.headers, entry.headers)) {
      const h304: HeaderMap = notModifiedHeaders(headers);
      if (headers['cache-status'] !== undefined) h304['cache-status'] = headers['cache-status'];
      return { status: 304, headers: h304 };
    }
    return { status: entry.status, headers, body: entry.body, onSent: entry.lease?.hold() };
  }

  private hit(ctx: RequestContext, entry: StoredResponse, age: number, facts: StatusFacts): LocalResponse {
    this.rt.shared.totals.hits++;
    this.hitCount.value++;
    return this.answer(ctx, entry, age, { hit: true, ...facts });
  }

  private policyRequest(ctx: RequestContext) {
    return { method: ctx.method, url: ctx.query ? `${ctx.path}?${ctx.query}` : ctx.path, headers: ctx.raw.headers };
  }

  onResponse(ctx: RequestContext, res: UpstreamResponseInfo): LocalResponse | undefined {
    const st = ctx.state.get(this.id) as State | undefined;
    if (!st) return undefined;
    if (st.mode === 'invalidate') {
      if (res.status < 400) void this.rt.purge(this.target(ctx), false, ctx.host);
      return undefined;
    }
    if (st.mode === 'bypass') {
      this.statusHeader(res.headers, { fwd: st.bypassDetail === 'method' ? 'method' : 'bypass', ...(st.bypassDetail !== 'method' ? { detail: st.bypassDetail } : {}) });
      return undefined;
    }
    if (st.mode === 'head-miss') {
      this.statusHeader(res.headers, { fwd: 'uri-miss', fwdStatus: res.status });
      return undefined;
    }
    const P = this.rt.Policy;
    if (st.stale && st.revalidating && res.status === 304) {
      const merged = refreshHeaders(st.stale.headers, res.headers);
      if (merged) {
        this.rt.metrics.revalidations.inc({ result: 'not-modified' });
        const v = storeVerdict(this.policyRequest(ctx), { status: st.stale.status, headers: merged }, this.s, P);
        let entry: StoredResponse = { ...st.stale, headers: merged };
        if (v.store) {
          entry = { ...entry, policy: v.policy, lifetime: v.lifetime, swr: v.swr, sie: v.sie };
          st.storing = this.put(entry);
        }
        return this.answer(ctx, entry, 0, { fwd: 'stale', fwdStatus: 304, stored: v.store });
      }
    }
    if (st.stale && st.staleIfError && res.status >= 500) {
      this.staleServed('stale-if-error');
      return this.answer(ctx, st.stale, ageOf(st.stale, P), { fwd: 'stale', fwdStatus: res.status, detail: 'stale-if-error' });
    }
    if (st.revalidating) this.rt.metrics.revalidations.inc({ result: 'modified' });
    // Per-request headers added by other filters (rate-limit counters ...) are not part of the stored response.
    const headers = storableHeaders(res.headers);
    for (const k in ctx.responseHeaders) delete headers[k];
    delete headers['cache-status'];
    const v = storeVerdict(this.policyRequest(ctx), { status: res.status, headers: res.headers }, this.s, P);
    if (v.store) {
      const cl = Number(res.headers['content-length']);
      st.pending = { status: res.status, bytes: Number.isFinite(cl) ? cl : undefined, headers, vary: v.vary, policy: v.policy, lifetime: v.lifetime, swr: v.swr, sie: v.sie };
      if (Number.isFinite(cl) && cl > this.s.maxEntryBytes) {
        this.rt.metrics.dropped.inc({ reason: 'too-large' });
        st.pending = undefined;
      } else if (res.status === 204 || ctx.method === 'HEAD') {
        const w = this.rt.shared.backend.begin(this.meta(ctx, st));
        st.storing = this.finish(w);
      }
    }
    if (st.pending || st.storing) this.rt.shared.passes.delete(st.lockKey);
    else if (ctx.method === 'GET' && (v.store || urlUncacheable(v.reason, res.status))) this.passFor(st);
    this.statusHeader(res.headers, { fwd: st.stale ? 'stale' : st.varyMiss ? 'vary-miss' : 'uri-miss', fwdStatus: res.status, stored: st.pending !== undefined || st.storing !== undefined, ...(st.pass ? { detail: 'hit-for-pass' } : {}) });
    return undefined;
  }

  /**
   * Not storable (or never within the entry limit): remember the key for a while (hit-for-pass)
   * and let the requests waiting on its coalescing lock go now instead of after the whole body.
   */
  private passFor(st: State): void {
    this.rt.shared.passes.set(st.lockKey, true);
    st.release?.();
    st.release = undefined;
  }

  onResponseBody(ctx: RequestContext): ResponseBodyHandler | undefined {
    const st = ctx.state.get(this.id) as State | undefined;
    if (!st?.pending || st.storing) return undefined;
    const max = this.s.maxEntryBytes;
    // the body goes to the store as it streams to the client (disk: a tmp file, renamed when complete)
    const expected = st.pending.bytes;
    const writer = this.rt.shared.backend.begin(this.meta(ctx, st), expected);
    let size = 0;
    let open = true;
    const metrics = this.rt.metrics;
    return {
      holdHeaders: false,
      observeOnly: true,
      onChunk: (chunk, last) => {
        if (open) {
          size += chunk.length;
          if (size > max) {
            // over the limit: dropped, never stored truncated; the client still gets every byte
            open = false;
            writer.abort();
            metrics.dropped.inc({ reason: 'too-large' });
            this.passFor(st);
          } else writer.write(chunk);
        }
        if (last && open) {
          open = false;
          st.storing = this.finish(writer);
        }
        return undefined;
      },
      abort: () => {
        // client gone or upstream failed mid-body: nothing of it is stored
        if (!open) return;
        open = false;
        writer.abort();
        metrics.dropped.inc({ reason: 'aborted' });
      },
    };
  }

  /** The stored form of the pending response (consumes it). */
  private meta(ctx: RequestContext, st: State): EntryMeta {
    const p = st.pending!;
    st.pending = undefined;
    return {
      // what the upstream got: identity headers the gateway wrote, an agent's header operations
      key: variantKey(st.primary, p.vary, (n) => ctx.upstreamHeaders[n]),
      primary: st.primary,
      host: ctx.host,
      target: this.target(ctx),
      status: p.status,
      headers: p.headers,
      vary: p.vary,
      policy: p.policy,
      lifetime: p.lifetime,
      swr: p.swr,
      sie: p.sie,
    };
  }

  private async finish(w: EntryWriter): Promise<void> {
    try {
      if (await w.commit()) {
        this.rt.shared.totals.stores++;
        this.rt.metrics.stores.inc({ route: this.route.id });
      } else this.rt.metrics.dropped.inc({ reason: 'refused' });
    } catch (err) {
      this.rt.services.log.warn({ err: (err as Error).message, route: this.route.id }, 'cache store failed');
    }
  }

  private async put(entry: StoredResponse): Promise<void> {
    try {
      if (await this.rt.shared.backend.set(entry)) {
        this.rt.shared.totals.stores++;
        this.rt.metrics.stores.inc({ route: this.route.id });
      } else this.rt.metrics.dropped.inc({ reason: 'refused' });
    } catch (err) {
      this.rt.services.log.warn({ err: (err as Error).message, route: this.route.id }, 'cache store failed');
    }
  }

  onUpstreamError(ctx: RequestContext, _failure: UpstreamFailure): LocalResponse | undefined {
    const st = ctx.state.get(this.id) as State | undefined;
    if (!st?.stale || !st.staleIfError) return undefined;
    this.staleServed('stale-if-error');
    return this.answer(ctx, st.stale, ageOf(st.stale, this.rt.Policy), { fwd: 'stale', detail: 'stale-if-error' });
  }

  onComplete(ctx: RequestContext): void {
    const st = ctx.state.get(this.id) as State | undefined;
    if (!st || (!st.release && !st.unhold)) return;
    const { release, unhold } = st;
    const done = () => {
      release?.();
      unhold?.();
    };
    // waiters look again once the entry is in the store (a refreshed copy is made from the stale one's body)
    if (st.storing) void st.storing.finally(done);
    else done();
  }

  /** stale-while-revalidate: one background request per key refreshes the entry (304 or a new 200). */
  private refreshInBackground(ctx: RequestContext, entry: StoredResponse): void {
    const refreshing = this.rt.shared.refreshing;
    if (refreshing.has(entry.key)) return;
    const group = this.rt.services.routeUpstream?.(this.route.id);
    if (!group) return;
    refreshing.add(entry.key);
    // a 304 stores a copy made from this entry's body: held until the refresh is over
    const unhold = entry.lease?.hold();
    const headers: Record<string, string | string[]> = {};
    for (const k in ctx.upstreamHeaders) {
      const v = ctx.upstreamHeaders[k];
      if (v !== undefined && !CLIENT_CONDITIONALS.includes(k) && k !== 'range') headers[k] = v;
    }
    // the route's request-headers policy applies after the cache looked (src/server/generation.ts):
    // the refresh is a request to the upstream like a miss's, so it gets it too
    if (this.route.requestHeaders) applyHeaderOps(headers, this.route.requestHeaders);
    Object.assign(headers, revalidationHeaders(entry.headers));
    const policyReq = this.policyRequest(ctx);
    const reqHeaders = { ...ctx.raw.headers };
    const path = ctx.raw.url ?? ctx.path;
    const pick = group.select({ clientIp: ctx.clientIp, path: ctx.path, header: (n) => { const v = reqHeaders[n]; return Array.isArray(v) ? v[0] : v; }, cookie: () => undefined });
    if (!pick) {
      refreshing.delete(entry.key);
      unhold?.();
      return;
    }
    const t0 = performance.now();
    const run = async () => {
      let reported = false;
      try {
        const r = await group.dispatcher(pick.target).request({
          origin: group.origin(pick.target),
          path,
          method: 'GET',
          headers,
          headersTimeout: group.timeouts.readMs,
          bodyTimeout: group.timeouts.readMs,
          signal: AbortSignal.timeout(group.timeouts.requestMs),
        });
        group.report(pick.target, { kind: 'response', status: r.statusCode, latencyMs: performance.now() - t0 });
        reported = true;
        const resHeaders: HeaderMap = { ...r.headers };
        if (this.route.responseHeaders) applyHeaderOps(resHeaders, this.route.responseHeaders);
        if (r.statusCode === 304) {
          await r.body.dump();
          const merged = refreshHeaders(entry.headers, resHeaders);
          if (!merged) return;
          this.rt.metrics.revalidations.inc({ result: 'not-modified' });
          const v = storeVerdict(policyReq, { status: entry.status, headers: merged }, this.s, this.rt.Policy);
          if (v.store) await this.put({ ...entry, headers: merged, policy: v.policy, lifetime: v.lifetime, swr: v.swr, sie: v.sie });
          return;
        }
        const v = storeVerdict(policyReq, { status: r.statusCode, headers: resHeaders }, this.s, this.rt.Policy);
        if (!v.store) {
          await r.body.dump();
          return;
        }
        this.rt.metrics.revalidations.inc({ result: 'modified' });
        // stored as it arrives, like a miss's body (the memory tier reserves it against the budget)
        const cl = Number(r.headers['content-length']);
        const writer = this.rt.shared.backend.begin({
          key: variantKey(entry.primary, v.vary, (n) => headers[n]),
          primary: entry.primary,
          host: entry.host,
          target: entry.target,
          status: r.statusCode,
          headers: storableHeaders(resHeaders),
          vary: v.vary,
          policy: v.policy,
          lifetime: v.lifetime,
          swr: v.swr,
          sie: v.sie,
        }, Number.isFinite(cl) ? cl : undefined);
        let size = 0;
        try {
          for await (const c of r.body as AsyncIterable<Buffer>) {
            size += c.length;
            if (size > this.s.maxEntryBytes) {
              r.body.destroy();
              writer.abort();
              this.rt.metrics.dropped.inc({ reason: 'too-large' });
              return;
            }
            writer.write(c);
          }
        } catch (err) {
          writer.abort();
          throw err;
        }
        await this.finish(writer);
      } catch (err) {
        if (!reported) group.report(pick.target, { kind: 'error', reason: classifyUpstreamError(err).reason, latencyMs: performance.now() - t0 });
        this.rt.services.log.warn({ err: (err as Error).message, route: this.route.id }, 'cache background refresh failed');
      } finally {
        refreshing.delete(entry.key);
        unhold?.();
      }
    };
    void run();
  }
}
