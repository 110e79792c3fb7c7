// Kubernetes discovery pure parts: kubeconfig parsing, in-cluster access, EndpointSlice mapping.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { endpointSlicesPath, endpointSliceTargets, inClusterAccess, parseKubeconfig } from '../../../src/upstream/discovery/kubernetes.ts';

const b64 = (s: string) => Buffer.from(s).toString('base64');

function kubeconfig(user: string, cluster = `server: https://10.0.0.1:6443/\n      certificate-authority-data: ${b64('CA-PEM')}`, ctxExtra = ''): string {
  return `apiVersion: v1
kind: Config
current-context: prod
contexts:
  - name: dev
    context: { cluster: other, user: u }
  - name: prod
    context:
      cluster: c1
      user: u1
${ctxExtra}
clusters:
  - name: c1
    cluster:
      ${cluster}
  - name: other
    cluster: { server: "https://other:443" }
users:
  - name: u1
    user:
      ${user}
  - name: u
    user: {}
`;
}

const files: Record<string, string> = { '/cfg/ca.pem': 'CA-FROM-FILE', '/cfg/client.crt': 'CERT', '/abs/client.key': 'KEY', '/cfg/tok': 'file-token' };
const read = (p: string) => {
  if (!(p in files)) throw new Error(`ENOENT ${p}`);
  return Buffer.from(files[p]!);
};

test('kubeconfig: current context, server (trailing slash dropped), inline CA, bearer token', () => {
  const a = parseKubeconfig(kubeconfig('token: abc.def'), '/cfg', read);
  assert.equal(a.server, 'https://10.0.0.1:6443');
  assert.equal(a.ca?.toString(), 'CA-PEM');
  assert.equal(a.token, 'abc.def');
  assert.equal(a.insecure, false);
  assert.equal(a.namespace, undefined);
});

test('kubeconfig: files relative to the kubeconfig directory, client certificate, context namespace', () => {
  const a = parseKubeconfig(
    kubeconfig('client-certificate: client.crt\n      client-key: /abs/client.key', 'server: https://k8s.example:443\n      certificate-authority: ca.pem', '      namespace: payments'),
    '/cfg',
    read,
  );
  assert.equal(a.ca?.toString(), 'CA-FROM-FILE');
  assert.equal(a.cert?.toString(), 'CERT');
  assert.equal(a.key?.toString(), 'KEY');
  assert.equal(a.namespace, 'payments');
  assert.equal(a.token, undefined);
});

test('kubeconfig: tokenFile, insecure-skip-tls-verify, explicit context', () => {
  const a = parseKubeconfig(kubeconfig('tokenFile: tok', 'server: https://x:1\n      insecure-skip-tls-verify: true'), '/cfg', read);
  assert.equal(a.tokenFile, '/cfg/tok');
  assert.equal(a.insecure, true);
  assert.equal(parseKubeconfig(kubeconfig('token: t'), '/cfg', read, 'dev').server, 'https://other:443');
});

const errors: [string, string, RegExp][] = [
  ['exec plugins', kubeconfig('exec: { command: aws }'), /exec\/auth-provider plugins, which are not supported/],
  ['cert without key', kubeconfig(`client-certificate-data: ${b64('C')}`), /needs both a client certificate and a client key/],
  ['missing context', 'current-context: nope\ncontexts: []\n', /no context named "nope"/],
  ['no current-context', 'apiVersion: v1\n', /no current-context/],
  ['cluster without server', kubeconfig('token: t', 'certificate-authority-data: x'), /cluster "c1" has no server/],
];
for (const [name, text, want] of errors) {
  test(`kubeconfig error: ${name}`, () => assert.throws(() => parseKubeconfig(text, '/cfg', read), want));
}

test('in-cluster: service host/port from the environment, CA and namespace from the service account dir, token file re-read', () => {
  const sa: Record<string, string> = { '/sa/ca.crt': 'CLUSTER-CA', '/sa/namespace': 'shop\n' };
  const r = (p: string) => {
    if (!(p in sa)) throw new Error('ENOENT');
    return Buffer.from(sa[p]!);
  };
  const a = inClusterAccess({ KUBERNETES_SERVICE_HOST: 'fd00::1', KUBERNETES_SERVICE_PORT: '6443' }, '/sa', r);
  assert.deepEqual({ server: a.server, ca: a.ca?.toString(), tokenFile: a.tokenFile, namespace: a.namespace }, { server: 'https://[fd00::1]:6443', ca: 'CLUSTER-CA', tokenFile: '/sa/token', namespace: 'shop' });
  assert.throws(() => inClusterAccess({}, '/sa', r), /not in a cluster \(KUBERNETES_SERVICE_HOST is unset\)/);
});

test('the EndpointSlice list path selects by the service-name label', () => {
  assert.equal(endpointSlicesPath('prod', 'api'), '/apis/discovery.k8s.io/v1/namespaces/prod/endpointslices?labelSelector=kubernetes.io%2Fservice-name%3Dapi');
});

const slice = (addressType: string, ports: unknown[], endpoints: unknown[]) => ({ apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice', metadata: { name: 's' }, addressType, ports, endpoints });
const ep = (addresses: string[], ready?: boolean) => ({ addresses, ...(ready === undefined ? {} : { conditions: { ready } }) });

const sliceCases: [string, unknown, string | undefined, string[] | RegExp][] = [
  ['named port, ready endpoints, unset ready counts as ready', { items: [slice('IPv4', [{ name: 'metrics', port: 9090 }, { name: 'http', port: 8080 }], [ep(['10.1.0.1'], true), ep(['10.1.0.2']), ep(['10.1.0.3'], false)])] }, 'http', ['10.1.0.1:8080', '10.1.0.2:8080']],
  ['no port-name: the first TCP port', { items: [slice('IPv4', [{ name: 'dns', port: 53, protocol: 'UDP' }, { name: '', port: 80 }], [ep(['10.1.0.1'])])] }, undefined, ['10.1.0.1:80']],
  ['first address of an endpoint only', { items: [slice('IPv4', [{ port: 80 }], [ep(['10.1.0.1', '10.1.0.9'])])] }, undefined, ['10.1.0.1:80']],
  ['IPv6 slice', { items: [slice('IPv6', [{ port: 80 }], [ep(['fd00::5'])])] }, undefined, ['[fd00::5]:80']],
  ['several slices (one per address family / 100 endpoints)', { items: [slice('IPv4', [{ name: 'http', port: 80 }], [ep(['10.1.0.1'])]), slice('IPv4', [{ name: 'http', port: 80 }], [ep(['10.1.0.2'])])] }, 'http', ['10.1.0.1:80', '10.1.0.2:80']],
  ['a slice without the named port is skipped', { items: [slice('IPv4', [{ name: 'grpc', port: 50051 }], [ep(['10.1.0.1'])])] }, 'http', []],
  ['no endpoints yet (endpoints: null)', { items: [{ addressType: 'IPv4', ports: null, endpoints: null }] }, undefined, []],
  ['not a list', { kind: 'Status', status: 'Failure' }, undefined, /expected an EndpointSliceList/],
];
for (const [name, list, portName, want] of sliceCases) {
  test(`endpointSliceTargets: ${name}`, () => {
    if (want instanceof RegExp) assert.throws(() => endpointSliceTargets(list, portName), want);
    else assert.deepEqual(endpointSliceTargets(list, portName).map((t) => t.address), want);
  });
}
