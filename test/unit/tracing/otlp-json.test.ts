// The hand-written OTLP/JSON encoder (plugins/tracing/otlp-json.ts): what it writes is valid
// JSON that the test receiver's decoder (the one the integration tests use) reads back to the
// same spans, with every attribute type, escaping, ids, times, kinds, status and flags.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { OtlpJsonEncoder, type SpanRecord } from '../../../plugins/tracing/otlp-json.ts';
import { decodeTraces } from '../../integration/tracing/collector.ts';
import { nanos, span } from './span-fixture.ts';

test('encode: decodes back to the same spans', () => {
  const enc = new OtlpJsonEncoder({ 'service.name': 'edge "one"', 'service.instance.id': 'i-1', 'service.version': '1.2.3' }, { name: 'sentinel', version: '1.2.3' });
  const tricky = 'path "quoted" \\ back\nline \u0001 ünï €😀 </script>';
  const spans: SpanRecord[] = [
    span({
      name: 'GET /api/*',
      parentSpanId: 'b7ad6b7169203331',
      remoteParent: true,
      traceState: 'vendor=abc,other=1',
      attributes: ['http.request.method', 'GET', 'url.path', tricky, 'network.peer.port', 54321, 'http.response.status_code', 503, 'ratio', 0.25, 'flag', true, 'off', false, 'big', 2 ** 40, 'neg', -7, 'nan', NaN, 'inf', Infinity],
      failed: true,
    }),
    span({ spanId: '1111111111111111', parentSpanId: '00f067aa0ba902b7', name: 'route match', kind: 1, startMs: 1000.5, endMs: 1000.5005, attributes: ['sentinel.route.id', 'api'] }),
    span({ spanId: '2222222222222222', parentSpanId: '00f067aa0ba902b7', name: 'GET', kind: 3, startMs: 86_400_000.000001, endMs: 86_400_001, attributes: [] }),
  ];
  const body = Buffer.from(enc.encode(spans)).toString('utf8');
  const parsed = JSON.parse(body) as { resourceSpans: { scopeSpans: { scope: { version: string }; spans: Record<string, unknown>[] }[] }[] };
  const got = decodeTraces(parsed);
  assert.equal(got.length, 3);
  const [server, match, attempt] = got as [(typeof got)[0], (typeof got)[0], (typeof got)[0]];
  assert.deepEqual(server.resource, { 'service.name': 'edge "one"', 'service.instance.id': 'i-1', 'service.version': '1.2.3' });
  assert.equal(server.scope, 'sentinel');
  assert.equal(parsed.resourceSpans[0]!.scopeSpans[0]!.scope.version, '1.2.3');
  assert.deepEqual(
    { traceId: server.traceId, spanId: server.spanId, parent: server.parentSpanId, name: server.name, kind: server.kind, status: server.statusCode },
    { traceId: '4bf92f3577b34da6a3ce929d0e0e4736', spanId: '00f067aa0ba902b7', parent: 'b7ad6b7169203331', name: 'GET /api/*', kind: 2, status: 2 },
  );
  assert.deepEqual(server.attributes, {
    'http.request.method': 'GET',
    'url.path': tricky,
    'network.peer.port': 54321,
    'http.response.status_code': 503,
    ratio: 0.25,
    flag: true,
    off: false,
    big: 2 ** 40,
    neg: -7,
    nan: 'NaN',
    inf: 'Infinity',
  });
  assert.equal(server.startNs, nanos(1000.25));
  assert.equal(server.endNs, nanos(1003.125));
  const raw = parsed.resourceSpans[0]!.scopeSpans[0]!.spans;
  assert.equal(raw[0]!.traceState, 'vendor=abc,other=1');
  assert.equal(raw[0]!.flags, 0x301, 'sampled, remote parent');
  assert.equal(raw[1]!.flags, 0x101, 'sampled, local parent');
  assert.equal(raw[1]!.traceState, undefined);
  assert.equal(typeof raw[0]!.startTimeUnixNano, 'string', 'fixed64 as a decimal string');
  assert.deepEqual([match.name, match.kind, match.parentSpanId, match.statusCode, match.attributes], ['route match', 1, '00f067aa0ba902b7', 0, { 'sentinel.route.id': 'api' }]);
  assert.ok(match.endNs > match.startNs, 'sub-microsecond spans keep their order');
  assert.deepEqual([attempt.kind, attempt.attributes], [3, {}]);
  assert.equal(attempt.startNs, nanos(86_400_000.000001));
  assert.equal(attempt.endNs - attempt.startNs, 999_999n);
});

test('encode: an empty batch is still a valid request', () => {
  const enc = new OtlpJsonEncoder({ 'service.name': 's' }, { name: 'sentinel', version: '0' });
  assert.deepEqual(decodeTraces(JSON.parse(Buffer.from(enc.encode([])).toString('utf8'))), []);
});

test('encode: spans larger than the room reserved for them (multi-byte UTF-8) grow the buffer', () => {
  const enc = new OtlpJsonEncoder({ 'service.name': 's' }, { name: 'sentinel', version: '0' });
  const long = '€ü😀"'.repeat(3000);
  const spans = Array.from({ length: 5 }, (_, i) => span({ spanId: String(i + 1).padStart(16, '0'), attributes: ['user_agent.original', long, 'i', i] }));
  const got = decodeTraces(JSON.parse(Buffer.from(enc.encode(spans)).toString('utf8')));
  assert.deepEqual(
    got.map((s) => [s.spanId, s.attributes['user_agent.original'] === long, s.attributes.i]),
    spans.map((s, i) => [s.spanId, true, i]),
  );
});

test('encode: repeated and differently typed values of one attribute stay apart (the KeyValue cache)', () => {
  const enc = new OtlpJsonEncoder({ 'service.name': 's' }, { name: 'sentinel', version: '0' });
  const values = ['a', 'b', 'a', 1, '1', true, 'true', 1.5, 0, 'x'.repeat(500), 'x'.repeat(500)];
  for (let round = 0; round < 2; round++) {
    const spans = values.map((v, i) => span({ spanId: String(i + 1).padStart(16, '0'), attributes: ['k', v] }));
    const got = decodeTraces(JSON.parse(Buffer.from(enc.encode(spans)).toString('utf8')));
    assert.deepEqual(
      got.map((s) => s.attributes.k),
      values,
      `round ${round}`,
    );
  }
});

test('encode: spans with non-ASCII text are written as UTF-8, ASCII spans around them as the same bytes', () => {
  const enc = new OtlpJsonEncoder({ 'service.name': 's' }, { name: 'sentinel', version: '0' });
  // each non-ASCII piece on its own: the span name, tracestate, an attribute value (short enough to be cached if it were ASCII)
  const spans = [
    span({ spanId: '0000000000000001', name: 'GET /café', attributes: ['k', 'v'] }),
    span({ spanId: '0000000000000002', name: 'GET', attributes: ['k', 'v'] }),
    span({ spanId: '0000000000000003', traceState: 'v=ü', attributes: ['k', 'v'] }),
    span({ spanId: '0000000000000004', attributes: ['k', 'naïve 😀'] }),
    span({ spanId: '0000000000000005', name: 'GET /café', attributes: ['k', 'naïve 😀'] }),
    span({ spanId: '0000000000000006', attributes: ['k', 'v'] }),
  ];
  for (let round = 0; round < 2; round++) {
    const text = Buffer.from(enc.encode(spans)).toString('utf8');
    assert.ok(!text.includes('\ufffd'), 'valid UTF-8');
    const parsed = JSON.parse(text) as { resourceSpans: { scopeSpans: { spans: { traceState?: string }[] }[] }[] };
    const got = decodeTraces(parsed);
    assert.deepEqual(
      got.map((s) => [s.spanId, s.name, s.attributes.k]),
      spans.map((s) => [s.spanId, s.name, s.attributes[1]]),
      `round ${round}`,
    );
    assert.equal(parsed.resourceSpans[0]!.scopeSpans[0]!.spans[2]!.traceState, 'v=ü');
  }
});
