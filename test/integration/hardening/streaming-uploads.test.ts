// Session 12 audit finding, closed in session 13 (docs/security.md, "Request buffering"): bodies
// that stream to the upstream (above max-body-buffer-bytes, gRPC) each hold an upstream socket while
// the client sends; `limits { max-streaming-uploads-per-client }` caps them per client address. A
// request beyond the cap gets 429 before a target is picked, and every ending (success, client
// abort, upstream error, timeout) gives the slot back.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import http2 from 'node:http2';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { gatewayFrom } from '../../helpers/gateway.ts';
import type { Gateway } from '../../../src/server/gateway.ts';
import type { UploadSlots } from '../../../src/server/upload-slots.ts';
import { h2Request } from '../../helpers/http.ts';
import { closeServer } from '../../helpers/upstream.ts';
import { notHungTurning, until } from '../../helpers/until.ts';

const CAP = 2;
let upstream: http.Server;
/** requests the upstream has received (headers), by path */
const arrived: string[] = [];
let gw: Gateway;
let port: number;
let h2port: number;

before(async () => {
  upstream = http.createServer((req, res) => {
    arrived.push(req.url!);
    if (req.url!.startsWith('/cut')) {
      req.once('data', () => req.socket.destroy());
      return;
    }
    let n = 0;
    req.on('data', (c: Buffer) => (n += c.length));
    req.on('end', () => res.end(JSON.stringify({ bytes: n })));
  });
  await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
  const target = `127.0.0.1:${(upstream.address() as AddressInfo).port}`;
  const g = await gatewayFrom(`
system { graceful-shutdown-timeout-secs 2 }
listeners {
  listener "http" { address "127.0.0.1:0" }
  listener "h2c" { address "127.0.0.1:0"; protocol "h2" }
}
limits { max-body-buffer-bytes 1024; max-streaming-uploads-per-client ${CAP} }
routes {
  route "short" { matches { path-prefix "/timeout" } ; upstream "short" }
  route "main" { matches { path-prefix "/" } ; upstream "backend" }
}
upstreams {
  upstream "backend" { target "${target}"; connection-pool { max-connections 8 } }
  upstream "short" { target "${target}"; timeouts { request-secs 1 } }
}
`);
  gw = g.gw;
  port = gw.address('http').port;
  h2port = gw.address('h2c').port;
});

after(async () => {
  await gw.close();
  await closeServer(upstream);
});

interface Trickle {
  socket: net.Socket;
  /** the response head and body received so far */
  answer: () => string;
  /** resolves once a whole response head has arrived (or the socket closed) */
  head: Promise<string>;
}

/** A POST whose 100 kB body is announced and then trickled: one byte now, the rest on finish(). */
async function trickle(path: string, opts: { from?: string; headers?: string } = {}): Promise<Trickle> {
  const socket = net.connect({ port, host: '127.0.0.1', ...(opts.from ? { localAddress: opts.from } : {}) });
  socket.on('error', () => undefined);
  await new Promise<void>((r) => socket.once('connect', () => r()));
  let text = '';
  socket.setEncoding('latin1');
  const head = new Promise<string>((resolve) => {
    socket.on('data', (c: string) => {
      text += c;
      if (text.includes('\r\n\r\n')) resolve(text);
    });
    socket.on('close', () => resolve(text));
  });
  socket.write(`POST ${path} HTTP/1.1\r\nHost: a\r\nContent-Length: 100000\r\n${opts.headers ?? ''}\r\nx`);
  return { socket, head, answer: () => text };
}

function finish(t: Trickle): void {
  t.socket.write(Buffer.alloc(99_999, 0x61));
}

async function blocked(): Promise<number> {
  const v = (await gw.metrics.blockedRequests.get()).values.find((x) => x.labels.reason === 'streaming_uploads_limit');
  return v?.value ?? 0;
}

/** CAP trickles reach the upstream, one more from the same client gets 429 at once; all closed after. */
async function assertCapFree(path: string): Promise<void> {
  arrived.length = 0;
  const held: Trickle[] = [];
  try {
    for (let i = 0; i < CAP; i++) held.push(await trickle(`${path}-${i}`));
    await until('the held uploads at the upstream', () => arrived.length === CAP);
    const before = await blocked();
    const over = await trickle(`${path}-over`);
    held.push(over);
    assert.match(await over.head, /^HTTP\/1\.1 429 /);
    assert.match(over.answer(), /\r\nretry-after: 1\r\n/i);
    assert.match(over.answer(), /\r\nconnection: close\r\n/i);
    assert.equal(await blocked(), before + 1);
    assert.deepEqual(arrived.filter((p) => p.endsWith('-over')), [], 'the refused upload never reached the upstream');
  } finally {
    for (const t of held) t.socket.destroy();
  }
}

test('one client: CAP streaming uploads at once, the next gets 429 with Retry-After before any upstream sees it', async () => {
  await assertCapFree('/first');
});

test('another client address and a GET of the capped client are unaffected', async () => {
  arrived.length = 0;
  const held: Trickle[] = [];
  try {
    for (let i = 0; i < CAP; i++) held.push(await trickle(`/mine-${i}`));
    await until('the held uploads', () => arrived.length === CAP);
    // bounded by event-loop time (a capped GET or small POST would be a 429 at once, not a wait)
    const get = await notHungTurning('a GET beside the held uploads', fetch(`http://127.0.0.1:${port}/get`));
    assert.equal(get.status, 200);
    // a small (buffered) body is not a streaming upload
    const small = await notHungTurning('a small POST beside the held uploads', fetch(`http://127.0.0.1:${port}/small`, { method: 'POST', body: 'hello' }));
    assert.equal(small.status, 200);
    const other = await trickle('/other', { from: '127.0.0.2' });
    held.push(other);
    await until('the other client at the upstream', () => arrived.includes('/other'));
    finish(other);
    assert.match(await other.head, /^HTTP\/1\.1 200 /);
  } finally {
    for (const t of held) t.socket.destroy();
  }
});

test('slots come back after a successful upload', async () => {
  const a = await trickle('/ok-a');
  const b = await trickle('/ok-b');
  finish(a);
  finish(b);
  assert.match(await a.head, /^HTTP\/1\.1 200 /);
  assert.match(await b.head, /^HTTP\/1\.1 200 /);
  a.socket.destroy();
  b.socket.destroy();
  await assertCapFree('/after-ok');
});

test('slots come back after the client aborts mid-upload', async () => {
  arrived.length = 0;
  const a = await trickle('/abort-a');
  const b = await trickle('/abort-b');
  await until('both at the upstream', () => arrived.length === 2);
  a.socket.destroy();
  b.socket.destroy();
  // the gateway learns of the aborts a moment later: wait for the slots (a 200 ms sleep raced it)
  await until("the aborted uploads' slots back", () => (gw as unknown as { uploadSlots: UploadSlots }).uploadSlots.clients === 0);
  await assertCapFree('/after-abort');
});

test('slots come back after the upstream fails mid-upload', async () => {
  const a = await trickle('/cut-a');
  const b = await trickle('/cut-b');
  a.socket.write('more');
  b.socket.write('more');
  assert.match(await a.head, /^HTTP\/1\.1 502 /);
  assert.match(await b.head, /^HTTP\/1\.1 502 /);
  a.socket.destroy();
  b.socket.destroy();
  await assertCapFree('/after-cut');
});

test('slots come back after request-secs runs out on a stalled upload', async () => {
  const a = await trickle('/timeout/a');
  const b = await trickle('/timeout/b');
  assert.match(await a.head, /^HTTP\/1\.1 408 /);
  assert.match(await b.head, /^HTTP\/1\.1 408 /);
  a.socket.destroy();
  b.socket.destroy();
  await assertCapFree('/after-timeout');
});

test('gRPC streams are counted; a body that already arrived (a unary call) takes no slot', async () => {
  const session = http2.connect(`http://127.0.0.1:${h2port}`);
  session.on('error', () => undefined);
  const open: http2.ClientHttp2Stream[] = [];
  const status = (s: http2.ClientHttp2Stream) =>
    new Promise<number>((resolve) => {
      s.on('response', (h) => resolve(Number(h[':status'])));
      s.on('error', () => resolve(0));
      s.resume();
    });
  try {
    arrived.length = 0;
    for (let i = 0; i < CAP; i++) {
      const s = session.request({ ':method': 'POST', ':path': `/grpc-${i}`, 'content-type': 'application/grpc' });
      s.write(Buffer.alloc(10));
      open.push(s);
    }
    await until('the gRPC streams at the upstream', () => arrived.length === CAP);
    const over = session.request({ ':method': 'POST', ':path': '/grpc-over', 'content-type': 'application/grpc' });
    over.write(Buffer.alloc(10));
    assert.equal(await status(over), 429);
    // unary calls: the whole message with END_STREAM, while the client is at its cap
    const unary = await Promise.all([0, 1, 2].map((i) => h2Request(session, { ':method': 'POST', ':path': `/unary-${i}`, 'content-type': 'application/grpc' }, Buffer.alloc(10))));
    assert.deepEqual(unary.map((r) => r.status), [200, 200, 200]);
  } finally {
    for (const s of open) s.close();
    session.close();
  }
});

test('config: a bad value is an error naming the key and file:line', async () => {
  await assert.rejects(
    gatewayFrom(`
system { graceful-shutdown-timeout-secs 2 }
listeners { listener "http" { address "127.0.0.1:0" } }
limits { max-streaming-uploads-per-client -1 }
routes { route "main" { matches { path-prefix "/" }; builtin-handler "health" } }
`),
    /<config>:4:\d+: limits > max-streaming-uploads-per-client: must be >= 0/,
  );
});
