// Issue #17 item 9: identity headers a client can forge must not reach the upstream as sent, and
// behind a trusted proxy the hop that connected to the gateway is appended to X-Forwarded-For.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startUpstream, type TestUpstream } from '../../helpers/upstream.ts';
import { gatewayFrom, simpleConfig } from '../../helpers/gateway.ts';
import { rawRequest, http1 } from '../../helpers/raw-http.ts';
import type { Gateway } from '../../../src/server/gateway.ts';

let up: TestUpstream;
let open: Gateway;
let behindProxy: Gateway;

before(async () => {
  up = await startUpstream();
  open = (await gatewayFrom(simpleConfig(up.address))).gw;
  behindProxy = (await gatewayFrom(simpleConfig(up.address, { top: 'system { trusted-proxies "127.0.0.1" "::1"; graceful-shutdown-timeout-secs 1 }' }).replace('system { graceful-shutdown-timeout-secs 2 }', ''))).gw;
});

after(async () => {
  await open.close();
  await behindProxy.close();
  await up.close();
});

const SPOOFED = [
  'X-Real-IP: 10.0.0.1',
  'Forwarded: for=10.0.0.1;host=internal.example.com;proto=https',
  'True-Client-IP: 10.0.0.1',
  'X-Client-IP: 10.0.0.1',
  'CF-Connecting-IP: 10.0.0.1',
  'X-Cluster-Client-IP: 10.0.0.1',
  'X-Original-URL: /admin',
  'X-Rewrite-URL: /admin',
  'X-Forwarded-For: 10.0.0.1',
  'X-Forwarded-Host: internal.example.com',
  'X-Forwarded-Proto: https',
  'X-Forwarded-Port: 443',
  'X-Forwarded-Prefix: /admin',
];

test('from an untrusted peer, spoofed identity and URL-override headers never reach the upstream', async () => {
  const r = await rawRequest(open.address('http').port, http1('GET', '/who', ['Host: public.example.com', ...SPOOFED, 'Connection: close']));
  assert.equal(r.status, 200);
  const h = up.seen.at(-1)!.headers;
  for (const name of ['forwarded', 'true-client-ip', 'x-client-ip', 'cf-connecting-ip', 'x-cluster-client-ip', 'x-original-url', 'x-rewrite-url', 'x-forwarded-port', 'x-forwarded-prefix']) {
    assert.equal(h[name], undefined, name);
  }
  assert.equal(h['x-real-ip'], '127.0.0.1');
  assert.equal(h['x-forwarded-for'], '127.0.0.1');
  assert.equal(h['x-forwarded-host'], 'public.example.com');
  assert.equal(h['x-forwarded-proto'], 'http');
});

test('behind a trusted proxy: X-Forwarded-Proto and -Port are kept, the rest replaced or removed, the proxy hop appended to X-Forwarded-For', async () => {
  const r = await rawRequest(behindProxy.address('http').port, http1('GET', '/who', ['Host: public.example.com', ...SPOOFED, 'Connection: close']));
  assert.equal(r.status, 200);
  const h = up.seen.at(-1)!.headers;
  // the client the proxy reported, then the proxy itself (the direct peer)
  assert.equal(h['x-forwarded-for'], '10.0.0.1, 127.0.0.1');
  assert.equal(h['x-real-ip'], '10.0.0.1');
  // session 22: kept only when system { trusted-proxy-headers } lists it (proxy-headers.test.ts)
  assert.equal(h.forwarded, undefined);
  assert.equal(h['x-forwarded-host'], 'public.example.com');
  assert.equal(h['x-forwarded-proto'], 'https');
  assert.equal(h['x-forwarded-port'], '443');
  // URL overrides are never forwarded, whoever sends them
  assert.equal(h['x-original-url'], undefined);
  assert.equal(h['x-rewrite-url'], undefined);
});

test('framework-internal headers a client can send are never forwarded (session 31 audit): Next.js x-middleware-subrequest, x-now-route-matches', async () => {
  // CVE-2025-29927: a Next.js application before 15.2.3 / 14.2.25 / 13.5.9 / 12.3.5 skips its
  // middleware (where its authentication lives) for a request carrying this header.
  // CVE-2024-46982: Vercel's internal x-now-route-matches made a Next.js page cacheable for everyone.
  const internal = ['x-middleware-subrequest: middleware:middleware:middleware:middleware:middleware', 'x-middleware-subrequest: src/middleware', 'X-Now-Route-Matches: 1'];
  for (const gw of [open, behindProxy]) {
    const r = await rawRequest(gw.address('http').port, http1('GET', '/dashboard', ['Host: public.example.com', ...internal, 'Connection: close']));
    assert.equal(r.status, 200);
    const h = up.seen.at(-1)!.headers;
    assert.equal(h['x-middleware-subrequest'], undefined);
    assert.equal(h['x-now-route-matches'], undefined);
  }
});
