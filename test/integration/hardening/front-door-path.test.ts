// Issue #17 item 1: a path restriction must hold however the path is spelled. Each request is the
// exact one from the issue, sent over a raw socket; the upstream records what reaches it.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startUpstream, type TestUpstream } from '../../helpers/upstream.ts';
import { gatewayFrom } from '../../helpers/gateway.ts';
import { rawRequest, http1 } from '../../helpers/raw-http.ts';
import type { Gateway } from '../../../src/server/gateway.ts';

let up: TestUpstream;
let gw: Gateway;
let port: number;

before(async () => {
  up = await startUpstream();
  const g = await gatewayFrom(`
system { graceful-shutdown-timeout-secs 1 }
listeners { listener "http" { address "127.0.0.1:0"; default-route "fallback" } }
routes {
  route "admin" { priority "high"; matches { path-prefix "/admin"; }; builtin-handler "not-found"; }
  route "limited" { matches { path-prefix "/limited" }; upstream "backend"; filters "rl" }
  route "fallback" { priority "low"; matches { path-prefix "/" }; upstream "backend" }
}
upstreams { upstream "backend" { target "${up.address}" } }
filters { filter "rl" { type "rate-limit"; max-rps 0.01; burst 1; key "path" } }
`);
  gw = g.gw;
  port = gw.address('http').port;
});

after(async () => {
  await gw.close();
  await up.close();
});

const get = (target: string) => rawRequest(port, http1('GET', target, ['Host: public.example.com', 'Connection: close']));

test('the admin route is not bypassed by any spelling of /admin', async () => {
  const spellings = ['/admin', '/%61dmin', '//admin', '/./admin', '/x/../admin', '/%2e/admin', '/%2E%2E/admin', '/admin/', '/admin/./x', '/admin;x', '/admin%2fx', '/admin%00', '/admin\\', '/%61dmin%2f..%2f', '/x/..%2fadmin', '/admin%3bx', '/admin#x', '/x/%C0%AE%C0%AE/admin', '/x/%E0%80%AE%E0%80%AE%C0%AFadmin'];
  const before = up.seen.length;
  for (const target of spellings) {
    const r = await get(target);
    assert.ok(r.status === 404 || r.status === 400, `${target}: status ${r.status}`);
    assert.equal(r.headers['content-type'], 'application/json; charset=utf-8', target);
    const body = JSON.parse(r.body) as { status: number; request_id: string };
    assert.equal(body.status, r.status, target);
    assert.ok(body.request_id, target);
    assert.doesNotMatch(r.body, /FST_/, target);
  }
  assert.deepEqual(up.seen.slice(before).map((s) => s.url), [], 'nothing reached the upstream');
  // The ones that normalise to /admin are answered by the admin route itself.
  for (const target of ['/%61dmin', '//admin', '/./admin', '/x/../admin', '/%2e/admin']) assert.equal((await get(target)).status, 404, target);
  for (const target of ['/admin;x', '/admin%2fx', '/admin%00', '/admin\\', '/%zz', '/a%']) assert.equal((await get(target)).status, 400, target);
});

test('the upstream receives the normalised path (and the query as sent)', async () => {
  const table: [string, string][] = [
    ['/x/../public', '/public'],
    ['//public//a/./b/../c', '/public/a/c'],
    ['/%70ublic/%7euser?q=%2e%2E&x=a/../b', '/public/~user?q=%2e%2E&x=a/../b'],
    ['/caf%c3%a9', '/caf%C3%A9'],
    ['/a|b', '/a%7Cb'],
    ['/ADMIN', '/ADMIN'], // paths are case-sensitive (docs/security.md)
    ['/plain?x=1', '/plain?x=1'],
  ];
  for (const [sent, want] of table) {
    const n = up.seen.length;
    const r = await get(sent);
    assert.equal(r.status, 200, sent);
    assert.equal(up.seen.length, n + 1, sent);
    assert.equal(up.seen[n]!.url, want, sent);
  }
});

test('absolute-form targets are routed on their path and forwarded in origin-form', async () => {
  const before = up.seen.length;
  const r = await rawRequest(port, http1('GET', 'http://public.example.com/admin', ['Host: public.example.com', 'Connection: close']));
  assert.equal(r.status, 404);
  const r2 = await rawRequest(port, http1('GET', 'http://public.example.com/%2e/admin', ['Host: public.example.com', 'Connection: close']));
  assert.equal(r2.status, 404);
  assert.equal(up.seen.length, before);
  const r3 = await rawRequest(port, http1('GET', 'http://public.example.com/x/../y?z', ['Host: public.example.com', 'Connection: close']));
  assert.equal(r3.status, 200);
  assert.equal(up.seen.at(-1)!.url, '/y?z');
});

test('the rate-limit path key sees the normalised path: no fresh bucket per spelling', async () => {
  assert.equal((await get('/limited/')).status, 200);
  for (const target of ['/limited/.', '//limited/', '/limited//', '/%6cimited/', '/x/../limited/']) assert.equal((await get(target)).status, 429, target);
  assert.equal((await get('/limited%2f')).status, 400);
});

test('rejections are counted by kind in sentinel_client_errors_total', async () => {
  const text = await gw.metrics.render();
  for (const kind of ['encoded_slash', 'backslash', 'path_parameter', 'control_character', 'bad_percent_encoding', 'fragment', 'overlong_utf8']) {
    assert.match(text, new RegExp(`sentinel_client_errors_total\\{kind="${kind}"\\} [1-9]`), kind);
  }
});
