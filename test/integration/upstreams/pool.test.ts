// connection-pool and timeouts bounds, proven against real loopback servers through the group's
// undici pools: max-connections, max-idle, idle-timeout, max-lifetime, connect and read timeouts.
import { test, after, mock } from 'node:test';
import assert from 'node:assert/strict';
import { createServer as createTcpServer, type Socket, type AddressInfo } from 'node:net';
import { UpstreamGroup } from '../../helpers/upstream-group.ts';
import { closeServer } from '../../helpers/upstream.ts';
import type { RawUpstream } from '../../../src/config/schema.ts';
import { classifyUpstreamError } from '../../../src/errors/index.ts';
import { attempt, fakeServices, pickContext, startServer, type TestServer } from './helpers.ts';
import { until } from '../../helpers/until.ts';

const cleanups: (() => Promise<void>)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});
/** undici's pool stats for the group's one target */
const poolStats = (g: UpstreamGroup) => (g.dispatcher(g.targets[0]!) as unknown as { stats: { connected: number; free: number } }).stats;

/** An HTTP server that tracks its open sockets. */
async function trackedServer(handler: Parameters<typeof startServer>[0]): Promise<TestServer & { open: Set<Socket>; maxOpen: number; ports: number[] }> {
  const s = await startServer(handler);
  const open = new Set<Socket>();
  const tracked = Object.assign(s, { open, maxOpen: 0, ports: [] as number[] });
  s.server.on('connection', (sock: Socket) => {
    open.add(sock);
    tracked.ports.push(sock.remotePort!);
    tracked.maxOpen = Math.max(tracked.maxOpen, open.size);
    sock.on('close', () => open.delete(sock));
  });
  cleanups.push(() => s.close());
  return tracked;
}

function group(address: string, extra: Partial<RawUpstream>): UpstreamGroup {
  const g = new UpstreamGroup({ id: 'p', config: { id: 'p', target: [{ address, weight: 1 }], ...extra } as RawUpstream, baseDir: '.', services: fakeServices() });
  cleanups.push(() => g.close());
  return g;
}

async function get(g: UpstreamGroup, path = '/'): Promise<{ status: number; body: string }> {
  const { status, text } = await attempt(g, 'GET', path);
  return { status, body: text };
}

test('max-connections caps concurrent sockets per target; excess requests queue and complete', async () => {
  const s = await trackedServer((_req, res) => setTimeout(() => res.end('ok'), 50));
  const g = group(s.address, { 'connection-pool': { 'max-connections': 2 } } as Partial<RawUpstream>);
  const results = await Promise.all(Array.from({ length: 8 }, () => get(g)));
  assert.ok(results.every((r) => r.status === 200));
  assert.equal(s.maxOpen, 2);
});

test('max-idle: idle keep-alive sockets beyond the limit are closed', async () => {
  const s = await trackedServer((_req, res) => setTimeout(() => res.end('ok'), 30));
  const g = group(s.address, { 'connection-pool': { 'max-connections': 4, 'max-idle': 1, 'idle-timeout-secs': 60 } } as Partial<RawUpstream>);
  await Promise.all(Array.from({ length: 4 }, () => get(g)));
  assert.equal(s.maxOpen, 4);
  // idle sockets beyond max-idle are closed by a sweep every IDLE_SWEEP_MS
  await until(() => `one open socket, have ${s.open.size}`, () => s.open.size <= 1);
  assert.equal(s.open.size, 1, 'one idle socket kept');
  // the pool still works and reuses the kept socket
  const before = s.ports.length;
  // the pool's side learns of the closed sockets a moment later: wait until it holds just the kept one
  await until('the pool to hold one free connection', () => poolStats(g).connected === 1 && poolStats(g).free === 1);
  assert.equal((await get(g)).status, 200);
  assert.equal(s.ports.length, before, 'no new connection needed');
});

test('idle-timeout closes an idle keep-alive socket', async () => {
  const s = await trackedServer((_req, res) => res.end('ok'));
  const g = group(s.address, { 'connection-pool': { 'idle-timeout-secs': 0.2 } } as Partial<RawUpstream>);
  await get(g);
  assert.equal(s.open.size, 1);
  await until('the idle socket to close', () => s.open.size === 0);
});

test('max-lifetime: a connection older than the limit is not reused', async () => {
  const s = await trackedServer((_req, res) => res.end('ok'));
  const g = group(s.address, { 'connection-pool': { 'max-lifetime-secs': 1, 'idle-timeout-secs': 60 } } as Partial<RawUpstream>);
  // undici's pool stamps a connection's birth and checks its age with Date.now(): hold the wall
  // clock and move it by hand, so 'young' and 'old' do not depend on how fast the machine is
  // (on the real clock a stall over ~0.9 s made the first check impossible to make).
  mock.timers.enable({ apis: ['Date'], now: Date.now() });
  try {
    // undici frees the socket a tick after the body ends: wait for it, or the next request opens another
    const free = () => until('the socket back in the pool', () => poolStats(g).free > 0);
    await get(g);
    await free();
    mock.timers.tick(900);
    await get(g);
    assert.equal(s.ports.length, 1, 'reused while young');
    await free();
    mock.timers.tick(200);
    await get(g);
    assert.equal(s.ports.length, 2, 'replaced once older than max-lifetime');
  } finally {
    mock.timers.reset();
  }
});

test('connect timeout: a TLS upstream that never completes the handshake fails as connect_timeout', async () => {
  const accepted = new Set<Socket>();
  const silent = createTcpServer((sock) => {
    accepted.add(sock); // accepts TCP, never speaks TLS
  });
  await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
  cleanups.push(() => closeServer(silent, accepted));
  const port = (silent.address() as AddressInfo).port;
  const g = group(`127.0.0.1:${port}`, { timeouts: { 'connect-secs': 0.2 }, tls: { 'insecure-skip-verify': true } } as Partial<RawUpstream>);
  const err = await get(g).then(
    () => undefined,
    (e: unknown) => e,
  );
  assert.ok(err, 'expected a failure');
  assert.equal(classifyUpstreamError(err).reason, 'connect_timeout');
  assert.equal(g.snapshot().targets[0]!.last_error, 'connect_timeout');
});

test('read timeout: no response headers within read-secs fails as timeout', async () => {
  const s = await trackedServer(() => {
    /* never answers */
  });
  const g = group(s.address, { timeouts: { 'read-secs': 0.2 } } as Partial<RawUpstream>);
  const err = await get(g).then(
    () => undefined,
    (e: unknown) => e,
  );
  assert.equal(classifyUpstreamError(err).reason, 'timeout');
  assert.deepEqual(g.timeouts, { connectMs: 10_000, requestMs: 60_000, readMs: 200, writeMs: 30_000 });
});

test('pool gauges report open and idle connections per upstream', async () => {
  const s = await trackedServer((_req, res) => res.end('ok'));
  const services = fakeServices();
  const g = new UpstreamGroup({ id: 'gauged', config: { id: 'gauged', target: [{ address: s.address, weight: 1 }] } as RawUpstream, baseDir: '.', services });
  cleanups.push(() => g.close());
  g.start();
  await Promise.all(Array.from({ length: 3 }, () => get(g)));
  let text = '';
  await until('the pool gauges', async () => /sentinel_connection_pool_size\{upstream="gauged"\} [1-9]/.test((text = await services.metrics.render())));
  assert.match(text, /sentinel_connection_pool_size\{upstream="gauged"\} [1-9]/);
  assert.match(text, /sentinel_connection_pool_idle\{upstream="gauged"\} [1-9]/);
  assert.match(text, /sentinel_circuit_breaker_state\{component="upstream:gauged:127\.0\.0\.1:\d+",route=""\} 0/);
});

test('request timeout: attemptSignal aborts a slow response after request-secs as a timeout', async () => {
  const s = await trackedServer((_req, res) => {
    res.writeHead(200);
    res.write('partial'); // headers arrive, the body never finishes
  });
  const g = group(s.address, { timeouts: { 'request-secs': 0.3, 'read-secs': 30 } } as Partial<RawUpstream>);
  const client = new AbortController();
  const p = g.select(pickContext())!;
  const err = await (async () => {
    const res = await g.dispatcher(p.target).request({ origin: g.origin(p.target), path: '/', method: 'GET', signal: g.attemptSignal(client.signal) });
    await res.body.text();
  })().then(
    () => undefined,
    (e: unknown) => e,
  );
  g.report(p.target, { kind: 'error', reason: classifyUpstreamError(err).reason, latencyMs: 300 });
  assert.equal(classifyUpstreamError(err).reason, 'timeout');
  assert.equal(client.signal.aborted, false, 'the client signal is untouched');
});
