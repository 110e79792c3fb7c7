// Headers a client names in `Connection` are hop-by-hop: the upstream never gets them. Every stage
// before it must not see them either (session 12 audit): the cache keyed a `Vary: Accept` variant
// on an Accept the upstream never received, so `Accept: application/json` + `Connection: accept`
// stored the HTML answer as the JSON variant, and every JSON client got HTML for the TTL.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startUpstream, type TestUpstream } from '../../helpers/upstream.ts';
import { gatewayFrom, simpleConfig } from '../../helpers/gateway.ts';
import { rawRequest, http1 } from '../../helpers/raw-http.ts';
import type { Gateway } from '../../../src/server/gateway.ts';

let up: TestUpstream;
let gw: Gateway;
let port: number;

before(async () => {
  up = await startUpstream((req, res, body) => {
    if (req.url === '/echo') {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end(`${req.headers['content-type'] ?? '-'} ${body.length}`);
      return;
    }
    const json = /json/.test(req.headers.accept ?? '');
    res.writeHead(200, { 'content-type': json ? 'application/json' : 'text/html', 'cache-control': 'public, max-age=60', vary: 'Accept' });
    res.end(json ? '{"ok":true}' : '<html>');
  });
  gw = (await gatewayFrom(simpleConfig(up.address, { route: 'cache { enabled #true }', top: 'cache { enabled #true; status-header #true }' }))).gw;
  port = gw.address('http').port;
});

after(async () => {
  await gw.close();
  await up.close();
});

test('a Vary-ed header named in Connection cannot poison the variant it names', async () => {
  const attack = await rawRequest(port, http1('GET', '/api', ['Host: a', 'Accept: application/json', 'Connection: close, accept']));
  assert.equal(attack.body, '<html>', 'the upstream saw no Accept');
  const victim = await rawRequest(port, http1('GET', '/api', ['Host: a', 'Accept: application/json', 'Connection: close']));
  assert.equal(victim.body, '{"ok":true}', `a JSON client gets JSON (${victim.headers['cache-status']})`);
  const again = await rawRequest(port, http1('GET', '/api', ['Host: a', 'Accept: application/json', 'Connection: close']));
  assert.equal(again.body, '{"ok":true}');
  assert.match(again.headers['cache-status'] ?? '', /hit/);
});

test('Connection cannot remove the framing or the vhost: Content-Length, Host and the body still reach the upstream', async () => {
  const r = await rawRequest(port, http1('POST', '/echo', ['Host: a', 'Content-Type: text/plain', 'Content-Length: 5', 'Connection: close, content-length, host, content-type'], 'hello'));
  assert.equal(r.status, 200);
  assert.equal(r.body, '- 5', 'the body arrives; Content-Type, named in Connection, does not');
  assert.equal(up.seen.at(-1)!.headers.host, 'a');
});
