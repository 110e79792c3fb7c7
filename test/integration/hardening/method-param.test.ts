// `_method` parameter overrides (docs/security.md, "Method overrides in parameters"): Symfony,
// Laravel, Rails and Spring run `POST /api/items/1?_method=DELETE` (or a form field `_method`) as a
// DELETE. A POST whose override names a method another route would take (here: a DELETE-only route
// with `allow-from`) is refused; one that stays on its route is forwarded unchanged.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import { h2Request } from '../../helpers/http.ts';
import { startUpstream, type TestUpstream } from '../../helpers/upstream.ts';
import { gatewayFrom } from '../../helpers/gateway.ts';
import { rawRequest, http1 } from '../../helpers/raw-http.ts';
import type { Gateway } from '../../../src/server/gateway.ts';

let up: TestUpstream;
let guarded: TestUpstream;
let gw: Gateway;

before(async () => {
  up = await startUpstream();
  guarded = await startUpstream();
  gw = (
    await gatewayFrom(`
system { graceful-shutdown-timeout-secs 1 }
listeners {
  listener "http" { address "127.0.0.1:0" }
  listener "h2c" { address "127.0.0.1:0"; protocol "h2" }
}
routes {
  route "deletes" { matches { path-prefix "/api"; method "DELETE" }; upstream "guarded"; allow-from "192.0.2.1/32" }
  route "legacy" { matches { path-prefix "/legacy" }; upstream "backend"; policies { forward-method-override "DELETE" } }
  route "legacy-deletes" { matches { path-prefix "/legacy"; method "DELETE" }; upstream "guarded"; allow-from "192.0.2.1/32" }
  route "big-posts" { matches { path-prefix "/big"; method "POST" }; upstream "backend"; policies { max-body-buffer-bytes 64 } }
  route "main" { matches { path-prefix "/" }; upstream "backend" }
}
upstreams {
  upstream "backend" { target "${up.address}" }
  upstream "guarded" { target "${guarded.address}" }
}
`)
  ).gw;
});

after(async () => {
  await gw.close();
  await up.close();
  await guarded.close();
});

/** One HTTP/1.1 request; its status and whether an upstream saw it (and what). */
async function send(method: string, target: string, body = '', headers: string[] = []): Promise<{ status: number; body: string; seen: TestUpstream['seen'][number] | undefined }> {
  const n = up.seen.length;
  const g = guarded.seen.length;
  const head = ['Host: a.example', ...headers, ...(body || method === 'POST' ? [`Content-Length: ${Buffer.byteLength(body)}`] : []), 'Connection: close'];
  const r = await rawRequest(gw.address('http').port, http1(method, target, head, body));
  assert.equal(guarded.seen.length, g, 'the DELETE-only route is never reached');
  return { status: r.status, body: r.body, seen: up.seen[n] };
}

const FORM = 'Content-Type: application/x-www-form-urlencoded';

test('baseline: the DELETE itself is refused by its route', async () => {
  assert.equal((await send('DELETE', '/api/items/1')).status, 403);
});

test('query: _method naming a method another route takes is refused, in every spelling a framework reads', async () => {
  for (const q of [
    '_method=DELETE',
    '_method=delete', // Rails, Symfony, Spring upper-case it
    '%5Fmethod=DELETE', // names are percent-decoded
    '_%6Dethod=DELETE',
    '.method=DELETE', // PHP turns . and space into _
    '+_method=DELETE', // PHP drops leading spaces
    '_method%00x=DELETE', // PHP cuts a name at NUL
    'a=1;_method=DELETE', // Rack 2 splits on ;
    '_method=POST&_method=DELETE', // PHP and Rack keep the last
    '_method=DELETE&_method=POST', // Spring and Express the first
    '_method=DEL%45TE',
  ]) {
    const r = await send('POST', `/api/items/1?${q}`, 'x=1', [FORM]);
    assert.equal(r.status, 400, q);
    assert.equal(r.seen, undefined, q);
    assert.match(r.body, /_method/, q);
  }
});

test('query: names no framework reads as _method, POST itself, a method the same route serves, and GET are forwarded', async () => {
  for (const [method, q] of [
    ['POST', '_method[]=DELETE'],
    ['POST', '_METHOD=DELETE'],
    ['POST', 'x_method=DELETE'],
    ['POST', '_method=POST'],
    ['POST', '_method=PUT'], // a PUT to /api is main's too
    ['GET', '_method=DELETE'], // frameworks honour overrides on POST only
  ] as const) {
    const r = await send(method, `/api/items/1?${q}`, method === 'POST' ? 'x=1' : '', method === 'POST' ? [FORM] : []);
    assert.equal(r.status, 200, `${method} ${q}`);
    assert.equal(r.seen?.method, method, q);
    assert.equal(r.seen?.url, `/api/items/1?${q}`, q);
  }
});

test('same route: an override on a path no other route claims by method is forwarded unchanged (one catch-all)', async () => {
  const r = await send('POST', '/other/items/1?_method=DELETE', '_method=DELETE', [FORM]);
  assert.equal(r.status, 200);
  assert.equal(r.seen?.body.toString(), '_method=DELETE');
});

test('urlencoded body: refused; other fields and same-route methods forwarded with the body intact', async () => {
  assert.equal((await send('POST', '/api/items/1', 'a=1&_method=DELETE', [FORM])).status, 400);
  assert.equal((await send('POST', '/api/items/1', 'a=1&.method=delete', [FORM])).status, 400);
  assert.equal((await send('POST', '/api/items/1', 'a=1&_method=DELETE', ['Content-Type: Application/X-WWW-Form-Urlencoded; charset=utf-8'])).status, 400);
  // Rack parses a POST body without a Content-Type as a form
  assert.equal((await send('POST', '/api/items/1', '_method=DELETE')).status, 400);
  const ok = await send('POST', '/api/items/1', 'a=1&_method=PATCH', [FORM]);
  assert.equal(ok.status, 200);
  assert.equal(ok.seen?.body.toString(), 'a=1&_method=PATCH');
  // no framework reads _method from a text/plain body
  assert.equal((await send('POST', '/api/items/1', '_method=DELETE', ['Content-Type: text/plain'])).status, 200);
});

test('JSON body: Laravel reads _method from it', async () => {
  assert.equal((await send('POST', '/api/items/1', '{"_method":"delete"}', ['Content-Type: application/json'])).status, 400);
  assert.equal((await send('POST', '/api/items/1', '{"_method":"PUT"}', ['Content-Type: application/json'])).status, 200);
  assert.equal((await send('POST', '/api/items/1', '{"x":{"_method":"DELETE"}}', ['Content-Type: application/json'])).status, 200);
});

test('multipart body: a _method field (PHP spellings too) is refused, a file named _method is not a field', async () => {
  const multipart = (name: string, extra = '') => `--b0\r\nContent-Disposition: form-data; name="a"\r\n\r\n1\r\n--b0\r\nContent-Disposition: form-data; name="${name}"${extra}\r\n\r\nDELETE\r\n--b0--\r\n`;
  const ct = 'Content-Type: multipart/form-data; boundary=b0';
  assert.equal((await send('POST', '/api/items/1', multipart('_method'), [ct])).status, 400);
  assert.equal((await send('POST', '/api/items/1', multipart('.method'), [ct])).status, 400);
  assert.equal((await send('POST', '/api/items/1', multipart(' _method'), [ct])).status, 400);
  const file = await send('POST', '/api/items/1', multipart('_method', '; filename="m.txt"'), [ct]);
  assert.equal(file.status, 200);
  assert.equal(file.seen?.body.toString(), multipart('_method', '; filename="m.txt"'));
});

test('forward-method-override lists the method: the operator let this route take it, forwarded', async () => {
  const r = await send('POST', '/legacy/items/1?_method=DELETE', '_method=DELETE', [FORM]);
  assert.equal(r.status, 200);
  assert.equal(r.seen?.url, '/legacy/items/1?_method=DELETE');
  // a method it does not list is still refused when another route takes it (none here: forwarded)
  assert.equal((await send('POST', '/legacy/items/1?_method=PUT', 'x=1', [FORM])).status, 200);
});

test('a form body too large to be read first is refused (413) where an override could move the POST; others stream', async () => {
  const big = 'a=' + 'x'.repeat(200) + '&_method=PUT';
  const r = await send('POST', '/big/upload', big, [FORM]);
  assert.equal(r.status, 413);
  assert.equal(r.seen, undefined);
  assert.match(r.body, /max-body-buffer-bytes/);
  // chunked, growing past the threshold while read
  const chunked = await rawRequest(gw.address('http').port, `POST /big/upload HTTP/1.1\r\nHost: a.example\r\n${FORM}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n${big.length.toString(16)}\r\n${big}\r\n0\r\n\r\n`);
  assert.equal(chunked.status, 413);
  // a small one is read and checked
  assert.equal((await send('POST', '/big/upload', 'a=1&_method=PUT', [FORM])).status, 400);
  assert.equal((await send('POST', '/big/upload', 'a=1', [FORM])).status, 200);
  // a body no framework reads _method from streams as before
  const plain = await send('POST', '/big/upload', big, ['Content-Type: application/octet-stream']);
  assert.equal(plain.status, 200);
  assert.equal(plain.seen?.body.length, big.length);
});

test('HTTP/2: the query and the body are checked the same way', async () => {
  const session = http2.connect(`http://127.0.0.1:${gw.address('h2c').port}`);
  session.on('error', () => undefined);
  const one = async (path: string, body: string, type: string) => (await h2Request(session, { ':method': 'POST', ':path': path, 'content-type': type }, body)).status;
  try {
    const g = guarded.seen.length;
    assert.equal(await one('/api/items/1?_method=DELETE', 'x=1', 'application/x-www-form-urlencoded'), 400);
    assert.equal(await one('/api/items/1', '_method=DELETE', 'application/x-www-form-urlencoded'), 400);
    assert.equal(await one('/api/items/1', '_method=PUT', 'application/x-www-form-urlencoded'), 200);
    assert.equal(guarded.seen.length, g);
  } finally {
    session.close();
  }
});

test('the refusals are counted by reason (method_override, method_override_unchecked)', async () => {
  const count = async (reason: string) => (await gw.metrics.blockedRequests.get()).values.find((x) => x.labels.reason === reason)?.value ?? 0;
  const before = await count('method_override');
  assert.equal((await send('POST', '/api/items/1?_method=DELETE', 'x=1', [FORM])).status, 400);
  assert.equal((await send('POST', '/api/items/1', '_method=DELETE', [FORM])).status, 400);
  assert.equal(await count('method_override'), before + 2);
  assert.ok((await count('method_override_unchecked')) >= 2, 'the 413s above');
});
