// Finished spans on their way to the collector: a bounded queue of encoded spans (each span is
// encoded when it ends, span-bytes.ts), batches sent one at a time from a timer (or from
// setImmediate once a batch is full), never from inside a request. The encodings are ours
// (otlp-proto.ts, otlp-json.ts); the HTTP side is the OpenTelemetry OTLP/HTTP export delegate
// (@opentelemetry/otlp-exporter-base: retries, timeouts, OTEL_EXPORTER_OTLP_* headers,
// certificates and compression), the same transport OTLPTraceExporter uses.
import { ExportResultCode, type ExportResult } from '@opentelemetry/core';
import { convertLegacyHttpOptions, createOtlpHttpExportDelegate } from '@opentelemetry/otlp-exporter-base/node-http';
import type { SpanRecord } from './otlp-json.ts';
import { decodeExportResponse } from './otlp-proto.ts';
import { SpanBytes, type SpanEncoding } from './span-bytes.ts';

/** What the exporter side reports (the plugin turns it into Prometheus counters). */
export interface ExportEvents {
  exported(spans: number): void;
  dropped(spans: number, reason: DropReason): void;
}

/**
 * Why spans were lost: `queue_full` (the bounded queue was full), `closed` (the span ended after
 * its generation's queue was closed), `encode_failed` (the encoding threw: a bug, never a request
 * failure), `export_failed` (the collector refused, failed or timed out).
 */
export type DropReason = 'queue_full' | 'closed' | 'encode_failed' | 'export_failed';

export interface ExportSettings {
  readonly url: string;
  readonly maxQueueSize: number;
  readonly maxExportBatchSize: number;
  readonly scheduledDelayMs: number;
  readonly exportTimeoutMs: number;
}

/** One export request: the encoded ExportTraceServiceRequest and how many spans it holds. */
export interface SpanBatch {
  readonly body: Uint8Array;
  readonly spans: number;
}

/** Sends one batch; calls back once with the result (the OTLP export delegate's contract). */
export type SendBatch = (batch: SpanBatch, done: (result: ExportResult) => void) => void;

/** The OTLP/HTTP sender: the encoded batch on the OpenTelemetry HTTP transport. */
export function otlpHttpSender(settings: ExportSettings, contentType: string): { send: SendBatch; shutdown(): Promise<void> } {
  const batch = Math.min(settings.maxExportBatchSize, settings.maxQueueSize);
  const delegate = createOtlpHttpExportDelegate(
    convertLegacyHttpOptions(
      {
        url: settings.url,
        timeoutMillis: settings.exportTimeoutMs,
        // In steady state one batch is out at a time; a flush (reload, shutdown) sends the whole
        // queue at once, which must not be refused by the delegate's own limit. Bounded either
        // way by the queue.
        concurrencyLimit: Math.ceil(settings.maxQueueSize / batch) + 1,
      },
      'TRACES',
      'v1/traces',
      { 'Content-Type': contentType },
    ),
    {
      serializeRequest: (batch: SpanBatch) => batch.body,
      // the collector's answer (partial success) is only logged by the delegate
      deserializeResponse: (data: Uint8Array): object => {
        if (data.length === 0) return {};
        if (contentType === 'application/json') return JSON.parse(Buffer.from(data).toString('utf8')) as object;
        try {
          const partial = decodeExportResponse(data);
          return partial ? { partialSuccess: partial } : {};
        } catch {
          return {}; // the spans were accepted (2xx); an unreadable answer changes nothing
        }
      },
    },
    'otlp_http_span_exporter',
    { name: 'span', countItems: (batch: SpanBatch) => batch.spans },
    undefined,
  );
  return { send: (batch, done) => delegate.export(batch, done), shutdown: () => delegate.shutdown() };
}

/**
 * The bounded export queue (what the SDK's BatchSpanProcessor does, without its per-span work):
 * `add` encodes the span into the queue's bytes, or drops it (counted as `queue_full`) once
 * `maxQueueSize` spans wait (`closed` after close(), `encode_failed` if the encoding throws). Full batches are cut as they fill; the request around a batch is
 * built when it is sent.
 */
export class SpanExportQueue {
  private readonly bytes: SpanBytes;
  /** full batches of encoded spans, oldest first */
  private full: SpanBatch[] = [];
  /** spans in `bytes` not cut into a batch yet */
  private open = 0;
  /** every span waiting */
  private queued = 0;
  private readonly batchSize: number;
  private timer: NodeJS.Timeout | undefined;
  private immediate: NodeJS.Immediate | undefined;
  /** the batch being sent in steady state (one at a time) */
  private inFlight: Promise<void> | undefined;
  /** drops not reported yet, by reason (reported together, after the request) */
  private droppedFull = 0;
  private droppedClosed = 0;
  private droppedEncode = 0;
  private dropReport: NodeJS.Immediate | undefined;
  private closed = false;

  constructor(
    private readonly settings: ExportSettings,
    private readonly encoding: SpanEncoding,
    private readonly send: SendBatch,
    private readonly events: ExportEvents,
  ) {
    this.batchSize = Math.min(settings.maxExportBatchSize, settings.maxQueueSize);
    // a chunk holds about a batch (~300 bytes a span in protobuf, ~600 in JSON)
    this.bytes = new SpanBytes(Math.min(4 << 20, this.batchSize * 768), encoding.headRoom);
  }

  /**
   * A finished span (called at span end, on the request path: one span's encoding, a few hundred
   * bytes; no I/O here). The span object is not kept.
   */
  add(span: SpanRecord): void {
    if (this.closed) {
      this.droppedClosed++;
      this.reportDropsSoon();
      return;
    }
    if (this.queued >= this.settings.maxQueueSize) {
      this.droppedFull++;
      this.reportDropsSoon();
      return;
    }
    try {
      this.encoding.append(span, this.bytes);
    } catch {
      // never fails a request (the bytes written so far are not counted: `off` moves on success)
      this.droppedEncode++;
      this.reportDropsSoon();
      return;
    }
    this.queued++;
    if (++this.open >= this.batchSize) {
      this.full.push({ body: this.bytes.take(), spans: this.open });
      this.open = 0;
    }
    if (this.inFlight !== undefined) return; // its completion schedules the next batch
    if (this.full.length > 0) this.exportSoon();
    else this.timer ??= setTimeout(this.onTimer, this.settings.scheduledDelayMs).unref();
  }

  /** drops are reported in a batch, after the request */
  private reportDropsSoon(): void {
    this.dropReport ??= setImmediate(this.reportDrops);
  }

  /** Spans waiting (tests and the status of a flush). */
  get pending(): number {
    return this.queued;
  }

  private readonly reportDrops = (): void => {
    clearImmediate(this.dropReport);
    this.dropReport = undefined;
    const full = this.droppedFull;
    const closed = this.droppedClosed;
    const encode = this.droppedEncode;
    this.droppedFull = this.droppedClosed = this.droppedEncode = 0;
    if (full > 0) this.events.dropped(full, 'queue_full');
    if (closed > 0) this.events.dropped(closed, 'closed');
    if (encode > 0) this.events.dropped(encode, 'encode_failed');
  };

  private exportSoon(): void {
    this.immediate ??= setImmediate(this.onTimer);
  }

  private readonly onTimer = (): void => {
    clearTimeout(this.timer);
    clearImmediate(this.immediate);
    this.timer = undefined;
    this.immediate = undefined;
    if (this.inFlight !== undefined || this.queued === 0) return;
    this.inFlight = this.exportBatch(this.take()).finally(() => {
      this.inFlight = undefined;
      if (this.closed) return;
      if (this.full.length > 0) this.exportSoon();
      else if (this.queued > 0) this.timer ??= setTimeout(this.onTimer, this.settings.scheduledDelayMs).unref();
    });
  };

  /** The oldest batch, out of the queue, as a whole export request. */
  private take(): SpanBatch {
    let spans = this.full.shift();
    if (spans === undefined) {
      spans = { body: this.bytes.take(), spans: this.open };
      this.open = 0;
    }
    this.queued -= spans.spans;
    return { body: this.encoding.request(spans.body), spans: spans.spans };
  }

  /**
   * One batch to the collector, counted as exported or failed. A guard a second after the export
   * timeout settles it even if the transport never calls back, so a wedged export cannot stop
   * the queue for good.
   */
  private exportBatch(batch: SpanBatch): Promise<void> {
    return new Promise<void>((resolve) => {
      let settled = false;
      const settle = (ok: boolean) => {
        if (settled) return;
        settled = true;
        clearTimeout(guard);
        if (ok) this.events.exported(batch.spans);
        else this.events.dropped(batch.spans, 'export_failed');
        resolve();
      };
      const guard = setTimeout(() => settle(false), this.settings.exportTimeoutMs + 1000).unref();
      try {
        this.send(batch, (result) => settle(result.code === ExportResultCode.SUCCESS));
      } catch {
        settle(false);
      }
    });
  }

  /**
   * Sends everything still queued, all batches at once, and waits for them and the batch already
   * out; later spans are refused (counted as dropped). The caller bounds the wait.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.timer);
    clearImmediate(this.immediate);
    const sending: Promise<void>[] = this.inFlight ? [this.inFlight] : [];
    while (this.queued > 0) sending.push(this.exportBatch(this.take()));
    await Promise.all(sending);
    this.reportDrops();
  }
}
