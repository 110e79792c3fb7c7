// A request body sent one byte per chunk (HTTP/1.1 chunked coding, HTTP/2 DATA frames): the
// reader that buffers bodies (request buffering, agent body inspection) kept one Buffer per chunk,
// ~150 bytes of heap per byte of body: 1 MiB sent as 6 MiB of chunked framing held ~150 MB until
// the body ended, and a streamed one (past max-body-buffer-bytes, or a route's 0) went upstream as
// one chunk per byte (docs/security.md, "Session 24 audit"). Small chunks are now gathered. And
// since session 25 a body may come in at most 4,096 chunks plus one per 64 bytes (plus 100 a
// second): Node's own cost per chunk (~1.4 s of CPU per MiB of one-byte chunks) is bounded by
// closing the connection (HTTP/2: resetting the stream) past that (src/server/body-chunks.ts).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import v8 from 'node:v8';
import vm from 'node:vm';
import { gatewayFrom } from '../../helpers/gateway.ts';
import { closeServer, startUpstream, type TestUpstream } from '../../helpers/upstream.ts';
import { requestReads } from '../../helpers/chunk-reads.ts';
import { rawConnection } from '../../helpers/raw-http.ts';
import { until } from '../../helpers/until.ts';
import { Flag, FrameType, frame, openRaw, settings } from '../abuse/h2-frames.ts';
import type { Gateway } from '../../../src/server/gateway.ts';

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;
/** heap in use after a full collection: what the pending request keeps alive */
function heapNow(): number {
  gc();
  return process.memoryUsage().heapUsed;
}

let upstream: TestUpstream;
/** an upstream that counts the data events of each body (one per chunk of a chunked body) */
let counting: http.Server;
const events = new Map<string, { events: number; bytes: number; contentLength?: string }>();
let gw: Gateway;

before(async () => {
  upstream = await startUpstream();
  counting = http.createServer((req, res) => {
    const seen = { events: 0, bytes: 0, ...(req.headers['content-length'] !== undefined ? { contentLength: req.headers['content-length'] } : {}) };
    req.on('data', (c: Buffer) => {
      seen.events++;
      seen.bytes += c.length;
    });
    req.on('end', () => {
      events.set(req.url!, seen);
      res.end('ok');
    });
  });
  await new Promise<void>((r) => counting.listen(0, '127.0.0.1', r));
  ({ gw } = await gatewayFrom(`
system { graceful-shutdown-timeout-secs 2 }
listeners {
  listener "http" { address "127.0.0.1:0" }
  listener "h2c" { address "127.0.0.1:0"; protocol "h2" }
}
routes {
  route "streamed" { matches { path-prefix "/streamed/" } ; upstream "counting"; policies { max-body-buffer-bytes 0 } }
  route "main" { matches { path-prefix "/" } ; upstream "backend" }
}
upstreams {
  upstream "backend" { target "${upstream.address}"; timeouts { request-secs 60 } }
  upstream "counting" { target "127.0.0.1:${(counting.address() as net.AddressInfo).port}"; timeouts { request-secs 60 } }
}
`));
});

after(async () => {
  await gw.close();
  await upstream.close();
  await closeServer(counting);
});

test('a body in more chunks than its size explains: HTTP/1.1 closes the connection, HTTP/2 resets the stream; nothing is forwarded', async () => {
  const seenBefore = upstream.seen.length;
  // HTTP/1.1: 20,000 chunks of one byte (120 kB of wire) to a route that reads bodies first
  const conn = await rawConnection(gw.address('http').port);
  const { socket: s, closed } = conn;
  s.write('POST /budget-h1 HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n');
  s.write('1\r\nx\r\n'.repeat(20_000));
  // before: the whole body was read (4.5 s of CPU a MiB on this path) and forwarded
  await closed;
  assert.equal(conn.answer, '');
  // HTTP/2: 20,000 DATA frames of one byte (within the stream's initial window)
  const path = '/budget-h2';
  const raw = await openRaw(gw.address('h2c').port, false);
  try {
    const block = Buffer.concat([Buffer.from([0x83, 0x86, 0x04, path.length]), Buffer.from(path), Buffer.from([0x01, 1]), Buffer.from('a')]);
    raw.socket.write(Buffer.concat([settings(), frame(FrameType.HEADERS, Flag.END_HEADERS, 1, block)]));
    raw.socket.write(Buffer.concat(Array.from({ length: 20_000 }, () => frame(FrameType.DATA, 0, 1, Buffer.from('x')))));
    await until(() => 'the stream to be reset', () => raw.received.includes(FrameType.RST_STREAM));
    raw.socket.write(frame(FrameType.DATA, Flag.END_STREAM, 1));
  } finally {
    raw.socket.destroy();
  }
  const metrics = await gw.metrics.render();
  assert.match(metrics, /sentinel_connections_closed_total\{listener="http",reason="body_chunks"\} 1\b/);
  assert.match(metrics, /sentinel_connections_closed_total\{listener="h2c",reason="body_chunks"\} 1\b/);
  assert.ok(!upstream.seen.slice(seenBefore).some((r) => r.url === '/budget-h1' || r.url === path), 'nothing forwarded');
});

test('4,096 one-byte chunks and a body whose chunks average 64 bytes are within the budget', async () => {
  const one = await postChunked('/budget-free', Buffer.from('1\r\nx\r\n'.repeat(4096)));
  assert.match(one, /^HTTP\/1\.1 200 /);
  assert.equal(upstream.seen.at(-1)!.body.length, 4096);
  // 16,000 chunks: 15,000 of 64 bytes, then 1,000 of one byte (at 4,096 + 960,000 / 64 = 19,096)
  const framed = Buffer.concat([Buffer.from(`40\r\n${'y'.repeat(64)}\r\n`.repeat(15_000)), Buffer.from('1\r\nz\r\n'.repeat(1000))]);
  const mixed = await postChunked('/budget-mixed', framed);
  assert.match(mixed, /^HTTP\/1\.1 200 /);
  assert.equal(upstream.seen.at(-1)!.body.length, 961_000);
});

/**
 * On one new h2c session: `streams` POSTs, each a body of `frames` one-byte DATA frames then an
 * empty END_STREAM (all within the initial windows). The frame types received, once every stream
 * was answered (HEADERS) or reset.
 */
async function smallFramesOnOneSession(prefix: string, streams: number, frames: number): Promise<{ answered: number; reset: number }> {
  const raw = await openRaw(gw.address('h2c').port, false);
  try {
    const out: Buffer[] = [settings()];
    for (let i = 0; i < streams; i++) {
      const path = `${prefix}/${i}`;
      const block = Buffer.concat([Buffer.from([0x83, 0x86, 0x04, path.length]), Buffer.from(path), Buffer.from([0x01, 1]), Buffer.from('a')]);
      out.push(frame(FrameType.HEADERS, Flag.END_HEADERS, 2 * i + 1, block));
    }
    raw.socket.write(Buffer.concat(out));
    // round-robin, as a client multiplexing its uploads sends them
    const one = Buffer.from('x');
    for (let f = 0; f < frames; f++) raw.socket.write(Buffer.concat(Array.from({ length: streams }, (_, i) => frame(FrameType.DATA, 0, 2 * i + 1, one))));
    raw.socket.write(Buffer.concat(Array.from({ length: streams }, (_, i) => frame(FrameType.DATA, Flag.END_STREAM, 2 * i + 1))));
    const count = (t: number) => raw.received.filter((x) => x === t).length;
    await until(() => `every stream answered or reset (${count(FrameType.HEADERS)} + ${count(FrameType.RST_STREAM)})`, () => count(FrameType.HEADERS) + count(FrameType.RST_STREAM) >= streams || raw.closed);
    return { answered: count(FrameType.HEADERS), reset: count(FrameType.RST_STREAM) };
  } finally {
    raw.socket.destroy();
  }
}

test('an HTTP/2 session\'s bodies share one budget of small pieces: 100 streams of 400 one-byte DATA frames are cut, 100 of 60 pass', async () => {
  const seenBefore = upstream.seen.length;
  // 40,000 one-byte frames: each body well within its own 4,096, together ~10x the session's 4,096
  // (before: all 100 forwarded, and the same again on the same session, round after round)
  const cut = await smallFramesOnOneSession('/session-budget', 100, 400);
  assert.ok(cut.reset > 0, `no stream was reset (${cut.answered} answered)`);
  const metrics = await gw.metrics.render();
  assert.match(metrics, /sentinel_connections_closed_total\{listener="h2c",reason="connection_body_chunks"\} [1-9]/);
  const forwarded = upstream.seen.slice(seenBefore).filter((r) => r.url.startsWith('/session-budget/')).length;
  assert.ok(forwarded < 100, `${forwarded} of 100 forwarded`);
  // many small bodies (a gRPC client's unary calls): each body's first 64 pieces are its own
  const fine = await smallFramesOnOneSession('/session-fine', 100, 60);
  assert.deepEqual(fine, { answered: 100, reset: 0 });
  assert.equal(upstream.seen.slice(seenBefore).filter((r) => r.url.startsWith('/session-fine/')).length, 100);
});

/** POSTs `framed` (chunked coding without its last chunk) on a connection of its own; the answer's text */
async function postChunked(path: string, framed: Buffer): Promise<string> {
  const conn = await rawConnection(gw.address('http').port);
  const s = conn.socket;
  try {
    s.write(`POST ${path} HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n`);
    for (let at = 0; at < framed.length; at += 65_536) if (!s.write(framed.subarray(at, at + 65_536))) await new Promise((r) => s.once('drain', r));
    s.write('0\r\n\r\n');
    await conn.closed;
  } finally {
    s.destroy();
  }
  return conn.answer;
}

test('HTTP/1.1: a 1 MiB body in 64-byte chunks (16,384 of them) is held in about its own size, and forwarded byte for byte', async () => {
  const size = 1 << 20; // the default max-body-buffer-bytes: read whole before forwarding
  const reads = requestReads('/one-byte-chunks');
  const conn = await rawConnection(gw.address('http').port);
  const s = conn.socket;
  try {
    const heap0 = heapNow();
    s.write('POST /one-byte-chunks HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n');
    // the smallest chunks the budget lets a body of any size use (src/server/body-chunks.ts)
    const block = Buffer.from(`40\r\n${'x'.repeat(64)}\r\n`.repeat(128));
    for (let sent = 0; sent < size; sent += 8192) if (!s.write(block)) await new Promise((r) => s.once('drain', r));
    await reads.upTo(size, 'the whole body');
    const grown = heapNow() - heap0;
    // one Buffer per chunk (before session 24): 3.3 MB here (and ~150 MB for one-byte chunks);
    // gathered: ~0.2 MB beyond the body, which is held outside the heap
    assert.ok(grown < 1.5e6, `heap grew by ${(grown / 1e6).toFixed(1)} MB while the gateway held a 1 MiB body`);
    s.write('0\r\n\r\n');
    await until(() => `the answer (got ${JSON.stringify(conn.answer.slice(0, 80))})`, () => /\r\n\r\n\{.*\}$/.test(conn.answer));
  } finally {
    reads.close();
    s.destroy();
  }
  assert.match(conn.answer, /^HTTP\/1\.1 200 /);
  const hit = upstream.seen.at(-1)!;
  assert.equal(hit.url, '/one-byte-chunks');
  assert.equal(hit.headers['content-length'], String(size));
  assert.ok(hit.body.equals(Buffer.alloc(size, 'x')), 'the upstream got the body byte for byte');
});

test('a streamed body sent 16 bytes per chunk goes upstream gathered, not as one chunk per chunk (HTTP/1.1 chunked, HTTP/2 with content-length)', async () => {
  const size = 60_000;
  // HTTP/1.1: 3,750 chunks of 16 bytes (within the chunk budget), to a route that streams every body
  const s = net.connect(gw.address('http').port, '127.0.0.1');
  s.on('error', () => undefined);
  let answer = '';
  s.setEncoding('latin1');
  s.on('data', (c: string) => (answer += c));
  try {
    await new Promise<void>((r) => s.once('connect', () => r()));
    s.write('POST /streamed/h1 HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n');
    const block = Buffer.from(`10\r\n${'x'.repeat(16)}\r\n`.repeat(250));
    for (let sent = 0; sent < size; sent += 4000) if (!s.write(block)) await new Promise((r) => s.once('drain', r));
    s.write('0\r\n\r\n');
    await until(() => `the answer (got ${JSON.stringify(answer.slice(0, 80))})`, () => /\r\n\r\nok$/.test(answer) || /\r\n0\r\n\r\n$/.test(answer));
  } finally {
    s.destroy();
  }
  assert.match(answer, /^HTTP\/1\.1 200 /);
  // HTTP/2: 3,750 DATA frames of 16 bytes with a content-length (streamed as it is above the threshold)
  const path = '/streamed/h2';
  const raw = await openRaw(gw.address('h2c').port, false);
  try {
    const cl = String(size);
    const headers = Buffer.concat([Buffer.from([0x83, 0x86, 0x04, path.length]), Buffer.from(path), Buffer.from([0x01, 1]), Buffer.from('a'), Buffer.from([0x0f, 0x0d, cl.length]), Buffer.from(cl)]);
    raw.socket.write(frame(FrameType.HEADERS, Flag.END_HEADERS, 1, headers));
    const piece = Buffer.alloc(16, 'x');
    const one = frame(FrameType.DATA, 0, 1, piece);
    raw.socket.write(Buffer.concat([...Array.from({ length: size / 16 - 1 }, () => one), frame(FrameType.DATA, Flag.END_STREAM, 1, piece)]));
    await until(() => 'the upstream to get the HTTP/2 body', () => events.has(path));
  } finally {
    raw.socket.destroy();
  }
  const h1 = events.get('/streamed/h1')!;
  const h2 = events.get(path)!;
  assert.equal(h1.bytes, size);
  assert.equal(h2.bytes, size);
  assert.equal(h2.contentLength, String(size));
  // before: 3,750 upstream chunks each (one per chunk); now about one per 1 kB or socket read
  assert.ok(h1.events < 2000, `HTTP/1.1: the upstream read the body in ${h1.events} pieces`);
  assert.ok(h2.events < 2000, `HTTP/2: the upstream read the body in ${h2.events} pieces`);
});
