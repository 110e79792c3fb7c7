// discovery "consul" through the real gateway against a FAKE Consul agent: a node:http server on
// loopback that implements the part of the Consul HTTP API v1 the source uses,
// GET /v1/health/service/:service with ?passing, ?dc and ?tag, answering the documented shape
// ([{ Node: {Node, Address, Datacenter}, Service: {ID, Service, Tags, Address, Port, Weights},
// Checks: [{CheckID, Status}] }], X-Consul-Index header; an unknown datacenter is HTTP 500
// "No path to datacenter", as Consul answers). The catalog is changed mid-test.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { gatewayFrom } from '../../helpers/gateway.ts';
import { request } from '../../helpers/http.ts';
import { startUpstream, type TestUpstream, closeServer } from '../../helpers/upstream.ts';
import type { Gateway } from '../../../src/server/gateway.ts';
import { eventually } from './helpers.ts';

interface Instance {
  id: string;
  service: string;
  node: string;
  nodeAddress: string;
  address: string;
  port: number;
  tags: string[];
  status: 'passing' | 'warning' | 'critical';
  dc: string;
}

let catalog: Instance[] = [];
let consul: Server;
let consulUrl: string;
const seenQueries: string[] = [];
let index = 1;
const ups: TestUpstream[] = [];
const gateways: Gateway[] = [];

before(async () => {
  consul = createServer((req, res) => {
    const u = new URL(req.url ?? '/', 'http://consul');
    const m = /^\/v1\/health\/service\/([^/]+)$/.exec(u.pathname);
    if (req.method !== 'GET' || !m) {
      res.writeHead(404, { 'content-type': 'text/plain' });
      res.end('404 page not found');
      return;
    }
    seenQueries.push(u.search);
    const dc = u.searchParams.get('dc') ?? 'dc1';
    if (!['dc1', 'dc2'].includes(dc)) {
      res.writeHead(500, { 'content-type': 'text/plain' });
      res.end('No path to datacenter');
      return;
    }
    // `?passing` with no value or any value but "false"/"0" filters on passing checks
    const passing = u.searchParams.has('passing') && !['false', '0'].includes(u.searchParams.get('passing') ?? '');
    const tag = u.searchParams.get('tag');
    const name = decodeURIComponent(m[1]!);
    const body = catalog
      .filter((i) => i.service === name && i.dc === dc && (!passing || i.status === 'passing') && (tag === null || i.tags.includes(tag)))
      .map((i) => ({
        Node: { ID: `node-${i.node}`, Node: i.node, Address: i.nodeAddress, Datacenter: i.dc, TaggedAddresses: {}, Meta: {} },
        Service: { ID: i.id, Service: i.service, Tags: i.tags, Address: i.address, Port: i.port, Weights: { Passing: 1, Warning: 1 }, Meta: {} },
        Checks: [
          { Node: i.node, CheckID: 'serfHealth', Name: 'Serf Health Status', Status: 'passing', ServiceID: '' },
          { Node: i.node, CheckID: `service:${i.id}`, Name: 'HTTP', Status: i.status, ServiceID: i.id },
        ],
      }));
    res.writeHead(200, { 'content-type': 'application/json', 'x-consul-index': String(index++), 'x-consul-knownleader': 'true' });
    res.end(JSON.stringify(body));
  });
  await new Promise<void>((r) => consul.listen(0, '127.0.0.1', r));
  consulUrl = `http://127.0.0.1:${(consul.address() as AddressInfo).port}`;
});
after(async () => {
  await Promise.all(gateways.map((g) => g.close()));
  await closeServer(consul);
  await Promise.all(ups.map((u) => u.close()));
});

async function named(name: string): Promise<TestUpstream> {
  const u = await startUpstream((_req, res) => res.end(name));
  ups.push(u);
  return u;
}

function inst(id: string, port: number, over: Partial<Instance> = {}): Instance {
  return { id, service: 'api', node: id, nodeAddress: '127.0.0.1', address: '', port, tags: ['v1'], status: 'passing', dc: 'dc1', ...over };
}

function gw(block: string) {
  return gatewayFrom(`
system { graceful-shutdown-timeout-secs 1 }
listeners { listener "http" { address "127.0.0.1:0" } }
routes { route "main" { matches { path-prefix "/" }; upstream "api" } }
upstreams { upstream "api" { ${block}; load-balancing "round_robin" } }`);
}

async function served(base: string, n: number): Promise<string[]> {
  const s = new Set<string>();
  for (let i = 0; i < n; i++) s.add((await request(`${base}/x`)).body);
  return [...s].sort();
}

test('consul: passing instances of the service (node address fallback), catalog changes followed', async () => {
  const a = await named('a');
  const b = await named('b');
  const c = await named('c');
  const d = await named('d');
  catalog = [
    inst('a', a.port), // Service.Address empty: the node's address is used
    inst('b', b.port, { address: '127.0.0.1', nodeAddress: '192.0.2.1' }), // ServiceAddress wins over an unreachable node address
    inst('c', c.port, { status: 'critical' }), // filtered by only-passing
    inst('d', d.port, { service: 'other' }),
  ];
  const g = await gw(`discovery "consul" { address "${consulUrl}"; service "api"; refresh-interval 0.2 }`);
  gateways.push(g.gw);
  const base = g.url();
  assert.deepEqual(await served(base, 6), ['a', 'b']);
  assert.ok(seenQueries.includes('?passing=true'), seenQueries.join(' '));
  // c becomes healthy, a is deregistered
  catalog = [inst('b', b.port, { address: '127.0.0.1' }), inst('c', c.port)];
  await eventually('c served', async () => (await request(`${base}/x`)).body === 'c');
  const aHits = a.seen.length;
  assert.deepEqual(await served(base, 6), ['b', 'c']);
  assert.equal(a.seen.length, aHits, 'a deregistered: no traffic');
});

test('consul: datacenter and tag parameters; only-passing #false includes failing instances', async () => {
  const e = await named('e');
  const f = await named('f');
  const h = await named('h');
  catalog = [inst('e', e.port, { dc: 'dc2', tags: ['canary'] }), inst('f', f.port, { dc: 'dc2', tags: ['stable'], status: 'warning' }), inst('h', h.port, { dc: 'dc2', tags: ['canary'], status: 'critical' })];
  const g = await gw(`discovery "consul" { address "${consulUrl}"; service "api"; datacenter "dc2"; tag "canary"; only-passing #false }`);
  gateways.push(g.gw);
  assert.ok(seenQueries.includes('?dc=dc2&tag=canary'), seenQueries.join(' '));
  const bodies = await served(g.url(), 6);
  assert.deepEqual(bodies, ['e', 'h'], 'both canaries, the critical one too');
});

test('consul: an unknown datacenter (HTTP 500) fails the first resolution; the static target serves', async () => {
  const s = await named('static');
  const g = await gw(`target "${s.address}"
    discovery "consul" { address "${consulUrl}"; service "api"; datacenter "nowhere" }`);
  gateways.push(g.gw);
  assert.deepEqual(await served(g.url(), 3), ['static']);
});
