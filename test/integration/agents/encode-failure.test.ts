// An event whose payload cannot be encoded fails that call alone: the connection keeps no
// pending entry for it (inFlight back to 0, the correlation id free for the next call) and stays
// usable. Before the fix the entry was registered before encoding, so a throw left it behind.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { AgentCallError, AgentConnection } from '../../../src/agent-protocol/connection.ts';
import { MessageType } from '../../../src/agent-protocol/frames.ts';
import { allow, runAgent, type RunningAgent } from '../../../src/agent-sdk/index.ts';
import { tempDir } from './harness.ts';

const tmp = tempDir();
let agent: RunningAgent;
let conn: AgentConnection;
const seen: string[] = [];

before(async () => {
  agent = await runAgent({
    socketPath: join(tmp.dir, 'enc.sock'),
    name: 'enc',
    log: () => undefined,
    onRequestHeaders(event: { correlation_id: string }) {
      seen.push(event.correlation_id);
      return allow();
    },
  });
  conn = new AgentConnection({
    socketPath: agent.socketPath,
    connectTimeoutMs: 2000,
    handshake: { supported_versions: [2], proxy_id: 't', proxy_version: '0', config: null, supported_encodings: ['json'] },
  });
  await conn.open();
});

after(async () => {
  conn.close();
  await agent.close();
  tmp.cleanup();
});

test('an unencodable event fails with an agent error and leaves no pending entry; the id and the connection stay usable', async () => {
  const cyclic: Record<string, unknown> = { correlation_id: 'c-1' };
  cyclic.self = cyclic;
  for (const bad of [{ correlation_id: 'c-1', n: 1n }, cyclic]) {
    await assert.rejects(conn.request(MessageType.RequestHeaders, 'c-1', bad), (err: unknown) => err instanceof AgentCallError && err.kind === 'unavailable');
    assert.equal(conn.inFlight, 0, 'no pending entry left behind');
  }
  const reply = await conn.request(MessageType.RequestHeaders, 'c-1', { correlation_id: 'c-1' });
  assert.equal(reply.correlationId, 'c-1');
  assert.equal(reply.decision.kind, 'allow');
  assert.equal(conn.inFlight, 0);
  assert.ok(conn.alive);
  assert.deepEqual(seen, ['c-1'], 'the agent only ever saw the encodable event');
});
