// A breaker any client can trip (session 12 audit): 500 is an application error for that request
// (a bug a crafted input reaches, a handler that throws on bad JSON), and any client can ask for
// it at will. Counted as a target failure, five such requests ejected the only target and every
// client got 503 for timeout-seconds, renewable by the same five requests. Only 502, 503 and 504
// (the target or what is behind it unavailable) count; the breaker still opens on those.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startUpstream, type TestUpstream } from '../../helpers/upstream.ts';
import { gatewayFrom, simpleConfig } from '../../helpers/gateway.ts';
import { request } from '../../helpers/http.ts';
import type { Gateway } from '../../../src/server/gateway.ts';

let up: TestUpstream;
let gw: Gateway;
let base: string;

before(async () => {
  up = await startUpstream((req, res) => {
    const m = /^\/status\/(\d{3})$/.exec(req.url ?? '');
    res.writeHead(m ? Number(m[1]) : 200, { 'content-type': 'text/plain' });
    res.end('x');
  });
  const g = await gatewayFrom(simpleConfig(up.address, { upstream: 'circuit-breaker { failure-threshold 3; timeout-seconds 30 }' }));
  gw = g.gw;
  base = g.url();
});

after(async () => {
  await gw.close();
  await up.close();
});

const breakerState = async () => /sentinel_circuit_breaker_state\{component="upstream:backend:[^"]+",route=""\} (\d)/.exec(await gw.metrics.render())?.[1];

test('500, 501 and 505 from the upstream, 10 times each, leave the breaker closed', async () => {
  for (const status of [500, 501, 505]) {
    for (let i = 0; i < 10; i++) assert.equal((await request(`${base}/status/${status}`)).status, status, 'relayed as sent');
    assert.equal((await request(`${base}/ok`)).status, 200, `after 10 x ${status}`);
  }
  assert.equal(await breakerState(), '0');
});

test('502, 503 and 504 still open the breaker at failure-threshold', async () => {
  for (const status of [502, 503, 504]) {
    await request(`${base}/status/${status}`);
  }
  assert.equal(await breakerState(), '1', 'open');
  assert.equal((await request(`${base}/ok`)).status, 503, 'no healthy target');
});
