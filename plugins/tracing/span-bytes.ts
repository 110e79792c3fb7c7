// Encoded spans waiting for export. A span is encoded when it ends (a few hundred bytes written
// into a shared chunk) and the span objects become garbage at once: kept as objects until their
// batch was sent, every queued span, its attribute array and strings survived the young
// generation's scavenges and were promoted, and the garbage collector was the largest part of
// what 100% sampling cost (docs/tracing.md "Cost"). Bytes in a Buffer are off the JS heap.
import type { SpanRecord } from './otlp-json.ts';

/** An OTLP encoding of spans: one span at a time into a SpanBytes, the request around them. */
export interface SpanEncoding {
  /** the Content-Type of the request */
  readonly contentType: string;
  /** bytes left free in front of each batch's spans, for the request's head (0: none) */
  readonly headRoom: number;
  /** Appends one span's encoding (its `spans` field / its JSON object) to `out`. */
  append(s: SpanRecord, out: SpanBytes): void;
  /**
   * The whole ExportTraceServiceRequest around a batch: `piece` is `headRoom` free bytes, then
   * what append wrote for its spans, in order (a SpanBytes piece).
   */
  request(piece: Uint8Array): Uint8Array;
}

/** Smallest chunk (a chunk holds a batch or more; one bigger than this is allocated on demand). */
const MIN_CHUNK = 64 * 1024;

/**
 * An append-only byte buffer cut into pieces: writers `reserve` room and advance `off`; `take()`
 * returns what was written since the last take, after `gap` free bytes (room for the request's
 * head, so a batch is sent without copying it). A full chunk is replaced by a new one (the bytes
 * not taken yet move along); pieces already taken keep the old chunk alive until they are dropped.
 */
export class SpanBytes {
  buf: Buffer;
  off: number;
  private start = 0;

  constructor(
    private readonly chunkSize = MIN_CHUNK,
    private readonly gap = 0,
  ) {
    this.buf = Buffer.allocUnsafeSlow(Math.max(chunkSize, 1024, gap * 2));
    this.off = gap;
  }

  /** Room for `n` more bytes at `off`; returns the buffer to write into (it may be a new one). */
  reserve(n: number): Buffer {
    if (this.off + n <= this.buf.length) return this.buf;
    const open = this.off - this.start;
    const next = Buffer.allocUnsafeSlow(Math.max(this.chunkSize, (open + n) * 2));
    this.buf.copy(next, 0, this.start, this.off);
    this.buf = next;
    this.start = 0;
    this.off = open;
    return next;
  }

  /** The gap and the bytes written since the last take. */
  take(): Uint8Array {
    const piece = this.buf.subarray(this.start, this.off);
    this.start = this.off;
    this.reserve(this.gap);
    this.off += this.gap;
    return piece;
  }

  /** Bytes written and not taken yet. */
  get open(): number {
    return this.off - this.start - this.gap;
  }
}

/** A whole request for `spans` in `encoding` (tests, benches; the queue appends chunk by chunk). */
export function encodeRequest(encoding: SpanEncoding, spans: readonly SpanRecord[]): Uint8Array {
  const out = new SpanBytes(1024, encoding.headRoom);
  for (const s of spans) encoding.append(s, out);
  return encoding.request(out.take());
}
