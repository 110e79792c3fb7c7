// HTTP/2 to upstreams over our node:http2 dispatcher (src/upstream/h2.ts), against real node:http2
// servers, over TLS (ALPN) and cleartext h2c (min-version 2): GOAWAY mid-flight with concurrent
// streams (unprocessed streams are sent again on a new session, any method, and never count as a
// failure), refused and reset streams, min-version 2 against HTTP/1.1-only targets, max-h2-streams,
// PING keep-alive with an unresponsive peer, and the pool stats behind the gauges.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import https from 'node:https';
import http2 from 'node:http2';
import net, { type AddressInfo } from 'node:net';
import { UpstreamGroup } from '../../helpers/upstream-group.ts';
import type { RawUpstream } from '../../../src/config/schema.ts';
import { classifyUpstreamError } from '../../../src/errors/index.ts';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gatewayFrom } from '../../helpers/gateway.ts';
import { startGateway } from '../../../src/server/gateway.ts';
import { request } from '../../helpers/http.ts';
import { attempt, fakeServices, pickContext } from './helpers.ts';
import { makePki, type Pki } from './pki.ts';
import { closeServer } from '../../helpers/upstream.ts';
import { until } from '../../helpers/until.ts';

const { NGHTTP2_NO_ERROR, NGHTTP2_REFUSED_STREAM, NGHTTP2_INTERNAL_ERROR } = http2.constants;

let pki: Pki;
const cleanups: (() => Promise<unknown> | void)[] = [];

before(() => {
  pki = makePki();
});

after(async () => {
  for (const c of cleanups.reverse()) await c();
  pki.cleanup();
});

type StreamHandler = (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders, sessionNo: number) => void;

interface H2Server {
  port: number;
  sessions: number;
  /** PING frames received from the client (node:http2 answers them itself) */
  pings: number;
  /** called on each PING received, after counting it */
  onPing?: () => void;
}

/** A real node:http2 server (TLS when `secure`), numbering its sessions 1, 2, ... */
async function h2Server(secure: boolean, onStream: StreamHandler): Promise<H2Server> {
  const server = secure ? http2.createSecureServer({ key: pki.read('serverKey'), cert: pki.read('serverCert'), allowHTTP1: false }) : http2.createServer();
  const live = new Set<http2.ServerHttp2Session>();
  const numbers = new WeakMap<http2.ServerHttp2Session, number>();
  const info: H2Server = { port: 0, sessions: 0, pings: 0 };
  server.on('session', (s) => {
    numbers.set(s, ++info.sessions);
    live.add(s);
    s.on('close', () => live.delete(s));
    s.on('error', () => undefined);
    s.on('ping', () => (info.pings++, info.onPing?.()));
  });
  server.on('stream', (stream, headers) => {
    stream.on('error', () => undefined); // refused / reset streams error on the server side too
    onStream(stream, headers, numbers.get(stream.session as http2.ServerHttp2Session) ?? 0);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  info.port = (server.address() as AddressInfo).port;
  cleanups.push(() => closeServer(server, live));
  return info;
}

/** Reads the request body, then answers JSON { session, id, method, body }. */
function answer(stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders, sessionNo: number, status = 200): void {
  const chunks: Buffer[] = [];
  stream.on('data', (c: Buffer) => chunks.push(c));
  stream.on('end', () => {
    if (stream.destroyed) return;
    stream.respond({ ':status': status, 'content-type': 'application/json' });
    stream.end(JSON.stringify({ session: sessionNo, id: stream.id, method: headers[':method'], body: Buffer.concat(chunks).toString() }));
  });
}

function group(port: number, extra: Partial<RawUpstream>, id = 'h2'): UpstreamGroup {
  const g = new UpstreamGroup({ id, config: { id, target: [{ address: `127.0.0.1:${port}`, weight: 1 }], ...extra } as RawUpstream, baseDir: pki.dir, services: fakeServices() });
  cleanups.push(() => g.close());
  return g;
}

const TLS = { tls: { sni: 'backend.test', 'ca-cert': 'ca.crt' } } as Partial<RawUpstream>;

interface Sent {
  status: number;
  json: { session: number; id: number; method: string; body: string };
}

/** One attempt through the group, reported like the forwarder does. */
async function send(g: UpstreamGroup, method: string, path = '/', body?: string): Promise<Sent> {
  const { status, text } = await attempt(g, method, path, body);
  return { status, json: JSON.parse(text) as Sent['json'] };
}

const rejects = (p: Promise<unknown>) =>
  p.then(
    () => assert.fail('expected a failure'),
    (e: unknown) => e as Error & { code?: string },
  );

/**
 * The GOAWAY scenario: the first session collects `hold` concurrent streams, then sends
 * GOAWAY(NO_ERROR, last-stream-id = the third one) and answers only the streams up to it.
 * Node closes the others with REFUSED_STREAM: the upstream never processed them.
 */
function goawayMidFlight(hold: number): StreamHandler {
  const held: [http2.ServerHttp2Stream, http2.IncomingHttpHeaders][] = [];
  return (stream, headers, sessionNo) => {
    if (sessionNo !== 1) return answer(stream, headers, sessionNo);
    held.push([stream, headers]);
    if (held.length < hold) return;
    const last = held[2]![0].id!;
    stream.session!.goaway(NGHTTP2_NO_ERROR, last);
    for (const [s, h] of held) if (s.id! <= last) answer(s, h, sessionNo);
  };
}

async function goawayCase(secure: boolean): Promise<void> {
  const srv = await h2Server(secure, goawayMidFlight(6));
  const g = group(srv.port, secure ? { ...TLS, 'http-version': { 'max-version': 2 } } : { 'http-version': { 'min-version': 2 } });
  const methods = ['GET', 'GET', 'GET', 'POST', 'POST', 'PATCH'];
  const results = await Promise.all(methods.map((m, i) => send(g, m, `/r${i}`, m === 'GET' ? undefined : `payload ${i}`)));
  assert.ok(results.every((r) => r.status === 200));
  assert.deepEqual(
    results.map((r) => r.json.session),
    [1, 1, 1, 2, 2, 2],
    'streams up to last-stream-id finish on the old session; the refused ones (POSTs too) are sent again on a new one',
  );
  assert.deepEqual(
    results.map((r) => [r.json.method, r.json.body]),
    methods.map((m, i) => [m, m === 'GET' ? '' : `payload ${i}`]),
  );
  const t = g.snapshot().targets[0]!;
  assert.equal(t.last_error, null, 'no failure was recorded against the target');
  assert.equal(t.failure_rate, 0);
  // One bad session does not poison later requests.
  const later = await Promise.all([send(g, 'GET'), send(g, 'POST', '/x', 'again')]);
  assert.ok(later.every((r) => r.status === 200 && r.json.session === 2));
}

test('TLS (ALPN h2): GOAWAY mid-flight with six concurrent streams fails none of them', () => goawayCase(true));

test('h2c (min-version 2): GOAWAY mid-flight with six concurrent streams fails none of them', () => goawayCase(false));

test('through the gateway: POSTs with streamed bodies refused by a GOAWAY are sent again and never count as failures', async () => {
  const srv = await h2Server(true, goawayMidFlight(5));
  const { gw, url } = await gatewayFrom(
    `
system { graceful-shutdown-timeout-secs 1 }
listeners { listener "http" { address "127.0.0.1:0" } }
routes {
  route "metrics" { priority "high"; matches { path "/metrics" }; builtin-handler "metrics" }
  route "h2" { matches { path-prefix "/" }; upstream "h2" }
}
upstreams {
  upstream "h2" {
    target "127.0.0.1:${srv.port}"
    tls { sni "backend.test"; ca-cert "ca.crt" }
    http-version { min-version 2; max-version 2 }
  }
}
`,
    { baseDir: pki.dir },
  );
  cleanups.push(() => gw.close());
  const agent = new http.Agent({ keepAlive: true, maxSockets: 10 });
  cleanups.push(() => agent.destroy());
  const replies = await Promise.all(Array.from({ length: 5 }, (_, i) => request(`${url()}/p${i}`, { method: 'POST', body: `body ${i}`, agent })));
  assert.deepEqual(
    replies.map((r) => r.status),
    [200, 200, 200, 200, 200],
  );
  const bodies = replies.map((r) => JSON.parse(r.body) as Sent['json']);
  assert.deepEqual(bodies.map((b) => b.body).sort(), ['body 0', 'body 1', 'body 2', 'body 3', 'body 4']);
  assert.equal(bodies.filter((b) => b.session === 2).length, 2, 'two POSTs were refused and replayed on a new session');
  const metrics = (await request(`${url()}/metrics`)).body;
  assert.ok(!/sentinel_upstream_failures_total\{[^}]*upstream="h2"/.test(metrics), 'no upstream failure counted');
});

test('stream resets: REFUSED_STREAM is sent again transparently; INTERNAL_ERROR fails only that request', async () => {
  let refusedOnce = false;
  const srv = await h2Server(true, (stream, headers, sessionNo) => {
    if (headers[':path'] === '/refuse-once' && !refusedOnce) {
      refusedOnce = true;
      stream.close(NGHTTP2_REFUSED_STREAM);
      return;
    }
    if (headers[':path'] === '/reset') return void stream.close(NGHTTP2_INTERNAL_ERROR);
    answer(stream, headers, sessionNo);
  });
  const g = group(srv.port, { ...TLS, 'http-version': { 'min-version': 2, 'max-version': 2 } } as Partial<RawUpstream>);
  const refused = await send(g, 'POST', '/refuse-once', 'not processed');
  assert.equal(refused.status, 200);
  assert.equal(refused.json.body, 'not processed');
  assert.equal(g.snapshot().targets[0]!.last_error, null);

  const err = await rejects(send(g, 'POST', '/reset', 'maybe processed'));
  assert.equal(classifyUpstreamError(err).reason, 'reset', String(err));
  assert.equal(g.snapshot().targets[0]!.last_error, 'reset');

  const after = await Promise.all([send(g, 'GET'), send(g, 'GET')]);
  assert.ok(after.every((r) => r.status === 200 && r.json.session === 1), 'resets do not break the session for others');
});

test('a GOAWAY with an error after the upstream took the request: that request fails (normal policy), the next ones work', async () => {
  const srv = await h2Server(false, (stream, headers, sessionNo) => {
    if (headers[':path'] === '/crash') {
      // processed (id <= last-stream-id), then the session dies
      stream.session!.goaway(NGHTTP2_INTERNAL_ERROR, stream.id);
      setTimeout(() => stream.session?.destroy(), 20);
      return;
    }
    answer(stream, headers, sessionNo);
  });
  const g = group(srv.port, { 'http-version': { 'min-version': 2 } } as Partial<RawUpstream>);
  const err = await rejects(send(g, 'POST', '/crash', 'x'));
  assert.equal(classifyUpstreamError(err).reason, 'reset', String(err));
  const next = await send(g, 'GET');
  assert.equal(next.status, 200);
  assert.equal(next.json.session, 2);
});

test('min-version 2 over TLS to an HTTP/1.1-only target: 502 and a log line naming the upstream', async () => {
  const h1 = https.createServer({ key: pki.read('serverKey'), cert: pki.read('serverCert') }, (_req, res) => res.end('h1'));
  await new Promise<void>((r) => h1.listen(0, '127.0.0.1', r));
  cleanups.push(() => closeServer(h1));
  const port = (h1.address() as AddressInfo).port;

  const g = group(port, { ...TLS, 'http-version': { 'min-version': 2 } } as Partial<RawUpstream>, 'only-h2');
  const err = await rejects(send(g, 'GET'));
  const c = classifyUpstreamError(err);
  assert.equal(c.status, 502);
  assert.equal(c.reason, 'protocol');
  assert.match(err.message, /upstream "only-h2" target 127\.0\.0\.1:\d+ does not speak HTTP\/2/);

  // The same target with max-version 2 (min 1) falls back to HTTP/1.1.
  const mixed = group(port, { ...TLS, 'http-version': { 'max-version': 2 } } as Partial<RawUpstream>);
  const p = mixed.select(pickContext())!;
  const res = await mixed.dispatcher(p.target).request({ origin: mixed.origin(p.target), path: '/', method: 'GET' });
  assert.equal(await res.body.text(), 'h1');
  mixed.report(p.target, { kind: 'response', status: 200, latencyMs: 1 });

  // End to end: the client gets a 502 JSON error; the error log names the upstream.
  const errorLog = join(pki.dir, 'error.log');
  const gw = await startGateway({
    baseDir: pki.dir,
    logLevel: 'warn',
    configText: `
system { graceful-shutdown-timeout-secs 1 }
observability { logging { error-log { file "${errorLog}" } } }
listeners { listener "http" { address "127.0.0.1:0" } }
routes { route "r" { matches { path-prefix "/" }; upstream "only-h2" } }
upstreams { upstream "only-h2" { target "127.0.0.1:${port}"; tls { sni "backend.test"; ca-cert "ca.crt" }; http-version { min-version 2 } } }
`,
  });
  cleanups.push(() => gw.close());
  const r = await request(`http://127.0.0.1:${gw.address('http').port}/`);
  assert.equal(r.status, 502);
  assert.equal(JSON.parse(r.body).error, 'Bad Gateway: upstream does not speak HTTP/2');
  let logged = '';
  await until('the error log line', () => (logged = existsSync(errorLog) ? readFileSync(errorLog, 'utf8') : '').includes('does not speak HTTP/2')).catch(() => undefined);
  const line = logged.split('\n').find((l) => l.includes('upstream request failed'));
  assert.ok(line, `no 'upstream request failed' line in: ${logged}`);
  const entry = JSON.parse(line) as { upstream: string; err: string; reason: string };
  assert.equal(entry.upstream, 'only-h2');
  assert.equal(entry.reason, 'protocol');
  assert.match(entry.err, /upstream "only-h2" target 127\.0\.0\.1:\d+ does not speak HTTP\/2/);
});

test('min-version 2 over cleartext to an HTTP/1.1 server: a clear h2c error; h2c to an h2 server works', async () => {
  const h1 = http.createServer((_req, res) => res.end('h1'));
  await new Promise<void>((r) => h1.listen(0, '127.0.0.1', r));
  cleanups.push(() => closeServer(h1));
  const g = group((h1.address() as AddressInfo).port, { 'http-version': { 'min-version': 2 } } as Partial<RawUpstream>, 'h2c');
  const err = await rejects(send(g, 'GET'));
  assert.equal(classifyUpstreamError(err).reason, 'protocol');
  assert.match(err.message, /upstream "h2c" target .* does not speak cleartext HTTP\/2/);

  const srv = await h2Server(false, answer);
  const ok = group(srv.port, { 'http-version': { 'min-version': 2 } } as Partial<RawUpstream>);
  const r = await send(ok, 'PUT', '/', 'over h2c');
  assert.equal(r.status, 200);
  assert.equal(r.json.body, 'over h2c');
});

test('max-h2-streams caps concurrent streams per session; max-connections caps sessions; stats follow', async () => {
  let active = 0;
  let peak = 0;
  const srv = await h2Server(false, (stream, headers, sessionNo) => {
    active++;
    peak = Math.max(peak, active);
    setTimeout(() => {
      active--;
      answer(stream, headers, sessionNo);
    }, 30);
  });
  const g = group(srv.port, { 'http-version': { 'min-version': 2, 'max-h2-streams': 2 }, 'connection-pool': { 'max-connections': 2 } } as Partial<RawUpstream>);
  const results = await Promise.all(Array.from({ length: 12 }, () => send(g, 'GET')));
  assert.ok(results.every((r) => r.status === 200));
  assert.equal(peak, 4, 'two sessions with two streams each');
  assert.equal(srv.sessions, 2);
  const rt = g.dispatcher(g.targets[0]!) as unknown as { stats(): { connected: number; idle: number } };
  // the streams' ends reach the pool after the responses: wait for both sessions to be idle
  await until('both sessions idle', () => rt.stats().idle === 2).catch(() => undefined);
  assert.deepEqual(rt.stats(), { connected: 2, idle: 2, fallback: false });
});

/** The dispatcher's PING state, reached past `private` (the test drives its sweeps by hand). */
interface PingDispatcher {
  stats(): { connected: number; idle: number };
  sweepTimer: NodeJS.Timeout;
  sessions: Set<{ pingPending: boolean; lastPing: number }>;
  sweep(now?: number): void;
}

test('h2-ping-interval: an idle session whose PING goes unanswered is closed; answered PINGs keep it', async () => {
  const srv = await h2Server(false, answer);
  // A TCP relay that can stop forwarding (a peer or path that went silent).
  let frozen = false;
  const relay = net.createServer((client) => {
    const up = net.connect(srv.port, '127.0.0.1');
    client.on('data', (c) => (frozen ? undefined : up.write(c)));
    up.on('data', (c) => (frozen ? undefined : client.write(c)));
    const end = () => (client.destroy(), up.destroy());
    client.on('error', end).on('close', end);
    up.on('error', end).on('close', end);
  });
  await new Promise<void>((r) => relay.listen(0, '127.0.0.1', r));
  cleanups.push(() => closeServer(relay));
  const g = group((relay.address() as AddressInfo).port, { 'http-version': { 'min-version': 2, 'h2-ping-interval': 1 } } as Partial<RawUpstream>);
  const d = g.dispatcher(g.targets[0]!) as unknown as PingDispatcher;
  // The test is the clock: the dispatcher's once-a-second timer is seen to call its sweep, then
  // stopped, and each sweep is run by hand with a given time, so whether a PING is due or overdue
  // does not depend on how late a loaded machine ran the timer or read an ACK.
  const sweep = d.sweep.bind(d);
  let ticks = 0;
  d.sweep = () => void ticks++;
  assert.equal((await send(g, 'GET')).status, 200);
  await until('the sweep timer to fire', () => ticks > 0);
  clearInterval(d.sweepTimer);
  // only idle sessions are PINGed: the GET's stream may end a moment after its response
  await until('the session idle', () => d.stats().idle === 1);
  const [s] = d.sessions;
  assert.ok(s && d.sessions.size === 1);
  // The session's start, rounded up to a whole millisecond: performance.now() has fractional
  // milliseconds, and (t + 1000) + 1000 - (t + 1000) can round to 999.9999999999 for such a t, a
  // sweep that finds the interval not yet passed (CI ci22c failed once so). Whole numbers add exactly.
  let now = Math.ceil(s.lastPing);
  const pings = srv.pings;
  const state = (what: string) => () => `${what} (PINGs at the server ${srv.pings - pings}, pending ${s.pingPending}, ${JSON.stringify(d.stats())})`;
  sweep(now + 999);
  assert.equal(s.pingPending, false, 'no PING before the interval');
  sweep((now += 1000));
  assert.equal(s.pingPending, true, 'a PING once the interval passed');
  await until(state('the first PING answered'), () => srv.pings === pings + 1 && !s.pingPending);
  sweep((now += 1000));
  await until(state('the second PING answered'), () => srv.pings === pings + 2 && !s.pingPending);
  assert.equal(d.stats().connected, 1, 'answered PINGs keep the idle session');
  frozen = true;
  sweep((now += 1000));
  assert.equal(s.pingPending, true, 'a PING sent into the silent path');
  sweep(now + 999);
  // negative guard: a close would be decided in this sweep and done after the next I/O phase
  await new Promise(setImmediate);
  assert.equal(d.stats().connected, 1, 'not closed before a whole interval without the ACK');
  sweep(now + 1000);
  await until(state('the unanswered PING to close the session'), () => d.stats().connected === 0);
  frozen = false;
  const again = await send(g, 'GET');
  assert.equal(again.status, 200, 'a new session serves the next request');
  assert.equal(again.json.session, 2);
});

test('h2-ping-interval: an ACK that arrived while the process stalled keeps the session', async () => {
  const srv = await h2Server(false, answer);
  const g = group(srv.port, { 'http-version': { 'min-version': 2, 'h2-ping-interval': 1 } } as Partial<RawUpstream>);
  assert.equal((await send(g, 'GET')).status, 200);
  const d = g.dispatcher(g.targets[0]!) as unknown as PingDispatcher;
  const [s] = d.sessions;
  assert.ok(s);
  // The server answers the PING at once; then the process stalls (synchronously) for longer than
  // the interval, so the ACK waits unread in the socket when the next sweep is due. Timers run
  // before I/O: a sweep that judged the PING right away would close a session whose peer answered.
  const stalled = new Promise<void>((resolve) => {
    srv.onPing = () => {
      srv.onPing = undefined;
      setImmediate(() => {
        const end = performance.now() + 1500;
        while (performance.now() < end) {
          /* stall */
        }
        resolve();
      });
    };
  });
  await stalled;
  await until('the next PING after the stall, or the session closed', () => (srv.pings >= 2 && !s.pingPending) || d.stats().connected === 0);
  assert.equal(d.stats().connected, 1, 'the answered session is kept');
  assert.equal((await send(g, 'GET')).json.session, 1, 'and serves the next request on it');
});

test('write-secs over HTTP/2: a stream whose flow-control window stays closed fails with 504 after write-secs', async () => {
  const srv = await h2Server(false, (stream) => stream.pause()); // takes the headers, never reads the body
  const { gw, url } = await gatewayFrom(`
system { graceful-shutdown-timeout-secs 1 }
limits { max-body-size-bytes 67108864 }
listeners { listener "http" { address "127.0.0.1:0" } }
routes { route "r" { matches { path-prefix "/" }; upstream "h2c" } }
upstreams { upstream "h2c" { target "127.0.0.1:${srv.port}"; http-version { min-version 2 }; timeouts { write-secs 1; read-secs 60; request-secs 60 } } }
`);
  cleanups.push(() => gw.close());
  const t0 = performance.now();
  const status = await new Promise<number>((resolve, reject) => {
    const req = http.request(`${url()}/upload`, { method: 'POST', agent: false, headers: { 'content-length': String(8 * 1024 * 1024) } }, (res) => {
      res.resume();
      resolve(res.statusCode!);
    });
    req.on('error', (e) => (req.writableEnded ? undefined : reject(e)));
    const chunk = Buffer.alloc(64 * 1024, 98);
    let sent = 0;
    const pump = () => {
      while (sent < 8 * 1024 * 1024) {
        sent += chunk.length;
        if (!req.write(chunk)) return void req.once('drain', pump);
      }
      req.end();
    };
    pump();
  });
  assert.equal(status, 504);
  assert.ok(performance.now() - t0 < 20_000);
});

test('close() is graceful: queued and running requests finish, new ones are refused, sessions end', async () => {
  const srv = await h2Server(false, (stream, headers, sessionNo) => setTimeout(() => answer(stream, headers, sessionNo), 30));
  const g = group(srv.port, { 'http-version': { 'min-version': 2, 'max-h2-streams': 1 }, 'connection-pool': { 'max-connections': 1 } } as Partial<RawUpstream>);
  const d = g.dispatcher(g.targets[0]!);
  const inFlight = Array.from({ length: 3 }, () => d.request({ origin: g.origin(g.targets[0]!), path: '/', method: 'GET' }).then(async (r) => (await r.body.text(), r.statusCode)));
  const closed = d.close();
  await assert.rejects(d.request({ origin: g.origin(g.targets[0]!), path: '/', method: 'GET' }), (e: Error & { code?: string }) => e.code === 'UND_ERR_CLOSED');
  assert.deepEqual(await Promise.all(inFlight), [200, 200, 200]);
  await closed;
  assert.deepEqual((d as unknown as { stats(): { connected: number } }).stats().connected, 0);
});
