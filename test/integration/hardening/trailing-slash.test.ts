// Session 31 audit: routes against a path one trailing `/` apart. Express (strict routing off, its
// default), Rails, Spring 5, ASP.NET Core and Laravel serve `/login/` as `/login` and `/admin` as
// `/admin/`: an exact `path`, a `path-regex` or a folder `path-prefix` that claimed one spelling
// left the other to the catch-all, past the route's allow-from (or agents, rate limits: a login
// route's brute-force limit dodged by `/login/`). Real gateway on loopback, a recording upstream.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { gatewayFrom } from '../../helpers/gateway.ts';
import { startUpstream, type TestUpstream } from '../../helpers/upstream.ts';
import { http1, rawRequest } from '../../helpers/raw-http.ts';

let upstream: TestUpstream;
let gw: Awaited<ReturnType<typeof gatewayFrom>>;
let port: number;

before(async () => {
  upstream = await startUpstream();
  const denied = 'upstream "backend"; allow-from "192.0.2.1/32"';
  gw = await gatewayFrom(`
system { graceful-shutdown-timeout-secs 2 }
listeners { listener "http" { address "127.0.0.1:0"; } }
routes {
  route "login" { matches { path "/login" }; ${denied} }
  route "account" { matches { path "/account/" }; ${denied} }
  route "admin" { matches { path-prefix "/admin/" }; ${denied} }
  route "reports" { matches { path-regex "^/reports/[0-9]+$" }; ${denied} }
  route "manage" { matches { path "/manage"; path-spelling "windows" }; ${denied} }
  route "tools" { matches { path-prefix "/tools/"; path-spelling "windows" }; ${denied} }
  route "main" { priority "low"; matches { path-prefix "/" }; upstream "backend" }
}
upstreams { upstream "backend" { target "${upstream.address}"; } }
`);
  port = gw.gw.address('http').port;
});

after(async () => {
  await gw?.gw.close();
  await upstream?.close();
});

const get = async (target: string) => (await rawRequest(port, http1('GET', target, ['Host: localhost', 'Connection: close']))).status;

test('a path one trailing slash apart from a protected route is that route, never the catch-all', async () => {
  const before = upstream.seen.length;
  for (const target of ['/login', '/login/', '/login//', '/account/', '/account', '/admin/x', '/admin/', '/admin', '/reports/1', '/reports/1/', '/manage', '/manage/', '/MANAGE./', '/tools/x', '/tools', '/TOOLS']) {
    assert.equal(await get(target), 403, target);
  }
  assert.equal(upstream.seen.length, before, 'nothing forwarded');
  // other names stay with the catch-all
  for (const target of ['/loginx', '/login/x', '/accounts', '/adminx', '/reports/1x/', '/reports/', '/managex', '/toolsx', '/']) assert.equal(await get(target), 200, target);
});
