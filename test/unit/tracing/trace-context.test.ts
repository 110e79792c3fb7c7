// W3C Trace Context reading and the ratio sampler (plugins/tracing/trace-context.ts). The
// sampler is checked against the OpenTelemetry SDK's own TraceIdRatioBasedSampler (a
// devDependency kept for this): the same trace id must get the same decision in both.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ROOT_CONTEXT } from '@opentelemetry/api';
import { SamplingDecision, TraceIdRatioBasedSampler } from '@opentelemetry/sdk-trace';
import { RatioSampler, TraceIdParts, formatTraceparent, hexLanes, hexWord, idPartA, idPartB, idPartC, lastRootTraceIdParts, lastSpanIdHi, lastSpanIdLo, newSpanId, parseTraceparent, rootSpanId, rootTraceId } from '../../../plugins/tracing/trace-context.ts';

const T = '4bf92f3577b34da6a3ce929d0e0e4736';
const S = '00f067aa0ba902b7';

test('parseTraceparent: W3C level 1', () => {
  const table: [string | string[] | undefined, { traceId: string; spanId: string; sampled: boolean } | undefined][] = [
    [`00-${T}-${S}-01`, { traceId: T, spanId: S, sampled: true }],
    [`00-${T}-${S}-00`, { traceId: T, spanId: S, sampled: false }],
    [`00-${T}-${S}-03`, { traceId: T, spanId: S, sampled: true }], // other flag bits are not the sampled bit
    [`00-${T}-${S}-02`, { traceId: T, spanId: S, sampled: false }],
    [` 00-${T}-${S}-01 `, { traceId: T, spanId: S, sampled: true }], // optional whitespace
    [`01-${T}-${S}-01-what-the-future-holds`, { traceId: T, spanId: S, sampled: true }], // a later version may add fields
    [`01-${T}-${S}-01`, { traceId: T, spanId: S, sampled: true }],
    [`01-${T}-${S}-01x`, undefined], // extra fields must follow a '-'
    [`00-${T}-${S}-01-extra`, undefined], // version 00 has exactly four fields
    [`ff-${T}-${S}-01`, undefined], // version ff is invalid
    [`00-${'0'.repeat(32)}-${S}-01`, undefined], // all-zero trace id
    [`00-${T}-${'0'.repeat(16)}-01`, undefined], // all-zero parent id
    [`00-${T.toUpperCase()}-${S}-01`, undefined], // lowercase only
    [`00-${T}-${S}-0g`, undefined],
    [`0g-${T}-${S}-01`, undefined],
    [`00-${T.slice(1)}-${S}-01`, undefined],
    [`00_${T}-${S}-01`, undefined],
    [`00-${T}-${S}`, undefined],
    ['', undefined],
    [`00-${T}-${S}-01, 00-${T}-${S}-01`, undefined], // two headers joined by Node
    [[`00-${T}-${S}-01`, `00-${T}-${S}-01`], undefined],
    [undefined, undefined],
  ];
  for (const [header, want] of table) assert.deepEqual(parseTraceparent(header), want, JSON.stringify(header));
});

test('formatTraceparent and span ids', () => {
  assert.equal(formatTraceparent(T, S, true), `00-${T}-${S}-01`);
  assert.equal(formatTraceparent(T, S, false), `00-${T}-${S}-00`);
  const ids = new Set<string>();
  for (let i = 0; i < 1000; i++) {
    const id = newSpanId();
    assert.match(id, /^[0-9a-f]{16}$/);
    assert.notEqual(id, '0'.repeat(16));
    ids.add(id);
  }
  assert.equal(ids.size, 1000, 'random span ids');
});

test('trace and span ids drawn in turns from the random pools (several refills) never repeat', () => {
  const sampler = new RatioSampler(0.5);
  const seen = new Set<string>();
  for (let i = 0; i < 3000; i++) {
    const { traceparent } = sampler.newRoot();
    const traceId = rootTraceId(traceparent);
    const rootSpan = rootSpanId(traceparent);
    const spanId = newSpanId();
    assert.match(traceId, /^[0-9a-f]{32}$/);
    assert.match(spanId, /^[0-9a-f]{16}$/);
    // the root's traceparent is the unsampled one of its ids, whatever the decision
    assert.equal(traceparent, formatTraceparent(traceId, rootSpan, false));
    assert.deepEqual(parseTraceparent(traceparent), { traceId, spanId: rootSpan, sampled: false });
    // no id is a piece of another: the pools hand out each byte once
    const pieces = [traceId, rootSpan, spanId, traceId.slice(0, 16), traceId.slice(16)];
    assert.ok(pieces.every((p) => !seen.has(p)), `repeat at ${i}`);
    for (const p of pieces) seen.add(p);
  }
});

test('root ids: every byte value reaches the hex text (the table encoder against Buffer hex)', () => {
  const sampler = new RatioSampler(0);
  const digits = new Set<string>();
  for (let i = 0; i < 2000; i++) {
    const tp = sampler.newRoot().traceparent;
    const hex = rootTraceId(tp) + rootSpanId(tp);
    // the hex round-trips through bytes
    assert.equal(Buffer.from(hex, 'hex').toString('hex'), hex);
    for (let j = 0; j < hex.length; j += 2) digits.add(hex.slice(j, j + 2));
  }
  assert.equal(digits.size, 256, 'all 256 byte values seen');
});

test('hexLanes: four nibbles, one per byte lane, become their four hex digits in the same lanes', () => {
  const digits = '0123456789abcdef';
  // every nibble in every lane, next to neighbours that would carry if a lane overflowed
  for (let lane = 0; lane < 4; lane++) {
    for (let n = 0; n < 16; n++) {
      for (const other of [0, 9, 10, 15]) {
        const nibbles = [other, other, other, other];
        nibbles[lane] = n;
        const x = nibbles[0]! | (nibbles[1]! << 8) | (nibbles[2]! << 16) | (nibbles[3]! << 24);
        const out = Buffer.alloc(4);
        out.writeUInt32LE(hexLanes(x) >>> 0);
        assert.equal(out.toString('latin1'), nibbles.map((v) => digits[v]).join(''), `lane ${lane}, nibble ${n}, others ${other}`);
      }
    }
  }
  const table: [number, string][] = [
    [0x00000000, '0000'],
    [0x0f0f0f0f, 'ffff'],
    [0x0a090100, '019a'],
    [0x0b0c0d0e, 'edcb'],
  ];
  for (const [x, want] of table) {
    const out = Buffer.alloc(4);
    out.writeUInt32LE(hexLanes(x) >>> 0);
    assert.equal(out.toString('latin1'), want, x.toString(16));
  }
});

test('RatioSampler: the same decision as the SDK TraceIdRatioBasedSampler for the same trace id', () => {
  for (const rate of [0, 0.001, 0.01, 0.25, 0.5, 0.999, 1]) {
    const ours = new RatioSampler(rate);
    const sdk = new TraceIdRatioBasedSampler(rate);
    let sampled = 0;
    const n = 4000;
    for (let i = 0; i < n; i++) {
      const root = ours.newRoot();
      const traceId = rootTraceId(root.traceparent);
      assert.match(traceId, /^[0-9a-f]{32}$/);
      const want = sdk.shouldSample(ROOT_CONTEXT, traceId).decision === SamplingDecision.RECORD_AND_SAMPLED;
      assert.equal(root.sampled, want, `rate ${rate}, trace ${traceId}`);
      assert.equal(ours.sample(traceId), want, `rate ${rate}, trace ${traceId} from hex`);
      if (root.sampled) sampled++;
      // the request path's form: the traceparent alone, the decision left in lastSampled
      const tp = ours.rootTraceparent();
      const id = rootTraceId(tp);
      assert.deepEqual(parseTraceparent(tp), { traceId: id, spanId: rootSpanId(tp), sampled: false });
      assert.equal(ours.lastSampled, sdk.shouldSample(ROOT_CONTEXT, id).decision === SamplingDecision.RECORD_AND_SAMPLED, `rate ${rate}, trace ${id} (rootTraceparent)`);
    }
    // the share follows the rate (6 standard deviations of slack: this never flakes)
    const sd = Math.sqrt((rate * (1 - rate)) / n);
    assert.ok(Math.abs(sampled / n - rate) <= 6 * sd + 1e-9, `rate ${rate}: ${sampled}/${n} sampled`);
  }
  // edge ids: the XOR of the four words decides
  const edges = ['00000000000000000000000000000001', 'ffffffff000000000000000000000000', 'ffffffffffffffffffffffffffffffff', '7fffffff000000000000000000000000', '80000000000000000000000000000000'];
  for (const rate of [0, 0.5, 0.999999, 1]) {
    const ours = new RatioSampler(rate);
    const sdk = new TraceIdRatioBasedSampler(rate);
    for (const id of edges) assert.equal(ours.sample(id), sdk.shouldSample(ROOT_CONTEXT, id).decision === SamplingDecision.RECORD_AND_SAMPLED, `rate ${rate}, ${id}`);
  }
});

test('ids as numbers (for the protobuf encoder): the parts of every root trace id and span id are its hex bytes', () => {
  const parts = (hex: string) => {
    const b = Buffer.from(hex, 'hex');
    return [b.readUIntBE(0, 3), b.readUIntBE(3, 3), b.readUIntBE(6, 2)];
  };
  const sampler = new RatioSampler(1);
  // past a draw of the random words (one per 1,024 roots) and many texts of 64
  for (let i = 0; i < 1100; i++) {
    const root = sampler.newRoot();
    const t = lastRootTraceIdParts();
    const hex = rootTraceId(root.traceparent);
    assert.deepEqual([t.a, t.b, t.c, t.d, t.e, t.f], [...parts(hex.slice(0, 16)), ...parts(hex.slice(16))], hex);
    const h = TraceIdParts.ofHex(hex);
    assert.deepEqual([h.a, h.b, h.c, h.d, h.e, h.f], [t.a, t.b, t.c, t.d, t.e, t.f]);
    const sid = newSpanId();
    const hi = lastSpanIdHi();
    const lo = lastSpanIdLo();
    assert.deepEqual([idPartA(hi), idPartB(hi, lo), idPartC(lo)], parts(sid), sid);
    assert.deepEqual([idPartA(hexWord(sid, 0)), idPartB(hexWord(sid, 0), hexWord(sid, 8)), idPartC(hexWord(sid, 8))], parts(sid));
  }
  const max = TraceIdParts.ofHex('ffffffffffffffffffffffffffffffff');
  assert.deepEqual([max.a, max.b, max.c, max.d, max.e, max.f], [0xffffff, 0xffffff, 0xffff, 0xffffff, 0xffffff, 0xffff]);
});
