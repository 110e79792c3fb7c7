// Route circuit-breaker blocks: a breaker per route and target for routes with their own block,
// on top of the upstream's breakers that see all traffic.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { UpstreamGroup } from '../../helpers/upstream-group.ts';
import type { RawUpstream } from '../../../src/config/schema.ts';
import { fakeServices, pickContext } from '../../integration/upstreams/helpers.ts';

const fail = { kind: 'error', reason: 'reset', latencyMs: 1 } as const;
const ok = { kind: 'response', status: 200, latencyMs: 1 } as const;

function setup() {
  const clock = { now: 1_000_000 };
  const services = fakeServices();
  const g = new UpstreamGroup({
    id: 'u',
    config: { id: 'u', target: [{ address: '10.0.0.1:80', weight: 1 }, { address: '10.0.0.2:80', weight: 1 }], 'circuit-breaker': { 'failure-threshold': 5 } } as RawUpstream,
    baseDir: '.',
    services,
    routeCircuitBreakers: new Map([['strict', { 'failure-threshold': 2, 'success-threshold': 1, 'timeout-seconds': 10 }]]),
    now: () => clock.now,
    rng: () => 0.5,
  });
  return { g, services, clock };
}

const onlyFirst = () => pickContext({ exclude: new Set([1]) });

test('a route without its own block gets the group itself; a route with one gets a view sharing the state', () => {
  const { g } = setup();
  assert.equal(g.forRoute('lenient'), g);
  const view = g.forRoute('strict');
  assert.notEqual(view, g);
  assert.equal(view.targets, g.targets);
  assert.equal(view.id, 'u');
  assert.equal(view.origin(g.targets[0]!), 'http://10.0.0.1:80');
});

test('the route breaker trips for that route only; the upstream breaker (threshold 5) stays closed', async () => {
  const { g, services, clock } = setup();
  const strict = g.forRoute('strict');
  for (let i = 0; i < 2; i++) strict.report(strict.select(onlyFirst())!.target, fail);
  const snap = g.snapshot().targets[0]!;
  assert.equal(snap.circuit_breaker, 'closed');
  assert.deepEqual(snap.route_circuit_breakers, { strict: 'open' });
  // the strict route avoids target 0 even when it prefers it; other routes still use it
  for (let i = 0; i < 4; i++) {
    const p = strict.select(onlyFirst())!;
    assert.equal(p.target.address, '10.0.0.2:80');
    strict.report(p.target, ok);
    const q = g.select(onlyFirst())!;
    assert.equal(q.target.address, '10.0.0.1:80');
    g.report(q.target, ok);
  }
  const text = await services.metrics.render();
  assert.match(text, /sentinel_circuit_breaker_state\{component="upstream:u:10\.0\.0\.1:80",route="strict"\} 1/);
  assert.match(text, /sentinel_circuit_breaker_state\{component="upstream:u:10\.0\.0\.1:80",route=""\} 0/);
  assert.deepEqual(services.events.at(-1), { event_type: 'circuit_breaker_change', upstream: 'u', route: 'strict', target: '10.0.0.1:80', from: 'closed', to: 'open' });
  // after the route's timeout one probe passes and a success closes it (success-threshold 1)
  clock.now += 10_000;
  const probe = strict.select(onlyFirst())!;
  assert.equal(probe.target.address, '10.0.0.1:80');
  assert.deepEqual(g.snapshot().targets[0]!.route_circuit_breakers, { strict: 'half-open' });
  strict.report(probe.target, ok);
  assert.deepEqual(g.snapshot().targets[0]!.route_circuit_breakers, { strict: 'closed' });
});

test('the upstream breaker sees every route\'s traffic and applies to the strict route as well', () => {
  const { g } = setup();
  const strict = g.forRoute('strict');
  // 5 failures through the group (any route) open the upstream breaker
  for (let i = 0; i < 5; i++) g.report(g.select(onlyFirst())!.target, fail);
  assert.equal(g.snapshot().targets[0]!.circuit_breaker, 'open');
  assert.equal(strict.select(onlyFirst())!.target.address, '10.0.0.2:80');
});

test('a client abort through the route view frees the route probe slot', () => {
  const { g, clock } = setup();
  const strict = g.forRoute('strict');
  for (let i = 0; i < 2; i++) strict.report(strict.select(onlyFirst())!.target, fail);
  clock.now += 10_000;
  const probe = strict.select(onlyFirst())!;
  strict.report(probe.target, { kind: 'response', status: 499, latencyMs: 1 });
  assert.equal(g.targets[0]!.inFlight, 0);
  assert.equal(strict.select(onlyFirst())!.target.address, '10.0.0.1:80', 'probe slot released');
});

test('each breaker judges a relayed status by its own failure-status-codes', () => {
  const services = fakeServices();
  const g = new UpstreamGroup({
    id: 'u',
    config: { id: 'u', target: [{ address: '10.0.0.1:80', weight: 1 }, { address: '10.0.0.2:80', weight: 1 }], 'circuit-breaker': { 'failure-threshold': 2 } } as RawUpstream,
    baseDir: '.',
    services,
    routeCircuitBreakers: new Map([['strict', { 'failure-threshold': 2, 'failure-status-codes': [502] }]]),
    now: () => 1_000_000,
    rng: () => 0.5,
  });
  const strict = g.forRoute('strict');
  for (let i = 0; i < 3; i++) strict.report(strict.select(onlyFirst())!.target, { kind: 'response', status: 502, latencyMs: 1 });
  const snap = g.snapshot().targets[0]!;
  assert.deepEqual(snap.route_circuit_breakers, { strict: 'open' });
  assert.equal(snap.circuit_breaker, 'closed', 'the upstream block does not list 502');
  assert.equal(snap.failure_rate, 0, 'the passive window follows the upstream block');
});
