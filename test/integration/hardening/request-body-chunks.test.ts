// A request body sent one byte per chunk (HTTP/1.1 chunked coding, HTTP/2 DATA frames): the
// reader that buffers bodies (request buffering, agent body inspection) kept one Buffer per chunk,
// ~150 bytes of heap per byte of body: 1 MiB sent as 6 MiB of chunked framing held ~150 MB until
// the body ended, and a streamed one (past max-body-buffer-bytes, or a route's 0) went upstream as
// one chunk per byte (docs/security.md, "Session 24 audit"). Small chunks are now gathered.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import v8 from 'node:v8';
import vm from 'node:vm';
import { gatewayFrom } from '../../helpers/gateway.ts';
import { closeServer, startUpstream, type TestUpstream } from '../../helpers/upstream.ts';
import { requestReads } from '../../helpers/chunk-reads.ts';
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

test('HTTP/2: 60,000 DATA frames of one byte without content-length are held in about the body size', async () => {
  const size = 60_000; // within the stream's initial window (65,535): no WINDOW_UPDATE to wait for
  const path = '/one-byte-frames';
  const reads = requestReads(path);
  const raw = await openRaw(gw.address('h2c').port, false);
  try {
    // HPACK: :method POST (static 3), :scheme http (6), :path and :authority as literals
    const block = Buffer.concat([Buffer.from([0x83, 0x86, 0x04, path.length]), Buffer.from(path), Buffer.from([0x01, 1]), Buffer.from('a')]);
    const heap0 = heapNow();
    raw.socket.write(Buffer.concat([settings(), frame(FrameType.HEADERS, Flag.END_HEADERS, 1, block)]));
    const one = frame(FrameType.DATA, 0, 1, Buffer.from('x'));
    const batch = Buffer.concat(Array.from({ length: 1000 }, () => one));
    for (let sent = 0; sent < size; sent += 1000) if (!raw.socket.write(batch)) await new Promise((r) => raw.socket.once('drain', r));
    await reads.upTo(size, 'the whole body');
    const grown = heapNow() - heap0;
    // before: ~9 MB (one Buffer per frame)
    assert.ok(grown < 3e6, `heap grew by ${(grown / 1e6).toFixed(1)} MB while the gateway held a 60 kB body`);
    raw.socket.write(frame(FrameType.DATA, Flag.END_STREAM, 1));
    await until(() => 'the upstream to get the request', () => upstream.seen.at(-1)?.url === path);
  } finally {
    reads.close();
    raw.socket.destroy();
  }
  const hit = upstream.seen.at(-1)!;
  assert.equal(hit.headers['content-length'], String(size));
  assert.ok(hit.body.equals(Buffer.alloc(size, 'x')));
});

test('HTTP/1.1: a 1 MiB body in 1-byte chunks is held in about its own size, and forwarded byte for byte', async () => {
  const size = 1 << 20; // the default max-body-buffer-bytes: read whole before forwarding
  const reads = requestReads('/one-byte-chunks');
  const s = net.connect(gw.address('http').port, '127.0.0.1');
  s.on('error', () => undefined);
  let answer = '';
  s.setEncoding('latin1');
  s.on('data', (c: string) => (answer += c));
  try {
    await new Promise<void>((r) => s.once('connect', () => r()));
    const heap0 = heapNow();
    s.write('POST /one-byte-chunks HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n');
    const block = Buffer.from('1\r\nx\r\n'.repeat(8192));
    for (let sent = 0; sent < size; sent += 8192) if (!s.write(block)) await new Promise((r) => s.once('drain', r));
    await reads.upTo(size, 'the whole body');
    const grown = heapNow() - heap0;
    // before: ~150 MB (one Buffer per byte); now about the body (1 MiB) and the gathered pieces
    assert.ok(grown < 24e6, `heap grew by ${Math.round(grown / 1e6)} MB while the gateway held a 1 MiB body`);
    s.write('0\r\n\r\n');
    await until(() => `the answer (got ${JSON.stringify(answer.slice(0, 80))})`, () => /\r\n\r\n\{.*\}$/.test(answer));
  } finally {
    reads.close();
    s.destroy();
  }
  assert.match(answer, /^HTTP\/1\.1 200 /);
  const hit = upstream.seen.at(-1)!;
  assert.equal(hit.url, '/one-byte-chunks');
  assert.equal(hit.headers['content-length'], String(size));
  assert.ok(hit.body.equals(Buffer.alloc(size, 'x')), 'the upstream got the body byte for byte');
});

test('a streamed body sent one byte per chunk goes upstream gathered, not as one chunk per byte (HTTP/1.1 chunked, HTTP/2 with content-length)', async () => {
  const size = 60_000;
  // HTTP/1.1: 60,000 chunks of one byte in 8 kB writes, to a route that streams every body
  const s = net.connect(gw.address('http').port, '127.0.0.1');
  s.on('error', () => undefined);
  let answer = '';
  s.setEncoding('latin1');
  s.on('data', (c: string) => (answer += c));
  try {
    await new Promise<void>((r) => s.once('connect', () => r()));
    s.write('POST /streamed/h1 HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n');
    const block = Buffer.from('1\r\nx\r\n'.repeat(1000));
    for (let sent = 0; sent < size; sent += 1000) if (!s.write(block)) await new Promise((r) => s.once('drain', r));
    s.write('0\r\n\r\n');
    await until(() => `the answer (got ${JSON.stringify(answer.slice(0, 80))})`, () => /\r\n\r\nok$/.test(answer) || /\r\n0\r\n\r\n$/.test(answer));
  } finally {
    s.destroy();
  }
  assert.match(answer, /^HTTP\/1\.1 200 /);
  // HTTP/2: 60,000 DATA frames of one byte with a content-length (streamed as it is above the threshold)
  const path = '/streamed/h2';
  const raw = await openRaw(gw.address('h2c').port, false);
  try {
    const cl = String(size);
    const headers = Buffer.concat([Buffer.from([0x83, 0x86, 0x04, path.length]), Buffer.from(path), Buffer.from([0x01, 1]), Buffer.from('a'), Buffer.from([0x0f, 0x0d, cl.length]), Buffer.from(cl)]);
    raw.socket.write(frame(FrameType.HEADERS, Flag.END_HEADERS, 1, headers));
    const one = frame(FrameType.DATA, 0, 1, Buffer.from('x'));
    const batch = Buffer.concat(Array.from({ length: 1000 }, () => one));
    for (let sent = 0; sent < size - 1000; sent += 1000) if (!raw.socket.write(batch)) await new Promise((r) => raw.socket.once('drain', r));
    raw.socket.write(Buffer.concat([...Array.from({ length: 999 }, () => one), frame(FrameType.DATA, Flag.END_STREAM, 1, Buffer.from('x'))]));
    await until(() => 'the upstream to get the HTTP/2 body', () => events.has(path));
  } finally {
    raw.socket.destroy();
  }
  const h1 = events.get('/streamed/h1')!;
  const h2 = events.get(path)!;
  assert.equal(h1.bytes, size);
  assert.equal(h2.bytes, size);
  assert.equal(h2.contentLength, String(size));
  // before: 60,000 upstream chunks each (one per byte); now about one per 1 kB or socket read
  assert.ok(h1.events < 2000, `HTTP/1.1: the upstream read the body in ${h1.events} pieces`);
  assert.ok(h2.events < 2000, `HTTP/2: the upstream read the body in ${h2.events} pieces`);
});
