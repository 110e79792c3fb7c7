// Session 29 audit (audit29): an upstream's 205 Reset Content with a body. RFC 9110 §15.3.6: a
// server must not send content with a 205 (Content-Length: 0). Node's HTTP/2 layer ends a 205
// stream with its HEADERS frame and reset the stream at the first body byte: an HTTP/2 client got a
// reset stream, not the 205. An HTTP/1.1 client got the body framed by the upstream's
// Content-Length. Now both get a 205 without content, and the upstream's body is dropped.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { gatewayFrom } from '../../helpers/gateway.ts';
import { h2Get } from '../../helpers/http.ts';
import { rawExchange, rawRequest, http1 } from '../../helpers/raw-http.ts';
import type { Gateway } from '../../../src/server/gateway.ts';
import { startCannedUpstream } from '../../helpers/upstream.ts';

const ANSWERS: Record<string, string> = {
  '/reset': 'HTTP/1.1 205 Reset Content\r\nContent-Type: text/plain\r\nContent-Length: 11\r\n\r\nform-reset!',
  '/reset-chunked': 'HTTP/1.1 205 Reset Content\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n',
  '/ok': 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok',
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
routes { route "main" { matches { path-prefix "/" }; upstream "app" } }
upstreams { upstream "app" { target "127.0.0.1:${port}" } }
`)
  ).gw;
});

after(async () => {
  await gw.close();
  await upstream.close();
});

test('an upstream 205 with a body reaches an HTTP/2 client as a 205 without content, not a reset stream', async () => {
  for (const path of ['/reset', '/reset-chunked']) {
    const r = await h2Get(gw.address('h2c').port, path, 'a');
    assert.equal(r.status, 205, path);
    assert.equal(r.body, '', path);
  }
});

test('an HTTP/1.1 client gets the 205 with Content-Length: 0, and the next answer on the connection is the next one', async () => {
  const one = await rawRequest(gw.address('http').port, http1('GET', '/reset', ['Host: a', 'Connection: close']));
  assert.equal(one.status, 205);
  assert.equal(one.headers['content-length'], '0');
  assert.equal(one.body, '');
  // pipelined: a client that reads a 205 as bodiless must find the 200 right after its head
  const two = await rawExchange(gw.address('http').port, http1('GET', '/reset-chunked', ['Host: a']) + http1('GET', '/ok', ['Host: a', 'Connection: close']), { responses: 2 });
  assert.match(two.text, /^HTTP\/1\.1 205 [^]*?\r\n\r\nHTTP\/1\.1 200 OK\r\n/);
  assert.doesNotMatch(two.text, /hello|form-reset/);
});
