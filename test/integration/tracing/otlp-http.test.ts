// The OTLP/HTTP transport (plugins/tracing/otlp-http.ts, undici) against real receivers started
// here on 127.0.0.1: what it sends, 2xx / 4xx / 5xx / 429 handling per the OTLP spec, Retry-After
// and the retry bound, a refused connection, a receiver that never answers (timed out, counted as
// export_failed by the queue), https with a self-signed certificate made by openssl (and a client
// certificate), gzip, partial success, and that close/destroy leave no socket open.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { setTimeout as sleep } from 'node:timers/promises';
import { Worker } from 'node:worker_threads';
import { OtlpHttpTransport, otlpEnvironment, MAX_RESPONSE_BYTES, MAX_RETRIES, type ExportTransport, type SendOutcome } from '../../../plugins/tracing/otlp-http.ts';
import { ExportThread, ThreadTransport } from '../../../plugins/tracing/export-thread.ts';
import { SpanExportQueue, otlpHttpSender, type DropReason } from '../../../plugins/tracing/span-export.ts';
import { OtlpProtoEncoder } from '../../../plugins/tracing/otlp-proto.ts';
import type { SpanRecord } from '../../../plugins/tracing/otlp-json.ts';
import { closedPort, closeServer } from '../../helpers/upstream.ts';
import { Pki, openssl } from '../../helpers/pki.ts';
import { eventually } from '../agents/harness.ts';
import { decodeProtoTraces } from './collector.ts';

interface Received {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
  /** the CN of the client certificate (https with requestCert) */
  peer: string | undefined;
}

/** A receiver whose answers the test scripts: `answer` is called per request (null = never answer). */
interface Receiver {
  url: string;
  requests: Received[];
  /** sockets open on the receiver's side right now */
  connections(): Promise<number>;
  /** sockets the client has closed so far */
  closed: number;
  close(): Promise<void>;
}

type Answer = (n: number, req: Received) => { status: number; headers?: Record<string, string>; body?: string | Buffer; delayMs?: number } | null;

async function receiver(answer: Answer, tls?: https.ServerOptions): Promise<Receiver> {
  const requests: Received[] = [];
  const handler = (req: http.IncomingMessage, res: http.ServerResponse): void => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const tlsSocket = req.socket as TLSSocket;
      const peer = typeof tlsSocket.getPeerCertificate === 'function' ? (tlsSocket.getPeerCertificate().subject?.CN as string | undefined) : undefined;
      const r: Received = { method: req.method ?? '', url: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks), peer };
      requests.push(r);
      const a = answer(requests.length, r);
      if (a === null) return; // a wedged collector: the request is never answered
      const reply = () => res.writeHead(a.status, a.headers).end(a.body);
      if (a.delayMs) setTimeout(reply, a.delayMs);
      else reply();
    });
  };
  const server = tls ? https.createServer(tls, handler) : http.createServer(handler);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  server.on(tls ? 'secureConnection' : 'connection', (socket: Socket) => socket.once('close', () => rx.closed++));
  const rx: Receiver = {
    closed: 0,
    url: `${tls ? 'https' : 'http'}://127.0.0.1:${port}/v1/traces`,
    requests,
    connections: () => new Promise((r, j) => server.getConnections((err, n) => (err ? j(err) : r(n)))),
    close: () => closeServer(server),
  };
  return rx;
}

const BODY = Buffer.from('an encoded ExportTraceServiceRequest');

/** The transport on this thread, or in `o.thread` (the export thread, as the gateway runs it by default). */
function transport(url: string, o: { timeoutMs?: number; env?: NodeJS.ProcessEnv; contentType?: string; thread?: ExportThread; maxInFlight?: number } = {}): ExportTransport {
  const options = {
    url,
    contentType: o.contentType ?? 'application/x-protobuf',
    // generous unless a test is about export-timeout (it passes its own): under two busy loops a
    // delivery through the export thread took over the 5 s this was ('export-timeout reached')
    timeoutMs: o.timeoutMs ?? 30_000,
    userAgent: 'Sentinel/test',
    connections: 2,
    environment: otlpEnvironment(o.env ?? {}),
  };
  return o.thread ? new ThreadTransport(options, o.maxInFlight ?? 4, o.thread) : new OtlpHttpTransport(options);
}

function send(t: ExportTransport, body: Uint8Array = BODY): Promise<SendOutcome> {
  return new Promise((resolve) => t.send(body, resolve));
}

describe('answers', () => {
  test('200: delivered once, as a POST of the body with the content type, user agent and OTEL headers', async () => {
    const rx = await receiver(() => ({ status: 200 }));
    const t = transport(rx.url, { env: { OTEL_EXPORTER_OTLP_HEADERS: 'authorization=Bearer%20t0ken,x-tenant=a', OTEL_EXPORTER_OTLP_TRACES_HEADERS: 'x-tenant=b' } });
    try {
      assert.deepEqual(await send(t), {});
      assert.equal(rx.requests.length, 1);
      const r = rx.requests[0]!;
      assert.equal(r.method, 'POST');
      assert.equal(r.url, '/v1/traces');
      assert.deepEqual(r.body, BODY);
      assert.equal(r.headers['content-type'], 'application/x-protobuf');
      assert.equal(r.headers['content-length'], String(BODY.length));
      assert.equal(r.headers['user-agent'], 'Sentinel/test');
      assert.equal(r.headers.authorization, 'Bearer t0ken');
      assert.equal(r.headers['x-tenant'], 'b');
      assert.equal(r.headers['content-encoding'], undefined);
      assert.deepEqual(await send(t), {}, 'and again on the kept-alive connection');
      assert.equal(rx.requests.length, 2);
    } finally {
      await t.close();
      await rx.close();
    }
  });

  test('OTEL_EXPORTER_OTLP_COMPRESSION=gzip: the body is gzipped and says so', async () => {
    const rx = await receiver(() => ({ status: 200 }));
    const t = transport(rx.url, { env: { OTEL_EXPORTER_OTLP_COMPRESSION: 'gzip' } });
    try {
      assert.deepEqual(await send(t), {});
      const r = rx.requests[0]!;
      assert.equal(r.headers['content-encoding'], 'gzip');
      assert.deepEqual(gunzipSync(r.body), BODY);
    } finally {
      await t.close();
      await rx.close();
    }
  });

  test('a 2xx with an OTLP partial success reports the rejected spans (protobuf and JSON)', async () => {
    // ExportTraceServiceResponse { partial_success (1) { rejected_spans (1) = 2, error_message (2) = "too old" } }
    const proto = Buffer.from([0x0a, 0x0b, 0x08, 0x02, 0x12, 0x07, ...Buffer.from('too old')]);
    const rx = await receiver((_n, req) =>
      req.headers['content-type'] === 'application/json'
        ? { status: 200, headers: { 'content-type': 'application/json' }, body: JSON.stringify({ partialSuccess: { rejectedSpans: '3', errorMessage: 'bad name' } }) }
        : { status: 200, headers: { 'content-type': 'application/x-protobuf' }, body: proto },
    );
    const p = transport(rx.url);
    const j = transport(rx.url, { contentType: 'application/json' });
    try {
      assert.deepEqual(await send(p), { rejected: { spans: 2, message: 'too old' } });
      assert.deepEqual(await send(j), { rejected: { spans: 3, message: 'bad name' } });
    } finally {
      await p.close();
      await j.close();
      await rx.close();
    }
  });

  for (const status of [400, 401, 404, 413, 500, 501]) {
    test(`${status}: final, not retried (the OTLP spec retries only 429, 502, 503, 504)`, async () => {
      const rx = await receiver(() => ({ status, body: 'nope' }));
      const t = transport(rx.url);
      try {
        const out = await send(t);
        assert.match(out.error ?? '', new RegExp(`^HTTP ${status}: nope`));
        assert.equal(rx.requests.length, 1);
      } finally {
        await t.close();
        await rx.close();
      }
    });
  }

  for (const status of [429, 502, 503, 504]) {
    test(`${status}: retried (Retry-After honoured), then delivered`, async () => {
      const rx = await receiver((n) => (n < 3 ? { status, headers: { 'retry-after': '0' } } : { status: 200 }));
      const t = transport(rx.url);
      try {
        assert.deepEqual(await send(t), {});
        assert.equal(rx.requests.length, 3);
        assert.deepEqual(rx.requests[2]!.body, BODY, 'the same body each time');
      } finally {
        await t.close();
        await rx.close();
      }
    });
  }

  test('retries are bounded: 1 + 5 attempts, then the export fails', async () => {
    const rx = await receiver(() => ({ status: 503, headers: { 'retry-after': '0' } }));
    const t = transport(rx.url);
    try {
      const out = await send(t);
      assert.match(out.error ?? '', /^HTTP 503/);
      assert.equal(rx.requests.length, 1 + MAX_RETRIES);
    } finally {
      await t.close();
      await rx.close();
    }
  });

  test('without Retry-After the backoff applies (about a second before the first retry)', async () => {
    const rx = await receiver((n) => (n === 1 ? { status: 503 } : { status: 200 }));
    const t = transport(rx.url);
    try {
      const start = performance.now();
      assert.deepEqual(await send(t), {});
      assert.equal(rx.requests.length, 2);
      assert.ok(performance.now() - start >= 790, 'the retry waited for its backoff (1 s -20%)');
    } finally {
      await t.close();
      await rx.close();
    }
  });

  test('a retry that would end past export-timeout is not made', async () => {
    const rx = await receiver(() => ({ status: 429, headers: { 'retry-after': '30' } }));
    const t = transport(rx.url, { timeoutMs: 5000 });
    try {
      const out = await send(t);
      assert.match(out.error ?? '', /^HTTP 429.*no time left for a retry/);
      assert.equal(rx.requests.length, 1);
    } finally {
      await t.close();
      await rx.close();
    }
  });

  test(`an answer larger than ${MAX_RESPONSE_BYTES} bytes is a failure`, async () => {
    const rx = await receiver(() => ({ status: 200, body: Buffer.alloc(MAX_RESPONSE_BYTES + 1024) }));
    const t = transport(rx.url);
    try {
      const out = await send(t);
      assert.match(out.error ?? '', /larger than/);
      assert.equal(rx.requests.length, 1);
    } finally {
      await t.close();
      await rx.close();
    }
  });
});

describe('a dead or wedged collector', () => {
  test('connection refused: the export fails with the reason (no retry fits in a 500 ms export-timeout)', async () => {
    const port = await closedPort();
    const t = transport(`http://127.0.0.1:${port}/v1/traces`, { timeoutMs: 500 });
    try {
      const out = await send(t);
      assert.match(out.error ?? '', /ECONNREFUSED/);
    } finally {
      await t.close();
    }
  });

  test('connection refused, then the collector is up: the retry delivers', async () => {
    const port = await closedPort();
    const t = transport(`http://127.0.0.1:${port}/v1/traces`, { timeoutMs: 10_000 });
    let server: http.Server | undefined;
    let got = 0;
    try {
      const out = send(t);
      await sleep(100); // the first attempt is refused; the retry comes ~1 s later
      server = http.createServer((req, res) => {
        req.resume();
        got++;
        res.end();
      });
      await new Promise<void>((r) => server!.listen(port, '127.0.0.1', r));
      assert.deepEqual(await out, {});
      assert.equal(got, 1);
    } finally {
      await t.close();
      await closeServer(server);
    }
  });

  test('a receiver that never answers: the attempt is cut at export-timeout, its socket closed, the spans counted as export_failed', async () => {
    const rx = await receiver(() => null);
    const dropped: Partial<Record<DropReason, number>> = {};
    const details: string[] = [];
    let exported = 0;
    const settings = { url: rx.url, maxQueueSize: 16, maxExportBatchSize: 4, scheduledDelayMs: 10, exportTimeoutMs: 400 };
    const sender = otlpHttpSender(settings, 'application/x-protobuf', 'Sentinel/test', otlpEnvironment({}), false);
    const queue = new SpanExportQueue(settings, new OtlpProtoEncoder({ 'service.name': 's' }, { name: 'sentinel', version: '0' }), sender.send, {
      exported: (n) => (exported += n),
      dropped: (n, reason, detail) => {
        dropped[reason] = (dropped[reason] ?? 0) + n;
        if (detail) details.push(detail);
      },
    });
    try {
      for (let i = 0; i < 3; i++) queue.add(span(i));
      await eventually(() => Promise.resolve(dropped.export_failed === 3), 'the hung export counted as export_failed', 100, 50);
      assert.equal(exported, 0);
      assert.equal(rx.requests.length, 1, 'it reached the receiver, which never answered');
      assert.equal(decodeProtoTraces(rx.requests[0]!.body).length, 3);
      assert.match(details[0]!, /timed out/);
      await eventually(() => Promise.resolve(rx.closed >= 1), 'the client dropped the hung connection', 100, 50);
      await queue.close();
      // (undici opens a fresh idle socket after an aborted request; close() ends it too)
      await sender.transport.close();
      await eventually(async () => (await rx.connections()) === 0, 'no socket left open', 50, 50);
    } finally {
      await rx.close();
    }
  });

  test('destroy() cuts an export in flight (it fails) and leaves no socket open; close() waits for one', async () => {
    const rx = await receiver((n) => (n === 1 ? null : { status: 200, delayMs: 300 }));
    const t = transport(rx.url, { timeoutMs: 60_000 });
    try {
      const hung = send(t);
      await eventually(() => Promise.resolve(rx.requests.length === 1), 'the request reached the receiver', 50, 50);
      await t.destroy();
      assert.match((await hung).error ?? '', /closed before the collector answered/);
      await eventually(async () => (await rx.connections()) === 0, 'no socket left open', 50, 50);
      assert.match((await send(t)).error ?? '', /closed/, 'a destroyed transport refuses at once');

      const t2 = transport(rx.url);
      const slow = send(t2);
      let slowDone = false;
      void slow.then(() => (slowDone = true));
      await eventually(() => Promise.resolve(rx.requests.length === 2), 'the slow request reached the receiver', 50, 50);
      const closing = t2.close();
      await closing;
      assert.ok(slowDone, 'close() returned only after the export in flight had its answer');
      assert.deepEqual(await slow, {}, 'close() let the export in flight finish');
      await eventually(async () => (await rx.connections()) === 0, 'close() closed the kept-alive socket', 50, 50);
    } finally {
      await rx.close();
    }
  });
});

describe('https', () => {
  let pki: Pki;
  let selfSigned: { cert: string; key: string };
  let client: { cert: string; key: string; ca: string };

  before(async () => {
    pki = await Pki.create();
    // a self-signed server certificate for 127.0.0.1 (no CA behind it)
    const cert = pki.path('collector.crt');
    const key = pki.path('collector.key');
    await openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-out', cert, '-subj', '/CN=collector', '-days', '2', '-addext', 'subjectAltName=IP:127.0.0.1']);
    selfSigned = { cert, key };
    const ca = await pki.ca('clients');
    const issued = await ca.issue('gateway', { cn: 'sentinel-gateway', usage: 'client' });
    client = { cert: issued.cert, key: issued.key, ca: ca.cert };
  });
  after(() => pki.close());

  test('trusted through OTEL_EXPORTER_OTLP_CERTIFICATE: delivered over TLS', async () => {
    const rx = await receiver(() => ({ status: 200 }), { cert: readFileSync(selfSigned.cert), key: readFileSync(selfSigned.key) });
    const t = transport(rx.url, { env: { OTEL_EXPORTER_OTLP_CERTIFICATE: selfSigned.cert } });
    try {
      assert.deepEqual(await send(t), {});
      assert.deepEqual(rx.requests[0]!.body, BODY);
    } finally {
      await t.close();
      await rx.close();
    }
  });

  test('not trusted: the export fails on the certificate, not retried', async () => {
    const rx = await receiver(() => ({ status: 200 }), { cert: readFileSync(selfSigned.cert), key: readFileSync(selfSigned.key) });
    const t = transport(rx.url);
    try {
      const out = await send(t);
      assert.match(out.error ?? '', /self[- ]signed/i);
      assert.equal(rx.requests.length, 0);
    } finally {
      await t.close();
      await rx.close();
    }
  });

  for (const where of ['this thread', 'the export thread'] as const)
  test(`a client certificate from OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE / _CLIENT_KEY (${where})`, async () => {
    const thread = where === 'the export thread' ? new ExportThread() : undefined;
    const rx = await receiver(
      () => ({ status: 200 }),
      { cert: readFileSync(selfSigned.cert), key: readFileSync(selfSigned.key), ca: readFileSync(client.ca), requestCert: true, rejectUnauthorized: true },
    );
    const env = { OTEL_EXPORTER_OTLP_CERTIFICATE: selfSigned.cert, OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE: client.cert, OTEL_EXPORTER_OTLP_CLIENT_KEY: client.key };
    const t = transport(rx.url, { env, thread });
    const anonymous = transport(rx.url, { env: { OTEL_EXPORTER_OTLP_CERTIFICATE: selfSigned.cert }, timeoutMs: 500, thread });
    try {
      assert.deepEqual(await send(t), {});
      assert.equal(rx.requests.length, 1);
      assert.equal(rx.requests[0]!.peer, 'sentinel-gateway', 'the receiver saw the client certificate');
      const refused = await send(anonymous);
      assert.ok(refused.error, 'without a client certificate the receiver refuses the handshake');
      assert.equal(rx.requests.length, 1);
    } finally {
      await t.close();
      await anonymous.close();
      await rx.close();
      await thread?.thread?.terminate();
    }
  });
});

describe('the export thread (the transport in a worker thread, the default)', () => {
  const thread = new ExportThread();
  after(() => thread.thread?.terminate());

  test('delivered: the same POST as from this thread; the batch handed over is the caller\'s bytes, untouched', async () => {
    const rx = await receiver(() => ({ status: 200 }));
    const t = transport(rx.url, { thread, env: { OTEL_EXPORTER_OTLP_HEADERS: 'x-tenant=a' } });
    try {
      // a view into a larger buffer, as the queue's batches are
      const chunk = Buffer.concat([Buffer.from('before'), BODY, Buffer.from('after')]);
      const view = chunk.subarray(6, 6 + BODY.length);
      assert.deepEqual(await send(t, view), {});
      assert.equal(rx.requests.length, 1);
      const r = rx.requests[0]!;
      assert.deepEqual(r.body, BODY);
      assert.equal(r.headers['content-type'], 'application/x-protobuf');
      assert.equal(r.headers['user-agent'], 'Sentinel/test');
      assert.equal(r.headers['x-tenant'], 'a');
      assert.equal(chunk.toString(), `before${BODY}after`, 'the caller\'s buffer is neither detached nor changed');
    } finally {
      await t.close();
      await rx.close();
    }
  });

  test('5xx: 500 is final, 503 retried (the retries run in the thread)', async () => {
    const rx = await receiver((n, r) => (r.url.endsWith('/500') ? { status: 500, body: 'broken' } : n <= 2 ? { status: 503, headers: { 'retry-after': '0' } } : { status: 200 }));
    const final = transport(rx.url.replace('/v1/traces', '/500'), { thread });
    const retried = transport(rx.url, { thread });
    try {
      assert.match((await send(final)).error ?? '', /^HTTP 500: broken/);
      assert.equal(rx.requests.length, 1);
      assert.deepEqual(await send(retried), {});
      assert.equal(rx.requests.length, 3, 'one 503, then the retry delivered');
    } finally {
      await final.close();
      await retried.close();
      await rx.close();
    }
  });

  test('a dead collector, and a slow one cut at export-timeout: the queue counts export_failed', async () => {
    const dead = `http://127.0.0.1:${await closedPort()}/v1/traces`;
    const rx = await receiver(() => null);
    const settings = { url: rx.url, maxQueueSize: 16, maxExportBatchSize: 4, scheduledDelayMs: 10, exportTimeoutMs: 400 };
    try {
      for (const url of [dead, rx.url]) {
        const dropped: Partial<Record<DropReason, number>> = {};
        const details: string[] = [];
        const t = transport(url, { thread, timeoutMs: settings.exportTimeoutMs });
        const queue = new SpanExportQueue(settings, new OtlpProtoEncoder({ 'service.name': 's' }, { name: 'sentinel', version: '0' }), (b, done) => t.send(b.body, done), {
          exported: () => assert.fail('nothing is delivered'),
          dropped: (n, reason, detail) => {
            dropped[reason] = (dropped[reason] ?? 0) + n;
            if (detail) details.push(detail);
          },
        });
        for (let i = 0; i < 3; i++) queue.add(span(i));
        await eventually(() => dropped.export_failed === 3, `the failed export counted (${url === dead ? 'dead' : 'slow'})`, 100, 50);
        assert.match(details[0]!, url === dead ? /ECONNREFUSED/ : /timed out/);
        await queue.close();
        await t.close();
      }
      assert.equal(rx.requests.length, 1, 'the slow receiver got the batch and never answered');
    } finally {
      await rx.close();
    }
  });

  test('at most maxInFlight exports handed over: one more fails at once as busy', async () => {
    const rx = await receiver(() => null);
    const t = transport(rx.url, { thread, maxInFlight: 1, timeoutMs: 60_000 });
    try {
      const first = send(t);
      assert.match((await send(t)).error ?? '', /busy \(1 exports in flight\)/);
      await t.destroy();
      assert.match((await first).error ?? '', /closed before the collector answered/);
    } finally {
      await rx.close();
    }
  });

  test('the thread terminated mid-export: the export fails (counted), the next one after the back-off starts a new thread and delivers', async () => {
    const own = new ExportThread();
    let answer: 'hang' | 'ok' = 'hang';
    const rx = await receiver(() => (answer === 'hang' ? null : { status: 200 }));
    const t = transport(rx.url, { thread: own, timeoutMs: 60_000 });
    try {
      const hung = send(t);
      await eventually(() => rx.requests.length === 1, 'the export reached the receiver', 100, 50);
      const first = own.thread!;
      await first.terminate();
      assert.match((await hung).error ?? '', /the export thread exited/);
      answer = 'ok';
      // sends within the back-off fail at once ("restarting in N ms") without starting a thread
      await eventually(async () => (await send(t)).error === undefined, 'a send after the back-off delivered', 100, 50);
      assert.notEqual(own.thread, first, 'a new thread');
      assert.equal(rx.requests.length, 2);
    } finally {
      await t.close();
      await rx.close();
      await own.thread?.terminate();
    }
  });

  test('a thread that stops answering is terminated at the next send past export-timeout (+ grace)', async () => {
    // a worker that takes every message and answers none
    const own = new ExportThread(() => new Worker('require("node:worker_threads").parentPort.on("message", () => {})', { eval: true }));
    const t = transport('http://127.0.0.1:9/v1/traces', { thread: own, timeoutMs: 50 });
    try {
      const silent = send(t);
      const first = own.thread!;
      let exited = false;
      first.once('exit', () => (exited = true));
      // the next sends give the silent thread up once the first export is overdue
      await eventually(async () => {
        void send(t);
        return exited;
      }, 'the silent thread terminated', 100, 50);
      assert.match((await silent).error ?? '', /did not answer within export-timeout/);
    } finally {
      await t.destroy();
      await own.thread?.terminate();
    }
  });

  test('close() after a flush: every queued span delivered, then the thread closes this exporter\'s sockets', async () => {
    const rx = await receiver(() => ({ status: 200 }));
    const settings = { url: rx.url, maxQueueSize: 64, maxExportBatchSize: 8, scheduledDelayMs: 3_600_000, exportTimeoutMs: 5000 };
    const t = transport(rx.url, { thread });
    let exported = 0;
    const queue = new SpanExportQueue(settings, new OtlpProtoEncoder({ 'service.name': 's' }, { name: 'sentinel', version: '0' }), (b, done) => t.send(b.body, done), {
      exported: (n) => (exported += n),
      dropped: (n, reason) => assert.fail(`${n} dropped (${reason})`),
    });
    try {
      for (let i = 0; i < 20; i++) queue.add(span(i));
      assert.equal(rx.requests.length, 0, 'an hour\'s delay: only the flush sends');
      await queue.close();
      await t.close();
      assert.equal(exported, 20);
      assert.equal(rx.requests.flatMap((r) => decodeProtoTraces(r.body)).length, 20);
      await eventually(async () => (await rx.connections()) === 0, 'no socket left open', 50, 50);
      assert.match((await send(t)).error ?? '', /closed/);
    } finally {
      await rx.close();
    }
  });
});

function span(i: number): SpanRecord {
  return { traceId: 'b'.repeat(32), spanId: String(i).padStart(16, '0'), parentSpanId: '', traceState: undefined, name: `s${i}`, kind: 1, remoteParent: false, startMs: i, endMs: i + 1, attributes: [], failed: false };
}
