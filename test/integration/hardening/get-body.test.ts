// Bodies on GET and other bodiless methods (session 20 audit for GET/HEAD, session 21 for DELETE,
// OPTIONS and the rest; docs/security.md, "Bodies on GET and other bodiless methods"): an upstream
// that does not read such a body (a naive backend, some frameworks' static handlers) takes its
// bytes for the next request on the pooled keep-alive connection ("CL.0" request smuggling). The
// upstream here is a raw net server that parses like such a backend: it frames only POST, PUT and
// PATCH by their Content-Length and answers each request it finds with its path.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import http2 from 'node:http2';
import { gatewayFrom } from '../../helpers/gateway.ts';
import { h2Request } from '../../helpers/http.ts';
import { rawExchange, rawRequest, http1 } from '../../helpers/raw-http.ts';
import { startUpstream, closeServer, type TestUpstream } from '../../helpers/upstream.ts';
import type { Gateway } from '../../../src/server/gateway.ts';

/** Paths the naive upstream answered, in order. */
const seen: string[] = [];
const sockets = new Set<net.Socket>();
let naive: net.Server;
let reader: TestUpstream;
let gw: Gateway;
let port: number;

function naiveServer(): net.Server {
  return net.createServer((s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    let buf = '';
    s.on('data', (c: Buffer) => {
      buf += c.toString('latin1');
      for (;;) {
        const end = buf.indexOf('\r\n\r\n');
        if (end < 0) return;
        const head = buf.slice(0, end);
        const [method = '', path = ''] = head.split(' ');
        let rest = buf.slice(end + 4);
        // the naive part: only methods it expects a body on are framed by their Content-Length
        const cl = /\r\ncontent-length: *(\d+)/i.exec(head);
        if ((method === 'POST' || method === 'PUT' || method === 'PATCH') && cl) rest = rest.slice(Number(cl[1]));
        buf = rest;
        seen.push(path);
        s.write(`HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: ${path.length}\r\n\r\n${path}`);
      }
    });
  });
}

before(async () => {
  naive = naiveServer();
  await new Promise<void>((r) => naive.listen(0, '127.0.0.1', r));
  reader = await startUpstream((req, res, body) => {
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end(`${req.method} ${req.url} body=${body.toString()}`);
  });
  const naivePort = (naive.address() as net.AddressInfo).port;
  gw = (
    await gatewayFrom(`
system { graceful-shutdown-timeout-secs 1 }
listeners {
  listener "http" { address "127.0.0.1:0" }
  listener "h2c" { address "127.0.0.1:0"; protocol "h2" }
  listener "h2c-stall" { address "127.0.0.1:0"; protocol "h2"; request-timeout-secs 6 }
}
routes {
  route "search" { matches { path-prefix "/search" }; upstream "reader"; policies { get-body "forward" } }
  route "explicit" { matches { path-prefix "/explicit" }; upstream "naive"; policies { get-body "refuse" } }
  route "stall" { matches { path-prefix "/stall" }; upstream "quick" }
  route "main" { matches { path-prefix "/" }; upstream "naive" }
}
upstreams {
  upstream "naive" { target "127.0.0.1:${naivePort}" }
  upstream "reader" { target "${reader.address}" }
  upstream "quick" { target "127.0.0.1:${naivePort}"; timeouts { request-secs 1 } }
}
`)
  ).gw;
  port = gw.address('http').port;
});

after(async () => {
  await gw.close();
  await closeServer(naive, sockets);
  await reader.close();
});

const smuggled = 'GET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n';

test('a GET or HEAD with a body is refused 400 before it reaches an upstream that would misread it', async () => {
  const cases: Array<[string, string[], string]> = [
    ['GET /p (Content-Length)', ['Host: a', `Content-Length: ${smuggled.length}`], smuggled],
    ['HEAD /p (Content-Length)', ['Host: a', `Content-Length: ${smuggled.length}`], smuggled],
    ['GET /p (chunked)', ['Host: a', 'Transfer-Encoding: chunked'], `${smuggled.length.toString(16)}\r\n${smuggled}\r\n0\r\n\r\n`],
    ['GET /explicit (Content-Length, get-body "refuse")', ['Host: a', `Content-Length: ${smuggled.length}`], smuggled],
  ];
  for (const [name, headers, body] of cases) {
    const [method, target] = name.split(' ') as [string, string];
    // a HEAD answer has no body: read status lines and the close only
    const r = await rawExchange(port, http1(method, target, headers, body));
    assert.deepEqual(r.statuses, [400], name);
    assert.match(r.text, /\r\nconnection: close\r\n/i, `${name}: the unread body ends the connection`);
    // another client's request on the pooled upstream connection gets its own answer
    const victim = await rawRequest(port, http1('GET', '/victim', ['Host: a', 'Connection: close']));
    assert.equal(victim.body, '/victim', `${name}: no desync for the next client`);
  }
  assert.deepEqual(seen.filter((p) => p !== '/victim'), [], 'the upstream never saw the body as a request');
});

test('a GET with Content-Length: 0, or an HTTP/2 GET whose stream ends without DATA, is forwarded', async () => {
  seen.length = 0;
  const r = await rawRequest(port, http1('GET', '/empty', ['Host: a', 'Content-Length: 0', 'Connection: close']));
  assert.equal(r.status, 200);
  assert.equal(r.body, '/empty');
  const session = http2.connect(`http://127.0.0.1:${gw.address('h2c').port}`);
  try {
    // HEADERS without END_STREAM, then the data ('' is one empty DATA frame that ends the stream)
    const ask = async (path: string, data: string) => {
      const r = await h2Request(session, { ':path': path, ':authority': 'a' }, data);
      return { status: r.status, body: r.body };
    };
    assert.deepEqual(await ask('/h2-empty', ''), { status: 200, body: '/h2-empty' }, 'HEADERS without END_STREAM, then an empty DATA');
    const refused = await ask('/h2-data', smuggled);
    assert.equal(refused.status, 400, 'HTTP/2 DATA on a GET without content-length');
    assert.match(refused.body, /may not carry a body/);
  } finally {
    session.close();
  }
  assert.deepEqual(seen, ['/empty', '/h2-empty']);
});

test('a route with get-body "forward" sends the body with its framing (an upstream that reads it)', async () => {
  const r = await rawRequest(port, http1('GET', '/search/_search', ['Host: a', 'Content-Length: 13', 'Content-Type: application/json', 'Connection: close'], '{"query":{}}\n'));
  assert.equal(r.status, 200);
  assert.equal(r.body, 'GET /search/_search body={"query":{}}\n');
  const chunked = await rawRequest(port, http1('GET', '/search/x', ['Host: a', 'Transfer-Encoding: chunked', 'Connection: close'], '3\r\nabc\r\n0\r\n\r\n'));
  assert.equal(chunked.body, 'GET /search/x body=abc');
});

// Session 21: the session 20 fix refused GET and HEAD only; a DELETE, OPTIONS or COPY body reached
// the naive upstream, which answered /smuggled as its own request.
test('a DELETE, OPTIONS, COPY or PURGE with a body is refused like a GET, over HTTP/1.1 and HTTP/2', async () => {
  seen.length = 0;
  for (const method of ['DELETE', 'OPTIONS', 'COPY', 'PURGE']) {
    const r = await rawExchange(port, http1(method, '/p', ['Host: a', `Content-Length: ${smuggled.length}`], smuggled));
    assert.deepEqual(r.statuses, [400], method);
    assert.match(r.text, new RegExp(`a ${method} request may not carry a body`), method);
    const chunked = await rawExchange(port, http1(method, '/p', ['Host: a', 'Transfer-Encoding: chunked'], `${smuggled.length.toString(16)}\r\n${smuggled}\r\n0\r\n\r\n`));
    assert.deepEqual(chunked.statuses, [400], `${method} chunked`);
    const victim = await rawRequest(port, http1('GET', '/victim', ['Host: a', 'Connection: close']));
    assert.equal(victim.body, '/victim', `${method}: no desync for the next client`);
  }
  const session = http2.connect(`http://127.0.0.1:${gw.address('h2c').port}`);
  try {
    const status = async (headers: http2.OutgoingHttpHeaders, data: string) => (await h2Request(session, { ':authority': 'a', ...headers }, data)).status;
    assert.equal(await status({ ':method': 'DELETE', ':path': '/h2-cl', 'content-length': String(smuggled.length) }, smuggled), 400, 'h2 DELETE with content-length');
    assert.equal(await status({ ':method': 'OPTIONS', ':path': '/h2-data' }, smuggled), 400, 'h2 OPTIONS DATA without content-length');
  } finally {
    session.close();
  }
  assert.deepEqual(seen.filter((p) => p !== '/victim'), [], 'the upstream never saw a body as a request');
});

test('a DELETE or OPTIONS without a body (CORS preflights) or with Content-Length: 0 is forwarded; get-body "forward" forwards their bodies', async () => {
  seen.length = 0;
  const del = await rawRequest(port, http1('DELETE', '/d', ['Host: a', 'Content-Length: 0', 'Connection: close']));
  assert.equal(del.body, '/d');
  const preflight = await rawRequest(port, http1('OPTIONS', '/o', ['Host: a', 'Origin: http://x.example', 'Access-Control-Request-Method: PUT', 'Connection: close']));
  assert.equal(preflight.body, '/o');
  assert.deepEqual(seen, ['/d', '/o']);
  const scroll = await rawRequest(port, http1('DELETE', '/search/_search/scroll', ['Host: a', 'Content-Length: 16', 'Content-Type: application/json', 'Connection: close'], '{"scroll_id":1}\n'));
  assert.equal(scroll.body, 'DELETE /search/_search/scroll body={"scroll_id":1}\n');
});

// Session 21: an HTTP/2 GET without content-length whose HEADERS did not end the stream is read
// (for DATA) before it is forwarded. That read ran before request-secs started: a client that sent
// no DATA and never ended the stream held it until the listener's request-timeout-secs (6 s here,
// 60 s by default), which resets the stream without an answer. Now request-secs (1 s) answers 408.
test('an HTTP/2 GET that never sends its DATA nor ends its stream is bounded by request-secs: 408', async () => {
  seen.length = 0;
  const session = http2.connect(`http://127.0.0.1:${gw.address('h2c-stall').port}`);
  try {
    const reply = await new Promise<{ status: number; body: string; error?: string }>((resolve) => {
      const req = session.request({ ':path': '/stall', ':authority': 'a' }, { endStream: false });
      let status = 0;
      let body = '';
      req.setEncoding('utf8');
      req.on('response', (h) => (status = Number(h[':status'])));
      req.on('data', (c: string) => (body += c));
      req.on('end', () => resolve({ status, body }));
      req.on('error', (e: Error) => resolve({ status, body, error: e.message }));
    });
    assert.equal(reply.status, 408, `answered by request-secs, not reset by the listener's timeout (${reply.error ?? 'no error'})`);
    assert.match(reply.body, /did not arrive in time/);
  } finally {
    session.close();
  }
  assert.deepEqual(seen, [], 'nothing reached the upstream');
});
