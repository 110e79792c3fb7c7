// Session 18 audit (docs/security.md "Session 18 audit"): TRACE, Transfer-Encoding on HTTP/1.0,
// HTTP versions other than 1.x on an HTTP/1 connection.
// TRACE was forwarded, and an upstream that answers it (Apache's default) echoed the request as it
// got it, headers the gateway or a route policy added included; now 405 at the front door. An
// HTTP/1.0 request with Transfer-Encoding (faulty framing, RFC 9112 §6.1: HTTP/1.0 has no chunked
// coding, so a 1.0 hop in front reads another body length) was de-chunked and forwarded, and the
// bytes after its body were read as the next request and forwarded too; now 400 (as nginx) and the
// connection closes, nothing after it is read. Raw sockets to a real gateway, a recording upstream.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startUpstream, type TestUpstream } from '../../helpers/upstream.ts';
import { gatewayFrom, simpleConfig } from '../../helpers/gateway.ts';
import { rawExchange } from '../../helpers/raw-http.ts';
import type { Gateway } from '../../../src/server/gateway.ts';

let up: TestUpstream;
let gw: Gateway;
let port: number;

before(async () => {
  // an upstream that answers TRACE as Apache does: the request it received, as the body
  up = await startUpstream((req, res) => {
    const echo = req.method === 'TRACE' ? `${req.method} ${req.url}\r\n${Object.entries(req.headers).map(([k, v]) => `${k}: ${String(v)}`).join('\r\n')}` : 'ok';
    res.writeHead(200, { 'content-type': req.method === 'TRACE' ? 'message/http' : 'text/plain', 'content-length': Buffer.byteLength(echo) });
    res.end(echo);
  });
  gw = (await gatewayFrom(simpleConfig(up.address, { route: 'policies { request-headers { set { "X-Internal-Token" "s3cret" } } }' }))).gw;
  port = gw.address('http').port;
});

after(async () => {
  await gw.close();
  await up.close();
});

test('TRACE: 405 with Allow, never forwarded (the echo would show what the gateway added)', async () => {
  const n = up.seen.length;
  const r = await rawExchange(port, 'TRACE /x HTTP/1.1\r\nHost: a.example\r\nCookie: sid=1\r\nConnection: close\r\n\r\n');
  assert.deepEqual(r.statuses, [405]);
  assert.match(r.text, /\r\nallow: GET, HEAD, POST, PUT, DELETE, PATCH, OPTIONS\r\n/i);
  assert.doesNotMatch(r.text, /s3cret/);
  assert.equal(up.seen.length, n, 'not forwarded');
  assert.match(await gw.metrics.render(), /sentinel_client_errors_total\{kind="trace_method"\} 1/);
});

test('HTTP/1.0 with Transfer-Encoding: 400 and the connection closes; the bytes after it are not a request', async () => {
  const n = up.seen.length;
  for (const keepAlive of ['Connection: keep-alive\r\n', '']) {
    const r = await rawExchange(port, `POST /a HTTP/1.0\r\nHost: a.example\r\n${keepAlive}Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\nGET /smuggled HTTP/1.0\r\nHost: a.example\r\n\r\n`, { responses: 2 });
    assert.deepEqual(r.statuses, [400], r.text);
    assert.match(r.text, /\r\nConnection: close\r\n/i);
    assert.ok(r.closed, 'closed by the gateway');
  }
  assert.deepEqual(up.seen.slice(n).map((s) => `${s.method} ${s.url}`), [], 'neither the request nor what followed it reached the upstream');
  assert.match(await gw.metrics.render(), /sentinel_client_errors_total\{kind="http10_transfer_encoding"\} 2/);
  // HTTP/1.0 keep-alive with Content-Length keeps its connection; HTTP/1.1 chunked is unchanged
  const k = await rawExchange(port, 'POST /k1 HTTP/1.0\r\nHost: a.example\r\nConnection: keep-alive\r\nContent-Length: 3\r\n\r\nabcGET /k2 HTTP/1.0\r\nHost: a.example\r\n\r\n', { responses: 2 });
  assert.deepEqual(k.statuses, [200, 200]);
  const c = await rawExchange(port, 'POST /c HTTP/1.1\r\nHost: a.example\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n3\r\nabc\r\n0\r\n\r\n');
  assert.deepEqual(c.statuses, [200]);
  assert.equal(up.seen.at(-1)!.body.toString(), 'abc');
});

test('a request line with HTTP/0.9 (no version) or HTTP/2.0 over HTTP/1: 505, never forwarded (HTTP/1.2, 3.0: the parser\'s 400)', async () => {
  const n = up.seen.length;
  for (const line of ['GET /v09', 'GET /v2 HTTP/2.0']) {
    const r = await rawExchange(port, `${line}\r\nHost: a.example\r\nConnection: close\r\n\r\n`);
    assert.deepEqual(r.statuses, [505], `${line}: ${r.text}`);
  }
  assert.equal(up.seen.length, n, 'nothing forwarded');
  assert.match(await gw.metrics.render(), /sentinel_client_errors_total\{kind="http_version"\} 2/);
});
