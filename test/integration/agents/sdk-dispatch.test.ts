// The SDK answers a handler that returns synchronously at once (no promise, no inFlight entry)
// and one that returns a promise when it settles; both ways a throw or a rejection becomes the
// onHandlerError answer, a cancelled async event gets no reply, and a plain allow still leaves as
// the pre-serialised template the gateway recognises (its bytes parse to the same reply).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { AgentCallError, AgentConnection } from '../../../src/agent-protocol/connection.ts';
import { MessageType } from '../../../src/agent-protocol/frames.ts';
import { CancelReason } from '../../../src/agent-protocol/messages.ts';
import { allow, block, runAgent, type RunningAgent } from '../../../src/agent-sdk/index.ts';
import { tempDir } from './harness.ts';
import { until } from '../../helpers/until.ts';

const tmp = tempDir();
const agents: RunningAgent[] = [];
const conns: AgentConnection[] = [];
/** correlation ids whose async handler finished after a cancel */
const finishedAfterCancel: string[] = [];
const startedCancellable: string[] = [];

async function connect(onHandlerError: 'block' | 'allow', name: string): Promise<AgentConnection> {
  const agent = await runAgent({
    socketPath: join(tmp.dir, `${name}.sock`),
    name,
    log: () => undefined,
    onHandlerError,
    onRequestHeaders(event: { correlation_id: string; uri: string }, ctx) {
      const how = event.uri.slice(1);
      if (how === 'sync-allow') return allow();
      if (how === 'sync-none') return undefined;
      if (how === 'sync-block') return block(451, 'sync');
      if (how === 'sync-header') return allow().setRequestHeader('x-sync', '1').tag('t');
      if (how === 'sync-throw') throw new Error('boom');
      if (how === 'async-throw') return Promise.reject(new Error('later boom'));
      if (how === 'async-block') return new Promise((r) => setTimeout(() => r(block(403, 'async')), 5));
      if (how === 'async-cancelled') {
        // ends when its signal aborts (or, if it never does, after 5 s): a 100 ms timer here lost
        // the race to the cancel when the process stalled
        startedCancellable.push(event.correlation_id);
        return new Promise((r) => {
          const done = () => {
            clearTimeout(bound);
            if (ctx.signal.aborted) finishedAfterCancel.push(event.correlation_id);
            r(allow());
          };
          const bound = setTimeout(done, 5000);
          ctx.signal.addEventListener('abort', done, { once: true });
        });
      }
      return Promise.resolve(allow());
    },
  });
  agents.push(agent);
  const conn = new AgentConnection({
    socketPath: agent.socketPath,
    connectTimeoutMs: 2000,
    handshake: { supported_versions: [2], proxy_id: 't', proxy_version: '0', config: null, supported_encodings: ['json'] },
  });
  await conn.open();
  conns.push(conn);
  return conn;
}

let closed: AgentConnection;
let open: AgentConnection;

before(async () => {
  closed = await connect('block', 'closed');
  open = await connect('allow', 'open');
});

after(async () => {
  for (const c of conns) c.close();
  for (const a of agents) await a.close();
  tmp.cleanup();
});

const ask = (conn: AgentConnection, how: string, cid = how) => conn.request(MessageType.RequestHeaders, cid, { correlation_id: cid, uri: `/${how}`, headers: {} });

test('synchronous and asynchronous handlers: decisions, ops and errors arrive as answered', async () => {
  const [syncAllow, syncNone, syncBlock, syncHeader, asyncAllow, asyncBlock] = await Promise.all(
    ['sync-allow', 'sync-none', 'sync-block', 'sync-header', 'async-allow', 'async-block'].map((h) => ask(closed, h)),
  );
  for (const r of [syncAllow, syncNone, asyncAllow]) assert.equal(r!.decision.kind, 'allow');
  assert.equal(syncAllow!.correlationId, 'sync-allow');
  assert.deepEqual(syncBlock!.decision, { kind: 'block', status: 451, body: 'sync', headers: {} });
  assert.deepEqual(syncHeader!.requestHeaderOps, [{ op: 'set', name: 'x-sync', value: '1' }]);
  assert.deepEqual(syncHeader!.tags, ['t']);
  assert.equal(asyncBlock!.decision.kind, 'block');
  // a handler that throws, at once or later: block 500 with onHandlerError 'block', allow with 'allow'
  for (const how of ['sync-throw', 'async-throw']) {
    const r = await ask(closed, how);
    assert.deepEqual(r.decision, { kind: 'block', status: 500, body: 'Agent error', headers: {} }, how);
    assert.equal((await ask(open, how)).decision.kind, 'allow', how);
  }
  assert.equal(closed.inFlight, 0);
});

test('a cancelled asynchronous event gets no reply; the connection keeps working', async () => {
  const pending = ask(closed, 'async-cancelled', 'gone-1');
  await until('the handler to start', () => startedCancellable.includes('gone-1'));
  // the proxy side forgets the call and tells the agent (as the client does on a timeout)
  closed.cancel('gone-1', CancelReason.Timeout);
  await until('the handler to end', () => finishedAfterCancel.length > 0);
  assert.deepEqual(finishedAfterCancel, ['gone-1'], 'the handler saw its signal aborted');
  assert.equal(closed.inFlight, 0);
  // the cancelled request's promise never settles (its pending entry is gone); a new call works.
  // A negative guard by order, not by time: a reply the agent sent when the handler ended would
  // come before the next call's reply on this one connection, so once that reply is in, it is seen.
  let settled = 'open';
  pending.then(
    () => (settled = 'settled'),
    (e: AgentCallError) => (settled = e.kind),
  );
  assert.equal((await ask(closed, 'sync-allow', 'after-cancel')).decision.kind, 'allow');
  assert.equal(settled, 'open');
});
