// WebSocket probes of the session 15 audit: Origin, and what frame-by-frame inspection sees of a
// fragmented message. The Origin finding is fixed (route `websocket-allowed-origins`, refused
// before the filters run; websocket-origin.test.ts has the details); a route without the key still
// leaves the Origin to the agents and the upstream. The fragments one is a limit, not a bug,
// recorded in docs/security.md (Open findings): agents see each fragment on its own, so a pattern
// split across fragments reaches the upstream unless the agent reassembles (fin / frame_index say
// where a message ends). This test turns red when either changes, so the doc can follow.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gatewayFrom } from '../../helpers/gateway.ts';
import type { Gateway } from '../../../src/server/gateway.ts';
import { allow, closeWebSocket, runAgent, type RunningAgent } from '../../../src/agent-sdk/index.ts';
import { Opcode } from '../../../src/websocket/frames.ts';
import { startEchoUpstream, WsClient, type EchoUpstream } from '../websocket/ws-helpers.ts';

const dir = mkdtempSync(join(tmpdir(), 'sws15-'));
let echo: EchoUpstream;
let agent: RunningAgent;
let gw: Gateway;
let port: number;
let frames = 0;
const origins: (string | undefined)[] = [];

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
      frames++;
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
  route "guarded" { matches { path-prefix "/guarded" }; upstream "echo"; websocket #true; websocket-allowed-origins "https://app.example"; filters "guard" }
}
upstreams { upstream "echo" { target "${echo.address}" } }
`));
  port = gw.address('http').port;
});

after(async () => {
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

test('a per-frame matcher catches a whole message, not the same text split across fragments', async () => {
  const whole = await WsClient.connect(port, '/insp/w');
  whole.text('x; DROP TABLE users');
  assert.equal((await whole.waitClose())?.code, 1008, 'one frame: closed by the agent');
  whole.destroy();

  const split = await WsClient.connect(port, '/insp/s');
  try {
    const before = frames;
    split.send(Opcode.Text, 'x; DROP ', false);
    split.send(Opcode.Continuation, 'TABLE users');
    assert.deepEqual(await split.message(), { opcode: Opcode.Text, data: Buffer.from('x; DROP TABLE users') }, 'echoed whole: the upstream got it');
    assert.equal(frames - before, 4, 'two fragments each way, each inspected alone');
  } finally {
    split.destroy();
  }
});
