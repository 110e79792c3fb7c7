// Queue isolation: agent A hangs with its permits used up and callers queued; requests that only
// use agent B are not held behind them (per-agent permits, no global semaphore). Asserted on
// completion order, not on timings.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import type { AgentFilter } from '../../../plugins/agents/filter.ts';
import { eventually, send, spawnAgent, startPipeline, startUpstream, tempDir, type AgentProcess, type Pipeline } from './harness.ts';

const tmp = tempDir();
const sock = (n: string) => join(tmp.dir, `${n}.sock`);
let rogue: AgentProcess;
let upstream: Awaited<ReturnType<typeof startUpstream>>;
let gw: Pipeline;

before(async () => {
  rogue = await spawnAgent('test/integration/agents/fixtures/rogue-agent.ts', ['--serve', `hang=${sock('a')}`, '--serve', `allow=${sock('b')}`]);
  upstream = await startUpstream();
  gw = await startPipeline({
    upstreamPort: upstream.port,
    agents: [
      { id: 'a', 'unix-socket': { path: sock('a') }, 'timeout-ms': 4000, 'max-concurrent-calls': 2 },
      { id: 'b', 'unix-socket': { path: sock('b') }, 'timeout-ms': 4000, 'max-concurrent-calls': 2 },
    ],
    filters: { a: { agent: 'a', 'failure-mode': 'open' }, b: { agent: 'b', 'failure-mode': 'closed' } },
    routes: [
      { id: 'a', prefix: '/a', filters: ['a'] },
      { id: 'b', prefix: '/b', filters: ['b'] },
    ],
  });
});

after(async () => {
  await gw?.close();
  await upstream?.close();
  await rogue?.stop();
  tmp.cleanup();
});

test('a hung agent A does not delay requests that only use agent B', async () => {
  const order: string[] = [];
  const aDone = Array.from({ length: 6 }, (_, i) => send(gw.port, `/a/${i}`).then((r) => order.push(`a:${r.status}`)));
  const filterA = gw.filters.get('a') as AgentFilter;
  await eventually(() => {
    const s = filterA.agentStats().a;
    return s !== undefined && s.permitsInUse === 2 && s.queued === 4;
  }, 'agent A saturated: 2 calls in flight, 4 callers queued');
  const bDone = Array.from({ length: 20 }, (_, i) => send(gw.port, `/b/${i}`).then((r) => order.push(`b:${r.status}`)));
  await Promise.all(bDone);
  assert.deepEqual(order, Array(20).fill('b:200'), 'every B request finished before any A request');
  assert.equal(filterA.agentStats().a!.queued, 4, 'A callers are still waiting for a permit');
  await Promise.all(aDone);
  // fail-open: A's callers are forwarded once their (queue + call) time runs out
  assert.deepEqual(order.slice(20), Array(6).fill('a:200'));
});
