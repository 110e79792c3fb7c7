// Header-name differentials (session 12 audit): what the gateway strips or keys on must be what
// the upstream reads. CGI-style servers (PHP-FPM, WSGI, Rack, Apache's CGI env) map `-` and `_` in
// a header name to the same variable (HTTP_X_FORWARDED_FOR), so `X_Forwarded_For` or
// `X-Internal_Token` would walk past the strip lists and be read as the real header; and
// X-HTTP-Method-Override makes frameworks act on another method than the one routed (and cached) on.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import { h2Request } from '../../helpers/http.ts';
import { startUpstream, type TestUpstream } from '../../helpers/upstream.ts';
import { gatewayFrom } from '../../helpers/gateway.ts';
import { rawRequest, http1 } from '../../helpers/raw-http.ts';
import type { Gateway } from '../../../src/server/gateway.ts';

let up: TestUpstream;
let open: Gateway;
let behindProxy: Gateway;

const config = (system: string) => `
system { graceful-shutdown-timeout-secs 1; ${system} }
listeners {
  listener "http" { address "127.0.0.1:0" }
  listener "h2c" { address "127.0.0.1:0"; protocol "h2" }
}
routes {
  route "keyed" { matches { path-prefix "/keyed" }; upstream "backend"; filters "per-key" }
  route "main" { priority "low"; matches { path-prefix "/" }; upstream "backend" }
}
upstreams { upstream "backend" { target "${up.address}" } }
filters { filter "per-key" { type "rate-limit"; max-rps 0.01; burst 1; key "header:X-Api-Key" } }
`;

before(async () => {
  up = await startUpstream();
  open = (await gatewayFrom(config(''))).gw;
  // the proxy writes the spellings of the last test itself (session 22: only listed names are kept)
  behindProxy = (await gatewayFrom(config('trusted-proxies "127.0.0.1" "::1"; trusted-proxy-headers "x-forwarded-scheme" "x-forwarded-protocol" "x-forwarded-uri" "x-forwarded-path" "x-original-host" "x-host"'))).gw;
});

after(async () => {
  await open.close();
  await behindProxy.close();
  await up.close();
});

const UNDERSCORED = ['X_Forwarded_For: 10.6.6.6', 'X-Real_IP: 10.6.6.6', 'X_Forwarded_Host: evil.example', 'X-Forwarded_Proto: https', 'X-Internal_Token: forged', 'Authorization_Internal: forged', 'X_Original_URL: /admin', 'True_Client_IP: 10.6.6.6', 'Client_IP: 10.6.6.6', 'X_Custom: v'];
const OVERRIDES = ['X-HTTP-Method-Override: DELETE', 'X-HTTP-Method: DELETE', 'X-Method-Override: DELETE'];

function assertClean(h: Record<string, unknown>, label: string): void {
  const names = Object.keys(h);
  assert.deepEqual(names.filter((n) => n.includes('_')), [], `${label}: no header name with '_' reaches the upstream`);
  for (const n of ['x-http-method-override', 'x-http-method', 'x-method-override']) assert.equal(h[n], undefined, `${label}: ${n}`);
}

for (const [label, gw] of [['untrusted peer', () => open] as const, ['trusted proxy', () => behindProxy] as const]) {
  test(`${label}: header names with '_' and method overrides never reach the upstream (HTTP/1.1)`, async () => {
    const n = up.seen.length;
    const r = await rawRequest(gw().address('http').port, http1('GET', '/who', ['Host: public.example.com', ...UNDERSCORED, ...OVERRIDES, 'X-Kept: yes', 'Connection: close']));
    assert.equal(r.status, 200);
    assert.equal(up.seen.length, n + 1);
    const seen = up.seen[n]!;
    assert.equal(seen.method, 'GET');
    assertClean(seen.headers, label);
    assert.equal(seen.headers['x-kept'], 'yes', 'other headers pass');
    assert.equal(seen.headers['x-forwarded-host'], 'public.example.com');
    if (label === 'untrusted peer') assert.equal(seen.headers['x-forwarded-for'], '127.0.0.1');
  });
}

test("HTTP/2: header names with '_' and method overrides never reach the upstream", async () => {
  const session = http2.connect(`http://127.0.0.1:${open.address('h2c').port}`);
  try {
    const n = up.seen.length;
    const headers: http2.OutgoingHttpHeaders = { ':path': '/who', ':authority': 'public.example.com', 'x-kept': 'yes' };
    for (const line of [...UNDERSCORED, ...OVERRIDES]) {
      const i = line.indexOf(':');
      headers[line.slice(0, i).toLowerCase()] = line.slice(i + 1).trim();
    }
    const { status } = await h2Request(session, headers);
    assert.equal(status, 200);
    const seen = up.seen[n]!;
    assertClean(seen.headers, 'h2');
    assert.equal(seen.headers['x-kept'], 'yes');
    assert.equal(seen.headers['x-forwarded-for'], '127.0.0.1');
  } finally {
    session.close();
  }
});

test("a header-keyed rate limit: X_Api_Key is neither a fresh bucket nor the upstream's key", async () => {
  const port = open.address('http').port;
  const get = (key: string) => rawRequest(port, http1('GET', '/keyed', ['Host: a', key, 'Connection: close']));
  assert.equal((await get('X-Api-Key: k1')).status, 200);
  assert.equal((await get('X-Api-Key: k1')).status, 429);
  // the underscore spelling is dropped: the request is keyless (its own bucket), and the upstream
  // never sees a key it could authenticate with
  const n = up.seen.length;
  assert.equal((await get('X_Api_Key: k1')).status, 200);
  assert.equal(up.seen[n]!.headers['x_api_key'], undefined);
  assert.equal((await get('X_Api_Key: k2')).status, 429, 'every underscore spelling lands in the one keyless bucket');
});

// Spellings frameworks read as the original scheme, host or URL (Rack: X-Forwarded-Scheme; Traefik
// and forward-auth servers: X-Forwarded-Uri; X-Host / X-Original-Host: known cache-poisoning
// vectors): from an untrusted peer they would be believed, since the upstream trusts the gateway.
test('scheme, host and URL spellings of the identity headers are dropped from an untrusted peer, kept from a trusted proxy that writes them', async () => {
  const sent = ['X-Forwarded-Scheme: https', 'X-Forwarded-Protocol: https', 'X-Forwarded-Uri: /admin', 'X-Forwarded-Path: /admin', 'X-Original-Host: evil.example', 'X-Host: evil.example'];
  const names = sent.map((l) => l.slice(0, l.indexOf(':')).toLowerCase());
  let n = up.seen.length;
  assert.equal((await rawRequest(open.address('http').port, http1('GET', '/who', ['Host: public.example.com', ...sent, 'Connection: close']))).status, 200);
  for (const name of names) assert.equal(up.seen[n]!.headers[name], undefined, `untrusted: ${name}`);
  n = up.seen.length;
  assert.equal((await rawRequest(behindProxy.address('http').port, http1('GET', '/who', ['Host: public.example.com', ...sent, 'Connection: close']))).status, 200);
  for (const name of names) assert.notEqual(up.seen[n]!.headers[name], undefined, `trusted: ${name}`);
});

// Connection-listed headers are removed at the front door, but X-Forwarded-For is what the client
// address is resolved from behind a trusted proxy: dropping it would make every such client the
// proxy itself (its rate-limit bucket, its allow-from network). Its upstream value is rebuilt anyway.
test('Connection: x-forwarded-for through a trusted proxy does not turn the client into the proxy', async () => {
  const n = up.seen.length;
  const r = await rawRequest(behindProxy.address('http').port, http1('GET', '/who', ['Host: a', 'X-Forwarded-For: 203.0.113.9', 'Connection: close, x-forwarded-for']));
  assert.equal(r.status, 200);
  assert.equal(up.seen[n]!.headers['x-real-ip'], '203.0.113.9', 'the resolved client');
  assert.equal(up.seen[n]!.headers['x-forwarded-for'], '203.0.113.9, 127.0.0.1');
});
