// discovery "kubernetes" through the real gateway against a FAKE Kubernetes API server: an HTTPS
// node server on loopback (its own CA, from test/helpers/pki.ts) that implements the one call the
// source makes, following discovery.k8s.io/v1 (Kubernetes >= 1.21):
// GET /apis/discovery.k8s.io/v1/namespaces/{ns}/endpointslices?labelSelector=kubernetes.io/service-name={svc}
// answering an EndpointSliceList ({kind, apiVersion, metadata.resourceVersion, items: [EndpointSlice]}),
// with authentication by bearer token or by a client certificate signed by its CA, and
// metav1.Status errors (401 Unauthorized, 404 NotFound) as the real API server sends them.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:https';
import type { TLSSocket } from 'node:tls';
import type { AddressInfo } from 'node:net';
import { readFileSync, writeFileSync } from 'node:fs';
import { Pki } from '../../helpers/pki.ts';
import { gatewayFrom } from '../../helpers/gateway.ts';
import { request } from '../../helpers/http.ts';
import type { Gateway } from '../../../src/server/gateway.ts';
import { eventually, serversOnOnePort, type NamedServer } from './helpers.ts';
import { closeServer } from '../../helpers/upstream.ts';

const TOKEN = 'sentinel-test-token';
let pki: Pki;
let api: Server;
let apiUrl: string;
let servers: NamedServer[];
let port: number;
let closeServers: () => Promise<void>;
const gateways: Gateway[] = [];
const seen: { path: string; auth: string }[] = [];
/** namespace/service -> slices */
const slices = new Map<string, unknown[]>();
let rv = 100;

function status(code: number, reason: string, message: string) {
  return JSON.stringify({ kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, code });
}

function slice(name: string, service: string, portNum: number, endpoints: { ip: string; ready?: boolean }[]) {
  return {
    kind: 'EndpointSlice',
    apiVersion: 'discovery.k8s.io/v1',
    metadata: { name, namespace: 'shop', labels: { 'kubernetes.io/service-name': service, 'endpointslice.kubernetes.io/managed-by': 'endpointslice-controller.k8s.io' }, resourceVersion: String(rv++) },
    addressType: 'IPv4',
    endpoints: endpoints.map((e) => ({ addresses: [e.ip], conditions: { ready: e.ready ?? true, serving: e.ready ?? true, terminating: false }, nodeName: 'node-1' })),
    ports: [
      { name: 'metrics', protocol: 'TCP', port: 9090 },
      { name: 'http', protocol: 'TCP', port: portNum },
    ],
  };
}

before(async () => {
  ({ servers, port, close: closeServers } = await serversOnOnePort(['127.0.0.2', '127.0.0.3', '127.0.0.4']));
  pki = await Pki.create();
  const ca = await pki.ca('k8s-ca');
  const serverCert = await ca.issue('apiserver', { cn: 'kube-apiserver', ip: ['127.0.0.1'], dns: ['kubernetes.default.svc'] });
  await ca.issue('gateway-client', { cn: 'system:serviceaccount:shop:sentinel', usage: 'client' });
  api = createServer({ cert: readFileSync(serverCert.cert), key: readFileSync(serverCert.key), ca: readFileSync(ca.cert), requestCert: true, rejectUnauthorized: false }, (req, res) => {
    const u = new URL(req.url ?? '/', 'https://api');
    const byCert = (req.socket as TLSSocket).authorized;
    const auth = req.headers.authorization ?? '';
    seen.push({ path: `${u.pathname}${u.search}`, auth: byCert ? 'cert' : auth });
    res.setHeader('content-type', 'application/json');
    if (!byCert && auth !== `Bearer ${TOKEN}`) {
      res.writeHead(401);
      res.end(status(401, 'Unauthorized', 'Unauthorized'));
      return;
    }
    const m = /^\/apis\/discovery\.k8s\.io\/v1\/namespaces\/([^/]+)\/endpointslices$/.exec(u.pathname);
    if (req.method !== 'GET' || !m) {
      res.writeHead(404);
      res.end(status(404, 'NotFound', 'the server could not find the requested resource'));
      return;
    }
    const sel = /^kubernetes\.io\/service-name=(.+)$/.exec(u.searchParams.get('labelSelector') ?? '');
    const items = sel ? (slices.get(`${m[1]}/${sel[1]}`) ?? []) : [...slices.entries()].filter(([k]) => k.startsWith(`${m[1]}/`)).flatMap(([, v]) => v);
    res.writeHead(200);
    res.end(JSON.stringify({ kind: 'EndpointSliceList', apiVersion: 'discovery.k8s.io/v1', metadata: { resourceVersion: String(rv++) }, items }));
  });
  await new Promise<void>((r) => api.listen(0, '127.0.0.1', r));
  apiUrl = `https://127.0.0.1:${(api.address() as AddressInfo).port}`;
});

after(async () => {
  await Promise.all(gateways.map((g) => g.close()));
  await closeServer(api);
  await closeServers?.();
  await pki?.close();
});

function writeKubeconfig(name: string, user: string): string {
  const path = pki.path(`${name}.kubeconfig`);
  writeFileSync(
    path,
    `apiVersion: v1
kind: Config
current-context: test
contexts:
- name: test
  context:
    cluster: fake
    user: gw
    namespace: shop
clusters:
- name: fake
  cluster:
    server: ${apiUrl}
    certificate-authority: k8s-ca.crt
users:
- name: gw
  user:
    ${user}
`,
  );
  return path;
}

function gw(block: string) {
  return gatewayFrom(`
system { graceful-shutdown-timeout-secs 1 }
listeners { listener "http" { address "127.0.0.1:0" } }
routes { route "main" { matches { path-prefix "/" }; upstream "api" } }
upstreams { upstream "api" { ${block} } }`);
}

async function served(base: string, n: number): Promise<string[]> {
  const s = new Set<string>();
  for (let i = 0; i < n; i++) s.add((await request(`${base}/x`)).body);
  return [...s].sort();
}

test('kubernetes: ready endpoints of the named port over HTTPS with a bearer token; slice changes followed', async () => {
  slices.set('shop/api', [slice('api-abc', 'api', port, [{ ip: '127.0.0.2' }, { ip: '127.0.0.3' }, { ip: '127.0.0.4', ready: false }])]);
  slices.set('shop/other', [slice('other-1', 'other', port, [{ ip: '127.0.0.4' }])]);
  const kc = writeKubeconfig('token', `token: ${TOKEN}`);
  const g = await gw(`discovery "kubernetes" { service "api"; port-name "http"; kubeconfig "${kc}"; refresh-interval 0.2 }`);
  gateways.push(g.gw);
  const base = g.url();
  assert.deepEqual(await served(base, 6), ['127.0.0.2', '127.0.0.3'], 'not-ready 127.0.0.4 left out');
  const q = seen.find((s) => s.auth === `Bearer ${TOKEN}`);
  assert.equal(q?.path, '/apis/discovery.k8s.io/v1/namespaces/shop/endpointslices?labelSelector=kubernetes.io%2Fservice-name%3Dapi', 'namespace from the kubeconfig context');
  // a rollout: .2 goes away, .4 becomes ready
  slices.set('shop/api', [slice('api-abc', 'api', port, [{ ip: '127.0.0.3' }, { ip: '127.0.0.4' }])]);
  await eventually('127.0.0.4 served', async () => (await request(`${base}/x`)).body === '127.0.0.4');
  const hits = servers[0]!.hits;
  assert.deepEqual(await served(base, 6), ['127.0.0.3', '127.0.0.4']);
  assert.equal(servers[0]!.hits, hits, 'removed endpoint gets no traffic');
});

test('kubernetes: client-certificate authentication; the block namespace overrides the context', async () => {
  slices.set('billing/api', [slice('api-x', 'api', port, [{ ip: '127.0.0.4' }])]);
  const kc = writeKubeconfig('cert', 'client-certificate: gateway-client.crt\n    client-key: gateway-client.key');
  const g = await gw(`discovery "kubernetes" { namespace "billing"; service "api"; port-name "http"; kubeconfig "${kc}" }`);
  gateways.push(g.gw);
  assert.deepEqual(await served(g.url(), 3), ['127.0.0.4']);
  assert.ok(seen.some((s) => s.auth === 'cert' && s.path.startsWith('/apis/discovery.k8s.io/v1/namespaces/billing/')));
});

test('kubernetes: a wrong token (401) fails the first resolution; the upstream is empty (503), the gateway runs', async () => {
  const kc = writeKubeconfig('bad', 'token: wrong');
  const g = await gw(`discovery "kubernetes" { service "api"; port-name "http"; kubeconfig "${kc}" }`);
  gateways.push(g.gw);
  assert.equal((await request(`${g.url()}/x`)).status, 503);
});
