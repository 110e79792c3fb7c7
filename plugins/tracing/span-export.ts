// Finished spans on their way to the collector: a bounded queue, batches sent one at a time from
// a timer (or from setImmediate once a batch is full), never from inside a request. The encoding
// is ours (otlp-json.ts); the HTTP side is the OpenTelemetry OTLP/HTTP export delegate
// (@opentelemetry/otlp-exporter-base: retries, timeouts, OTEL_EXPORTER_OTLP_* headers,
// certificates and compression), the same transport OTLPTraceExporter uses.
import { ExportResultCode, type ExportResult } from '@opentelemetry/core';
import { convertLegacyHttpOptions, createOtlpHttpExportDelegate } from '@opentelemetry/otlp-exporter-base/node-http';
import type { OtlpJsonEncoder, SpanRecord } from './otlp-json.ts';

/** What the exporter side reports (the plugin turns it into Prometheus counters). */
export interface ExportEvents {
  exported(spans: number): void;
  dropped(spans: number, reason: 'queue_full' | 'export_failed'): void;
}

export interface ExportSettings {
  readonly url: string;
  readonly maxQueueSize: number;
  readonly maxExportBatchSize: number;
  readonly scheduledDelayMs: number;
  readonly exportTimeoutMs: number;
}

/** Sends one batch; calls back once with the result (the OTLP export delegate's contract). */
export type SendBatch = (spans: SpanRecord[], done: (result: ExportResult) => void) => void;

/** The OTLP/HTTP sender: our JSON encoding on the OpenTelemetry HTTP transport. */
export function otlpHttpSender(settings: ExportSettings, encoder: OtlpJsonEncoder): { send: SendBatch; shutdown(): Promise<void> } {
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
      { 'Content-Type': 'application/json' },
    ),
    {
      serializeRequest: (spans: SpanRecord[]) => encoder.encode(spans),
      // the collector's answer (partial success) is only logged by the delegate
      deserializeResponse: (data: Uint8Array): object => (data.length === 0 ? {} : (JSON.parse(Buffer.from(data).toString('utf8')) as object)),
    },
    'otlp_http_span_exporter',
    { name: 'span', countItems: (spans: SpanRecord[]) => spans.length },
    undefined,
  );
  return { send: (spans, done) => delegate.export(spans, done), shutdown: () => delegate.shutdown() };
}

/**
 * The bounded export queue (what the SDK's BatchSpanProcessor does, without its per-span work):
 * `add` is an array push, or a drop counted as `queue_full` once `maxQueueSize` spans wait.
 */
export class SpanExportQueue {
  private queue: SpanRecord[] = [];
  private readonly batchSize: number;
  private timer: NodeJS.Timeout | undefined;
  private immediate: NodeJS.Immediate | undefined;
  /** the batch being sent in steady state (one at a time) */
  private inFlight: Promise<void> | undefined;
  private droppedFull = 0;
  private closed = false;

  constructor(
    private readonly settings: ExportSettings,
    private readonly send: SendBatch,
    private readonly events: ExportEvents,
  ) {
    this.batchSize = Math.min(settings.maxExportBatchSize, settings.maxQueueSize);
  }

  /** A finished span (called at span end, on the request path: no encoding, no I/O here). */
  add(span: SpanRecord): void {
    if (this.closed || this.queue.length >= this.settings.maxQueueSize) {
      // reported in a batch, after the request
      if (this.droppedFull++ === 0) setImmediate(this.reportDrops);
      return;
    }
    this.queue.push(span);
    if (this.inFlight !== undefined) return; // its completion schedules the next batch
    if (this.queue.length >= this.batchSize) this.exportSoon();
    else this.timer ??= setTimeout(this.onTimer, this.settings.scheduledDelayMs).unref();
  }

  /** Spans waiting (tests and the status of a flush). */
  get pending(): number {
    return this.queue.length;
  }

  private readonly reportDrops = (): void => {
    const n = this.droppedFull;
    this.droppedFull = 0;
    if (n > 0) this.events.dropped(n, 'queue_full');
  };

  private exportSoon(): void {
    this.immediate ??= setImmediate(this.onTimer);
  }

  private readonly onTimer = (): void => {
    clearTimeout(this.timer);
    clearImmediate(this.immediate);
    this.timer = undefined;
    this.immediate = undefined;
    if (this.inFlight !== undefined || this.queue.length === 0) return;
    this.inFlight = this.exportBatch(this.take()).finally(() => {
      this.inFlight = undefined;
      if (this.closed) return;
      if (this.queue.length >= this.batchSize) this.exportSoon();
      else if (this.queue.length > 0) this.timer ??= setTimeout(this.onTimer, this.settings.scheduledDelayMs).unref();
    });
  };

  /** The oldest batch, out of the queue. */
  private take(): SpanRecord[] {
    if (this.queue.length <= this.batchSize) {
      const all = this.queue;
      this.queue = [];
      return all;
    }
    return this.queue.splice(0, this.batchSize);
  }

  /**
   * One batch to the collector, counted as exported or failed. A guard a second after the export
   * timeout settles it even if the transport never calls back, so a wedged export cannot stop
   * the queue for good.
   */
  private exportBatch(spans: SpanRecord[]): Promise<void> {
    return new Promise<void>((resolve) => {
      let settled = false;
      const settle = (ok: boolean) => {
        if (settled) return;
        settled = true;
        clearTimeout(guard);
        if (ok) this.events.exported(spans.length);
        else this.events.dropped(spans.length, 'export_failed');
        resolve();
      };
      const guard = setTimeout(() => settle(false), this.settings.exportTimeoutMs + 1000).unref();
      try {
        this.send(spans, (result) => settle(result.code === ExportResultCode.SUCCESS));
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
    while (this.queue.length > 0) sending.push(this.exportBatch(this.take()));
    await Promise.all(sending);
    this.reportDrops();
  }
}
