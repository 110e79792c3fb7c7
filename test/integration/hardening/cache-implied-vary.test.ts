// Session 23 audit: cache poisoning through request headers the upstream chose its answer by but
// did not name in Vary. An application that compresses by Accept-Encoding without `Vary:
// Accept-Encoding` had its gzip answer stored and served to clients that never accepted gzip (curl,
// health checkers, libraries without decompression: unreadable bytes); one that reflects the
// Origin in Access-Control-Allow-Origin without `Vary: Origin` had one site's grant served to every
// other site's page, whose browser then refuses the answer (CORS broken for them until expiry, by
// anyone who asks first). Such answers now vary on the header implicitly.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startUpstream, type TestUpstream } from '../../helpers/upstream.ts';
import { gatewayFrom } from '../../helpers/gateway.ts';
import { rawRequest, http1 } from '../../helpers/raw-http.ts';
import type { Gateway } from '../../../src/server/gateway.ts';

let up: TestUpstream;
let gw: Gateway;

before(async () => {
  up = await startUpstream((req, res) => {
    if (req.url!.startsWith('/cors')) {
      const origin = req.headers.origin;
      res.writeHead(200, { 'cache-control': 'public, max-age=600', ...(origin ? { 'access-control-allow-origin': origin } : {}) });
      res.end('cors');
      return;
    }
    if (req.url!.startsWith('/star')) {
      res.writeHead(200, { 'cache-control': 'public, max-age=600', 'access-control-allow-origin': '*' });
      res.end('star');
      return;
    }
    const gzip = /gzip/.test(String(req.headers['accept-encoding'] ?? ''));
    res.writeHead(200, { 'cache-control': 'public, max-age=600', 'content-type': 'text/plain', ...(gzip ? { 'content-encoding': 'gzip' } : {}) });
    res.end(gzip ? 'GZIP-BYTES' : 'plain');
  });
  gw = (
    await gatewayFrom(`
system { graceful-shutdown-timeout-secs 1 }
listeners { listener "http" { address "127.0.0.1:0" } }
routes { route "main" { matches { path-prefix "/" }; upstream "app"; cache { enabled #true } } }
upstreams { upstream "app" { target "${up.address}" } }
cache { enabled #true; status-header #true }
`)
  ).gw;
});

after(async () => {
  await gw.close();
  await up.close();
});

const get = (path: string, headers: string[] = []) => rawRequest(gw.address('http').port, http1('GET', path, ['Host: a', ...headers, 'Connection: close']));

test('a coded answer without Vary: Accept-Encoding is never served to a client that did not accept the coding', async () => {
  const gz = await get('/page', ['Accept-Encoding: gzip, br']);
  assert.equal(gz.headers['content-encoding'], 'gzip');
  const plain = await get('/page');
  assert.equal(plain.headers['content-encoding'], undefined, `got ${plain.body} (${plain.headers['cache-status']})`);
  assert.equal(plain.body, 'plain');
  // each variant still caches
  assert.match((await get('/page', ['Accept-Encoding: gzip, br'])).headers['cache-status'] ?? '', /hit/);
});

test("an Access-Control-Allow-Origin for one Origin is not served to another; '*' is shared", async () => {
  assert.equal((await get('/cors', ['Origin: https://evil.example'])).headers['access-control-allow-origin'], 'https://evil.example');
  const good = await get('/cors', ['Origin: https://app.example']);
  assert.equal(good.headers['access-control-allow-origin'], 'https://app.example', `cache: ${good.headers['cache-status']}`);
  assert.match((await get('/cors', ['Origin: https://app.example'])).headers['cache-status'] ?? '', /hit/);
  assert.equal((await get('/star', ['Origin: https://a.example'])).headers['access-control-allow-origin'], '*');
  assert.match((await get('/star', ['Origin: https://b.example'])).headers['cache-status'] ?? '', /hit/, 'a * grant is one entry for every Origin');
});
