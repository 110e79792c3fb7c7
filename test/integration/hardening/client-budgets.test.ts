// The per-connection budgets (a body's small pieces, session 26; an inspected WebSocket session's
// messages, session 26) were full at every new connection: a client that reconnected, or opened
// many connections at once, got a full budget each time (docs/security.md, "Session 27 audit").
// Each is now also drawn from the client address's bucket, `limits {
// max-connection-budgets-per-client }` connections' worth (1 here, the strictest: 4,096 small
// pieces at 1,000 a second; 1,000 messages a route at 100 a second). Trusted proxies are exempt;
// a WebSocket client behind one is counted under its own (X-Forwarded-For) address.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gatewayFrom } from '../../helpers/gateway.ts';
import { startUpstream, type TestUpstream } from '../../helpers/upstream.ts';
import { notHung } from '../../helpers/until.ts';
import type { Gateway } from '../../../src/server/gateway.ts';
import { allow, runAgent, type RunningAgent } from '../../../src/agent-sdk/index.ts';
import { Opcode, encodeFrame } from '../../../src/websocket/frames.ts';
import { startEchoUpstream, WsClient, type EchoUpstream } from '../websocket/ws-helpers.ts';

const dir = mkdtempSync(join(tmpdir(), 'sclientbudget-'));
const sock = join(dir, 'count.sock');
let up: TestUpstream;
let echo: EchoUpstream;
let agent: RunningAgent;
let gw: Gateway;

before(async () => {
  up = await startUpstream();
  echo = await startEchoUpstream();
  agent = await runAgent({ socketPath: sock, name: 'count', log: () => undefined, onRequestHeaders: () => allow(), onWebSocketFrame: () => allow() });
  ({ gw } = await gatewayFrom(`
system { graceful-shutdown-timeout-secs 1; trusted-proxies "::1" }
limits { max-connection-budgets-per-client 1 }
listeners {
  listener "http" { address "127.0.0.1:0" }
  listener "proxied" { address "[::1]:0" }
}
agents { agent "count" { unix-socket "${sock}"; events "request_headers" "websocket_frame"; timeout-ms 5000 } }
filters { filter "count" { type "agent"; agent "count"; failure-mode "closed" } }
routes {
  route "ws" { matches { path-prefix "/ws" }; upstream "echo"; websocket #true; websocket-inspection #true; filters "count" }
  route "main" { matches { path-prefix "/" }; upstream "backend"; policies { max-body-buffer-bytes 0 } }
}
upstreams {
  upstream "backend" { target "${up.address}"; timeouts { request-secs 60 } }
  upstream "echo" { target "${echo.address}" }
}
`));
});

after(async () => {
  await gw?.close();
  await agent?.close();
  await echo?.close();
  await up?.close();
  rmSync(dir, { recursive: true, force: true });
});

/**
 * POSTs a chunked body of `chunks` chunks of `size` bytes on a connection of its own to `host`;
 * resolves with the status line, or '' when the gateway closed the connection without one.
 */
async function upload(host: string, port: number, path: string, chunks: number, size: number): Promise<string> {
  const s = net.connect({ host, port });
  s.on('error', () => undefined);
  s.setEncoding('latin1');
  let answer = '';
  s.on('data', (c: string) => (answer += c));
  const closed = new Promise<void>((r) => s.once('close', () => r()));
  await new Promise<void>((r) => s.once('connect', () => r()));
  const piece = `${size.toString(16)}\r\n${'x'.repeat(size)}\r\n`;
  s.write(`POST ${path} HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n`);
  s.write(piece.repeat(chunks));
  s.write('0\r\n\r\n');
  await notHung(`the answer to ${path}`, closed);
  return answer.slice(0, answer.indexOf('\r\n'));
}

async function metric(name: string, labels: Record<string, string>): Promise<number> {
  const m = gw.metrics.registry.getSingleMetric(name);
  const v = (await m?.get())?.values.find((x) => Object.entries(labels).every(([k, want]) => x.labels[k] === want));
  return v?.value ?? 0;
}

test('ordinary uploads are unaffected: six connections at once, each 256 KiB in 4 KiB chunks', async () => {
  const port = gw.address('http').port;
  const answers = await Promise.all(Array.from({ length: 6 }, (_, i) => upload('127.0.0.1', port, `/browser/${i}`, 64, 4096)));
  assert.deepEqual(answers, Array.from({ length: 6 }, () => 'HTTP/1.1 200 OK'));
});

test('connections opened together no longer get a full budget each: four bodies of 4,150 one-byte chunks, at most two answered', async () => {
  const port = gw.address('http').port;
  // Each body is within its own budget and its connection's (64 own pieces, ~4,020 tokens of
  // 4,096): before, all four were answered, and as many more as the client opened.
  const answers = await Promise.all(Array.from({ length: 4 }, (_, i) => upload('127.0.0.1', port, `/tiny/${i}`, 4150, 1)));
  const answered = answers.filter((a) => a === 'HTTP/1.1 200 OK').length;
  assert.ok(answered <= 2, `${answered} of 4 answered: ${JSON.stringify(answers)}`);
  assert.ok((await metric('sentinel_connections_closed_total', { listener: 'http', reason: 'client_body_chunks' })) >= 2);
  // the same from a trusted proxy: exempt (its clients share its address), each connection its own budget as before
  const proxied = await Promise.all(Array.from({ length: 4 }, (_, i) => upload('::1', gw.address('proxied').port, `/proxied/${i}`, 4150, 1)));
  assert.deepEqual(proxied, Array.from({ length: 4 }, () => 'HTTP/1.1 200 OK'));
});

/** `n` masked one-byte text frames in one write (7 bytes of wire each) */
function tinyFrames(n: number): Buffer {
  const one = encodeFrame({ opcode: Opcode.Text, payload: Buffer.from('a'), fin: true, mask: true });
  return Buffer.concat(Array.from({ length: n }, () => one));
}

/** One session of `n` tiny messages: 'echoed' when all came back, else the close code. */
async function session(port: number, host: string, headers: Record<string, string>, n: number): Promise<string> {
  const ws = await WsClient.connect(port, '/ws', headers, { host });
  assert.equal(ws.handshake.status, 101);
  try {
    ws.socket.write(tinyFrames(n));
    for (let i = 0; i < n; i++) {
      const m = await notHung('a message or the close', ws.message(30_000).catch(() => undefined));
      if (!m) return `closed ${(await ws.waitClose(30_000))?.code ?? 'without a code'}`;
    }
    return 'echoed';
  } finally {
    ws.destroy();
  }
}

test('a WebSocket client that reconnects does not get a new burst; behind a trusted proxy each client has its own', async () => {
  const direct = [];
  // three sessions of 900 messages, each within a session's burst (1,000): before, all echoed
  for (let i = 0; i < 3; i++) direct.push(await session(gw.address('http').port, '127.0.0.1', {}, 900));
  assert.equal(direct[0], 'echoed');
  assert.ok(direct.includes('closed 1008'), JSON.stringify(direct));
  assert.ok((await metric('sentinel_websocket_closed_by_gateway_total', { route: 'ws', reason: 'client_message_rate' })) >= 1);
  // through the trusted proxy: 203.0.113.7 is limited as itself; 203.0.113.8 beside it is not
  const proxied = gw.address('proxied').port;
  const seven = [];
  for (let i = 0; i < 3; i++) seven.push(await session(proxied, '::1', { 'X-Forwarded-For': '203.0.113.7' }, 900));
  assert.ok(seven.includes('closed 1008'), JSON.stringify(seven));
  assert.equal(await session(proxied, '::1', { 'X-Forwarded-For': '203.0.113.8' }, 900), 'echoed');
  // the proxy's own address (no X-Forwarded-For) is exempt: its clients share it
  for (let i = 0; i < 3; i++) assert.equal(await session(proxied, '::1', {}, 900), 'echoed');
});
