// Discovered targets named by a host name, checked at connect (docs/security.md "Session 31
// (disc31)"): the refresh-time check (own-listener.test.ts) cannot see what a name resolves to,
// so a file answer naming `admin.sentinel.test:<admin port>` with that name resolving to
// 127.0.0.1 reached the admin listener's config dump from the public route, and a name resolving
// to 0.0.0.0 (Linux connects it to the local machine) was proxied to. Each new connection now
// checks the addresses the name resolved to with the refresh's policy: such a connect fails
// (502), counted in sentinel_upstream_connect_addresses_refused_total. A discovery block's
// `allow` networks drop targets outside them at refresh (IP literals) and at connect (names).
// The system resolver is faked in-process for *.sentinel.test (helpers.ts fakeSystemHosts).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startGateway, type Gateway } from '../../../src/server/gateway.ts';
import { rawRequest, http1 } from '../../helpers/raw-http.ts';
import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import { eventually, fakeSystemHosts, serversOnOnePort, writeTargets } from './helpers.ts';
import { startEchoUpstream, WsClient } from '../websocket/ws-helpers.ts';

const dir = mkdtempSync(join(tmpdir(), 'sentinel-connect-names-'));
const gateways: Gateway[] = [];
const closers: (() => Promise<void>)[] = [];
const fakeDns = fakeSystemHosts({
  'admin.sentinel.test': ['127.0.0.1'],
  'self.sentinel.test': ['127.0.0.1'],
  'zero.sentinel.test': ['0.0.0.0'],
  'any.sentinel.test': ['0.0.0.0'],
  'mixed.sentinel.test': ['0.0.0.0', '127.0.0.1'],
  'two.sentinel.test': ['127.0.0.2'],
  'three.sentinel.test': ['127.0.0.3'],
});
after(async () => {
  await Promise.all(gateways.map((g) => g.close()));
  await Promise.all(closers.map((c) => c()));
  fakeDns.restore();
  rmSync(dir, { recursive: true, force: true });
});

function config(upstream: string): string {
  return `
system { graceful-shutdown-timeout-secs 1 }
listeners {
  listener "http" { address "127.0.0.1:0" }
  listener "admin" { address "127.0.0.1:0" }
}
routes {
  route "config" { listeners "admin"; matches { path-prefix "/admin/config" }; builtin-handler "config" }
  route "upstreams" { listeners "admin"; matches { path "/admin/upstreams" }; builtin-handler "upstreams" }
  route "main" { listeners "http"; matches { path-prefix "/" }; upstream "pool" }
}
upstreams {
  upstream "pool" {
    ${upstream}
    load-balancing "round_robin"
    retry-policy { max-attempts 1 }
  }
}`;
}

function counted(text: string, metric: string, reason: string): number {
  const m = new RegExp(`${metric}\\{upstream="pool",reason="${reason}"\\} (\\d+)`).exec(text);
  return m ? Number(m[1]) : 0;
}
const REFUSED = 'sentinel_upstream_connect_addresses_refused_total';
const DROPPED = 'sentinel_discovery_targets_dropped_total';

async function poolTargets(admin: number): Promise<string[]> {
  const body = (await rawRequest(admin, http1('GET', '/admin/upstreams', ['Host: localhost', 'Connection: close']))).body;
  return (JSON.parse(body) as { upstreams: { id: string; targets: { address: string }[] }[] }).upstreams.find((u) => u.id === 'pool')!.targets.map((t) => t.address);
}

test('a discovered host name resolving to the admin listener or to 0.0.0.0: the connect is refused (502, counted), never the config dump', async () => {
  const { port, servers, close } = await serversOnOnePort(['127.0.0.1']);
  closers.push(close);
  const local = servers[0]!;
  const file = join(dir, 'names.txt');
  writeTargets(file, []);
  const gw = await startGateway({ configText: config(`discovery "file" { path "${file}"; watch-interval 0.1 }`), logLevel: 'silent' });
  gateways.push(gw);
  const pub = gw.address('http').port;
  const admin = gw.address('admin').port;

  // a name for the admin listener: in the pool (a name passes the refresh), refused at connect
  writeTargets(file, [`admin.sentinel.test:${admin}`]);
  await eventually('the answer read', async () => (await poolTargets(admin)).length === 1);
  for (let i = 0; i < 3; i++) {
    const r = await rawRequest(pub, http1('GET', '/admin/config', ['Host: localhost', 'Connection: close']));
    assert.doesNotMatch(r.body, /listeners|upstreams|routes/, `request ${i}: the admin listener's config dump`);
    assert.equal(r.status, 502, `request ${i}`);
  }
  assert.ok(counted(await gw.metrics.render(), REFUSED, 'own_listener') >= 1, 'own listener refused at connect, counted');

  // a name for 0.0.0.0, which Linux connects to this machine (here: the local upstream's port)
  writeTargets(file, [`zero.sentinel.test:${port}`]);
  await eventually('the rewrite read', async () => (await poolTargets(admin))[0] === `zero.sentinel.test:${port}`);
  const hits = local.hits;
  const r = await rawRequest(pub, http1('GET', '/', ['Host: localhost', 'Connection: close']));
  assert.equal(r.status, 502);
  assert.equal(local.hits, hits, 'nothing reached the upstream through 0.0.0.0');
  assert.ok(counted(await gw.metrics.render(), REFUSED, 'unspecified') >= 1, 'unspecified refused at connect, counted');

  // a name with one refused and one usable address: the connect uses the usable one
  writeTargets(file, [`mixed.sentinel.test:${port}`]);
  await eventually('the rewrite read', async () => (await poolTargets(admin))[0] === `mixed.sentinel.test:${port}`);
  for (let i = 0; i < 5; i++) {
    const ok = await rawRequest(pub, http1('GET', '/', ['Host: localhost', 'Connection: close']));
    assert.equal(ok.status, 200);
    assert.equal(ok.body, '127.0.0.1');
  }
  assert.equal(local.hits, hits + 5);
  // the check runs per new upstream connection, not per request: one kept-alive connection served all five
  assert.equal(fakeDns.calls.get('mixed.sentinel.test'), 1, 'one resolution for five requests');
});

test('allow networks: an IP literal outside them dropped at refresh, a name resolving outside them refused at connect, inside ones used', async () => {
  const { port, servers, close } = await serversOnOnePort(['127.0.0.2', '127.0.0.3']);
  closers.push(close);
  const [two, three] = servers as [(typeof servers)[0], (typeof servers)[0]];
  const file = join(dir, 'allow.txt');
  writeTargets(file, []);
  const gw = await startGateway({
    configText: config(`discovery "file" { path "${file}"; watch-interval 0.1; allow "10.0.0.0/8"; allow "127.0.0.2/32" "fd00::/8" }`),
    logLevel: 'silent',
  });
  gateways.push(gw);
  const pub = gw.address('http').port;
  const admin = gw.address('admin').port;
  writeTargets(file, [`127.0.0.3:${port}`, `three.sentinel.test:${port}`, `two.sentinel.test:${port}`]);
  await eventually('the answer read', async () => counted(await gw.metrics.render(), DROPPED, 'not_allowed') >= 1);
  assert.deepEqual((await poolTargets(admin)).sort(), [`three.sentinel.test:${port}`, `two.sentinel.test:${port}`]);
  const statuses: number[] = [];
  for (let i = 0; i < 6; i++) {
    const r = await rawRequest(pub, http1('GET', '/', ['Host: localhost', 'Connection: close']));
    statuses.push(r.status);
    if (r.status === 200) assert.equal(r.body, '127.0.0.2');
  }
  assert.equal(three.hits, 0, '127.0.0.3 is outside the allow networks');
  assert.ok(two.hits >= 1 && statuses.includes(502), `statuses ${statuses.join(',')}`);
  assert.ok(counted(await gw.metrics.render(), REFUSED, 'not_allowed') >= 1, 'refused at connect, counted');
});

test('a static target named by a host name: refused at connect when it resolves to an own listener, otherwise used as before (0.0.0.0 included)', async () => {
  const { port, servers, close } = await serversOnOnePort(['127.0.0.1']);
  closers.push(close);
  const gw = await startGateway({ configText: config(`target "any.sentinel.test:${port}"`), logLevel: 'silent' });
  gateways.push(gw);
  const pub = gw.address('http').port;
  const admin = gw.address('admin').port;
  const r = await rawRequest(pub, http1('GET', '/', ['Host: localhost', 'Connection: close']));
  assert.equal(r.status, 200, 'a static name keeps today\'s behaviour outside the own listeners');
  assert.equal(servers[0]!.hits, 1);
  await gw.reload(config(`target "self.sentinel.test:${admin}"`));
  const dump = await rawRequest(pub, http1('GET', '/admin/config', ['Host: localhost', 'Connection: close']));
  assert.doesNotMatch(dump.body, /listeners|upstreams|routes/, 'the admin listener\'s config dump');
  assert.equal(dump.status, 502);
  assert.ok(counted(await gw.metrics.render(), REFUSED, 'own_listener') >= 1);
});

test('the other connect paths check the name too: h2c (min-version 2), WebSocket upgrades, active health checks', async () => {
  let h2Hits = 0;
  const h2 = http2.createServer((_req, res) => {
    h2Hits++;
    res.end('h2');
  });
  await new Promise<void>((resolve) => h2.listen(0, '127.0.0.1', resolve));
  closers.push(() => new Promise<void>((resolve) => h2.close(() => resolve())));
  const h2Port = (h2.address() as AddressInfo).port;
  const ws = await startEchoUpstream();
  closers.push(() => ws.close());
  const { port: hcPort, servers, close } = await serversOnOnePort(['127.0.0.1']);
  closers.push(close);
  const files = { h2: join(dir, 'h2.txt'), ws: join(dir, 'ws.txt'), hc: join(dir, 'hc.txt') };
  writeTargets(files.h2, [`zero.sentinel.test:${h2Port}`]);
  writeTargets(files.ws, [`zero.sentinel.test:${ws.port}`]);
  writeTargets(files.hc, [`zero.sentinel.test:${hcPort}`]);
  const gw = await startGateway({
    configText: `
system { graceful-shutdown-timeout-secs 1 }
listeners { listener "http" { address "127.0.0.1:0" } }
routes {
  route "h2" { matches { path-prefix "/h2" }; upstream "h2" }
  route "ws" { matches { path-prefix "/ws" }; upstream "ws"; websocket #true }
}
upstreams {
  upstream "h2" { discovery "file" { path "${files.h2}" }; http-version { min-version 2 }; retry-policy { max-attempts 1 } }
  upstream "ws" { discovery "file" { path "${files.ws}" }; retry-policy { max-attempts 1 } }
  upstream "hc" { discovery "file" { path "${files.hc}" }; health-check { type "http" { path "/health" }; interval-secs 1; timeout-secs 1 } }
}`,
    logLevel: 'silent',
  });
  gateways.push(gw);
  const pub = gw.address('http').port;
  const r = await rawRequest(pub, http1('GET', '/h2', ['Host: localhost', 'Connection: close']));
  assert.equal(r.status, 502, 'h2c through 0.0.0.0');
  assert.equal(h2Hits, 0);
  const c = await WsClient.connect(pub, '/ws');
  c.socket.destroy();
  assert.equal(c.handshake.status, 502, 'WebSocket upgrade through 0.0.0.0');
  assert.equal(ws.upgrades.length, 0);
  const refused = (upstream: string) => async () => new RegExp(`${REFUSED}\\{upstream="${upstream}",reason="unspecified"\\} [1-9]`).test(await gw.metrics.render());
  await eventually('the health check refused', refused('hc'));
  assert.equal(servers[0]!.hits, 0, 'no health check reached the upstream through 0.0.0.0');
  assert.ok(await refused('h2')());
  assert.ok(await refused('ws')());
});
