// A finished span as the recorder hands it to the encoders, and exact nanosecond times, shared by
// the OTLP/JSON and OTLP/protobuf encoder tests.
import { hrTime, type SpanRecord } from '../../../plugins/tracing/otlp-json.ts';

/** A performance.now() value as the exact Unix nanoseconds the encoders must write. */
export const nanos = (perfMs: number): bigint => {
  const [s, ns] = hrTime(perfMs);
  return BigInt(s) * 1_000_000_000n + BigInt(ns);
};

export function span(over: Partial<SpanRecord>): SpanRecord {
  return {
    traceId: '4bf92f3577b34da6a3ce929d0e0e4736',
    spanId: '00f067aa0ba902b7',
    parentSpanId: '',
    traceState: undefined,
    name: 'GET',
    kind: 2,
    remoteParent: false,
    startMs: 1000.25,
    endMs: 1003.125,
    attributes: [],
    failed: false,
    ...over,
  };
}
