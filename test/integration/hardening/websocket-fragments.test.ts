// WebSocket probes of the session 15 audit: Origin, and what inspection sees of a fragmented
// message. Both are closed. Origin (session 15): route `websocket-allowed-origins`, refused before
// the filters run (websocket-origin.test.ts has the details); a route without the key still leaves
// the Origin to the agents and the upstream. Fragments (session 16): on an inspected route the
// gateway reassembles a fragmented message and asks the agents once, whole (one websocket_frame
// event, fin true), before any fragment is forwarded; `websocket-inspect-messages #false` keeps the
// old frame-by-frame events, and `websocket-max-fragments` caps the frames of one message either way;
// `websocket-max-message-bytes` (session 17) sets the message limit (default 1 MiB).
// A real echo upstream, a real SDK agent on a Unix socket, a raw-socket client.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { until } from '../../helpers/until.ts';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gatewayFrom } from '../../helpers/gateway.ts';
import type { Gateway } from '../../../src/server/gateway.ts';
import { allow, closeWebSocket, runAgent, type RunningAgent, type WebSocketFrameEvent } from '../../../src/agent-sdk/index.ts';
import { Opcode, encodeFrame, type Frame } from '../../../src/websocket/frames.ts';
import { startEchoUpstream, WsClient, type EchoUpstream } from '../websocket/ws-helpers.ts';

const dir = mkdtempSync(join(tmpdir(), 'sws15-'));
let echo: EchoUpstream;
let agent: RunningAgent;
let gw: Gateway;
let port: number;
const auditLog = join(dir, 'audit.log');
const events: WebSocketFrameEvent[] = [];
const origins: (string | undefined)[] = [];
const clients: WsClient[] = [];

before(async () => {
  echo = await startEchoUpstream();
  agent = await runAgent({
    socketPath: join(dir, 'guard.sock'),
    name: 'guard',
    log: () => undefined,
    onRequestHeaders(event) {
      const o = event.headers.origin;
      origins.push(Array.isArray(o) ? o[0] : o);
      return allow();
    },
    onWebSocketFrame(event) {
      events.push(event);
      // a per-frame matcher, as the SDK example in docs/websocket.md writes it
      if (Buffer.from(event.data, 'base64').toString().includes('DROP TABLE')) return closeWebSocket(1008, 'policy');
      return allow();
    },
  });
  ({ gw } = await gatewayFrom(`
system { graceful-shutdown-timeout-secs 1 }
listeners { listener "http" { address "127.0.0.1:0" } }
agents { agent "guard" { unix-socket "${join(dir, 'guard.sock')}"; events "request_headers" "websocket_frame"; timeout-ms 2000 } }
filters { filter "guard" { type "agent"; agent "guard"; failure-mode "closed" } }
routes {
  route "insp" { matches { path-prefix "/insp" }; upstream "echo"; websocket #true; websocket-inspection #true; filters "guard" }
  route "perframe" { matches { path-prefix "/perframe" }; upstream "echo"; websocket #true; websocket-inspection #true; websocket-inspect-messages #false; filters "guard" }
  route "capped" { matches { path-prefix "/capped" }; upstream "echo"; websocket #true; websocket-inspection #true; websocket-max-fragments 4; filters "guard" }
  route "small" { matches { path-prefix "/small" }; upstream "echo"; websocket #true; websocket-inspection #true; websocket-max-message-bytes 1000; filters "guard" }
  route "large" { matches { path-prefix "/large" }; upstream "echo"; websocket #true; websocket-inspection #true; websocket-max-message-bytes 2097152; filters "guard" }
  route "guarded" { matches { path-prefix "/guarded" }; upstream "echo"; websocket #true; websocket-allowed-origins "https://app.example"; filters "guard" }
}
upstreams { upstream "echo" { target "${echo.address}" } }
observability { logging { level "error"; audit-log { file "${auditLog}" } } }
`));
  port = gw.address('http').port;
});

after(async () => {
  for (const c of clients) c.destroy();
  await gw?.close();
  await agent?.close();
  await echo?.close();
  rmSync(dir, { recursive: true, force: true });
});

test('Origin: refused by the gateway on a route that lists origins, before the agent or the upstream', async () => {
  const seen = [origins.length, echo.upgrades.length];
  const c = await WsClient.connect(port, '/guarded/o', { Origin: 'https://evil.example' });
  c.destroy();
  assert.equal(c.handshake.status, 403);
  assert.deepEqual([origins.length, echo.upgrades.length], seen, 'neither the agent nor the upstream was asked');
  const ok = await WsClient.connect(port, '/guarded/o', { Origin: 'https://app.example' });
  ok.destroy();
  assert.equal(ok.handshake.status, 101);
  assert.equal(origins.at(-1), 'https://app.example');
});

test('Origin: a route without websocket-allowed-origins leaves it to the agent and the upstream, as sent', async () => {
  const c = await WsClient.connect(port, '/insp/o', { Origin: 'https://evil.example' });
  try {
    assert.equal(c.handshake.status, 101);
    assert.equal(origins.at(-1), 'https://evil.example');
    assert.equal(echo.upgrades.at(-1)!.origin, 'https://evil.example');
  } finally {
    c.destroy();
  }
});

let seq = 0;
async function connect(path: string): Promise<{ c: WsClient; id: string; upstreamFrames: () => Frame[] }> {
  const id = `wsf-${++seq}`;
  const before = echo.received.length;
  const c = await WsClient.connect(port, path, { 'X-Request-Id': id });
  clients.push(c);
  assert.equal(c.handshake.status, 101, `upgrade of ${path}: ${c.handshake.body}`);
  await c.until(() => echo.received.length > before, 'the upstream session');
  const idx = echo.received.length - 1;
  return { c, id, upstreamFrames: () => echo.received[idx]! };
}

/** [opcode, fin, frame_index, text] of the events of one session in one direction */
const seen = (id: string, c2s: boolean) => events.filter((e) => e.correlation_id === id && e.client_to_server === c2s).map((e) => [e.opcode, e.fin, e.frame_index, Buffer.from(e.data, 'base64').toString()]);
const dataFrames = (frames: Frame[]) => frames.filter((f) => f.opcode === Opcode.Text || f.opcode === Opcode.Binary || f.opcode === Opcode.Continuation);

test('a pattern split across fragments is seen whole: the agent closes the session, no fragment reaches the upstream', async () => {
  const whole = await connect('/insp/w');
  whole.c.text('x; DROP TABLE users');
  assert.equal((await whole.c.waitClose())?.code, 1008, 'one frame: closed by the agent');

  const { c, id, upstreamFrames } = await connect('/insp/s');
  c.send(Opcode.Text, 'x; DROP ', false);
  c.send(Opcode.Continuation, 'TABLE users');
  assert.deepEqual(await c.waitClose(), { code: 1008, reason: 'policy' }, 'two fragments: closed by the agent too');
  assert.deepEqual(seen(id, true), [['text', true, 0, 'x; DROP TABLE users']], 'one event: the whole message, fin true (the reference event shape)');
  assert.deepEqual(dataFrames(upstreamFrames()), [], 'neither fragment reached the upstream');
  assert.deepEqual(echo.closes.at(-1), { code: 1008, reason: 'policy' });
});

test('a benign fragmented message arrives byte for byte both ways; pings interleaved pass while the message is open', async () => {
  const { c, id, upstreamFrames } = await connect('/insp/benign');
  const f1 = c.send(Opcode.Text, 'SELECT name ', false);
  const ping = c.send(Opcode.Ping, 'mid');
  // c2s: the ping passes the held message. s2c: the echo already sent back its first fragment
  // (held by the gateway) and then the pong, which passes it. Nothing waits for the last fragment.
  await c.until(() => c.frames.some((f) => f.opcode === Opcode.Pong), 'the pong while both messages are open');
  assert.deepEqual(
    upstreamFrames().map((f) => f.opcode),
    [Opcode.Ping],
    'only the ping reached the upstream so far',
  );
  assert.deepEqual(dataFrames(c.frames), [], 'no data frame came back yet');
  const f2 = c.send(Opcode.Continuation, 'FROM ', false);
  const f3 = c.send(Opcode.Continuation, 'users');
  await c.until(() => c.frames.some((f) => f.opcode === Opcode.Continuation && f.fin), 'the echoed message');
  assert.ok(Buffer.concat(upstreamFrames().map((f) => f.raw)).equals(Buffer.concat([ping, f1, f2, f3])), 'upstream: the ping, then the three fragments unchanged (mask keys, boundaries)');
  const echoed = [
    encodeFrame({ opcode: Opcode.Text, payload: 'SELECT name ', fin: false }),
    encodeFrame({ opcode: Opcode.Continuation, payload: 'FROM ', fin: false }),
    encodeFrame({ opcode: Opcode.Continuation, payload: 'users' }),
  ];
  assert.ok(Buffer.concat(dataFrames(c.frames).map((f) => f.raw)).equals(Buffer.concat(echoed)), "client: the echo's three fragments unchanged");
  assert.deepEqual(await c.message(), { opcode: Opcode.Text, data: Buffer.from('SELECT name FROM users') });
  assert.deepEqual(seen(id, true), [
    ['ping', true, 0, 'mid'],
    ['text', true, 1, 'SELECT name FROM users'],
  ]);
  assert.deepEqual(seen(id, false), [
    ['pong', true, 0, 'mid'],
    ['text', true, 1, 'SELECT name FROM users'],
  ]);
});

test('tiny fragments cost one agent call per message, not one per fragment', async () => {
  const { c, id } = await connect('/insp/tiny');
  const text = Array.from({ length: 300 }, (_, i) => String.fromCharCode(97 + (i % 26))).join('');
  for (let i = 0; i < text.length; i++) c.send(i === 0 ? Opcode.Text : Opcode.Continuation, text[i], i === text.length - 1);
  assert.deepEqual(await c.message(), { opcode: Opcode.Text, data: Buffer.from(text) });
  assert.deepEqual(seen(id, true), [['text', true, 0, text]]);
  assert.deepEqual(seen(id, false), [['text', true, 0, text]]);
});

test('websocket-inspect-messages #false: each fragment is its own event, as before (a per-frame matcher misses the split)', async () => {
  const { c, id } = await connect('/perframe/s');
  c.send(Opcode.Text, 'x; DROP ', false);
  c.send(Opcode.Continuation, 'TABLE users');
  assert.deepEqual(await c.message(), { opcode: Opcode.Text, data: Buffer.from('x; DROP TABLE users') }, 'echoed whole: the upstream got it');
  assert.deepEqual(seen(id, true), [
    ['text', false, 0, 'x; DROP '],
    ['continuation', true, 1, 'TABLE users'],
  ]);
});

test('websocket-max-fragments: a message of more frames is refused with 1009 before any agent call or forwarding', async () => {
  const ok = await connect('/capped/ok');
  for (let i = 0; i < 4; i++) ok.c.send(i === 0 ? Opcode.Binary : Opcode.Continuation, Buffer.from([i]), i === 3);
  assert.deepEqual(await ok.c.message(), { opcode: Opcode.Binary, data: Buffer.from([0, 1, 2, 3]) }, 'four fragments: the cap');
  const { c, id, upstreamFrames } = await connect('/capped/over');
  for (let i = 0; i < 5; i++) c.send(i === 0 ? Opcode.Binary : Opcode.Continuation, Buffer.from([i]), i === 4);
  assert.deepEqual(await c.waitClose(), { code: 1009, reason: 'Too many fragments' });
  assert.deepEqual(seen(id, true), []);
  assert.deepEqual(dataFrames(upstreamFrames()), []);
});

test('a fragmented message over the 1 MiB limit (each fragment under it) is refused with 1009', async () => {
  const { c, id, upstreamFrames } = await connect('/insp/big');
  c.send(Opcode.Binary, Buffer.alloc(600 * 1024, 1), false);
  c.send(Opcode.Continuation, Buffer.alloc(600 * 1024, 2));
  assert.deepEqual(await c.waitClose(), { code: 1009, reason: 'Message too big' });
  assert.deepEqual(seen(id, true), []);
  assert.deepEqual(dataFrames(upstreamFrames()), []);
});

test('websocket-max-message-bytes: a message over a small limit is refused with 1009, one at the limit passes', async () => {
  const ok = await connect('/small/ok');
  ok.c.send(Opcode.Binary, Buffer.alloc(600, 1), false);
  ok.c.send(Opcode.Continuation, Buffer.alloc(400, 2));
  assert.deepEqual(await ok.c.message(), { opcode: Opcode.Binary, data: Buffer.concat([Buffer.alloc(600, 1), Buffer.alloc(400, 2)]) }, '1000 bytes: the limit');
  const { c, id, upstreamFrames } = await connect('/small/over');
  c.send(Opcode.Binary, Buffer.alloc(600, 1), false);
  c.send(Opcode.Continuation, Buffer.alloc(401, 2));
  assert.deepEqual(await c.waitClose(), { code: 1009, reason: 'Message too big' });
  assert.deepEqual(seen(id, true), [], 'no agent call');
  assert.deepEqual(dataFrames(upstreamFrames()), [], 'nothing forwarded');
  const single = await connect('/small/single');
  single.c.send(Opcode.Text, 'x'.repeat(1001));
  assert.deepEqual(await single.c.waitClose(), { code: 1009, reason: 'Message too big' }, 'an unfragmented message over it too');
});

test('websocket-max-message-bytes above 1 MiB: an unfragmented message larger than the default frame limit passes whole', async () => {
  const { c, id } = await connect('/large/one');
  const data = Buffer.alloc(1536 * 1024, 7);
  c.send(Opcode.Binary, data);
  assert.deepEqual(await c.message(), { opcode: Opcode.Binary, data }, 'echoed: the upstream got it');
  assert.deepEqual(
    events.filter((e) => e.correlation_id === id).map((e) => [e.client_to_server, e.opcode, Buffer.from(e.data, 'base64').length]),
    [
      [true, 'binary', data.length],
      [false, 'binary', data.length],
    ],
    'the agent saw it whole, both ways',
  );
});

test('metrics and audit events', async () => {
  const text = await gw.metrics.render();
  const metric = (name: string, labels: string) => Number(new RegExp(`${name}\\{${labels}\\} (\\d+)`).exec(text)?.[1] ?? 0);
  assert.equal(metric('sentinel_websocket_messages_reassembled_total', 'route="insp",direction="c2s",decision="close"'), 1, 'the split DROP');
  assert.equal(metric('sentinel_websocket_messages_reassembled_total', 'route="insp",direction="c2s",decision="allow"'), 2, 'benign + tiny');
  assert.equal(metric('sentinel_websocket_messages_reassembled_total', 'route="insp",direction="s2c",decision="allow"'), 2);
  assert.equal(metric('sentinel_websocket_messages_reassembled_total', 'route="capped",direction="c2s",decision="allow"'), 1);
  assert.equal(metric('sentinel_websocket_messages_reassembled_total', 'route="perframe",direction="c2s",decision="allow"'), 0, 'frame by frame: nothing reassembled');
  // a message's decision counts for each of its frames: 1 (whole) + 2 (split)
  assert.equal(metric('sentinel_websocket_frames_total', 'route="insp",direction="c2s",opcode="text",decision="close"'), 3);
  assert.equal(metric('sentinel_websocket_closed_by_gateway_total', 'route="capped",reason="too_many_fragments"'), 1);
  assert.equal(metric('sentinel_websocket_closed_by_gateway_total', 'route="insp",reason="too_big"'), 1);
  assert.equal(metric('sentinel_websocket_closed_by_gateway_total', 'route="small",reason="too_big"'), 2);
  assert.equal(metric('sentinel_websocket_closed_by_gateway_total', 'route="insp",reason="agent"'), 2);

  for (const c of clients) c.destroy();
  await gw.close(); // ends the sessions (audit events are written when a session ends) and flushes the file
  type Entry = Record<string, unknown>;
  let blocked: Entry[] = [];
  await until(
    () => `4 blocked WebSocket events in the audit log (${blocked.length} so far)`,
    () =>
      (blocked = readFileSync(auditLog, 'utf8')
        .split('\n')
        .filter((l) => l.endsWith('}'))
        .map((l) => JSON.parse(l) as Entry)
        .filter((e) => e.event_type === 'blocked' && (e.reason === 'websocket_message_too_big' || e.reason === 'websocket_too_many_fragments'))).length >= 4,
  );
  assert.deepEqual(blocked.map((e) => [e.reason, e.route_id, e.status_code]).sort(), [
    ['websocket_message_too_big', 'insp', 101],
    ['websocket_message_too_big', 'small', 101],
    ['websocket_message_too_big', 'small', 101],
    ['websocket_too_many_fragments', 'capped', 101],
  ]);
});
