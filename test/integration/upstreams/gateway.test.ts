// Upstream features end to end through the real gateway: HTTP/2 + TLS to the backend, sticky
// cookies reaching the client, POST failover after a refused connection, 503 when no target is
// usable, and the upstreams builtin / metrics.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import { gatewayFrom } from '../../helpers/gateway.ts';
import { request } from '../../helpers/http.ts';
import type { Gateway } from '../../../src/server/gateway.ts';
import { startServer, type TestServer } from './helpers.ts';
import { makePki, type Pki } from './pki.ts';
import { closeServer } from '../../helpers/upstream.ts';

let pki: Pki;
let h2server: http2.Http2SecureServer;
let h2port: number;
const servers: TestServer[] = [];
let gw: Gateway;
let base: string;
let deadPort: number;

before(async () => {
  pki = makePki();
  h2server = http2.createSecureServer({ key: pki.read('serverKey'), cert: pki.read('serverCert') }, (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => res.end(JSON.stringify({ version: req.httpVersion, method: req.method, body: Buffer.concat(chunks).toString() })));
  });
  await new Promise<void>((r) => h2server.listen(0, '127.0.0.1', r));
  h2port = (h2server.address() as AddressInfo).port;
  for (const name of ['s1', 's2']) {
    servers.push(
      await startServer((req, res) => {
        req.resume();
        req.on('end', () => res.end(`${name} ${req.method}`));
      }),
    );
  }
  const dead = await startServer(() => undefined);
  deadPort = dead.port;
  await dead.close();
  const g = await gatewayFrom(
    `
system { graceful-shutdown-timeout-secs 1 }
listeners { listener "http" { address "127.0.0.1:0" } }
routes {
  route "upstreams" { priority "high"; matches { path "/admin/upstreams" }; builtin-handler "upstreams" }
  route "metrics" { priority "high"; matches { path "/metrics" }; builtin-handler "metrics" }
  route "h2" { matches { path-prefix "/h2" }; upstream "h2" }
  route "sticky" { matches { path-prefix "/sticky" }; upstream "sticky" }
  route "failover" { matches { path-prefix "/failover" }; upstream "failover" }
  route "down" { matches { path-prefix "/down" }; upstream "down" }
}
upstreams {
  upstream "h2" {
    target "127.0.0.1:${h2port}"
    tls { sni "backend.test"; ca-cert "ca.crt" }
    http-version { max-version 2 }
  }
  upstream "sticky" {
    ${servers.map((s) => `target "${s.address}"`).join('\n    ')}
    load-balancing "sticky" { cookie-name "SRV" }
  }
  upstream "failover" {
    target "127.0.0.1:${deadPort}"
    ${servers.map((s) => `target "${s.address}"`).join('\n    ')}
    load-balancing "round-robin"
  }
  upstream "down" {
    target "127.0.0.1:${deadPort}"
    circuit-breaker { failure-threshold 1; timeout-seconds 60 }
  }
}
`,
    { baseDir: pki.dir },
  );
  gw = g.gw;
  base = g.url();
});

after(async () => {
  await gw?.close();
  await Promise.all(servers.map((s) => s.close()));
  await closeServer(h2server);
  pki.cleanup();
});

test('HTTP/2 over TLS to the upstream, request body included', async () => {
  const r = await request(`${base}/h2/echo`, { method: 'POST', body: 'hello h2', headers: { 'content-type': 'text/plain', connection: 'keep-alive' } });
  assert.equal(r.status, 200, r.body);
  assert.deepEqual(JSON.parse(r.body), { version: '2.0', method: 'POST', body: 'hello h2' });
});

test('sticky cookie: assigned once, then honoured', async () => {
  const first = await request(`${base}/sticky/a`);
  assert.equal(first.status, 200);
  const cookie = String(first.headers['set-cookie']);
  assert.match(cookie, /^SRV=[0-9a-z]+; Path=\/; HttpOnly/);
  const token = cookie.split(';')[0]!;
  const served = new Set<string>();
  for (let i = 0; i < 6; i++) {
    const r = await request(`${base}/sticky/a`, { headers: { cookie: token } });
    assert.equal(r.headers['set-cookie'], undefined);
    served.add(r.body);
  }
  assert.deepEqual([...served], [first.body]);
});

test('a refused connection fails over to another target, even for POST', async () => {
  for (let i = 0; i < 6; i++) {
    const r = i % 2 ? await request(`${base}/failover/x`, { method: 'POST', body: 'payload', headers: { 'content-type': 'text/plain' } }) : await request(`${base}/failover/x`);
    assert.equal(r.status, 200, r.body);
    assert.match(r.body, /^s[12] (GET|POST)$/);
  }
});

test('no usable target: 502/503 first (the retry finds the breaker open), then 503; the body never names the address', async () => {
  const first = await request(`${base}/down`);
  assert.ok([502, 503].includes(first.status), String(first.status));
  const second = await request(`${base}/down`);
  assert.equal(second.status, 503);
  for (const r of [first, second]) assert.ok(!r.body.includes(String(deadPort)), r.body);
});

test('upstreams builtin and metrics expose health, breakers and pools', async () => {
  const r = await request(`${base}/admin/upstreams`);
  assert.equal(r.status, 200);
  const body = JSON.parse(r.body) as { upstreams: { id: string; load_balancing: string; targets: { status: string; circuit_breaker: string }[] }[] };
  const down = body.upstreams.find((u) => u.id === 'down')!;
  assert.equal(down.targets[0]!.status, 'unhealthy');
  assert.equal(down.targets[0]!.circuit_breaker, 'open');
  assert.equal(body.upstreams.find((u) => u.id === 'sticky')!.load_balancing, 'sticky');
  const m = await request(`${base}/metrics`);
  assert.match(m.body, new RegExp(`sentinel_circuit_breaker_state\\{component="upstream:down:127\\.0\\.0\\.1:${deadPort}",route=""\\} 1`));
  assert.match(m.body, /# TYPE sentinel_connection_pool_size gauge/);
});
