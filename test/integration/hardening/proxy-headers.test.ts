// Session 22 audit, open since session 21: the proxy-only headers (X-Forwarded-Host, -Proto, -Port,
// Forwarded, True-Client-IP ...) from a trusted proxy reached the upstream as the client sent them.
// A proxy that does not write one itself (AWS ALB, GCP and Cloudflare write X-Forwarded-Proto but no
// X-Forwarded-Host or Forwarded) passes the client's value on: `X-Forwarded-Host: evil.example`
// became the host an application builds its password-reset links from. And from any peer, the
// stages before the upstream (route `header` conditions, agents, the WAF) read the client's value
// while the upstream got the gateway's. Now the front door normalises them once: a trusted proxy
// keeps the names `system { trusted-proxy-headers }` lists (default X-Forwarded-Proto and -Port),
// one well-formed value each; everything else is removed and the gateway writes its own.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startUpstream, type TestUpstream } from '../../helpers/upstream.ts';
import { gatewayFrom, simpleConfig } from '../../helpers/gateway.ts';
import { rawRequest, http1 } from '../../helpers/raw-http.ts';
import { configErrors } from '../../helpers/config-diagnostics.ts';
import type { Gateway } from '../../../src/server/gateway.ts';

let up: TestUpstream;
let byDefault: Gateway;
let listed: Gateway;
let untrusted: Gateway;

const proxyRoute = `route "https-only" { matches { path-prefix "/"; header "X-Forwarded-Proto" "https" }; upstream "backend"; priority 100; allow-from "10.9.9.9" }`;

before(async () => {
  up = await startUpstream();
  byDefault = (await gatewayFrom(simpleConfig(up.address, { top: 'system { trusted-proxies "127.0.0.1" "::1"; graceful-shutdown-timeout-secs 1 }' }).replace('system { graceful-shutdown-timeout-secs 2 }', ''))).gw;
  listed = (
    await gatewayFrom(
      simpleConfig(up.address, { top: 'system { trusted-proxies "127.0.0.1" "::1"; trusted-proxy-headers "X-Forwarded-Proto" "x-forwarded-host" "forwarded" "cf-connecting-ip"; graceful-shutdown-timeout-secs 1 }' }).replace('system { graceful-shutdown-timeout-secs 2 }', ''),
    )
  ).gw;
  // a second route only for requests that say they came over https: an untrusted client's own
  // X-Forwarded-Proto must not choose it (the upstream would be told `http`)
  untrusted = (await gatewayFrom(simpleConfig(up.address).replace('routes {', `routes {\n  ${proxyRoute}`))).gw;
});

after(async () => {
  await byDefault.close();
  await listed.close();
  await untrusted.close();
  await up.close();
});

async function seen(gw: Gateway, headers: string[]): Promise<Record<string, string | string[] | undefined>> {
  const r = await rawRequest(gw.address('http').port, http1('GET', '/who', ['Host: shop.example', ...headers, 'Connection: close']));
  assert.equal(r.status, 200, headers.join('; '));
  return up.seen.at(-1)!.headers;
}

test('by default a trusted proxy keeps X-Forwarded-Proto and -Port only: a client behind it cannot choose the host, Forwarded or a client-IP header', async () => {
  const h = await seen(byDefault, ['X-Forwarded-For: 203.0.113.5', 'X-Forwarded-Proto: https', 'X-Forwarded-Port: 443', 'X-Forwarded-Host: evil.example', 'Forwarded: for=6.6.6.6;host=evil.example;proto=https', 'True-Client-IP: 6.6.6.6', 'CF-Connecting-IP: 6.6.6.6', 'X-Forwarded-Prefix: /evil']);
  assert.equal(h['x-forwarded-host'], 'shop.example', 'the Host the gateway saw, not the client\'s X-Forwarded-Host');
  assert.equal(h['x-forwarded-proto'], 'https');
  assert.equal(h['x-forwarded-port'], '443');
  for (const name of ['forwarded', 'true-client-ip', 'cf-connecting-ip', 'x-forwarded-prefix']) assert.equal(h[name], undefined, name);
  assert.equal(h['x-forwarded-for'], '203.0.113.5, 127.0.0.1');
  assert.equal(h['x-real-ip'], '203.0.113.5');
});

test('a kept header is one well-formed value, or the gateway writes its own (or none)', async () => {
  const table: [string, string, string | undefined][] = [
    ['X-Forwarded-Proto: https, http', 'x-forwarded-proto', 'http'],
    ['X-Forwarded-Proto: javascript', 'x-forwarded-proto', 'http'],
    ['X-Forwarded-Proto: HTTPS', 'x-forwarded-proto', 'https'],
    ['X-Forwarded-Port: 443, 80', 'x-forwarded-port', undefined],
    ['X-Forwarded-Port: 99999', 'x-forwarded-port', undefined],
  ];
  for (const [line, name, want] of table) assert.equal((await seen(byDefault, [line]))[name], want, line);
  // sent twice: Node joins the two into a list, which is not one value
  assert.equal((await seen(byDefault, ['X-Forwarded-Proto: https', 'X-Forwarded-Proto: http']))['x-forwarded-proto'], 'http');
});

test('trusted-proxy-headers lists what the proxy writes: kept when well formed, normalised', async () => {
  const table: [string, string, string | undefined][] = [
    ['X-Forwarded-Host: Public.Example.', 'x-forwarded-host', 'public.example'],
    ['X-Forwarded-Host: public.example:8443', 'x-forwarded-host', 'public.example:8443'],
    ['X-Forwarded-Host: public.example, evil.example', 'x-forwarded-host', 'shop.example'],
    ['X-Forwarded-Host: evil.example/reset?x=', 'x-forwarded-host', 'shop.example'],
    ['X-Forwarded-Host: user@evil.example', 'x-forwarded-host', 'shop.example'],
    ['Forwarded: for=192.0.2.60;proto=https;host=public.example', 'forwarded', 'for=192.0.2.60;proto=https;host=public.example'],
    ['Forwarded: for=192.0.2.60;host=evil.example/x', 'forwarded', undefined],
    ['Forwarded: host=a.example;host=evil.example', 'forwarded', undefined],
    ['Forwarded: proto=gopher', 'forwarded', undefined],
    ['CF-Connecting-IP: 198.51.100.7', 'cf-connecting-ip', '198.51.100.7'],
    ['True-Client-IP: 6.6.6.6', 'true-client-ip', undefined],
    ['X-Forwarded-Port: 443', 'x-forwarded-port', undefined],
  ];
  for (const [line, name, want] of table) assert.equal((await seen(listed, [line]))[name], want, line);
});

test('from an untrusted peer no stage reads a client\'s identity header: a route condition on X-Forwarded-Proto is not chosen by it', async () => {
  const port = untrusted.address('http').port;
  // the https-only route refuses everyone but 10.9.9.9: reaching it answers 403
  const r = await rawRequest(port, http1('GET', '/who', ['Host: shop.example', 'X-Forwarded-Proto: https', 'X-Forwarded-Host: evil.example', 'Connection: close']));
  assert.equal(r.status, 200, 'routed by the catch-all: the upstream is told http, so is the route match');
  const h = up.seen.at(-1)!.headers;
  assert.equal(h['x-forwarded-proto'], 'http');
  assert.equal(h['x-forwarded-host'], 'shop.example');
});

test('trusted-proxy-headers names only headers a proxy may keep', () => {
  const base = simpleConfig('127.0.0.1:1');
  for (const [name, message] of [
    ['x-forwarded-for', /always read/],
    ['X-Real-IP', /always the client address/],
    ['x-api-key', /not a header the gateway removes/],
  ] as const) {
    const errors = configErrors(`${base}\nsystem { trusted-proxy-headers "${name}" }`.replace('system { graceful-shutdown-timeout-secs 2 }', ''));
    assert.ok(errors.some((e) => message.test(e)), `${name}: ${errors.join('; ')}`);
  }
});
