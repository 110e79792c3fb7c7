// Cross-site WebSocket hijacking (session 15 audit, fixed): a route's websocket-allowed-origins
// refuses, with 403 before the upstream is asked, an upgrade whose Origin is not listed; no
// Origin (a non-browser client) passes, `null` does not; the list follows reloads. A real gateway
// and a WebSocket echo upstream on loopback.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gatewayFrom } from '../../helpers/gateway.ts';
import type { Gateway } from '../../../src/server/gateway.ts';
import { until } from '../../helpers/until.ts';
import { startEchoUpstream, WsClient, type EchoUpstream } from '../websocket/ws-helpers.ts';

const dir = mkdtempSync(join(tmpdir(), 'swso-'));
const accessLog = join(dir, 'access.log');
const auditLog = join(dir, 'audit.log');
let echo: EchoUpstream;
let gw: Gateway;
let port: number;

const config = (origins: string) => `
system { graceful-shutdown-timeout-secs 1 }
listeners { listener "http" { address "127.0.0.1:0" } }
routes {
  route "app" { matches { path-prefix "/app" }; upstream "echo"; websocket #true; ${origins} }
  route "open" { matches { path-prefix "/open" }; upstream "echo"; websocket #true }
}
upstreams { upstream "echo" { target "${echo.address}" } }
observability { logging { level "error"; access-log { file "${accessLog}" }; audit-log { file "${auditLog}" } } }
`;
const listed = 'websocket-allowed-origins "https://app.example.com" "http://localhost:3000"';

before(async () => {
  echo = await startEchoUpstream();
  ({ gw } = await gatewayFrom(config(listed)));
  port = gw.address('http').port;
});

after(async () => {
  await gw?.close();
  await echo?.close();
  rmSync(dir, { recursive: true, force: true });
});

/** Opens a session with these headers (an echo round trip when it opens): status, body, whether the upstream saw it. */
async function open(path: string, headers: Record<string, string>): Promise<{ status: number; body: string; reached: boolean }> {
  const before = echo.upgrades.length;
  const c = await WsClient.connect(port, path, headers);
  try {
    if (c.handshake.status === 101) {
      c.text('hi');
      assert.equal((await c.message()).data.toString(), 'hi');
    }
    return { status: c.handshake.status, body: c.handshake.body, reached: echo.upgrades.length > before };
  } finally {
    c.destroy();
  }
}

test('listed origins (any case, default port spelled out) open; the upstream sees the Origin', async () => {
  for (const origin of ['https://app.example.com', 'HTTPS://App.Example.com', 'https://app.example.com:443', 'http://localhost:3000']) {
    const r = await open('/app/ok', { Origin: origin });
    assert.equal(r.status, 101, origin);
    assert.equal(echo.upgrades.at(-1)!.origin, origin);
  }
});

test('no Origin (a non-browser client) opens', async () => {
  assert.equal((await open('/app/cli', {})).status, 101);
});

test('a foreign origin, null, a trailing slash, another scheme or port, two Origin headers: 403, the upstream never asked', async () => {
  const metric = async () => Number(/sentinel_blocked_requests_total\{reason="websocket_origin_not_allowed"\} (\d+)/.exec(await gw.metrics.render())?.[1] ?? 0);
  const start = await metric();
  const refused: Record<string, string>[] = [
    { Origin: 'https://evil.example' },
    { Origin: 'null' },
    { Origin: 'https://app.example.com/' },
    { Origin: 'http://app.example.com' },
    { Origin: 'http://localhost:3001' },
    { Origin: 'https://app.example.com.evil.example' },
    { Origin: 'https://app.example.com', origin: 'https://evil.example' },
  ];
  for (const headers of refused) {
    const r = await open('/app/x', headers);
    assert.equal(r.status, 403, JSON.stringify(headers));
    assert.equal(r.body, 'WebSocket Origin not allowed for this route');
    assert.equal(r.reached, false, 'refused before the upstream is asked');
  }
  assert.equal((await metric()) - start, refused.length);
});

test('a route without the key leaves the Origin to the upstream (backward-compatible)', async () => {
  assert.equal((await open('/open/x', { Origin: 'https://evil.example' })).status, 101);
});

test('reload: the list follows the config; a bad origin is refused and the old list kept', async () => {
  try {
    await gw.reload(config('websocket-allowed-origins "https://evil.example"'));
    assert.equal((await open('/app/r', { Origin: 'https://evil.example' })).status, 101);
    assert.equal((await open('/app/r', { Origin: 'https://app.example.com' })).status, 403);
    await assert.rejects(gw.reload(config('websocket-allowed-origins "https://app.example.com/"')), /websocket-allowed-origins: "https:\/\/app\.example\.com\/" is not an origin/);
    assert.equal((await open('/app/r', { Origin: 'https://evil.example' })).status, 101, 'the failed reload changed nothing');
    await gw.reload(config(''));
    assert.equal((await open('/app/r', { Origin: 'https://app.example.com.evil.example' })).status, 101, 'key removed: unchecked');
  } finally {
    await gw.reload(config(listed));
  }
  assert.equal((await open('/app/r', { Origin: 'https://evil.example' })).status, 403);
});

test('refusals are blocked audit events and 403 access log entries', async () => {
  await gw.close(); // flushes both files
  type Entry = Record<string, unknown>;
  const read = (file: string): Entry[] =>
    readFileSync(file, 'utf8')
      .split('\n')
      .filter((l) => l.endsWith('}'))
      .map((l) => JSON.parse(l) as Entry);
  let blocked: Entry[] = [];
  await until(
    () => `9 blocked events, have ${blocked.length}`,
    () => (blocked = read(auditLog).filter((e) => e.event_type === 'blocked' && e.reason === 'websocket_origin_not_allowed')).length >= 9,
  );
  assert.equal(blocked.length, 9, '7 refused + 1 after a reload + 1 after restoring the list');
  assert.equal(blocked[0]!.status_code, 403);
  assert.equal(blocked[0]!.route_id, 'app');
  const denied = read(accessLog).filter((e) => e.status === 403 && e.route_id === 'app');
  assert.equal(denied.length, 9);
});
