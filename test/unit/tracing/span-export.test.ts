// The bounded export queue (plugins/tracing/span-export.ts) with a sender the test controls:
// nothing is sent from inside `add` (the request path), batches go one at a time, a full queue
// drops and counts, failures are counted, a sender that never answers cannot wedge the queue, and
// close() flushes everything queued.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setImmediate as tick, setTimeout as sleep } from 'node:timers/promises';
import { SpanExportQueue, type DropReason, type ExportSettings } from '../../../plugins/tracing/span-export.ts';
import type { SendOutcome } from '../../../plugins/tracing/otlp-http.ts';
import type { SpanRecord } from '../../../plugins/tracing/otlp-json.ts';
import { OtlpProtoEncoder } from '../../../plugins/tracing/otlp-proto.ts';
import { decodeProtoTraces } from '../../integration/tracing/collector.ts';
import { until } from '../../helpers/until.ts';

function rec(i: number): SpanRecord {
  return { traceId: 'a'.repeat(32), spanId: String(i).padStart(16, '0'), parentSpanId: '', traceState: undefined, name: `s${i}`, kind: 1, remoteParent: false, startMs: i, endMs: i + 1, attributes: [], failed: false };
}

interface Harness {
  queue: SpanExportQueue;
  /** the span names of each batch sent, decoded from what the sender got */
  sent: string[][];
  /** answers the oldest unanswered send */
  answer(ok: boolean): void;
  /** sends not answered yet */
  unanswered(): number;
  exported: number;
  dropped: Record<DropReason, number>;
}

function harness(settings: Partial<ExportSettings>): Harness {
  const waiting: ((r: SendOutcome) => void)[] = [];
  const h: Harness = {
    queue: undefined as unknown as SpanExportQueue,
    sent: [],
    answer: (ok) => waiting.shift()!(ok ? {} : { error: 'refused' }),
    unanswered: () => waiting.length,
    exported: 0,
    dropped: { queue_full: 0, closed: 0, encode_failed: 0, export_failed: 0 },
  };
  h.queue = new SpanExportQueue(
    { url: 'http://127.0.0.1:1/v1/traces', maxQueueSize: 8, maxExportBatchSize: 3, scheduledDelayMs: 30, exportTimeoutMs: 10_000, ...settings },
    new OtlpProtoEncoder({ 'service.name': 's' }, { name: 'sentinel', version: '0' }),
    (batch, done) => {
      const names = decodeProtoTraces(Buffer.from(batch.body)).map((s) => s.name);
      assert.equal(names.length, batch.spans, 'the batch says how many spans it holds');
      h.sent.push(names);
      waiting.push(done);
    },
    { exported: (n) => (h.exported += n), dropped: (n, reason) => (h.dropped[reason] += n) },
  );
  return h;
}

test('a full batch is sent after the request, not inside add; one batch at a time', async () => {
  const h = harness({});
  for (let i = 0; i < 7; i++) h.queue.add(rec(i));
  assert.equal(h.sent.length, 0, 'add never sends');
  await tick();
  assert.deepEqual(h.sent, [['s0', 's1', 's2']], 'one batch out');
  await tick();
  assert.equal(h.sent.length, 1, 'the next waits for the first to finish');
  h.answer(true);
  await tick();
  await tick();
  assert.deepEqual(h.sent.map((b) => b.length), [3, 3]);
  h.answer(true);
  await sleep(5);
  assert.equal(h.sent.length, 2, 'a part batch waits for the scheduled delay');
  await sleep(60);
  assert.deepEqual(h.sent.map((b) => b.length), [3, 3, 1]);
  h.answer(false);
  await tick();
  assert.equal(h.exported, 6);
  assert.deepEqual(h.dropped, { queue_full: 0, closed: 0, encode_failed: 0, export_failed: 1 });
  await h.queue.close();
});

test('a full queue drops and counts (reported after the request); memory stays bounded', async () => {
  const h = harness({ maxQueueSize: 4, maxExportBatchSize: 2 });
  for (let i = 0; i < 10; i++) h.queue.add(rec(i));
  assert.equal(h.queue.pending, 4);
  assert.equal(h.dropped.queue_full, 0, 'not counted inside add');
  await tick();
  await tick();
  assert.equal(h.dropped.queue_full, 6);
  assert.equal(h.sent.length, 1, 'the first batch is out and hangs');
  for (let i = 10; i < 15; i++) h.queue.add(rec(i));
  assert.equal(h.queue.pending, 4, 'two slots freed by the batch out, then full again');
  await tick();
  assert.equal(h.dropped.queue_full, 9);
  h.answer(true);
  const closing = h.queue.close();
  await tick();
  while (h.unanswered() > 0) h.answer(true);
  await closing;
  assert.equal(h.exported, 6, 'the first batch and the four queued');
  assert.deepEqual(h.dropped, { queue_full: 9, closed: 0, encode_failed: 0, export_failed: 0 }, 'only queue_full');
});

test('a sender that never answers is given up a second after the export timeout', async () => {
  const h = harness({ exportTimeoutMs: 20, maxExportBatchSize: 1 });
  h.queue.add(rec(1));
  h.queue.add(rec(2));
  await tick();
  assert.equal(h.sent.length, 1);
  // given up a second after the 20 ms export timeout; then the next batch goes out
  await until('the wedged batch to be given up', () => h.dropped.export_failed > 0);
  assert.equal(h.dropped.export_failed, 1, 'the wedged batch counted as failed');
  await until('the next batch', () => h.sent.length > 1);
  assert.equal(h.sent.length, 2, 'and the queue moved on');
  h.answer(true); // the late answer of the first one changes nothing
  h.answer(true);
  await tick();
  assert.deepEqual([h.exported, h.dropped.export_failed], [1, 1]);
  await h.queue.close();
});

test('close() sends everything queued at once and waits; later spans are refused', async () => {
  const h = harness({ maxQueueSize: 64, maxExportBatchSize: 2, scheduledDelayMs: 60_000 });
  h.queue.add(rec(0));
  h.queue.add(rec(1));
  await tick();
  assert.equal(h.sent.length, 1, 'one batch out');
  for (let i = 2; i < 9; i++) h.queue.add(rec(i));
  let closed = false;
  const closing = h.queue.close().then(() => (closed = true));
  await tick();
  assert.deepEqual(h.sent.map((b) => b.length), [2, 2, 2, 2, 1], 'the rest of the queue in one go');
  h.queue.add(rec(99));
  for (let i = 0; i < 4; i++) h.answer(true);
  await tick();
  assert.equal(closed, false, 'waits for every batch');
  h.answer(true);
  await closing;
  assert.equal(h.exported, 9);
  await tick();
  assert.deepEqual(h.dropped, { queue_full: 0, closed: 1, encode_failed: 0, export_failed: 0 }, 'a span after close is counted as lost, as closed');
  h.queue.add(rec(100));
  h.queue.add(rec(101));
  await tick();
  assert.equal(h.dropped.closed, 3, 'later ones too, reported after the request');
});

test('a span the encoding cannot write is dropped and counted, never thrown into the request', async () => {
  const sent: number[] = [];
  const dropped: Partial<Record<DropReason, number>> = {};
  const proto = new OtlpProtoEncoder({ 'service.name': 's' }, { name: 'sentinel', version: '0' });
  const queue = new SpanExportQueue(
    { url: 'http://127.0.0.1:1/v1/traces', maxQueueSize: 8, maxExportBatchSize: 2, scheduledDelayMs: 30, exportTimeoutMs: 10_000 },
    {
      contentType: proto.contentType,
      headRoom: proto.headRoom,
      append: (s, out) => {
        if (s.name === 'bad') throw new Error('cannot encode');
        proto.append(s, out);
      },
      request: (spans) => proto.request(spans),
    },
    (batch, done) => {
      sent.push(...decodeProtoTraces(Buffer.from(batch.body)).map((s) => Number(s.name.slice(1))));
      done({});
    },
    { exported: () => undefined, dropped: (n, reason) => (dropped[reason] = (dropped[reason] ?? 0) + n) },
  );
  queue.add(rec(1));
  assert.doesNotThrow(() => queue.add({ ...rec(2), name: 'bad' }));
  queue.add(rec(3));
  assert.equal(queue.pending, 2);
  await tick();
  await tick();
  assert.deepEqual(sent, [1, 3]);
  assert.deepEqual(dropped, { encode_failed: 1 }, 'counted as encode_failed, not queue_full');
  await queue.close();
});
