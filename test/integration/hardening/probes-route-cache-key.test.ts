// Session 21 audit probes: the cache key against the route key. Two routes that match one URL on
// something the key leaves out (a header condition, the listener) share the cache: the answer one
// route's upstream gave was served to a client the other route would have sent elsewhere.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startUpstream, type TestUpstream } from '../../helpers/upstream.ts';
import { gatewayFrom } from '../../helpers/gateway.ts';
import { rawRequest, http1 } from '../../helpers/raw-http.ts';
import type { Gateway } from '../../../src/server/gateway.ts';

let stable: TestUpstream;
let beta: TestUpstream;
let internal: TestUpstream;
let gw: Gateway;

const cached = (name: string) => (_req: unknown, res: { writeHead: (s: number, h: Record<string, string>) => void; end: (b: string) => void }) => {
  res.writeHead(200, { 'content-type': 'text/plain', 'cache-control': 'public, max-age=60' });
  res.end(name);
};

before(async () => {
  stable = await startUpstream(cached('stable'));
  beta = await startUpstream(cached('beta'));
  internal = await startUpstream(cached('internal'));
  gw = (
    await gatewayFrom(`
system { graceful-shutdown-timeout-secs 1 }
listeners {
  listener "public" { address "127.0.0.1:0" }
  listener "internal" { address "127.0.0.1:0" }
}
routes {
  route "beta" { matches { path-prefix "/"; header "X-Beta" "1" }; listeners "public"; upstream "beta"; cache { enabled #true } }
  route "ops" { matches { path-prefix "/" }; listeners "internal"; upstream "internal"; cache { enabled #true } }
  route "main" { matches { path-prefix "/" }; listeners "public"; upstream "stable"; cache { enabled #true } }
}
upstreams {
  upstream "stable" { target "${stable.address}" }
  upstream "beta" { target "${beta.address}" }
  upstream "internal" { target "${internal.address}" }
}
cache { enabled #true; status-header #true }
`)
  ).gw;
});

after(async () => {
  await gw.close();
  await stable.close();
  await beta.close();
  await internal.close();
});

const get = (listener: string, target: string, headers: string[] = []) => rawRequest(gw.address(listener).port, http1('GET', target, ['Host: a', ...headers, 'Connection: close']));

test('a route chosen by a header the key leaves out never serves its answer to another route', async () => {
  assert.equal((await get('public', '/page', ['X-Beta: 1'])).body, 'beta');
  assert.equal((await get('public', '/page')).body, 'stable', 'a client without X-Beta is routed to main: its upstream, not beta\'s stored answer');
  assert.equal((await get('public', '/page', ['X-Beta: 1'])).body, 'beta');
  assert.match((await get('public', '/page')).headers['cache-status'] ?? '', /hit/, 'each route still caches');
});

test('an internal listener\'s route never serves its answer to the public listener', async () => {
  assert.equal((await get('internal', '/status')).body, 'internal');
  assert.equal((await get('public', '/status')).body, 'stable');
});
