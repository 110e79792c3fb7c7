// Discovery answers naming addresses a gateway must not proxy to (docs/security.md "Session 30
// (disc30)"): a file-discovery answer naming the gateway's own loopback admin listener made its
// config dump reachable by any client of a public route with `Host: localhost` (audit30's probe),
// and a link-local address (a cloud metadata service) was used as given. Such targets are
// dropped at refresh (warned, counted); a normal loopback target in the same answer is used. A
// static target naming one of the gateway's own listeners is refused at start and at reload.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startGateway, type Gateway } from '../../../src/server/gateway.ts';
import { rawRequest, http1 } from '../../helpers/raw-http.ts';
import { freePort } from '../../helpers/ports.ts';
import { eventually, serversOnOnePort, writeTargets, type NamedServer } from './helpers.ts';

const dir = mkdtempSync(join(tmpdir(), 'sentinel-own-listener-'));
const gateways: Gateway[] = [];
const closers: (() => Promise<void>)[] = [];
after(async () => {
  await Promise.all(gateways.map((g) => g.close()));
  await Promise.all(closers.map((c) => c()));
  rmSync(dir, { recursive: true, force: true });
});

function config(upstream: string, adminAddress = '127.0.0.1:0'): string {
  return `
system { graceful-shutdown-timeout-secs 1 }
listeners {
  listener "http" { address "127.0.0.1:0" }
  listener "admin" { address "${adminAddress}" }
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

function dropped(text: string, reason: string): number {
  const m = new RegExp(`sentinel_discovery_targets_dropped_total\\{upstream="pool",reason="${reason}"\\} (\\d+)`).exec(text);
  return m ? Number(m[1]) : 0;
}

test('a file-discovery answer naming the admin listener or a link-local address: those targets dropped and counted, the loopback target used', async () => {
  const { servers, close } = await serversOnOnePort(['127.0.0.2']);
  closers.push(close);
  const good = servers[0] as NamedServer;
  const file = join(dir, 'backends.txt');
  writeTargets(file, [good.address]);
  const gw = await startGateway({ configText: config(`discovery "file" { path "${file}"; watch-interval 0.1 }`), logLevel: 'silent' });
  gateways.push(gw);
  const pub = gw.address('http').port;
  const admin = gw.address('admin').port;
  // what a writer of the discovery source can name: the admin listener, spelled several ways, and link-local addresses
  writeTargets(file, [
    good.address,
    `127.0.0.1:${admin}`,
    `localhost:${admin}`,
    `[::ffff:127.0.0.1]:${admin}`,
    `2130706433:${admin}`,
    '169.254.169.254:80',
    '[fe80::1]:80',
    '0.0.0.0:80',
  ]);
  const poolTargets = async () =>
    (JSON.parse((await rawRequest(admin, http1('GET', '/admin/upstreams', ['Host: localhost', 'Connection: close']))).body) as { upstreams: { id: string; targets: { address: string }[] }[] }).upstreams
      .find((u) => u.id === 'pool')!
      .targets.map((t) => t.address);
  // the rewrite was read: either its targets were dropped (counted) or (without the fix) joined the pool
  await eventually('the rewrite read', async () => dropped(await gw.metrics.render(), 'own_listener') >= 4 || (await poolTargets()).length > 1);
  // audit30's probe: the public route with Host: localhost must not reach the admin listener's config dump
  const hits = good.hits;
  for (let i = 0; i < 8; i++) {
    const r = await rawRequest(pub, http1('GET', '/admin/config', ['Host: localhost', 'Connection: close']));
    assert.doesNotMatch(r.body, /listeners|upstreams|routes/, `request ${i}: the admin listener's config dump`);
    assert.equal(r.status, 200);
    assert.equal(r.body, '127.0.0.2', `request ${i} went to the discovered loopback target only`);
  }
  assert.equal(good.hits, hits + 8);
  assert.deepEqual(await poolTargets(), [good.address]);
  const text = await gw.metrics.render();
  assert.ok(dropped(text, 'own_listener') >= 4, 'own listeners counted');
  assert.ok(dropped(text, 'link_local') >= 2, 'link-local counted');
  assert.ok(dropped(text, 'unspecified') >= 1, 'unspecified counted');
});

test('allow-link-local #true keeps link-local targets, never the own listeners', async () => {
  const file = join(dir, 'linklocal.txt');
  writeTargets(file, []);
  const gw = await startGateway({ configText: config(`discovery "file" { path "${file}"; watch-interval 0.1; allow-link-local #true }`), logLevel: 'silent' });
  gateways.push(gw);
  const admin = gw.address('admin').port;
  writeTargets(file, ['169.254.169.254:80', `127.0.0.1:${admin}`]);
  await eventually('own listener dropped', async () => dropped(await gw.metrics.render(), 'own_listener') >= 1);
  assert.equal(dropped(await gw.metrics.render(), 'link_local'), 0);
  const snap = JSON.parse((await rawRequest(admin, http1('GET', '/admin/upstreams', ['Host: localhost', 'Connection: close']))).body) as {
    upstreams: { id: string; targets: { address: string }[] }[];
  };
  assert.deepEqual(snap.upstreams.find((u) => u.id === 'pool')!.targets.map((t) => t.address), ['169.254.169.254:80']);
});

test('a static target naming one of the gateway\'s own listeners is refused at start and at reload (the old generation stays)', async () => {
  const port = await freePort();
  await assert.rejects(
    startGateway({ configText: config(`target "127.0.0.1:${port}"`, `127.0.0.1:${port}`), logLevel: 'silent' }),
    /target "127\.0\.0\.1:\d+" is one of this gateway's own listeners.*builtin-handler/s,
  );
  const { servers, close } = await serversOnOnePort(['127.0.0.3']);
  closers.push(close);
  const gw = await startGateway({ configText: config(`target "${servers[0]!.address}"`), logLevel: 'silent' });
  gateways.push(gw);
  const pub = gw.address('http').port;
  const admin = gw.address('admin').port;
  // an ephemeral port, known only after the bind: checked at reload against the bound address
  await assert.rejects(gw.reload(config(`target "localhost:${admin}"`)), /target "localhost:\d+" is one of this gateway's own listeners/);
  const r = await rawRequest(pub, http1('GET', '/admin/config', ['Host: localhost', 'Connection: close']));
  assert.equal(r.body, '127.0.0.3', 'the old generation serves');
});
