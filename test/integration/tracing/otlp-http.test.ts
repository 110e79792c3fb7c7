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
import { OtlpHttpTransport, otlpEnvironment, MAX_RESPONSE_BYTES, MAX_RETRIES, type SendOutcome } from '../../../plugins/tracing/otlp-http.ts';
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

function transport(url: string, o: { timeoutMs?: number; env?: NodeJS.ProcessEnv; contentType?: string } = {}): OtlpHttpTransport {
  return new OtlpHttpTransport({
    url,
    contentType: o.contentType ?? 'application/x-protobuf',
    timeoutMs: o.timeoutMs ?? 5000,
    userAgent: 'Sentinel/test',
    connections: 2,
    environment: otlpEnvironment(o.env ?? {}),
  });
}

function send(t: OtlpHttpTransport, body: Uint8Array = BODY): Promise<SendOutcome> {
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

  test('a client certificate from OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE / _CLIENT_KEY', async () => {
    const rx = await receiver(
      () => ({ status: 200 }),
      { cert: readFileSync(selfSigned.cert), key: readFileSync(selfSigned.key), ca: readFileSync(client.ca), requestCert: true, rejectUnauthorized: true },
    );
    const env = { OTEL_EXPORTER_OTLP_CERTIFICATE: selfSigned.cert, OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE: client.cert, OTEL_EXPORTER_OTLP_CLIENT_KEY: client.key };
    const t = transport(rx.url, { env });
    const anonymous = transport(rx.url, { env: { OTEL_EXPORTER_OTLP_CERTIFICATE: selfSigned.cert }, timeoutMs: 500 });
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
    }
  });
});

function span(i: number): SpanRecord {
  return { traceId: 'b'.repeat(32), spanId: String(i).padStart(16, '0'), parentSpanId: '', traceState: undefined, name: `s${i}`, kind: 1, remoteParent: false, startMs: i, endMs: i + 1, attributes: [], failed: false };
}
