// WebSocket proxying through the real gateway: a real echo upstream and a raw-socket client.
// Gating (403), echo of text/binary/fragmented/1 MiB messages, refusals relayed, upstream down,
// close in both directions, rate limits on upgrades, access log and metrics, reload and shutdown.
import { after, before, mock, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gatewayFrom } from '../../helpers/gateway.ts';
import { request } from '../../helpers/http.ts';
import { closedPort } from '../../helpers/upstream.ts';
import type { Gateway } from '../../../src/server/gateway.ts';
import { Opcode } from '../../../src/websocket/frames.ts';
import { startEchoUpstream, WsClient, type EchoUpstream } from './ws-helpers.ts';
import { until, UNTIL_MS } from '../../helpers/until.ts';

let echo: EchoUpstream;
let gw: Gateway;
let port: number;
let downPort: number;
let silent: net.Server;
let silentPort: number;
const dir = mkdtempSync(join(tmpdir(), 'sentinel-ws-'));
const accessLog = join(dir, 'access.log');
const clients: WsClient[] = [];

const config = (extraRoute = '') => `
system { graceful-shutdown-timeout-secs 2 }
listeners { listener "http" { address "127.0.0.1:0" } }
observability { logging { level "error"; access-log { file "${accessLog}" } } }
routes {
  route "ws" { matches { path-prefix "/ws" }; upstream "echo"; websocket #true; policies { response-headers { set { X-Route "ws" } } } }
  route "down" { matches { path-prefix "/down" }; upstream "down"; websocket #true }
  route "silent" { matches { path-prefix "/silent" }; upstream "silent"; websocket #true; policies { timeout-secs 1 } }
  route "limited" { matches { path-prefix "/limited" }; upstream "echo"; websocket #true; filters "rl" }
  route "refuse" { matches { path "/refuse" }; upstream "echo"; websocket #true }
  route "idle" { matches { path-prefix "/idle" }; upstream "echo"; websocket #true; websocket-idle-timeout-secs 1 }
  route "plain" { matches { path-prefix "/" }; upstream "echo" }
  ${extraRoute}
}
filters { filter "rl" { type "rate-limit"; max-rps 0.01; burst 2 } }
upstreams {
  upstream "echo" { target "${echo.address}" }
  upstream "down" { target "127.0.0.1:${downPort}" }
  upstream "silent" { target "127.0.0.1:${silentPort}" }
}
`;

async function connect(path: string, headers: Record<string, string> = {}): Promise<WsClient> {
  const c = await WsClient.connect(port, path, headers);
  clients.push(c);
  return c;
}

before(async () => {
  echo = await startEchoUpstream();
  downPort = await closedPort();
  // accepts connections and never answers
  silent = net.createServer((s) => s.on('error', () => undefined));
  await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
  silentPort = (silent.address() as net.AddressInfo).port;
  ({ gw } = await gatewayFrom(config()));
  port = gw.address('http').port;
});

after(async () => {
  for (const c of clients) c.destroy();
  await gw?.close();
  await echo?.close();
  silent?.close();
  rmSync(dir, { recursive: true, force: true });
});

test('a route without websocket #true answers 403 to an upgrade (and plain requests still work)', async () => {
  const c = await connect('/other');
  assert.equal(c.handshake.status, 403);
  assert.equal(c.handshake.body, 'WebSocket not enabled for this route');
  assert.ok(c.handshake.headers['x-correlation-id']);
  const plain = await request(`http://127.0.0.1:${port}/x`);
  assert.equal(plain.status, 200);
  assert.equal(plain.body, 'plain http');
});

test('text, binary, fragmented (with a ping between fragments) and 1 MiB messages are echoed', async () => {
  const c = await connect('/ws/echo?x=1', { 'Sec-WebSocket-Protocol': 'chat, superchat', 'X-Request-Id': 'ws-req-1' });
  assert.equal(c.handshake.status, 101);
  assert.equal(c.handshake.headers.upgrade?.toLowerCase(), 'websocket');
  assert.equal(c.handshake.headers.connection?.toLowerCase(), 'upgrade');
  assert.equal(c.handshake.headers['sec-websocket-protocol'], 'chat');
  assert.equal(c.handshake.headers['x-upstream'], 'echo');
  assert.equal(c.handshake.headers['x-route'], 'ws', 'route response header policy applies to the 101');
  assert.equal(c.handshake.headers['x-correlation-id'], 'ws-req-1');
  // what the upstream saw
  const seen = echo.upgrades.at(-1)!;
  assert.equal(echo.urls.at(-1), '/ws/echo?x=1');
  assert.equal(seen.upgrade, 'websocket');
  assert.equal(seen.connection, 'Upgrade');
  assert.equal(seen['sec-websocket-version'], '13');
  assert.equal(seen['sec-websocket-protocol'], 'chat, superchat');
  assert.ok(seen['sec-websocket-key']);
  assert.equal(seen['x-correlation-id'], 'ws-req-1');
  assert.equal(seen['x-forwarded-for'], '127.0.0.1');
  assert.equal(seen['x-forwarded-proto'], 'http');
  assert.equal(seen['x-forwarded-by'], 'Sentinel');

  c.text('hello');
  assert.deepEqual(await c.message(), { opcode: Opcode.Text, data: Buffer.from('hello') });
  const bin = Buffer.from([0, 1, 2, 255, 254]);
  c.send(Opcode.Binary, bin);
  assert.deepEqual(await c.message(), { opcode: Opcode.Binary, data: bin });
  c.send(Opcode.Text, 'frag', false);
  c.send(Opcode.Ping, 'p');
  c.send(Opcode.Continuation, 'men', false);
  c.send(Opcode.Continuation, 'ted');
  assert.deepEqual(await c.message(), { opcode: Opcode.Text, data: Buffer.from('fragmented') });
  await c.until(() => c.frames.some((f) => f.opcode === Opcode.Pong), 'the pong');
  const big = Buffer.alloc(1 << 20);
  for (let i = 0; i < big.length; i++) big[i] = (i * 31) & 0xff;
  c.send(Opcode.Binary, big);
  const back = await c.message(20_000);
  assert.equal(back.data.length, big.length);
  assert.ok(back.data.equals(big), '1 MiB arrives intact');
  c.close(1000, 'done');
  const closeBack = await c.waitClose();
  assert.equal(closeBack?.code, 1000, 'the upstream answered the close through the gateway');
});

test('the client closing reaches the upstream, and the upstream closing reaches the client', async () => {
  const closesBefore = echo.closes.length;
  const a = await connect('/ws/a');
  a.text('x');
  await a.message();
  a.close(1000, 'client bye');
  await a.waitClose();
  await a.until(() => echo.closes.length > closesBefore, 'the upstream to see the close');
  assert.deepEqual(echo.closes.at(-1), { code: 1000, reason: 'client bye' });

  const b = await connect('/ws/b');
  b.text('server-close');
  const got = await b.waitClose();
  assert.deepEqual(got, { code: 1000, reason: 'bye' });

  // a client that just drops the TCP connection: the upstream's socket is closed too
  const c = await connect('/ws/c');
  c.text('y');
  await c.message();
  const closedBefore = echo.socketsClosed;
  c.destroy();
  await a.until(() => echo.socketsClosed > closedBefore, 'the upstream socket to close');
});

test('an upstream that refuses the upgrade: its status, headers and body reach the client, then the connection closes', async () => {
  const c = await connect('/refuse');
  assert.equal(c.handshake.status, 401);
  assert.equal(c.handshake.headers['x-why'], 'token');
  assert.equal(c.handshake.body, 'no token, no');
  assert.ok(c.handshake.headers['x-correlation-id']);
});

test('an upstream that is down: 502 JSON error without the address', async () => {
  const c = await connect('/down');
  assert.equal(c.handshake.status, 502);
  const body = JSON.parse(c.handshake.body) as { status: number; error: string; request_id: string };
  assert.equal(body.status, 502);
  assert.equal(body.request_id, c.handshake.headers['x-correlation-id']);
  assert.ok(!c.handshake.body.includes(String(downPort)));
});

test('an upstream that never answers the upgrade: 504 after the route timeout', async () => {
  const started = Date.now();
  const c = await connect('/silent');
  assert.equal(c.handshake.status, 504);
  assert.equal((JSON.parse(c.handshake.body) as { status: number }).status, 504);
  assert.ok(Date.now() - started >= 900, 'waited for timeout-secs 1');
});

test('rate limits apply to upgrade requests', async () => {
  const statuses: number[] = [];
  for (let i = 0; i < 4; i++) {
    const c = await connect('/limited');
    statuses.push(c.handshake.status);
    if (c.handshake.status === 429) assert.ok(c.handshake.headers['retry-after']);
    c.destroy();
  }
  assert.deepEqual(statuses, [101, 101, 429, 429]);
});

test('a session without frames either way for websocket-idle-timeout-secs is closed with 1001; a busy one stays open', async () => {
  const quiet = await connect('/idle/quiet');
  const busy = await connect('/idle/busy');
  assert.equal(quiet.handshake.status, 101);
  const closesBefore = echo.closes.length;
  // The idle check compares Date.now() with the last bytes' time when its timer fires. The wall
  // clock is held and moved by hand, so "1.2 s without bytes" (quiet) and "bytes every 0.4 s"
  // (busy) are exact: on the real clock a stall of the test process over 1 s closed the busy one.
  mock.timers.enable({ apis: ['Date'], now: Date.now() });
  try {
    quiet.text('one');
    assert.equal((await quiet.message()).data.toString(), 'one');
    for (let i = 0; i < 3; i++) {
      mock.timers.tick(400);
      busy.text(`m${i}`);
      assert.equal((await busy.message()).data.toString(), `m${i}`);
    }
    // quiet: 1.2 s since its last bytes; busy: none. The clock stands still until quiet is closed.
    assert.deepEqual(await quiet.waitClose(), { code: 1001, reason: 'Idle timeout' });
    await quiet.until(() => echo.closes.slice(closesBefore).some((c) => c.code === 1001), 'the upstream to get the 1001 too');
    assert.equal(busy.closed, false, 'traffic kept the busy session open');
    busy.text('still here');
    assert.equal((await busy.message()).data.toString(), 'still here');
    assert.match(await gw.metrics.render(), /sentinel_websocket_closed_by_gateway_total\{route="idle",reason="idle"\} 1\n/);
  } finally {
    mock.timers.reset();
  }
  busy.close();
  await busy.waitClose();
});

test('access log: one entry per session with status 101 and the session duration; metrics count connections', async () => {
  // its own gateway: closing it flushes the access log
  const log = join(dir, 'own-access.log');
  const own = await gatewayFrom(config().replace(accessLog, log));
  const ownPort = own.gw.address('http').port;
  try {
    const c = await WsClient.connect(ownPort, '/ws/logged', { 'X-Request-Id': 'ws-logged' });
    clients.push(c);
    c.text('z');
    await c.message();
    await new Promise((r) => setTimeout(r, 150));
    c.close();
    await c.waitClose();
    await until('the session to end', () => own.gw.current.activeRequests === 0);
    const text = await own.gw.metrics.render();
    assert.match(text, /sentinel_websocket_connections_total\{route="ws"\} 1\n/);
    assert.match(text, /sentinel_requests_total\{route="ws",method="GET",status="101"\} 1\n/);
  } finally {
    await own.gw.close();
  }
  let entry: Record<string, unknown> | undefined;
  await until(
    'the access log entry written when the session ended',
    () =>
      (entry = readFileSync(log, 'utf8')
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as Record<string, unknown>)
        .find((e) => e.trace_id === 'ws-logged')) !== undefined,
    UNTIL_MS,
    100,
  );
  assert.ok(entry);
  assert.equal(entry.status, 101);
  assert.equal(entry.route_id, 'ws');
  assert.equal(entry.path, '/ws/logged');
  assert.ok((entry.duration_ms as number) >= 150, `duration covers the session: ${String(entry.duration_ms)}`);
  assert.ok((entry.body_bytes as number) > 0);
  assert.match(await gw.metrics.render(), /sentinel_blocked_requests_total\{reason="websocket_not_enabled"\} [1-9]/);
});

test('a reload keeps an open session alive (it drains on the old generation)', async () => {
  const c = await connect('/ws/reload');
  c.text('before');
  assert.equal((await c.message()).data.toString(), 'before');
  const gen = gw.current.number;
  await gw.reload(config('route "extra" { matches { path "/extra" }; builtin-handler "health" }'));
  assert.equal(gw.current.number, gen + 1);
  c.text('after');
  assert.equal((await c.message()).data.toString(), 'after');
  // new upgrades go to the new generation
  const d = await connect('/ws/new');
  d.text('new');
  assert.equal((await d.message()).data.toString(), 'new');
  d.close();
  await d.waitClose();
  // after the drain time (2 s) the old generation closes it with 1001
  const got = await c.waitClose(8000);
  assert.deepEqual(got, { code: 1001, reason: 'Going away' });
});

test('graceful shutdown closes open sessions with 1001 when the drain time is over', async () => {
  const c = await connect('/ws/shutdown');
  c.text('still here');
  await c.message();
  const closing = gw.close();
  const got = await c.waitClose(8000);
  assert.deepEqual(got, { code: 1001, reason: 'Going away' });
  await closing;
});
