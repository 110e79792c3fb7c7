// Session 31 audit: a route whose `method` condition names GET did not match HEAD, which every
// framework runs through the GET handler (RFC 9110 §9.3.2: HEAD is GET without the content). A
// HEAD went past the GET route's allow-from (and its agents, rate limits) to the catch-all, and the
// application ran the handler: its status, Content-Length, Location, Set-Cookie reached the client.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { gatewayFrom } from '../../helpers/gateway.ts';
import { startUpstream, type TestUpstream } from '../../helpers/upstream.ts';
import { http1, rawExchange } from '../../helpers/raw-http.ts';

let upstream: TestUpstream;
let gw: Awaited<ReturnType<typeof gatewayFrom>>;
let port: number;

before(async () => {
  upstream = await startUpstream();
  gw = await gatewayFrom(`
system { graceful-shutdown-timeout-secs 2 }
listeners { listener "http" { address "127.0.0.1:0"; } }
routes {
  route "reports" {
    matches { path-prefix "/reports"; method "GET" }
    upstream "backend"
    allow-from "192.0.2.1/32"
  }
  route "heads" {
    matches { path-prefix "/heads"; method "HEAD" }
    upstream "backend"
    allow-from "192.0.2.1/32"
  }
  route "main" {
    matches { path-prefix "/" }
    upstream "backend"
  }
}
upstreams { upstream "backend" { target "${upstream.address}"; } }
`);
  port = gw.gw.address('http').port;
});

after(async () => {
  await gw?.gw.close();
  await upstream?.close();
});

// the status line only (a HEAD answer's Content-Length frames no body); Connection: close ends each exchange
const send = async (method: string, target: string) => (await rawExchange(port, http1(method, target, ['Host: localhost', 'Connection: close']))).statuses.at(-1);

test('a route that names GET claims HEAD too; other methods still go elsewhere', async () => {
  const before = upstream.seen.length;
  assert.equal(await send('GET', '/reports/1'), 403);
  assert.equal(await send('HEAD', '/reports/1'), 403, 'HEAD is refused by the GET route, not forwarded by the catch-all');
  assert.equal(upstream.seen.length, before, 'nothing forwarded');
  // a route naming HEAD alone does not claim GET; POST stays with the catch-all
  assert.equal(await send('HEAD', '/heads/1'), 403);
  assert.equal(await send('GET', '/heads/1'), 200);
  assert.equal(await send('POST', '/reports/1'), 200);
  assert.deepEqual(
    upstream.seen.slice(before).map((s) => s.method),
    ['GET', 'POST'],
  );
});
