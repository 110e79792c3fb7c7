// The SDK's reader of the request_headers event (src/agent-protocol/event-decoder.ts) must give
// exactly what JSON.parse gives (members, their order, values, prototypes) or step aside: every
// case below is compared with JSON.parse, including single-byte mutations and every prefix.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeRequestHeadersJson as decodePayload, parseRequestHeadersPayload } from '../../../src/agent-protocol/event-decoder.ts';
import { RequestHeadersMessage, encodeRequestHeadersJson, type RawHeaders, type RequestMetadata } from '../../../src/agent-protocol/messages.ts';
import { sampleMetadata as meta } from '../../helpers/agent-events.ts';


const TRACE = '0af7651916cd43dd8448eb211c80319c';
const wire = (m: RequestMetadata, headers: RawHeaders, cid = 'c1', method = 'GET', uri = '/agent'): string =>
  encodeRequestHeadersJson(new RequestHeadersMessage(cid, m, method, uri, headers));

/** JSON.parse's answer, undefined where it throws (what the SDK had before). */
function parsed(s: string): unknown {
  try {
    return JSON.parse(s);
  } catch {
    return undefined;
  }
}

/** The same value, the same member order (JSON.stringify walks members in order) and the same prototypes. */
function assertSame(actual: unknown, expected: unknown, what: string): void {
  assert.deepStrictEqual(actual, expected, what);
  assert.equal(JSON.stringify(actual), JSON.stringify(expected), what);
}

// Inside a larger chunk, as the frame decoder hands a payload over, with bytes after it that would
// continue the JSON if the reader looked past its end.
const PAD = Buffer.from('"}],0null');
const inChunk = (s: string): [Buffer, number, number] => {
  const buf = Buffer.concat([Buffer.from('x{'), Buffer.from(s, 'utf8'), PAD]);
  return [buf, 2, buf.length - PAD.length];
};
const decodeRequestHeadersJson = (s: string): unknown => decodePayload(...inChunk(s));
const payload = (s: string): unknown => parseRequestHeadersPayload(...inChunk(s));

// Events the gateway writes (its own encoder): read by hand.
const layout: [string, string][] = [
  ['usual', wire(meta(), { host: '127.0.0.1:8080', connection: 'keep-alive' })],
  ['browser headers', wire(meta(), { host: 'h', 'user-agent': 'Mozilla/5.0 (X11)', accept: 'text/html,*/*;q=0.8', 'accept-language': 'en', cookie: 'a=1; b=2' })],
  ['no headers', wire(meta(), {})],
  ['several values and an empty list', wire(meta(), { 'set-cookie': ['a=1', 'b=2'], empty: [], host: 'h' })],
  ['integer-like names', wire(meta(), { b: 'x', '12': 'y', a: 'z' })],
  ['names of Object.prototype members', wire(meta(), { constructor: 'c', tostring: 't', hasownproperty: 'h' })],
  ['tls and traceparent', wire(meta({ tls_version: 'TLSv1.3', tls_cipher: 'TLS_AES_128_GCM_SHA256', traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01' }), { host: 'h' })],
  ['nulls', wire(meta({ server_name: null, route_id: null, upstream_id: null }), { host: 'h' })],
  ['port 0', wire(meta({ client_port: 0 }), { host: 'h' })],
  ['empty strings', wire(meta({ client_ip: '', server_name: '' }), { '': '' }, '', '', '')],
  ['a long id', wire(meta({ correlation_id: 'x'.repeat(300), request_id: 'y'.repeat(300) }), { host: 'h' }, 'x'.repeat(300))],
  // the id three times, as the gateway writes it (the reader takes the second and third by comparing them with the first)
  ['a trace id three times', wire(meta({ correlation_id: TRACE, request_id: TRACE }), { host: 'h' }, TRACE)],
  ['a suffixed correlation id, the request id without', wire(meta({ correlation_id: `${TRACE}#2`, request_id: TRACE }), { host: 'h' }, `${TRACE}#2`)],
  ['a request id of the same length, one byte apart', wire(meta({ correlation_id: TRACE, request_id: `${TRACE.slice(0, 31)}0` }), { host: 'h' }, TRACE)],
  ['a request id one byte apart in its first word', wire(meta({ correlation_id: TRACE, request_id: `1${TRACE.slice(1)}` }), { host: 'h' }, TRACE)],
  ['a request id longer than the id', wire(meta({ correlation_id: TRACE, request_id: `${TRACE}x` }), { host: 'h' }, TRACE)],
  ['ids of 5 and 4 characters', wire(meta({ correlation_id: 'abcde', request_id: 'abcd' }), { host: 'h' }, 'abcde')],
];

test('the gateway layout is read by hand, and the object is the one JSON.parse builds', () => {
  for (const [what, s] of layout) {
    const event = decodeRequestHeadersJson(s);
    assert.notEqual(event, undefined, `${what}: read by hand`);
    assertSame(event, JSON.parse(s), what);
    assertSame(payload(s), JSON.parse(s), `${what} (payload)`);
  }
});

test('every prefix of an event is refused (and is not JSON either)', () => {
  const s = layout[3]![1];
  for (let n = 0; n < s.length; n++) {
    assert.equal(decodeRequestHeadersJson(s.slice(0, n)), undefined, `prefix ${n}`);
    assert.equal(payload(s.slice(0, n)), undefined, `prefix ${n} (payload)`);
  }
});

const usual = layout[0]![1];
// Not the gateway's layout: JSON.parse decides (an object, or undefined when it is not JSON).
const others: [string, string][] = [
  ['whitespace', usual.replace('"metadata":', '"metadata": ')],
  ['trailing whitespace', usual + ' '],
  ['trailing garbage', usual + 'x'],
  ['another member order', JSON.stringify({ metadata: JSON.parse(usual).metadata, method: 'GET', uri: '/', headers: {}, correlation_id: 'c1' })],
  ['an extra member', usual.slice(0, -1) + ',"extra":1}'],
  ['a repeated correlation id (the last wins)', usual.slice(0, -1) + ',"correlation_id":"c2"}'],
  ['an escaped quote in a value', wire(meta(), { 'x-q': 'a"b' })],
  ['an escape in the id', usual.replaceAll('"c1"', '"c\\u0031"')],
  ['non-ASCII values', wire(meta(), { 'x-u': 'café 日本 😀' })],
  ['a control character in a value', usual.replace('keep-alive', 'keep\u0001alive')],
  ['a raw newline between members', usual.replace(',"uri"', ',\n"uri"')],
  ['a leading zero', usual.replace('45678', '045678')],
  ['a fraction', usual.replace('45678', '45678.5')],
  ['an exponent', usual.replace('45678', '4e4')],
  ['a negative port', usual.replace('45678', '-1')],
  ['16 digits', usual.replace('45678', '1234567890123456')],
  ['15 digits', usual.replace('45678', '123456789012345')],
  ['a string port', usual.replace('45678', '"45678"')],
  ['true where a string is', usual.replace('"HTTP/1.1"', 'true')],
  ['an object where a string is', usual.replace('"HTTP/1.1"', '{}')],
  ['nul', usual.replace('null', 'nul')],
  ['a header value not in a list', usual.replace('["keep-alive"]', '"keep-alive"')],
  ['a number in a header list', usual.replace('["keep-alive"]', '[1]')],
  ['a trailing comma in a list', usual.replace('["keep-alive"]', '["keep-alive",]')],
  ['a trailing comma in the headers', usual.replace('["keep-alive"]}', '["keep-alive"],}')],
  ['a __proto__ header', usual.replace('"host":', '"__proto__":')],
  ['a repeated header name', usual.replace('"connection":', '"host":')],
  ['an unclosed string', '{"correlation_id":"c1'],
  ['not an object', '"{\\"correlation_id\\":1}"'],
  ['empty', ''],
];

test('anything else is left to JSON.parse, with the same result', () => {
  for (const [what, s] of others) {
    const event = decodeRequestHeadersJson(s);
    if (event !== undefined) assertSame(event, JSON.parse(s), `${what}: read by hand`);
    assertSame(payload(s), parsed(s), what);
  }
  // the layout reader takes these itself (and must agree, above)
  assert.notEqual(decodeRequestHeadersJson(others.find(([w]) => w === '15 digits')![1]), undefined);
  assert.notEqual(decodeRequestHeadersJson(others.find(([w]) => w === 'a repeated header name')![1]), undefined);
  // and leaves these
  for (const w of ['a __proto__ header', 'a repeated correlation id (the last wins)', 'an escape in the id', 'whitespace', '16 digits']) {
    assert.equal(decodeRequestHeadersJson(others.find(([x]) => x === w)![1]), undefined, w);
  }
  const proto = payload(others.find(([w]) => w === 'a __proto__ header')![1]) as { headers: object };
  assert.equal(Object.getPrototypeOf(proto.headers), Object.prototype);
  assert.ok(Object.hasOwn(proto.headers, '__proto__'));
});

test('single-byte mutations of an event: the SDK reads what JSON.parse reads, or nothing where it throws', () => {
  for (const what of ['several values and an empty list', 'a trace id three times']) mutations(Buffer.from(layout.find(([w]) => w === what)![1], 'utf8'));
});

function mutations(base: Buffer): void {
  // a fixed sequence (xorshift), so a failure reproduces
  let seed = 0x2f6b1c3d;
  const next = (): number => {
    seed ^= seed << 13;
    seed ^= seed >>> 17;
    seed ^= seed << 5;
    return seed >>> 0;
  };
  const alphabet = Buffer.from('{}[]":,\\ \n0123456789-.eEnulltruefalsxyz\u00e9\u0001');
  let readByHand = 0;
  for (let i = 0; i < 4000; i++) {
    const buf = Buffer.from(base);
    const at = next() % buf.length;
    const kind = next() % 3;
    let mutated: Buffer;
    if (kind === 0) {
      buf[at] = alphabet[next() % alphabet.length]!;
      mutated = buf;
    } else if (kind === 1) mutated = Buffer.concat([buf.subarray(0, at), buf.subarray(at + 1)]);
    else mutated = Buffer.concat([buf.subarray(0, at), alphabet.subarray(next() % alphabet.length).subarray(0, 1), buf.subarray(at)]);
    const s = mutated.toString('utf8');
    if (decodePayload(mutated, 0, mutated.length) !== undefined) readByHand++;
    assertSame(parseRequestHeadersPayload(mutated, 0, mutated.length), parsed(s), `mutation ${i}: ${s}`);
    assertSame(payload(s), parsed(s), `mutation ${i} in a chunk: ${s}`);
  }
  // many mutations stay inside a value, and the reader must have taken them
  assert.ok(readByHand > 500, `read by hand ${readByHand}`);
}

test('strings kept from one event to the next: a sequence that changes them reads as JSON.parse does', () => {
  const host = (v: string): RawHeaders => ({ host: v, connection: 'keep-alive' });
  const long = 'v'.repeat(70);
  const sequence: string[] = [
    wire(meta(), host('127.0.0.1:8080')),
    wire(meta(), host('127.0.0.1:8080')),
    // one byte apart at the end, in the first word, one byte longer, one shorter
    wire(meta({ timestamp: '2026-12-05T15:49:55.124Z' }), host('127.0.0.1:8081')),
    wire(meta({ timestamp: '3026-12-05T15:49:55.124Z' }), host('227.0.0.1:8081')),
    wire(meta({ client_ip: '127.0.0.10' }), host('127.0.0.1:80810')),
    wire(meta({ client_ip: '127.0.0.1' }), host('127.0.0.1:808')),
    // the member kept becomes null, a number is where a string was, and back
    wire(meta({ server_name: null, route_id: null }), host('h')),
    wire(meta({ server_name: 'example.test', route_id: 'r' }), host('h')),
    // headers in another order, more and fewer of them, lists, values past the kept length
    wire(meta(), { connection: 'keep-alive', host: 'h' }),
    wire(meta(), { connection: 'close', host: 'h', 'x-a': ['1', '2'], 'x-b': long }),
    wire(meta(), { connection: 'close', host: 'h', 'x-a': ['1', '2'], 'x-b': long }),
    wire(meta(), { connection: 'close', host: 'h', 'x-a': ['2', '1'], 'x-b': `${long}w` }),
    wire(meta(), { connection: 'close' }),
    wire(meta(), Object.fromEntries(Array.from({ length: 20 }, (_, i) => [`x-${i}`, `v${i}`]))),
    wire(meta(), Object.fromEntries(Array.from({ length: 20 }, (_, i) => [`x-${i}`, `v${i + 1}`]))),
    wire(meta(), host('')),
    wire(meta(), host('h')),
    // not the layout: a kept value followed by something else than its closing quote
    usual.replace('"127.0.0.1:8080"', '"127.0.0.1:8080x"'),
    usual.replace('"127.0.0.1:8080"', '"127.0.0.1:8080'),
    usual,
  ];
  let byHand = 0;
  for (const [i, s] of sequence.entries()) {
    const event = decodeRequestHeadersJson(s);
    if (event !== undefined) {
      byHand++;
      assertSame(event, JSON.parse(s), `event ${i}: read by hand`);
    }
    assertSame(payload(s), parsed(s), `event ${i}`);
  }
  assert.ok(byHand >= sequence.length - 2, `read by hand ${byHand}`);
});
