// Chaos: the DNS server behind `discovery "dns"` dies and comes back. Configured behaviour
// (docs/upstreams.md, discovery): a failed refresh is counted and the last good target set is kept,
// so requests keep succeeding; once the resolver answers again, a changed record set is picked up.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { gatewayFrom } from '../../helpers/gateway.ts';
import { request } from '../../helpers/http.ts';
import { metricValue } from '../../unit/rate-limit/fixtures.ts';
import { startDnsmasq, eventually, serversOnOnePort, type Dnsmasq, type NamedServer } from '../discovery/helpers.ts';

let dns: Dnsmasq;
let servers: NamedServer[];
let closeServers: () => Promise<void>;
let g: Awaited<ReturnType<typeof gatewayFrom>>;

before(async () => {
  let port: number;
  ({ servers, port, close: closeServers } = await serversOnOnePort(['127.0.0.2', '127.0.0.3', '127.0.0.4']));
  dns = await startDnsmasq({ 'api.test': ['127.0.0.2', '127.0.0.3'] });
  g = await gatewayFrom(`
system { graceful-shutdown-timeout-secs 1 }
listeners { listener "http" { address "127.0.0.1:0" } }
routes { route "main" { matches { path-prefix "/" }; upstream "api" } }
upstreams { upstream "api" { discovery "dns" { hostname "api.test"; port ${port}; refresh-interval 0.2; resolver "${dns.server}" } } }`);
});

after(async () => {
  await g?.gw.close();
  await dns?.close();
  await closeServers?.();
});

const refreshErrors = () => metricValue(g.gw.metrics, 'sentinel_discovery_refresh_total', { upstream: 'api', kind: 'dns', result: 'error' });

/** `n` requests one after another; which servers answered and every status. */
async function spread(n: number): Promise<{ hosts: string[]; statuses: number[] }> {
  const hosts = new Set<string>();
  const statuses: number[] = [];
  for (let i = 0; i < n; i++) {
    const r = await request(`${g.url()}/x`, { timeoutMs: 10_000 });
    statuses.push(r.status);
    if (r.status === 200) hosts.add(r.body);
  }
  return { hosts: [...hosts].sort(), statuses };
}

test('dnsmasq killed: refreshes fail, the last good set is kept and requests succeed; restarted with a changed record: the new set is used', async () => {
  assert.deepEqual((await spread(6)).hosts, ['127.0.0.2', '127.0.0.3']);

  const errorsBefore = await refreshErrors();
  await dns.kill();
  // several refresh intervals with no answer: each refresh fails (bounded wait on the counter)
  await eventually('discovery refreshes fail', async () => (await refreshErrors()) >= errorsBefore + 2, 15_000);
  const during = await spread(20);
  assert.deepEqual([...new Set(during.statuses)], [200], 'every request succeeds while DNS is down');
  assert.deepEqual(during.hosts, ['127.0.0.2', '127.0.0.3'], 'the last good target set is kept');

  // the record changes while the server is down; it comes back with the new answer
  dns.setHosts({ 'api.test': ['127.0.0.3', '127.0.0.4'] });
  await dns.start();
  await eventually('127.0.0.4 served after DNS is back', async () => (await request(`${g.url()}/x`)).body === '127.0.0.4', 15_000);
  const removedHits = servers[0]!.hits;
  const after = await spread(8);
  assert.deepEqual([...new Set(after.statuses)], [200]);
  assert.deepEqual(after.hosts, ['127.0.0.3', '127.0.0.4']);
  assert.equal(servers[0]!.hits, removedHits, 'the removed address gets no traffic');
});
