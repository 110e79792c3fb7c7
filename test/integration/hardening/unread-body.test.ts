// A request refused before its body was read (a route's allow-from 403, a 404, a rate limit's 429,
// an agent's block: every local answer) kept its HTTP/1.1 connection, so Node read and discarded
// the rest of the body: no `max-body-size-bytes` applied to it (200 MiB of chunks went after a 403
// and the next request on the connection was answered), nor the chunk budget, and one-byte chunks
// cost ~0.6 s of CPU a MiB there. Now such an answer closes the connection, as 413 and 408 did
// (docs/security.md, "Session 25 audit"). HTTP/2 held: Node resets such a stream after the answer.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { gatewayFrom } from '../../helpers/gateway.ts';
import { startUpstream, type TestUpstream } from '../../helpers/upstream.ts';
import { rawConnection } from '../../helpers/raw-http.ts';
import { until } from '../../helpers/until.ts';
import { Flag, FrameType, frame, openRaw, settings } from '../abuse/h2-frames.ts';
import type { Gateway } from '../../../src/server/gateway.ts';

let upstream: TestUpstream;
let gw: Gateway;

before(async () => {
  upstream = await startUpstream();
  ({ gw } = await gatewayFrom(`
system { graceful-shutdown-timeout-secs 2 }
listeners {
  listener "http" { address "127.0.0.1:0" }
  listener "h2c" { address "127.0.0.1:0"; protocol "h2" }
}
routes {
  route "denied" { matches { path-prefix "/denied/" } ; upstream "backend"; allow-from "192.0.2.1/32" }
  route "main" { matches { path-prefix "/" } ; upstream "backend" }
}
upstreams { upstream "backend" { target "${upstream.address}" } }
`));
});

after(async () => {
  await gw.close();
  await upstream.close();
});

test('HTTP/1.1: a refusal before the body was read closes the connection; the rest of the body is not read as the request', async () => {
  const conn = await rawConnection(gw.address('http').port);
  const { socket: s, closed } = conn;
  try {
    s.write('POST /denied/upload HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n');
    await until(() => `the 403 (got ${JSON.stringify(conn.answer.slice(0, 80))})`, () => /\r\n\r\n\{.*\}$/.test(conn.answer));
    // before: Node read on (any length: no body limit applies here) and answered the next request
    if (!s.destroyed) s.write('5\r\nworld\r\n0\r\n\r\nGET /after HTTP/1.1\r\nHost: a\r\n\r\n');
    await closed;
  } finally {
    s.destroy();
  }
  assert.match(conn.answer, /^HTTP\/1\.1 403 /);
  assert.match(conn.answer, /\r\nconnection: close\r\n/i);
  assert.equal(conn.answer.match(/HTTP\/1\.1 /g)!.length, 1, 'one answer');
  assert.ok(!upstream.seen.some((r) => r.url === '/after'), 'nothing after the refused body was taken for a request');
});

test('HTTP/2 (held): a refusal before the body was read resets the stream once the answer is out', async () => {
  const path = '/denied/upload';
  const raw = await openRaw(gw.address('h2c').port, false);
  try {
    const block = Buffer.concat([Buffer.from([0x83, 0x86, 0x04, path.length]), Buffer.from(path), Buffer.from([0x01, 1]), Buffer.from('a')]);
    raw.socket.write(Buffer.concat([settings(), frame(FrameType.HEADERS, Flag.END_HEADERS, 1, block), frame(FrameType.DATA, 0, 1, Buffer.from('hello'))]));
    await until(() => `the stream to be reset (frames ${raw.received.join(',')})`, () => raw.received.includes(FrameType.RST_STREAM));
    assert.ok(raw.received.indexOf(FrameType.HEADERS) < raw.received.indexOf(FrameType.RST_STREAM), 'the answer first');
  } finally {
    raw.socket.destroy();
  }
});
