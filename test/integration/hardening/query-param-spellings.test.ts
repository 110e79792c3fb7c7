// Session 31 audit: a route's `query-param` condition against the spellings an upstream reads as
// that parameter. PHP registers `%20action`, `action%00x` as `action` and `do.it`, `do it`,
// `do[it` as `do_it`; ASP.NET compares names case-insensitively (`ACTION`). The gateway read only
// the exact name, so a stricter route on `action=delete` (allow-from, agents, rate limits) was
// skipped for the lax catch-all while the application deleted. Real gateway on loopback, a
// recording upstream, exact targets over a socket.
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
  gw = await gatewayFrom(`
system { graceful-shutdown-timeout-secs 2 }
listeners { listener "http" { address "127.0.0.1:0"; } }
routes {
  route "delete" {
    priority "critical"
    matches { path-prefix "/"; query-param "action" "delete" }
    upstream "backend"
    allow-from "192.0.2.1/32"
  }
  route "purge" {
    priority "critical"
    matches { path-prefix "/"; query-param "do_purge" }
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

const get = async (target: string) => (await rawRequest(port, http1('GET', target, ['Host: localhost', 'Connection: close']))).status;

test('spellings PHP or ASP.NET read as the parameter a route reads are refused 400, never forwarded', async () => {
  assert.equal(await get('/x?action=delete'), 403, 'the strict route');
  assert.equal(await get('/x?do_purge=1'), 403, 'the strict route');
  assert.equal(await get('/x?action=view'), 200, 'the default route');
  assert.equal(await get('/x?action=delete&%20action=delete'), 403, 'every reading agrees: the strict route');
  const forwarded = upstream.seen.length;
  const spellings = [
    '%20action=delete', // PHP drops leading spaces
    '+action=delete',
    'action%00x=delete', // PHP's name ends at the NUL
    'action=view&%20action=delete', // the gateway read "view", PHP the last: "delete"
    'ACTION=delete', // ASP.NET: case-insensitive names
    'Action=delete',
    'do.purge=1', // PHP: '.' -> '_'
    'do%20purge=1', // PHP: ' ' -> '_'
    'do[purge=1', // PHP: an unclosed '[' -> '_'
    'DO_PURGE=1',
  ];
  for (const q of spellings) assert.equal(await get(`/x?${q}`), 400, q);
  assert.equal(upstream.seen.length, forwarded, 'nothing forwarded');
  // names that are no framework's `action` stay with the default route
  for (const q of ['actions=delete', 'x_action=delete', 'action_=delete', 'do[purge]=1']) assert.equal(await get(`/x?${q}`), 200, q);
});
