// Cache-key differentials (session 12 audit): an input the upstream acts on but the cache key
// leaves out lets one client store its answer for everyone. Two of them:
// - a GET with a body (a "fat GET"): frameworks that merge body parameters into a GET's params
//   answer for the body, the key has only the URL;
// - parameter cloaking: with `ignore-query-params "utm_source"`, `?utm_source=a;cb=evil` was keyed
//   as `/c`, while an upstream that splits the query on ';' too (Rack, older Python) read cb=evil.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import { h2Request } from '../../helpers/http.ts';
import { startUpstream, type TestUpstream } from '../../helpers/upstream.ts';
import { gatewayFrom } from '../../helpers/gateway.ts';
import { rawRequest, http1 } from '../../helpers/raw-http.ts';
import type { Gateway } from '../../../src/server/gateway.ts';

let up: TestUpstream;
let gw: Gateway;
let port: number;

before(async () => {
  // answers with the `cb` parameter it reads from the query (split on & and ;) or the body
  up = await startUpstream((req, res, body) => {
    const params = `${req.url!.split('?')[1] ?? ''}&${body.toString()}`;
    const cb = /(?:^|[&;])cb=([^&;]*)/.exec(params)?.[1] ?? 'none';
    res.writeHead(200, { 'content-type': 'text/plain', 'cache-control': 'public, max-age=60' });
    res.end(`cb=${cb}`);
  });
  gw = (
    await gatewayFrom(`
system { graceful-shutdown-timeout-secs 1 }
listeners {
  listener "http" { address "127.0.0.1:0" }
  listener "h2c" { address "127.0.0.1:0"; protocol "h2" }
}
// get-body "forward": the fat GET is forwarded (refused by default, get-body.test.ts)
routes { route "main" { matches { path-prefix "/" }; upstream "backend"; policies { get-body "forward" }; cache { enabled #true; ignore-query-params "utm_source" } } }
upstreams { upstream "backend" { target "${up.address}" } }
cache { enabled #true; status-header #true }
`)
  ).gw;
  port = gw.address('http').port;
});

after(async () => {
  await gw.close();
  await up.close();
});

const get = (target: string, headers: string[] = [], body = '') => rawRequest(port, http1('GET', target, ['Host: a', ...headers, 'Connection: close'], body));

test('a GET with a body is neither stored nor answered from the cache', async () => {
  const fat = await get('/f', ['Content-Length: 6', 'Content-Type: application/x-www-form-urlencoded'], 'cb=bad');
  assert.equal(fat.body, 'cb=bad', 'the upstream read the body');
  const victim = await get('/f');
  assert.equal(victim.body, 'cb=none', `the next client gets its own answer (${victim.headers['cache-status']})`);
  assert.match((await get('/f')).headers['cache-status'] ?? '', /hit/, 'a plain GET is still cached');
  const chunked = await get('/f', ['Transfer-Encoding: chunked'], '6\r\ncb=bad\r\n0\r\n\r\n');
  assert.equal(chunked.body, 'cb=bad', 'a chunked GET body goes to the upstream, not the stored answer');
  // HTTP/2: DATA after a GET's HEADERS, no content-length
  const session = http2.connect(`http://127.0.0.1:${gw.address('h2c').port}`);
  try {
    const { body } = await h2Request(session, { ':path': '/f2', ':authority': 'a' }, 'cb=bad');
    assert.equal(body, 'cb=bad');
  } finally {
    session.close();
  }
  assert.equal((await get('/f2')).body, 'cb=none', 'the h2 fat GET was not stored');
});

test("an ignored query parameter cannot cloak another behind ';'", async () => {
  const attack = await get('/c?utm_source=a;cb=evil');
  assert.equal(attack.body, 'cb=evil');
  const victim = await get('/c?utm_source=b');
  assert.equal(victim.body, 'cb=none', `keyed apart from the cloaked request (${victim.headers['cache-status']})`);
  assert.match((await get('/c')).headers['cache-status'] ?? '', /hit/, 'utm_source is still ignored: /c shares the entry of /c?utm_source=b');
});
