// The OTLP/protobuf encoding of finished spans (opentelemetry-proto 1.x, trace/v1 and
// collector/trace/v1), written by hand straight into the export queue's bytes: about a third
// of the bytes of OTLP/JSON and no intermediate strings. The default encoding of the OTLP/HTTP
// exporter (Content-Type application/x-protobuf); OTLP/JSON (otlp-json.ts) stays as
// `protocol "http/json"`. Checked against the protobuf decoder of the test receiver
// (test/unit/tracing/otlp-proto.test.ts).
import { ORIGIN_NANOS_HI, ORIGIN_NANOS_LO, type AttributeValue, type SpanRecord } from './otlp-json.ts';
import type { SpanBytes, SpanEncoding } from './span-bytes.ts';

// wire types: 0 varint, 1 fixed64, 2 length-delimited, 5 fixed32; a tag is (field << 3) | wire type
const T_TRACE_ID = 0x0a; // Span.trace_id = 1 (bytes)
const T_SPAN_ID = 0x12; // Span.span_id = 2
const T_TRACE_STATE = 0x1a; // Span.trace_state = 3 (string)
const T_PARENT_SPAN_ID = 0x22; // Span.parent_span_id = 4
const T_NAME = 0x2a; // Span.name = 5
const T_KIND = 0x30; // Span.kind = 6 (enum)
const T_START = 0x39; // Span.start_time_unix_nano = 7 (fixed64)
const T_END = 0x41; // Span.end_time_unix_nano = 8 (fixed64)
const T_ATTRIBUTE = 0x4a; // Span.attributes = 9 (KeyValue)
const T_STATUS = 0x7a; // Span.status = 15 (Status)
// Span.flags = 16 (fixed32): tag 133 as a varint
const T_FLAGS_0 = 0x85;
const T_FLAGS_1 = 0x01;
const STATUS_ERROR = [0x18, 0x02]; // Status.code = 3: STATUS_CODE_ERROR (2)
const T_KEY = 0x0a; // KeyValue.key = 1
const T_VALUE = 0x12; // KeyValue.value = 2 (AnyValue)
const T_STRING = 0x0a; // AnyValue.string_value = 1
const T_BOOL = 0x10; // AnyValue.bool_value = 2
const T_INT = 0x18; // AnyValue.int_value = 3 (int64)
const T_DOUBLE = 0x21; // AnyValue.double_value = 4 (double)
const T_SPAN = 0x12; // ScopeSpans.spans = 2
const T_SCOPE = 0x0a; // ScopeSpans.scope = 1; InstrumentationScope.name = 1
const T_SCOPE_VERSION = 0x12; // InstrumentationScope.version = 2
const T_RESOURCE = 0x0a; // ResourceSpans.resource = 1; Resource.attributes = 1
const T_SCOPE_SPANS = 0x12; // ResourceSpans.scope_spans = 2
const T_RESOURCE_SPANS = 0x0a; // ExportTraceServiceRequest.resource_spans = 1

// OTLP span flags, as in otlp-json.ts: W3C flags (sampled) | parent-is-remote known | remote
const FLAGS_LOCAL_PARENT = 0x101;
const FLAGS_REMOTE_PARENT = 0x301;
/** both flags' low byte (sampled) */
const FLAGS_LOW = FLAGS_LOCAL_PARENT & 0xff;

/** Room for the fixed part of a span: tags, ids, lengths, kind, times, flags, status. */
const SPAN_FIXED_BYTES = 98;
/** Per attribute beyond its text: tags, lengths, a number. */
const ATTRIBUTE_FIXED_BYTES = 32;
const MAX_CACHED_NAMES = 100;
const MAX_CACHED_VALUES = 256;
const MAX_CACHED_LENGTH = 128;

function varintSize(n: number): number {
  let size = 1;
  while (n >= 0x80) {
    n = Math.floor(n / 0x80);
    size++;
  }
  return size;
}

/** Writes a non-negative integer below 2^53 as a varint; returns the offset after it. */
function writeVarint(buf: Uint8Array, off: number, n: number): number {
  while (n >= 0x80) {
    buf[off++] = (n & 0x7f) | 0x80;
    n = Math.floor(n / 0x80);
  }
  buf[off++] = n;
  return off;
}

/** An int64 varint: negative numbers are 10 bytes of two's complement. */
function writeInt64(buf: Uint8Array, off: number, n: number): number {
  if (n >= 0 && n <= Number.MAX_SAFE_INTEGER) return writeVarint(buf, off, n);
  let u = BigInt.asUintN(64, BigInt(n));
  while (u >= 0x80n) {
    buf[off++] = Number(u & 0x7fn) | 0x80;
    u >>= 7n;
  }
  buf[off++] = Number(u);
  return off;
}

/** The length of the body [at, end) written at `lenAt` (reserved: 1 byte), moving the body if it needs more. */
function closeLength(buf: Buffer, lenAt: number, at: number, end: number): number {
  const len = end - at;
  if (len < 0x80) {
    buf[lenAt] = len;
    return end;
  }
  const extra = varintSize(len) - 1;
  buf.copyWithin(at + extra, at, end);
  writeVarint(buf, lenAt, len);
  return end + extra;
}

/** Strings up to this long are copied by a JavaScript loop while they are ASCII. */
const SHORT_STRING = 64;

/**
 * A string field (UTF-8). A short ASCII string is copied character by character: for the
 * strings of a span (names, paths, addresses) that is cheaper than a call into Buffer#write,
 * which a --cpu-prof of the recorder put at ~15% of the encoding with the hex ids.
 */
function writeString(buf: Buffer, off: number, tag: number, s: string): number {
  buf[off] = tag;
  const at = off + 2;
  const n = s.length;
  if (n <= SHORT_STRING) {
    let i = 0;
    for (; i < n; i++) {
      const c = s.charCodeAt(i);
      if (c >= 0x80) break;
      buf[at + i] = c;
    }
    if (i === n) {
      buf[off + 1] = n;
      return at + n;
    }
  }
  return closeLength(buf, off + 1, at, at + buf.write(s, at, 'utf8'));
}

/** hex digit (char code) -> value; 0 for anything else (ids are validated hex before they get here) */
const HEX = new Uint8Array(128);
for (let i = 0; i < 10; i++) HEX[48 + i] = i;
for (let i = 0; i < 6; i++) HEX[97 + i] = HEX[65 + i] = 10 + i;

/** A hex id as `bytes` bytes (a trace or span id), decoded in JavaScript: cheaper than Buffer#write(…, 'hex') for 8 or 16 bytes. */
function writeHexId(buf: Uint8Array, off: number, hex: string, bytes: number): void {
  for (let i = 0; i < bytes; i++) buf[off + i] = (HEX[hex.charCodeAt(2 * i) & 0x7f]! << 4) | HEX[hex.charCodeAt(2 * i + 1) & 0x7f]!;
}

/** An 8-byte id given as its 24-, 24- and 16-bit parts (trace-context.ts idPartA/B/C). */
function writeIdParts(buf: Uint8Array, off: number, a: number, b: number, c: number): void {
  buf[off] = a >>> 16;
  buf[off + 1] = (a >>> 8) & 0xff;
  buf[off + 2] = a & 0xff;
  buf[off + 3] = b >>> 16;
  buf[off + 4] = (b >>> 8) & 0xff;
  buf[off + 5] = b & 0xff;
  buf[off + 6] = c >>> 8;
  buf[off + 7] = c & 0xff;
}

/**
 * A fixed64 Unix-nanosecond time of a performance.now() value, exact (the same integer as
 * otlp-json.ts hrTime): the time origin's two 32-bit words plus the value's nanoseconds, summed in
 * 32-bit halves with every partial result below 2^53. Only multiplications by powers of two and
 * floors: the seconds-and-nanoseconds form (wallSeconds) took five floating-point remainders a time,
 * and a span writes two times.
 */
function writeTime(buf: Buffer, off: number, tag: number, perfMs: number): number {
  const whole = Math.floor(perfMs);
  const fracNs = Math.round((perfMs - whole) * 1e6);
  // whole * 1e6 = wh * 1e6 * 2^16 + wl * 1e6, and wh * 1e6 * 2^16 = xh * 2^32 + xl * 2^16
  const wh = Math.floor(whole / 0x10000);
  const wl = whole - wh * 0x10000;
  const x = wh * 1e6;
  const xh = Math.floor(x / 0x10000);
  const xl = x - xh * 0x10000;
  let lo = ORIGIN_NANOS_LO + xl * 0x10000 + wl * 1e6 + fracNs;
  const carry = Math.floor(lo / 0x1_0000_0000);
  lo -= carry * 0x1_0000_0000;
  const hi = ORIGIN_NANOS_HI + xh + carry;
  buf[off] = tag;
  buf[off + 1] = lo & 0xff;
  buf[off + 2] = (lo >>> 8) & 0xff;
  buf[off + 3] = (lo >>> 16) & 0xff;
  buf[off + 4] = lo >>> 24;
  buf[off + 5] = hi & 0xff;
  buf[off + 6] = (hi >>> 8) & 0xff;
  buf[off + 7] = (hi >>> 16) & 0xff;
  buf[off + 8] = hi >>> 24;
  return off + 9;
}

/** One AnyValue's body. */
function writeAnyValue(buf: Buffer, off: number, v: AttributeValue): number {
  switch (typeof v) {
    case 'string':
      return writeString(buf, off, T_STRING, v);
    case 'boolean':
      buf[off] = T_BOOL;
      buf[off + 1] = v ? 1 : 0;
      return off + 2;
    default:
      if (Number.isSafeInteger(v)) {
        buf[off] = T_INT;
        return writeInt64(buf, off + 1, v);
      }
      buf[off] = T_DOUBLE;
      buf.writeDoubleLE(v, off + 1);
      return off + 9;
  }
}

/** One KeyValue field (`tag`: the field it is in). */
function writeKeyValue(buf: Buffer, off: number, tag: number, key: string, v: AttributeValue): number {
  buf[off] = tag;
  const at = off + 2;
  const valueTag = writeString(buf, at, T_KEY, key);
  buf[valueTag] = T_VALUE;
  const end = closeLength(buf, valueTag + 1, valueTag + 2, writeAnyValue(buf, valueTag + 2, v));
  return closeLength(buf, off + 1, at, end);
}

function textBytes(v: AttributeValue): number {
  return typeof v === 'string' ? v.length * 3 : 0;
}

/**
 * The attributes of the last span of a kind whose run was kept (see append): the span's own array
 * (a span is not changed after it ends), their encoded KeyValue fields one after the other, and
 * where each attribute's ends in them.
 */
interface AttributeRun {
  readonly attributes: readonly AttributeValue[];
  readonly bytes: Uint8Array;
  readonly ends: Int32Array;
}

/** How many leading entries of `attrs` (whole pairs) equal those of `prev`. */
function matching(prev: readonly AttributeValue[], attrs: readonly AttributeValue[]): number {
  const m = Math.min(prev.length, attrs.length);
  let i = 0;
  while (i < m && prev[i] === attrs[i] && prev[i + 1] === attrs[i + 1]) i += 2;
  return i;
}

/** A run longer than this is not kept (a long user agent or path). */
const MAX_RUN_BYTES = 1024;

/** One attribute name's encoded KeyValue fields: by value, and the last one used. */
interface PairCache {
  lastValue: AttributeValue | undefined;
  lastBytes: Uint8Array | undefined;
  readonly values: Map<AttributeValue, Uint8Array>;
}

export class OtlpProtoEncoder implements SpanEncoding {
  readonly contentType = 'application/x-protobuf';
  /** room for the request's head in front of each batch: resource, scope, two tags, two lengths */
  readonly headRoom: number;
  /** ResourceSpans.resource and ScopeSpans.scope, encoded once */
  private readonly resource: Buffer;
  private readonly scope: Buffer;
  /** attribute name -> its encoded KeyValue fields by value (bounded, like the JSON encoder's cache) */
  private readonly pairs = new Map<string, PairCache>();
  /** by span kind: the attributes of the last span of that kind whose run was kept */
  private readonly runs: (AttributeRun | undefined)[] = [undefined, undefined, undefined, undefined, undefined, undefined];
  /** where each attribute of the span being encoded ends, from its first attribute (grown on demand) */
  private ends = new Int32Array(32);
  /** by span kind: the bytes of the last span's length (1 or 2) */
  private readonly lengthBytes = new Uint8Array(6).fill(2);

  constructor(resource: Readonly<Record<string, AttributeValue>>, scope: { name: string; version: string }) {
    const attrs = Object.entries(resource);
    let size = 16 + scope.name.length * 3 + scope.version.length * 3;
    for (const [k, v] of attrs) size += ATTRIBUTE_FIXED_BYTES + k.length * 3 + textBytes(v);
    const tmp = Buffer.alloc(size * 2);
    // ResourceSpans.resource: a Resource of KeyValues
    tmp[0] = T_RESOURCE;
    let at = 2;
    for (const [k, v] of attrs) at = writeKeyValue(tmp, at, T_RESOURCE, k, v);
    this.resource = Buffer.from(tmp.subarray(0, closeLength(tmp, 1, 2, at)));
    // ScopeSpans.scope: an InstrumentationScope
    tmp[0] = T_SCOPE;
    at = writeString(tmp, writeString(tmp, 2, T_SCOPE, scope.name), T_SCOPE_VERSION, scope.version);
    this.scope = Buffer.from(tmp.subarray(0, closeLength(tmp, 1, 2, at)));
    this.headRoom = this.resource.length + this.scope.length + 12;
  }

  append(s: SpanRecord, out: SpanBytes): void {
    const attrs = s.attributes;
    const kind = s.kind;
    const known = kind < this.runs.length;
    const run = known ? this.runs[kind] : undefined;
    // attributes [0, matched) are the run's (its bytes are copied whole: room for all of them)
    const matched = run === undefined ? 0 : matching(run.attributes, attrs);
    let room = SPAN_FIXED_BYTES + s.name.length * 3 + (s.traceState === undefined ? 0 : s.traceState.length * 3) + (run === undefined ? 0 : run.bytes.length);
    for (let i = matched; i < attrs.length; i += 2) room += ATTRIBUTE_FIXED_BYTES + (attrs[i] as string).length * 3 + textBytes(attrs[i + 1]!);
    const buf = out.reserve(room);
    const start = out.off;
    buf[start] = T_SPAN;
    // the span's length goes in front of it: as many bytes as the kind's last span needed (1 or
    // 2), so that the body is moved only when that guess was wrong (closeLength moved every span
    // of 128 bytes or more by a byte: a TypedArray#copyWithin of the whole span)
    const lenBytes = known ? this.lengthBytes[kind]! : 1;
    const at = start + 1 + lenBytes;
    // ids: the recorder's numbers, or hex (trace-context.ts, or a traceparent parseTraceparent validated): 16 and 8 bytes
    buf[at] = T_TRACE_ID;
    buf[at + 1] = 16;
    buf[at + 18] = T_SPAN_ID;
    buf[at + 19] = 8;
    let off = at + 28;
    const t = s.traceParts;
    if (t !== undefined) {
      writeIdParts(buf, at + 2, t.a, t.b, t.c);
      writeIdParts(buf, at + 10, t.d, t.e, t.f);
      writeIdParts(buf, at + 20, s.sidA!, s.sidB!, s.sidC!);
      if (s.parentSpanId !== '') {
        buf[off] = T_PARENT_SPAN_ID;
        buf[off + 1] = 8;
        writeIdParts(buf, off + 2, s.pidA!, s.pidB!, s.pidC!);
        off += 10;
      }
    } else {
      writeHexId(buf, at + 2, s.traceId, 16);
      writeHexId(buf, at + 20, s.spanId, 8);
      if (s.parentSpanId !== '') {
        buf[off] = T_PARENT_SPAN_ID;
        buf[off + 1] = 8;
        writeHexId(buf, off + 2, s.parentSpanId, 8);
        off += 10;
      }
    }
    if (s.traceState !== undefined) off = writeString(buf, off, T_TRACE_STATE, s.traceState);
    // the flags word, little-endian: 0x101 or 0x301 (its two high bytes are 0)
    buf[off] = T_FLAGS_0;
    buf[off + 1] = T_FLAGS_1;
    buf[off + 2] = FLAGS_LOW;
    buf[off + 3] = s.remoteParent ? FLAGS_REMOTE_PARENT >>> 8 : FLAGS_LOCAL_PARENT >>> 8;
    buf[off + 4] = 0;
    buf[off + 5] = 0;
    off = writeString(buf, off + 6, T_NAME, s.name);
    buf[off] = T_KIND;
    buf[off + 1] = s.kind;
    off = writeTime(buf, off + 2, T_START, s.startMs);
    off = writeTime(buf, off, T_END, s.endMs);
    off = this.attributes(buf, off, attrs, kind, run, matched);
    if (s.failed) {
      buf[off] = T_STATUS;
      buf[off + 1] = STATUS_ERROR.length;
      buf[off + 2] = STATUS_ERROR[0]!;
      buf[off + 3] = STATUS_ERROR[1]!;
      off += 4;
    }
    const len = off - at;
    const need = len < 0x80 ? 1 : len < 0x4000 ? 2 : varintSize(len);
    if (need === lenBytes) {
      if (need === 1) buf[start + 1] = len;
      else {
        buf[start + 1] = (len & 0x7f) | 0x80;
        buf[start + 2] = len >>> 7;
      }
      out.off = off;
    } else {
      buf.copyWithin(start + 1 + need, at, off);
      writeVarint(buf, start + 1, len);
      out.off = start + 1 + need + len;
    }
    if (known) this.lengthBytes[kind] = need === 1 ? 1 : 2;
  }

  /**
   * A span's attributes. Spans of one kind mostly repeat the previous one's attributes, in the
   * same order, for as many as stay the same (method, scheme, host, route, upstream, status): the
   * leading pairs equal (===) to those of the kind's kept run are one copy of the run's bytes (the
   * whole run, its tail then overwritten), the rest go one by one. A copy of the cached KeyValue
   * and the lookup of its name was ~400 instructions an attribute (docs/tracing.md "Session 23").
   * The run is replaced when less than half of a span's attributes matched it.
   */
  private attributes(buf: Buffer, off: number, attrs: readonly AttributeValue[], kind: number, run: AttributeRun | undefined, i: number): number {
    const start = off;
    const n = attrs.length;
    let ends = this.ends;
    if (ends.length < n >> 1) ends = this.ends = new Int32Array(n);
    if (i > 0) {
      buf.set(run!.bytes, off);
      const runEnds = run!.ends;
      for (let k = 0; k < i >> 1; k++) ends[k] = runEnds[k]!;
      off += runEnds[(i >> 1) - 1]!;
    }
    for (let j = i; j < n; j += 2) {
      off = this.attribute(buf, off, attrs[j] as string, attrs[j + 1]!);
      ends[j >> 1] = off - start;
    }
    if (i * 2 < n && off - start <= MAX_RUN_BYTES && kind < this.runs.length) {
      this.runs[kind] = { attributes: attrs, bytes: Uint8Array.prototype.slice.call(buf, start, off), ends: ends.slice(0, n >> 1) };
    }
    return off;
  }

  /**
   * One attribute. Most values repeat from request to request (method, scheme, route, upstream,
   * status, addresses): their encoded KeyValue is kept per name, a bounded number of short values
   * each, and copied.
   */
  private attribute(buf: Buffer, off: number, name: string, value: AttributeValue): number {
    let entry = this.pairs.get(name);
    if (entry === undefined) {
      entry = { lastValue: undefined, lastBytes: undefined, values: new Map() };
      if (this.pairs.size < MAX_CACHED_NAMES) this.pairs.set(name, entry);
    }
    // the value of the name's previous span first: most repeat it (one Map lookup instead of two)
    let cached = entry.lastValue === value ? entry.lastBytes : entry.values.get(value);
    if (cached !== undefined) {
      entry.lastValue = value;
      entry.lastBytes = cached;
      buf.set(cached, off);
      return off + cached.length;
    }
    const end = writeKeyValue(buf, off, T_ATTRIBUTE, name, value);
    if (entry.values.size < MAX_CACHED_VALUES && (typeof value !== 'string' || value.length <= MAX_CACHED_LENGTH)) {
      cached = Uint8Array.prototype.slice.call(buf, off, end);
      entry.values.set(value, cached);
      entry.lastValue = value;
      entry.lastBytes = cached;
    }
    return end;
  }

  /** The request's head written into the room in front of the spans: the batch is not copied. */
  request(piece: Uint8Array): Uint8Array {
    const spansLength = piece.length - this.headRoom;
    const scopeSpans = this.scope.length + spansLength;
    const resourceSpans = this.resource.length + 1 + varintSize(scopeSpans) + scopeSpans;
    const headLength = 1 + varintSize(resourceSpans) + this.resource.length + 1 + varintSize(scopeSpans) + this.scope.length;
    const body = Buffer.from(piece.buffer, piece.byteOffset + this.headRoom - headLength, headLength + spansLength);
    body[0] = T_RESOURCE_SPANS;
    let off = writeVarint(body, 1, resourceSpans);
    off += this.resource.copy(body, off);
    body[off++] = T_SCOPE_SPANS;
    off = writeVarint(body, off, scopeSpans);
    this.scope.copy(body, off);
    return body;
  }
}

/**
 * The collector's answer (ExportTraceServiceResponse): its partial_success (field 1) as
 * rejected_spans (1) and error_message (2), or undefined for an empty answer.
 */
export function decodeExportResponse(data: Uint8Array): { rejectedSpans: number; errorMessage: string } | undefined {
  const r = new ProtoReader(data);
  let out: { rejectedSpans: number; errorMessage: string } | undefined;
  while (r.more()) {
    const tag = r.varint();
    if (tag !== 0x0a) {
      r.skip(tag & 7);
      continue;
    }
    const inner = new ProtoReader(r.bytes());
    out = { rejectedSpans: 0, errorMessage: '' };
    while (inner.more()) {
      const t = inner.varint();
      if (t === 0x08) out.rejectedSpans = inner.varint();
      else if (t === 0x12) out.errorMessage = Buffer.from(inner.bytes()).toString('utf8');
      else inner.skip(t & 7);
    }
  }
  return out;
}

/** A minimal protobuf reader (varints below 2^53, length-delimited fields, skipping). */
export class ProtoReader {
  private off = 0;
  constructor(private readonly buf: Uint8Array) {}
  more(): boolean {
    return this.off < this.buf.length;
  }
  varint(): number {
    let n = 0;
    let mul = 1;
    for (;;) {
      if (this.off >= this.buf.length) throw new Error('protobuf: truncated varint');
      const b = this.buf[this.off++]!;
      n += (b & 0x7f) * mul;
      if (b < 0x80) return n;
      mul *= 0x80;
      if (mul > 2 ** 63) throw new Error('protobuf: varint too long');
    }
  }
  bytes(): Uint8Array {
    const len = this.varint();
    if (this.off + len > this.buf.length) throw new Error('protobuf: truncated field');
    const b = this.buf.subarray(this.off, this.off + len);
    this.off += len;
    return b;
  }
  fixed(size: 4 | 8): Uint8Array {
    if (this.off + size > this.buf.length) throw new Error('protobuf: truncated field');
    const b = this.buf.subarray(this.off, this.off + size);
    this.off += size;
    return b;
  }
  skip(wireType: number): void {
    if (wireType === 0) this.varint();
    else if (wireType === 1) this.fixed(8);
    else if (wireType === 2) this.bytes();
    else if (wireType === 5) this.fixed(4);
    else throw new Error(`protobuf: unsupported wire type ${wireType}`);
  }
}
