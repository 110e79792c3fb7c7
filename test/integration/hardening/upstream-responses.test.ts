// Hostile or broken upstream responses (session 13 audit), from a raw `net` upstream that writes
// exactly the bytes each path names.
//
// The finding: a `304 Not Modified` with `Content-Length` (RFC 9110 §8.6 allows it: the length the
// 200 would have; ASP.NET MVC 2.0, Go's net/http and others send it) reached the client as nothing
// at all, the connection cut: undici exempts only HEAD from its length check and failed the
// exchange after the headers, and the relay, whose headers were not flushed yet, destroyed the
// socket. Every browser revalidation through such an application failed (the cache's own
// revalidation held: it reads the 304's headers and drops the rest). Now a 204/304 ends at its
// headers whatever Content-Length says, and a 204 goes out without one (RFC 9110 §8.6).
//
// Also fixed (low): a response with a transfer coding other than chunked (`Transfer-Encoding:
// gzip`) was relayed with the coding still applied and its header removed (hop-by-hop), so the
// client read gzip bytes as the body; a status of 600-999 was relayed as is. Both are now 502.
//
// Session 14 (open finding of session 13): a response that fails after its headers but before any
// body byte (a bad first chunk, the upstream closing short of its Content-Length with nothing
// sent) reached the client as a cut connection with no status at all, since the relay had called
// writeHead. The status line now waits for the first body byte or the end, and such a response
// is a 502 from the gateway; the client connection stays usable.
//
// The rest are probes that held, kept as cheap regressions: a body cut short never looks complete
// to the client, ambiguous framing is a 502, hop-by-hop headers and those named in Connection
// never reach the client.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import http2 from 'node:http2';
import { gatewayFrom } from '../../helpers/gateway.ts';
import { rawExchange, rawRequest, http1 } from '../../helpers/raw-http.ts';
import type { Gateway } from '../../../src/server/gateway.ts';
import { startCannedUpstream, type CannedAnswer } from '../../helpers/upstream.ts';
import { orAfterTurning, UNTIL_MS } from '../../helpers/until.ts';

/** Each path's answer; `close` ends the connection after it (a cut body). */
const ANSWERS: Record<string, CannedAnswer> = {
  '/304-cl': { bytes: 'HTTP/1.1 304 Not Modified\r\nETag: "v1"\r\nContent-Length: 5\r\n\r\n' },
  '/204-cl': { bytes: 'HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n' },
  '/cut-cl': { bytes: 'HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nhello', close: true },
  '/cut-chunked': { bytes: 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n', close: true },
  '/bad-first-chunk': { bytes: 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-App: 1\r\n\r\nzz\r\nhello\r\n0\r\n\r\n', close: true },
  '/empty-cl': { bytes: 'HTTP/1.1 200 OK\r\nX-App: 1\r\nContent-Length: 100\r\n\r\n', close: true },
  '/bad-second-chunk': { bytes: 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\nzz\r\n', close: true },
  '/sse-wait': { bytes: 'HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n' },
  '/unsolicited-100': { bytes: 'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok' },
  // an interim 100 that claims a body, and the response it would smuggle in front of the real one
  '/unsolicited-100-cl': { bytes: 'HTTP/1.1 100 Continue\r\nContent-Length: 46\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\nsmuggledHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok' },
  '/interim-103': { bytes: 'HTTP/1.1 103 Early Hints\r\nLink: </evil.js>; rel=preload\r\nX-Interim: 1\r\n\r\nHTTP/1.1 102 Processing\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok' },
  '/two-cl': { bytes: 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!' },
  '/cl-te': { bytes: 'HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n' },
  '/te-gzip': { bytes: 'HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nhello', close: true },
  '/te-gzip-chunked': { bytes: 'HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n' },
  '/status-999': { bytes: 'HTTP/1.1 999 Weird\r\nContent-Length: 5\r\n\r\nhello' },
  '/status-600': { bytes: 'HTTP/1.1 600 Weird\r\nContent-Length: 5\r\n\r\nhello' },
  '/bare-lf': { bytes: 'HTTP/1.1 200 OK\r\nX-A: a\nSet-Cookie: evil=1\r\nContent-Length: 5\r\n\r\nhello' },
  '/alt-svc': { bytes: 'HTTP/1.1 200 OK\r\nAlt-Svc: h2="evil.example:443"; ma=2592000, h3=":8443"\r\nalt-svc: clear\r\nX-Kept: yes\r\nContent-Length: 5\r\n\r\nhello' },
  '/hop': {
    bytes:
      'HTTP/1.1 200 OK\r\nConnection: keep-alive, X-Secret\r\nX-Secret: s\r\nKeep-Alive: timeout=1\r\nProxy-Authenticate: Basic\r\nProxy-Connection: keep-alive\r\nUpgrade: h2c\r\nTrailer: X-T\r\nHTTP2-Settings: x\r\nX-Kept: yes\r\nContent-Length: 5\r\n\r\nhello',
  },
};

let upstream: Awaited<ReturnType<typeof startCannedUpstream>>;
/** an h2c upstream that sends an interim 100 nobody asked for before every answer */
let h2server: http2.Http2Server;
let gw: Gateway;
let port: number;
let cacheRequests: string[] = [];

before(async () => {
  upstream = await startCannedUpstream((head) => {
    const path = head.split(' ')[1]!;
    if (path.startsWith('/cached')) {
      // stored already stale (Age 5 > max-age 1: no wait, no clock edge) with a validator, no stale
      // serving; revalidations get a 304 with the 200's Content-Length
      cacheRequests.push(/if-none-match/i.test(head) ? 'conditional' : 'plain');
      if (/if-none-match: "c1"/i.test(head)) return 'HTTP/1.1 304 Not Modified\r\nETag: "c1"\r\nCache-Control: max-age=1, must-revalidate\r\nContent-Length: 6\r\n\r\n';
      return 'HTTP/1.1 200 OK\r\nETag: "c1"\r\nCache-Control: max-age=1, must-revalidate\r\nAge: 5\r\nContent-Length: 6\r\n\r\nstored';
    }
    return ANSWERS[path] ?? 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok';
  });
  const up = `127.0.0.1:${upstream.port}`;
  h2server = http2.createServer();
  h2server.on('stream', (s) => {
    s.additionalHeaders({ ':status': 100 });
    let n = 0;
    s.on('data', (c: Buffer) => (n += c.length));
    s.on('end', () => {
      s.respond({ ':status': 200 });
      s.end(`h2 read ${n}`);
    });
  });
  await new Promise<void>((r) => h2server.listen(0, '127.0.0.1', r));
  gw = (
    await gatewayFrom(`
system { graceful-shutdown-timeout-secs 1 }
listeners { listener "http" { address "127.0.0.1:0" } }
routes {
  route "cached" { matches { path-prefix "/cached" }; upstream "backend"; cache { enabled #true } }
  route "own-alt-svc" { matches { path-prefix "/own/" }; upstream "backend"; policies { response-headers { set { Alt-Svc "h3=\\":443\\"" } } } }
  route "h2-interim" { matches { path-prefix "/h2/" }; upstream "h2" }
  route "main" { matches { path-prefix "/" }; upstream "backend" }
}
upstreams {
  upstream "backend" { target "${up}"; circuit-breaker { failure-threshold 1000 } }
  upstream "h2" { target "127.0.0.1:${(h2server.address() as net.AddressInfo).port}"; http-version { min-version 2 } }
}
cache { enabled #true; status-header #true }
`)
  ).gw;
  port = gw.address('http').port;
});

after(async () => {
  await gw.close();
  await upstream.close();
  await new Promise((r) => h2server.close(r));
});

test('a 304 with Content-Length is relayed as a 304 and the client connection stays usable', async () => {
  // the second request on the same connection closes it once answered
  const r = await rawExchange(port, http1('GET', '/304-cl', ['Host: a', 'If-None-Match: "v1"']) + http1('GET', '/next', ['Host: a', 'Connection: close']), { responses: 2 });
  assert.deepEqual(r.statuses, [304, 200], JSON.stringify(r.text));
  assert.match(r.text, /etag: "v1"/i);
  assert.match(r.text, /\r\n\r\nok$/, 'the second answer is whole');
});

test('a 204 with Content-Length goes out without it', async () => {
  const r = await rawExchange(port, http1('GET', '/204-cl', ['Host: a']) + http1('GET', '/next', ['Host: a', 'Connection: close']), { responses: 2 });
  assert.deepEqual(r.statuses, [204, 200], JSON.stringify(r.text));
  assert.doesNotMatch(r.text.slice(0, r.text.indexOf('\r\n\r\n')), /content-length/i);
});

test("the cache's revalidation of a stale entry accepts a 304 with Content-Length", async () => {
  cacheRequests = [];
  const first = await rawRequest(port, http1('GET', '/cached', ['Host: a', 'Connection: close']));
  assert.equal(first.body, 'stored');
  const again = await rawRequest(port, http1('GET', '/cached', ['Host: a', 'Connection: close']));
  assert.equal(again.status, 200);
  assert.equal(again.body, 'stored', JSON.stringify(again.raw));
  assert.match(again.headers['cache-status'] ?? '', /fwd=stale; fwd-status=304/);
  assert.deepEqual(cacheRequests, ['plain', 'conditional']);
});

test('a body cut short never looks complete: Content-Length kept and the connection closed; chunked without the last chunk', async () => {
  const cl = await rawExchange(port, http1('GET', '/cut-cl', ['Host: a']));
  assert.equal(cl.statuses[0], 200);
  assert.match(cl.text, /content-length: 100/i);
  assert.ok(cl.closed, 'closed');
  const chunked = await rawExchange(port, http1('GET', '/cut-chunked', ['Host: a']));
  assert.equal(chunked.statuses[0], 200);
  assert.ok(chunked.closed, 'closed');
  assert.doesNotMatch(chunked.text, /\r\n0\r\n\r\n/, 'no last chunk');
});

test('a response that fails before its first body byte is a 502 (was: no status, connection cut); the connection stays usable', async () => {
  for (const p of ['/bad-first-chunk', '/empty-cl']) {
    const r = await rawExchange(port, http1('GET', p, ['Host: a']) + http1('GET', '/next', ['Host: a', 'Connection: close']), { responses: 2 });
    assert.deepEqual(r.statuses, [502, 200], `${p}: ${JSON.stringify(r.text)}`);
    assert.match(r.text, /"status":502/, 'the gateway\'s JSON error');
    assert.doesNotMatch(r.text, /x-app/i, 'none of the failed response\'s headers');
    assert.match(r.text, /\r\n\r\nok$/, 'the second answer is whole');
  }
  // after a body byte went out, cutting the connection is still the only signal
  const late = await rawExchange(port, http1('GET', '/bad-second-chunk', ['Host: a']));
  assert.equal(late.statuses[0], 200);
  assert.ok(late.closed, 'closed');
  assert.doesNotMatch(late.text, /\r\n0\r\n\r\n/, 'no last chunk');
});

test('an event stream\'s head goes out at once, before its first event (the client must see the stream open)', async () => {
  const s = net.connect(port, '127.0.0.1');
  s.on('error', () => undefined);
  let text = '';
  s.setEncoding('latin1');
  s.on('data', (c: string) => (text += c));
  // the upstream never sends an event: the head arrives on its own or not at all (a loop-time bound)
  const head = new Promise<void>((resolve) => s.on('data', () => text.includes('\r\n\r\n') && resolve()));
  s.write(http1('GET', '/sse-wait', ['Host: a']));
  await orAfterTurning(head, UNTIL_MS, undefined);
  s.destroy();
  assert.match(text, /^HTTP\/1\.1 200 /, 'the status line without any event');
  assert.match(text, /content-type: text\/event-stream/i);
});

test('an unsolicited 100 Continue from an HTTP/1.1 upstream is still a 502 (undici destroys the connection: open finding in security.md); from an HTTP/2 upstream it is dropped', async () => {
  // When this starts to pass through as 200, undici accepts it: close the open finding.
  const r = await rawRequest(port, http1('GET', '/unsolicited-100', ['Host: a', 'Connection: close']));
  assert.equal(r.status, 502, JSON.stringify(r.raw));
  // Session 23: the limitation is undici's HTTP/1.1 client alone; an HTTP/2 upstream (the gateway's
  // own dispatcher over node:http2) may send an interim 100 before its answer, to a GET or a POST
  for (const [method, extra, body] of [['GET', [], ''], ['POST', ['Content-Length: 5'], 'hello']] as const) {
    const h2 = await rawRequest(port, http1(method, '/h2/interim', ['Host: a', 'Connection: close', ...extra]) + body);
    assert.equal(h2.status, 200, `${method}: ${JSON.stringify(h2.raw)}`);
    assert.equal(h2.body, `h2 read ${body.length}`);
  }
});

test('an interim response cannot desynchronise the upstream connection (session 25): a 100 is a 502 and its connection is dropped, a 102/103 is skipped and not relayed', async () => {
  // undici destroys the socket at any 100 (client-h1.js onHeadersComplete): what followed it is never read
  const r = await rawExchange(port, http1('GET', '/unsolicited-100-cl', ['Host: a']) + http1('GET', '/after-100', ['Host: a', 'Connection: close']), { responses: 2 });
  assert.deepEqual(r.statuses, [502, 200]);
  assert.ok(!r.text.includes('smuggled'), r.text);
  assert.match(r.text, /\r\n\r\nok$/);
  // other 1xx are skipped by undici and the final answer read on the same connection; none reaches the client
  const i = await rawRequest(port, http1('GET', '/interim-103', ['Host: a', 'Connection: close']));
  assert.equal(i.status, 200);
  assert.equal(i.body, 'ok');
  assert.equal(i.headers.link, undefined);
  assert.equal(i.headers['x-interim'], undefined);
  assert.doesNotMatch(i.raw, /HTTP\/1\.1 1\d\d /);
});

test('a transfer coding other than chunked, or a status above 599, is a 502 (was relayed: the coding silently removed, the status as is)', async () => {
  for (const p of ['/te-gzip', '/te-gzip-chunked', '/status-999', '/status-600']) {
    const r = await rawRequest(port, http1('GET', p, ['Host: a', 'Connection: close']));
    assert.equal(r.status, 502, `${p}: ${JSON.stringify(r.raw)}`);
  }
});

test('ambiguous or invalid response framing is a 502', async () => {
  for (const p of ['/two-cl', '/cl-te', '/bare-lf']) {
    const r = await rawRequest(port, http1('GET', p, ['Host: a', 'Connection: close']));
    assert.equal(r.status, 502, p);
    assert.equal(r.headers['set-cookie'], undefined, p);
  }
});

test('hop-by-hop response headers and those named in Connection never reach the client', async () => {
  const r = await rawRequest(port, http1('GET', '/hop', ['Host: a', 'Connection: close']));
  assert.equal(r.status, 200);
  assert.equal(r.body, 'hello');
  assert.equal(r.headers['x-kept'], 'yes');
  for (const n of ['x-secret', 'keep-alive', 'proxy-authenticate', 'proxy-connection', 'upgrade', 'trailer', 'http2-settings']) assert.equal(r.headers[n], undefined, n);
});

test("an upstream's Alt-Svc never reaches the client; a route's response-headers policy sets the gateway's own (session 23)", async () => {
  // Was relayed: a client (browsers, curl --alt-svc) would take the upstream's alternative service,
  // another host or a port the gateway does not serve, for the origin's and go around the gateway.
  const r = await rawRequest(port, http1('GET', '/alt-svc', ['Host: a', 'Connection: close']));
  assert.equal(r.status, 200);
  assert.equal(r.body, 'hello');
  assert.equal(r.headers['x-kept'], 'yes');
  assert.equal(r.headers['alt-svc'], undefined, JSON.stringify(r.raw));
  const own = await rawRequest(port, http1('GET', '/own/alt-svc', ['Host: a', 'Connection: close']));
  assert.equal(own.status, 200);
  assert.equal(own.headers['alt-svc'], 'h3=":443"', JSON.stringify(own.raw));
});
