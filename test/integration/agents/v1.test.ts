// Protocol v1 (`protocol-version 1` / "v1"): a hand-written legacy agent on a real socket, through
// the real gateway: allow, block, header ops, Configure once per connection, garbage and a wrong
// reply version as agent errors, and one request at a time per connection.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { startGateway, type Gateway } from '../../../src/server/gateway.ts';
import { startUpstream, type TestUpstream } from '../../helpers/upstream.ts';
import { eventually, send, spawnAgent, tempDir, type AgentProcess } from './harness.ts';

const tmp = tempDir();
const sock = join(tmp.dir, 'v1.sock');
let agent: AgentProcess;
let sdkAgent: AgentProcess;
let up: TestUpstream;
let gw: Gateway;
let port: number;

before(async () => {
  agent = await spawnAgent('test/integration/agents/fixtures/v1-agent.ts', ['--socket', sock]);
  sdkAgent = await spawnAgent('test/integration/agents/fixtures/response-agent.ts', ['--socket', join(tmp.dir, 'v1sdk.sock'), '--v1']);
  up = await startUpstream();
  gw = await startGateway({
    logLevel: 'silent',
    configText: `
system { graceful-shutdown-timeout-secs 1 }
listeners { listener "http" { address "127.0.0.1:0" } }
agents {
  agent "v1" { unix-socket "${sock}"; protocol-version 1; timeout-ms 2000; pool { connections-per-agent 2; reconnect-interval-ms 100 }; config { mode "strict" } }
  agent "v1sdk" { unix-socket "${join(tmp.dir, 'v1sdk.sock')}"; protocol-version 1; events "request_headers" "response_headers" "response_body"; timeout-ms 3000 }
  agent "v1s" { unix-socket "${sock}"; protocol-version "v1"; timeout-ms 5000; pool { connections-per-agent 1 } }
}
filters {
  filter "v1" { type "agent"; agent "v1"; failure-mode "closed" }
  filter "v1-open" { type "agent"; agent "v1"; failure-mode "open" }
  filter "v1s" { type "agent"; agent "v1s"; failure-mode "closed" }
  filter "v1sdk" { type "agent"; agent "v1sdk"; failure-mode "closed" }
}
routes {
  route "sdk" { matches { path-prefix "/sdk/" }; upstream "backend"; filters "v1sdk" }
  route "serial" { matches { path-prefix "/s/" }; upstream "backend"; filters "v1s" }
  route "open" { matches { path-prefix "/o/" }; upstream "backend"; filters "v1-open" }
  route "main" { matches { path-prefix "/" }; upstream "backend"; filters "v1" }
}
upstreams { upstream "backend" { target "127.0.0.1:${up.port}" } }
`,
  });
  port = gw.address('http').port;
});

after(async () => {
  await gw?.close();
  await up?.close();
  await agent?.stop();
  await sdkAgent?.stop();
  tmp.cleanup();
});

type Line = { conn: number; open: number; version: number; event_type: string; payload: Record<string, unknown> };
const lines = () => agent.lines as unknown as Line[];

test('allow: v1 envelope on the wire, header op applied upstream', async () => {
  const mark = lines().length;
  const r = await send(port, '/a/hello?x=1', { headers: { 'x-request-id': 'v1-allow', 'X-Mixed-Case': 'v' } });
  assert.equal(r.status, 200);
  assert.equal(up.seen.at(-1)!.headers['x-v1-agent'], 'seen');
  const ev = lines()
    .slice(mark)
    .find((l) => l.event_type === 'request_headers')!;
  assert.equal(ev.version, 1);
  assert.equal(ev.payload.uri, '/a/hello?x=1');
  assert.equal(ev.payload.method, 'GET');
  assert.equal((ev.payload.metadata as Record<string, unknown>).correlation_id, 'v1-allow');
  assert.equal(ev.payload.correlation_id, undefined, 'v1 RequestHeaders has no top-level correlation_id');
  assert.deepEqual((ev.payload.headers as Record<string, string[]>)['x-mixed-case'], ['v']);
});

test('Configure is sent once per connection, before any event, as {agent_id, config}', async () => {
  const configures = lines().filter((l) => l.event_type === 'configure');
  const conns = new Set(lines().map((l) => l.conn));
  assert.ok(configures.length >= 1);
  // Only the "v1" agent has a config block; each of its connections got exactly one Configure.
  const perConn = new Map<number, number>();
  for (const c of configures) perConn.set(c.conn, (perConn.get(c.conn) ?? 0) + 1);
  assert.ok([...perConn.values()].every((n) => n === 1));
  assert.deepEqual(configures[0]!.payload, { agent_id: 'v1', config: { mode: 'strict' } });
  for (const conn of perConn.keys()) {
    const first = lines().find((l) => l.conn === conn)!;
    assert.equal(first.event_type, 'configure', `connection ${conn} of ${conns.size} started with Configure`);
  }
});

test('block: status and body from the v1 agent', async () => {
  const seen = up.seen.length;
  const r = await send(port, '/a/block');
  assert.equal(r.status, 403);
  assert.equal(r.body.toString(), 'v1 says no');
  assert.equal(up.seen.length, seen);
});

test('request and response header operations', async () => {
  const r = await send(port, '/a/headers', { headers: { 'x-remove-me': '1' } });
  assert.equal(r.status, 200);
  const hit = up.seen.at(-1)!;
  assert.equal(hit.headers['x-v1-set'], 'yes');
  assert.equal(hit.headers['x-remove-me'], undefined);
  assert.equal(r.headers['x-v1-resp'], 'added');
});

test('garbage and a wrong reply version are agent errors (503 closed, forwarded open); the agent is used again afterwards', async () => {
  const garbage = await send(port, '/a/garbage');
  assert.equal(garbage.status, 503);
  assert.equal(garbage.body.toString(), 'Agent unavailable');
  const wrong = await send(port, '/a/badversion');
  assert.equal(wrong.status, 503);
  const open = await send(port, '/o/garbage');
  assert.equal(open.status, 200);
  await eventually(async () => (await send(port, '/a/fine')).status === 200, 'v1 agent usable after the dropped connection');
  const issues = (await gw.metrics.registry.getSingleMetric('sentinel_agent_protocol_errors_total')!.get()).values;
  assert.ok(issues.some((v) => v.labels.agent === 'v1' && v.labels.kind === 'bad_json' && v.value >= 1));
  assert.ok(issues.some((v) => v.labels.agent === 'v1' && v.labels.kind === 'bad_response' && v.value >= 1));
});

test('one request at a time per connection: concurrent calls queue on the single v1 connection', async () => {
  const mark = lines().length;
  const rs = await Promise.all(Array.from({ length: 4 }, (_, i) => send(port, `/s/${i}/slow`)));
  for (const r of rs) assert.equal(r.status, 200);
  const hits = up.seen.slice(-4);
  assert.ok(hits.every((h) => h.headers['x-v1-slow'] === 'done'));
  const evs = lines()
    .slice(mark)
    .filter((l) => l.event_type === 'request_headers');
  assert.equal(evs.length, 4);
  assert.equal(new Set(evs.map((e) => e.conn)).size, 1, 'one connection');
  assert.ok(
    evs.every((e) => e.open === 1),
    `requests open at once on the connection: ${evs.map((e) => e.open).join(',')}`,
  );
});

test('the SDK speaks v1 too (protocol: 1): response headers and body events, block and mutation', async () => {
  const ok = await send(port, '/sdk/fine');
  assert.equal(ok.status, 200);
  assert.equal(ok.headers['x-agent-status-seen'], '200');
  assert.equal(ok.headers['x-agent-saw-bytes'], String(ok.body.length));
  const blocked = await send(port, '/sdk/forbidden');
  assert.equal(blocked.status, 451);
  assert.equal(blocked.body.toString(), 'response blocked');
  const mutated = await send(port, '/sdk/mutate-me');
  assert.equal(mutated.status, 200);
  assert.match(mutated.body.toString(), /"url":"\/sdk\/MUTATED"/);
  const events = sdkAgent.lines.filter((l) => l.seen === 'response_body');
  assert.ok(events.length >= 3);
  assert.ok(events.every((e) => e.chunk_index === 0 && e.is_last === true));
});
