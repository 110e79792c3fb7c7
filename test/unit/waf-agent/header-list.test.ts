// The engine's header list from a request_headers event (service.ts headerList): from the
// gateway's RequestHeadersMessage (in-process) it reads the raw headers when their names are
// already lower case; the flat list (name, value, ...) must be exactly the agent-form headers
// (`ev.headers`, what the socket agent decodes) flattened in order, whatever the raw object holds.
import { strict as assert } from 'node:assert';
import { test } from 'node:test';

import { RequestHeadersMessage, toHeaderValues, type RawHeaders } from '../../../src/agent-protocol/messages.ts';
import { declaresBody, headerList, normaliseProtocol } from '../../../src/waf/agent/service.ts';
import { sampleMetadata as meta } from '../../helpers/agent-events.ts';

/** What the service used before: the agent form, flattened (name, value, name, value, ...). */
function viaAgentForm(raw: RawHeaders): string[] {
  const out: string[] = [];
  for (const [name, values] of Object.entries(toHeaderValues(raw))) for (const v of values) out.push(name, v);
  return out;
}

const flat = (pairs: [string, string][]): string[] => pairs.flat();

const raws: [string, RawHeaders][] = [
  ['the bench GET', { host: 'shop.example.com', 'user-agent': 'Mozilla/5.0', accept: 'text/html', 'accept-language': 'en-US,en;q=0.5', 'accept-encoding': 'gzip', cookie: 'a=1; b=2' }],
  ['none', {}],
  ['a list and an undefined value', { host: 'h', 'set-cookie': ['a=1', 'b=2'], skip: undefined, empty: [], accept: '*/*' }],
  ['upper-case names (merged by the agent form)', { Host: 'h', accept: 'x', host: 'i', 'X-A': ['1'] }],
  ['an upper-case name last', { host: 'h', 'X-A': '1' }],
  ['a number value', { 'content-length': 5 }],
  ['list items that are not strings', { a: [1, true] as unknown as string[] }],
  ['integer-like names first', { b: 'x', '12': 'y', a: 'z' }],
  ['null prototype, a __proto__ header', Object.assign(Object.create(null) as RawHeaders, { host: 'h', ['__proto__']: 'p', ':path': '/' })],
  ['inherited member', Object.assign(Object.create({ inherited: 'i' }) as RawHeaders, { host: 'h' })],
  ['non-ASCII names', { 'x-é': 'a', 'x-É': 'b', 'x-ǅ': 'c', 'x-İ': 'd' }],
];

for (const [name, raw] of raws) {
  test(`headerList: ${name}`, () => {
    const want = viaAgentForm(raw);
    assert.deepEqual(headerList(new RequestHeadersMessage('c1', meta(), 'GET', '/', raw)), want, 'from the message');
    // a decoded event (the socket agent's) is its agent-form headers
    assert.deepEqual(headerList({ correlation_id: 'c1', metadata: meta(), method: 'GET', uri: '/', headers: toHeaderValues(raw) }), want, 'from a plain event');
  });
}

test('declaresBody: the closure it replaced, on every header list', () => {
  const before = (h: [string, string][]): boolean => h.some(([k, v]) => (k === 'content-length' && v !== '0') || k === 'transfer-encoding');
  const lists: [string, string][][] = [
    [],
    [['host', 'h']],
    [['content-length', '0']],
    [['content-length', '12']],
    [['content-length', '']],
    [['content-length', '00']],
    [['content-length', '0'], ['transfer-encoding', 'chunked']],
    [['transfer-encoding', '']],
    [['Content-Length', '5']],
    [['host', 'h'], ['content-length', '0'], ['content-length', '7']],
  ];
  for (const h of lists) assert.equal(declaresBody(flat(h)), before(h), JSON.stringify(h));
  for (const [, raw] of raws) {
    const list = headerList(new RequestHeadersMessage('c1', meta(), 'POST', '/', raw));
    const pairs: [string, string][] = [];
    for (let i = 0; i < list.length; i += 2) pairs.push([list[i]!, list[i + 1]!]);
    assert.equal(declaresBody(list), before(pairs), JSON.stringify(list));
  }
});

test('normaliseProtocol: the gateway\'s labels as they are, anything else as the regex path made it', () => {
  const before = (p: string): string => (/^HTTP\//i.test(p) ? p.toUpperCase() : p === 'h2' || p === 'h2c' ? 'HTTP/2.0' : p === 'h3' ? 'HTTP/3.0' : p || 'HTTP/1.1');
  for (const p of ['HTTP/1.1', 'HTTP/2.0', 'HTTP/1.0', 'HTTP/0.9', 'http/1.1', 'Http/2.0', 'HTTP/2', 'h2', 'h2c', 'h3', '', 'SPDY/3', 'HTTP/1.1 ']) {
    assert.equal(normaliseProtocol(p), before(p), p);
  }
});
