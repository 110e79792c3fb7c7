// Cached personal pages (session 13 audit): a caching route gave every 200 without freshness
// information the heuristic lifetime (`default-ttl-secs`, 3600 s by default), also when the
// request carried a Cookie. An application that answers a logged-in user's page without
// Cache-Control (common: the session is the cookie, the page "just works" without a cache in
// front) had it stored and served to everyone for an hour; web cache deception makes it a
// targeted attack: `/account/profile/x.css` looks like an asset to whoever enabled the cache for
// it, the application ignores the suffix, the victim follows a link, the attacker reads the copy.
// Now a response to a request with a Cookie is stored only when the origin said so explicitly
// (`max-age`, `s-maxage`, `Expires` or `public`): the heuristic is for anonymous requests.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startUpstream, type TestUpstream } from '../../helpers/upstream.ts';
import { gatewayFrom } from '../../helpers/gateway.ts';
import { rawRequest, http1 } from '../../helpers/raw-http.ts';
import type { Gateway } from '../../../src/server/gateway.ts';

let up: TestUpstream;
let gw: Gateway;

before(async () => {
  // the application: the page of whoever the session cookie says, whatever follows /account/profile
  up = await startUpstream((req, res) => {
    const user = /session=(\w+)/.exec(req.headers.cookie ?? '')?.[1] ?? 'anonymous';
    const headers: Record<string, string> = { 'content-type': 'text/html' };
    if (req.url!.startsWith('/explicit')) headers['cache-control'] = 'max-age=60';
    if (req.url!.startsWith('/dated')) headers['last-modified'] = new Date(Date.now() - 86_400_000).toUTCString();
    res.writeHead(200, headers);
    res.end(`page of ${user}`);
  });
  gw = (
    await gatewayFrom(`
system { graceful-shutdown-timeout-secs 1 }
listeners { listener "http" { address "127.0.0.1:0" } }
routes { route "main" { matches { path-prefix "/" }; upstream "backend"; cache { enabled #true } } }
upstreams { upstream "backend" { target "${up.address}" } }
cache { enabled #true; status-header #true }
`)
  ).gw;
});

after(async () => {
  await gw.close();
  await up.close();
});

const get = (path: string, cookie?: string) => rawRequest(gw.address('http').port, http1('GET', path, ['Host: a', ...(cookie ? [`Cookie: ${cookie}`] : []), 'Connection: close']));

test("a logged-in user's page without Cache-Control is not stored for everyone (web cache deception)", async () => {
  for (const path of ['/account/profile/x.css', '/account/profile', '/dated/profile']) {
    const victim = await get(path, 'session=alice');
    assert.equal(victim.body, 'page of alice');
    const attacker = await get(path);
    assert.equal(attacker.body, 'page of anonymous', `${path}: ${attacker.headers['cache-status']}`);
  }
});

test('anonymous requests still get the heuristic lifetime; an explicit max-age is stored with a cookie', async () => {
  await get('/anon/page');
  assert.match((await get('/anon/page')).headers['cache-status'] ?? '', /hit/);
  await get('/explicit/page', 'session=bob');
  const next = await get('/explicit/page');
  assert.match(next.headers['cache-status'] ?? '', /hit/, 'the origin said max-age=60 without private');
  assert.equal(next.body, 'page of bob');
});
