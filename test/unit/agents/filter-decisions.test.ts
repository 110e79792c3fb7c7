import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AgentCallError } from '../../../src/agent-protocol/client.ts';
import { parseAgentReply, plainAllowReply } from '../../../src/agent-protocol/messages.ts';
import { decisionResponse, failureResponse, isBareAllow, protocolLabel } from '../../../plugins/agents/filter.ts';
import { applyAgentHeaderOps as applyHeaderOps } from '../../../plugins/agents/header-ops.ts';
import { reserveCorrelationId, reservedCorrelationIds } from '../../../plugins/agents/correlation.ts';
import type { HeaderMap } from '../../../src/pipeline/types.ts';

test('header ops: set replaces, add appends, remove deletes; framing headers are untouchable', () => {
  const h: HeaderMap = { 'x-a': '1', 'x-b': ['1', '2'], 'content-length': '10', 'transfer-encoding': 'chunked' };
  applyHeaderOps(h, [
    { op: 'set', name: 'x-a', value: 'new' },
    { op: 'add', name: 'x-b', value: '3' },
    { op: 'add', name: 'x-c', value: 'c' },
    { op: 'add', name: 'x-c', value: 'd' },
    { op: 'remove', name: 'x-gone' },
    { op: 'set', name: 'content-length', value: '999' },
    { op: 'remove', name: 'transfer-encoding' },
    { op: 'set', name: 'connection', value: 'close' },
  ]);
  assert.deepEqual(h, { 'x-a': 'new', 'x-b': ['1', '2', '3'], 'x-c': ['c', 'd'], 'content-length': '10', 'transfer-encoding': 'chunked' });
});

test('decisions become local responses', () => {
  const reply = (decision: unknown) => parseAgentReply({ decision, audit: { custom: { correlation_id: 'c' } } });
  assert.equal(decisionResponse(reply('allow')), undefined);
  assert.deepEqual(decisionResponse(reply({ block: { status: 403 } })), {
    status: 403,
    headers: { 'content-type': 'text/plain; charset=utf-8' },
    body: 'Blocked by agent',
    blockReason: 'agent_blocked',
  });
  const withHeaders = decisionResponse(reply({ block: { status: 401, body: 'who?', headers: { 'WWW-Authenticate': 'Basic', 'Content-Type': 'text/html' } } }))!;
  assert.equal(withHeaders.status, 401);
  assert.equal(withHeaders.body, 'who?');
  assert.deepEqual(withHeaders.headers, { 'www-authenticate': 'Basic', 'content-type': 'text/plain; charset=utf-8' }, 'the body is always text/plain');
  const red = decisionResponse(reply({ redirect: { url: 'https://a.test/', status: 307 } }))!;
  assert.equal(red.status, 307);
  assert.equal(red.headers!.location, 'https://a.test/');
  assert.equal(decisionResponse(reply({ challenge: { challenge_type: 'captcha' } }))!.status, 403);
});

test('fail-closed statuses: circuit open 503, agent error 503, timeout 504', () => {
  const table: [AgentCallError['kind'], number, string][] = [
    ['circuit_open', 503, 'Service unavailable'],
    ['unavailable', 503, 'Agent unavailable'],
    ['connection_lost', 503, 'Agent unavailable'],
    ['protocol', 503, 'Agent unavailable'],
    ['timeout', 504, 'Gateway timeout'],
  ];
  for (const [kind, status, body] of table) {
    const r = failureResponse(new AgentCallError(kind, 'x'));
    assert.deepEqual([r.status, r.body], [status, body], kind);
  }
});

test('correlation ids are unique while reserved and freed after the last holder', () => {
  const base = reservedCorrelationIds();
  const a = reserveCorrelationId('req-1');
  const b = reserveCorrelationId('req-1');
  assert.equal(a.id, 'req-1');
  assert.notEqual(b.id, a.id);
  assert.ok(b.id.startsWith('req-1~'));
  a.hold();
  a.release();
  const d = reserveCorrelationId('req-1');
  assert.notEqual(d.id, 'req-1', 'still held once');
  d.release();
  a.release();
  b.release();
  const c = reserveCorrelationId('req-1');
  assert.equal(c.id, 'req-1');
  c.release();
  assert.equal(reservedCorrelationIds(), base);
});

test('a bare allow (nothing for merge to apply or record) is told apart from every reply that carries something', () => {
  const wire = (over: Record<string, unknown>) => parseAgentReply({ version: 1, decision: 'allow', audit: { custom: { correlation_id: 'c' } }, ...over });
  const cases: [string, ReturnType<typeof parseAgentReply>, boolean][] = [
    ['the SDK template', plainAllowReply('c'), true],
    ['a plain allow spelled otherwise', wire({}), true],
    ['block', wire({ decision: { block: { status: 403 } } }), false],
    ['request header op', wire({ request_headers: [{ set: { name: 'x-a', value: '1' } }] }), false],
    ['response header op', wire({ response_headers: [{ remove: { name: 'x-b' } }] }), false],
    ['tags', wire({ audit: { tags: ['t'], custom: { correlation_id: 'c' } } }), false],
    ['rule ids', wire({ audit: { rule_ids: ['942100'], custom: { correlation_id: 'c' } } }), false],
    ['request body mutation', wire({ request_body_mutation: { data: '' } }), false],
    ['response body mutation', wire({ response_body_mutation: { data: 'eA==' } }), false],
  ];
  for (const [name, reply, bare] of cases) assert.equal(isBareAllow(reply), bare, name);
});

test('protocolLabel: HTTP/<version>', () => {
  for (const v of ['1.0', '1.1', '2.0', '3', '']) assert.equal(protocolLabel(v), `HTTP/${v}`);
});
