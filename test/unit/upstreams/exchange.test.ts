// UpstreamExchange against a scripted dispatcher: the handler protocol undici drives, without sockets.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import type { ServerResponse } from 'node:http';
import type { Dispatcher } from 'undici';
import { UpstreamExchange, endToEndHeaders, opensStream } from '../../../src/upstream/exchange.ts';
import { CancelToken } from '../../../src/server/context.ts';

type Handler = {
  onConnect(abort: (err?: Error) => void): void;
  onHeaders(status: number, raw: Buffer[], resume: () => void, text: string): boolean;
  onData(chunk: Buffer): boolean;
  onComplete(trailers: Buffer[] | null): void;
  onError(err: Error): void;
};

/** A dispatcher that hands the handler to the test, which then plays undici's part. */
function scripted(): { dispatcher: Dispatcher; handler: () => Handler; aborted: Error[] } {
  let h: Handler | undefined;
  const aborted: Error[] = [];
  const dispatcher = {
    dispatch(_opts: unknown, handler: Handler) {
      h = handler;
      handler.onConnect((err) => aborted.push(err ?? new Error('aborted')));
      return true;
    },
  } as unknown as Dispatcher;
  return { dispatcher, handler: () => h!, aborted };
}

const OPTS = { path: '/', method: 'GET' } as Dispatcher.DispatchOptions;
const raw = (...pairs: string[]): Buffer[] => pairs.map((s) => Buffer.from(s, 'latin1'));

type FakeRes = ServerResponse & { chunks: Buffer[]; ended: boolean; head: [number, unknown] | undefined };

/** A ServerResponse stand-in: records the status line, writes and the end; `full` makes write() report backpressure. */
function fakeRes(full = false): FakeRes {
  const r = new EventEmitter() as EventEmitter & { chunks: Buffer[]; ended: boolean; head: [number, unknown] | undefined; writeHead(s: number, h: unknown): void; write(c: Buffer): boolean; end(): void };
  r.chunks = [];
  r.ended = false;
  r.head = undefined;
  r.writeHead = (status: number, headers: unknown) => {
    assert.equal(r.head, undefined, 'one status line');
    assert.equal(r.chunks.length, 0, 'the status line before the body');
    r.head = [status, headers];
  };
  r.write = (c: Buffer) => {
    r.chunks.push(c);
    return !full;
  };
  r.end = () => {
    r.ended = true;
  };
  return r as unknown as FakeRes;
}

test('endToEndHeaders: lower-cased names, repeated names as arrays, hop-by-hop and Connection-listed names dropped', () => {
  const cases: Array<[Array<Buffer | string>, Record<string, string | string[]>]> = [
    [raw('Content-Type', 'text/plain', 'Content-Length', '3'), { 'content-type': 'text/plain', 'content-length': '3' }],
    [raw('Set-Cookie', 'a=1', 'set-cookie', 'b=2', 'Set-Cookie', 'c=3'), { 'set-cookie': ['a=1', 'b=2', 'c=3'] }],
    [raw('Connection', 'keep-alive', 'Keep-Alive', 'timeout=5', 'Transfer-Encoding', 'chunked', 'X-A', '1'), { 'x-a': '1' }],
    [raw('Connection', 'close, X-Secret', 'X-Secret', 's', 'X-Public', 'p'), { 'x-public': 'p' }],
    [raw('Connection', 'x-one', 'Connection', 'X-Two', 'X-One', '1', 'X-Two', '2', 'X-Three', '3'), { 'x-three': '3' }],
    [raw('X-Latin', 'caf\u00e9'), { 'x-latin': 'caf\u00e9' }],
    // well-known names in any case (undici's name tree), a prefix or extension of one, a latin1 name
    [raw('CONTENT-type', 'a', 'Content', 'b', 'Content-Typex', 'c', 'X-\u00dcBER', 'd', 'ETag', 'e'), { 'content-type': 'a', content: 'b', 'content-typex': 'c', 'x-\u00fcber': 'd', etag: 'e' }],
    [[], {}],
    [raw('Connection', '', 'X-A', '1'), { 'x-a': '1' }],
    // our HTTP/2 dispatcher hands over strings instead of Buffers
    [['content-type', 'application/json', 'Connection', 'x-h', 'x-h', '1'], { 'content-type': 'application/json' }],
  ];
  for (const [input, expected] of cases) assert.deepEqual({ ...endToEndHeaders(input) }, expected);
  // a coding undici leaves on the body: no headers (the exchange answers 502)
  for (const te of ['gzip', 'gzip, chunked', 'chunked, gzip', 'identity', 'xchunked']) assert.equal(endToEndHeaders(raw('Transfer-Encoding', te, 'X-A', '1')), undefined, te);
  assert.deepEqual(endToEndHeaders(raw('Transfer-Encoding', ' Chunked ', 'X-A', '1')), { 'x-a': '1' });
});

test('chunks that arrive before a sink is attached are relayed in order, then the end', async () => {
  const s = scripted();
  const sent = UpstreamExchange.send(s.dispatcher, OPTS, new CancelToken());
  const h = s.handler();
  assert.equal(h.onHeaders(200, raw('Content-Length', '6'), () => undefined, 'OK'), true);
  assert.equal(h.onData(Buffer.from('abc')), true);
  assert.equal(h.onData(Buffer.from('def')), true);
  h.onComplete(null);
  const ex = await sent;
  assert.equal(ex.statusCode, 200);
  assert.deepEqual(ex.headers, { 'content-length': '6' });
  const res = fakeRes();
  const outcome = await ex.relayTo(res, ex.statusCode, ex.headers);
  assert.deepEqual(outcome, { bytes: 6 });
  assert.deepEqual(res.head, [200, { 'content-length': '6' }]);
  assert.equal(Buffer.concat(res.chunks).toString(), 'abcdef');
  assert.equal(res.ended, true);
});

test('a large early body pauses the upstream until the sink is attached; client backpressure pauses it again, drain resumes', async () => {
  const s = scripted();
  const sent = UpstreamExchange.send(s.dispatcher, OPTS, new CancelToken());
  const h = s.handler();
  let resumes = 0;
  h.onHeaders(200, [], () => resumes++, 'OK');
  const big = Buffer.alloc(40 * 1024, 1);
  assert.equal(h.onData(big), true);
  assert.equal(h.onData(big), false, 'past 64 KiB held, undici is told to pause');
  const ex = await sent;
  const res = fakeRes(false);
  const relay = ex.relayTo(res, 200, {});
  assert.equal(resumes, 1, 'attaching a sink that accepts the held bytes resumes the upstream');
  assert.equal(h.onData(Buffer.from('x')), true);
  h.onComplete(null);
  assert.deepEqual(await relay, { bytes: 80 * 1024 + 1 });

  // backpressure from the client
  const s2 = scripted();
  const sent2 = UpstreamExchange.send(s2.dispatcher, OPTS, new CancelToken());
  let resumes2 = 0;
  s2.handler().onHeaders(200, [], () => resumes2++, 'OK');
  const ex2 = await sent2;
  const slow = fakeRes(true);
  const relay2 = ex2.relayTo(slow, 200, {});
  assert.equal(s2.handler().onData(Buffer.from('a')), false, 'a full client socket pauses the upstream');
  slow.emit('drain');
  assert.equal(resumes2, 1);
  s2.handler().onComplete(null);
  assert.deepEqual(await relay2, { bytes: 1 });
});

test('errors: before the headers the send rejects; mid-body the relay reports it; a client that leaves aborts the upstream', async () => {
  const s = scripted();
  const sent = UpstreamExchange.send(s.dispatcher, OPTS, new CancelToken());
  s.handler().onError(Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }));
  await assert.rejects(sent, /ECONNREFUSED/);

  const s2 = scripted();
  const sent2 = UpstreamExchange.send(s2.dispatcher, OPTS, new CancelToken());
  s2.handler().onHeaders(200, [], () => undefined, 'OK');
  s2.handler().onData(Buffer.from('part'));
  const boom = new Error('other side closed');
  s2.handler().onError(boom);
  const partRes = fakeRes();
  const out = await (await sent2).relayTo(partRes, 200, {});
  assert.equal(out.bytes, 4);
  assert.equal(out.error, boom);
  assert.deepEqual(partRes.head, [200, {}], 'the status line went out with the first byte');

  const s3 = scripted();
  const sent3 = UpstreamExchange.send(s3.dispatcher, OPTS, new CancelToken());
  s3.handler().onHeaders(200, [], () => undefined, 'OK');
  const res = fakeRes();
  const relay = (await sent3).relayTo(res, 200, {});
  res.emit('close');
  assert.deepEqual(await relay, { bytes: 0, clientClosed: true });
  assert.equal(s3.aborted.length, 1);
  assert.equal(s3.aborted[0]!.name, 'AbortError');
});

test('the status line waits for the first body byte or the end: a body that fails before any byte leaves nothing written', async () => {
  // fails before the sink is attached (the bad chunk came in the same read as the headers) and after
  for (const late of [false, true]) {
    const s = scripted();
    const sent = UpstreamExchange.send(s.dispatcher, OPTS, new CancelToken());
    s.handler().onHeaders(200, raw('Content-Length', '10'), () => undefined, 'OK');
    const bad = Object.assign(new Error('invalid chunk size'), { code: 'HPE_INVALID_CHUNK_SIZE' });
    if (!late) s.handler().onError(bad);
    const res = fakeRes();
    const relay = (await sent).relayTo(res, 200, { 'content-length': '10' });
    assert.equal(res.head, undefined, 'nothing written while no byte came');
    if (late) s.handler().onError(bad);
    assert.deepEqual(await relay, { bytes: 0, error: bad });
    assert.equal(res.head, undefined, `no status line (error ${late ? 'after' : 'before'} the relay started)`);
    assert.equal(res.ended, false);
  }
  // a body-less response: the status line with the end
  const s = scripted();
  const sent = UpstreamExchange.send(s.dispatcher, OPTS, new CancelToken());
  s.handler().onHeaders(204, [], () => undefined, 'No Content');
  const res = fakeRes();
  const relay = (await sent).relayTo(res, 204, {});
  assert.equal(res.head, undefined);
  s.handler().onComplete(null);
  assert.deepEqual(await relay, { bytes: 0 });
  assert.deepEqual(res.head, [204, {}]);
  assert.equal(res.ended, true);
});

test('the cancel token aborts: before dispatch (at connect) and while waiting for headers', async () => {
  const early = new CancelToken();
  early.cancel();
  const s = scripted();
  void UpstreamExchange.send(s.dispatcher, OPTS, early).catch(() => undefined);
  assert.equal(s.aborted.length, 1, 'aborted as soon as undici connects the request');

  const token = new CancelToken();
  const s2 = scripted();
  const sent = UpstreamExchange.send(s2.dispatcher, OPTS, token);
  token.cancel();
  assert.equal(s2.aborted.length, 1);
  s2.handler().onError(s2.aborted[0]!); // what undici does after an abort
  await assert.rejects(sent, { name: 'AbortError' });
  assert.equal(token.listenerCount('abort'), 0, 'no listener left on the token');
});

test('body stream: held and later chunks in order; dump() discards and gives up past 128 KiB; 1xx is skipped', async () => {
  const s = scripted();
  const sent = UpstreamExchange.send(s.dispatcher, OPTS, new CancelToken());
  const h = s.handler();
  assert.equal(h.onHeaders(100, [], () => undefined, 'Continue'), true);
  h.onHeaders(201, raw('X-A', '1'), () => undefined, 'Created');
  h.onData(Buffer.from('one,'));
  const ex = await sent;
  assert.equal(ex.statusCode, 201);
  const body = ex.body;
  assert.equal(ex.body, body, 'one stream per exchange');
  h.onData(Buffer.from('two'));
  h.onComplete(null);
  const parts: Buffer[] = [];
  for await (const c of body) parts.push(c as Buffer);
  assert.equal(Buffer.concat(parts).toString(), 'one,two');

  const s2 = scripted();
  const sent2 = UpstreamExchange.send(s2.dispatcher, OPTS, new CancelToken());
  s2.handler().onHeaders(502, [], () => undefined, 'Bad Gateway');
  (await sent2).dump();
  s2.handler().onData(Buffer.alloc(100 * 1024));
  assert.equal(s2.aborted.length, 0, 'a short body is read to the end (the connection stays usable)');
  s2.handler().onData(Buffer.alloc(100 * 1024));
  assert.equal(s2.aborted.length, 1, 'a long one is cut off');
});

test('opensStream: event streams and gRPC send their head at once, other types wait for the first byte', () => {
  const table: [string | string[] | undefined, boolean][] = [
    ['text/event-stream', true],
    ['Text/Event-Stream; charset=utf-8', true],
    ['application/grpc', true],
    ['application/grpc+proto', true],
    ['application/grpc-web-text', true],
    [['text/event-stream'], true],
    ['text/html', false],
    ['application/json', false],
    [undefined, false],
  ];
  for (const [type, want] of table) assert.equal(opensStream(type === undefined ? {} : { 'content-type': type }), want, String(type));
});
