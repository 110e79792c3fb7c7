// Session 18 audit (docs/security.md "Session 18 audit"): a `header:<Name>` rate-limit key read the
// client's header, so `key "header:X-Forwarded-For"` (or X-Real-IP, True-Client-IP ...) with no
// trusted proxy in front was the client's choice: a new value per request, a new bucket, no limit.
// The key now reads what the upstream gets: the address the gateway wrote, or nothing for an
// identity header it removed. Real requests on loopback.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { startUpstream, type TestUpstream } from '../../helpers/upstream.ts';
import { gatewayFrom } from '../../helpers/gateway.ts';
import type { Gateway } from '../../../src/server/gateway.ts';

let up: TestUpstream;
let gw: Gateway;
let port: number;

before(async () => {
  up = await startUpstream();
  const started = await gatewayFrom(`
system { graceful-shutdown-timeout-secs 1 }
listeners { listener "http" { address "127.0.0.1:0" } }
routes {
  route "xff" { matches { path-prefix "/xff" }; upstream "backend"; filters "by-xff" }
  route "real" { matches { path-prefix "/real" }; upstream "backend"; filters "by-real-ip" }
  route "tci" { matches { path-prefix "/tci" }; upstream "backend"; filters "by-tci" }
  route "key" { matches { path-prefix "/key" }; upstream "backend"; filters "by-key" }
}
upstreams { upstream "backend" { target "${up.address}" } }
filters {
  filter "by-xff" { type "rate-limit"; max-rps 0.01; burst 0; key "header:X-Forwarded-For" }
  filter "by-real-ip" { type "rate-limit"; max-rps 0.01; burst 0; key "header:X-Real-IP" }
  filter "by-tci" { type "rate-limit"; max-rps 0.01; burst 0; key "header:True-Client-IP" }
  filter "by-key" { type "rate-limit"; max-rps 0.01; burst 0; key "header:X-Api-Key" }
}
`);
  gw = started.gw;
  port = gw.address('http').port;
});

after(async () => {
  await gw.close();
  await up.close();
});

function status(path: string, headers: Record<string, string>): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path, agent: false, headers }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode!));
    });
    req.on('error', reject);
    req.end();
  });
}

test('a key on an identity header is what the upstream gets: a spoofed value per request is no fresh bucket', async () => {
  for (const [path, name] of [['/xff', 'x-forwarded-for'], ['/real', 'x-real-ip'], ['/tci', 'true-client-ip']] as const) {
    assert.equal(await status(path, { [name]: '10.0.0.1' }), 200, path);
    for (let i = 2; i < 5; i++) assert.equal(await status(path, { [name]: `10.0.0.${i}` }), 429, `${path} ${name}: 10.0.0.${i}`);
    assert.equal(await status(path, {}), 429, `${path} without the header`);
  }
  // an ordinary header stays the client's: each key its own bucket
  assert.equal(await status('/key', { 'x-api-key': 'a' }), 200);
  assert.equal(await status('/key', { 'x-api-key': 'b' }), 200);
  assert.equal(await status('/key', { 'x-api-key': 'a' }), 429);
});
