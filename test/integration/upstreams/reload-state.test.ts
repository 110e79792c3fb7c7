// Through the real gateway: breaker state survives a config reload (gateway.reload, what SIGHUP
// runs), and a route's own circuit-breaker block gives that route its own per-target breakers.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { gatewayFrom } from '../../helpers/gateway.ts';
import { startUpstream, type TestUpstream } from '../../helpers/upstream.ts';
import { request } from '../../helpers/http.ts';
import type { Gateway } from '../../../src/server/gateway.ts';

let gw: Gateway | undefined;
const servers: TestUpstream[] = [];
after(async () => {
  await gw?.close();
  await Promise.all(servers.map((s) => s.close()));
});

interface Snap {
  upstreams: { id: string; targets: { address: string; circuit_breaker: string; route_circuit_breakers?: Record<string, string> }[] }[];
}

function config(good: string, bad: string, marker: string): string {
  return `
system { graceful-shutdown-timeout-secs 1 }
listeners { listener "http" { address "127.0.0.1:0" } }
routes {
  route "admin" { priority "high"; matches { path "/admin/upstreams" }; builtin-handler "upstreams" }
  route "metrics" { priority "high"; matches { path "/metrics" }; builtin-handler "metrics" }
  route "strict" {
    matches { path-prefix "/strict" }
    upstream "u"
    circuit-breaker { failure-threshold 1; success-threshold 1; timeout-seconds 60; failure-status-codes 503 }
    policies { request-headers { set { "X-Marker" "${marker}" } } }
  }
  route "main" { matches { path-prefix "/" }; upstream "u" }
}
upstreams {
  upstream "u" {
    target "${good}"
    target "${bad}"
    load-balancing "round_robin"
    circuit-breaker { failure-threshold 2; success-threshold 1; timeout-seconds 60; failure-status-codes 503 }
    retry-policy { max-attempts 1 }
  }
}`;
}

async function snapshot(base: string): Promise<Snap> {
  return JSON.parse((await request(`${base}/admin/upstreams`)).body) as Snap;
}

test('an open breaker stays open across a reload; a route breaker is per route and labelled', async () => {
  const good = await startUpstream((_req, res) => res.end('good'));
  const bad = await startUpstream((_req, res) => {
    res.statusCode = 503;
    res.end('bad');
  });
  servers.push(good, bad);
  const g = await gatewayFrom(config(good.address, bad.address, 'one'));
  gw = g.gw;
  const base = g.url();

  // /strict: the first 503 from bad (listed in failure-status-codes: bad stands for a proxy whose backends are gone) opens the strict route's breaker for bad only
  for (let i = 0; i < 2; i++) await request(`${base}/strict/x`);
  let snap = await snapshot(base);
  let badT = snap.upstreams[0]!.targets.find((t) => t.address === bad.address)!;
  assert.deepEqual(badT.route_circuit_breakers, { strict: 'open' });
  assert.equal(badT.circuit_breaker, 'closed');
  const before = bad.seen.length;
  for (let i = 0; i < 4; i++) assert.equal((await request(`${base}/strict/x`)).body, 'good');
  assert.equal(bad.seen.length, before, 'strict route keeps away from bad');
  const metrics = (await request(`${base}/metrics`)).body;
  assert.match(metrics, new RegExp(`sentinel_circuit_breaker_state\\{component="upstream:u:${bad.address.replace(/\./g, '\\.')}",route="strict"\\} 1`));

  // other routes still reach bad until the upstream breaker (threshold 2) opens
  for (let i = 0; i < 6; i++) await request(`${base}/main/x`);
  snap = await snapshot(base);
  badT = snap.upstreams[0]!.targets.find((t) => t.address === bad.address)!;
  assert.equal(badT.circuit_breaker, 'open');

  await gw.reload(config(good.address, bad.address, 'two'));
  assert.equal(gw.current.number, 2);
  snap = await snapshot(base);
  badT = snap.upstreams[0]!.targets.find((t) => t.address === bad.address)!;
  assert.equal(badT.circuit_breaker, 'open', 'the reload did not re-admit the failing target');
  assert.deepEqual(badT.route_circuit_breakers, { strict: 'open' });
  const seenBefore = bad.seen.length;
  for (let i = 0; i < 6; i++) {
    const r = await request(`${base}/main/y`);
    assert.equal(r.body, 'good');
  }
  assert.equal(bad.seen.length, seenBefore, 'no traffic to the open target after the reload');
  assert.equal(good.seen.at(-1)!.headers['x-marker'], undefined);
  assert.equal((await request(`${base}/strict/z`)).body, 'good');
  assert.equal(good.seen.at(-1)!.headers['x-marker'], 'two', 'the new generation serves');
});
