// Issue #17 items 2 and 6: absolute-form targets and Host spellings must not route around a
// host restriction, and the upstream must see the vhost the gateway routed on. Exact requests
// from the issue over raw sockets (and HTTP/2 for :authority).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import { h2Request } from '../../helpers/http.ts';
import { startUpstream, type TestUpstream } from '../../helpers/upstream.ts';
import { gatewayFrom } from '../../helpers/gateway.ts';
import { rawRequest, http1 } from '../../helpers/raw-http.ts';
import type { Gateway } from '../../../src/server/gateway.ts';

let up: TestUpstream;
let gw: Gateway;
let port: number;
let h2port: number;

before(async () => {
  up = await startUpstream();
  const g = await gatewayFrom(`
system { graceful-shutdown-timeout-secs 1 }
listeners {
  listener "http" { address "127.0.0.1:0"; default-route "fallback" }
  listener "h2c" { address "127.0.0.1:0"; protocol "h2"; default-route "fallback" }
}
routes {
  route "internal" { priority "high"; matches { host "internal.example.com"; path-prefix "/" }; builtin-handler "not-found" }
  route "admin" { priority "high"; matches { path-prefix "/admin" }; builtin-handler "not-found" }
  route "fallback" { priority "low"; matches { path-prefix "/" }; upstream "backend"; websocket #true }
}
upstreams { upstream "backend" { target "${up.address}" } }
`);
  gw = g.gw;
  port = gw.address('http').port;
  h2port = gw.address('h2c').port;
});

after(async () => {
  await gw.close();
  await up.close();
});

const send = (method: string, target: string, headers: string[]) => rawRequest(port, http1(method, target, [...headers, 'Connection: close']));

async function noUpstream<T>(fn: () => Promise<T>): Promise<T> {
  const n = up.seen.length;
  const out = await fn();
  assert.deepEqual(
    up.seen.slice(n).map((s) => `${s.headers.host} ${s.url}`),
    [],
    'nothing reached the upstream',
  );
  return out;
}

test('absolute-form: routed on its path and its authority, which replaces Host', async () => {
  await noUpstream(async () => {
    assert.equal((await send('GET', 'http://public.example.com/admin', ['Host: public.example.com'])).status, 404);
    // the URI's host wins over Host (RFC 9112 §3.2.2): this is the internal vhost
    assert.equal((await send('GET', 'http://internal.example.com/x', ['Host: public.example.com'])).status, 404);
    assert.equal((await send('GET', 'HTTP://INTERNAL.example.com.:80/x', ['Host: public.example.com'])).status, 404);
  });
  const r = await send('GET', 'http://public.example.com:8080/x/../y?q=1', ['Host: other.example.com']);
  assert.equal(r.status, 200);
  const seen = up.seen.at(-1)!;
  assert.equal(seen.url, '/y?q=1', 'forwarded in origin-form');
  assert.equal(seen.headers.host, 'public.example.com:8080');
  // a bad scheme or authority is refused
  await noUpstream(async () => {
    for (const target of ['ftp://public.example.com/x', 'http://user@public.example.com/x', 'http:///x', 'http://a b/x'.replace(' ', '%20')]) {
      const bad = await send('GET', target, ['Host: public.example.com']);
      assert.equal(bad.status, 400, target);
      assert.equal((JSON.parse(bad.body) as { status: number }).status, 400);
    }
  });
});

test('absolute-form on the WebSocket upgrade path', async () => {
  await noUpstream(async () => {
    const r = await send('GET', 'http://internal.example.com/ws', ['Host: public.example.com', 'Upgrade: websocket', 'Connection: Upgrade', 'Sec-WebSocket-Version: 13', 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==']);
    // the internal route (a builtin without websocket) refuses the upgrade: 403
    assert.equal(r.status, 403);
    const r2 = await send('GET', '/%61dmin', ['Host: public.example.com', 'Upgrade: websocket', 'Connection: Upgrade', 'Sec-WebSocket-Version: 13', 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==']);
    assert.equal(r2.status, 403);
  });
  // the same upgrade to a public vhost reaches the upstream, with the authority as Host
  const n = up.seen.length;
  await send('GET', 'http://public.example.com/ws', ['Host: other.example.com', 'Upgrade: websocket', 'Connection: Upgrade', 'Sec-WebSocket-Version: 13', 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==']).catch(() => undefined);
  assert.equal(up.seen.length, n + 1);
  assert.equal(up.seen[n]!.url, '/ws');
  assert.equal(up.seen[n]!.headers.host, 'public.example.com');
});

test('OPTIONS * is answered by the gateway; other methods with * get 400; CONNECT gets 405', async () => {
  await noUpstream(async () => {
    for (let i = 0; i < 5; i++) {
      const r = await send('OPTIONS', '*', ['Host: public.example.com']);
      assert.equal(r.status, 200);
      assert.match(r.headers.allow ?? '', /GET/);
    }
    assert.equal((await send('GET', '*', ['Host: public.example.com'])).status, 400);
    const c = await rawRequest(port, 'CONNECT internal.example.com:443 HTTP/1.1\r\nHost: internal.example.com:443\r\n\r\n');
    assert.equal(c.status, 405);
    assert.equal((JSON.parse(c.body) as { status: number }).status, 405);
  });
  // the upstream is still healthy (OPTIONS * never counted against it)
  assert.equal((await send('GET', '/after', ['Host: public.example.com'])).status, 200);
});

test('Host spellings of a restricted vhost all reach its route', async () => {
  await noUpstream(async () => {
    for (const host of ['internal.example.com', 'internal.example.com.', 'internal.example.com.:80', 'INTERNAL.Example.COM', 'internal.example.com:80', 'internal.example.com:']) {
      assert.equal((await send('GET', '/x', [`Host: ${host}`])).status, 404, host);
    }
  });
});

test('bad, duplicate and missing Host headers get 400', async () => {
  await noUpstream(async () => {
    for (const headers of [['Host: x@internal.example.com'], ['Host: public.example.com', 'Host: internal.example.com'], ['Host: a', 'host: a'], ['Host: a b'], ['Host: a:99999'], ['Host: [::1'], []]) {
      const r = await send('GET', '/x', headers);
      assert.equal(r.status, 400, headers.join(' | '));
      assert.equal(r.headers['content-type'], 'application/json; charset=utf-8');
    }
  });
  const text = await gw.metrics.render();
  for (const kind of ['host_userinfo', 'duplicate_host', 'bad_host', 'missing_host']) assert.match(text, new RegExp(`sentinel_client_errors_total\\{kind="${kind}"\\} [1-9]`), kind);
});

test('the upstream sees the normalised Host, also when Connection names Host', async () => {
  const r = await send('GET', '/h', ['Host: Public.Example.com.:80']);
  assert.equal(r.status, 200);
  assert.equal(up.seen.at(-1)!.headers.host, 'public.example.com');
  const r2 = await rawRequest(port, http1('GET', '/h2', ['Host: public.example.com', 'Connection: close, host']));
  assert.equal(r2.status, 200);
  assert.equal(up.seen.at(-1)!.headers.host, 'public.example.com');
});

test('HTTP/2: :authority and a different host header get 400; :authority alone is normalised', async () => {
  const session = http2.connect(`http://127.0.0.1:${h2port}`);
  try {
    const ask = (headers: http2.OutgoingHttpHeaders) => h2Request(session, headers);
    const n = up.seen.length;
    const mismatch = await ask({ ':path': '/x', ':authority': 'public.example.com', host: 'internal.example.com' });
    assert.equal(mismatch.status, 400);
    assert.equal(up.seen.length, n);
    assert.equal((await ask({ ':path': '/x', ':authority': 'INTERNAL.example.com.' })).status, 404);
    const ok = await ask({ ':path': '/a/../b', ':authority': 'Public.example.com:80' });
    assert.equal(ok.status, 200);
    assert.equal(up.seen.at(-1)!.url, '/b');
    assert.equal(up.seen.at(-1)!.headers.host, 'public.example.com');
  } finally {
    session.close();
  }
});
