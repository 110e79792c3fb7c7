import { test } from 'node:test';
import assert from 'node:assert/strict';
import { defineAgent, defineAgentFilter, defineBodyPolicy } from '../../../plugins/agents/definition.ts';
import { Denylist, parseDenylistConfig } from '../../../agents/denylist/rules.ts';

test('agent defaults follow Sentinel', () => {
  const { definition: d, errors } = defineAgent({ id: 'waf', 'unix-socket': { path: '/run/waf.sock' } });
  assert.deepEqual(errors, []);
  assert.deepEqual([...d.events], ['request_headers']);
  assert.equal(d.timeoutMs, 1000);
  assert.equal(d.maxConcurrentCalls, 100);
  assert.equal(d.failureMode, 'open');
  assert.deepEqual(d.breaker, { failureThreshold: 5, successThreshold: 2, openMs: 30000, halfOpenMaxRequests: 1 });
  assert.deepEqual(d.pool.connections, 4);
  assert.deepEqual(d.requestBodyMode, { kind: 'buffer' });
});

test('event aliases, body modes, relative sockets, errors', () => {
  const { definition: d } = defineAgent({ id: 'a', 'unix-socket': { path: 'a.sock' }, events: ['request-headers', 'request_body', 'log'], 'request-body-mode': 'hybrid:1024', 'failure-mode': 'fail_closed' }, '/etc/sentinel');
  assert.deepEqual([...d.events], ['request_headers', 'request_body', 'request_complete']);
  assert.deepEqual(d.requestBodyMode, { kind: 'hybrid', bufferBytes: 1024 });
  assert.equal(d.socketPath, '/etc/sentinel/a.sock');
  assert.equal(d.failureMode, 'closed');
  const bad = defineAgent({ id: 'b', events: ['request_bodies'], 'request-body-mode': 'chunky', 'failure-mode': 'sometimes' });
  assert.equal(bad.errors.length, 4, bad.errors.join('\n'));
  assert.match(bad.errors.join('\n'), /needs unix-socket/);
  assert.match(bad.errors.join('\n'), /unknown event "request_bodies"/);
});

test('in-process agents: a known program instead of a socket', () => {
  const ok = defineAgent({ id: 'waf', 'in-process': 'sentinel-waf', config: { 'paranoia-level': 2 } });
  assert.deepEqual(ok.errors, []);
  assert.equal(ok.definition.inProcess, 'sentinel-waf');
  assert.equal(ok.definition.socketPath, '');
  assert.equal(defineAgent({ id: 'u', 'unix-socket': { path: '/run/u.sock' } }).definition.inProcess, undefined);
  assert.match(defineAgent({ id: 'x', 'in-process': 'modsecurity' }).errors.join('\n'), /in-process: unknown program "modsecurity" \(known: sentinel-waf\)/);
  assert.match(defineAgent({ id: 'y', 'in-process': 'sentinel-waf', 'unix-socket': { path: '/run/y.sock' } }).errors.join('\n'), /either unix-socket or in-process, not both/);
});

test('agent filter settings', () => {
  assert.deepEqual(defineAgentFilter('f', { agent: 'waf', 'failure-mode': 'open', 'timeout-ms': 50 }), {
    id: 'f',
    agent: 'waf',
    phase: undefined,
    timeoutMs: 50,
    failureMode: 'open',
    inspectBody: undefined,
    inspectUnknownTypes: undefined,
    maxBodyBytes: undefined,
    bodyOverLimit: undefined,
  });
  assert.equal(defineAgentFilter('f', { agent: 'waf', 'failure-mode': 'open', 'body-over-limit': 'reject' }).bodyOverLimit, 'reject');
  assert.throws(() => defineAgentFilter('f', {}), /needs agent/);
  assert.throws(() => defineAgentFilter('f', { agent: 'x', 'failure-mode': 'maybe' }), /failure-mode/);
});

test('body policy: waf block over limits over defaults; decompression cap is 10x inspection bytes', () => {
  const p = defineBodyPolicy(undefined, { 'max-body-inspection-bytes': 1000, 'max-decompression-ratio': 50 });
  assert.equal(p.maxInspectionBytes, 1000);
  assert.equal(p.maxDecompressionRatio, 50);
  assert.equal(p.maxDecompressedBytes, 10_000);
  assert.equal(p.decompress, false);
  const w = defineBodyPolicy({ 'body-inspection': { 'max-inspection-bytes': 10, decompress: true, 'content-types': ['Application/JSON'] } }, { 'max-body-inspection-bytes': 1000 });
  assert.equal(w.maxInspectionBytes, 10);
  assert.equal(w.decompress, true);
  assert.deepEqual(w.contentTypes, ['application/json']);
});

test('denylist rules: path prefixes on segment boundaries, CIDRs, headers', () => {
  const d = new Denylist(parseDenylistConfig({ paths: '/admin', ips: ['10.0.0.0/8', '::1'], headers: { 'User-Agent': 'sqlmap', 'x-debug': true } }));
  const req = (path: string, clientIp = '192.0.2.1', headers: Record<string, string[]> = {}) => ({ path, clientIp, headers });
  assert.deepEqual(d.check(req('/admin')), { rule: 'path', detail: '/admin' });
  assert.deepEqual(d.check(req('/admin/users')), { rule: 'path', detail: '/admin' });
  assert.equal(d.check(req('/administrator')), undefined);
  assert.deepEqual(d.check(req('/', '10.1.2.3')), { rule: 'ip', detail: '10.1.2.3' });
  assert.deepEqual(d.check(req('/', '::1')), { rule: 'ip', detail: '::1' });
  assert.deepEqual(d.check(req('/', '192.0.2.1', { 'user-agent': ['sqlmap'] })), { rule: 'header', detail: 'user-agent' });
  assert.equal(d.check(req('/', '192.0.2.1', { 'user-agent': ['curl'] })), undefined);
  assert.deepEqual(d.check(req('/', '192.0.2.1', { 'x-debug': ['anything'] })), { rule: 'header', detail: 'x-debug' });
  assert.throws(() => new Denylist(parseDenylistConfig({ ips: 'not-an-ip' })), /invalid ip/);
});

test('protocol-version: 1/"v1" select v1, 2/"v2"/absent v2, anything else is an error; response body settings', () => {
  const pv = (v: string | number | undefined) => defineAgent({ id: 'a', 'unix-socket': { path: '/a.sock' }, ...(v === undefined ? {} : { 'protocol-version': v }) });
  const cases: [string | number | undefined, 1 | 2][] = [
    [undefined, 2],
    [1, 1],
    ['1', 1],
    ['v1', 1],
    ['V1', 1],
    [2, 2],
    ['v2', 2],
  ];
  for (const [input, want] of cases) {
    const { definition, errors } = pv(input);
    assert.deepEqual(errors, [], String(input));
    assert.equal(definition.protocolVersion, want, String(input));
  }
  assert.match(pv(3).errors.join(), /unsupported protocol version 3/);
  const { definition: d } = defineAgent({ id: 'r', 'unix-socket': { path: '/r.sock' }, 'response-body-mode': 'stream', 'max-response-body-bytes': 10 });
  assert.deepEqual(d.responseBodyMode, { kind: 'stream' });
  assert.equal(d.maxResponseBodyBytes, 10);
  assert.equal(pv(undefined).definition.maxResponseBodyBytes, 1024 * 1024);
});

test('encoding: json by default, msgpack on request, refused with protocol v1', () => {
  assert.equal(defineAgent({ id: 'a', 'unix-socket': { path: '/a.sock' } }).definition.encoding, 'json');
  assert.equal(defineAgent({ id: 'a', 'unix-socket': { path: '/a.sock' }, encoding: 'msgpack' }).definition.encoding, 'msgpack');
  assert.match(defineAgent({ id: 'a', 'unix-socket': { path: '/a.sock' }, encoding: 'msgpack', 'protocol-version': 1 }).errors.join(), /MessagePack needs protocol v2/);
});
