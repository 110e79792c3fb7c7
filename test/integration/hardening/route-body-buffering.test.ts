// Per-route request buffering (docs/security.md, "Request buffering"): a route's
// `policies { max-body-buffer-bytes 0 }` streams its bodies (an upstream that answers an upload
// while it goes on, a non-gRPC bidirectional HTTP/2 stream) while every other route keeps reading
// bodies first; the per-client cap on streaming uploads still applies to that route, and a reload
// switches the policy for new requests.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http, { type IncomingMessage } from 'node:http';
import http2 from 'node:http2';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { gatewayFrom } from '../../helpers/gateway.ts';
import type { Gateway } from '../../../src/server/gateway.ts';
import { closeServer } from '../../helpers/upstream.ts';
import { request } from '../../helpers/http.ts';
import { notHungTurning, turningTimeout, UNTIL_MS } from '../../helpers/until.ts';

let upstream: http.Server;
let target: string;
let gw: Gateway;
let port: number;
let h2port: number;
/** per upstream POST: whether it arrived before the client finished its body (the probe GETs are not counted) */
const early: boolean[] = [];
let clientDone = true;

before(async () => {
  // Answers at the first body chunk ("got N" per chunk) and ends when the request body ends: an
  // upstream that talks to the client while the upload goes on.
  upstream = http.createServer((req: IncomingMessage, res) => {
    if (req.method === 'POST') early.push(!clientDone);
    let n = 0;
    req.on('data', (c: Buffer) => {
      if (n === 0) res.writeHead(200, { 'content-type': 'text/plain' });
      n += c.length;
      res.write(`got ${n}\n`);
    });
    req.on('end', () => {
      if (n === 0) res.writeHead(200, { 'content-type': 'text/plain' });
      res.end(`done ${n}\n`);
    });
  });
  await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
  target = `127.0.0.1:${(upstream.address() as AddressInfo).port}`;
  gw = (await gatewayFrom(config(true))).gw;
  port = gw.address('http').port;
  h2port = gw.address('h2c').port;
});

after(async () => {
  await gw.close();
  await closeServer(upstream);
});

function config(streamRoute: boolean): string {
  return `
system { graceful-shutdown-timeout-secs 2 }
listeners {
  listener "http" { address "127.0.0.1:0" }
  listener "h2c" { address "127.0.0.1:0"; protocol "h2" }
}
limits { max-body-buffer-bytes 4096; max-streaming-uploads-per-client 1 }
routes {
  route "stream" { matches { path-prefix "/stream" }; upstream "backend"; ${streamRoute ? 'policies { max-body-buffer-bytes 0 }' : ''} }
  route "main" { matches { path-prefix "/" }; upstream "backend" }
}
upstreams { upstream "backend" { target "${target}" } }
`;
}

/**
 * Sends a chunked POST of two parts and resolves with whether the upstream's answer came before
 * the second part, the status and the whole answer. `streams`: the second part goes once the
 * answer to the first arrived, or after UNTIL_MS of event-loop time without it (then the test
 * fails: a loaded machine cannot run that bound out first). `buffers`: the second part goes once a
 * GET sent after the first part was answered through the gateway: the end of the negative window,
 * a positive event (the gateway reads in order, so a streamed first part would have reached the
 * upstream, and its answer the client, by then), never a fixed wait that a slow machine outlasts.
 */
function converse(path: string, expect: 'streams' | 'buffers'): Promise<{ answeredEarly: boolean; status: number; body: string }> {
  return new Promise((resolve, reject) => {
    clientDone = false;
    let answeredEarly = false;
    let cancel = (): void => undefined;
    const sendRest = () => {
      cancel();
      if (clientDone) return;
      clientDone = true;
      req.end('second part');
    };
    const req = http.request({ host: '127.0.0.1', port, path, method: 'POST', headers: { 'transfer-encoding': 'chunked' }, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => {
        body += c;
        if (!clientDone) {
          answeredEarly = true;
          sendRest();
        }
      });
      res.on('end', () => resolve({ answeredEarly, status: res.statusCode!, body }));
    });
    req.on('error', reject);
    req.write('first', () => {
      if (expect === 'streams') cancel = turningTimeout(UNTIL_MS, sendRest);
      else notHungTurning('the probe GET', request(`http://127.0.0.1:${port}/probe`)).then((r) => (r.status === 200 ? sendRest() : reject(new Error(`probe GET: ${r.status}`))), reject);
    });
  });
}

test('a route with max-body-buffer-bytes 0 streams: its upstream answers while the upload goes on', async () => {
  early.length = 0;
  const r = await converse('/stream/upload', 'streams');
  assert.equal(r.status, 200);
  assert.equal(r.answeredEarly, true, 'the client got the upstream answer to its first part before sending the rest');
  assert.deepEqual(early, [true]);
  assert.match(r.body, /^got 5\n[\s\S]*done 16\n$/);
});

test('every other route still reads the body first', async () => {
  early.length = 0;
  const r = await converse('/upload', 'buffers');
  assert.equal(r.status, 200);
  assert.equal(r.answeredEarly, false);
  assert.deepEqual(early, [false], 'the upstream saw the request only once the body was complete');
  assert.equal(r.body, 'got 16\ndone 16\n');
});

test('HTTP/2: a non-gRPC bidirectional stream on the streaming route', async () => {
  early.length = 0;
  clientDone = false;
  const session = http2.connect(`http://127.0.0.1:${h2port}`);
  session.on('error', () => undefined);
  try {
    const stream = session.request({ ':method': 'POST', ':path': '/stream/bidi', 'content-type': 'application/octet-stream' });
    stream.setEncoding('utf8');
    let body = '';
    const first = new Promise<string>((r) => stream.once('data', (c: string) => r(c)));
    stream.on('data', (c: string) => (body += c));
    const ended = new Promise<void>((r) => stream.once('end', () => r()));
    stream.write('hello');
    // bounded by event-loop time (a loaded machine cannot make it fire): buffered, the answer never comes before the end
    const reply = await notHungTurning('the first answer', first, UNTIL_MS).catch(() => 'no answer');
    assert.equal(reply, 'got 5\n', 'the upstream answered the first message before the stream ended');
    clientDone = true;
    stream.end('world');
    await ended;
    assert.match(body, /done 10\n$/);
    assert.deepEqual(early, [true]);
  } finally {
    session.close();
  }
});

test('the streaming route still counts against max-streaming-uploads-per-client; buffered routes do not', async () => {
  const socks: net.Socket[] = [];
  /** a POST whose body streams (10 of 1000 bytes sent); resolves with the first bytes of the answer */
  const trickle = async (path: string): Promise<Promise<string>> => {
    const s = net.connect(port, '127.0.0.1');
    socks.push(s);
    s.on('error', () => undefined);
    await new Promise<void>((r) => s.once('connect', () => r()));
    s.write(`POST ${path} HTTP/1.1\r\nHost: a\r\nContent-Length: 1000\r\n\r\n0123456789`);
    const answer = new Promise<string>((r) => s.once('data', (c: Buffer) => r(c.toString('latin1'))));
    return notHungTurning('the first bytes of the answer', answer, UNTIL_MS).catch(() => 'no answer');
  };
  try {
    // the held upload reached the upstream, which answered its first part: it holds the client's one slot
    assert.match(await (await trickle('/stream/a')), /^HTTP\/1\.1 200 /);
    const over = await trickle('/stream/b');
    assert.match(await over, /^HTTP\/1\.1 429 [\s\S]*\r\nretry-after: 1\r\n/i);
    const buffered = await notHungTurning('a buffered POST', fetch(`http://127.0.0.1:${port}/other`, { method: 'POST', body: 'small' }));
    assert.equal(buffered.status, 200, 'a body read first takes no slot');
    assert.equal(await buffered.text(), 'got 5\ndone 5\n');
  } finally {
    for (const s of socks) s.destroy();
  }
});

test('a reload switches the route policy for new requests', async () => {
  await gw.reload(config(false));
  try {
    early.length = 0;
    const buffered = await converse('/stream/upload', 'buffers');
    assert.equal(buffered.answeredEarly, false);
    assert.deepEqual(early, [false]);
  } finally {
    await gw.reload(config(true));
  }
  early.length = 0;
  const streamed = await converse('/stream/upload', 'streams');
  assert.equal(streamed.answeredEarly, true);
  assert.deepEqual(early, [true]);
});
