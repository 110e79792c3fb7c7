// Session 12 audit finding, closed in session 14 (docs/rate-limit.md, "Keys"): a `path` key was the
// normalised path as it stood, so `/x/`, `/X` or `/a%21` were fresh buckets beside `/x` and `/a!`,
// which most applications serve as the same resource. Keys now drop one trailing slash, fold case
// and decode printable-ASCII escapes. Real requests on loopback, paths sent as written (no client
// URL parsing in between).
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
  gw = (
    await gatewayFrom(`
system { graceful-shutdown-timeout-secs 1 }
listeners { listener "http" { address "127.0.0.1:0" } }
routes {
  route "per-client" { matches { path-prefix "/c" }; upstream "backend"; filters "per-client" }
  route "per-path" { matches { path-prefix "/" }; upstream "backend"; filters "per-path" }
}
upstreams { upstream "backend" { target "${up.address}" } }
filters {
  filter "per-path" { type "rate-limit"; max-rps 0.01; burst 0; key "path" }
  filter "per-client" { type "rate-limit"; max-rps 0.01; burst 0; key "client-ip-and-path" }
}
`)
  ).gw;
  port = gw.address('http').port;
});

after(async () => {
  await gw.close();
  await up.close();
});

/** One request with the target exactly as written. */
function status(path: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path, agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode!));
    });
    req.on('error', reject);
    req.end();
  });
}

const groups: [first: string, respellings: string[]][] = [
  ['/login', ['/login/', '/Login', '/LOGIN/', '//login', '/l%6Fgin', '/x/../login/', '/login?fresh=1']],
  ['/a!b', ['/a%21b', '/A%21B/', '/a!b/']],
  ['/api/v1/items', ['/api/v1/items/', '/API/V1/Items', '/api//v1/./items/']],
];

test('path key: every respelling of a limited path lands in its bucket (429), other paths do not', async () => {
  for (const [first, respellings] of groups) {
    assert.equal(await status(first), 200, first);
    for (const p of respellings) assert.equal(await status(p), 429, `${p} shares the bucket of ${first}`);
  }
  assert.equal(await status('/login/x'), 200, 'a deeper path is another resource');
  assert.equal(await status('/logins'), 200);
});

test('client-ip-and-path key: the same, per client', async () => {
  assert.equal(await status('/c/report'), 200);
  for (const p of ['/c/report/', '/c/Report', '/c/rep%6Frt/']) assert.equal(await status(p), 429, p);
  assert.equal(await status('/c/other'), 200);
});
