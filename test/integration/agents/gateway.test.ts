// End to end through the real gateway (src/server/gateway.ts): KDL config with agents, filters,
// waf body inspection and route failure modes; real agent processes; reload reuse of agent
// connections.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { startGateway, type Gateway } from '../../../src/server/gateway.ts';
import { startUpstream, type TestUpstream } from '../../helpers/upstream.ts';
import { eventually, send, sha256, spawnAgent, tempDir, type AgentProcess } from './harness.ts';
import { expectContinueExchange } from '../../helpers/raw-http.ts';
import { reservedCorrelationIds } from '../../../plugins/agents/correlation.ts';

const tmp = tempDir();
const sock = (n: string) => join(tmp.dir, `${n}.sock`);
let echo: AgentProcess;
let deny: AgentProcess;
let scripted: AgentProcess;
let up: TestUpstream;
let gw: Gateway;
let port: number;
let currentText = '';

const config = (denyConfig: string) => `
system { graceful-shutdown-timeout-secs 1 }
listeners { listener "http" { address "127.0.0.1:0" } }
agents {
  agent "echo" { unix-socket "${sock('echo')}"; events "request_headers" "response_headers"; timeout-ms 2000 }
  agent "deny" { unix-socket path="${sock('deny')}"; timeout-ms 2000; config { ${denyConfig} } }
  agent "body" { unix-socket "${sock('scripted')}"; events "request_headers" "request_body"; timeout-ms 2000 }
  agent "missing" { unix-socket "${sock('missing')}"; timeout-ms 200; pool { reconnect-interval-ms 100 } }
}
filters {
  filter "echo" { type "agent"; agent "echo" }
  filter "deny" { type "agent"; agent "deny"; failure-mode "closed" }
  filter "body" { type "agent"; agent "body" }
  filter "missing" { type "agent"; agent "missing" }
}
waf { body-inspection { decompress #true; max-inspection-bytes 65536 } }
routes {
  route "body" { priority "high"; matches { path-prefix "/body" }; upstream "backend"; filters "body" }
  route "closed" { priority "high"; matches { path-prefix "/missing-closed" }; upstream "backend"; filters "missing" }
  route "open" { priority "high"; matches { path-prefix "/missing-open" }; upstream "backend"; filters "missing"; policies { failure-mode "open" } }
  route "main" { matches { path-prefix "/" }; upstream "backend"; filters "echo" "deny" }
}
upstreams { upstream "backend" { target "127.0.0.1:${up.port}" } }
`;

async function connectAttempts(agent: string): Promise<number> {
  const m = gw.metrics.registry.getSingleMetric('sentinel_agent_connect_attempts_total');
  const values = m ? (await m.get()).values : [];
  return values.find((v) => v.labels.agent === agent && v.labels.result === 'ok')?.value ?? 0;
}

before(async () => {
  [echo, deny, scripted] = await Promise.all([
    spawnAgent('agents/echo/main.ts', ['--socket', sock('echo')]),
    spawnAgent('agents/denylist/main.ts', ['--socket', sock('deny')]),
    spawnAgent('test/integration/agents/fixtures/scripted-agent.ts', ['--socket', sock('scripted'), '--name', 'body']),
  ]);
  up = await startUpstream();
  currentText = config('paths "/admin"');
  gw = await startGateway({ configText: currentText, logLevel: 'silent' });
  port = gw.address('http').port;
});

after(async () => {
  await gw?.close();
  await up?.close();
  await Promise.all([echo, deny, scripted].map((a) => a?.stop()));
  tmp.cleanup();
});

test('allow: echo headers upstream and downstream; parallel chain with the denylist', async () => {
  const r = await send(port, '/hello', { headers: { 'x-request-id': 'gw-1' } });
  assert.equal(r.status, 200);
  const hit = up.seen.at(-1)!;
  assert.equal(hit.headers['x-echo-agent'], 'echo');
  assert.equal(hit.headers['x-echo-path'], '/hello');
  assert.equal(hit.headers['x-echo-correlation-id'], 'gw-1');
  assert.equal(r.headers['x-echo-response-status'], '200');
});

test('block from the agent config pushed by Configure', async () => {
  const seen = up.seen.length;
  const r = await send(port, '/admin/users');
  assert.equal(r.status, 403);
  assert.equal(r.body.toString(), 'Forbidden');
  assert.equal(r.headers['x-denylist-rule'], 'path');
  assert.equal(up.seen.length, seen);
  const blocked = (await gw.metrics.registry.getSingleMetric('sentinel_blocked_requests_total')!.get()).values;
  assert.ok(blocked.some((v) => v.labels.reason === 'agent_blocked' && v.value >= 1));
});

test('agents see the normalised path: the denylist holds for every spelling of /admin (issue #17 item 1)', async () => {
  const seen = up.seen.length;
  for (const path of ['/%61dmin/users', '//admin/users', '/x/../admin/users', '/%2e/admin']) {
    const r = await send(port, path);
    assert.equal(r.status, 403, path);
    assert.equal(r.headers['x-denylist-rule'], 'path', path);
  }
  assert.equal(up.seen.length, seen);
  const r = await send(port, '/x/..//hel%6Co?q=%2e');
  assert.equal(r.status, 200);
  assert.equal(up.seen.at(-1)!.headers['x-echo-path'], '/hello');
  assert.equal(up.seen.at(-1)!.url, '/hello?q=%2e');
});

test('gzip JSON body inspected decoded and replayed byte-for-byte', async () => {
  const plain = Buffer.from(JSON.stringify({ a: 'b'.repeat(3000) }));
  const gz = gzipSync(plain);
  const r = await send(port, '/body/x', { headers: { 'content-type': 'application/json', 'content-encoding': 'gzip' }, body: gz });
  assert.equal(r.status, 200);
  const hit = up.seen.at(-1)!;
  assert.equal(hit.headers['x-agent-body-sha256'], sha256(plain));
  assert.equal(sha256(hit.body), sha256(gz));
  const bomb = await send(port, '/body/bomb', { headers: { 'content-type': 'application/json', 'content-encoding': 'gzip' }, body: gzipSync(Buffer.alloc(16 * 1024 * 1024)) });
  assert.equal(bomb.status, 413);
});

test('an unreachable agent: 503 on a fail-closed route, forwarded on a route with policies failure-mode open', async () => {
  const closed = await send(port, '/missing-closed');
  assert.equal(closed.status, 503);
  const open = await send(port, '/missing-open');
  assert.equal(open.status, 200);
});

test('reload: an unchanged agent keeps its connections; a changed config block gets a new client', async () => {
  const before = await connectAttempts('echo');
  const denyBefore = await connectAttempts('deny');
  await gw.reload(currentText);
  assert.equal((await send(port, '/x')).status, 200);
  assert.equal(await connectAttempts('echo'), before, 'echo not reconnected');
  currentText = config('paths "/private"');
  await gw.reload(currentText);
  assert.equal((await send(port, '/admin/users')).status, 200, 'new rules apply');
  assert.equal((await send(port, '/private/x')).status, 403);
  assert.ok((await connectAttempts('deny')) > denyBefore, 'deny reconnected with its new config');
  assert.equal(await connectAttempts('echo'), before, 'echo still not reconnected');
});

test('finished requests give their correlation ids back (the gateway does not abort them)', async () => {
  const before = reservedCorrelationIds();
  for (let i = 0; i < 5; i++) {
    const r = await send(port, '/hello', { headers: { 'x-request-id': `done-${i}` } });
    assert.equal(r.status, 200);
  }
  // request_complete calls hold their id until the agent answers; then nothing is left.
  await eventually(() => reservedCorrelationIds() === 0, `correlation ids released (were ${before} before, ${reservedCorrelationIds()} now)`);
});

test('Expect: 100-continue: a request_headers agent (the denylist, now on /private) refuses with its own status and no 100; the body is never sent', async () => {
  const before = up.seen.length;
  const r = await expectContinueExchange(port, 'POST /private/upload HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 5\r\nConnection: close\r\n\r\n', 'hello');
  assert.deepEqual(r.statuses, [403], r.text);
  assert.equal(r.bodySent, false);
  assert.equal(up.seen.length, before);
});

test('Expect: 100-continue with a body-inspecting agent: 100 once the body is wanted, the agent and the upstream see it', async () => {
  const body = JSON.stringify({ expect: 'continue' });
  const r = await expectContinueExchange(port, `POST /body/expect HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n`, body);
  assert.deepEqual(r.statuses, [100, 200], r.text);
  const hit = up.seen.at(-1)!;
  assert.equal(hit.url, '/body/expect');
  assert.equal(hit.body.toString(), body);
  assert.equal(hit.headers['x-agent-body-sha256'], sha256(Buffer.from(body)));
  assert.equal(hit.headers.expect, undefined);
});

test('closing the gateway closes agent connections', async () => {
  const g = gw;
  await g.close();
  await eventually(async () => {
    const values = (await g.metrics.registry.getSingleMetric('sentinel_agent_connections')!.get()).values;
    return values.every((v) => v.value === 0);
  }, 'agent connections closed');
});
