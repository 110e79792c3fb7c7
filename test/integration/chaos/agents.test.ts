// Chaos: one agent socket whose process crashes mid-request, is replaced by one that hangs, then by
// one that answers garbage, then by a healthy one again, while bounded request loops run against a
// fail-closed and a fail-open route. Configured behaviour (docs/agents.md): fail-closed answers 503
// when the agent is gone or speaks garbage and 504 after `timeout-ms` when it hangs; fail-open
// always forwards; once a healthy agent listens again the pool reconnects and requests pass.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { send, spawnAgent, startPipeline, startUpstream, tempDir, waitUntil, type AgentProcess, type Pipeline } from '../agents/harness.ts';

const ROGUE = 'test/integration/agents/fixtures/rogue-agent.ts';
const tmp = tempDir();
const socket = join(tmp.dir, 'chaos.sock');
let upstream: Awaited<ReturnType<typeof startUpstream>>;
let gw: Pipeline;
let agent: AgentProcess | undefined;

/** Replaces the process behind the socket with a rogue agent in `mode` ("slow" with no delay is a healthy agent). */
async function become(mode: string): Promise<void> {
  await agent?.stop();
  agent = await spawnAgent(ROGUE, ['--socket', socket, '--mode', mode, '--delay', '0']);
}

before(async () => {
  upstream = await startUpstream();
  await become('slow');
  gw = await startPipeline({
    upstreamPort: upstream.port,
    agents: [
      {
        id: 'chaos',
        'unix-socket': { path: socket },
        'timeout-ms': 1000,
        // the breaker stays out of it: each fault's own status is under test
        'circuit-breaker': { 'failure-threshold': 1000 },
        pool: { 'reconnect-interval-ms': 100, 'connections-per-agent': 1, 'connect-timeout-ms': 1000 },
      },
    ],
    filters: { closed: { agent: 'chaos', 'failure-mode': 'closed' }, open: { agent: 'chaos', 'failure-mode': 'open' } },
    routes: [
      { id: 'closed', prefix: '/closed/', filters: ['closed'] },
      { id: 'open', prefix: '/open/', filters: ['open'] },
    ],
  });
});

after(async () => {
  await gw?.close();
  await upstream?.close();
  await agent?.stop();
  tmp.cleanup();
});

/** `n` rounds of one fail-closed and one fail-open request; the statuses each route got. */
async function rounds(n: number): Promise<{ closed: number[]; open: number[] }> {
  const out = { closed: [] as number[], open: [] as number[] };
  for (let i = 0; i < n; i++) {
    out.closed.push((await send(gw.port, `/closed/${i}`)).status);
    out.open.push((await send(gw.port, `/open/${i}`)).status);
  }
  return out;
}

const distinct = (xs: number[]) => [...new Set(xs)].sort();
const healthy = async () => (await send(gw.port, '/closed/probe')).status === 200;

test('agent crashes mid-request, hangs, answers garbage, comes back: fail-closed 503/504, fail-open forwards, then recovery', async () => {
  await waitUntil(healthy, 'the healthy agent allows requests', 20_000);
  assert.deepEqual(await rounds(3), { closed: [200, 200, 200], open: [200, 200, 200] });

  // crash: the agent exits on the first event it sees (mid-request); afterwards nothing listens
  await become('crash');
  const crashing: number[] = [];
  await waitUntil(
    async () => {
      if (agent!.proc.exitCode !== null) return true;
      crashing.push((await send(gw.port, '/closed/crash')).status);
      return false;
    },
    'a request reaches the crash agent and it exits',
    20_000,
  );
  // the request it died on, and any sent before the pool had connected to it
  assert.ok(crashing.length >= 1);
  assert.deepEqual(distinct(crashing), [503], 'the request in flight when the agent died: agent unavailable');
  const crashed = await rounds(4);
  assert.deepEqual(distinct(crashed.closed), [503], 'fail-closed: agent unavailable');
  assert.deepEqual(distinct(crashed.open), [200], 'fail-open forwards');

  // hang: connected, never answers; fail-closed times out (503 only until the pool has reconnected)
  await become('hang');
  await waitUntil(async () => (await send(gw.port, '/closed/hang')).status === 504, 'a hanging agent times out', 20_000);
  const hung = await rounds(3);
  assert.deepEqual(distinct(hung.closed), [504], 'fail-closed: gateway timeout');
  assert.deepEqual(distinct(hung.open), [200], 'fail-open forwards');

  // garbage: every answer is a protocol error
  await become('garbage');
  const garbled = await rounds(4);
  assert.deepEqual(distinct(garbled.closed), [503], 'fail-closed: agent unavailable');
  assert.deepEqual(distinct(garbled.open), [200], 'fail-open forwards');

  // back: the pool reconnects on its own and requests pass again
  await become('slow');
  await waitUntil(healthy, 'requests pass once a healthy agent is back', 20_000);
  assert.deepEqual(await rounds(3), { closed: [200, 200, 200], open: [200, 200, 200] });
});
