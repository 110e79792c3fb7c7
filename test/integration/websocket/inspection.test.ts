// WebSocket frame inspection by agents through the real gateway: an SDK agent on a Unix socket
// (onWebSocketFrame), a real echo upstream, a raw-socket client. allow (byte for byte), drop and
// close in both directions, block -> 1008, fail-closed 1011 with a hung and a dead agent,
// fail-open forwarding, permessage-deflate offers stripped (frames still inspected) only where
// inspection has an effect (a deflate-speaking upstream keeps compression elsewhere), routes
// without inspection, metrics.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gatewayFrom } from '../../helpers/gateway.ts';
import type { Gateway } from '../../../src/server/gateway.ts';
import { allow, block, closeWebSocket, dropFrame, runAgent, type RunningAgent, type WebSocketFrameEvent } from '../../../src/agent-sdk/index.ts';
import { reservedCorrelationIds } from '../../../plugins/agents/correlation.ts';
import { Opcode } from '../../../src/websocket/frames.ts';
import { deflateMessage, inflateMessage, RSV1, startEchoUpstream, WsClient, type EchoUpstream } from './ws-helpers.ts';

const dir = mkdtempSync(join(tmpdir(), 'sws-'));
const sock = (n: string) => join(dir, `${n}.sock`);
let echo: EchoUpstream;
let agent: RunningAgent;
let gw: Gateway;
let port: number;
const events: WebSocketFrameEvent[] = [];
const clients: WsClient[] = [];

before(async () => {
  echo = await startEchoUpstream();
  agent = await runAgent({
    socketPath: sock('guard'),
    name: 'guard',
    log: () => undefined,
    onRequestHeaders(event) {
      if (event.headers['x-deny']) return block(403, 'upgrade denied by agent');
      return allow().setRequestHeader('X-Agent-Saw', event.correlation_id);
    },
    onWebSocketFrame(event) {
      events.push(event);
      const text = Buffer.from(event.data, 'base64').toString();
      if (text === 'drop-me') return dropFrame();
      if (text === 'close-me') return closeWebSocket(4000, 'bad word');
      if (text === 'block-me') return block(403, 'no');
      if (text === 'secret' && !event.client_to_server) return dropFrame();
      if (text === 'hang') return new Promise<never>(() => undefined);
      return allow();
    },
  });
  ({ gw } = await gatewayFrom(`
system { graceful-shutdown-timeout-secs 1 }
listeners { listener "http" { address "127.0.0.1:0" } }
agents {
  agent "guard" { unix-socket "${sock('guard')}"; events "request_headers" "websocket_frame"; timeout-ms 2000 }
  agent "dead" { unix-socket "${sock('dead')}"; events "websocket_frame"; timeout-ms 300; pool { reconnect-interval-ms 100 } }
  agent "headers-only" { unix-socket "${sock('guard')}"; events "request_headers" }
}
filters {
  filter "guard" { type "agent"; agent "guard"; failure-mode "closed" }
  filter "guard-fast" { type "agent"; agent "guard"; failure-mode "closed"; timeout-ms 300 }
  filter "guard-open" { type "agent"; agent "guard"; failure-mode "open"; timeout-ms 300 }
  filter "dead" { type "agent"; agent "dead"; failure-mode "closed" }
  filter "headers-only" { type "agent"; agent "headers-only" }
}
routes {
  route "insp" { matches { path-prefix "/insp" }; upstream "echo"; websocket #true; websocket-inspection #true; filters "guard" }
  route "fast" { matches { path-prefix "/fast" }; upstream "echo"; websocket #true; websocket-inspection #true; filters "guard-fast" }
  route "open" { matches { path-prefix "/open" }; upstream "echo"; websocket #true; websocket-inspection #true; filters "guard-open" }
  route "dead" { matches { path-prefix "/dead" }; upstream "echo"; websocket #true; websocket-inspection #true; filters "dead" }
  route "no-effect" { matches { path-prefix "/no-effect" }; upstream "echo"; websocket #true; websocket-inspection #true; filters "headers-only" }
  route "plain" { matches { path-prefix "/plain" }; upstream "echo"; websocket #true; filters "guard" }
}
upstreams { upstream "echo" { target "${echo.address}" } }
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

let seq = 0;
async function connect(path: string, headers: Record<string, string> = {}): Promise<{ c: WsClient; id: string; upstreamFrames: () => import('../../../src/websocket/frames.ts').Frame[] }> {
  const id = `wsi-${++seq}`;
  const before = echo.received.length;
  const c = await WsClient.connect(port, path, { 'X-Request-Id': id, ...headers });
  clients.push(c);
  assert.equal(c.handshake.status, 101, `upgrade of ${path}: ${c.handshake.body}`);
  await c.until(() => echo.received.length > before, 'the upstream session');
  const idx = echo.received.length - 1;
  return { c, id, upstreamFrames: () => echo.received[idx]! };
}

const of = (id: string) => events.filter((e) => e.correlation_id === id);

test('allowed frames reach the upstream byte for byte; agents see both directions with the reference event shape', async () => {
  const { c, id, upstreamFrames } = await connect('/insp/a');
  const sent = c.text('hello');
  assert.deepEqual(await c.message(), { opcode: Opcode.Text, data: Buffer.from('hello') });
  assert.ok(upstreamFrames()[0]!.raw.equals(sent), 'the masked frame arrived unchanged (same mask key)');
  const seen = of(id);
  assert.equal(seen.length, 2);
  assert.deepEqual(seen[0], {
    correlation_id: id,
    opcode: 'text',
    data: Buffer.from('hello').toString('base64'),
    client_to_server: true,
    frame_index: 0,
    fin: true,
    route_id: 'insp',
    client_ip: '127.0.0.1',
  });
  assert.equal(seen[1]!.client_to_server, false);
  assert.equal(seen[1]!.frame_index, 0);
  // fragments with a ping in between: the ping is inspected at once, the message once, whole (fin
  // true, the first frame's opcode); it still arrives whole
  c.send(Opcode.Binary, Buffer.from([1, 2]), false);
  c.send(Opcode.Ping, 'p');
  c.send(Opcode.Continuation, Buffer.from([3]));
  assert.deepEqual(await c.message(), { opcode: Opcode.Binary, data: Buffer.from([1, 2, 3]) });
  await c.until(() => c.frames.some((f) => f.opcode === Opcode.Pong), 'the pong');
  const c2s = of(id).filter((e) => e.client_to_server);
  assert.equal(c2s.at(-1)!.data, Buffer.from([1, 2, 3]).toString('base64'));
  assert.deepEqual(
    c2s.map((e) => [e.opcode, e.fin, e.frame_index]),
    [
      ['text', true, 0],
      ['ping', true, 1],
      ['binary', true, 2],
    ],
  );
  c.close(1000, 'bye');
  assert.equal((await c.waitClose())?.code, 1000);
  assert.ok(of(id).some((e) => e.opcode === 'close' && e.client_to_server));
});

test('request_headers decisions apply to upgrades: a block answers the client, header edits reach the upstream', async () => {
  const denied = await WsClient.connect(port, '/insp/denied', { 'X-Deny': '1' });
  clients.push(denied);
  assert.equal(denied.handshake.status, 403);
  assert.equal(denied.handshake.body, 'upgrade denied by agent');
  const { id } = await connect('/insp/edited');
  assert.equal(echo.upgrades.at(-1)!['x-agent-saw'], id);
});

test('drop: a dropped client frame never reaches the upstream; a dropped server frame never reaches the client', async () => {
  const { c, upstreamFrames } = await connect('/insp/drop');
  c.text('drop-me');
  c.text('after');
  assert.equal((await c.message()).data.toString(), 'after');
  assert.deepEqual(
    upstreamFrames().map((f) => f.payload.toString()),
    ['after'],
  );
  c.text('secret'); // allowed upstream, the echo is dropped on the way back
  c.text('visible');
  assert.equal((await c.message()).data.toString(), 'visible');
  assert.deepEqual(
    upstreamFrames().map((f) => f.payload.toString()),
    ['after', 'secret', 'visible'],
  );
});

test('close: the agent closes both sides with its code and reason', async () => {
  const closes = echo.closes.length;
  const { c, upstreamFrames } = await connect('/insp/close');
  c.text('close-me');
  assert.deepEqual(await c.waitClose(), { code: 4000, reason: 'bad word' });
  await c.until(() => echo.closes.length > closes, 'the upstream close');
  assert.deepEqual(echo.closes.at(-1), { code: 4000, reason: 'bad word' });
  assert.ok(!upstreamFrames().some((f) => f.payload.toString() === 'close-me'));
});

test('a block decision without websocket_decision closes with 1008', async () => {
  const { c } = await connect('/insp/block');
  c.text('block-me');
  assert.deepEqual(await c.waitClose(), { code: 1008, reason: 'no' });
});

test('fail-closed: a hung agent (timeout) and a dead agent close the session with 1011', async () => {
  const hung = await connect('/fast/hang');
  hung.c.text('hang');
  assert.deepEqual(await hung.c.waitClose(), { code: 1011, reason: 'Agent timeout' });
  assert.ok(!hung.upstreamFrames().some((f) => f.payload.toString() === 'hang'));
  const dead = await connect('/dead/x');
  dead.c.text('anything');
  assert.deepEqual(await dead.c.waitClose(), { code: 1011, reason: 'Agent unavailable' });
});

test('fail-open: a frame the agent does not answer in time is forwarded', async () => {
  const { c } = await connect('/open/x');
  c.text('hang'); // c2s times out (forwarded); the echo times out too (forwarded)
  assert.equal((await c.message()).data.toString(), 'hang');
  c.text('fine');
  assert.equal((await c.message()).data.toString(), 'fine');
});

test('a client offering permessage-deflate: the offer is not forwarded, frames are inspected', async () => {
  const upgradesBefore = echo.upgrades.length;
  const { c, id } = await connect('/insp/deflate', { 'Sec-WebSocket-Extensions': 'permessage-deflate; client_max_window_bits, x-other' });
  assert.equal(echo.upgrades[upgradesBefore]!['sec-websocket-extensions'], 'x-other', 'only the compression offer was removed');
  assert.equal(c.handshake.headers['sec-websocket-extensions'], undefined, 'nothing negotiated');
  c.text('drop-me'); // dropped: the frame was inspected
  c.text('after');
  assert.equal((await c.message()).data.toString(), 'after');
  assert.deepEqual(
    of(id).map((e) => Buffer.from(e.data, 'base64').toString()),
    ['drop-me', 'after', 'after'],
  );
});

test('an upstream that negotiates permessage-deflate nobody offered: the upgrade fails closed (502)', async () => {
  const c = await WsClient.connect(port, '/insp/force-deflate', { 'X-Request-Id': 'wsi-force' });
  clients.push(c);
  assert.equal(c.handshake.status, 502);
  assert.match(c.handshake.body, /extension that was not offered/);
  assert.equal(of('wsi-force').length, 0);
});

/** A compressed message from the client reaches the upstream as sent, and its compressed echo comes back. */
async function compressedRoundTrip(c: WsClient, upstreamFrames: () => import('../../../src/websocket/frames.ts').Frame[]): Promise<void> {
  const sent = c.send(Opcode.Text, deflateMessage('squeeze me, squeeze me, squeeze me'), true, RSV1);
  await c.until(() => c.frames.some((f) => f.opcode === Opcode.Text), 'the compressed echo');
  assert.ok(upstreamFrames()[0]!.raw.equals(sent), 'the compressed frame reached the upstream unchanged');
  const echoed = c.frames.find((f) => f.opcode === Opcode.Text)!;
  assert.equal(echoed.rsv, RSV1, 'the answer is compressed');
  assert.equal(inflateMessage(echoed.payload).toString(), 'squeeze me, squeeze me, squeeze me');
}

test('routes without inspection still forward the compression offer: the session stays compressed end to end', async () => {
  const upgradesBefore = echo.upgrades.length;
  const { c, upstreamFrames } = await connect('/plain/deflate', { 'Sec-WebSocket-Extensions': 'permessage-deflate' });
  assert.equal(echo.upgrades[upgradesBefore]!['sec-websocket-extensions'], 'permessage-deflate');
  assert.equal(c.handshake.headers['sec-websocket-extensions'], 'permessage-deflate');
  await compressedRoundTrip(c, upstreamFrames);
});

test('websocket-inspection with no filter shown the frames: the compression offer passes, the session stays compressed', async () => {
  const upgradesBefore = echo.upgrades.length;
  const { c, id, upstreamFrames } = await connect('/no-effect/deflate', { 'Sec-WebSocket-Extensions': 'permessage-deflate; client_max_window_bits, x-other' });
  assert.equal(echo.upgrades[upgradesBefore]!['sec-websocket-extensions'], 'permessage-deflate; client_max_window_bits, x-other', 'the offer was forwarded whole');
  assert.equal(c.handshake.headers['sec-websocket-extensions'], 'permessage-deflate');
  await compressedRoundTrip(c, upstreamFrames);
  assert.equal(of(id).length, 0, 'no frame went to an agent');
});

test('routes without websocket-inspection: agents see the upgrade request only, not frames', async () => {
  const { c, id } = await connect('/plain/x');
  c.text('drop-me');
  assert.equal((await c.message()).data.toString(), 'drop-me');
  assert.equal(of(id).length, 0);
});

test('frame metrics and no leaked correlation ids once sessions end', async () => {
  const text = await gw.metrics.render();
  assert.match(text, /sentinel_websocket_frames_total\{route="insp",direction="c2s",opcode="text",decision="drop"\} 2\n/);
  assert.match(text, /sentinel_websocket_closed_by_gateway_total\{route="insp",reason="agent"\} 2\n/);
  assert.match(text, /sentinel_websocket_frames_total\{route="insp",direction="s2c",opcode="text",decision="drop"\} 1\n/);
  assert.match(text, /sentinel_websocket_frames_total\{route="insp",direction="c2s",opcode="text",decision="close"\} 2\n/);
  assert.match(text, /sentinel_websocket_frames_total\{route="fast",direction="c2s",opcode="text",decision="close"\} 1\n/);
  assert.match(text, /sentinel_websocket_inspection_duration_seconds_count\{route="insp"\} [1-9]/);
  assert.match(text, /sentinel_websocket_frame_size_bytes_count\{route="insp",direction="c2s"\} [1-9]/);
  assert.match(text, /sentinel_agent_requests_total\{agent="guard",decision="timeout"\} [1-9]/);
  for (const c of clients) c.destroy();
  await clients[0]!.until(() => gw.current.activeRequests === 0, 'sessions to end', 10_000);
  await clients[0]!.until(() => reservedCorrelationIds() === 0, 'correlation ids to be released', 5000);
});
