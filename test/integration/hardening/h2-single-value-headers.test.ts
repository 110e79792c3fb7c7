// Session 28 audit (audit28): an upstream answer that repeats a header Node's HTTP/2 layer holds
// to one value (Content-Type, Location, ETag, X-Content-Type-Options, ... : kSingleValueHeaders in
// node:internal/http2/util) could not be written to an HTTP/2 client: writeHead threw
// ERR_HTTP2_HEADER_SINGLE_VALUE and the client got the gateway's 500, with a stack trace in the
// error log for every request. Two `X-Content-Type-Options: nosniff` (a framework and a middleware
// each setting it) are common, and a route `response-headers { add { X-Content-Type-Options
// "nosniff" } }` in front of an application that sends it already did the same to every answer.
// An HTTP/1.1 client got both fields. Now an HTTP/2 client gets the first value (what Node's own
// HTTP/1.1 and HTTP/2 clients read from such an answer); HTTP/1.1 clients are unchanged.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { gatewayFrom } from '../../helpers/gateway.ts';
import { h2Get } from '../../helpers/http.ts';
import { rawRequest, http1 } from '../../helpers/raw-http.ts';
import type { Gateway } from '../../../src/server/gateway.ts';
import { startCannedUpstream } from '../../helpers/upstream.ts';

const ANSWERS: Record<string, string> = {
  '/nosniff-twice': 'HTTP/1.1 200 OK\r\nX-Content-Type-Options: nosniff\r\nX-Content-Type-Options: nosniff\r\nContent-Length: 2\r\n\r\nok',
  '/two-types': 'HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Type: text/html\r\nContent-Length: 2\r\n\r\nok',
  '/two-locations': 'HTTP/1.1 302 Found\r\nLocation: /a\r\nLocation: /b\r\nContent-Length: 0\r\n\r\n',
  '/policy/x': 'HTTP/1.1 200 OK\r\nX-Content-Type-Options: nosniff\r\nContent-Length: 2\r\n\r\nok',
  '/cached/x': 'HTTP/1.1 200 OK\r\nCache-Control: public, max-age=600\r\nETag: "a"\r\nETag: "b"\r\nContent-Length: 2\r\n\r\nok',
};

let upstream: Awaited<ReturnType<typeof startCannedUpstream>>;
let gw: Gateway;

before(async () => {
  upstream = await startCannedUpstream(ANSWERS);
  const port = upstream.port;
  gw = (
    await gatewayFrom(`
system { graceful-shutdown-timeout-secs 1 }
listeners {
  listener "http" { address "127.0.0.1:0" }
  listener "h2c" { address "127.0.0.1:0"; protocol "h2" }
}
routes {
  route "policy" { matches { path-prefix "/policy/" }; upstream "app"; policies { response-headers { add { X-Content-Type-Options "nosniff" } } } }
  route "cached" { matches { path-prefix "/cached/" }; upstream "app"; cache { enabled #true } }
  route "main" { matches { path-prefix "/" }; upstream "app" }
}
upstreams { upstream "app" { target "127.0.0.1:${port}" } }
cache { enabled #true }
`)
  ).gw;
});

after(async () => {
  await gw.close();
  await upstream.close();
});

/** A GET over the gateway's h2c listener. */
const h2get = (path: string) => h2Get(gw.address('h2c').port, path, 'a');

test('an upstream header repeated that HTTP/2 holds to one value reaches an HTTP/2 client once, not as a 500', async () => {
  const same = await h2get('/nosniff-twice');
  assert.equal(same.status, 200, same.body);
  assert.equal(same.headers['x-content-type-options'], 'nosniff');
  assert.equal(same.body, 'ok');
  const types = await h2get('/two-types');
  assert.equal(types.status, 200, types.body);
  assert.equal(types.headers['content-type'], 'text/plain', 'the first, as Node reads such an answer');
  const moved = await h2get('/two-locations');
  assert.equal(moved.status, 302, moved.body);
  assert.equal(moved.headers.location, '/a');
});

test("a route's response-headers add of a name the upstream sends already, and a cached answer with two ETags, over HTTP/2", async () => {
  const policy = await h2get('/policy/x');
  assert.equal(policy.status, 200, policy.body);
  assert.equal(policy.headers['x-content-type-options'], 'nosniff');
  // stored from an HTTP/1.1 request (both fields kept for it), then a hit for an HTTP/2 client
  const h1 = await rawRequest(gw.address('http').port, http1('GET', '/cached/x', ['Host: a', 'Connection: close']));
  assert.equal(h1.status, 200);
  const hit = await h2get('/cached/x');
  assert.equal(hit.status, 200, hit.body);
  assert.equal(hit.headers.etag, '"a"');
});

test('HTTP/1.1 clients still get every field the upstream sent', async () => {
  const r = await rawRequest(gw.address('http').port, http1('GET', '/two-types', ['Host: a', 'Connection: close']));
  assert.equal(r.status, 200);
  assert.match(r.raw, /content-type: text\/plain\r\ncontent-type: text\/html\r\n/i);
});
