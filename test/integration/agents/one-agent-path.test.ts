// A chain's only agent on request headers takes a shorter path (AgentFilter.oneHeadersCall:
// AgentClient.send with a sink, no fan-out; issue 16 item 3). Each case here runs through that
// path and through the general fan-out (the same agent, its client without `send`, so the filter
// falls back to call() + fanOut) and must give the same answer, upstream headers, audit events and
// metrics; each case also states what that answer is.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import type { AgentBlock } from '../../../plugins/agents/definition.ts';
import type { AgentGeneration } from '../../../plugins/agents/filter.ts';
import { reservedCorrelationIds } from '../../../plugins/agents/correlation.ts';
import { eventually, send, spawnAgent, startPipeline, startUpstream, tempDir, type AgentProcess, type Pipeline, type PipelineRoute } from './harness.ts';

const tmp = tempDir();
const sock = (n: string) => join(tmp.dir, `${n}.sock`);
const PATHS = ['fast', 'general'] as const;
type PathName = (typeof PATHS)[number];

let agents: AgentProcess[] = [];
let upstream: Awaited<ReturnType<typeof startUpstream>>;
let gw: Pipeline;
/** calls through each entry point, by path ("fast send", "general call", ...) */
const used: Record<string, number> = {};

const noBreaker = { 'failure-threshold': 1000 };

before(async () => {
  agents = await Promise.all([
    spawnAgent('test/integration/agents/fixtures/scripted-agent.ts', ['--socket', sock('scripted'), '--name', 'scripted']),
    spawnAgent('test/integration/agents/fixtures/rogue-agent.ts', ['--serve', `slow=${sock('slow')}`, '--serve', `garbage=${sock('garbage')}`, '--delay', '800']),
  ]);
  upstream = await startUpstream();
  const defs: AgentBlock[] = [];
  const filters: Record<string, Record<string, unknown>> = {};
  const routes: PipelineRoute[] = [];
  // Per path, agents of their own (own clients): the scripted agent on headers and bodies, a
  // slow one (times out), a garbage one (protocol error) and one whose socket does not exist.
  for (const p of PATHS) {
    defs.push({ id: `${p}-scripted`, 'unix-socket': { path: sock('scripted') }, events: ['request_headers', 'request_body'], 'circuit-breaker': noBreaker });
    defs.push({ id: `${p}-slow`, 'unix-socket': { path: sock('slow') }, 'timeout-ms': 150, 'circuit-breaker': noBreaker });
    defs.push({ id: `${p}-garbage`, 'unix-socket': { path: sock('garbage') }, 'circuit-breaker': noBreaker, pool: { 'reconnect-interval-ms': 50 } });
    defs.push({ id: `${p}-down`, 'unix-socket': { path: sock(`${p}-down`) }, 'timeout-ms': 300, 'circuit-breaker': noBreaker, pool: { 'connect-timeout-ms': 200 } });
    for (const kind of ['scripted', 'slow', 'garbage', 'down']) {
      for (const mode of ['closed', 'open'] as const) {
        const id = `${p}-${kind}-${mode}`;
        filters[id] = { agent: `${p}-${kind}`, 'failure-mode': mode };
        routes.push({ id, prefix: `/${p}/${kind}/${mode}/`, filters: [id] });
      }
    }
  }
  gw = await startPipeline({ upstreamPort: upstream.port, agents: defs, filters, routes });
  // The general path: the same agents, seen by the filter through a client view without the
  // callback entry point (`call` still reaches the real client).
  const gen = (gw.filters.get('general-scripted-closed') as unknown as { gen: AgentGeneration }).gen;
  const client = gen.manager.client.bind(gen.manager);
  gen.manager.client = (id: string) => {
    const c = client(id);
    const counted = (which: 'send' | 'call') => (...args: unknown[]) => {
      used[`${id.split('-')[0]} ${which}`] = (used[`${id.split('-')[0]} ${which}`] ?? 0) + 1;
      return (c[which] as (...a: unknown[]) => unknown).apply(c, args);
    };
    const fast = id.startsWith('fast-');
    return Object.create(c, { send: { value: fast ? counted('send') : undefined }, call: { value: counted('call') } }) as typeof c;
  };
});

after(async () => {
  await gw?.close();
  await upstream?.close();
  await Promise.all(agents.map((a) => a.stop()));
  tmp.cleanup();
});

/** What one request produced, with the path's own names taken out. */
interface Seen {
  status: number;
  body: string;
  headers: Record<string, unknown>;
  upstream: Record<string, unknown> | undefined;
  audit: unknown[];
  decisions: Record<string, number>;
}

const pick = (h: Record<string, unknown>, names: string[]) => Object.fromEntries(names.filter((n) => h[n] !== undefined).map((n) => [n, h[n]]));

async function decisionCounts(agent: string): Promise<Record<string, number>> {
  const values = (await gw.metrics.registry.getSingleMetric('sentinel_agent_requests_total')!.get()).values;
  return Object.fromEntries(values.filter((v) => v.labels.agent === agent).map((v) => [String(v.labels.decision), v.value]));
}

async function run(p: PathName, kind: string, mode: 'open' | 'closed', tail: string, opts: Parameters<typeof send>[2] = {}): Promise<Seen> {
  const agent = `${p}-${kind}`;
  const before = await decisionCounts(agent);
  const hits = upstream.hits.length;
  const audits = gw.audit.length;
  const r = await send(gw.port, `/${p}/${kind}/${mode}/${tail}`, opts);
  const after = await decisionCounts(agent);
  const hit = upstream.hits.length > hits ? upstream.hits.at(-1)! : undefined;
  const strip = (v: unknown) => JSON.parse(JSON.stringify(v).replaceAll(`${p}-`, 'PATH-').replaceAll(`/${p}/`, '/PATH/')) as unknown;
  return {
    status: r.status,
    body: r.body.toString(),
    headers: pick(r.headers, ['location', 'retry-after', 'content-type', 'x-resp-set', 'x-upstream-secret']),
    upstream: hit ? pick(hit.headers, ['x-agent-scripted', 'x-set', 'x-multi', 'x-remove-me', 'content-length', 'x-agent-body-sha256', 'x-agent-body-chunks', 'x-slow']) : undefined,
    audit: gw.audit.slice(audits).map((e) => {
      const { timestamp: _t, correlation_id: _c, trace_id: _tr, request_id: _r, ...rest } = e;
      return strip(rest);
    }),
    decisions: Object.fromEntries(Object.keys(after).map((k) => [k, after[k]! - (before[k] ?? 0)]).filter(([, n]) => n !== 0)),
  };
}

/** Runs one case on both paths, checks they agree and returns the (common) result. */
async function both(kind: string, mode: 'open' | 'closed', tail: string, opts: Parameters<typeof send>[2] = {}): Promise<Seen> {
  const fast = await run('fast', kind, mode, tail, opts);
  const general = await run('general', kind, mode, tail, opts);
  assert.deepEqual(fast, general, `${kind} ${mode} ${tail}: the single-agent path and the fan-out disagree`);
  return fast;
}

test('plain allow: forwarded with the agent header op', async () => {
  const r = await both('scripted', 'closed', 'x');
  assert.equal(r.status, 200);
  assert.deepEqual(r.upstream, { 'x-agent-scripted': 'seen' });
  assert.deepEqual(r.decisions, { allow: 1 });
  assert.deepEqual(r.audit, []);
});

test('header operations on request and response, protected headers untouched, tags and rule ids audited', async () => {
  const r = await both('scripted', 'closed', 'headers', { headers: { 'x-remove-me': '1', 'x-multi': 'client' } });
  assert.equal(r.status, 200);
  assert.equal(r.upstream!['x-set'], 'one');
  assert.equal(r.upstream!['x-multi'], 'client, from-agent');
  assert.equal(r.upstream!['x-remove-me'], undefined);
  assert.equal(r.upstream!['content-length'], undefined, 'Content-Length set by an agent is ignored');
  assert.equal(r.headers['x-resp-set'], 'r');
  assert.deepEqual(r.decisions, { allow: 1 });
  assert.equal(r.audit.length, 1);
  assert.deepEqual((r.audit[0] as { rule_ids: unknown }).rule_ids, ['R-1']);
});

test('block with status, body and headers; redirect', async () => {
  const b = await both('scripted', 'closed', 'block-headers');
  assert.deepEqual([b.status, b.body, b.headers['retry-after']], [429, 'slow down', '5']);
  assert.equal(b.upstream, undefined, 'nothing forwarded');
  assert.deepEqual(b.decisions, { block: 1 });
  assert.equal(b.audit.length, 1);
  const r = await both('scripted', 'closed', 'redirect');
  assert.deepEqual([r.status, r.headers.location], [301, 'https://login.example.test/?next=%2F']);
  assert.deepEqual(r.decisions, { redirect: 1 });
});

test('request body after the headers call: allowed with what the agent saw, or blocked by the body', async () => {
  const ok = await both('scripted', 'closed', 'b', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"a":1}' });
  assert.equal(ok.status, 200);
  assert.equal(ok.upstream!['x-agent-body-chunks'], '1');
  assert.deepEqual(ok.decisions, { allow: 2 }, 'one decision per event');
  const bad = await both('scripted', 'closed', 'b', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"attack":1}' });
  assert.equal(bad.status, 403);
  assert.equal(bad.upstream, undefined);
  assert.deepEqual(bad.decisions, { allow: 1, block: 1 });
});

test('timeout: 504 fail-closed, forwarded fail-open', async () => {
  const closed = await both('slow', 'closed', 'x');
  assert.deepEqual([closed.status, closed.body], [504, 'Gateway timeout']);
  assert.deepEqual(closed.decisions, { timeout: 1 });
  assert.equal(closed.audit.length, 1);
  const open = await both('slow', 'open', 'x');
  assert.equal(open.status, 200);
  assert.deepEqual(open.upstream, {});
  assert.deepEqual(open.decisions, { timeout: 1, skipped: 1 });
});

test('protocol garbage and an agent that is not there: 503 fail-closed, forwarded fail-open', async () => {
  for (const kind of ['garbage', 'down']) {
    const closed = await both(kind, 'closed', 'x');
    assert.deepEqual([closed.status, closed.body], [503, 'Agent unavailable'], kind);
    assert.deepEqual(closed.decisions, { error: 1 }, kind);
    const open = await both(kind, 'open', 'x');
    assert.equal(open.status, 200, kind);
    assert.deepEqual(open.decisions, { error: 1, skipped: 1 }, kind);
  }
});

test('a client that leaves before the reply: the agent gets Cancel (reason 1), nothing is forwarded or left reserved', async () => {
  const rogue = agents[1]!;
  const base = reservedCorrelationIds();
  const { request } = await import('node:http');
  for (const p of PATHS) {
    const hits = upstream.hits.length;
    const cid = `${p}-leaves`;
    const req = request({ host: '127.0.0.1', port: gw.port, path: `/${p}/slow/open/leave`, headers: { 'x-request-id': cid }, agent: false });
    req.on('error', () => undefined);
    req.end();
    await eventually(() => rogue.lines.some((l) => l.agent === 'slow' && l.seen === 'request' && l.cid === cid), `${p}: agent saw the request`);
    req.destroy();
    await eventually(() => rogue.lines.some((l) => l.agent === 'slow' && l.seen === 'cancel' && l.cid === cid && l.reason === 1), `${p}: cancel with reason client disconnect`);
    // the slow agent's late reply (800 ms) must not revive the request
    await new Promise((r) => setTimeout(r, 900));
    assert.equal(upstream.hits.length, hits, `${p}: a request whose client left is not forwarded`);
  }
  await eventually(() => reservedCorrelationIds() === base, 'no correlation id left reserved');
});

test('each path took its own entry point: send for the single agent, call (fan-out) for the general one', () => {
  assert.ok((used['fast send'] ?? 0) > 10, JSON.stringify(used));
  assert.ok((used['general call'] ?? 0) > 10, JSON.stringify(used));
  assert.equal(used['general send'], undefined);
  // the fast side used call() only for what the fan-out still carries (request body events)
  assert.ok((used['fast call'] ?? 0) < (used['general call'] ?? 0), JSON.stringify(used));
});
