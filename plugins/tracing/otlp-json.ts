// The OTLP/JSON encoding of finished spans (an ExportTraceServiceRequest, opentelemetry-proto
// 1.x JSON mapping: ids as hex, times as decimal-string nanoseconds, enums as numbers), written
// by hand: the SDK's serializer builds a full object tree per span, then JSON.stringify walks it
// (docs/architecture.md, "Tracing: our own span recorder"). Each span is written when it ends,
// into the export queue's bytes (span-bytes.ts); `protocol "http/json"` selects it, OTLP/protobuf
// (otlp-proto.ts) is the default. Checked against the test receiver's decoder
// (test/unit/tracing/otlp-json.test.ts).
import { encodeRequest, type SpanBytes, type SpanEncoding } from './span-bytes.ts';

/** One finished span as the recorder keeps it. */
export interface SpanRecord {
  readonly traceId: string;
  readonly spanId: string;
  /** '' for a root span */
  readonly parentSpanId: string;
  /** the client's `tracestate`, carried by every span of the trace */
  readonly traceState: string | undefined;
  readonly name: string;
  /** OTLP SpanKind: 1 internal, 2 server, 3 client */
  readonly kind: number;
  /** whether the parent came from another process (the client's traceparent) */
  readonly remoteParent: boolean;
  /** performance.now() values */
  readonly startMs: number;
  readonly endMs: number;
  /** key, value, key, value ... (keys unique) */
  readonly attributes: readonly AttributeValue[];
  /** status ERROR */
  readonly failed: boolean;
  /**
   * The same ids as numbers, when the recorder has them (trace-context.ts: 24, 24 and 16 bits
   * of each 8 bytes): the protobuf encoder then writes them instead of decoding the hex.
   */
  readonly traceParts?: { readonly a: number; readonly b: number; readonly c: number; readonly d: number; readonly e: number; readonly f: number };
  readonly sidA?: number;
  readonly sidB?: number;
  readonly sidC?: number;
  /** the parent's (when parentSpanId is not '') */
  readonly pidA?: number;
  readonly pidB?: number;
  readonly pidC?: number;
}

export type AttributeValue = string | number | boolean;

export type HrTime = [number, number];

// Span times are performance.now() values on top of the process's time origin, turned into wall
// clock [seconds, nanoseconds] once, at encoding: one clock for every span, so sibling spans keep
// their order (Date.now() would step by milliseconds).
const ORIGIN_S = Math.floor(performance.timeOrigin / 1000);
const ORIGIN_NS = Math.round((performance.timeOrigin - ORIGIN_S * 1000) * 1e6);

/**
 * The time origin as Unix nanoseconds in two 32-bit words (`ORIGIN_S * 1e9 + ORIGIN_NS`, exact), for
 * the protobuf encoder's fixed64 times (otlp-proto.ts writeTime).
 */
const ORIGIN_NANOS = BigInt(ORIGIN_S) * 1_000_000_000n + BigInt(ORIGIN_NS);
export const ORIGIN_NANOS_HI = Number(ORIGIN_NANOS >> 32n);
export const ORIGIN_NANOS_LO = Number(ORIGIN_NANOS & 0xffff_ffffn);

/** the nanoseconds part of the last wallSeconds() result (unixNanos needs both halves, without an array) */
let lastNanos = 0;

/** The wall-clock seconds of a performance.now() value; its nanoseconds are left for lastWallNanos(). */
export function wallSeconds(perfMs: number): number {
  const whole = Math.floor(perfMs);
  let ns = ORIGIN_NS + Math.round((perfMs - whole) * 1e6) + (whole % 1000) * 1e6;
  let s = ORIGIN_S + Math.floor(whole / 1000);
  s += Math.floor(ns / 1e9);
  ns %= 1e9;
  lastNanos = ns;
  return s;
}

/** The nanoseconds part of the last wallSeconds() result. */
export function lastWallNanos(): number {
  return lastNanos;
}

/** A performance.now() value as wall-clock [seconds, nanoseconds]. */
export function hrTime(perfMs: number): HrTime {
  const s = wallSeconds(perfMs);
  return [s, lastNanos];
}

/** A performance.now() value as OTLP's fixed64 Unix nanoseconds, in its JSON form (a decimal string). */
export function unixNanos(perfMs: number): string {
  const s = wallSeconds(perfMs);
  // 1e9 + ns has exactly ten digits: the last nine are ns zero-padded
  return `"${s}${String(1e9 + lastNanos).slice(1)}"`;
}

// OTLP span flags: the low byte is the W3C trace flags (sampled), bit 8 says whether bit 9 (the
// parent is remote) is known.
const FLAGS_LOCAL_PARENT = 0x101;
const FLAGS_REMOTE_PARENT = 0x301;

const COMMA = 44;
// the JSON caches: at most this many attribute names, values per name, span names, characters a
// value or name
const MAX_CACHED_NAMES = 100;
const MAX_CACHED_VALUES = 256;
const MAX_CACHED_SPAN_NAMES = 256;
const MAX_CACHED_LENGTH = 128;
/** text that UTF-8 would write differently from Latin-1 */
const NON_ASCII = /[^\x00-\x7f]/;

function anyValue(v: AttributeValue): string {
  switch (typeof v) {
    case 'string':
      return `{"stringValue":${JSON.stringify(v)}}`;
    case 'boolean':
      return v ? '{"boolValue":true}' : '{"boolValue":false}';
    default:
      if (Number.isInteger(v)) return `{"intValue":${v}}`;
      // proto3 JSON spells the non-finite doubles as strings
      return Number.isFinite(v) ? `{"doubleValue":${v}}` : `{"doubleValue":"${v}"}`;
  }
}

const TAIL = Buffer.from(']}]}]}');

export class OtlpJsonEncoder implements SpanEncoding {
  private readonly headBytes: Buffer;
  /** attribute name -> value -> its KeyValue JSON, ASCII only (bounded, see attribute()) */
  private readonly pairs = new Map<string, Map<AttributeValue, string>>();
  /** span name -> its JSON string, ASCII only (bounded) */
  private readonly names = new Map<string, string>();
  /** set while a span is built when some of its text is not ASCII (it is then written as UTF-8) */
  private wide = false;

  constructor(resource: Readonly<Record<string, AttributeValue>>, scope: { name: string; version: string }) {
    const attrs = Object.entries(resource).flat();
    this.headBytes = Buffer.from(`{"resourceSpans":[{"resource":{"attributes":${this.attributes(attrs)}},"scopeSpans":[{"scope":{"name":${JSON.stringify(scope.name)},"version":${JSON.stringify(scope.version)}},"spans":[`);
  }

  readonly contentType = 'application/json';
  readonly headRoom = 0;

  /**
   * One span's JSON object, after a comma, into the export queue's bytes (SpanBytes). A span whose
   * text is all ASCII (nearly all of them: ids, numbers, the cached pieces) is copied as Latin-1,
   * the same bytes as UTF-8 for ASCII without V8's per-character UTF-8 encoder. (Concatenating a
   * whole batch into one string and converting that cost about three times as much: V8 flattens
   * a rope of thousands of pieces.)
   */
  append(s: SpanRecord, out: SpanBytes): void {
    const json = this.span(s);
    // a UTF-16 code unit is at most 3 bytes of UTF-8; +1 for the comma
    const buf = out.reserve(json.length * 3 + 1);
    buf[out.off] = COMMA;
    out.off += 1 + buf.write(json, out.off + 1, this.wide ? 'utf8' : 'latin1');
  }

  /** The ExportTraceServiceRequest around spans appended by `append` (each after a comma). */
  request(spans: Uint8Array): Uint8Array {
    return Buffer.concat([this.headBytes, spans.subarray(1), TAIL]);
  }

  /** One ExportTraceServiceRequest holding `spans` (tests and benches). */
  encode(spans: readonly SpanRecord[]): Uint8Array {
    return encodeRequest(this, spans);
  }

  /** One span's JSON; sets `wide` when it holds text that is not ASCII. */
  private span(s: SpanRecord): string {
    this.wide = false;
    // ids are hex: from trace-context.ts, or a traceparent parseTraceparent validated
    let out = `{"traceId":"${s.traceId}","spanId":"${s.spanId}"`;
    if (s.parentSpanId !== '') out += `,"parentSpanId":"${s.parentSpanId}"`;
    if (s.traceState !== undefined) out += `,"traceState":${this.checked(JSON.stringify(s.traceState))}`;
    out += `,"flags":${s.remoteParent ? FLAGS_REMOTE_PARENT : FLAGS_LOCAL_PARENT},"name":${this.name(s.name)},"kind":${s.kind},"startTimeUnixNano":${unixNanos(s.startMs)},"endTimeUnixNano":${unixNanos(s.endMs)},"attributes":${this.attributes(s.attributes)}`;
    if (s.failed) out += ',"status":{"code":2}';
    return `${out}}`;
  }

  /** `json`, noting whether it is ASCII. */
  private checked(json: string): string {
    if (!this.wide && NON_ASCII.test(json)) this.wide = true;
    return json;
  }

  /** Span names are few (routes, filters, methods): each one's JSON is kept, bounded. */
  private name(name: string): string {
    let json = this.names.get(name);
    if (json === undefined) {
      json = this.checked(JSON.stringify(name));
      if (this.names.size < MAX_CACHED_SPAN_NAMES && name.length <= MAX_CACHED_LENGTH && !NON_ASCII.test(json)) this.names.set(name, json);
    }
    return json;
  }

  private attributes(kv: readonly AttributeValue[]): string {
    let out = '[';
    for (let i = 0; i < kv.length; i += 2) {
      if (i > 0) out += ',';
      out += this.attribute(kv[i] as string, kv[i + 1]!);
    }
    return `${out}]`;
  }

  /**
   * One KeyValue. Most attribute values repeat from request to request (method, scheme, route,
   * upstream, status, addresses): their JSON is kept per attribute name, a bounded number of
   * short values each, so a repeated pair is one string instead of a JSON.stringify and four pieces.
   */
  private attribute(name: string, value: AttributeValue): string {
    let values = this.pairs.get(name);
    if (values === undefined) {
      values = new Map();
      if (this.pairs.size < MAX_CACHED_NAMES) this.pairs.set(name, values);
    }
    let json = values.get(value);
    if (json === undefined) {
      json = `{"key":${JSON.stringify(name)},"value":${anyValue(value)}}`;
      if (NON_ASCII.test(json)) this.wide = true;
      else if (values.size < MAX_CACHED_VALUES && (typeof value !== 'string' || value.length <= MAX_CACHED_LENGTH)) values.set(value, json);
    }
    return json;
  }
}
