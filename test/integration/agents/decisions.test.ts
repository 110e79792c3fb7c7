// Real agent processes (echo, denylist, scripted) over real Unix sockets, driven through the
// agent filters: allow, block, redirect, header operations, chains, config push, audit.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { reservedCorrelationIds } from '../../../plugins/agents/correlation.ts';
import type { AgentFilter } from '../../../plugins/agents/filter.ts';
import { send, spawnAgent, startPipeline, startUpstream, tempDir, type AgentProcess, type Pipeline } from './harness.ts';

const tmp = tempDir();
const sock = (n: string) => join(tmp.dir, `${n}.sock`);
let agents: AgentProcess[] = [];
let upstream: Awaited<ReturnType<typeof startUpstream>>;
let gw: Pipeline;

before(async () => {
  agents = await Promise.all([
    spawnAgent('agents/echo/main.ts', ['--socket', sock('echo')]),
    spawnAgent('agents/denylist/main.ts', ['--socket', sock('deny'), '--path', '/admin', '--header', 'x-evil=1']),
    spawnAgent('test/integration/agents/fixtures/scripted-agent.ts', ['--socket', sock('scripted'), '--name', 'scripted']),
    // starts with no rules: its rules come from the config {} block (Configure event)
    spawnAgent('agents/denylist/main.ts', ['--socket', sock('deny-conf')]),
  ]);
  upstream = await startUpstream();
  gw = await startPipeline({
    upstreamPort: upstream.port,
    agents: [
      { id: 'echo', 'unix-socket': { path: sock('echo') }, events: ['request_headers', 'response_headers'] },
      { id: 'deny', 'unix-socket': { path: sock('deny') } },
      { id: 'scripted', 'unix-socket': { path: sock('scripted') } },
      { id: 'deny-conf', 'unix-socket': { path: sock('deny-conf') }, config: { paths: ['/secret'], status: 451, message: 'Unavailable For Legal Reasons' } },
    ],
    filters: { echo: { agent: 'echo' }, echo2: { agent: 'echo', 'failure-mode': 'closed' }, deny: { agent: 'deny' }, scripted: { agent: 'scripted' }, 'deny-conf': { agent: 'deny-conf' } },
    routes: [
      { id: 'chain', prefix: '/chain', filters: ['echo', 'deny'] },
      { id: 'twice', prefix: '/twice', filters: ['echo', 'echo2', 'echo'] },
      { id: 'scripted', prefix: '/s/', filters: ['scripted'] },
      { id: 'conf', prefix: '/secret', filters: ['deny-conf'] },
      { id: 'conf-open', prefix: '/public', filters: ['deny-conf'] },
      { id: 'echo', prefix: '/', filters: ['echo'] },
    ],
  });
});

after(async () => {
  await gw?.close();
  await upstream?.close();
  await Promise.all(agents.map((a) => a.stop()));
  tmp.cleanup();
});

test('echo agent: request headers reach the upstream, response headers reach the client', async () => {
  const r = await send(gw.port, '/hello?x=1', { headers: { 'x-request-id': 'req-echo-1' } });
  assert.equal(r.status, 200);
  const hit = upstream.hits.at(-1)!;
  assert.equal(hit.headers['x-echo-agent'], 'echo');
  assert.equal(hit.headers['x-echo-method'], 'GET');
  assert.equal(hit.headers['x-echo-path'], '/hello');
  assert.equal(hit.headers['x-echo-correlation-id'], 'req-echo-1');
  assert.match(String(hit.headers['x-echo-request-num']), /^\d+$/);
  assert.equal(r.headers['x-echo-response-status'], '200');
  assert.equal(r.headers['x-echo-response-correlation-id'], 'req-echo-1');
});

test('chain: the first block wins over allowing agents; allows accumulate header ops', async () => {
  const blocked = await send(gw.port, '/chain/admin');
  // path /chain/admin is not under /admin: denylist allows, echo headers accumulate
  assert.equal(blocked.status, 200);
  const hitsBefore = upstream.hits.length;
  const byHeader = await send(gw.port, '/chain/x', { headers: { 'X-Evil': '1' } });
  assert.equal(byHeader.status, 403);
  assert.equal(byHeader.body.toString(), 'Forbidden');
  assert.equal(byHeader.headers['content-type'], 'text/plain; charset=utf-8');
  assert.equal(byHeader.headers['x-denylist-rule'], 'header', 'block headers are applied');
  assert.equal(upstream.hits.length, hitsBefore, 'a blocked request never reaches the upstream');
  const ok = await send(gw.port, '/chain/ok');
  assert.equal(ok.status, 200);
  assert.equal(upstream.hits.at(-1)!.headers['x-echo-agent'], 'echo');
  const blockedAudit = gw.audit.find((e) => e.agent_id === 'deny' && e.action === 'block');
  assert.ok(blockedAudit, 'block decision audited');
  assert.deepEqual(blockedAudit.rule_ids, ['denylist-header']);
});

test('redirect: status and Location, nothing forwarded', async () => {
  const hits = upstream.hits.length;
  const r = await send(gw.port, '/s/redirect');
  assert.equal(r.status, 301);
  assert.equal(r.headers.location, 'https://login.example.test/?next=%2F');
  assert.equal(upstream.hits.length, hits);
});

test('block with status, body and headers from the agent', async () => {
  const r = await send(gw.port, '/s/block-headers');
  assert.equal(r.status, 429);
  assert.equal(r.body.toString(), 'slow down');
  assert.equal(r.headers['retry-after'], '5');
});

test('header operations: set/add/remove on the request, set/remove on the response; framing headers are protected', async () => {
  const r = await send(gw.port, '/s/headers', { headers: { 'X-Multi': 'from-client', 'X-Remove-Me': 'bye' } });
  assert.equal(r.status, 200);
  const hit = upstream.hits.at(-1)!;
  assert.equal(hit.headers['x-set'], 'one');
  assert.equal(hit.headers['x-multi'], 'from-client, from-agent');
  assert.equal(hit.headers['x-remove-me'], undefined);
  assert.equal(hit.headers['content-length'], undefined, 'agent cannot set Content-Length on a GET');
  assert.equal(r.headers['x-resp-set'], 'r');
  assert.equal(r.headers['x-upstream-secret'], undefined);
  assert.ok(gw.audit.some((e) => e.agent_id === 'scripted' && (e.tags as string[] | undefined)?.includes('headers-tag')), 'allow tags audited');
});

test('event metadata: correlation id, client address, route and upstream ids, RFC 3339 timestamp, traceparent', async () => {
  const tp = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
  await send(gw.port, '/s/meta?q=1', { headers: { traceparent: tp, 'x-request-id': 'meta-1' } });
  const scripted = agents[2]!;
  const seen = scripted.lines.filter((l) => l.seen === 'request').at(-1)!;
  const m = seen.metadata as Record<string, unknown>;
  assert.equal(seen.uri, '/s/meta?q=1');
  assert.equal(seen.method, 'GET');
  assert.equal(m.correlation_id, 'meta-1');
  assert.equal(m.request_id, 'meta-1');
  assert.equal(m.client_ip, '127.0.0.1');
  assert.equal(typeof m.client_port, 'number');
  assert.equal(m.route_id, 'scripted');
  assert.equal(m.upstream_id, 'backend');
  assert.equal(m.traceparent, tp);
  assert.equal(m.protocol, 'HTTP/1.1');
  assert.ok(!Number.isNaN(Date.parse(String(m.timestamp))) && /T.*Z$/.test(String(m.timestamp)));
});

test('config {} is pushed with a Configure event and drives the agent', async () => {
  const blocked = await send(gw.port, '/secret/file');
  assert.equal(blocked.status, 451);
  assert.equal(blocked.body.toString(), 'Unavailable For Legal Reasons');
  const allowed = await send(gw.port, '/public/file');
  assert.equal(allowed.status, 200);
});

test('same X-Request-Id on concurrent requests never mixes up decisions', async () => {
  const results = await Promise.all(
    Array.from({ length: 20 }, (_, i) => send(gw.port, i % 2 === 0 ? '/s/block-headers' : '/s/headers', { headers: { 'x-request-id': 'dup' } })),
  );
  results.forEach((r, i) => assert.equal(r.status, i % 2 === 0 ? 429 : 200, `request ${i}`));
});

test('two filters of the same agent on one route: both called (distinct correlation ids), duplicates listed once', async () => {
  const r = await send(gw.port, '/twice', { headers: { 'x-request-id': 'twice-1' } });
  assert.equal(r.status, 200);
  const hit = upstream.hits.at(-1)!;
  // both calls set X-Echo-Correlation-Id; the later one in chain order wins for "set"
  assert.equal(hit.headers['x-echo-correlation-id'], 'twice-1#2');
  assert.equal(r.headers['x-echo-response-correlation-id'], 'twice-1#2');
});

test('a client id shaped like a derived correlation id (`<id>#2`) is not used as one (issue 17 item 15)', async () => {
  await send(gw.port, '/s/meta', { headers: { 'x-request-id': 'twice-1#2' } });
  const seen = agents[2]!.lines.filter((l) => l.seen === 'request').at(-1)!;
  const cid = String((seen.metadata as Record<string, unknown>).correlation_id);
  assert.notEqual(cid, 'twice-1#2');
  assert.doesNotMatch(cid, /#/, 'only the gateway derives ids with #');
});

test('no leaked pending calls or correlation ids', async () => {
  for (const f of gw.filters.values()) {
    for (const [agent, s] of Object.entries((f as AgentFilter).agentStats())) {
      assert.equal(s.pendingReplies, 0, `${agent} pending`);
      assert.equal(s.permitsInUse, 0, `${agent} permits`);
      assert.equal(s.queued, 0, `${agent} queued`);
    }
  }
  assert.equal(reservedCorrelationIds(), 0);
});
