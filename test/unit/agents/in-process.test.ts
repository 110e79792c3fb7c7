// The in-process transport's reply (plugins/agents/in-process.ts): whatever way the handler
// answers (synchronously, with a promise, by throwing, with a reply that does not validate), the
// call settles as the socket client would: the reply parseAgentReply gives for the decision's
// wire form (a plain allow included, which is answered without it), and a rejection, never a
// synchronous throw, for a reply that does not validate.
import { strict as assert } from 'node:assert';
import { test } from 'node:test';

import { InProcessAgent } from '../../../plugins/agents/in-process.ts';
import { AgentCallError, CancelScope } from '../../../src/agent-protocol/client.ts';
import { MessageType } from '../../../src/agent-protocol/frames.ts';
import { CancelReason, parseAgentReply, RequestHeadersMessage } from '../../../src/agent-protocol/messages.ts';
import { allow, block, type AgentHandlers, type Decision } from '../../../src/agent-sdk/index.ts';
import { sampleMetadata as meta } from '../../helpers/agent-events.ts';

/** An in-process agent whose program is `handlers` (what start() sets once the program is built). */
function agentWith(handlers: AgentHandlers, logs: string[] = []): InProcessAgent {
  const agent = new InProcessAgent('t', 'sentinel-waf', {}, new Set(['request_headers']), (m) => logs.push(m));
  (agent as unknown as { handlers: AgentHandlers }).handlers = handlers;
  return agent;
}

const event = (): RequestHeadersMessage => new RequestHeadersMessage('c1', meta(), 'GET', '/a?b=1', { host: 'h', accept: '*/*' });
const opts = { timeoutMs: 1000 };
const wire = (d: Decision) => parseAgentReply(d.toWire('c1'));

const decisions: [string, () => Decision][] = [
  ['a plain allow', () => allow()],
  ['an allow with a header and tags', () => allow().addRequestHeader('X-WAF-Score', '3').tag('waf-detected').ruleId('920350')],
  ['a block', () => block(403, 'Forbidden', { 'X-WAF-Rule': '942100' }).reasonCode('WAF_BLOCKED')],
  ['needs more', () => allow().needsMore()],
];

for (const [name, make] of decisions) {
  test(`in-process reply, ${name}: the socket client's reply, from a synchronous and an async handler`, async () => {
    const sync = agentWith({ onRequestHeaders: () => make() });
    assert.deepEqual(await sync.call(MessageType.RequestHeaders, 'c1', event(), opts), wire(make()));
    assert.equal(sync.pendingReplies, 0);
    const later = agentWith({ onRequestHeaders: async () => make() });
    assert.deepEqual(await later.call(MessageType.RequestHeaders, 'c1', event(), opts), wire(make()));
    assert.equal(later.pendingReplies, 0);
  });
}

test('in-process: no handler, or a handler answering nothing, is a plain allow', async () => {
  assert.deepEqual(await agentWith({}).call(MessageType.RequestHeaders, 'c1', event(), opts), wire(allow()));
  assert.deepEqual(await agentWith({ onRequestHeaders: () => undefined }).call(MessageType.RequestHeaders, 'c1', event(), opts), wire(allow()));
});

test('in-process: the handler gets the event with its agent-form headers', async () => {
  let seen: unknown;
  await agentWith({ onRequestHeaders: (ev) => void (seen = ev.headers) }).call(MessageType.RequestHeaders, 'c1', event(), opts);
  assert.deepEqual(seen, { host: ['h'], accept: ['*/*'] });
});

test('in-process: a throwing or rejecting handler is the failure decision, logged', async () => {
  const logs: string[] = [];
  const throws = agentWith({ onRequestHeaders: () => { throw new Error('boom'); } }, logs);
  assert.deepEqual(await throws.call(MessageType.RequestHeaders, 'c1', event(), opts), wire(block(500, 'Agent error')));
  const rejects = agentWith({ onRequestHeaders: () => Promise.reject(new Error('late boom')), onHandlerError: 'allow' }, logs);
  assert.deepEqual(await rejects.call(MessageType.RequestHeaders, 'c1', event(), opts), wire(allow()));
  assert.equal(logs.length, 2);
  assert.match(logs[0]!, /boom/);
  assert.equal(throws.pendingReplies + rejects.pendingReplies, 0);
});

test('in-process: a reply that does not validate rejects the call (no synchronous throw)', async () => {
  const bad = () => allow().addRequestHeader('bad name', 'x');
  for (const handlers of [{ onRequestHeaders: bad }, { onRequestHeaders: async () => bad() }] as AgentHandlers[]) {
    const agent = agentWith(handlers);
    let p: Promise<unknown> | undefined;
    assert.doesNotThrow(() => (p = agent.call(MessageType.RequestHeaders, 'c1', event(), opts)));
    await assert.rejects(p!, /header/i);
    assert.equal(agent.pendingReplies, 0);
  }
});

// Batching (docs/waf.md "The twentieth session: the in-process path"): the program runs for the
// calls of one event-loop turn together, after the turn, not inside call().
test('in-process: calls of one turn run together after it, in order, before their continuations', async () => {
  const log: string[] = [];
  const agent = agentWith({ onRequestHeaders: (_ev, ctx) => void log.push(`run ${ctx.correlationId}`) });
  const ev = event();
  const first = agent.call(MessageType.RequestHeaders, 'c1', ev, opts).then(() => log.push('reply c1'));
  const second = agent.call(MessageType.RequestHeaders, 'c2', ev, opts).then(() => log.push('reply c2'));
  assert.deepEqual(log, [], 'the program does not run inside call()');
  assert.equal(agent.pendingReplies, 2);
  assert.deepEqual(agent.load, { inUse: 0, queued: 2 });
  await Promise.all([first, second]);
  assert.deepEqual(log, ['run c1', 'run c2', 'reply c1', 'reply c2']);
  assert.equal(agent.pendingReplies, 0);
});

test('in-process: a call cancelled, or an agent closed, before the batch runs is not run', async () => {
  let runs = 0;
  const agent = agentWith({ onRequestHeaders: () => void runs++ });
  const scope = new CancelScope();
  const cancelled = agent.call(MessageType.RequestHeaders, 'c1', event(), { ...opts, cancel: scope });
  const kept = agent.call(MessageType.RequestHeaders, 'c2', event(), opts);
  scope.cancel(CancelReason.ClientDisconnect);
  await assert.rejects(cancelled, (e: unknown) => e instanceof AgentCallError && e.kind === 'cancelled');
  assert.deepEqual(await kept, parseAgentReply(allow().toWire('c2')));
  assert.equal(runs, 1);
  const closing = agentWith({ onRequestHeaders: () => void runs++ });
  const late = closing.call(MessageType.RequestHeaders, 'c3', event(), opts);
  await closing.close();
  await assert.rejects(late, (e: unknown) => e instanceof AgentCallError && e.kind === 'unavailable');
  assert.equal(runs, 1);
  assert.equal(agent.pendingReplies + closing.pendingReplies, 0);
});

test('in-process: a call that timed out waiting for the build is not run once the build ends (session 24)', async () => {
  let runs = 0;
  const agent = new InProcessAgent('t', 'sentinel-waf', {}, new Set(['request_headers']));
  // a build that ends when the test says so
  let built!: () => void;
  const internals = agent as unknown as { ready: Promise<void>; handlers: AgentHandlers | undefined };
  internals.ready = new Promise<void>((r) => (built = r));
  const call = agent.call(MessageType.RequestHeaders, 'c1', event(), { timeoutMs: 5 });
  await assert.rejects(call, (err: unknown) => err instanceof AgentCallError && /not ready after 5 ms/.test(err.message));
  internals.handlers = { onRequestHeaders: () => ((runs += 1), allow()) };
  built();
  await new Promise((r) => setImmediate(r));
  await new Promise((r) => setImmediate(r));
  assert.equal(runs, 0, 'the timed-out call was not run after its request had been answered');
  // a call made now runs
  await agent.call(MessageType.RequestHeaders, 'c2', event(), opts);
  assert.equal(runs, 1);
});
