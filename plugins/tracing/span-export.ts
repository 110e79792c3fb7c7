// Finished spans on their way to the collector: a bounded queue of encoded spans (each span is
// encoded when it ends, span-bytes.ts), batches sent one at a time from a timer (or from
// setImmediate once a batch is full), never from inside a request. The encodings are ours
// (otlp-proto.ts, otlp-json.ts), and so is the HTTP side (otlp-http.ts, on undici: retries,
// timeouts, OTEL_EXPORTER_OTLP_* headers, certificates and compression).
import { OtlpHttpTransport, type ExportTransport, type OtlpEnvironment, type OtlpHttpOptions, type SendOutcome } from './otlp-http.ts';
import { ThreadTransport } from './export-thread.ts';
import type { SpanRecord } from './otlp-json.ts';
import { SpanBytes, type SpanEncoding } from './span-bytes.ts';

/** What the exporter side reports (the plugin turns it into Prometheus counters). */
export interface ExportEvents {
  exported(spans: number): void;
  /** `detail`: why an export failed (`export_failed` only) */
  dropped(spans: number, reason: DropReason, detail?: string): void;
  /** the collector took a batch but rejected some of its spans (OTLP partial success) */
  rejected?(spans: number, message: string): void;
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

/** Sends one batch; calls back exactly once with what came of it. */
export type SendBatch = (batch: SpanBatch, done: (outcome: SendOutcome) => void) => void;

/**
 * The OTLP/HTTP sender of a tracer: its transport to the configured collector, in the export
 * thread (started at once, so its start-up is not spent inside the first export's timeout) or,
 * with `export-thread #false`, on the request thread.
 */
export function otlpHttpSender(settings: ExportSettings, contentType: string, userAgent: string, environment: OtlpEnvironment, thread: boolean): { send: SendBatch; transport: ExportTransport } {
  const batch = Math.min(settings.maxExportBatchSize, settings.maxQueueSize);
  // In steady state one batch is out at a time; a flush (reload, shutdown) sends the whole queue
  // at once: a socket per batch, up to a few (the rest wait in the pool, inside their export-timeout).
  const batches = Math.ceil(settings.maxQueueSize / batch) + 1;
  const options: OtlpHttpOptions = { url: settings.url, contentType, timeoutMs: settings.exportTimeoutMs, userAgent, connections: Math.min(batches, 8), environment };
  if (!thread) {
    const transport = new OtlpHttpTransport(options);
    return { send: (b, done) => transport.send(b.body, done), transport };
  }
  const transport = new ThreadTransport(options, batches);
  transport.start();
  return { send: (b, done) => transport.send(b.body, done), transport };
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
  // the settings this queue reads, as its own fields: the queue's loads stay monomorphic whatever
  // object the settings came in (the sampled path's warm-up gives a copy of another shape)
  private readonly maxQueueSize: number;
  private readonly scheduledDelayMs: number;
  private readonly exportTimeoutMs: number;
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
    settings: ExportSettings,
    private readonly encoding: SpanEncoding,
    private readonly send: SendBatch,
    private readonly events: ExportEvents,
  ) {
    this.batchSize = Math.min(settings.maxExportBatchSize, settings.maxQueueSize);
    this.maxQueueSize = settings.maxQueueSize;
    this.scheduledDelayMs = settings.scheduledDelayMs;
    this.exportTimeoutMs = settings.exportTimeoutMs;
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
    if (this.queued >= this.maxQueueSize) {
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
    else this.timer ??= setTimeout(this.onTimer, this.scheduledDelayMs).unref();
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
      else if (this.queued > 0) this.timer ??= setTimeout(this.onTimer, this.scheduledDelayMs).unref();
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
      const settle = (outcome: SendOutcome) => {
        if (settled) return;
        settled = true;
        clearTimeout(guard);
        if (outcome.error === undefined) this.events.exported(batch.spans);
        else this.events.dropped(batch.spans, 'export_failed', outcome.error);
        if (outcome.rejected) this.events.rejected?.(outcome.rejected.spans, outcome.rejected.message);
        resolve();
      };
      const guard = setTimeout(() => settle({ error: 'the transport did not answer within export-timeout' }), this.exportTimeoutMs + 1000).unref();
      try {
        this.send(batch, settle);
      } catch (err) {
        settle({ error: String(err) });
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
