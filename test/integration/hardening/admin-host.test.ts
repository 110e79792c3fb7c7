// DNS rebinding against the admin surfaces (session 14 audit): a page the operator opens on
// evil.example can make its name resolve to 127.0.0.1 after the page loaded; the browser then
// sends same-origin requests to the loopback admin listener with `Host: evil.example:9090` and
// reads the answers (the status page's JSON, the config and upstream dumps, the metrics) or
// purges the cache. Binding to loopback stops other hosts, not other origins in a local browser.
// State-revealing builtins therefore answer only a Host that names this machine (an IP literal,
// `localhost`, `*.localhost`) or one the route names itself in a `host` condition.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startGateway, type Gateway } from '../../../src/server/gateway.ts';
import { rawRequest, http1 } from '../../helpers/raw-http.ts';
import { freePort } from '../../helpers/ports.ts';

let gw: Gateway;
let port: number;
let metricsPort: number;

before(async () => {
  metricsPort = await freePort();
  gw = await startGateway({
    logLevel: 'silent',
    configText: `
listeners { listener "admin" { address "127.0.0.1:0"; default-route "status" } }
observability { metrics { address "127.0.0.1:${metricsPort}" } }
routes {
  route "status-page" { matches { path-prefix "/_/status" }; builtin-handler "status-page" }
  route "config" { matches { path-prefix "/admin/config" }; builtin-handler "config" }
  route "upstreams" { matches { path "/admin/upstreams" }; builtin-handler "upstreams" }
  route "metrics" { matches { path "/metrics" }; builtin-handler "metrics" }
  route "stats" { matches { path "/admin/cache/stats" }; builtin-handler "cache-stats" }
  route "purge" { matches { path-prefix "/admin/cache/purge" }; builtin-handler "cache-purge" }
  route "named" { matches { path "/named/config"; host "admin.internal" }; builtin-handler "config" }
  route "status" { priority "low"; builtin-handler "status" }
}`,
  });
  port = gw.address('admin').port;
});

after(async () => {
  await gw.close();
});

const STATEFUL = ['/_/status?format=json', '/_/status', '/admin/config', '/admin/upstreams', '/metrics', '/admin/cache/stats', '/admin/cache/purge/x'];

test('a rebound name gets no admin answer: 421, nothing of the state', async () => {
  for (const host of ['evil.example', `evil.example:${port}`, 'evil.example.', 'localhost.evil.example', '127.0.0.1.nip.io']) {
    for (const path of STATEFUL) {
      const r = await rawRequest(port, http1('GET', path, [`Host: ${host}`, 'Connection: close']));
      assert.equal(r.status, 421, `${host} ${path}: ${r.body.slice(0, 80)}`);
      assert.doesNotMatch(r.body, /listeners|upstreams|sentinel_|routes|purged/, `${host} ${path}`);
      assert.equal(JSON.parse(r.body).error, 'Misdirected Request');
    }
  }
  const status = await rawRequest(port, http1('GET', '/', ['Host: evil.example', 'Connection: close']));
  assert.equal(status.status, 200);
  assert.equal(JSON.parse(status.body).version, undefined, 'the status builtin keeps its details to local names');
});

test('names of this machine and the route\'s own host condition are answered', async () => {
  for (const host of ['127.0.0.1', `127.0.0.1:${port}`, `localhost:${port}`, 'LOCALHOST', `[::1]:${port}`, 'admin.localhost']) {
    for (const path of STATEFUL.filter((p) => !p.includes('cache'))) {
      const r = await rawRequest(port, http1('GET', path, [`Host: ${host}`, 'Connection: close']));
      assert.equal(r.status, 200, `${host} ${path}`);
    }
    const status = await rawRequest(port, http1('GET', '/', [`Host: ${host}`, 'Connection: close']));
    assert.ok(JSON.parse(status.body).version, `${host}: status details`);
  }
  const named = await rawRequest(port, http1('GET', '/named/config', ['Host: admin.internal', 'Connection: close']));
  assert.equal(named.status, 200, 'a host the route names itself');
  assert.ok(JSON.parse(named.body).listeners);
});

test('the cache purge takes no safe method and no request another origin\'s page sends (CSRF)', async () => {
  const get = await rawRequest(port, http1('GET', '/admin/cache/purge/x', ['Host: 127.0.0.1', 'Connection: close']));
  assert.equal(get.status, 405);
  assert.equal(get.headers.allow, 'POST, PURGE, DELETE');
  for (const h of ['Origin: http://evil.example', 'Sec-Fetch-Site: cross-site', 'Origin: null']) {
    const r = await rawRequest(port, http1('POST', '/admin/cache/purge/x', ['Host: 127.0.0.1', h, 'Content-Length: 0', 'Connection: close']));
    assert.equal(r.status, 403, h);
  }
  const metrics = await rawRequest(port, http1('GET', '/metrics', ['Host: 127.0.0.1', 'Connection: close']));
  assert.match(metrics.body, /sentinel_blocked_requests_total\{reason="cache_purge_denied"\} 4\b/, 'counted as a refused PURGE');
  // a tool (no browser headers) and the admin's own page are answered
  for (const h of [[], ['Origin: http://127.0.0.1', 'Sec-Fetch-Site: same-origin']]) {
    const r = await rawRequest(port, http1('POST', '/admin/cache/purge/x', ['Host: 127.0.0.1', ...h, 'Content-Length: 0', 'Connection: close']));
    assert.equal(r.status, 200, h.join(' '));
    assert.equal(JSON.parse(r.body).purged_entries, 0);
  }
});

test('the standalone metrics listener answers only a Host that names this machine', async () => {
  for (const host of ['evil.example', `evil.example:${metricsPort}`, 'sentinel.monitoring.svc']) {
    const r = await rawRequest(metricsPort, http1('GET', '/metrics', [`Host: ${host}`, 'Connection: close']));
    assert.equal(r.status, 421, host);
    assert.doesNotMatch(r.body, /sentinel_/, host);
  }
  for (const host of [`127.0.0.1:${metricsPort}`, `localhost:${metricsPort}`]) {
    const r = await rawRequest(metricsPort, http1('GET', '/metrics', [`Host: ${host}`, 'Connection: close']));
    assert.equal(r.status, 200, host);
    assert.match(r.body, /sentinel_/, host);
  }
});
