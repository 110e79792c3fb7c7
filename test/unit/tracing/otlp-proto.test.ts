// The hand-written OTLP/protobuf encoder (plugins/tracing/otlp-proto.ts): what it writes, span by
// span into the export queue's bytes, is decoded by the test receiver's own protobuf decoder
// (the one the integration tests use) back to the same spans: every attribute type, non-ASCII
// text, lengths of one, two and three varint bytes, ids, exact nanosecond times, kinds, status,
// flags and traceState.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { OtlpProtoEncoder, decodeExportResponse } from '../../../plugins/tracing/otlp-proto.ts';
import { SpanBytes, encodeRequest } from '../../../plugins/tracing/span-bytes.ts';
import { decodeProtoTraces, protoScopeVersion } from '../../integration/tracing/collector.ts';
import type { AttributeValue, SpanRecord } from '../../../plugins/tracing/otlp-json.ts';
import { nanos, span } from './span-fixture.ts';

const encoder = () => new OtlpProtoEncoder({ 'service.name': 'edge "one" ü', 'service.instance.id': 'i-1', 'service.version': '1.2.3', 'process.pid': 42 }, { name: 'sentinel', version: '1.2.3' });
const decode = (body: Uint8Array) => decodeProtoTraces(Buffer.from(body));

test('encode: decodes back to the same spans', () => {
  const enc = encoder();
  const tricky = 'path "quoted" \\ back\nline \u0001 ünï €😀 </script>';
  const long = 'x'.repeat(200); // a two-byte length inside an attribute
  const spans: SpanRecord[] = [
    span({
      name: 'GET /api/*',
      parentSpanId: 'b7ad6b7169203331',
      remoteParent: true,
      traceState: 'vendor=abc,other=1',
      attributes: ['http.request.method', 'GET', 'url.path', tricky, 'long', long, 'network.peer.port', 54321, 'http.response.status_code', 503, 'ratio', 0.25, 'flag', true, 'off', false, 'big', 2 ** 40, 'neg', -7, 'huge', 2 ** 60, 'zero', 0],
      failed: true,
    }),
    span({ spanId: '1111111111111111', parentSpanId: '00f067aa0ba902b7', name: 'route match', kind: 1, startMs: 1000.5, endMs: 1000.5005, attributes: ['sentinel.route.id', 'api'] }),
    span({ spanId: '2222222222222222', parentSpanId: '00f067aa0ba902b7', name: 'GET', kind: 3, startMs: 86_400_000.000001, endMs: 86_400_001, attributes: ['nan', NaN, 'inf', -Infinity] }),
  ];
  const body = encodeRequest(enc, spans);
  const got = decode(body);
  assert.equal(got.length, 3);
  const [server, match, attempt] = got as [(typeof got)[0], (typeof got)[0], (typeof got)[0]];
  assert.deepEqual(server.resource, { 'service.name': 'edge "one" ü', 'service.instance.id': 'i-1', 'service.version': '1.2.3', 'process.pid': 42 });
  assert.equal(server.scope, 'sentinel');
  assert.equal(protoScopeVersion(Buffer.from(body)), '1.2.3');
  assert.deepEqual(
    { traceId: server.traceId, spanId: server.spanId, parent: server.parentSpanId, name: server.name, kind: server.kind, status: server.statusCode, flags: server.flags, traceState: server.traceState },
    { traceId: '4bf92f3577b34da6a3ce929d0e0e4736', spanId: '00f067aa0ba902b7', parent: 'b7ad6b7169203331', name: 'GET /api/*', kind: 2, status: 2, flags: 0x301, traceState: 'vendor=abc,other=1' },
  );
  assert.deepEqual(server.attributes, {
    'http.request.method': 'GET',
    'url.path': tricky,
    long,
    'network.peer.port': 54321,
    'http.response.status_code': 503,
    ratio: 0.25,
    flag: true,
    off: false,
    big: 2 ** 40,
    neg: -7,
    huge: 2 ** 60,
    zero: 0,
  });
  assert.equal(server.startNs, nanos(1000.25));
  assert.equal(server.endNs, nanos(1003.125));
  assert.deepEqual([match.name, match.kind, match.parentSpanId, match.statusCode, match.flags, match.traceState, match.attributes], ['route match', 1, '00f067aa0ba902b7', 0, 0x101, undefined, { 'sentinel.route.id': 'api' }]);
  assert.ok(match.endNs > match.startNs, 'sub-microsecond spans keep their order');
  assert.equal(attempt.kind, 3);
  assert.ok(Number.isNaN(attempt.attributes.nan) && attempt.attributes.inf === -Infinity, 'non-finite doubles');
  assert.equal(attempt.startNs, nanos(86_400_000.000001));
  assert.equal(attempt.endNs - attempt.startNs, 999_999n);
});

test('encode: times are exact fixed64 nanoseconds across the whole range of the clock', () => {
  const enc = encoder();
  const times = [0, 0.000001, 1, 999.999999, 4_294_967.296, 1e9 + 0.123456, 2e9 + 0.999999];
  const got = decode(encodeRequest(enc, times.map((t, i) => span({ spanId: String(i + 1).padStart(16, '0'), startMs: t, endMs: t + 1 }))));
  assert.deepEqual(
    got.map((s) => [s.startNs, s.endNs]),
    times.map((t) => [nanos(t), nanos(t + 1)]),
  );
});

test('encode: an empty batch is still a valid request', () => {
  assert.deepEqual(decode(encodeRequest(encoder(), [])), []);
});

test('encode: big spans (three-byte lengths) and many spans grow the bytes, none is lost', () => {
  const enc = encoder();
  const long = '€ü😀"'.repeat(3000); // ~30 KB of UTF-8 in one attribute
  const spans = Array.from({ length: 40 }, (_, i) => span({ spanId: String(i + 1).padStart(16, '0'), attributes: ['user_agent.original', i % 4 === 0 ? long : 'ua', 'i', i] }));
  const out = new SpanBytes(1024, enc.headRoom); // far smaller than the batch: the chunk is replaced several times
  for (const s of spans) enc.append(s, out);
  const got = decode(enc.request(out.take()));
  assert.deepEqual(
    got.map((s) => [s.spanId, s.attributes['user_agent.original'], s.attributes.i]),
    spans.map((s, i) => [s.spanId, i % 4 === 0 ? long : 'ua', i]),
  );
});

test('encode: repeated and differently typed values of one attribute stay apart (the KeyValue cache and its last value)', () => {
  const enc = encoder();
  // runs of one value (the last-value memo), a value equal to the previous one as another string object, types side by side
  const values = ['a', 'b', 'a', 'a', 1, 1, '1', 1, true, 'true', true, 1.5, 0, 'x'.repeat(500), 'x'.repeat(500), 'ü', 'ü', 'cd', ['c', 'd'].join(''), 'c'];
  for (let round = 0; round < 2; round++) {
    const spans = values.map((v, i) => span({ spanId: String(i + 1).padStart(16, '0'), attributes: ['k', v] }));
    assert.deepEqual(
      decode(encodeRequest(enc, spans)).map((s) => s.attributes.k),
      values,
      `round ${round}`,
    );
  }
});

test('encode: spans of a kind repeating the previous one\'s leading attributes (the attribute runs) are written as a fresh encoder writes them', () => {
  const enc = encoder();
  const out = new SpanBytes(1024, enc.headRoom);
  // the bytes of one span as `e` appends it (after the head room)
  const piece = (e: OtlpProtoEncoder, bytes: SpanBytes, s: SpanRecord) => {
    e.append(s, bytes);
    return Buffer.from(bytes.take().subarray(e.headRoom));
  };
  const base = ['http.request.method', 'GET', 'url.scheme', 'http', 'server.address', 'example.com', 'sentinel.route.id', 'api', 'http.response.status_code', 200, 'url.path', '/a', 'network.peer.port', 40000];
  const long = 'u'.repeat(2000); // a run over the kept size
  const kinds: [number, AttributeValue[]][] = [
    [2, base],
    [2, base], // all equal (the same array)
    [2, [...base.slice(0, -1), 40001]], // the last differs
    [2, [...base.slice(0, 5), ['exam', 'ple.com'].join(''), ...base.slice(6)]], // equal as another string object
    [2, [...base.slice(0, 11), '/b', 'url.query', 'x=1', ...base.slice(12)]], // a tail that differs and is longer
    [2, base.slice(0, 6)], // shorter than the run
    [2, ['http.request.method', 'POST', ...base.slice(2)]], // the first differs: the run is replaced
    [2, ['http.request.method', 'POST', ...base.slice(2, 8), 'http.response.status_code', -0, 'error.type', 'x']],
    [2, ['http.request.method', 'POST', ...base.slice(2, 8), 'http.response.status_code', 0, 'ratio', NaN]],
    [2, ['http.request.method', 'POST', ...base.slice(2, 8), 'http.response.status_code', 0, 'ratio', NaN]],
    [2, ['http.request.method', 'POST', 'user_agent.original', long, ...base.slice(2)]],
    [2, ['http.request.method', 'POST', 'user_agent.original', long, ...base.slice(2)]],
    [3, ['http.request.method', 'GET', 'server.port', 8080, 'url.full', 'http://u/a']], // another kind, its own run
    [2, ['http.request.method', 'POST', 'user_agent.original', long]],
    [3, ['http.request.method', 'GET', 'server.port', 8080, 'url.full', 'http://u/b']],
    [3, ['http.request.method', 'GET', 'server.port', '8080', 'url.full', 'http://u/b']], // equal text, another type
    [1, []],
    [1, ['sentinel.route.id', 'api']],
    [3, []],
    [3, ['http.request.method', 'GET']],
  ];
  kinds.forEach(([kind, attributes], i) => {
    const s = span({ spanId: String(i + 1).padStart(16, '0'), kind, attributes });
    const fresh = encoder();
    assert.deepEqual(piece(enc, out, s), piece(fresh, new SpanBytes(1024, fresh.headRoom), s), `span ${i}`);
  });
});

test('pieces taken from SpanBytes stay intact while later spans are appended', () => {
  const enc = encoder();
  const out = new SpanBytes(1024, enc.headRoom);
  const batches: Uint8Array[] = [];
  for (let b = 0; b < 5; b++) {
    for (let i = 0; i < 7; i++) enc.append(span({ spanId: `${b}${i}`.padStart(16, '0'), name: `b${b}`, attributes: ['pad', 'y'.repeat(100 * i)] }), out);
    batches.push(out.take());
  }
  assert.equal(out.open, 0);
  batches.forEach((piece, b) => {
    const got = decode(enc.request(piece));
    assert.deepEqual(
      got.map((s) => [s.name, s.spanId]),
      Array.from({ length: 7 }, (_, i) => [`b${b}`, `${b}${i}`.padStart(16, '0')]),
    );
  });
});

test('the collector answer: partial success is read, an empty answer is none', () => {
  assert.equal(decodeExportResponse(new Uint8Array()), undefined);
  // partial_success { rejected_spans: 3, error_message: "bad" }, then an unknown field that is skipped
  const answer = Buffer.from([0x0a, 0x07, 0x08, 0x03, 0x12, 0x03, 0x62, 0x61, 0x64, 0x18, 0x05]);
  assert.deepEqual(decodeExportResponse(answer), { rejectedSpans: 3, errorMessage: 'bad' });
  assert.throws(() => decodeExportResponse(Buffer.from([0x0a, 0x09, 0x08])), /truncated/);
});

test('encode: ids given as numbers (the recorder\'s parts) give the same bytes as their hex', () => {
  const parts = (hex: string) => {
    const b = Buffer.from(hex, 'hex');
    return [b.readUIntBE(0, 3), b.readUIntBE(3, 3), b.readUIntBE(6, 2)] as const;
  };
  for (const s of [
    span({ traceId: 'ffffffffffffffffffffffffffffffff', spanId: 'ffffffffffffffff', parentSpanId: '0000000000000001' }),
    span({ traceId: '0af7651916cd43dd8448eb211c80319c', spanId: 'b7ad6b7169203331', parentSpanId: '' }),
    span({ traceId: '00000000000000000000000000000001', spanId: '8000000000000000', parentSpanId: '00f067aa0ba902b7', remoteParent: true }),
  ]) {
    const [a, b, c] = parts(s.traceId.slice(0, 16));
    const [d, e, f] = parts(s.traceId.slice(16));
    const [sidA, sidB, sidC] = parts(s.spanId);
    const [pidA, pidB, pidC] = s.parentSpanId === '' ? [0, 0, 0] : parts(s.parentSpanId);
    const withParts: SpanRecord = { ...s, traceParts: { a, b, c, d, e, f }, sidA, sidB, sidC, pidA, pidB, pidC };
    assert.deepEqual(Buffer.from(encodeRequest(encoder(), [withParts])), Buffer.from(encodeRequest(encoder(), [s])), s.traceId);
  }
});
