// Vary keyed on what the upstream received (session 18 audit, docs/security.md "Session 18 audit"):
// the identity headers the gateway writes and a filter's header operations are what the upstream
// answers for, so a variant is keyed on them, not on what the client sent. Two clients on
// different loopback addresses against a real gateway and a recording upstream.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { startUpstream, type TestUpstream } from '../../helpers/upstream.ts';
import { gatewayFrom } from '../../helpers/gateway.ts';
import type { Gateway } from '../../../src/server/gateway.ts';
import { until } from '../../helpers/until.ts';

let up: TestUpstream;
let gw: Gateway;
let port: number;

before(async () => {
  // an answer personalised by the address the gateway wrote (geo, "your IP"), or by a header a
  // filter set, cacheable for a minute
  up = await startUpstream((req, res) => {
    const h = req.headers;
    const vary = req.url!.startsWith('/xff') ? 'X-Forwarded-For' : req.url!.startsWith('/real') ? 'X-Real-IP' : req.url!.startsWith('/tier') ? 'X-Tier' : 'X-Correlation-Id';
    const body = JSON.stringify({ xff: h['x-forwarded-for'], real: h['x-real-ip'], tier: h['x-tier'] });
    res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'public, max-age=60', vary, 'content-length': Buffer.byteLength(body) });
    res.end(body);
  });
  gw = (
    await gatewayFrom(`
system { graceful-shutdown-timeout-secs 1 }
listeners { listener "http" { address "127.0.0.1:0" } }
filters { filter "tier" { type "headers"; set { "x-tier" "gold" } } }
routes { route "main" { matches { path-prefix "/" }; upstream "backend"; filters "tier"; cache { enabled #true } } }
upstreams { upstream "backend" { target "${up.address}" } }
cache { enabled #true; status-header #true }
`)
  ).gw;
  port = gw.address('http').port;
});

after(async () => {
  await gw?.close();
  await up?.close();
});

function get(path: string, from: string, headers: Record<string, string> = {}): Promise<{ body: Record<string, unknown>; cache: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path, localAddress: from, headers: { host: 'shop.example', connection: 'close', ...headers } }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => resolve({ body: JSON.parse(text) as Record<string, unknown>, cache: String(res.headers['cache-status'] ?? '') }));
    });
    req.on('error', reject);
  });
}

test('Vary: X-Forwarded-For / X-Real-IP: a client never gets the variant the gateway wrote for another address', async () => {
  for (const [path, field] of [['/xff', 'xff'], ['/real', 'real']] as const) {
    const a = await get(path, '127.0.0.2');
    assert.equal(a.body[field], '127.0.0.2');
    // the victim sends no such header either: before the fix both keyed on "none"
    const b = await get(path, '127.0.0.1');
    assert.equal(b.body[field], '127.0.0.1', `${path}: ${JSON.stringify(b.body)} (${b.cache})`);
    // a spoofed header is replaced before the upstream, so it selects nothing either
    const c = await get(path, '127.0.0.1', { 'x-forwarded-for': '127.0.0.2', 'x-real-ip': '127.0.0.2' });
    assert.equal(c.body[field], '127.0.0.1', `${path} spoofed: ${JSON.stringify(c.body)} (${c.cache})`);
    // the same address reuses its own variant
    assert.match((await get(path, '127.0.0.2')).cache, /; hit/);
  }
});

test("Vary on a header a filter set: keyed on the filter's value, so clients that sent other values share the one answer", async () => {
  const a = await get('/tier', '127.0.0.1', { 'x-tier': 'free' });
  assert.equal(a.body.tier, 'gold');
  const b = await get('/tier', '127.0.0.1', { 'x-tier': 'other' });
  assert.match(b.cache, /; hit/, `the upstream got the same x-tier: ${b.cache}`);
  assert.equal(up.seen.filter((r) => r.url === '/tier').length, 1);
});

test('Vary on a header the gateway writes per request (X-Correlation-Id) is not stored: it could never be reused', async () => {
  await get('/corr', '127.0.0.1');
  const again = await get('/corr', '127.0.0.1');
  assert.doesNotMatch(again.cache, /; hit|stored/, again.cache);
});

test("a stale-while-revalidate background refresh gets the route's request-headers policy, as a miss does", async () => {
  const origin = await startUpstream((req, res) => {
    // stored already stale (Age beyond max-age): the next request is served stale and refreshed
    res.writeHead(200, { 'content-type': 'text/plain', 'cache-control': 'public, max-age=10, stale-while-revalidate=60', age: '11', 'content-length': 2 });
    res.end('ok');
  });
  const g = (
    await gatewayFrom(`
system { graceful-shutdown-timeout-secs 1 }
listeners { listener "http" { address "127.0.0.1:0" } }
routes { route "main" { matches { path-prefix "/" }; upstream "backend"; cache { enabled #true }; policies { request-headers { set { "X-Internal-Token" "s3cret" } } } } }
upstreams { upstream "backend" { target "${origin.address}" } }
cache { enabled #true; status-header #true }
`)
  ).gw;
  try {
    const p = g.address('http').port;
    const once = () => new Promise<void>((resolve, reject) => http.get({ host: '127.0.0.1', port: p, path: '/swr', headers: { connection: 'close' } }, (res) => res.resume().on('end', resolve)).on('error', reject));
    await once();
    await once(); // stale: answered from the entry, refreshed in the background
    await until('the background refresh at the upstream', () => origin.seen.length >= 2);
    assert.equal(origin.seen.length, 2, 'one background refresh reached the upstream');
    assert.deepEqual(origin.seen.map((r) => r.headers['x-internal-token']), ['s3cret', 's3cret']);
  } finally {
    await g.close();
    await origin.close();
  }
});

// Session 19 audit: the route's request-headers policy applies after the cache filter, so a key
// read before it selected entries stored for other upstream headers. The keys are now read from
// the headers with the policy applied, as the upstream gets them.
test("the keys read the headers with the route's request-headers policy applied: no other client's variant, no poisoned entry", async () => {
  const origin = await startUpstream((req, res) => {
    const h = req.headers;
    const vary = req.url!.startsWith('/tenant') ? 'X-Tenant' : req.url!.startsWith('/lang') ? 'Accept-Language' : '';
    const body = JSON.stringify({ tenant: h['x-tenant'], host: h['x-forwarded-host'], lang: h['accept-language'] });
    res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'public, max-age=60', ...(vary ? { vary } : {}), 'content-length': Buffer.byteLength(body) });
    res.end(body);
  });
  const g = (
    await gatewayFrom(`
system { graceful-shutdown-timeout-secs 1 }
listeners { listener "http" { address "127.0.0.1:0" } }
routes {
  route "tenant" { matches { path-prefix "/tenant" }; upstream "backend"; cache { enabled #true }; policies { request-headers { rename { X-Client-Tenant "X-Tenant" } } } }
  route "lang" { matches { path-prefix "/lang" }; upstream "backend"; cache { enabled #true }; policies { request-headers { remove "Accept-Language" } } }
  route "links" { matches { path-prefix "/links" }; upstream "backend"; cache { enabled #true }; policies { request-headers { rename { X-Client-Host "X-Forwarded-Host" } } } }
}
upstreams { upstream "backend" { target "${origin.address}" } }
cache { enabled #true; status-header #true }
`)
  ).gw;
  const was = port;
  port = g.address('http').port;
  try {
    // Vary'd header the policy writes: acme's variant is stored under X-Tenant: acme (what the
    // upstream got); a client whose own X-Tenant says acme but whose upstream request says globex
    // must not get it
    assert.equal((await get('/tenant', '127.0.0.1', { 'x-client-tenant': 'acme' })).body.tenant, 'acme');
    const other = await get('/tenant', '127.0.0.1', { 'x-tenant': 'acme', 'x-client-tenant': 'globex' });
    assert.equal(other.body.tenant, 'globex', `served another tenant's variant (${other.cache})`);
    // URL-shaping header the policy writes: the entry is keyed on it, so a plain request does not
    // get links to the host another client chose
    assert.equal((await get('/links', '127.0.0.1', { 'x-client-host': 'evil.example' })).body.host, 'evil.example');
    const plain = await get('/links', '127.0.0.1');
    assert.equal(plain.body.host, 'shop.example', `poisoned entry served (${plain.cache})`);
    // a Vary'd header the policy removes: every client's upstream request is the same, one entry
    await get('/lang', '127.0.0.1', { 'accept-language': 'fr' });
    assert.match((await get('/lang', '127.0.0.1', { 'accept-language': 'de' })).cache, /; hit/);
  } finally {
    port = was;
    await g.close();
    await origin.close();
  }
});
