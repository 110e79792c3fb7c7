// UpstreamGroup's passive health with an injected clock (no sockets: select/report only).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { UpstreamGroup, upstreamsReport } from '../../helpers/upstream-group.ts';
import type { RawUpstream } from '../../../src/config/schema.ts';
import { fakeServices, pickContext } from '../../integration/upstreams/helpers.ts';

function setup(extra: Partial<RawUpstream> = {}) {
  let now = 1_000_000;
  const services = fakeServices();
  const g = new UpstreamGroup({
    id: 'u',
    config: { id: 'u', target: [{ address: '10.0.0.1:80', weight: 1 }, { address: '10.0.0.2:80', weight: 1 }], ...extra } as RawUpstream,
    baseDir: '.',
    services,
    now: () => now,
    rng: () => 0.5,
  });
  return { g, services, advance: (ms: number) => (now += ms) };
}

const fail = { kind: 'error', reason: 'connect_refused', latencyMs: 1 } as const;
const ok = { kind: 'response', status: 200, latencyMs: 1 } as const;

test('breaker opens after failure-threshold, skips the target, probes after timeout, closes on success', async () => {
  const { g, services, advance } = setup({ 'circuit-breaker': { 'failure-threshold': 2, 'success-threshold': 1, 'timeout-seconds': 5, 'half-open-max-requests': 1 } });
  const bad = g.targets[0]!;
  for (let i = 0; i < 2; i++) g.report(g.select(pickContext({ exclude: new Set([1]) }))!.target, fail);
  assert.equal(g.snapshot().targets[0]!.circuit_breaker, 'open');
  assert.equal(g.snapshot().targets[0]!.status, 'unhealthy');
  assert.deepEqual(services.events.at(-1), { event_type: 'circuit_breaker_change', upstream: 'u', target: '10.0.0.1:80', from: 'closed', to: 'open' });
  for (let i = 0; i < 6; i++) {
    const p = g.select(pickContext())!;
    assert.equal(p.target.index, 1, 'open breaker: target skipped');
    g.report(p.target, ok);
  }
  advance(5000);
  const probe = g.select(pickContext({ exclude: new Set([1]) }))!;
  assert.equal(probe.target, bad);
  assert.equal(g.snapshot().targets[0]!.circuit_breaker, 'half-open');
  // only one probe at a time: the next request goes elsewhere even though it prefers target 0
  assert.equal(g.select(pickContext({ exclude: new Set([1]) }))!.target.index, 1);
  g.report(g.targets[1]!, ok);
  g.report(probe.target, ok);
  assert.equal(g.snapshot().targets[0]!.circuit_breaker, 'closed');
  const text = await services.metrics.render();
  assert.match(text, /sentinel_circuit_breaker_state\{component="upstream:u:10\.0\.0\.1:80",route=""\} 0/);
});

test('a client abort (499) neither trips nor closes the breaker and frees the probe slot', () => {
  const { g, advance } = setup({ 'circuit-breaker': { 'failure-threshold': 1, 'success-threshold': 1, 'timeout-seconds': 1 } });
  g.report(g.select(pickContext({ exclude: new Set([1]) }))!.target, fail);
  advance(1000);
  const probe = g.select(pickContext({ exclude: new Set([1]) }))!;
  assert.equal(probe.target.index, 0);
  g.report(probe.target, { kind: 'response', status: 499, latencyMs: 1 });
  assert.equal(g.snapshot().targets[0]!.circuit_breaker, 'half-open');
  assert.equal(g.targets[0]!.inFlight, 0);
  assert.equal(g.select(pickContext({ exclude: new Set([1]) }))!.target.index, 0, 'probe slot was released');
});

test('relayed statuses are not failures by default; with failure-status-codes the listed ones are', () => {
  const each = (g: UpstreamGroup, status: number, n: number) => {
    for (let i = 0; i < n; i++) g.report(g.select(pickContext({ exclude: new Set([1]) }))!.target, { kind: 'response', status, latencyMs: 1 });
  };
  const plain = setup({ 'circuit-breaker': { 'failure-threshold': 3 } }).g;
  for (const status of [404, 500, 502, 503, 504]) each(plain, status, 5);
  assert.equal(plain.snapshot().targets[0]!.circuit_breaker, 'closed');
  assert.equal(plain.snapshot().targets[0]!.failure_rate, 0, 'nor in the passive window');
  const layer7 = setup({ 'circuit-breaker': { 'failure-threshold': 3, 'failure-status-codes': [503] } }).g;
  each(layer7, 404, 5);
  each(layer7, 502, 5);
  assert.equal(layer7.snapshot().targets[0]!.circuit_breaker, 'closed', '502 is not listed');
  each(layer7, 503, 3);
  assert.equal(layer7.snapshot().targets[0]!.circuit_breaker, 'open');
  assert.equal(layer7.snapshot().targets[0]!.last_error, 'status 503');
});

test('retries go to another target, and fall back to a tried one only when nothing else is usable', () => {
  const { g } = setup();
  const first = g.select(pickContext())!;
  g.report(first.target, fail);
  const second = g.select(pickContext({ exclude: new Set([first.target.index]) }))!;
  assert.notEqual(second.target.index, first.target.index);
  g.report(second.target, fail);
  const third = g.select(pickContext({ exclude: new Set([0, 1]) }));
  assert.ok(third, 'all tried: reuse one rather than fail');
  g.report(third.target, ok);
});

test('retry budget stops retry storms: at most max(10/s floor, 20% of requests) in the window', () => {
  const { g } = setup({ 'retry-policy': { 'max-attempts': 5 } });
  let granted = 0;
  for (let i = 0; i < 1000; i++) {
    const p = g.select(pickContext())!; // counts one request in the budget window
    g.report(p.target, ok);
    if (g.shouldRetry({ method: 'GET', attempt: 1, outcome: fail, bodyReplayable: true, responseStarted: false }).retry) granted++;
  }
  assert.equal(granted, 200);
});

test('snapshot and upstreamsReport follow the builtin shape', () => {
  const { g } = setup();
  assert.equal(g.snapshot().targets[0]!.status, 'unknown');
  g.report(g.select(pickContext())!.target, ok);
  const r = upstreamsReport([g], 'trace-1', '2026-01-01T00:00:00Z') as { summary: Record<string, number>; upstreams: unknown[] };
  assert.deepEqual(r.summary, { total_upstreams: 1, total_targets: 2, healthy: 1, unhealthy: 0, unknown: 1 });
  assert.equal(r.upstreams.length, 1);
});
