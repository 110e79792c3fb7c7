// Agent replies to WebSocketFrame events: websocket_decision parsing (wire -> validated form)
// and the verdict the session applies (allow / drop / close, block -> 1008, failures -> 1011).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ProtocolError, parseAgentReply } from '../../../src/agent-protocol/messages.ts';
import { AgentCallError } from '../../../src/agent-protocol/client.ts';
import { failureVerdict, frameVerdict } from '../../../plugins/agents/websocket.ts';
import { closeWebSocket, dropFrame, allow, block } from '../../../src/agent-sdk/index.ts';

const reply = (extra: Record<string, unknown>) => parseAgentReply({ version: 1, decision: 'allow', ...extra });

const CASES: { name: string; wire: Record<string, unknown>; verdict: unknown }[] = [
  { name: 'no websocket_decision', wire: {}, verdict: { action: 'allow' } },
  { name: 'null websocket_decision', wire: { websocket_decision: null }, verdict: { action: 'allow' } },
  { name: '"allow"', wire: { websocket_decision: 'allow' }, verdict: { action: 'allow' } },
  { name: '{"allow":{}}', wire: { websocket_decision: { allow: {} } }, verdict: { action: 'allow' } },
  { name: '"drop"', wire: { websocket_decision: 'drop' }, verdict: { action: 'drop' } },
  { name: 'close with code and reason', wire: { websocket_decision: { close: { code: 4000, reason: 'x' } } }, verdict: { action: 'close', code: 4000, reason: 'x' } },
  { name: 'close with a code that must not be sent (1005) -> 1008', wire: { websocket_decision: { close: { code: 1005, reason: '' } } }, verdict: { action: 'close', code: 1008, reason: '' } },
  { name: 'close without fields -> 1008', wire: { websocket_decision: { close: {} } }, verdict: { action: 'close', code: 1008, reason: '' } },
  { name: 'block decision without websocket_decision -> 1008 with its body', wire: { decision: { block: { status: 403, body: 'nope' } } }, verdict: { action: 'close', code: 1008, reason: 'nope' } },
  { name: 'block without body', wire: { decision: { block: { status: 403 } } }, verdict: { action: 'close', code: 1008, reason: 'Blocked by agent' } },
  { name: 'websocket_decision wins over the decision', wire: { decision: { block: { status: 403 } }, websocket_decision: 'drop' }, verdict: { action: 'drop' } },
];

for (const c of CASES) {
  test(`verdict: ${c.name}`, () => {
    assert.deepEqual(frameVerdict(reply(c.wire)), c.verdict);
  });
}

test('malformed websocket_decision is a protocol error', () => {
  for (const bad of ['close', 'deny', 42, { reject: {} }]) {
    assert.throws(() => reply({ websocket_decision: bad }), ProtocolError, JSON.stringify(bad));
  }
});

test('fail-closed failures close with 1011', () => {
  assert.deepEqual(failureVerdict(new AgentCallError('timeout', 't')), { action: 'close', code: 1011, reason: 'Agent timeout' });
  for (const kind of ['unavailable', 'circuit_open', 'connection_lost', 'protocol'] as const) {
    assert.deepEqual(failureVerdict(new AgentCallError(kind, 'x')), { action: 'close', code: 1011, reason: 'Agent unavailable' });
  }
});

test('SDK builders produce the wire form the gateway parses back', () => {
  const round = (d: ReturnType<typeof allow>) => frameVerdict(parseAgentReply(JSON.parse(JSON.stringify(d.toWire('c'))) as unknown));
  assert.deepEqual(round(allow()), { action: 'allow' });
  assert.deepEqual(round(dropFrame()), { action: 'drop' });
  assert.deepEqual(round(closeWebSocket(4001, 'bye')), { action: 'close', code: 4001, reason: 'bye' });
  assert.deepEqual(round(block(403, 'b')), { action: 'close', code: 1008, reason: 'b' });
  assert.equal(allow().toWire('c').websocket_decision, undefined, 'plain decisions carry no websocket_decision');
});
