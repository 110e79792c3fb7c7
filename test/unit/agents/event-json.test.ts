import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FrameDecoder, FrameWriter, MessageType, type FrameSink } from '../../../src/agent-protocol/frames.ts';
import { RequestHeadersMessage, encodeRequestHeadersJson, lastJsonOneByte, plainEvent, toHeaderValues, type RawHeaders, type RequestMetadata } from '../../../src/agent-protocol/messages.ts';
import { v1Request } from '../../../src/agent-protocol/v1.ts';
import { decodeMsgpack } from '../../../src/agent-protocol/msgpack.ts';
import { encodeFrame } from '../../../src/agent-protocol/frames.ts';
import { requestHeadersEvent } from '../../../plugins/agents/filter.ts';
import type { RequestContext } from '../../../src/pipeline/types.ts';
import { sampleMetadata as meta } from '../../helpers/agent-events.ts';


// Strings JSON escapes or writes as more than one byte: quotes, backslashes, control characters,
// DEL, Latin-1, BMP, astral and lone surrogates.
const ODD = ['a"b', 'a\\b', 'tab\there', 'nl\n', '\u0000\u001f', '\u007f', 'café', '日本', '😀', '\ud800', 'x\udfffy', ''];

const cases: [string, RequestHeadersMessage][] = [
  ['usual', new RequestHeadersMessage('c1', meta(), 'GET', '/agent', toHeaderValues({ host: '127.0.0.1:8080', 'user-agent': 'wrk', accept: '*/*' }))],
  ['no headers', new RequestHeadersMessage('c1', meta(), 'GET', '/', {})],
  ['several values', new RequestHeadersMessage('c1', meta(), 'POST', '/a?b=c', toHeaderValues({ 'set-cookie': ['a=1', 'b=2'], 'x-n': 5 as unknown as string }))],
  ['tls, traceparent', new RequestHeadersMessage('c1', meta({ tls_version: 'TLSv1.3', tls_cipher: 'TLS_AES_128_GCM_SHA256', traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01' }), 'GET', '/', {})],
  ['nulls', new RequestHeadersMessage('c1', meta({ server_name: null, route_id: null, upstream_id: null }), 'GET', '/', {})],
  [
    'client certificate',
    new RequestHeadersMessage('c1', meta({ client_cert_subject: 'CN=a,O="b"', client_cert_sans: ['DNS:a', 'URI:x'], client_cert_fingerprint: 'AB:CD' }), 'GET', '/', {}),
  ],
  ['non-finite and odd numbers', new RequestHeadersMessage('c1', meta({ client_port: NaN }), 'GET', '/', {})],
  ['negative zero, fraction', new RequestHeadersMessage('c1', meta({ client_port: -0.5 }), 'GET', '/', {})],
  // a producer that lied about types: JSON.stringify's answer still
  ['missing members', new RequestHeadersMessage(undefined as unknown as string, meta({ client_ip: undefined as unknown as string }), 'GET', undefined as unknown as string, undefined as unknown as Record<string, string[]>)],
  ['metadata missing', new RequestHeadersMessage('c1', undefined as unknown as RequestMetadata, 'GET', '/', {})],
  ['odd header value kinds', new RequestHeadersMessage('c1', meta(), 'GET', '/', { a: [undefined, null, 1, true, { x: 'y' }] as unknown as string[], b: 'plain' as unknown as string[], c: undefined as unknown as string[] })],
  ['headers an array', new RequestHeadersMessage('c1', meta(), 'GET', '/', ['x'] as unknown as Record<string, string[]>)],
  // Node's header object as the filter passes it: the encoder writes the agent form without building it
  ['raw: a list and an undefined value', new RequestHeadersMessage('c1', meta(), 'GET', '/', { host: 'h', 'set-cookie': ['a=1', 'b=2'], skip: undefined, empty: [], accept: '*/*' })],
  ['raw: upper-case names (lower-cased and merged, as toHeaderValues does)', new RequestHeadersMessage('c1', meta(), 'GET', '/', { Host: 'h', host: 'i', 'X-A': ['1'] })],
  ['raw: a number value', new RequestHeadersMessage('c1', meta(), 'GET', '/', { 'content-length': 5 })],
  ['raw: integer-like names first', new RequestHeadersMessage('c1', meta(), 'GET', '/', { b: 'x', '12': 'y', a: 'z' })],
  ['raw: null prototype', new RequestHeadersMessage('c1', meta(), 'GET', '/', Object.assign(Object.create(null) as RawHeaders, { host: 'h', ':path': '/' }))],
  ['raw: inherited member', new RequestHeadersMessage('c1', meta(), 'GET', '/', Object.assign(Object.create({ inherited: 'i' }) as RawHeaders, { host: 'h' }))],
  ['raw: __proto__ own member', new RequestHeadersMessage('c1', meta(), 'GET', '/', JSON.parse('{"__proto__":"x","host":"h"}') as RawHeaders)],
  ['raw: non-string list member', new RequestHeadersMessage('c1', meta(), 'GET', '/', { a: ['x', 1 as unknown as string] })],
  ...ODD.map((s, i): [string, RequestHeadersMessage] => [
    `odd string ${i}`,
    new RequestHeadersMessage(`id${s}`, meta({ client_ip: s, server_name: s, traceparent: s, correlation_id: s }), s, `/${s}`, { [`h${s}`]: [s, 'ok'] }),
  ]),
];

test('encodeRequestHeadersJson writes exactly what JSON.stringify writes', () => {
  for (const [name, e] of cases) {
    const json = encodeRequestHeadersJson(e);
    assert.equal(json, JSON.stringify(e), name);
    // and that is the plain event with the agent form of the headers (what the filter sent before it passed Node's object)
    const twin = { correlation_id: e.correlation_id, metadata: e.metadata, method: e.method, uri: e.uri, headers: toHeaderValues(e.rawHeaders ?? {}) };
    assert.equal(json, JSON.stringify(twin), `${name}: plain twin`);
    // one byte per character when it says so (the frame writer then copies it as latin1)
    if (lastJsonOneByte) assert.equal(Buffer.byteLength(json, 'utf8'), json.length, `${name}: one-byte claim`);
  }
  encodeRequestHeadersJson(cases[0]![1]);
  assert.equal(lastJsonOneByte, true, 'printable ASCII is one byte');
  encodeRequestHeadersJson(cases.find(([n]) => n === 'odd string 7')![1]);
  assert.equal(lastJsonOneByte, false, 'a non-ASCII string is not');
});

test('the reused route fragment follows every change of its six members', () => {
  // one member changed at a time, back and forth, and equal strings that are distinct objects
  const variants: Partial<RequestMetadata>[] = [
    {},
    { server_name: ['example', '.test'].join('') },
    { server_name: null },
    { protocol: 'HTTP/2.0' },
    { tls_version: 'TLSv1.3' },
    { tls_cipher: 'TLS_AES_128_GCM_SHA256' },
    { route_id: 'r2' },
    { route_id: null },
    { upstream_id: 'u2' },
    { upstream_id: null },
    {},
    { server_name: 'other.test', route_id: 'r3', upstream_id: 'u3' },
    {},
  ];
  for (const round of [0, 1])
    for (const [i, over] of variants.entries()) {
      const e = new RequestHeadersMessage('c1', meta(over), 'GET', '/', { host: 'h' });
      assert.equal(encodeRequestHeadersJson(e), JSON.stringify(e), `round ${round}, variant ${i}`);
    }
});

test('a client address or timestamp found plain before does not let a different one through unchecked', () => {
  // the encoder keeps the last plain address and timestamp: equal strings (also distinct objects)
  // skip the check, anything else is checked, whatever came before
  const odd = ['a"b', 'a\\b', 'nl\n', 'café', '\ud800', ''];
  const seq: Partial<RequestMetadata>[] = [{}, { client_ip: ['127.0.', '0.1'].join('') }];
  for (const s of odd) seq.push({ client_ip: s }, {}, { timestamp: s }, {}, { timestamp: `2026-12-05T15:49:55.12${s}Z` }, { client_ip: s, timestamp: s }, {});
  seq.push({ client_ip: undefined as unknown as string }, { timestamp: undefined as unknown as string }, { client_ip: 5 as unknown as string }, {});
  for (const [i, over] of seq.entries()) {
    const e = new RequestHeadersMessage('c1', meta(over), 'GET', '/', { host: 'h' });
    assert.equal(encodeRequestHeadersJson(e), JSON.stringify(e), `step ${i}`);
  }
});

test('headers written before at the same position are reused only when name and value are equal', () => {
  // the encoder keeps each position's last plain header; every change of name, value, kind or
  // position, and odd strings in place of kept ones, must give JSON.stringify's bytes
  const same = (s: string) => Buffer.from(s, 'latin1').toString('latin1'); // an equal string that is another object
  const seq: RawHeaders[] = [
    { host: 'h', accept: '*/*' },
    { host: same('h'), accept: same('*/*') },
    { host: 'h', accept: 'text/html' },
    { accept: '*/*', host: 'h' },
    { host: 'h', Accept: '*/*' },
    { host: 'h', accept: ['*/*', 'x'] },
    { host: 'h', accept: undefined, 'user-agent': 'wrk' },
    { host: 'h', __proto__: 'x' } as unknown as RawHeaders,
    { host: 'h', accept: 5 as unknown as string },
    { host: 'h', accept: '*/*' },
    ...ODD.map((o): RawHeaders => ({ host: 'h', accept: o })),
    ...ODD.map((o): RawHeaders => ({ host: 'h', [`a${o}`]: '*/*' })),
    { host: 'h', accept: '*/*' },
    Object.fromEntries(Array.from({ length: 40 }, (_, i) => [`x-${i}`, `v${i}`])),
    Object.fromEntries(Array.from({ length: 40 }, (_, i) => [`x-${i}`, i === 35 ? 'a"b' : `v${i}`])),
    Object.fromEntries(Array.from({ length: 40 }, (_, i) => [`x-${i}`, `v${i}`])),
  ];
  for (const round of [0, 1])
    for (const [i, raw] of seq.entries()) {
      const e = new RequestHeadersMessage('c1', meta(), 'GET', '/', raw);
      assert.equal(encodeRequestHeadersJson(e), JSON.stringify(e), `round ${round}, step ${i}`);
    }
});

test('a cycle or a bigint in the event throws, as JSON.stringify does', () => {
  const cyclic: Record<string, unknown> = {};
  cyclic.self = cyclic;
  assert.throws(() => encodeRequestHeadersJson(new RequestHeadersMessage('c', meta({ client_cert_subject: 'CN=x', client_cert_sans: [cyclic] as unknown as string[] }), 'GET', '/', {})), TypeError);
  assert.throws(() => encodeRequestHeadersJson(new RequestHeadersMessage('c', meta({ client_port: 1n as unknown as number }), 'GET', '/', {})), TypeError);
});

class Sink implements FrameSink {
  destroyed = false;
  readonly chunks: Buffer[] = [];
  write(chunk: Buffer): void {
    this.chunks.push(Buffer.from(chunk));
  }
  cork(): void {}
  uncork(): void {}
}

test('the frame writer sends a RequestHeadersMessage as the same bytes as its plain-object twin', async () => {
  for (const [name, e] of cases) {
    if (name === 'missing members' || name === 'metadata missing') continue;
    const plain = JSON.parse(JSON.stringify(e)) as unknown;
    const a = new Sink();
    const b = new Sink();
    const wa = new FrameWriter(a);
    const wb = new FrameWriter(b);
    // a turn of several frames (one buffer) and a turn of one (its own frame)
    wa.writeMessage(MessageType.RequestHeaders, e, 'json');
    wa.writeMessage(MessageType.Ping, { sequence: 1 }, 'json');
    wa.writeMessage(MessageType.RequestHeaders, e, 'json');
    wb.writeMessage(MessageType.RequestHeaders, plain, 'json');
    wb.writeMessage(MessageType.Ping, { sequence: 1 }, 'json');
    wb.writeMessage(MessageType.RequestHeaders, plain, 'json');
    await new Promise((r) => setImmediate(r));
    wa.writeMessage(MessageType.RequestHeaders, e, 'json');
    wb.writeMessage(MessageType.RequestHeaders, plain, 'json');
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(Buffer.concat(a.chunks), Buffer.concat(b.chunks), name);
    const frames = new FrameDecoder().push(Buffer.concat(a.chunks));
    assert.deepEqual(
      frames.map((f) => f.type),
      [MessageType.RequestHeaders, MessageType.Ping, MessageType.RequestHeaders, MessageType.RequestHeaders],
    );
    assert.deepEqual(JSON.parse(frames[0]!.payload.toString('utf8')), plain, name);
  }
});

test("the filter's request_headers event: members in the reference's order, JSON as JSON.stringify writes it", () => {
  const ctx = {
    traceId: 't1',
    clientIp: '10.0.0.1',
    clientPort: 5000,
    host: 'example.test',
    httpVersion: '1.1',
    routeId: 'r1',
    upstreamId: 'u1',
    timestamp: '2026-12-05T00:00:00.000Z',
    method: 'GET',
    path: '/p',
    query: 'q=1',
    raw: { headers: { host: 'example.test', traceparent: '00-aa-bb-01' } },
  } as unknown as RequestContext;
  const plain = requestHeadersEvent(ctx, 'c9');
  assert.deepEqual(Object.keys(plain.toJSON()), ['correlation_id', 'metadata', 'method', 'uri', 'headers']);
  assert.deepEqual(plain.headers, { host: ['example.test'], traceparent: ['00-aa-bb-01'] });
  assert.equal(encodeRequestHeadersJson(plain), JSON.stringify(plain));
  assert.equal(plain.uri, '/p?q=1');
  assert.equal(plain.metadata.traceparent, '00-aa-bb-01');
  const tls = requestHeadersEvent(
    { ...ctx, tls: { serverName: 'sni.test', version: 'TLSv1.3', cipher: 'C', clientSubject: 'CN=x', clientSans: ['DNS:x'], clientFingerprint256: 'AA' } } as unknown as RequestContext,
    'c10',
  );
  assert.deepEqual(Object.keys(tls.metadata).slice(-3), ['client_cert_subject', 'client_cert_sans', 'client_cert_fingerprint']);
  assert.equal(encodeRequestHeadersJson(tls), JSON.stringify(tls));
});

test('other transports get the plain event: toJSON, headers, spread, v1, MessagePack', () => {
  const raw: RawHeaders = { host: 'h', 'set-cookie': ['a', 'b'], Accept: '*/*' };
  const e = new RequestHeadersMessage('c1', meta(), 'GET', '/x', raw);
  const want = { correlation_id: 'c1', metadata: meta(), method: 'GET', uri: '/x', headers: { host: ['h'], 'set-cookie': ['a', 'b'], accept: ['*/*'] } };
  assert.deepEqual(e.headers, want.headers);
  assert.equal(e.headers, e.headers, 'made once');
  assert.deepEqual(e.toJSON(), want);
  assert.deepEqual(plainEvent(e), want);
  const other = { a: 1 };
  assert.equal(plainEvent(other), other, 'anything else as it is');
  // the raw headers are private: a spread, Object.keys or for-in of the message does not see them
  assert.deepEqual(Object.keys(e), ['correlation_id', 'metadata', 'method', 'uri']);
  assert.deepEqual(v1Request(MessageType.RequestHeaders, e).payload, { metadata: meta(), method: 'GET', uri: '/x', headers: want.headers });
  const frame = encodeFrame(MessageType.RequestHeaders, e, 'msgpack');
  assert.deepEqual(decodeMsgpack(frame.subarray(5)), want);
  assert.deepEqual(JSON.parse(encodeFrame(MessageType.RequestHeaders, e).subarray(5).toString()), want);
});
