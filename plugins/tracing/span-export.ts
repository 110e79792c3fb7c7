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
 * Ended spans wait as objects until this many have gathered (or their batch is due), then are
 * encoded together from setImmediate. Small enough that at 100% sampling a span object dies
 * young (a few dozen requests: a scavenge comes every ~120), large enough that the encoder runs
 * a few times a second at 1% instead of once per sampled request (docs/tracing.md "Session 17").
 */
const ENCODE_CHUNK = 64;

/**
 * The bounded export queue (what the SDK's BatchSpanProcessor does, without its per-span work):
 * `add` keeps the ended span as it is (its numbers and the strings the request already had), or
 * drops it (counted as `queue_full`) once `maxQueueSize` spans wait (`closed` after close()). The
 * spans are encoded together in one loop, off the request path: from setImmediate once
 * ENCODE_CHUNK wait, or when their batch is sent. A span the encoding throws on is dropped there
 * (`encode_failed`). Full batches are cut as they fill; the request around a batch is built when
 * it is sent.
 */
export class SpanExportQueue {
  private readonly bytes: SpanBytes;
  /** ended spans not encoded yet, oldest first */
  private records: SpanRecord[] = [];
  /** spans encoded into `bytes` and not cut into a batch yet */
  private open = 0;
  /** full batches already encoded, oldest first */
  private full: SpanBatch[] = [];
  /** every span waiting, encoded or not */
  private queued = 0;
  private readonly batchSize: number;
  private readonly encodeAt: number;
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
    this.encodeAt = Math.min(ENCODE_CHUNK, this.batchSize);
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
    if (this.records.push(span) >= this.encodeAt) this.immediate ??= setImmediate(this.onImmediate);
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

  /** After a request: the waiting spans encoded, a full batch sent if none is out. */
  private readonly onImmediate = (): void => {
    this.immediate = undefined;
    this.encodePending();
    if (this.full.length > 0) this.sendNext(false);
    else if (this.inFlight === undefined && this.queued > 0) this.timer ??= setTimeout(this.onTimer, this.settings.scheduledDelayMs).unref();
  };

  /** The scheduled delay: whatever waits goes, a part batch included. */
  private readonly onTimer = (): void => {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.sendNext(true);
  };

  private sendNext(part: boolean): void {
    if (this.inFlight !== undefined || this.queued === 0) return;
    const batch = this.take(part);
    if (batch === undefined) return;
    clearTimeout(this.timer);
    this.timer = undefined;
    this.inFlight = this.exportBatch(batch).finally(() => {
      this.inFlight = undefined;
      if (this.closed) return;
      if (this.full.length > 0) this.immediate ??= setImmediate(this.onImmediate);
      else if (this.queued > 0) this.timer ??= setTimeout(this.onTimer, this.settings.scheduledDelayMs).unref();
    });
  }

  /**
   * Every waiting span encoded, in one loop, into `bytes`; a batch is cut each time one fills. A
   * span the encoding throws on is dropped and counted (its bytes are not kept: `off` moves on
   * success only).
   */
  private encodePending(): void {
    const records = this.records;
    if (records.length === 0) return;
    this.records = [];
    const encoding = this.encoding;
    const bytes = this.bytes;
    let failed = 0;
    for (let i = 0; i < records.length; i++) {
      try {
        encoding.append(records[i]!, bytes);
      } catch {
        failed++;
        continue;
      }
      if (++this.open === this.batchSize) {
        this.full.push({ body: bytes.take(), spans: this.open });
        this.open = 0;
      }
    }
    if (failed > 0) {
      this.queued -= failed;
      this.droppedEncode += failed;
      this.reportDropsSoon();
    }
  }

  /** The oldest batch (with `part`, also a part batch), out of the queue, as a whole export request. */
  private take(part: boolean): SpanBatch | undefined {
    this.encodePending();
    let spans = this.full.shift();
    if (spans === undefined) {
      if (!part || this.open === 0) return undefined;
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
    this.timer = this.immediate = undefined;
    const sending: Promise<void>[] = this.inFlight ? [this.inFlight] : [];
    for (let batch = this.take(true); batch !== undefined; batch = this.take(true)) sending.push(this.exportBatch(batch));
    await Promise.all(sending);
    this.reportDrops();
  }
}
