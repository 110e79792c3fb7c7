// Consul health API answer -> targets, and the query the block produces.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { consulTargets, consulUrl } from '../../../src/upstream/discovery/consul.ts';

const entry = (node: string, svc: string, port: unknown, weights?: unknown) => ({
  Node: { Node: 'n', Address: node, Datacenter: 'dc1' },
  Service: { ID: 'api-1', Service: 'api', Tags: [], Address: svc, Port: port, ...(weights !== undefined ? { Weights: weights } : {}) },
  Checks: [{ CheckID: 'serfHealth', Status: 'passing' }],
});

const cases: [string, unknown, string[] | RegExp][] = [
  ['ServiceAddress wins', [entry('10.0.0.1', '10.1.0.1', 8080)], ['10.1.0.1:8080/1']],
  ['empty ServiceAddress falls back to the node address', [entry('10.0.0.1', '', 8080)], ['10.0.0.1:8080/1']],
  ['Weights.Passing is the weight', [entry('10.0.0.1', '', 80, { Passing: 10, Warning: 1 })], ['10.0.0.1:80/10']],
  ['IPv6 service address gets brackets', [entry('10.0.0.1', '2001:db8::5', 443)], ['[2001:db8::5]:443/1']],
  ['host names are kept', [entry('node-a.consul', '', 80)], ['node-a.consul:80/1']],
  ['entries without a usable port or address are skipped', [entry('10.0.0.1', '', 0), entry('', '', 80), entry('10.0.0.2', '', 'x'), entry('10.0.0.3', '', 81)], ['10.0.0.3:81/1']],
  ['no instances', [], []],
  ['not an array', { error: 'x' }, /expected a JSON array/],
];

for (const [name, body, want] of cases) {
  test(`consulTargets: ${name}`, () => {
    if (want instanceof RegExp) assert.throws(() => consulTargets(body), want);
    else assert.deepEqual(consulTargets(body).map((t) => `${t.address}/${t.weight}`), want);
  });
}

test('consulUrl: passing, dc and tag query parameters; service name escaped; path prefix kept', () => {
  assert.equal(consulUrl({ address: 'http://127.0.0.1:8500', service: 'api', datacenter: undefined, onlyPassing: true, tag: undefined }), 'http://127.0.0.1:8500/v1/health/service/api?passing=true');
  assert.equal(consulUrl({ address: 'http://c:8500/', service: 'my api', datacenter: 'eu-1', onlyPassing: false, tag: 'v2' }), 'http://c:8500/v1/health/service/my%20api?dc=eu-1&tag=v2');
  assert.equal(consulUrl({ address: 'https://gw.example/consul', service: 'api', datacenter: undefined, onlyPassing: true, tag: undefined }), 'https://gw.example/consul/v1/health/service/api?passing=true');
});
