// HTTP/1.1 upgrades as a smuggling vector (session 15 audit): an upgrade the gateway refuses or
// does not switch to, or that the upstream does not accept, must not leave a tunnel through which
// the client's next bytes reach the upstream unrouted. A raw upstream records every byte it gets
// and answers each request head with a keep-alive 403 (or a 101 to anything, for the last cases).
// All of these held; the test keeps them.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { gatewayFrom } from '../../helpers/gateway.ts';
import { rawExchange } from '../../helpers/raw-http.ts';
import type { Gateway } from '../../../src/server/gateway.ts';
import { closeServer } from '../../helpers/upstream.ts';

let gw: Gateway;
let port: number;
let srv: net.Server;
let received = '';
let answer: 'forbidden' | 'switch-h2c' = 'forbidden';

before(async () => {
  srv = net.createServer((sock) => {
    sock.on('data', (c: Buffer) => {
      const text = c.toString('latin1');
      received += text;
      for (let i = 0; i < (text.match(/\r\n\r\n/g) ?? []).length; i++) {
        sock.write(answer === 'switch-h2c' ? 'HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n' : 'HTTP/1.1 403 Forbidden\r\nContent-Length: 2\r\nConnection: keep-alive\r\n\r\nno');
      }
    });
    sock.on('error', () => undefined);
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  gw = (
    await gatewayFrom(`
system { graceful-shutdown-timeout-secs 1 }
listeners { listener "http" { address "127.0.0.1:0"; default-route "plain" } }
routes {
  route "admin" { priority "high"; matches { path-prefix "/admin" }; builtin-handler "not-found" }
  route "ws" { matches { path-prefix "/ws" }; upstream "backend"; websocket #true }
  route "plain" { matches { path-prefix "/" }; upstream "backend" }
}
upstreams { upstream "backend" { target "127.0.0.1:${(srv.address() as net.AddressInfo).port}" } }
`)
  ).gw;
  port = gw.address('http').port;
});

after(async () => {
  await gw.close();
  await closeServer(srv);
});

const KEY = 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n';
const SMUGGLED = 'GET /admin/secret HTTP/1.1\r\nHost: a\r\n\r\n';

async function exchange(bytes: string, mode: typeof answer = 'forbidden'): Promise<{ statuses: number[]; closed: boolean; upstream: string }> {
  answer = mode;
  received = '';
  const r = await rawExchange(port, bytes, { responses: 2 });
  // a negative guard, not a wait for an event: smuggled bytes would reach the upstream shortly after
  await new Promise((res) => setTimeout(res, 100));
  return { statuses: r.statuses, closed: r.closed, upstream: received };
}

test('a refused or unanswered WebSocket upgrade leaves no tunnel: the bytes after it never reach the upstream', async () => {
  // not a websocket route: 403 from the gateway, connection closed
  const off = await exchange(`GET /plain HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n${KEY}\r\n${SMUGGLED}`);
  assert.deepEqual(off.statuses, [403]);
  assert.ok(off.closed);
  assert.equal(off.upstream, '');
  // a websocket route whose upstream answers 403 and keeps its connection: relayed, then closed;
  // the pipelined request is never written to the upstream socket (the head goes only after a 101)
  const refused = await exchange(`GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n${KEY}\r\n${SMUGGLED}`);
  assert.deepEqual(refused.statuses, [403]);
  assert.ok(refused.closed);
  assert.match(refused.upstream, /^GET \/ws HTTP\/1\.1\r\n/);
  assert.doesNotMatch(refused.upstream, /\/admin/);
  // normalised before the websocket gate: /ws/../admin is the admin route
  assert.deepEqual((await exchange(`GET /ws/../admin HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n${KEY}\r\n`)).statuses, [403]);
});

test('Upgrade without Connection: upgrade, Connection: upgrade without Upgrade: plain requests; the next request is routed', async () => {
  const noConn = await exchange(`GET /plain HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n${KEY}\r\n${SMUGGLED}`);
  assert.deepEqual(noConn.statuses, [403, 404], 'the gateway\'s 403 (not a websocket route), then the admin route\'s 404');
  assert.equal(noConn.upstream, '');
  const noUpgrade = await exchange(`GET /plain HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\n\r\n${SMUGGLED}`);
  assert.deepEqual(noUpgrade.statuses, [403, 404]);
  assert.match(noUpgrade.upstream, /^GET \/plain HTTP\/1\.1\r\n/);
  assert.doesNotMatch(noUpgrade.upstream, /upgrade|\/admin/i);
});

test('Upgrade: h2c is not switched to: forwarded without Upgrade or HTTP2-Settings, then the connection closes', async () => {
  const h2c = `GET /plain HTTP/1.1\r\nHost: a\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAoAAAAAIAAAAA\r\n\r\n${SMUGGLED}`;
  const r = await exchange(h2c);
  assert.deepEqual(r.statuses, [403]);
  assert.ok(r.closed);
  assert.doesNotMatch(r.upstream, /upgrade|http2-settings|\/admin/i);
  // an upstream that switches anyway (101 to a request without Upgrade): 502, no tunnel
  const switched = await exchange(h2c, 'switch-h2c');
  assert.deepEqual(switched.statuses, [502]);
  assert.doesNotMatch(switched.upstream, /\/admin|PRI \*/);
  // the same 101 to a websocket upgrade: no RFC 6455 accept, 502
  const ws = await exchange(`GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n${KEY}\r\n${SMUGGLED}`, 'switch-h2c');
  assert.deepEqual(ws.statuses, [502]);
  assert.doesNotMatch(ws.upstream, /\/admin/);
});
