// Response buffering (docs/security.md, "Session 28 (pool28)"; docs/upstreams.md "Response
// buffering"). Session 27 found that a client which does not read its answers held the target's
// pool: one HTTP/2 session with 100 unread 1 MiB answers took all 100 sockets until request-secs,
// and another client's GET waited 52 s. Here the pool has 2 sockets and one h2 session opens 4
// streams for 4 MiB answers with a stream window of 0 (it can never be sent a byte): the gateway
// must take each answer from the upstream (memory, then a temp file) and free the socket.
import { after, afterEach, before, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import http2 from 'node:http2';
import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, readlinkSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { request } from '../../helpers/http.ts';
import { closeServer } from '../../helpers/upstream.ts';
import { notHung, until } from '../../helpers/until.ts';
import { startGateway, type Gateway } from '../../../src/server/gateway.ts';
import { responseBufferBudget } from '../../../src/upstream/response-buffer.ts';

const BIG = 4 * 1024 * 1024;
const POOL = 2;
const body = Buffer.alloc(BIG);
for (let i = 0; i < BIG; i += 4) body.writeUInt32BE(i, i);
const bodyHash = createHash('sha256').update(body).digest('hex');

let upstream: http.Server;
let gw: Gateway;
let spoolDir: string;
/** requests the upstream got, by path */
const seen = new Map<string, number>();
/** answers the upstream wrote whole */
let finished = 0;

before(async () => {
  upstream = http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0]!;
    seen.set(path, (seen.get(path) ?? 0) + 1);
    req.resume();
    res.on('finish', () => finished++);
    if (path === '/small') return res.end('ok');
    if (path === '/events') {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      return res.end(body);
    }
    if (path === '/no-buffering') {
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'x-accel-buffering': 'no' });
      return res.end(body);
    }
    if (path === '/broken') {
      // half the promised body, then the connection drops
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(BIG) });
      res.write(body.subarray(0, BIG / 2), () => setTimeout(() => req.socket.destroy(), 50));
      return;
    }
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(BIG) });
    res.end(body);
  });
  await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
  const port = (upstream.address() as AddressInfo).port;
  spoolDir = mkdtempSync(join(tmpdir(), 'pool28-'));
  gw = await startGateway({
    logLevel: 'silent',
    configText: `
system { graceful-shutdown-timeout-secs 1 }
limits { max-response-buffer-bytes-per-client 268435456 }
listeners {
  listener "h2c" { address "127.0.0.1:0"; protocol "h2"; request-timeout-secs 120 }
  listener "h1" { address "127.0.0.1:0"; protocol "http" }
}
routes { route "main" { matches { path-prefix "/" }; upstream "backend" } }
upstreams {
  upstream "backend" {
    target "127.0.0.1:${port}"
    connection-pool { max-connections ${POOL} }
    timeouts { request-secs 120 }
  }
}
`,
  });
  responseBufferBudget.dir = spoolDir;
});

after(async () => {
  await gw?.close();
  await closeServer(upstream);
  rmSync(spoolDir, { recursive: true, force: true });
});

afterEach(async () => {
  // whatever a test did, every buffered byte is given back once its client is gone
  await until('the response buffers to be released', () => responseBufferBudget.memoryUsed === 0 && responseBufferBudget.fileUsed === 0 && responseBufferBudget.clientCount === 0);
  await until('no spool file left open', () => openSpools() === 0);
  assert.deepEqual(readdirSync(spoolDir), [], 'spool files are unlinked as soon as they are open');
});

/** Descriptors of this process open on (unlinked) spool files. */
function openSpools(): number {
  let n = 0;
  for (const fd of readdirSync('/proc/self/fd')) {
    try {
      if (readlinkSync(`/proc/self/fd/${fd}`).includes('sentinel-resp-')) n++;
    } catch {
      // closed meanwhile
    }
  }
  return n;
}

async function metric(event: string): Promise<number> {
  const m = gw.metrics.registry.getSingleMetric('sentinel_response_buffering_total');
  return (await m?.get())?.values.find((v) => v.labels.event === event)?.value ?? 0;
}

/** A session whose streams can never be sent a DATA byte (stream window 0) until it says so. */
function stalledSession(): http2.ClientHttp2Session {
  const s = http2.connect(`http://127.0.0.1:${gw.address('h2c').port}`, { settings: { initialWindowSize: 0 } });
  s.on('error', () => undefined);
  return s;
}

interface Unread {
  stream: http2.ClientHttp2Stream;
  status: Promise<number>;
  headers: Promise<http2.IncomingHttpHeaders>;
  /** resolves with the body's hash and length once the client reads it */
  read(): Promise<{ hash: string; bytes: number; aborted: boolean }>;
}

function unread(session: http2.ClientHttp2Session, path: string): Unread {
  const stream = session.request({ ':path': path });
  stream.on('error', () => undefined);
  stream.end();
  const headers = new Promise<http2.IncomingHttpHeaders>((resolve) => {
    stream.once('response', resolve);
    stream.once('close', () => resolve({}));
  });
  return {
    stream,
    status: headers.then((h) => Number(h[':status'] ?? -1)),
    headers,
    read: () =>
      new Promise((resolve) => {
        const h = createHash('sha256');
        let bytes = 0;
        let aborted = false;
        stream.once('aborted', () => (aborted = true));
        stream.on('data', (c: Buffer) => {
          h.update(c);
          bytes += c.length;
        });
        stream.once('close', () => resolve({ hash: h.digest('hex'), bytes, aborted: aborted || !stream.readableEnded }));
      }),
  };
}

test('a client that reads none of its answers no longer holds the pool: each is buffered, the sockets go back, another client is answered', async () => {
  const session = stalledSession();
  try {
    const streams = Array.from({ length: 2 * POOL }, (_, i) => unread(session, `/big?i=${i}`));
    // Without buffering only POOL of them ever reach the upstream (each holds its socket).
    await until(() => `every big request to reach the upstream (seen ${seen.get('/big') ?? 0} of ${2 * POOL})`, () => seen.get('/big') === 2 * POOL);
    await until('the big answers to be spooled', async () => (await metric('spooled')) >= 2 * POOL);
    assert.ok(responseBufferBudget.fileUsed > 0, 'the rest of each answer is in a temp file');
    const small = await notHung('another client\'s GET to the same target', request(`http://127.0.0.1:${gw.address('h1').port}/small`).then(({ status, body }) => ({ status, body })));
    assert.deepEqual(small, { status: 200, body: 'ok' });
    // the stalled client still gets every byte, in order, once it reads
    const reads = streams.map((s) => s.read());
    session.settings({ initialWindowSize: 1 << 20 });
    for (const r of await notHung('the buffered answers read', Promise.all(reads))) assert.deepEqual(r, { hash: bodyHash, bytes: BIG, aborted: false });
    assert.deepEqual(await Promise.all(streams.map((s) => s.status)), streams.map(() => 200));
  } finally {
    session.destroy();
  }
});

test('a client that goes away mid-drain releases its memory and temp file', async () => {
  const session = stalledSession();
  const before = seen.get('/big') ?? 0;
  const streams = Array.from({ length: 2 }, (_, i) => unread(session, `/big?abort=${i}`));
  await until('both answers to be taken from the upstream', () => seen.get('/big') === before + 2 && responseBufferBudget.fileUsed > 0);
  // read a little of one, then leave
  session.settings({ initialWindowSize: 65535 });
  await notHung('some bytes', new Promise((r) => streams[0]!.stream.once('data', r)));
  session.destroy();
  // afterEach: budget back to zero, no spool descriptor open
});

test('a limit reached (per client) makes the relay wait for its client, counted; the answer is still whole', async () => {
  const was = responseBufferBudget.perClientCap;
  responseBufferBudget.perClientCap = 1024 * 1024;
  const session = stalledSession();
  try {
    const limited = await metric('limit_client');
    const s = unread(session, '/big?limited');
    await until('the per-client bound to be reached', async () => (await metric('limit_client')) > limited);
    assert.ok(responseBufferBudget.memoryUsed + responseBufferBudget.fileUsed <= 1024 * 1024 + 128 * 1024, 'at most the bound (and one chunk past it) is held');
    const r = s.read();
    session.settings({ initialWindowSize: 1 << 20 });
    assert.deepEqual(await notHung('the limited answer read', r), { hash: bodyHash, bytes: BIG, aborted: false });
  } finally {
    session.destroy();
    responseBufferBudget.perClientCap = was;
  }
});

test('streaming answers are not buffered: event streams and X-Accel-Buffering: no (not relayed)', async () => {
  const session = stalledSession();
  try {
    const buffered = await metric('buffered');
    const ev = unread(session, '/events');
    const nb = unread(session, '/no-buffering');
    assert.equal(await notHung('the event stream opens', ev.status), 200);
    const headers = await notHung('the unbuffered answer', nb.headers);
    assert.equal(headers['x-accel-buffering'], undefined, 'nginx\'s header is not relayed');
    // a relay buffers at its first write the client does not take, before its head goes out
    assert.equal(await metric('buffered'), buffered, 'neither answer was buffered');
    assert.equal(responseBufferBudget.memoryUsed + responseBufferBudget.fileUsed, 0);
  } finally {
    session.destroy();
  }
});

test('an upstream that fails mid-body while the answer is buffered: the client\'s stream is cut, not ended', async () => {
  const session = stalledSession();
  try {
    const buffered = await metric('buffered');
    const s = unread(session, '/broken');
    await until('the broken answer to be buffered', async () => (await metric('buffered')) > buffered);
    const r = s.read();
    session.settings({ initialWindowSize: 1 << 20 });
    const got = await notHung('the broken answer', r);
    assert.ok(got.aborted, `the stream is reset (${JSON.stringify(got)})`);
    assert.ok(got.bytes < BIG, 'the client never sees a short body as a whole one');
  } finally {
    session.destroy();
  }
});

// Session 29 audit (audit29), a probe that held: a temp file that cannot be made or written (a
// full disk; here the folder is gone) cuts that answer (file_error), the client's cut reaches the
// exchange (the upstream stops) and no byte stays counted against the budget (afterEach). Before
// the request-secs test: its gateway, started last, takes the process budget's metric.
test('a temp file that cannot be made cuts the answer, stops the upstream, and every byte counted is given back', async () => {
  const dir = responseBufferBudget.dir;
  responseBufferBudget.dir = join(spoolDir, 'gone');
  const session = stalledSession();
  try {
    const errorsBefore = await metric('file_error');
    const s = unread(session, '/big?file-error');
    const closed = new Promise<number>((r) => s.stream.once('close', () => r(s.stream.rstCode ?? -1)));
    await until('the spool to fail', async () => (await metric('file_error')) > errorsBefore);
    assert.equal(await notHung('the answer cut', closed), http2.constants.NGHTTP2_INTERNAL_ERROR);
  } finally {
    session.destroy();
    responseBufferBudget.dir = dir;
  }
  // afterEach: the budget back to zero
});

test('request-secs still bounds a buffered relay: a client that never reads is cut once it runs out, and its buffers go back', async () => {
  const port = (upstream.address() as AddressInfo).port;
  const short = await startGateway({
    logLevel: 'silent',
    configText: `
system { graceful-shutdown-timeout-secs 1 }
listeners { listener "h2c" { address "127.0.0.1:0"; protocol "h2" } }
routes { route "main" { matches { path-prefix "/" }; upstream "backend" } }
upstreams { upstream "backend" { target "127.0.0.1:${port}"; timeouts { request-secs 1 } } }
`,
  });
  const session = http2.connect(`http://127.0.0.1:${short.address('h2c').port}`, { settings: { initialWindowSize: 0 } });
  session.on('error', () => undefined);
  try {
    const done = finished;
    const s = unread(session, '/big?request-secs');
    await until('the upstream to have sent the whole answer', () => finished > done);
    const closed = await notHung('the stalled stream cut at request-secs', new Promise<number>((r) => s.stream.once('close', () => r(s.stream.rstCode ?? -1))));
    assert.notEqual(closed, http2.constants.NGHTTP2_NO_ERROR, 'cut, not ended');
  } finally {
    session.destroy();
    await short.close();
  }
});

