import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MAX_REPLY_HEADER_BYTES, MAX_REPLY_HEADERS, ProtocolError, parseAgentReply, toHeaderValues } from '../../../src/agent-protocol/messages.ts';

const cid = (extra: Record<string, unknown> = {}) => ({ audit: { custom: { correlation_id: 'c1' } }, ...extra });

test('decision forms', () => {
  const cases: [unknown, unknown][] = [
    ['allow', { kind: 'allow' }],
    [{ allow: {} }, { kind: 'allow' }],
    [{ block: { status: 401, body: 'no', headers: { 'WWW-Authenticate': 'Bearer' } } }, { kind: 'block', status: 401, body: 'no', headers: { 'www-authenticate': 'Bearer' } }],
    [{ block: { status: 403 } }, { kind: 'block', status: 403, body: null, headers: {} }],
    [{ block: { status: 99 } }, { kind: 'block', status: 403, body: null, headers: {} }],
    [{ redirect: { url: 'https://x.test/login' } }, { kind: 'redirect', url: 'https://x.test/login', status: 302 }],
    [{ redirect: { url: '/a', status: 301 } }, { kind: 'redirect', url: '/a', status: 301 }],
    [{ redirect: { url: '/a', status: 200 } }, { kind: 'redirect', url: '/a', status: 302 }],
    [{ challenge: { challenge_type: 'captcha', params: { site: 'k' } } }, { kind: 'challenge', challengeType: 'captcha', params: { site: 'k' } }],
  ];
  for (const [wire, expected] of cases) assert.deepEqual(parseAgentReply(cid({ decision: wire })).decision, expected, JSON.stringify(wire));
});

test('correlation id comes from audit.custom.correlation_id', () => {
  assert.equal(parseAgentReply(cid({ decision: 'allow' })).correlationId, 'c1');
  assert.equal(parseAgentReply({ decision: 'allow' }).correlationId, undefined);
});

test('header ops are validated and lower-cased', () => {
  const r = parseAgentReply(
    cid({
      decision: 'allow',
      request_headers: [{ set: { name: 'X-A', value: '1' } }, { add: { name: 'x-b', value: '2' } }, { remove: { name: 'Cookie' } }],
      response_headers: [{ set: { name: 'X-R', value: 'v' } }],
    }),
  );
  assert.deepEqual(r.requestHeaderOps, [
    { op: 'set', name: 'x-a', value: '1' },
    { op: 'add', name: 'x-b', value: '2' },
    { op: 'remove', name: 'cookie' },
  ]);
  assert.deepEqual(r.responseHeaderOps, [{ op: 'set', name: 'x-r', value: 'v' }]);
});

test('malformed replies are ProtocolErrors', () => {
  const bad: unknown[] = [
    null,
    'allow',
    [1],
    cid({ decision: 'deny' }),
    cid({ decision: { explode: {} } }),
    cid({ decision: { redirect: { url: '' } } }),
    cid({ decision: { redirect: { url: 'https://a\r\nSet-Cookie: x=1' } } }),
    cid({ decision: 'allow', request_headers: [{ set: { name: 'bad name', value: 'x' } }] }),
    cid({ decision: 'allow', request_headers: [{ set: { name: 'x', value: 'a\nb' } }] }),
    cid({ decision: 'allow', request_headers: [{ rename: { name: 'x' } }] }),
    cid({ decision: 'allow', request_headers: 'x' }),
    cid({ decision: { block: { status: 403, headers: { 'X-A': 'a\r\nb' } } } }),
    cid({ decision: 'allow', audit: { tags: [1], custom: { correlation_id: 'c1' } } }),
    cid({ decision: 'allow', request_body_mutation: { data: 5 } }),
    // values Node refuses to write (outside Latin-1): a protocol error, not a 500 from writeHead
    cid({ decision: 'allow', response_headers: [{ set: { name: 'x', value: 'a\u0100' } }] }),
    cid({ decision: { block: { status: 403, headers: { 'X-A': '\u2028' } } } }),
    cid({ decision: { redirect: { url: 'https://a.test/\u00e9\u0100' } } }),
    cid({ decision: { challenge: { challenge_type: 'x\r\ny' } } }),
  ];
  for (const b of bad) assert.throws(() => parseAgentReply(b), ProtocolError, JSON.stringify(b));
});

test('header lists of a reply are bounded: count and bytes, at the limit accepted, beyond a ProtocolError', () => {
  const names = (n: number) => Array.from({ length: n }, (_, i) => `x-h${i}`);
  const block = (headers: Record<string, string>) => cid({ decision: { block: { status: 403, headers } } });
  const ops = (list: { set: { name: string; value: string } }[]) => cid({ decision: 'allow', request_headers: list, response_headers: list });
  const atCount = names(MAX_REPLY_HEADERS);
  const overCount = names(MAX_REPLY_HEADERS + 1);
  assert.equal(Object.keys((parseAgentReply(block(Object.fromEntries(atCount.map((n) => [n, 'v'])))).decision as { headers: object }).headers).length, MAX_REPLY_HEADERS);
  assert.equal(parseAgentReply(ops(atCount.map((name) => ({ set: { name, value: 'v' } })))).requestHeaderOps.length, MAX_REPLY_HEADERS);
  assert.throws(() => parseAgentReply(block(Object.fromEntries(overCount.map((n) => [n, 'v'])))), /block headers: more than 100 headers/);
  assert.throws(() => parseAgentReply(ops(overCount.map((name) => ({ set: { name, value: 'v' } })))), /request_headers: more than 100 headers/);
  // bytes: names and values together; exactly the budget passes, one byte more does not
  const fill = (total: number) => 'v'.repeat(total - 'x-big'.length);
  assert.doesNotThrow(() => parseAgentReply(block({ 'x-big': fill(MAX_REPLY_HEADER_BYTES) })));
  assert.throws(() => parseAgentReply(block({ 'x-big': fill(MAX_REPLY_HEADER_BYTES + 1) })), ProtocolError);
  assert.throws(() => parseAgentReply(cid({ decision: 'allow', response_headers: [{ set: { name: 'x-big', value: fill(MAX_REPLY_HEADER_BYTES + 1) } }] })), /response_headers: more than/);
  assert.throws(() => parseAgentReply(cid({ decision: 'allow', request_headers: [{ remove: { name: 'x'.repeat(MAX_REPLY_HEADER_BYTES + 1) } }] })), ProtocolError);
});

test('body mutations: null passes through, "" drops, base64 replaces', () => {
  assert.equal(parseAgentReply(cid({ decision: 'allow', request_body_mutation: { data: null, chunk_index: 0 } })).requestBodyMutation, undefined);
  assert.equal(parseAgentReply(cid({ decision: 'allow', request_body_mutation: { data: '', chunk_index: 0 } })).requestBodyMutation, 'drop');
  const m = parseAgentReply(cid({ decision: 'allow', request_body_mutation: { data: Buffer.from('hi').toString('base64'), chunk_index: 0 } })).requestBodyMutation;
  assert.ok(Buffer.isBuffer(m));
  assert.equal(m.toString(), 'hi');
});

test('audit facts', () => {
  const r = parseAgentReply({ decision: 'allow', audit: { tags: ['a'], rule_ids: ['942100'], reason_codes: ['SQLI'], confidence: 0.9, custom: { correlation_id: 'z' } }, needs_more: true });
  assert.deepEqual([r.tags, r.ruleIds, r.reasonCodes, r.confidence, r.needsMore], [['a'], ['942100'], ['SQLI'], 0.9, true]);
});

test('toHeaderValues: a header named __proto__ is an own member, not the prototype', () => {
  const raw = Object.assign(Object.create(null) as Record<string, string>, { host: 'h' });
  Object.defineProperty(raw, '__proto__', { value: 'x', enumerable: true });
  raw['__PROTO__'] = 'y';
  assert.equal(JSON.stringify(toHeaderValues(raw)), '{"host":["h"],"__proto__":["x","y"]}');
});

test('toHeaderValues lower-cases names and always gives lists', () => {
  assert.deepEqual(toHeaderValues({ Host: 'a', 'set-cookie': ['x', 'y'], 'Content-Length': 5, skip: undefined }), { host: ['a'], 'set-cookie': ['x', 'y'], 'content-length': ['5'] });
});
