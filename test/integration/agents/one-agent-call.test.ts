// The one-agent request_headers path (issue #16 item 3, the agent hop): a route whose only agent
// wants request headers and no body gets one promise per request, settled from the reply's read
// (no call promise, no async function, no await in between), and still answers as the general
// path does: allow, block, header operations, a failure by the route's failure mode.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { createHook } from 'node:async_hooks';
import { join } from 'node:path';
import type { IncomingMessage } from 'node:http';
import { pino } from 'pino';
import { Metrics } from '../../../src/metrics/registry.ts';
import { Context } from '../../../src/server/context.ts';
import type { GenerationServices, LocalResponse, RequestFilter } from '../../../src/pipeline/types.ts';
import { createAgentFilterFactory } from '../../../plugins/agents/index.ts';
import { reservedCorrelationIds } from '../../../plugins/agents/correlation.ts';
import { spawnAgent, tempDir, type AgentProcess } from './harness.ts';

const log = pino({ level: 'silent' });
const tmp = tempDir();
let agent: AgentProcess;
let filter: RequestFilter;
let broken: RequestFilter;
let seq = 0;

before(async () => {
  const socket = join(tmp.dir, 'one.sock');
  agent = await spawnAgent('test/integration/agents/fixtures/scripted-agent.ts', ['--socket', socket, '--name', 'one']);
  const services: GenerationServices = { generation: 1, log, metrics: new Metrics({ defaultMetrics: false }), audit: () => undefined, routeFailureMode: () => 'closed' };
  const factory = createAgentFilterFactory({
    agents: [
      { id: 'one', 'unix-socket': { path: socket }, events: ['request_headers'] },
      { id: 'gone', 'unix-socket': { path: join(tmp.dir, 'nobody.sock') }, events: ['request_headers'] },
    ],
    waf: undefined,
    limits: undefined,
    routeFilters: (id) => (id === 'r' ? ['f'] : ['g']),
  });
  filter = factory('f', { type: 'agent', agent: 'one' }, services);
  broken = factory('g', { type: 'agent', agent: 'gone' }, services);
});

after(async () => {
  await (filter as unknown as { close(): Promise<void> }).close();
  await (broken as unknown as { close(): Promise<void> }).close();
  await agent.stop();
  tmp.cleanup();
});

function context(path: string, routeId = 'r'): Context {
  const raw = { headers: { host: 'local', 'x-remove-me': 'x' }, httpVersion: '1.1', httpVersionMajor: 1 } as unknown as IncomingMessage;
  return new Context(`one-${++seq}`, performance.now(), raw, 'GET', path, '', 'local', '127.0.0.1', 40000, 'http', 'http', undefined, routeId, 'backend', { host: 'local', 'x-remove-me': 'x' }, log);
}

/** onRequest of `f` for `ctx`, and the promises it created before returning. */
function countedRequest(f: RequestFilter, ctx: Context): { result: ReturnType<NonNullable<RequestFilter['onRequest']>>; promises: number } {
  let promises = 0;
  const hook = createHook({
    init(_id, type) {
      if (type === 'PROMISE') promises++;
    },
  });
  hook.enable();
  let result;
  try {
    result = f.onRequest!(ctx);
  } finally {
    hook.disable();
  }
  return { result, promises };
}

test('one agent on request headers: one promise per request, an allow forwards with nothing applied', async () => {
  // the first call opens the connection (a promise of its own): not counted
  const warm = context('/warm');
  assert.equal(await filter.onRequest!(warm), undefined);
  warm.cancel('done');
  for (let i = 0; i < 3; i++) {
    const ctx = context('/plain');
    const { result, promises } = countedRequest(filter, ctx);
    assert.equal(promises, 1, 'the request promise alone (no call promise, no async function)');
    assert.equal(await result, undefined);
    assert.equal(ctx.upstreamHeaders['x-remove-me'], 'x');
    ctx.cancel('done');
  }
  assert.equal(reservedCorrelationIds(), 0, 'every correlation id given back');
});

test('one agent on request headers: a block and header operations are applied from the reply', async () => {
  const blocked = (await filter.onRequest!(context('/x/block-headers'))) as LocalResponse | undefined;
  assert.equal(blocked?.status, 429);
  assert.equal(blocked?.body, 'slow down');
  assert.equal(blocked?.headers?.['retry-after'] ?? blocked?.headers?.['Retry-After'], '5');
  const ctx = context('/x/headers');
  assert.equal(await filter.onRequest!(ctx), undefined);
  assert.equal(ctx.upstreamHeaders['x-set'], 'one');
  assert.equal(ctx.upstreamHeaders['x-remove-me'], undefined);
  const redirected = (await filter.onRequest!(context('/x/redirect'))) as LocalResponse | undefined;
  assert.equal(redirected?.status, 301);
  ctx.cancel('done');
});

test('one agent on request headers: an unreachable agent answers by the failure mode (closed: 503)', async () => {
  const local = (await broken.onRequest!(context('/y', 'q'))) as LocalResponse | undefined;
  assert.equal(local?.status, 503);
  assert.equal(local?.blockReason, 'agent_unavailable');
});
