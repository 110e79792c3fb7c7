// A breaker any client can trip (session 12 and 14 audits). A response status is the
// application's answer to one request, and a client chooses the request: a handler that throws on
// bad JSON (500), or one that itself answers 502-504 for some input (a report behind an inner
// proxy that times out, an app relaying its own dependency's failure). Counted as target failures,
// a few such requests ejected the target and every client got 503 for timeout-seconds, renewable
// by the same few requests. Since session 14 no relayed status feeds a breaker unless the block
// lists it in `failure-status-codes`; transport failures (connection refused, response timeout)
// still open it. Real upstreams on loopback.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import { closedPort, startUpstream, type TestUpstream, closeServer } from '../../helpers/upstream.ts';
import { gatewayFrom } from '../../helpers/gateway.ts';
import { request } from '../../helpers/http.ts';
import type { Gateway } from '../../../src/server/gateway.ts';

let up: TestUpstream;
let silent: http.Server;
let interim: net.Server;
let gw: Gateway;
let base: string;

before(async () => {
  up = await startUpstream((req, res) => {
    // a response that fails after its headers: the application's handler crashed or stalled
    // while streaming the body (the client chose the request)
    const cut = /\/cut\/(mid|first|stall)$/.exec(req.url ?? '');
    if (cut) {
      res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '1000' });
      if (cut[1] === 'first') res.flushHeaders();
      else res.write('part of the body');
      if (cut[1] !== 'stall') setTimeout(() => res.socket?.destroy(), 20);
      else setTimeout(() => res.socket?.destroy(), 2000).unref();
      return;
    }
    const m = /\/status\/(\d{3})$/.exec(req.url ?? '');
    res.writeHead(m ? Number(m[1]) : 200, { 'content-type': 'text/plain' });
    res.end('x');
  });
  // accepts connections and requests, never answers: a response timeout
  silent = http.createServer(() => {});
  await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
  const silentAddr = `127.0.0.1:${(silent.address() as AddressInfo).port}`;
  const dead = `127.0.0.1:${await closedPort()}`;
  // answers /interim/100 with a 100 Continue nobody asked for (RFC 9110 §15.2 allows it) before
  // its 200; anything else with a plain 200
  interim = net.createServer((s) => {
    s.on('data', (c: Buffer) => {
      const path = c.toString('latin1').split(' ')[1] ?? '';
      s.write(`${path === '/interim/100' ? 'HTTP/1.1 100 Continue\r\n\r\n' : ''}HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok`);
    });
    s.on('error', () => {});
  });
  await new Promise<void>((r) => interim.listen(0, '127.0.0.1', r));
  const interimAddr = `127.0.0.1:${(interim.address() as AddressInfo).port}`;
  const g = await gatewayFrom(`
system { graceful-shutdown-timeout-secs 2 }
listeners { listener "http" { address "127.0.0.1:0" } }
routes {
  route "strict" { matches { path-prefix "/strict" }; upstream "app"; circuit-breaker { failure-threshold 3; timeout-seconds 30; failure-status-codes 502 } }
  route "layer7" { matches { path-prefix "/layer7" }; upstream "layer7" }
  route "dead" { matches { path-prefix "/dead" }; upstream "dead" }
  route "silent" { matches { path-prefix "/silent" }; upstream "silent" }
  route "cut" { matches { path-prefix "/cut" }; upstream "cut" }
  route "interim" { matches { path-prefix "/interim" }; upstream "interim" }
  route "app" { matches { path-prefix "/" }; upstream "app" }
}
upstreams {
  upstream "app" { target "${up.address}"; circuit-breaker { failure-threshold 3; timeout-seconds 30 } }
  upstream "layer7" { target "${up.address}"; circuit-breaker { failure-threshold 3; timeout-seconds 30; failure-status-codes 502 503 504 } }
  upstream "dead" { target "${dead}"; circuit-breaker { failure-threshold 3; timeout-seconds 30 } }
  upstream "silent" { target "${silentAddr}"; circuit-breaker { failure-threshold 3; timeout-seconds 30 }; timeouts { read-secs 0.2 } }
  upstream "cut" { target "${up.address}"; circuit-breaker { failure-threshold 3; timeout-seconds 30 }; timeouts { read-secs 0.2 } }
  upstream "interim" { target "${interimAddr}"; circuit-breaker { failure-threshold 3; timeout-seconds 30 } }
}
`);
  gw = g.gw;
  base = g.url();
});

after(async () => {
  await gw.close();
  await up.close();
  await closeServer(silent);
  await closeServer(interim);
});

const breakerState = async (upstream: string, route = '') =>
  new RegExp(`sentinel_circuit_breaker_state\\{component="upstream:${upstream}:[^"]+",route="${route}"\\} (\\d)`).exec(await gw.metrics.render())?.[1];

test('a client hammering paths the application answers with 500-599 (502-504 included) leaves the breaker closed', async () => {
  for (const status of [500, 501, 502, 503, 504, 505, 599]) {
    for (let i = 0; i < 10; i++) assert.equal((await request(`${base}/status/${status}`)).status, status, 'relayed as sent');
    assert.equal((await request(`${base}/ok`)).status, 200, `after 10 x ${status}`);
  }
  assert.equal(await breakerState('app'), '0');
  const failures = await gw.metrics.render();
  assert.doesNotMatch(failures, /sentinel_upstream_failures_total\{upstream="app"[^}]*\} [1-9]/, 'no upstream failure counted');
});

/** Requests `path` until the gateway answers 503 (no healthy target); returns the statuses seen. */
async function untilEjected(path: string): Promise<number[]> {
  const seen: number[] = [];
  for (let i = 0; i < 6 && seen.at(-1) !== 503; i++) seen.push((await request(`${base}${path}`)).status);
  return seen;
}

test('connection refusals still open the breaker at failure-threshold', async () => {
  // each request may take two attempts (the default retry after a connect failure)
  const seen = await untilEjected('/dead/x');
  assert.equal(seen.at(-1), 503, `ejected: ${seen}`);
  assert.ok(seen.length <= 3 && seen.slice(0, -1).every((s) => s === 502), `502 until 3 failed attempts: ${seen}`);
  assert.equal(await breakerState('dead'), '1', 'open');
});

test('response timeouts still open the breaker at failure-threshold', async () => {
  const seen = await untilEjected('/silent/x');
  assert.equal(seen.at(-1), 503, `ejected: ${seen}`);
  assert.ok(seen.length <= 3 && seen.slice(0, -1).every((s) => s === 504), `504 until 3 failed attempts: ${seen}`);
  assert.equal(await breakerState('silent'), '1', 'open');
});

test('an upstream that lists 502 503 504 in failure-status-codes opens on them (the operator\'s choice)', async () => {
  for (const status of [502, 503, 504]) assert.equal((await request(`${base}/layer7/status/${status}`)).status, status);
  assert.equal(await breakerState('layer7'), '1', 'open');
  assert.equal((await request(`${base}/layer7/ok`)).status, 503);
});

test('a route that lists 502 opens its own breaker only: other routes to the same target are not affected', async () => {
  for (let i = 0; i < 3; i++) assert.equal((await request(`${base}/strict/status/502`)).status, 502);
  assert.equal(await breakerState('app', 'strict'), '1', 'the route breaker is open');
  assert.equal(await breakerState('app'), '0', 'the upstream breaker is not');
  assert.equal((await request(`${base}/strict/ok`)).status, 503);
  assert.equal((await request(`${base}/ok`)).status, 200, 'the other route still reaches the target');
});

// Session 15 decision (docs/security.md, "Upstream blame", "A body that fails after the status"):
// once the upstream's status line arrived the application has answered; a body it then cuts or
// stalls is reported as that status, like a 500 (a handler that throws mid-stream can do nothing
// else), so a client that can make it happen cannot open the breaker for everyone.
test('responses whose body fails after the status (reset mid-body, before the first byte, stalled past read-secs) leave the breaker closed', async () => {
  const outcomes: string[] = [];
  for (const kind of ['mid', 'first', 'stall']) {
    for (let i = 0; i < 5; i++) {
      try {
        const r = await request(`${base}/cut/${kind}`, { timeoutMs: 5000 });
        outcomes.push(`${kind}:${r.status}`);
      } catch {
        outcomes.push(`${kind}:cut`);
      }
    }
  }
  // mid-body failures cut the client connection; a failure before the first byte is the gateway's 502
  assert.deepEqual(outcomes, [...Array(5).fill('mid:cut'), ...Array(5).fill('first:502'), ...Array(5).fill('stall:cut')]);
  assert.equal(await breakerState('cut'), '0', 'closed after 15 failed bodies with threshold 3');
  assert.doesNotMatch(await gw.metrics.render(), /sentinel_upstream_failures_total\{upstream="cut"[^}]*\} [1-9]/, 'no upstream failure counted');
});

test('an unsolicited 100 Continue (on a URL the client picks) is a 502 that leaves the breaker closed', async () => {
  // undici cannot relay it (security.md, Open findings); counted as a transport failure, five
  // requests to such a URL opened the target's breaker for every client (503 below)
  for (let i = 0; i < 5; i++) assert.equal((await request(`${base}/interim/100`)).status, 502, `request ${i}`);
  assert.equal(await breakerState('interim'), '0', 'closed after 5 interim answers with threshold 3');
  const r = await request(`${base}/interim/plain`);
  assert.equal(r.status, 200);
});
