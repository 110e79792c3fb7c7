// Agents that are slow, hang, crash, restart, answer garbage or for the wrong correlation id:
// the expected status under fail-closed and fail-open, cancellation, reconnects, the circuit
// breaker, and no leaked pending calls or correlation ids afterwards.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { reservedCorrelationIds } from '../../../plugins/agents/correlation.ts';
import type { AgentFilter } from '../../../plugins/agents/filter.ts';
import type { AgentBlock } from '../../../plugins/agents/definition.ts';
import { eventually, send, waitUntil, spawnAgent, startPipeline, startUpstream, tempDir, type AgentProcess, type Pipeline, type PipelineRoute } from './harness.ts';

const tmp = tempDir();
const sock = (n: string) => join(tmp.dir, `${n}.sock`);
const ROGUE = 'test/integration/agents/fixtures/rogue-agent.ts';

// mode -> [fail-closed status, extra rogue args]
const MODES: Record<string, number> = {
  slow: 504, // answers after 1500 ms, timeout is 300 ms
  hang: 504,
  garbage: 503,
  'wrong-id': 504,
  oversized: 503,
  'bad-json': 503,
  half: 504,
};

const agents = new Map<string, AgentProcess>();
let upstream: Awaited<ReturnType<typeof startUpstream>>;
let gw: Pipeline;

const noBreaker = { 'failure-threshold': 1000 };
const fastPool = { 'reconnect-interval-ms': 100, 'connections-per-agent': 1, 'connect-timeout-ms': 1000 };

before(async () => {
  // One process serves every misbehaving mode (the machine is shared; fewer tsx start-ups).
  const serve = [...Object.keys(MODES), 'no-pong', 'reject-config'].flatMap((mode) => ['--serve', `${mode}=${sock(mode)}`]);
  const started = await Promise.all([
    (async () => ['rogue', await spawnAgent(ROGUE, [...serve, '--delay', '1500'])] as const)(),
    (async () => ['crash', await spawnAgent(ROGUE, ['--socket', sock('crash'), '--mode', 'crash'])] as const)(),
    (async () => ['deny', await spawnAgent('agents/denylist/main.ts', ['--socket', sock('deny'), '--header', 'x-evil=1'])] as const)(),
  ]);
  for (const [k, v] of started) agents.set(k, v);
  upstream = await startUpstream();
  const defs: AgentBlock[] = [];
  const filters: Record<string, Record<string, unknown>> = {};
  const routes: PipelineRoute[] = [];
  for (const mode of [...Object.keys(MODES), 'crash']) {
    // the crash agent gets time to die: its connection loss (503), not the timeout, is under test
    defs.push({ id: mode, 'unix-socket': { path: sock(mode) }, 'timeout-ms': mode === 'crash' ? 5000 : 300, 'circuit-breaker': noBreaker, pool: fastPool });
    filters[`${mode}-closed`] = { agent: mode, 'failure-mode': 'closed' };
    filters[`${mode}-open`] = { agent: mode, 'failure-mode': 'open' };
    routes.push({ id: `closed-${mode}`, prefix: `/closed/${mode}/`, filters: [`${mode}-closed`] });
    routes.push({ id: `open-${mode}`, prefix: `/open/${mode}/`, filters: [`${mode}-open`] });
  }
  defs.push({ id: 'deny', 'unix-socket': { path: sock('deny') } });
  defs.push({ id: 'hang-long', 'unix-socket': { path: sock('hang') }, 'timeout-ms': 10_000, pool: fastPool });
  defs.push({ id: 'down', 'unix-socket': { path: sock('down') }, 'timeout-ms': 300, 'circuit-breaker': { 'failure-threshold': 2, 'timeout-seconds': 0.5 }, pool: fastPool });
  defs.push({ id: 'no-pong', 'unix-socket': { path: sock('no-pong') }, pool: { ...fastPool, 'health-check-interval-ms': 100 } });
  defs.push({ id: 'reject-config', 'unix-socket': { path: sock('reject-config') }, config: { any: 'thing' }, pool: fastPool });
  filters.deny = { agent: 'deny' };
  filters['hang-long'] = { agent: 'hang-long' };
  filters.down = { agent: 'down' };
  filters['no-pong'] = { agent: 'no-pong' };
  filters['reject-config'] = { agent: 'reject-config' };
  routes.push({ id: 'deny-then-hang', prefix: '/chain/', filters: ['deny', 'hang-long'] });
  routes.push({ id: 'hang-long', prefix: '/hang-long/', filters: ['hang-long'] });
  routes.push({ id: 'down', prefix: '/down/', filters: ['down'] });
  routes.push({ id: 'no-pong', prefix: '/no-pong/', filters: ['no-pong'] });
  routes.push({ id: 'reject-config', prefix: '/reject-config/', filters: ['reject-config'] });
  gw = await startPipeline({ upstreamPort: upstream.port, agents: defs, filters, routes });
});

after(async () => {
  await gw?.close();
  await upstream?.close();
  await Promise.all([...agents.values()].map((a) => a.stop()));
  tmp.cleanup();
});

for (const [mode, closedStatus] of Object.entries(MODES)) {
  test(`${mode}: fail-closed answers ${closedStatus}, fail-open forwards`, async () => {
    const closed = await send(gw.port, `/closed/${mode}/x`);
    assert.equal(closed.status, closedStatus, closed.body.toString());
    assert.equal(closed.body.toString(), closedStatus === 504 ? 'Gateway timeout' : 'Agent unavailable');
    const open = await send(gw.port, `/open/${mode}/x`);
    assert.equal(open.status, 200);
    assert.equal(upstream.hits.at(-1)!.url, `/open/${mode}/x`);
  });
}

test('timeouts are counted per agent and event', async () => {
  const m = gw.metrics.registry.getSingleMetric('sentinel_agent_timeouts_total');
  const values = (await m!.get()).values;
  assert.ok(values.some((v) => v.labels.agent === 'hang' && v.labels.event === 'request_headers' && v.value >= 2), 'timeouts counted');
});

test('timeouts send Cancel (reason 2) to the agent', async () => {
  const rogue = agents.get('rogue')!;
  await eventually(() => rogue.lines.some((l) => l.agent === 'hang' && l.seen === 'cancel' && l.reason === 2), 'cancel with reason timeout');
});

test('protocol garbage is counted', async () => {
  const values = (await gw.metrics.registry.getSingleMetric('sentinel_agent_protocol_errors_total')!.get()).values;
  const kinds = new Set(values.filter((v) => v.value > 0).map((v) => `${v.labels.agent}:${v.labels.kind}`));
  for (const k of ['garbage:unknown_type', 'oversized:oversized_frame', 'bad-json:bad_json', 'wrong-id:unmatched_reply']) assert.ok(kinds.has(k), `${k} in ${[...kinds].join(' ')}`);
});

test('a half-written frame is dropped with its connection once it stalls (connect-timeout-ms)', async () => {
  await eventually(async () => {
    const values = (await gw.metrics.registry.getSingleMetric('sentinel_agent_protocol_errors_total')!.get()).values;
    return values.some((v) => v.labels.agent === 'half' && v.labels.kind === 'stalled_frame' && v.value >= 1);
  }, 'stalled_frame counted for the half agent');
  const r = await send(gw.port, '/closed/half/again');
  assert.equal(r.status, 504, 'a fresh connection, and the agent again leaves half a frame');
});

test('a block by an earlier agent cancels the later agent (reason 3) without waiting for it', async () => {
  const rogue = agents.get('rogue')!;
  const r = await send(gw.port, '/chain/x', { headers: { 'x-request-id': 'cancel-on-block', 'x-evil': '1' } });
  assert.equal(r.status, 403);
  await eventually(() => rogue.lines.some((l) => l.agent === 'hang' && l.seen === 'cancel' && l.cid === 'cancel-on-block' && l.reason === 3), 'cancel with reason blocked');
});

test('a client that disconnects cancels its agent calls (reason 1)', async () => {
  const rogue = agents.get('rogue')!;
  const { request } = await import('node:http');
  const req = request({ host: '127.0.0.1', port: gw.port, path: '/hang-long/x', headers: { 'x-request-id': 'client-gone' }, agent: false });
  req.on('error', () => undefined);
  req.end();
  await eventually(() => rogue.lines.some((l) => l.agent === 'hang' && l.seen === 'request' && l.cid === 'client-gone'), 'agent saw the request');
  req.destroy();
  await eventually(() => rogue.lines.some((l) => l.agent === 'hang' && l.seen === 'cancel' && l.cid === 'client-gone' && l.reason === 1), 'cancel with reason client disconnect');
});

test('a crashing agent: 503 when closed, skipped when open, served again after it restarts', async () => {
  const closed = await send(gw.port, '/closed/crash/x');
  assert.equal(closed.status, 503);
  assert.equal(await agents.get('crash')!.exited, 3);
  const open = await send(gw.port, '/open/crash/x');
  assert.equal(open.status, 200);
  // restart on the same socket, well-behaved this time
  agents.set('crash', await spawnAgent(ROGUE, ['--socket', sock('crash'), '--mode', 'allow']));
  await eventually(async () => (await send(gw.port, '/closed/crash/x')).status === 200, 'reconnected to the restarted agent');
  assert.equal(upstream.hits.at(-1)!.headers['x-rogue'], 'allow');
});

test('circuit breaker: errors, then open (503 Service unavailable), then recovery once the agent is back', async () => {
  const first = await send(gw.port, '/down/x');
  assert.equal(first.status, 503);
  assert.equal(first.body.toString(), 'Agent unavailable');
  await send(gw.port, '/down/x');
  const open = await send(gw.port, '/down/x');
  assert.equal(open.status, 503);
  assert.equal(open.body.toString(), 'Service unavailable');
  agents.set('down', await spawnAgent(ROGUE, ['--socket', sock('down'), '--mode', 'allow']));
  await eventually(async () => (await send(gw.port, '/down/x')).status === 200, 'breaker half-open probe succeeds', 100, 100);
  assert.equal((await send(gw.port, '/down/x')).status, 200, 'second success closes the breaker');
  const values = (await gw.metrics.registry.getSingleMetric('sentinel_circuit_breaker_state')!.get()).values;
  assert.equal(values.find((v) => v.labels.component === 'agent:down')?.value, 0);
});

test('an agent that stops answering pings is reconnected; requests keep being served', async () => {
  // The connection is dropped two ping intervals (200 ms) after each reconnect, so a request can
  // land while it is down (fail-closed 503): wait on conditions with a deadline, not on counts of
  // short polls that a loaded machine outruns.
  const okConnects = async () => {
    const values = (await gw.metrics.registry.getSingleMetric('sentinel_agent_connect_attempts_total')!.get()).values;
    return values.find((v) => v.labels.agent === 'no-pong' && v.labels.result === 'ok')?.value ?? 0;
  };
  const startedWith = await okConnects();
  await waitUntil(async () => (await okConnects()) >= startedWith + 2, 'two reconnects after missed pongs', 30_000);
  const seen = new Set<number>();
  await waitUntil(
    async () => {
      const status = (await send(gw.port, '/no-pong/x')).status;
      seen.add(status);
      return status === 200;
    },
    'a request served between reconnects',
    30_000,
  );
  assert.deepEqual([...seen].filter((s) => s !== 200 && s !== 503), [], 'only served, or fail-closed while reconnecting');
});

test('an agent that rejects its configuration is unavailable (fail-closed 503)', async () => {
  const r = await send(gw.port, '/reject-config/x');
  assert.equal(r.status, 503);
  assert.ok(agents.get('rogue')!.lines.some((l) => l.agent === 'reject-config' && l.seen === 'configure'));
});

test('nothing leaks: no pending replies, permits or correlation ids', async () => {
  await eventually(() => {
    for (const f of gw.filters.values()) {
      for (const s of Object.values((f as AgentFilter).agentStats())) if (s.pendingReplies + s.permitsInUse + s.queued > 0) return false;
    }
    return reservedCorrelationIds() === 0;
  }, 'all calls settled');
});
