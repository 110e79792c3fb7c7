// On a route with websocket-inspection, every client message is one agent call, and no request
// rate limit counts messages: one write of 20,000 one-byte text frames (140 kB) cost 40,000 agent
// calls (the echoes too) and ~5 s of gateway CPU plus ~2.6 s of the agent's (docs/security.md,
// "Session 26 audit"). A session's client may now send `websocket-max-messages-per-second`
// (default 100) with a burst of ten seconds' worth; beyond, the session is closed with 1008.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gatewayFrom } from '../../helpers/gateway.ts';
import type { Gateway } from '../../../src/server/gateway.ts';
import { allow, runAgent, type RunningAgent } from '../../../src/agent-sdk/index.ts';
import { Opcode, encodeFrame } from '../../../src/websocket/frames.ts';
import { startEchoUpstream, WsClient, type EchoUpstream } from '../websocket/ws-helpers.ts';

const dir = mkdtempSync(join(tmpdir(), 'swsrate-'));
const sock = join(dir, 'count.sock');
let echo: EchoUpstream;
let agent: RunningAgent;
let gw: Gateway;
/** client-to-server frames the agent was asked about */
let calls = 0;

before(async () => {
  echo = await startEchoUpstream();
  agent = await runAgent({
    socketPath: sock,
    name: 'count',
    log: () => undefined,
    onRequestHeaders: () => allow(),
    onWebSocketFrame(event) {
      if (event.client_to_server) calls++;
      return allow();
    },
  });
  ({ gw } = await gatewayFrom(`
system { graceful-shutdown-timeout-secs 1 }
listeners { listener "http" { address "127.0.0.1:0" } }
agents { agent "count" { unix-socket "${sock}"; events "request_headers" "websocket_frame"; timeout-ms 5000 } }
filters { filter "count" { type "agent"; agent "count"; failure-mode "closed" } }
routes {
  route "slow" { matches { path-prefix "/slow" }; upstream "echo"; websocket #true; websocket-inspection #true; websocket-max-messages-per-second 2; filters "count" }
  route "unbounded" { matches { path-prefix "/unbounded" }; upstream "echo"; websocket #true; websocket-inspection #true; websocket-max-messages-per-second 0; filters "count" }
  route "insp" { matches { path-prefix "/" }; upstream "echo"; websocket #true; websocket-inspection #true; filters "count" }
}
upstreams { upstream "echo" { target "${echo.address}" } }
`));
});

after(async () => {
  await gw?.close();
  await agent?.close();
  await echo?.close();
  rmSync(dir, { recursive: true, force: true });
});

/** `n` masked one-byte text frames in one write (7 bytes of wire each) */
function tinyFrames(n: number): Buffer {
  const one = encodeFrame({ opcode: Opcode.Text, payload: Buffer.from('a'), fin: true, mask: true });
  return Buffer.concat(Array.from({ length: n }, () => one));
}

test('a client sending many tiny messages at once is closed with 1008, before its messages reach the agents', async () => {
  const before = calls;
  const ws = await WsClient.connect(gw.address('http').port, '/chat');
  assert.equal(ws.handshake.status, 101);
  try {
    ws.socket.write(tinyFrames(5000));
    // before: 5,000 agent calls, one after another, and 5,000 echoes; the session stayed open
    const closed = await ws.waitClose(60_000);
    assert.deepEqual(closed, { code: 1008, reason: 'Message rate exceeded' });
  } finally {
    ws.destroy();
  }
  // the 1,001st message was over the burst: the session closed without asking about the rest
  assert.ok(calls - before <= 1000, `${calls - before} agent calls`);
  assert.match(await gw.metrics.render(), /sentinel_websocket_closed_by_gateway_total\{route="insp",reason="message_rate"\} 1\b/);
});

test('within the burst every message is inspected and relayed; a route key sets the rate, 0 lifts it', async () => {
  const port = gw.address('http').port;
  // 500 at once: within the default burst (1,000)
  const ws = await WsClient.connect(port, '/chat');
  try {
    ws.socket.write(tinyFrames(500));
    for (let i = 0; i < 500; i++) assert.equal((await ws.message(30_000)).data.toString(), 'a');
    assert.equal(ws.closed, false);
  } finally {
    ws.destroy();
  }
  // 2 a second: a burst of 20, the 21st message in one write closes the session
  const slow = await WsClient.connect(port, '/slow');
  try {
    slow.socket.write(tinyFrames(30));
    assert.equal((await slow.waitClose(30_000))?.code, 1008);
  } finally {
    slow.destroy();
  }
  // 0: unbounded, as before
  const free = await WsClient.connect(port, '/unbounded');
  try {
    free.socket.write(tinyFrames(1500));
    for (let i = 0; i < 1500; i++) await free.message(30_000);
    assert.equal(free.closed, false);
  } finally {
    free.destroy();
  }
});
