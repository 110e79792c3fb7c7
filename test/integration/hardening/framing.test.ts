// Request framing (session 12 audit): every ambiguous way to delimit a request body is refused
// with the JSON 400 (501 for an unknown coding) and the connection closed, so the bytes after it
// can never be read as a second request (the smuggled `GET /smuggled` below never reaches the
// upstream). These held: Node's llhttp is strict and no listener sets insecureHTTPParser; this
// test keeps it that way.
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
  up = await startUpstream();
  gw = (await gatewayFrom(simpleConfig(up.address))).gw;
  port = gw.address('http').port;
});

after(async () => {
  await gw.close();
  await up.close();
});

const SMUG = 'GET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n';
const post = (headers: string, body: string) => `POST /a HTTP/1.1\r\nHost: a\r\n${headers}\r\n${body}${SMUG}`;

const REFUSED: [string, string, number][] = [
  ['Content-Length with Transfer-Encoding', post('Content-Length: 4\r\nTransfer-Encoding: chunked\r\n', '0\r\n\r\n'), 400],
  ['Transfer-Encoding with Content-Length', post('Transfer-Encoding: chunked\r\nContent-Length: 40\r\n', '0\r\n\r\n'), 400],
  ['two Content-Lengths', post('Content-Length: 0\r\nContent-Length: 37\r\n', ''), 400],
  ['two equal Content-Lengths', post('Content-Length: 3\r\nContent-Length: 3\r\n', 'abc'), 400],
  ['a Content-Length list', post('Content-Length: 3, 3\r\n', 'abc'), 400],
  ['a signed Content-Length', post('Content-Length: +3\r\n', 'abc'), 400],
  ['Transfer-Encoding: chunked, identity', post('Transfer-Encoding: chunked, identity\r\n', '0\r\n\r\n'), 400],
  ['Transfer-Encoding: identity', post('Transfer-Encoding: identity\r\nContent-Length: 3\r\n', 'abc'), 400],
  ['two Transfer-Encoding: chunked', post('Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n', '0\r\n\r\n'), 400],
  ['an unknown transfer coding', post('Transfer-Encoding: xchunked\r\n', '0\r\n\r\n'), 501],
  ['space before the colon', post('Transfer-Encoding : chunked\r\n', '0\r\n\r\n'), 400],
  ['obs-fold', post('Transfer-Encoding:\r\n chunked\r\n', '0\r\n\r\n'), 400],
  ['vertical tab in the value', post('Transfer-Encoding: \x0bchunked\r\n', '0\r\n\r\n'), 400],
  ['bare CR in the head', `POST /a HTTP/1.1\r\nHost: a\rX: y\r\nContent-Length: 3\r\n\r\nabc${SMUG}`, 400],
  ['bare LF line ends', `POST /a HTTP/1.1\nHost: a\nContent-Length: 3\n\nabc${SMUG}`, 400],
  ['chunk extension ended by bare LF', post('Transfer-Encoding: chunked\r\n', '3;x\nabc\r\n0\r\n\r\n'), 400],
  ['chunk data ended by bare LF', post('Transfer-Encoding: chunked\r\n', '3\r\nabc\n0\r\n\r\n'), 400],
  ['a chunk size over 64 bits', post('Transfer-Encoding: chunked\r\n', 'FFFFFFFFFFFFFFFFF3\r\nabc\r\n0\r\n\r\n'), 400],
  ['a space after the chunk size', post('Transfer-Encoding: chunked\r\n', '3 \r\nabc\r\n0\r\n\r\n'), 400],
  ['chunked on HTTP/1.0', `POST /a HTTP/1.0\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n${SMUG}`, 400],
  ['NUL in a header value', `GET /a HTTP/1.1\r\nHost: a\r\nX: a\0b\r\n\r\n${SMUG}`, 400],
  ['HTTP/1.2', `GET /a HTTP/1.2\r\nHost: a\r\n\r\n${SMUG}`, 400],
  // session 22 probes (held)
  ['Transfer-Encoding: chunked, (a trailing comma)', post('Transfer-Encoding: chunked,\r\n', '0\r\n\r\n'), 400],
  ['Transfer-Encoding: ,chunked', post('Transfer-Encoding: ,chunked\r\n', '0\r\n\r\n'), 501],
  ['Transfer-Encoding: chunked and an empty Transfer-Encoding', post('Transfer-Encoding: chunked\r\nTransfer-Encoding:\r\n', '0\r\n\r\n'), 501],
  ['Transfer-Encoding: "chunked"', post('Transfer-Encoding: "chunked"\r\n', '0\r\n\r\n'), 501],
  ['a quoted chunk extension holding CR LF', post('Transfer-Encoding: chunked\r\n', '3;x="a\r\nb"\r\nabc\r\n0\r\n\r\n'), 400],
  ['a 20 KiB chunk extension', post('Transfer-Encoding: chunked\r\n', `3;x=${'a'.repeat(20000)}\r\nabc\r\n0\r\n\r\n`), 400],
  ['a chunk size 0x3', post('Transfer-Encoding: chunked\r\n', '0x3\r\nabc\r\n0\r\n\r\n'), 400],
  ['a chunk size ended by a bare CR', post('Transfer-Encoding: chunked\r\n', '3\rabc\r\n0\r\n\r\n'), 400],
  ['Content-Length in a trailer', post('Transfer-Encoding: chunked\r\n', '3\r\nabc\r\n0\r\nContent-Length: 50\r\n\r\n'), 400],
  ['tabs between the request line parts', `GET\t/a\tHTTP/1.1\r\nHost: a\r\n\r\n${SMUG}`, 501],
  ['an empty Content-Length', post('Content-Length: \r\n', ''), 400],
  ['obs-fold in another header', post('X-A: a\r\n b\r\nContent-Length: 3\r\n', 'abc'), 400],
];

test('ambiguous framing is refused and the connection closed: nothing reaches the upstream', async () => {
  for (const [label, bytes, status] of REFUSED) {
    const n = up.seen.length;
    const r = await rawExchange(port, bytes, { responses: 2 });
    assert.deepEqual(r.statuses, [status], `${label}: ${JSON.stringify(r.text.slice(0, 100))}`);
    assert.ok(r.closed, `${label}: connection closed`);
    assert.match(r.text, /\r\n\r\n\{"error":/, `${label}: the JSON error body`);
    assert.deepEqual(up.seen.slice(n).map((s) => s.url), [], `${label}: nothing forwarded`);
  }
});

test('a body the front door refuses is discarded, never parsed as the next request', async () => {
  for (const target of ['/a%2fb', '/a;x', '/%zz']) {
    const n = up.seen.length;
    // waitMs 1000: a negative window (a smuggled second answer would come within it), not a wait
    const r = await rawExchange(port, `POST ${target} HTTP/1.1\r\nHost: a\r\nContent-Length: ${SMUG.length}\r\n\r\n${SMUG}`, { responses: 2, waitMs: 1000 });
    assert.deepEqual(r.statuses, [400], `${target}: ${JSON.stringify(r.text.slice(0, 100))}`);
    assert.deepEqual(up.seen.slice(n).map((s) => s.url), [], target);
  }
  // the same with a chunked body the front door refuses (501 for gzip, chunked)
  const n = up.seen.length;
  const r = await rawExchange(port, `POST /a HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n${SMUG.length.toString(16)}\r\n${SMUG}\r\n0\r\n\r\n`, { responses: 2 });
  assert.deepEqual(r.statuses, [501]);
  assert.deepEqual(up.seen.slice(n).map((s) => s.url), []);
});

// Session 19 audit: a Transfer-Encoding the front door refuses (501) kept the connection open, so
// a request pipelined after the body Node framed was forwarded. With an empty Transfer-Encoding
// beside a Content-Length (Node frames by the length) RFC 9112 §6.1 says close after answering; a
// hop in front that reads `identity, chunked` or an empty coding otherwise frames another body.
test('a Transfer-Encoding refused with 501 closes the connection: the request after it is never read', async () => {
  const cases: [string, string][] = [
    ['empty Transfer-Encoding with Content-Length', post('Transfer-Encoding:\r\nContent-Length: 3\r\n', 'abc')],
    ['Transfer-Encoding: identity, chunked', post('Transfer-Encoding: identity, chunked\r\n', '0\r\n\r\n')],
    ['Transfer-Encoding: gzip, chunked', post('Transfer-Encoding: gzip, chunked\r\n', '0\r\n\r\n')],
  ];
  for (const [label, bytes] of cases) {
    const n = up.seen.length;
    const r = await rawExchange(port, bytes, { responses: 2 });
    assert.deepEqual(r.statuses, [501], `${label}: ${JSON.stringify(r.text.slice(0, 200))}`);
    assert.ok(r.closed, `${label}: connection closed`);
    assert.match(r.text, /\r\nconnection: close\r\n/i, label);
    assert.deepEqual(up.seen.slice(n).map((s) => s.url), [], `${label}: nothing forwarded`);
  }
});
