// The cluster /metrics merge, on real Metrics objects standing in for workers.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Gauge, Registry } from 'prom-client';
import { Metrics } from '../../../src/metrics/registry.ts';
import { aggregateClusterMetrics, prepareWorkerSnapshot, type WorkerSnapshot } from '../../../src/cluster/aggregate.ts';
import type { WorkerMetricsJson } from '../../../src/cluster/messages.ts';

/** sample lines of the exposition text: `name{labels}` -> value */
function samples(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const i = line.lastIndexOf(' ');
    out.set(line.slice(0, i), Number(line.slice(i + 1)));
  }
  return out;
}

async function snapshot(worker: number, m: Metrics): Promise<WorkerSnapshot> {
  return { worker, metrics: (await m.registry.getMetricsAsJSON()) as WorkerMetricsJson };
}

test('our FastCounter/FastHistogram cells and gauges sum across workers; primary-owned metrics come from the primary', async () => {
  const w1 = new Metrics({ defaultMetrics: false });
  const w2 = new Metrics({ defaultMetrics: false });
  w1.requestsTotal.child('api', 'GET', '200').value += 3;
  w2.requestsTotal.child('api', 'GET', '200').value += 4;
  w2.requestsTotal.child('api', 'POST', '502').value += 1;
  w1.requestDuration.child('api', 'GET').observe(0.004);
  w2.requestDuration.child('api', 'GET').observe(0.004);
  w2.requestDuration.child('api', 'GET').observe(0.3);
  w1.upstreamFailures.inc({ upstream: 'u', route: 'api', reason: 'timeout' });
  w2.upstreamFailures.inc({ upstream: 'u', route: 'api', reason: 'timeout' }, 2);
  w1.inFlight = 2;
  w2.inFlight = 5;
  // workers' own reload counters and generations are ignored
  w1.configReloads.inc({ result: 'success' }, 7);
  w1.generation.set(9);
  w2.generation.set(1);
  const primary = new Metrics({ defaultMetrics: false });
  primary.configReloads.inc({ result: 'success' });
  primary.configReloads.inc({ result: 'failure' });
  primary.generation.set(2);
  const s = samples(await aggregateClusterMetrics([await snapshot(1, w1), await snapshot(2, w2)], primary.registry));

  assert.equal(s.get('sentinel_requests_total{route="api",method="GET",status="200"}'), 7);
  assert.equal(s.get('sentinel_requests_total{route="api",method="POST",status="502"}'), 1);
  assert.equal(s.get('sentinel_request_duration_seconds_count{route="api",method="GET"}'), 3);
  assert.equal(s.get('sentinel_request_duration_seconds_bucket{le="0.005",route="api",method="GET"}'), 2);
  assert.equal(s.get('sentinel_request_duration_seconds_bucket{le="0.25",route="api",method="GET"}'), 2);
  assert.equal(s.get('sentinel_request_duration_seconds_bucket{le="0.5",route="api",method="GET"}'), 3);
  assert.equal(s.get('sentinel_request_duration_seconds_bucket{le="+Inf",route="api",method="GET"}'), 3);
  assert.ok(Math.abs(s.get('sentinel_request_duration_seconds_sum{route="api",method="GET"}')! - 0.308) < 1e-9);
  assert.equal(s.get('sentinel_upstream_failures_total{upstream="u",route="api",reason="timeout"}'), 3);
  assert.equal(s.get('sentinel_active_requests'), 7);
  assert.equal(s.get('sentinel_up'), 1);
  assert.equal(s.get(`sentinel_build_info{version="0.1.0",node="${process.version}"}`), 1);
  assert.equal(s.get('sentinel_config_generation'), 2);
  assert.equal(s.get('sentinel_config_reloads_total{result="success"}'), 1);
  assert.equal(s.get('sentinel_config_reloads_total{result="failure"}'), 1);
});

test('state gauges do not add up: breaker state is the worst, target health the least healthy', async () => {
  const w1 = new Metrics({ defaultMetrics: false });
  const w2 = new Metrics({ defaultMetrics: false });
  w1.gauge('sentinel_circuit_breaker_state', 'h', ['component', 'route']).set({ component: 'u', route: 'r' }, 0);
  w2.gauge('sentinel_circuit_breaker_state', 'h', ['component', 'route']).set({ component: 'u', route: 'r' }, 1);
  w1.gauge('sentinel_upstream_target_healthy', 'h', ['upstream', 'target']).set({ upstream: 'u', target: 't' }, 1);
  w2.gauge('sentinel_upstream_target_healthy', 'h', ['upstream', 'target']).set({ upstream: 'u', target: 't' }, 0);
  w1.gauge('sentinel_connection_pool_size', 'h', ['upstream']).set({ upstream: 'u' }, 3);
  w2.gauge('sentinel_connection_pool_size', 'h', ['upstream']).set({ upstream: 'u' }, 4);
  const s = samples(await aggregateClusterMetrics([await snapshot(1, w1), await snapshot(2, w2)], new Metrics({ defaultMetrics: false }).registry));
  assert.equal(s.get('sentinel_circuit_breaker_state{component="u",route="r"}'), 1);
  assert.equal(s.get('sentinel_upstream_target_healthy{upstream="u",target="t"}'), 0);
  assert.equal(s.get('sentinel_connection_pool_size{upstream="u"}'), 7);
});

test('process metrics stay per worker, with a worker label (even those prom-client would omit)', async () => {
  const workers = await Promise.all(
    [100, 200].map(async (startTime, i) => {
      const registry = new Registry();
      new Gauge({ name: 'sentinel_process_process_start_time_seconds', help: 'h', aggregator: 'omit', registers: [registry] }).set(startTime);
      return { worker: i + 1, metrics: (await registry.getMetricsAsJSON()) as WorkerMetricsJson };
    }),
  );
  assert.deepEqual(prepareWorkerSnapshot(workers[0]!)[0]!.values, [{ value: 100, labels: { worker: '1' } }]);
  const s = samples(await aggregateClusterMetrics(workers, new Metrics({ defaultMetrics: false }).registry));
  assert.equal(s.get('sentinel_process_process_start_time_seconds{worker="1"}'), 100);
  assert.equal(s.get('sentinel_process_process_start_time_seconds{worker="2"}'), 200);
});
