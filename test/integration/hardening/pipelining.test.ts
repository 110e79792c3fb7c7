// HTTP/1.1 pipelining depth (docs/security.md, "Session 24 audit"): Node hands every request it
// parses to the gateway at once, also those pipelined behind an unanswered one, so one connection
// put thousands of requests in flight (20,000 short GETs in one 800 kB write: 83 MB of heap), past
// `max-connections-per-client`. More than 100 waiting on one connection now closes it. And requests
// still waiting when their connection closed ran on upstream (until it answered or request-secs ran
// out) after the client had gone: they are cancelled now.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { gatewayFrom } from '../../helpers/gateway.ts';
import { closeServer } from '../../helpers/upstream.ts';
import net from 'node:net';
import { rawExchange } from '../../helpers/raw-http.ts';
import { until } from '../../helpers/until.ts';
import type { Gateway } from '../../../src/server/gateway.ts';

let upstream: http.Server;
/** requests the upstream got for /hold/..., answered only when released */
const held: http.ServerResponse[] = [];
let gw: Gateway;

before(async () => {
  upstream = http.createServer((req, res) => {
    if (req.url!.startsWith('/hold/')) held.push(res);
    else res.end(req.url);
  });
  await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
  ({ gw } = await gatewayFrom(`
system { graceful-shutdown-timeout-secs 2 }
listeners { listener "http" { address "127.0.0.1:0" } }
routes { route "main" { matches { path-prefix "/" } ; upstream "backend" } }
upstreams { upstream "backend" { target "127.0.0.1:${(upstream.address() as AddressInfo).port}" } }
`));
});

after(async () => {
  for (const r of held) r.destroy();
  await gw.close();
  await closeServer(upstream);
});

const pipelined = (prefix: string, n: number) => Array.from({ length: n }, (_, i) => `GET /${prefix}/${i} HTTP/1.1\r\nHost: a\r\n\r\n`).join('');

test('more than 100 requests pipelined behind an unanswered one close the connection', async () => {
  const reply = await rawExchange(gw.address('http').port, pipelined('hold', 300));
  assert.equal(reply.closed, true, 'the gateway closed the connection');
  assert.deepEqual(reply.statuses, []);
  assert.match(await gw.metrics.render(), /sentinel_connections_closed_total\{listener="http",reason="pipeline_depth"\} 1\b/);
  assert.ok(held.length <= 101, `the upstream got ${held.length} of them`);
});

test('held: 100 pipelined requests (at the cap) are all answered, in order, on one connection', async () => {
  const reply = await rawExchange(gw.address('http').port, pipelined('p', 100), { responses: 100 });
  assert.equal(reply.statuses.length, 100);
  assert.ok(reply.statuses.every((s) => s === 200));
  const order = [...reply.text.matchAll(/\r\n\r\n\/p\/(\d+)/g)].map((m) => Number(m[1]));
  assert.deepEqual(order, Array.from({ length: 100 }, (_, i) => i));
  assert.equal(reply.closed, false);
});

test('requests pipelined behind an unanswered one are cancelled upstream when the client closes', async () => {
  held.length = 0;
  const s = net.connect(gw.address('http').port, '127.0.0.1');
  s.on('error', () => undefined);
  await new Promise<void>((r) => s.once('connect', () => r()));
  s.write(pipelined('hold', 5));
  await until(() => `the upstream to hold 5 requests (holds ${held.length})`, () => held.length === 5);
  const gone = held.map((r) => new Promise<void>((ok) => (r.req.socket.destroyed ? ok() : r.req.socket.once('close', () => ok()))));
  s.destroy();
  // without the fix only the first (the one being answered) was cancelled; the other four held their upstream sockets
  let cancelled = 0;
  for (const g of gone) void g.then(() => cancelled++);
  await until(() => `the gateway to cancel all 5 upstream requests (cancelled ${cancelled})`, () => cancelled === 5);
});
