// HTTP/2 at the front door (session 15 audit): `:authority` vs Host, `:path` forms, methods,
// CONNECT, connection-specific headers and body framing, and "MadeYouReset" (streams the server
// resets because of a frame the client chose). What held stays asserted; the one finding (any
// token as `:method` skipped routing, agents, the access log and metrics) is the 501 test.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import { METHODS } from 'node:http';
import { startUpstream, type TestUpstream } from '../../helpers/upstream.ts';
import { gatewayFrom } from '../../helpers/gateway.ts';
import { openRaw, frame, FrameType, Flag } from '../abuse/h2-frames.ts';
import { until } from '../../helpers/until.ts';
import type { Gateway } from '../../../src/server/gateway.ts';

let up: TestUpstream;
let gw: Gateway;
let port: number;

before(async () => {
  up = await startUpstream();
  gw = (
    await gatewayFrom(`
system { graceful-shutdown-timeout-secs 1 }
listeners {
  listener "h2c" { address "127.0.0.1:0"; protocol "h2"; default-route "main" }
  listener "admin" { address "127.0.0.1:0" }
}
routes {
  route "admin" { priority "high"; matches { path-prefix "/admin" }; builtin-handler "not-found" }
  route "no-delete" { priority "high"; matches { path-prefix "/locked"; method "DELETE" }; builtin-handler "not-found" }
  route "metrics" { priority "high"; listeners "admin"; matches { path "/metrics" }; builtin-handler "metrics" }
  route "main" { matches { path-prefix "/" }; upstream "backend"; websocket #true }
}
upstreams { upstream "backend" { target "${up.address}" } }
`)
  ).gw;
  port = gw.address('h2c').port;
});

after(async () => {
  await gw.close();
  await up.close();
});

interface Answer {
  /** the status, or 'reset' when the stream was reset (or the request refused by nghttp2) */
  status: number | 'reset';
  body: string;
  /** what reached the upstream: method, Host and target */
  seen: string[];
}

/** One request on its own session (node:http2's client sends what it is given, pseudo-headers included). */
function ask(headers: http2.OutgoingHttpHeaders, body?: string): Promise<Answer> {
  const n = up.seen.length;
  return new Promise((resolve) => {
    const session = http2.connect(`http://127.0.0.1:${port}`);
    session.on('error', () => undefined);
    const req = session.request(headers, { endStream: body === undefined });
    let status: number | 'reset' = 'reset';
    let data = '';
    req.on('response', (h) => (status = Number(h[':status'])));
    req.on('data', (c: Buffer) => (data += c.toString()));
    let done = false;
    const finish = (reset: boolean) => {
      if (done) return;
      done = true;
      session.close();
      // the upstream records a request when its body ended: give a forwarded one a moment to land
      setTimeout(() => resolve({ status: reset ? 'reset' : status, body: data, seen: up.seen.slice(n).map((x) => `${x.method} ${x.headers.host} ${x.url}`) }), 50);
    };
    req.on('error', () => finish(true));
    req.on('close', () => finish(req.rstCode !== undefined && req.rstCode !== http2.constants.NGHTTP2_NO_ERROR && status === 'reset'));
    if (body !== undefined) req.end(body);
  });
}

async function metrics(): Promise<string> {
  return (await fetch(`http://127.0.0.1:${gw.address('admin').port}/metrics`)).text();
}

test(':authority: userinfo refused, absent :authority takes Host, both are checked', async () => {
  for (const authority of ['x@a.example', 'user:pw@a.example', 'a.example@127.0.0.1']) {
    const r = await ask({ ':path': '/p', ':authority': authority });
    assert.equal(r.status, 400, authority);
    assert.deepEqual(r.seen, [], `${authority}: nothing forwarded`);
  }
  const viaHost = await ask({ ':path': '/p', host: 'B.example.' });
  assert.equal(viaHost.status, 200);
  assert.deepEqual(viaHost.seen, ['GET b.example /p'], 'no :authority: routed and forwarded on the normalised Host');
  assert.equal((await ask({ ':path': '/p', host: 'b..example' })).status, 400);
  assert.equal((await ask({ ':path': '/p', ':authority': 'a.example', host: 'b.example' })).status, 400, 'authority_mismatch');
  for (const authority of ['', 'a.example/admin']) assert.equal((await ask({ ':path': '/p', ':authority': authority })).status, 'reset', `:authority ${JSON.stringify(authority)}`);
});

test(':path forms: the front door applies as on HTTP/1.1; forms nghttp2 refuses are reset', async () => {
  const refused: [string, number | 'reset'][] = [
    ['', 'reset'],
    ['p', 'reset'],
    ['https://a.example/admin', 'reset'],
    ['/p#frag', 400],
    ['/admin%2Fx', 400],
    ['/admin;x', 400],
    ['/x%00', 400],
    ['/%C0%AE%C0%AE/admin', 400],
  ];
  for (const [path, status] of refused) {
    const r = await ask({ ':path': path, ':authority': 'a.example' });
    assert.equal(r.status, status, `:path ${JSON.stringify(path)}`);
    assert.deepEqual(r.seen, [], `:path ${JSON.stringify(path)}: nothing forwarded`);
  }
  // normalised before routing: these reach the admin route (a local 404), not the upstream
  for (const path of ['/x/../admin', '//admin', '/%61dmin', '/./admin/']) {
    const r = await ask({ ':path': path, ':authority': 'a.example' });
    assert.equal(r.status, 404, path);
    assert.deepEqual(r.seen, [], `${path}: routed to the admin route`);
  }
  const probe = await ask({ ':path': '//_/health', ':authority': 'a.example' });
  assert.equal(probe.status, 200);
  assert.match(probe.body, /"status"/);
  const star = await ask({ ':method': 'OPTIONS', ':path': '*', ':authority': 'a.example' });
  assert.equal(star.status, 200, 'OPTIONS * answered locally');
  assert.deepEqual(star.seen, []);
  assert.equal((await ask({ ':method': 'GET', ':path': '*', ':authority': 'a.example' })).status, 'reset', '* on GET');
});

test('any token as :method: 501 unknown_method, as HTTP/1.1 answers it; every known method is forwarded', async () => {
  const before = await metrics();
  const count = (text: string) => Number(/sentinel_client_errors_total\{kind="unknown_method"\} (\d+)/.exec(text)?.[1] ?? 0);
  // Before the fix these were answered by Fastify's fallback: a 404 with an empty request_id,
  // never routed (a `method "DELETE"` route did not see `delete`), no agent, no access log entry, no metric.
  for (const method of ['delete', 'Delete', 'get', 'post', 'FOO', 'X-EVIL']) {
    const r = await ask({ ':method': method, ':path': '/locked', ':authority': 'a.example' });
    assert.equal(r.status, 501, method);
    assert.match(r.body, /"request_id":"[^"]+"/, `${method}: the gateway's error body`);
    assert.deepEqual(r.seen, [], `${method}: nothing forwarded`);
  }
  assert.equal(count(await metrics()) - count(before), 6, 'counted as client errors');
  for (const method of METHODS) {
    if (method === 'CONNECT' || method === 'HEAD' || method === 'TRACE') continue;
    const r = await ask({ ':method': method, ':path': '/m', ':authority': 'a.example' });
    assert.equal(r.status, 200, method);
    assert.deepEqual(r.seen, [`${method} a.example /m`], `${method} forwarded as sent`);
  }
});

test('CONNECT: 405; extended CONNECT (RFC 8441) is refused by nghttp2; nothing forwarded', async () => {
  const r = await ask({ ':method': 'CONNECT', ':authority': '127.0.0.1:22' });
  assert.equal(r.status, 405);
  assert.deepEqual(r.seen, []);
  const ext = await rawHeaders([lit(2, 'CONNECT'), lit(':protocol', 'websocket'), lit(6, 'http'), lit(4, '/ws'), lit(1, 'a.example'), lit('sec-websocket-version', '13')]);
  assert.ok(ext.reset, 'extended CONNECT reset (SETTINGS_ENABLE_CONNECT_PROTOCOL is not sent)');
  assert.deepEqual(ext.seen, []);
});

test('a content-length the DATA frames do not match is reset, never forwarded', async () => {
  for (const [cl, body] of [
    ['10', 'abc'],
    ['2', 'abc'],
  ] as const) {
    const r = await ask({ ':method': 'POST', ':path': '/p', ':authority': 'a.example', 'content-length': cl }, body);
    assert.equal(r.status, 'reset', `content-length ${cl}, ${body.length} bytes`);
    assert.deepEqual(r.seen, []);
  }
  const get = await rawHeaders([GET_HTTP, lit(4, '/p'), lit(1, 'a.example'), lit('content-length', '5')]);
  assert.ok(get.reset, 'content-length 5 on a HEADERS frame that ends the stream');
  assert.deepEqual(get.seen, []);
});

test('connection-specific headers are reset; HTTP2-Settings never reaches an HTTP/1.1 upstream', async () => {
  const base = [GET_HTTP, lit(4, '/p'), lit(1, 'a.example')];
  for (const [name, value] of [
    ['upgrade', 'h2c'],
    ['keep-alive', '5'],
    ['proxy-connection', 'keep-alive'],
  ]) {
    const r = await rawHeaders([...base, lit(name!, value!)]);
    assert.ok(r.reset, name);
    assert.deepEqual(r.seen, [], name);
  }
  const s = await rawHeaders([...base, lit('http2-settings', 'AAMAAABk')]);
  assert.ok(!s.reset);
  assert.equal(s.seen.length, 1);
  assert.equal(s.seen[0]!.headers['http2-settings'], undefined, 'hop-by-hop: dropped');
});

test('MadeYouReset: streams the server resets for the client count as resets; the session ends, others are served', async () => {
  const base = Buffer.concat([GET_HTTP, lit(4, '/p'), lit(1, 'a.example')]);
  const max = Buffer.alloc(4);
  max.writeUInt32BE(0x7fffffff);
  const provokers: [string, (id: number) => Buffer][] = [
    ['WINDOW_UPDATE 0 on the stream', (id) => frame(FrameType.WINDOW_UPDATE, 0, id, Buffer.alloc(4))],
    ['WINDOW_UPDATE overflowing the stream window', (id) => frame(FrameType.WINDOW_UPDATE, 0, id, max)],
    ['DATA after END_STREAM', (id) => frame(FrameType.DATA, 0, id, Buffer.from('x'))],
  ];
  for (const [label, provoke] of provokers) {
    const s = await openRaw(port, false);
    const n = up.seen.length;
    const burst: Buffer[] = [];
    for (let i = 0; i < 1000; i++) {
      const id = 1 + 2 * i;
      burst.push(frame(FrameType.HEADERS, Flag.END_HEADERS | Flag.END_STREAM, id, base), provoke(id));
    }
    s.socket.write(Buffer.concat(burst));
    await until(`${label}: a GOAWAY or a close`, () => s.goaways.length > 0 || s.closed);
    // the negative window ends at a positive event: another client's request forwarded to the same
    // upstream and answered after the flood's streams were parsed (a loaded machine stretches it)
    assert.equal((await ask({ ':path': '/after', ':authority': 'a.example' })).status, 200, `${label}: another client is served`);
    s.socket.destroy();
    assert.ok(s.goaways.length > 0 || s.closed, `${label}: GOAWAY or closed`);
    const reached = up.seen.slice(n).filter((x) => x.url !== '/after').length;
    assert.ok(reached <= 5, `${label}: ${reached} of 1000 streams reached the upstream`);
  }
});

/** HPACK literal without indexing: a static-table name index (< 15) or a new name. */
function lit(name: string | number, value: string): Buffer {
  const v = Buffer.from(value, 'latin1');
  const head = typeof name === 'number' ? Buffer.from([name]) : Buffer.concat([Buffer.from([0x00, name.length]), Buffer.from(name, 'latin1')]);
  return Buffer.concat([head, Buffer.from([v.length]), v]);
}
const GET_HTTP = Buffer.from([0x82, 0x86]); // :method GET, :scheme http

/** One raw HEADERS frame that ends its stream: whether it was reset, and what reached the upstream. */
async function rawHeaders(fields: Buffer[]): Promise<{ reset: boolean; seen: TestUpstream['seen'] }> {
  const s = await openRaw(port, false);
  const n = up.seen.length;
  s.socket.write(frame(FrameType.HEADERS, Flag.END_HEADERS | Flag.END_STREAM, 1, Buffer.concat(fields)));
  await until(() => `RST_STREAM, DATA or a close (frames so far: ${s.received.join(',')})`, () => s.received.includes(FrameType.RST_STREAM) || s.received.includes(FrameType.DATA) || s.closed);
  // for the callers that expect nothing at the upstream after a reset: the window ends at another
  // client's request forwarded to the same upstream and answered (not a fixed pause)
  assert.equal((await ask({ ':path': '/window-end', ':authority': 'a.example' })).status, 200, 'a later request is served');
  s.socket.destroy();
  return { reset: s.received.includes(FrameType.RST_STREAM) || s.received.includes(FrameType.GOAWAY), seen: up.seen.slice(n).filter((x) => x.url !== '/window-end') };
}

test('two content-type fields on an HTTP/2 request with a body (session 18 probe, held): the upstream gets the first only, the one inspection reads', async () => {
  const s = await openRaw(port, false);
  const n = up.seen.length;
  const POST_HTTP = Buffer.from([0x83, 0x86]); // :method POST, :scheme http
  const fields = [POST_HTTP, lit(4, '/dup-ct'), lit(1, 'a.example'), lit('content-type', 'text/plain'), lit('content-type', 'application/x-www-form-urlencoded'), lit('content-length', '3')];
  s.socket.write(Buffer.concat([frame(FrameType.HEADERS, Flag.END_HEADERS, 1, Buffer.concat(fields)), frame(FrameType.DATA, Flag.END_STREAM, 1, Buffer.from('q=1'))]));
  await until('the request at the upstream, or RST_STREAM or a close', () => up.seen.length > n || s.received.includes(FrameType.RST_STREAM) || s.closed);
  s.socket.destroy();
  const seen = up.seen.slice(n);
  assert.equal(seen.length, 1, 'forwarded');
  assert.equal(seen[0]!.headers['content-type'], 'text/plain');
  assert.equal(seen[0]!.body.toString(), 'q=1');
});
