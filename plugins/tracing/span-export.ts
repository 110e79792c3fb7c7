// Finished spans on their way to the collector: a bounded queue of ended spans, encoded a batch at
// a time in one loop (span-bytes.ts), batches sent one at a time from a timer (or from
// setImmediate once a batch is full), never from inside a request. The encodings are ours
// (otlp-proto.ts, otlp-json.ts), and so is the HTTP side (otlp-http.ts, on undici: retries,
// timeouts, OTEL_EXPORTER_OTLP_* headers, certificates and compression).
import { OtlpHttpTransport, type OtlpEnvironment, type SendOutcome } from './otlp-http.ts';
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

/** The OTLP/HTTP sender of a tracer: its transport to the configured collector. */
export function otlpHttpSender(settings: ExportSettings, contentType: string, userAgent: string, environment: OtlpEnvironment): { send: SendBatch; transport: OtlpHttpTransport } {
  const batch = Math.min(settings.maxExportBatchSize, settings.maxQueueSize);
  const transport = new OtlpHttpTransport({
    url: settings.url,
    contentType,
    timeoutMs: settings.exportTimeoutMs,
    userAgent,
    // In steady state one batch is out at a time; a flush (reload, shutdown) sends the whole
    // queue at once: a socket per batch, up to a few (the rest wait in the pool, inside their
    // export-timeout).
    connections: Math.min(Math.ceil(settings.maxQueueSize / batch) + 1, 8),
    environment,
  });
  return { send: (b, done) => transport.send(b.body, done), transport };
}

/**
 * The bounded export queue (what the SDK's BatchSpanProcessor does, without its per-span work):
 * `add` keeps the ended span as it is (its numbers and the strings the request already had), or
 * drops it (counted as `queue_full`) once `maxQueueSize` spans wait (`closed` after close()). The
 * spans are encoded together, a batch in one loop, off the request path: a full batch from
 * setImmediate as soon as it fills (so at 100% sampling a span object lives for about a batch's
 * worth of requests and is not promoted), a partial one when the timer sends it. A span the
 * encoding throws on is dropped there (`encode_failed`). Why not encode each span as it ends:
 * docs/tracing.md "Session 17".
 */
export class SpanExportQueue {
  private readonly bytes: SpanBytes;
  /** ended spans not encoded yet, oldest first */
  private records: SpanRecord[] = [];
  /** full batches already encoded, oldest first */
  private full: SpanBatch[] = [];
  /** every span waiting, encoded or not */
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
   * A finished span (called at span end, on the request path: no encoding and no I/O here). The
   * span must not change after it (RecordedSpan ignores later sets).
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
    this.queued++;
    // a full batch is encoded (and sent, if none is out) from setImmediate, after the request
    if (this.records.push(span) >= this.batchSize) this.immediate ??= setImmediate(this.onTimer);
    else if (this.inFlight === undefined) this.timer ??= setTimeout(this.onTimer, this.settings.scheduledDelayMs).unref();
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
    this.encodeFull();
    if (this.inFlight !== undefined || this.queued === 0) return;
    const batch = this.take();
    if (batch === undefined) return;
    this.inFlight = this.exportBatch(batch).finally(() => {
      this.inFlight = undefined;
      if (this.closed) return;
      if (this.full.length > 0 || this.records.length >= this.batchSize) this.exportSoon();
      else if (this.queued > 0) this.timer ??= setTimeout(this.onTimer, this.settings.scheduledDelayMs).unref();
    });
  };

  /** Encodes every full batch of waiting spans (one loop a batch). */
  private encodeFull(): void {
    while (this.records.length >= this.batchSize) this.encodeBatch(this.batchSize);
  }

  /**
   * The oldest `n` waiting spans encoded into one batch, in one loop, out of `records`; a span
   * the encoding throws on is dropped and counted (the bytes it wrote are not kept: `off` moves
   * on success only).
   */
  private encodeBatch(n: number): void {
    const records = this.records;
    const encoding = this.encoding;
    const bytes = this.bytes;
    let spans = 0;
    for (let i = 0; i < n; i++) {
      try {
        encoding.append(records[i]!, bytes);
        spans++;
      } catch {
        this.droppedEncode++;
      }
    }
    if (n === records.length) this.records = [];
    else records.splice(0, n);
    if (spans < n) {
      this.queued -= n - spans;
      this.reportDropsSoon();
    }
    if (spans > 0) this.full.push({ body: bytes.take(), spans });
  }

  /** The oldest batch, out of the queue, as a whole export request (undefined: nothing could be encoded). */
  private take(): SpanBatch | undefined {
    if (this.full.length === 0 && this.records.length > 0) this.encodeBatch(Math.min(this.records.length, this.batchSize));
    const spans = this.full.shift();
    if (spans === undefined) return undefined;
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
      const guard = setTimeout(() => settle({ error: 'the transport did not answer within export-timeout' }), this.settings.exportTimeoutMs + 1000).unref();
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
    for (let batch = this.take(); batch !== undefined; batch = this.take()) sending.push(this.exportBatch(batch));
    await Promise.all(sending);
    this.reportDrops();
  }
}
