// Method overrides (docs/security.md, "Identity headers"): X-HTTP-Method-Override, X-HTTP-Method
// and X-Method-Override are removed on the way upstream, except on a route that opts in with
// `policies { forward-method-override ... }`, and there only on a POST naming a listed method.
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

const config = (optIn: boolean) => `
system { graceful-shutdown-timeout-secs 1 }
listeners {
  listener "http" { address "127.0.0.1:0" }
  listener "h2c" { address "127.0.0.1:0"; protocol "h2" }
}
routes {
  route "legacy" { matches { path-prefix "/legacy" }; upstream "backend"; ${optIn ? 'policies { forward-method-override "PUT" "DELETE" }' : ''} }
  route "main" { matches { path-prefix "/" }; upstream "backend" }
}
upstreams { upstream "backend" { target "${up.address}" } }
`;

before(async () => {
  up = await startUpstream();
  gw = (await gatewayFrom(config(true))).gw;
});

after(async () => {
  await gw.close();
  await up.close();
});

/** Sends one HTTP/1.1 request; returns what the upstream saw of it. */
async function seen(method: string, path: string, headers: string[]): Promise<{ method: string; headers: Record<string, unknown> }> {
  const n = up.seen.length;
  const body = method === 'POST' ? 'x=1' : '';
  const r = await rawRequest(gw.address('http').port, http1(method, path, ['Host: a.example', ...headers, ...(body ? [`Content-Length: ${body.length}`] : []), 'Connection: close'], body));
  assert.equal(r.status, 200);
  assert.equal(up.seen.length, n + 1);
  return up.seen[n]!;
}

test('the opted-in route forwards an override of a POST to a listed method, the method unchanged', async () => {
  const s = await seen('POST', '/legacy/items/1', ['X-HTTP-Method-Override: DELETE']);
  assert.equal(s.method, 'POST');
  assert.equal(s.headers['x-http-method-override'], 'DELETE');
  const t = await seen('POST', '/legacy/items/1', ['X-HTTP-Method: PUT', 'X-Method-Override: delete']);
  assert.equal(t.headers['x-http-method'], 'PUT');
  assert.equal(t.headers['x-method-override'], 'delete');
});

test('the opted-in route still removes an override on a GET, to an unlisted method, or repeated', async () => {
  const get = await seen('GET', '/legacy/items/1', ['X-HTTP-Method-Override: DELETE']);
  assert.equal(get.headers['x-http-method-override'], undefined);
  const patch = await seen('POST', '/legacy/items/1', ['X-HTTP-Method-Override: PATCH']);
  assert.equal(patch.headers['x-http-method-override'], undefined);
  const twice = await seen('POST', '/legacy/items/1', ['X-HTTP-Method-Override: PUT', 'X-HTTP-Method-Override: DELETE']);
  assert.equal(twice.headers['x-http-method-override'], undefined);
});

test('every other route removes them as before', async () => {
  const s = await seen('POST', '/other', ['X-HTTP-Method-Override: DELETE', 'X-HTTP-Method: DELETE', 'X-Method-Override: DELETE']);
  for (const n of ['x-http-method-override', 'x-http-method', 'x-method-override']) assert.equal(s.headers[n], undefined, n);
});

test('HTTP/2: forwarded on the opted-in route', async () => {
  const session = http2.connect(`http://127.0.0.1:${gw.address('h2c').port}`);
  session.on('error', () => undefined);
  try {
    const n = up.seen.length;
    const { status } = await h2Request(session, { ':method': 'POST', ':path': '/legacy/items/2', 'x-http-method-override': 'PUT' }, 'x=1');
    assert.equal(status, 200);
    assert.equal(up.seen[n]!.headers['x-http-method-override'], 'PUT');
  } finally {
    session.close();
  }
});

test('a reload without the policy removes them again on that route', async () => {
  await gw.reload(config(false));
  try {
    const s = await seen('POST', '/legacy/items/1', ['X-HTTP-Method-Override: DELETE']);
    assert.equal(s.headers['x-http-method-override'], undefined);
  } finally {
    await gw.reload(config(true));
  }
  const s = await seen('POST', '/legacy/items/1', ['X-HTTP-Method-Override: DELETE']);
  assert.equal(s.headers['x-http-method-override'], 'DELETE');
});
