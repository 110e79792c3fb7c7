// HTTP/2 header blocks no client library would send, as raw frames (session 12 audit): what the
// h2 -> h1 translation could turn into injected headers or another target. These held (nghttp2
// refuses or drops them before the gateway sees the request); this test keeps it that way.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
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
listeners { listener "h2c" { address "127.0.0.1:0"; protocol "h2"; default-route "main" } }
routes { route "main" { matches { path-prefix "/" }; upstream "backend" } }
upstreams { upstream "backend" { target "${up.address}" } }
`)
  ).gw;
  port = gw.address('h2c').port;
});

after(async () => {
  await gw.close();
  await up.close();
});

/** HPACK literal without indexing: a static-table name index (< 15) or a new name. */
function lit(name: string | number, value: string): Buffer {
  const v = Buffer.from(value, 'latin1');
  const head = typeof name === 'number' ? Buffer.from([name]) : Buffer.concat([Buffer.from([0x00, name.length]), Buffer.from(name, 'latin1')]);
  return Buffer.concat([head, Buffer.from([v.length]), v]);
}
const GET_HTTP = Buffer.from([0x82, 0x86]); // :method GET, :scheme http
const PATH = 4;
const AUTHORITY = 1;

/** Sends one request as raw HEADERS; returns whether the stream was reset and what reached the upstream. */
async function send(fields: Buffer[]): Promise<{ reset: boolean; seen: TestUpstream['seen'] }> {
  const s = await openRaw(port, false);
  const n = up.seen.length;
  s.socket.write(frame(FrameType.HEADERS, Flag.END_HEADERS | Flag.END_STREAM, 1, Buffer.concat(fields)));
  await until(() => `RST_STREAM, DATA or a close (frames so far: ${s.received.join(',')})`, () => s.received.includes(FrameType.RST_STREAM) || s.received.includes(FrameType.DATA) || s.closed);
  s.socket.destroy();
  return { reset: s.received.includes(FrameType.RST_STREAM) || s.received.includes(FrameType.GOAWAY), seen: up.seen.slice(n) };
}

test('malformed HTTP/2 header blocks are reset, never forwarded', async () => {
  const base = [GET_HTTP, lit(PATH, '/p'), lit(AUTHORITY, 'a.example')];
  const cases: [string, Buffer[]][] = [
    ['an upper-case name', [...base, lit('X-Internal-Token', 's')]],
    ['a connection-specific header', [...base, lit('connection', 'x-forwarded-for')]],
    ['transfer-encoding', [...base, lit('transfer-encoding', 'chunked')]],
    ['te other than trailers', [...base, lit('te', 'gzip')]],
    ['a pseudo-header after a regular one', [GET_HTTP, lit(PATH, '/p'), lit('x-a', 'b'), lit(AUTHORITY, 'a.example')]],
    ['two :path', [GET_HTTP, lit(PATH, '/p'), lit(PATH, '/admin'), lit(AUTHORITY, 'a.example')]],
    ['an unknown pseudo-header', [...base, lit(':foo', 'bar')]],
    ['an absolute-form :path', [GET_HTTP, lit(PATH, 'http://evil.example/admin'), lit(AUTHORITY, 'a.example')]],
    ['* as :path on GET', [GET_HTTP, lit(PATH, '*'), lit(AUTHORITY, 'a.example')]],
    ['a space in :path', [GET_HTTP, lit(PATH, '/p q'), lit(AUTHORITY, 'a.example')]],
    ['neither :authority nor host', [GET_HTTP, lit(PATH, '/p')]],
  ];
  for (const [label, fields] of cases) {
    const r = await send(fields);
    assert.ok(r.reset, `${label}: stream reset`);
    assert.deepEqual(r.seen.map((x) => x.url), [], `${label}: nothing forwarded`);
  }
});

test('CR, LF, NUL in values and bad characters in names never become upstream headers', async () => {
  const base = [GET_HTTP, lit(PATH, '/p'), lit(AUTHORITY, 'a.example')];
  const cases: [string, Buffer[]][] = [
    ['CRLF in a value', [...base, lit('x-a', 'v\r\nx-internal-token: s')]],
    ['LF in a value', [...base, lit('x-a', 'v\nx-internal-token: s')]],
    ['NUL in a value', [...base, lit('x-a', 'v\0y')]],
    ['a space in a name', [...base, lit('x a', 's')]],
    ['a colon in a name', [...base, lit('x:a', 's')]],
  ];
  for (const [label, fields] of cases) {
    const r = await send(fields);
    for (const s of r.seen) {
      for (const [name, value] of Object.entries(s.headers)) {
        assert.doesNotMatch(`${name}: ${String(value)}`, /[\r\n\0]|internal-token|^x a|^x:a/, `${label}: ${name}`);
      }
    }
  }
});
