// Probes of the session 20 audit (docs/security.md, "Session 20 audit"): cache keys and HEAD
// entries, an upgrade with a body, the admin builtins and CORS. Raw requests to a real gateway on
// loopback with a caching route and a WebSocket route.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { startUpstream, closeServer, type TestUpstream } from '../../helpers/upstream.ts';
import { gatewayFrom } from '../../helpers/gateway.ts';
import { rawExchange, rawRequest, http1 } from '../../helpers/raw-http.ts';
import type { Gateway } from '../../../src/server/gateway.ts';

let up: TestUpstream;
let ws: net.Server;
const wsSeen: string[] = [];
let gw: Gateway;
let port: number;

before(async () => {
  // cacheable answers: the last value of `p` as the application decodes the query (PHP, Rails)
  up = await startUpstream((req, res) => {
    const q = new URLSearchParams(req.url!.split('?')[1] ?? '');
    const body = `p=${q.getAll('p').at(-1) ?? ''} full`;
    res.writeHead(200, { 'content-type': 'text/plain', 'cache-control': 'public, max-age=60', 'content-length': Buffer.byteLength(body) });
    res.end(req.method === 'HEAD' ? undefined : body);
  });
  // records every request line it reads (an upgrade it never answers)
  ws = net.createServer((s) => {
    s.on('data', (c: Buffer) => {
      for (const m of c.toString('latin1').matchAll(/(?:^|\r\n)([A-Z]+ \S+) HTTP\/1\.1\r\n/g)) wsSeen.push(m[1]!);
    });
    s.on('error', () => {});
  });
  await new Promise<void>((r) => ws.listen(0, '127.0.0.1', r));
  gw = (
    await gatewayFrom(`
listeners { listener "http" { address "127.0.0.1:0" } }
routes {
  route "ws" { matches { path-prefix "/ws" }; upstream "ws"; websocket #true }
  route "main" { matches { path-prefix "/" }; upstream "app"; cache { enabled #true } }
}
upstreams {
  upstream "app" { target "${up.address}" }
  upstream "ws" { target "127.0.0.1:${(ws.address() as net.AddressInfo).port}" }
}
cache { enabled #true; status-header #true }
`)
  ).gw;
  port = gw.address('http').port;
});

after(async () => {
  await gw.close();
  await up.close();
  await closeServer(ws);
});

const get = (target: string, method = 'GET') => rawRequest(port, http1(method, target, ['Host: a', 'Connection: close']));

test('cache key: a query name spelled two ways (`p` and `%70`) keeps its values in order', async () => {
  // the application reads the last p: good for the first URL, evil for the second
  assert.equal((await get('/q?p=evil&%70=good')).body, 'p=good full');
  const victim = await get('/q?%70=good&p=evil');
  assert.equal(victim.body, 'p=evil full', `the second order is another answer (${victim.headers['cache-status']})`);
});

test('held: a HEAD miss never stores a bodiless entry a GET is answered from', async () => {
  const head = await rawExchange(port, http1('HEAD', '/h', ['Host: a', 'Connection: close']));
  assert.deepEqual(head.statuses, [200]);
  for (let i = 0; i < 2; i++) assert.equal((await get('/h')).body, 'p= full', `GET ${i}`);
  const again = await rawExchange(port, http1('HEAD', '/h', ['Host: a', 'Connection: close']));
  assert.match(again.text, /cache-status: [^\r]*hit/i, 'HEAD is answered from the GET entry');
  assert.doesNotMatch(again.text, /p= full/, 'without its body');
});

test('held: a WebSocket upgrade carrying a body is refused (get_body) and the bytes never reach the upstream', async () => {
  const smuggled = 'GET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n';
  const r = await rawExchange(
    port,
    http1('GET', '/ws', ['Host: a', 'Upgrade: websocket', 'Connection: Upgrade', 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==', 'Sec-WebSocket-Version: 13', `Content-Length: ${smuggled.length}`], smuggled),
  );
  assert.deepEqual(r.statuses, [400]);
  assert.deepEqual(wsSeen, []);
});

test('held: the admin builtins never grant a cross-origin read (no Access-Control-Allow-* on answers or preflights)', async () => {
  const admin = (
    await gatewayFrom(`
listeners { listener "admin" { address "127.0.0.1:0"; default-route "status" } }
routes {
  route "status-page" { matches { path-prefix "/_/status" }; builtin-handler "status-page" }
  route "config" { matches { path-prefix "/admin/config" }; builtin-handler "config" }
  route "upstreams" { matches { path "/admin/upstreams" }; builtin-handler "upstreams" }
  route "metrics" { matches { path "/metrics" }; builtin-handler "metrics" }
  route "stats" { matches { path "/admin/cache/stats" }; builtin-handler "cache-stats" }
  route "status" { priority "low"; builtin-handler "status" }
}
`)
  ).gw;
  try {
    const p = admin.address('admin').port;
    const host = `Host: 127.0.0.1:${p}`;
    for (const path of ['/_/status?format=json', '/_/status', '/admin/config', '/admin/upstreams', '/metrics', '/admin/cache/stats', '/']) {
      for (const origin of ['http://evil.example', 'null']) {
        const r = await rawRequest(p, http1('GET', path, [host, `Origin: ${origin}`, 'Connection: close']));
        assert.equal(r.status, 200, `${path} ${origin}`);
        assert.equal(Object.keys(r.headers).filter((h) => h.startsWith('access-control-')).length, 0, `${path} ${origin}: ${JSON.stringify(r.headers)}`);
      }
      const pre = await rawExchange(p, http1('OPTIONS', path, [host, 'Origin: http://evil.example', 'Access-Control-Request-Method: GET', 'Access-Control-Request-Headers: x-purge-wildcard', 'Connection: close']));
      assert.doesNotMatch(pre.text, /access-control-allow/i, `preflight ${path}`);
    }
  } finally {
    await admin.close();
  }
});
