import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ageOf, lookupVerdict, notModified, policyClass, refreshHeaders, revalidationHeaders, storeVerdict, storableHeaders, type Headers } from '../../../plugins/caching/policy.ts';
import { normaliseRouteCache } from '../../../plugins/caching/schema.ts';

const settings = normaliseRouteCache({ enabled: true, 'default-ttl-secs': 600, 'stale-while-revalidate-secs': 30, 'stale-if-error-secs': 120 }, 'cache', []);
const T0 = Date.parse('2026-01-01T00:00:00Z');

function clock(start = T0) {
  let t = start;
  return { now: () => t, advance: (secs: number) => (t += secs * 1000) };
}

const req = (headers: Headers = {}, method = 'GET') => ({ method, url: '/x', headers: { host: 'a.test', ...headers } });
const date = new Date(T0).toUTCString();

test('storeVerdict: storability table (RFC 9111 §3 + route rules)', () => {
  const c = clock();
  const P = policyClass(c.now);
  const withStatuses = normaliseRouteCache({ enabled: true, 'default-ttl-secs': 600, 'stale-while-revalidate-secs': 30, 'stale-if-error-secs': 120, 'cacheable-status-codes': [200, 206, 302, 404] }, 'cache', []);
  const cases: { name: string; req?: ReturnType<typeof req>; status?: number; headers: Headers; store: boolean; reason?: string; lifetime?: number; swr?: number; sie?: number }[] = [
    { name: 'max-age', headers: { 'cache-control': 'max-age=60', date }, store: true, lifetime: 60, swr: 30, sie: 120 },
    { name: 's-maxage wins for a shared cache', headers: { 'cache-control': 'max-age=60, s-maxage=10', date }, store: true, lifetime: 10 },
    { name: 'Expires', headers: { expires: new Date(T0 + 90_000).toUTCString(), date }, store: true, lifetime: 90 },
    { name: 'Expires in the past', headers: { expires: new Date(T0 - 90_000).toUTCString(), date, etag: '"e"' }, store: true, lifetime: 0 },
    { name: 'no-store', headers: { 'cache-control': 'no-store, max-age=60' }, store: false, reason: 'no-store' },
    { name: 'request no-store', req: req({ 'cache-control': 'no-store' }), headers: { 'cache-control': 'max-age=60' }, store: false, reason: 'no-store' },
    { name: 'private', headers: { 'cache-control': 'private, max-age=60' }, store: false, reason: 'private' },
    { name: 'Set-Cookie', headers: { 'cache-control': 'public, max-age=60', 'set-cookie': 'sid=1' }, store: false, reason: 'set-cookie' },
    { name: 'Authorization without public', req: req({ authorization: 'Bearer x' }), headers: { 'cache-control': 'max-age=60' }, store: false, reason: 'authorization' },
    { name: 'Authorization with public', req: req({ authorization: 'Bearer x' }), headers: { 'cache-control': 'public, max-age=60', date }, store: true, lifetime: 60 },
    { name: 'Authorization with s-maxage', req: req({ authorization: 'Bearer x' }), headers: { 'cache-control': 's-maxage=5', date }, store: true, lifetime: 5 },
    { name: 'Cookie, no freshness: no heuristic', req: req({ cookie: 'sid=1' }), headers: { date }, store: false, reason: 'cookie' },
    { name: 'Cookie, Last-Modified only: no heuristic', req: req({ cookie: 'sid=1' }), headers: { date, 'last-modified': new Date(T0 - 1000_000).toUTCString() }, store: false, reason: 'cookie' },
    { name: 'Cookie with max-age', req: req({ cookie: 'sid=1' }), headers: { 'cache-control': 'max-age=60', date }, store: true, lifetime: 60 },
    { name: 'Cookie with public (heuristic)', req: req({ cookie: 'sid=1' }), headers: { 'cache-control': 'public', date }, store: true, lifetime: 600 },
    { name: 'Cookie, Vary: Cookie (keyed per cookie)', req: req({ cookie: 'sid=1' }), headers: { date, vary: 'Cookie' }, store: true, lifetime: 600 },
    { name: 'Vary: *', headers: { 'cache-control': 'max-age=60', vary: '*' }, store: false, reason: 'vary' },
    { name: 'POST', req: req({}, 'POST'), headers: { 'cache-control': 'max-age=60' }, store: false, reason: 'method' },
    { name: 'HEAD responses are not stored', req: req({}, 'HEAD'), headers: { 'cache-control': 'max-age=60' }, store: false, reason: 'method' },
    { name: '206 never', status: 206, headers: { 'cache-control': 'max-age=60' }, store: false, reason: 'range' },
    { name: 'Range request', req: req({ range: 'bytes=0-1' }), headers: { 'cache-control': 'max-age=60' }, store: false, reason: 'range' },
    { name: 'heuristic: no Last-Modified -> default-ttl', headers: { date }, store: true, lifetime: 600 },
    { name: 'heuristic: 10% of Last-Modified age', headers: { date, 'last-modified': new Date(T0 - 1000_000).toUTCString() }, store: true, lifetime: 100 },
    { name: 'heuristic capped by default-ttl', headers: { date, 'last-modified': new Date(T0 - 100_000_000).toUTCString() }, store: true, lifetime: 600 },
    { name: 'explicit wins over heuristic', headers: { date, 'cache-control': 'max-age=7', 'last-modified': new Date(T0 - 100_000_000).toUTCString() }, store: true, lifetime: 7 },
    { name: 'a status outside cacheable-status-codes', status: 500, headers: { 'cache-control': 'max-age=60' }, store: false, reason: 'status' },
    { name: 'no heuristic for a status that is not heuristically cacheable', status: 302, headers: { date }, store: false, reason: 'not-storable' },
    { name: 'explicit freshness makes a 302 storable', status: 302, headers: { date, 'cache-control': 'max-age=3' }, store: true, lifetime: 3 },
    { name: 'no-cache with a validator: stored, always revalidated, never served stale', headers: { 'cache-control': 'no-cache', etag: '"v1"' }, store: true, lifetime: 0, swr: 0, sie: 0 },
    { name: 'no-cache without a validator: useless', headers: { 'cache-control': 'no-cache' }, store: false, reason: 'zero-ttl' },
    { name: 'must-revalidate: no stale serving', headers: { 'cache-control': 'max-age=5, must-revalidate', date }, store: true, lifetime: 5, swr: 0, sie: 0 },
    { name: 'response stale-while-revalidate / stale-if-error win', headers: { 'cache-control': 'max-age=5, stale-while-revalidate=9, stale-if-error=11', date }, store: true, swr: 9, sie: 11 },
  ];
  for (const tc of cases) {
    const v = storeVerdict(tc.req ?? req(), { status: tc.status ?? 200, headers: tc.headers }, withStatuses, P);
    assert.equal(v.store, tc.store, `${tc.name}: ${JSON.stringify(v)}`);
    if (!v.store) assert.equal(v.reason, tc.reason, tc.name);
    else {
      if (tc.lifetime !== undefined) assert.ok(Math.abs(v.lifetime - tc.lifetime) < 0.01, `${tc.name}: lifetime ${v.lifetime}`);
      if (tc.swr !== undefined) assert.equal(v.swr, tc.swr, tc.name);
      if (tc.sie !== undefined) assert.equal(v.sie, tc.sie, tc.name);
    }
  }
});

test('cache-private: private responses are stored, Authorization still guarded', () => {
  const P = policyClass(clock().now);
  const priv = normaliseRouteCache({ enabled: true, 'cache-private': true }, 'c', []);
  assert.equal(storeVerdict(req(), { status: 200, headers: { 'cache-control': 'private, max-age=60' } }, priv, P).store, true);
  assert.equal(storeVerdict(req({ authorization: 'x' }), { status: 200, headers: { 'cache-control': 'private, max-age=60' } }, priv, P).store, false);
});

test('lookupVerdict: fresh, then stale-while-revalidate, then revalidate (stale-if-error window), with the injected clock', () => {
  const c = clock();
  const P = policyClass(c.now);
  const v = storeVerdict(req(), { status: 200, headers: { 'cache-control': 'max-age=10', date } }, settings, P);
  assert.ok(v.store);
  const at = (secs: number, h: Headers = {}) => {
    const cc = clock(T0 + secs * 1000);
    return lookupVerdict(v, h, policyClass(cc.now));
  };
  assert.equal(at(0).use, 'fresh');
  assert.equal(at(9).use, 'fresh');
  assert.equal(at(11).use, 'stale-while-revalidate'); // 10 + swr 30
  assert.deepEqual(at(41), { use: 'revalidate', age: 41, staleIfError: true }); // within 10 + sie 120
  assert.deepEqual(at(131), { use: 'revalidate', age: 131, staleIfError: false });
  // request directives
  assert.equal(at(1, { 'cache-control': 'no-cache' }).use, 'revalidate');
  assert.equal(at(1, { pragma: 'no-cache' }).use, 'revalidate');
  assert.equal(at(5, { 'cache-control': 'max-age=3' }).use, 'revalidate');
  assert.equal(at(5, { 'cache-control': 'max-age=6' }).use, 'fresh');
  // max-age=0 revalidates even at age 0 (the same millisecond as the store: CI saw it served fresh)
  assert.equal(at(0, { 'cache-control': 'max-age=0' }).use, 'revalidate');
  assert.equal(at(5, { 'cache-control': 'min-fresh=6' }).use, 'revalidate');
  assert.equal(at(45, { 'cache-control': 'max-stale=40' }).use, 'fresh');
  assert.equal(at(60, { 'cache-control': 'max-stale=40' }).use, 'revalidate');
});

test('lookupVerdict: an Age from upstream counts', () => {
  const P = policyClass(clock().now);
  const v = storeVerdict(req(), { status: 200, headers: { 'cache-control': 'max-age=10', age: '8', date } }, settings, P);
  assert.ok(v.store);
  assert.equal(lookupVerdict(v, {}, policyClass(clock(T0 + 3000).now)).use, 'stale-while-revalidate');
});

test('notModified: If-None-Match (weak compare, *), If-Modified-Since, precedence', () => {
  const stored = { etag: 'W/"v1"', 'last-modified': 'Wed, 01 Jan 2025 00:00:00 GMT' };
  const cases: [Headers, boolean][] = [
    [{ 'if-none-match': '"v1"' }, true],
    [{ 'if-none-match': '"v0", W/"v1"' }, true],
    [{ 'if-none-match': '*' }, true],
    [{ 'if-none-match': '"v2"' }, false],
    [{ 'if-modified-since': 'Wed, 01 Jan 2025 00:00:00 GMT' }, true],
    [{ 'if-modified-since': 'Tue, 31 Dec 2024 00:00:00 GMT' }, false],
    [{ 'if-modified-since': 'garbage' }, false],
    // If-None-Match wins even when If-Modified-Since would say 304
    [{ 'if-none-match': '"v2"', 'if-modified-since': 'Thu, 01 Jan 2026 00:00:00 GMT' }, false],
    [{}, false],
  ];
  for (const [h, want] of cases) assert.equal(notModified(h, stored), want, JSON.stringify(h));
  assert.equal(notModified({ 'if-none-match': '"v1"' }, {}), false);
});

test('revalidation: conditional headers, 304 refresh merges headers and keeps the body framing', () => {
  assert.deepEqual(revalidationHeaders({ etag: '"a"', 'last-modified': 'x' }), { 'if-none-match': '"a"', 'if-modified-since': 'x' });
  assert.deepEqual(revalidationHeaders({}), {});
  const stored = { etag: '"a"', 'content-length': '5', 'content-type': 'text/plain', 'cache-control': 'max-age=1', age: '30', 'x-old': '1' };
  const merged = refreshHeaders(stored, { etag: '"a"', 'cache-control': 'max-age=100', 'content-length': '0', connection: 'keep-alive' });
  assert.deepEqual(merged, { etag: '"a"', 'content-length': '5', 'content-type': 'text/plain', 'cache-control': 'max-age=100', 'x-old': '1' });
  assert.equal(refreshHeaders(stored, { etag: '"b"' }), undefined);
  assert.deepEqual(storableHeaders({ connection: 'x-hop', 'x-hop': '1', 'transfer-encoding': 'chunked', a: 'b', 'x-correlation-id': 'id' }), { a: 'b' });
});

test('ageOf computes what http-cache-semantics age() does, without rebuilding the policy', () => {
  for (const [headers, later] of [[{ 'cache-control': 'max-age=10', date }, 0], [{ 'cache-control': 'max-age=10', age: '8', date }, 3500], [{ 'cache-control': 'max-age=10', age: 'junk', date }, 12_345]] as const) {
    const v = storeVerdict(req(), { status: 200, headers }, settings, policyClass(clock().now));
    assert.ok(v.store);
    const P = policyClass(clock(T0 + later).now);
    assert.equal(ageOf(v, P), P.fromObject(v.policy).age());
  }
});
