import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startUpstream, type TestUpstream } from '../../helpers/upstream.ts';
import { gatewayFrom } from '../../helpers/gateway.ts';
import { request } from '../../helpers/http.ts';
import type { Gateway } from '../../../src/server/gateway.ts';

let up: TestUpstream;
let gw: Gateway;
let base: string;

before(async () => {
  up = await startUpstream((req, res, body) => {
    if (req.url === '/big') {
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      // 1 MiB in 64 KiB chunks: the gateway must stream it through.
      let n = 0;
      const write = () => {
        while (n < 16) {
          n++;
          if (!res.write(Buffer.alloc(65536, 97))) return res.once('drain', write);
        }
        res.end();
      };
      write();
      return;
    }
    const payload = JSON.stringify({ method: req.method, url: req.url, bytes: body.length, sha: body.toString('base64').slice(0, 16) });
    res.writeHead(200, { 'content-type': 'application/json', connection: 'keep-alive, x-hop', 'x-hop': 'secret', 'set-cookie': ['a=1', 'b=2'] });
    res.end(payload);
  });
  const g = await gatewayFrom(`
system { graceful-shutdown-timeout-secs 2 }
listeners { listener "http" { address "127.0.0.1:0"; default-route "fallback" } }
routes {
  route "api" {
    priority "high"
    matches { path-prefix "/api" }
    upstream "backend"
    policies {
      request-headers { set { X-Api "v1" }; remove "X-Remove-Me"; rename { X-Old "X-New" } }
      response-headers { set { X-Frame-Options "DENY" }; remove "X-Powered-By" }
    }
  }
  route "big" { matches { path "/big" }; upstream "backend" }
  route "status" { matches { path "/status" }; builtin-handler "status" }
  route "health" { matches { path "/health" }; builtin-handler "health" }
  route "metrics" { matches { path "/metrics" }; builtin-handler "metrics" }
  route "config" { matches { path "/admin/config" }; builtin-handler "config" }
  route "upstreams" { matches { path "/admin/upstreams" }; builtin-handler "upstreams" }
  route "fallback" { priority "low"; matches { path "/never" }; builtin-handler "not-found" }
}
upstreams { upstream "backend" { target "${up.address}" } }
`);
  gw = g.gw;
  base = g.url();
});

after(async () => {
  await gw.close();
  await up.close();
});

test('GET is proxied with forwarding headers, policies and a correlation id', async () => {
  const r = await request(`${base}/api/users?x=1`, { headers: { 'x-remove-me': '1', 'x-old': 'o', connection: 'keep-alive, x-drop', 'x-drop': 'd' } });
  assert.equal(r.status, 200);
  assert.deepEqual(JSON.parse(r.body), { method: 'GET', url: '/api/users?x=1', bytes: 0, sha: '' });
  const seen = up.seen.at(-1)!;
  assert.equal(seen.headers['x-api'], 'v1');
  assert.equal(seen.headers['x-remove-me'], undefined);
  assert.equal(seen.headers['x-new'], 'o');
  assert.equal(seen.headers['x-drop'], undefined, 'Connection-listed header stripped');
  assert.equal(seen.headers['x-forwarded-for'], '127.0.0.1');
  assert.equal(seen.headers['x-forwarded-proto'], 'http');
  assert.ok(seen.headers['x-forwarded-host']);
  assert.equal(seen.headers['x-forwarded-by'], 'Sentinel');
  assert.match(String(r.headers['x-correlation-id']), /^[1-9A-HJ-NP-Za-km-z]{11}$/);
  assert.equal(seen.headers['x-correlation-id'], r.headers['x-correlation-id']);
  assert.equal(r.headers['x-frame-options'], 'DENY');
  assert.equal(r.headers['x-hop'], undefined, 'upstream Connection-listed header stripped');
  assert.deepEqual(r.headers['set-cookie'], ['a=1', 'b=2']);
});

test('an incoming X-Request-Id is reused end to end', async () => {
  const r = await request(`${base}/api/x`, { headers: { 'x-request-id': 'my-id-123' } });
  assert.equal(r.headers['x-correlation-id'], 'my-id-123');
  assert.equal(up.seen.at(-1)!.headers['x-correlation-id'], 'my-id-123');
});

test('POST bodies stream upstream byte for byte (content-length and chunked)', async () => {
  const body = Buffer.alloc(200_000, 7);
  const r = await request(`${base}/api/upload`, { method: 'POST', body, headers: { 'content-type': 'application/octet-stream' } });
  assert.equal(r.status, 200);
  assert.equal(JSON.parse(r.body).bytes, 200_000);
  assert.ok(up.seen.at(-1)!.body.equals(body));
  const chunked = await request(`${base}/api/upload`, { method: 'PUT', body: 'hello', headers: { 'transfer-encoding': 'chunked' } });
  assert.equal(JSON.parse(chunked.body).bytes, 5);
});

test('large responses stream through', async () => {
  const r = await request(`${base}/big`);
  assert.equal(r.status, 200);
  assert.equal(r.body.length, 1024 * 1024);
});

test('no matching route: listener default route, else JSON 404', async () => {
  const r = await request(`${base}/nothing-here`);
  assert.equal(r.status, 404);
  const j = JSON.parse(r.body);
  assert.equal(j.status, 404);
  assert.equal(j.error, 'Not Found');
  assert.ok(j.request_id);
});

test('builtin handlers answer with Sentinel shapes', async () => {
  const health = await request(`${base}/health`);
  assert.equal(health.status, 200);
  assert.equal(JSON.parse(health.body).status, 'healthy');
  assert.match(String(health.headers['cache-control']), /no-cache/);
  assert.ok(health.headers['x-request-id']);
  const status = JSON.parse((await request(`${base}/status`)).body);
  assert.equal(status.status, 'ok');
  assert.equal(typeof status.uptime_secs, 'number');
  const metrics = await request(`${base}/metrics`);
  assert.match(String(metrics.headers['content-type']), /text\/plain; version=0.0.4/);
  assert.match(metrics.body, /sentinel_up 1/);
  assert.match(metrics.body, /sentinel_build_info\{version="[^"]+"/);
  assert.match(metrics.body, /sentinel_requests_total\{route="api",method="GET",status="200"\} \d+/);
  assert.match(metrics.body, /sentinel_request_duration_seconds_bucket/);
  const config = JSON.parse((await request(`${base}/admin/config`)).body);
  assert.equal(config.routes.length, 8);
  const ups = JSON.parse((await request(`${base}/admin/upstreams`)).body);
  assert.equal(ups.summary.total_upstreams, 1);
  assert.equal(ups.summary.total_targets, 1);
});

test('liveness and readiness probes', async () => {
  const live = await request(`${base}/_/health`);
  assert.equal(live.status, 200);
  const ready = await request(`${base}/_/ready`);
  assert.equal(ready.status, 200);
  assert.equal(JSON.parse(ready.body).status, 'ready');
});

test('websocket upgrades are refused on routes without websocket #true', async () => {
  const r = await request(`${base}/api/ws`, { headers: { connection: 'Upgrade', upgrade: 'websocket' } });
  assert.equal(r.status, 403);
  assert.equal(r.body, 'WebSocket not enabled for this route');
});

test('the status route shows a welcome page to browsers and JSON to API clients', async () => {
  const html = await request(`${base}/status`, { headers: { accept: 'text/html,application/xhtml+xml' } });
  assert.match(String(html.headers['content-type']), /text\/html/);
  assert.match(html.body, /Sentinel is running/);
  const json = await request(`${base}/status`, { headers: { accept: 'application/json' } });
  assert.equal(JSON.parse(json.body).status, 'ok');
});
