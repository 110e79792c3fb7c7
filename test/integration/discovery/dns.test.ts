// discovery "dns" and "dns-srv" through the real gateway against a real dnsmasq on a loopback
// port (`resolver` extension), plus the system resolver (getaddrinfo) for "localhost".
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { gatewayFrom } from '../../helpers/gateway.ts';
import { request } from '../../helpers/http.ts';
import { notHung } from '../../helpers/until.ts';
import type { Gateway } from '../../../src/server/gateway.ts';
import { dnsSource } from '../../../src/upstream/discovery/dns.ts';
import { startDnsmasq, eventually, serversOnOnePort, type Dnsmasq, type NamedServer } from './helpers.ts';
import { startUpstream, type TestUpstream } from '../../helpers/upstream.ts';

let dns: Dnsmasq;
let servers: NamedServer[];
let closeServers: () => Promise<void>;
let port: number;
const gateways: Gateway[] = [];
const ups: TestUpstream[] = [];

before(async () => {
  ({ servers, port, close: closeServers } = await serversOnOnePort(['127.0.0.2', '127.0.0.3', '127.0.0.4']));
  dns = await startDnsmasq({ 'api.test': ['127.0.0.2', '127.0.0.3'] });
});
after(async () => {
  await Promise.all(gateways.map((g) => g.close()));
  await dns?.close();
  await closeServers?.();
  await Promise.all(ups.map((u) => u.close()));
});

function gw(upstream: string) {
  return gatewayFrom(`
system { graceful-shutdown-timeout-secs 1 }
listeners { listener "http" { address "127.0.0.1:0" } }
routes {
  route "admin" { priority "high"; matches { path "/admin/upstreams" }; builtin-handler "upstreams" }
  route "metrics" { priority "high"; matches { path "/metrics" }; builtin-handler "metrics" }
  route "main" { matches { path-prefix "/" }; upstream "api" }
}
upstreams { upstream "api" { ${upstream} } }`);
}

async function spread(base: string, n: number): Promise<Record<string, number>> {
  const c: Record<string, number> = {};
  for (let i = 0; i < n; i++) {
    const b = (await request(`${base}/x`)).body;
    c[b] = (c[b] ?? 0) + 1;
  }
  return c;
}

test('dns: A records become targets on the port; a record change adds and removes targets', async () => {
  const g = await gw(`discovery "dns" { hostname "api.test"; port ${port}; refresh-interval 0.2; resolver "${dns.server}" }`);
  gateways.push(g.gw);
  const base = g.url();
  assert.deepEqual(Object.keys(await spread(base, 6)).sort(), ['127.0.0.2', '127.0.0.3']);
  dns.setHosts({ 'api.test': ['127.0.0.3', '127.0.0.4'] });
  await eventually('127.0.0.4 served', async () => (await request(`${base}/x`)).body === '127.0.0.4');
  const hits2 = servers[0]!.hits;
  assert.deepEqual(Object.keys(await spread(base, 8)).sort(), ['127.0.0.3', '127.0.0.4']);
  assert.equal(servers[0]!.hits, hits2, 'the removed address gets no traffic');
  // the name disappears (NXDOMAIN): an error, the last good set stays
  dns.setHosts({ 'other.test': ['127.0.0.9'] });
  // wait for a failed refresh (it was a 600 ms sleep: ~3 refresh intervals, not always one on a loaded machine)
  await eventually('a failed refresh', async () => /sentinel_discovery_refresh_total\{upstream="api",kind="dns",result="error"\} [1-9]/.test((await request(`${base}/metrics`)).body));
  assert.deepEqual(Object.keys(await spread(base, 4)).sort(), ['127.0.0.3', '127.0.0.4']);
});

test('dns-srv: lowest priority only, weights honoured, SRV targets resolved by the same resolver; "." empties the pool', async () => {
  const a = await startUpstream((_req, res) => res.end('a'));
  const b = await startUpstream((_req, res) => res.end('b'));
  const backup = await startUpstream((_req, res) => res.end('backup'));
  ups.push(a, b, backup);
  dns.setHosts({ 'api.test': ['127.0.0.3', '127.0.0.4'], 'node.test': ['127.0.0.1'] });
  await dns.setSrv([`_http._tcp.api.test,node.test,${a.port},10,3`, `_http._tcp.api.test,node.test,${b.port},10,1`, `_http._tcp.api.test,node.test,${backup.port},20,1`]);
  const g = await gw(`discovery "dns-srv" { service "_http._tcp.api.test"; refresh-interval 0.2; resolver "${dns.server}" }
    load-balancing "weighted"`);
  gateways.push(g.gw);
  const base = g.url();
  assert.deepEqual(await spread(base, 8), { a: 6, b: 2 }, 'weights 3:1, the priority-20 record unused');
  const snap = JSON.parse((await request(`${base}/admin/upstreams`)).body) as { upstreams: { targets: { address: string; weight: number }[] }[] };
  assert.deepEqual(
    snap.upstreams[0]!.targets.map((t) => `${t.address}/${t.weight}`).sort(),
    [`127.0.0.1:${a.port}/3`, `127.0.0.1:${b.port}/1`].sort(),
  );
  await dns.setSrv(['_http._tcp.api.test,.,0,0,0']);
  await eventually('pool emptied', async () => (await request(`${base}/x`)).status === 503);
});

test('dns with the system resolver (getaddrinfo): "localhost" resolves to loopback addresses', async () => {
  const src = dnsSource({ hostname: 'localhost', port: 8080, refreshMs: 30_000, resolver: undefined });
  const targets = await src.resolve(AbortSignal.timeout(5000));
  assert.ok(targets.some((t) => t.address === '127.0.0.1:8080'), JSON.stringify(targets));
  assert.ok(targets.every((t) => t.port === 8080));
});

test('a resolver that does not answer fails the first resolution within the bound; the gateway starts with static targets', async () => {
  const up = await startUpstream((_req, res) => res.end('static'));
  ups.push(up);
  // port 9 (discard) on loopback: nothing answers DNS there. The start waits out the 5 s
  // first-resolution bound; the resolver's own retries would take over a minute (HANG_MS catches that).
  const g = await notHung(
    'a gateway start whose DNS resolver never answers (the first-resolution bound not applied?)',
    gw(`target "${up.address}"
    discovery "dns" { hostname "api.test"; port 80; resolver "127.0.0.1:9" }`),
  );
  gateways.push(g.gw);
  assert.equal((await request(`${g.url()}/x`)).body, 'static');
});
