// OpenTelemetry tracing end to end (docs/tracing.md): a real gateway exporting OTLP/HTTP to a
// local receiver started here, an upstream that records the headers it gets, and a real agent
// process that reports the metadata it was sent.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { startGateway, type Gateway } from '../../../src/server/gateway.ts';
import { sharedExportThread } from '../../../plugins/tracing/export-thread.ts';
import { startUpstream, closedPort, closeServer, type TestUpstream } from '../../helpers/upstream.ts';
import { request } from '../../helpers/http.ts';
import { eventually, spawnAgent, tempDir, type AgentProcess } from '../agents/harness.ts';
import { startCollector, type Collector, type ReceivedSpan } from './collector.ts';
import { HANG_MS } from '../../helpers/until.ts';

const SERVER = 2;
const CLIENT = 3;
const INTERNAL = 1;
const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-(0[01])$/;
const TINYFLAKE = /^[1-9A-HJ-NP-Za-km-z]{11}$/;

const tmp = tempDir();

function tracingBlock(endpoint: string, rate: number, extra = '', backendExtra = ''): string {
  return `observability {
  tracing { backend "otlp" { endpoint "${endpoint}"; ${backendExtra} }; sampling-rate ${rate}; service-name "edge-test"; scheduled-delay "50ms"; ${extra} }
  logging { access-log { enabled #true; file "${join(tmp.dir, `access-${rate}-${Math.random().toString(36).slice(2)}.log`)}" } }
}`;
}

async function counter(gw: Gateway, name: string, labels: Record<string, string> = {}): Promise<number> {
  const m = gw.metrics.registry.getSingleMetric(name);
  if (!m) return 0;
  const values = (await m.get()).values;
  return values.filter((v) => Object.entries(labels).every(([k, val]) => v.labels[k] === val)).reduce((n, v) => n + v.value, 0);
}

function spansOf(c: Collector, traceId: string): ReceivedSpan[] {
  return c.spans.filter((s) => s.traceId === traceId);
}

/** The trace id of the (one) request to `path`, from its server span once the collector has it. */
async function traceOfPath(c: Collector, path: string): Promise<string> {
  const find = () => c.spans.find((s) => s.kind === SERVER && s.attributes['url.path'] === path);
  await eventually(() => find() !== undefined, `the server span of ${path}`);
  return find()!.traceId;
}

/** Every access log entry written so far by the gateways whose log file names start with `prefix`. */
function accessEntries(prefix: string): Record<string, unknown>[] {
  return readdirSync(tmp.dir)
    .filter((n) => n.startsWith(prefix))
    .flatMap((n) => readFileSync(join(tmp.dir, n), 'utf8').trim().split('\n').filter(Boolean))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

/** The access log entry of the request to `path` (rate-1 gateways' files), once `gw` has written it. */
async function loggedEntry(gw: Gateway, path: string): Promise<Record<string, unknown>> {
  let entry: Record<string, unknown> | undefined;
  await eventually(() => {
    (gw as unknown as { accessLog?: { flush?(): void } }).accessLog?.flush?.();
    entry = accessEntries('access-1-').find((e) => e.path === path);
    return entry !== undefined;
  }, `the access log line of ${path}`);
  return entry!;
}

describe('sampled requests (rate 1): structure, attributes, propagation', () => {
  let collector: Collector;
  let up: TestUpstream;
  const flaky: http.Server[] = [];
  const flakyPorts: number[] = [];
  let flakyCalls = 0;
  let agent: AgentProcess;
  let gw: Gateway;
  let base: string;
  const sock = join(tmp.dir, 'agent.sock');

  before(async () => {
    collector = await startCollector();
    up = await startUpstream();
    // fails every odd call with 503, answers the even ones: a retry is visible as a second attempt
    // two targets sharing the count: a retry goes to the other target (attempted ones are excluded)
    for (let i = 0; i < 2; i++) {
      const server = http.createServer((req, res) => {
        req.resume();
        flakyCalls++;
        res.writeHead(flakyCalls % 2 === 1 ? 503 : 200, { 'content-length': '2' }).end('ok');
      });
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      flaky.push(server);
      flakyPorts.push((server.address() as { port: number }).port);
    }
    agent = await spawnAgent('test/integration/agents/fixtures/scripted-agent.ts', ['--socket', sock, '--name', 'tracer']);
    gw = await startGateway({
      logLevel: 'silent',
      configText: `
system { graceful-shutdown-timeout-secs 1 }
listeners { listener "http" { address "127.0.0.1:0" } }
agents { agent "tracer" { unix-socket "${sock}"; events "request_headers"; timeout-ms 5000 } }
filters {
  filter "rl" { type "rate-limit"; max-rps 1000; burst 1000 }
  filter "inspect" { type "agent"; agent "tracer" }
  filter "deny" { type "rate-limit"; max-rps 0.001; burst 1 }
}
routes {
  route "api" { matches { path-prefix "/api" }; upstream "backend"; filters "rl" "inspect" }
  route "flaky" { matches { path "/flaky" }; upstream "flaky" }
  route "limited" { matches { path-prefix "/limited" }; upstream "backend"; filters "deny" }
}
upstreams {
  upstream "backend" { target "${up.address}" }
  upstream "flaky" {
    target "127.0.0.1:${flakyPorts[0]}"
    target "127.0.0.1:${flakyPorts[1]}"
    retry-policy { max-attempts 2; retryable-status-codes 503; backoff-base-ms 1; backoff-max-ms 2 }
  }
}
${tracingBlock(collector.endpoint, 1)}
`,
    });
    base = `http://127.0.0.1:${gw.address('http').port}`;
  });

  after(async () => {
    await gw?.close();
    await up?.close();
    await Promise.all(flaky.map((f) => closeServer(f)));
    await agent?.stop();
    await collector?.close();
  });

  test('a request without a parent starts a trace: server span, route match, filters, upstream attempt', async () => {
    const r = await request(`${base}/api/items?x=1`, { headers: { 'user-agent': 'trace-test/1' } });
    assert.equal(r.status, 200);
    const seen = up.seen.at(-1)!;
    const tp = TRACEPARENT.exec(String(seen.headers.traceparent));
    assert.ok(tp, `upstream got a W3C traceparent: ${String(seen.headers.traceparent)}`);
    const [, traceId, attemptSpanId, flags] = tp;
    assert.equal(flags, '01', 'sampled');
    // no client id: the correlation id is a TinyFlake as with tracing off, not the trace id
    // (reference §3.4; the trace id travels in traceparent), the same one upstream
    const correlation = String(r.headers['x-correlation-id']);
    assert.match(correlation, TINYFLAKE);
    assert.deepEqual([seen.headers['x-correlation-id'], seen.headers['x-trace-id']], [correlation, correlation]);
    await eventually(() => spansOf(collector, traceId!).length >= 5, 'the five spans of the request reach the collector');
    const spans = spansOf(collector, traceId!);
    const server = spans.find((s) => s.kind === SERVER)!;
    assert.ok(server, 'a server span');
    assert.equal(server.parentSpanId, '', 'the server span is the root');
    assert.equal(server.name, 'GET /api/*');
    assert.equal(server.resource['service.name'], 'edge-test');
    assert.equal(server.scope, 'sentinel');
    assert.deepEqual(
      {
        method: server.attributes['http.request.method'],
        path: server.attributes['url.path'],
        route: server.attributes['http.route'],
        routeId: server.attributes['sentinel.route.id'],
        status: server.attributes['http.response.status_code'],
        host: server.attributes['server.address'],
        peer: server.attributes['network.peer.address'],
        scheme: server.attributes['url.scheme'],
        ua: server.attributes['user_agent.original'],
        version: server.attributes['network.protocol.version'],
      },
      { method: 'GET', path: '/api/items', route: '/api/*', routeId: 'api', status: 200, host: '127.0.0.1', peer: '127.0.0.1', scheme: 'http', ua: 'trace-test/1', version: '1.1' },
    );
    assert.equal(server.statusCode, 0, 'a 200 is not an error');
    const children = spans.filter((s) => s !== server);
    for (const c of children) {
      assert.equal(c.parentSpanId, server.spanId, `${c.name} is a child of the server span`);
      assert.ok(c.startNs >= server.startNs && c.endNs <= server.endNs, `${c.name} lies within the server span`);
    }
    const names = children.map((s) => s.name).sort();
    assert.deepEqual(names, ['GET', 'agent inspect', 'rate-limit rl', 'route match'], 'span names');
    const byName = (n: string) => children.find((s) => s.name === n)!;
    assert.equal(byName('route match').kind, INTERNAL);
    assert.equal(byName('route match').attributes['sentinel.route.id'], 'api');
    assert.equal(byName('rate-limit rl').attributes['sentinel.filter.type'], 'rate-limit');
    assert.equal(byName('agent inspect').attributes['sentinel.filter.id'], 'inspect');
    const attempt = byName('GET');
    assert.equal(attempt.kind, CLIENT);
    assert.equal(attempt.spanId, attemptSpanId, 'the upstream saw the attempt span as its parent');
    assert.equal(attempt.attributes['http.request.method'], 'GET');
    assert.equal(attempt.attributes['server.address'], '127.0.0.1');
    assert.equal(attempt.attributes['server.port'], up.port);
    assert.equal(attempt.attributes['url.full'], `http://127.0.0.1:${up.port}/api/items?x=1`);
    assert.equal(attempt.attributes['http.response.status_code'], 200);
    assert.equal(attempt.attributes['sentinel.upstream.id'], 'backend');
    assert.equal(attempt.attributes['http.request.resend_count'], undefined, 'a first attempt is no resend');
    // the order of the pipeline: route match, then the filters in order, then the attempt
    const order = ['route match', 'rate-limit rl', 'agent inspect', 'GET'].map((n) => byName(n).startNs);
    assert.deepEqual([...order].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)), order);
    // the agent was told the trace context of its filter span
    const agentSaw = agent.lines.filter((l) => l.seen === 'request').map((l) => (l.metadata as { traceparent: string | null }).traceparent);
    assert.ok(agentSaw.includes(`00-${traceId}-${byName('agent inspect').spanId}-01`), `agent metadata.traceparent: ${agentSaw.join(', ')}`);
  });

  test('a client traceparent is the parent; tracestate goes upstream untouched', async () => {
    const parentTrace = '4bf92f3577b34da6a3ce929d0e0e4736';
    const parentSpan = '00f067aa0ba902b7';
    const r = await request(`${base}/api/child`, { headers: { traceparent: `00-${parentTrace}-${parentSpan}-01`, tracestate: 'vendor=abc' } });
    assert.equal(r.status, 200);
    const seen = up.seen.at(-1)!;
    const tp = TRACEPARENT.exec(String(seen.headers.traceparent))!;
    assert.equal(tp[1], parentTrace, 'same trace');
    assert.notEqual(tp[2], parentSpan, 'a new parent span for the upstream');
    assert.equal(seen.headers.tracestate, 'vendor=abc');
    await eventually(() => spansOf(collector, parentTrace).some((s) => s.kind === SERVER), 'server span of the client trace');
    const server = spansOf(collector, parentTrace).find((s) => s.kind === SERVER)!;
    assert.equal(server.parentSpanId, parentSpan);
  });

  test('an unsampled client parent: no span anywhere, upstream and agent get its trace id with flags 00', async () => {
    const parentTrace = '5bf92f3577b34da6a3ce929d0e0e4737';
    const parentSpan = '10f067aa0ba902b8';
    const r = await request(`${base}/api/unsampled`, { headers: { traceparent: `00-${parentTrace}-${parentSpan}-00`, tracestate: 'vendor=xyz' } });
    assert.equal(r.status, 200);
    assert.match(String(r.headers['x-correlation-id']), TINYFLAKE, 'the correlation id is not the trace id');
    const seen = up.seen.at(-1)!;
    const tp = TRACEPARENT.exec(String(seen.headers.traceparent));
    assert.ok(tp, `upstream got a W3C traceparent: ${String(seen.headers.traceparent)}`);
    assert.deepEqual([tp[1], tp[3]], [parentTrace, '00'], 'same trace, the decision not to sample goes on');
    assert.notEqual(tp[2], parentSpan, 'the gateway is the upstream parent');
    assert.equal(seen.headers.tracestate, 'vendor=xyz', 'tracestate passed through');
    // the agent filter ran (no span of its own): the agent got the same context
    const agentSaw = agent.lines.filter((l) => l.seen === 'request').map((l) => (l.metadata as { traceparent: string | null }).traceparent);
    assert.ok(agentSaw.includes(String(seen.headers.traceparent)), `agent metadata.traceparent: ${agentSaw.join(', ')}`);
    // a sampled request after it is exported: by then nothing of the unsampled one has been
    assert.equal((await request(`${base}/api/after-unsampled`)).status, 200);
    const controlTrace = TRACEPARENT.exec(String(up.seen.at(-1)!.headers.traceparent))![1]!;
    await eventually(() => spansOf(collector, controlTrace).length >= 5, 'the spans of the sampled request after it');
    assert.equal(spansOf(collector, parentTrace).length, 0, 'no span of the unsampled request');
    // the access log names the unsampled request by the ids the upstream saw
    const entry = await loggedEntry(gw, '/api/unsampled');
    assert.deepEqual([entry.otel_trace_id, entry.otel_span_id], [parentTrace, tp[2]]);
  });

  test('an unsampled root (rate 0): the agent and the upstream get the same traceparent, flags 00, and the access log its ids', async () => {
    const gw0 = await startGateway({
      logLevel: 'silent',
      configText: `
system { graceful-shutdown-timeout-secs 1 }
listeners { listener "http" { address "127.0.0.1:0" } }
agents { agent "tracer" { unix-socket "${sock}"; events "request_headers"; timeout-ms 5000 } }
filters { filter "inspect" { type "agent"; agent "tracer" } }
routes { route "api" { matches { path-prefix "/api" }; upstream "backend"; filters "inspect" } }
upstreams { upstream "backend" { target "${up.address}" } }
${tracingBlock(collector.endpoint, 0)}
`,
    });
    const seenBefore = agent.lines.length;
    let tp: RegExpExecArray;
    try {
      const r = await request(`http://127.0.0.1:${gw0.address('http').port}/api/unsampled-root`);
      assert.equal(r.status, 200);
      const upstreamTp = String(up.seen.at(-1)!.headers.traceparent);
      tp = TRACEPARENT.exec(upstreamTp)!;
      assert.ok(tp, `upstream got a W3C traceparent: ${upstreamTp}`);
      assert.equal(tp[3], '00', 'not sampled');
      const agentSaw = agent.lines.slice(seenBefore).filter((l) => l.seen === 'request').map((l) => (l.metadata as { traceparent: string | null }).traceparent);
      assert.deepEqual(agentSaw, [upstreamTp], 'the agent got the same context');
    } finally {
      await gw0.close();
    }
    const entry = accessEntries('access-0-').find((e) => e.path === '/api/unsampled-root');
    assert.ok(entry, 'access log entry of the request');
    assert.deepEqual([entry.otel_trace_id, entry.otel_span_id], [tp[1], tp[2]]);
    assert.equal(spansOf(collector, tp[1]!).length, 0, 'nothing recorded');
  });

  test('an invalid client traceparent is ignored: a new trace starts', async () => {
    const bad = `00-${'0'.repeat(32)}-${'1'.repeat(16)}-01`; // an all-zero trace id is invalid (W3C)
    const r = await request(`${base}/api/bad-parent`, { headers: { traceparent: bad } });
    assert.equal(r.status, 200);
    const tp = TRACEPARENT.exec(String(up.seen.at(-1)!.headers.traceparent))!;
    assert.notEqual(tp[1], '0'.repeat(32));
    await eventually(() => spansOf(collector, tp[1]!).some((s) => s.kind === SERVER), 'server span of the new trace');
    assert.equal(spansOf(collector, tp[1]!).find((s) => s.kind === SERVER)!.parentSpanId, '', 'a root span');
  });

  test('a retried attempt is a second client span with resend_count', async () => {
    flakyCalls = 0;
    const r = await request(`${base}/flaky`);
    assert.equal(r.status, 200);
    const traceId = await traceOfPath(collector, '/flaky');
    await eventually(() => spansOf(collector, traceId).filter((s) => s.kind === CLIENT).length === 2 && spansOf(collector, traceId).some((s) => s.kind === SERVER), 'two attempt spans');
    const attempts = spansOf(collector, traceId)
      .filter((s) => s.kind === CLIENT)
      .sort((a, b) => Number(a.attributes['sentinel.upstream.attempt']) - Number(b.attributes['sentinel.upstream.attempt']));
    assert.deepEqual(
      attempts.map((a) => [a.attributes['sentinel.upstream.attempt'], a.attributes['http.response.status_code'], a.attributes['http.request.resend_count'], a.attributes['error.type'], a.statusCode]),
      [
        [1, 503, undefined, '503', 2],
        [2, 200, 1, undefined, 0],
      ],
    );
    assert.ok(attempts[0]!.endNs <= attempts[1]!.startNs, 'the retry starts after the first attempt ended');
    const server = spansOf(collector, traceId).find((s) => s.kind === SERVER)!;
    assert.equal(server.attributes['http.route'], '/flaky');
  });

  test('a filter that blocks: its span says so and the server span carries the status', async () => {
    await request(`${base}/limited/a`);
    const r = await request(`${base}/limited/b`);
    assert.equal(r.status, 429);
    const traceId = await traceOfPath(collector, '/limited/b');
    await eventually(() => spansOf(collector, traceId).some((s) => s.kind === SERVER), 'server span of the blocked request');
    const spans = spansOf(collector, traceId);
    const filter = spans.find((s) => s.name === 'rate-limit deny')!;
    assert.equal(filter.attributes['sentinel.filter.decision'], 'block');
    assert.equal(filter.attributes['http.response.status_code'], 429);
    assert.equal(spans.filter((s) => s.kind === CLIENT).length, 0, 'no upstream attempt');
    const server = spans.find((s) => s.kind === SERVER)!;
    assert.equal(server.attributes['http.response.status_code'], 429);
    assert.equal(server.statusCode, 0, 'a 4xx is not a server error');
  });

  test('a client id still wins as correlation id; the access log carries both ids', async () => {
    const r = await request(`${base}/api/log`, { headers: { 'x-request-id': 'client-id-1' } });
    assert.equal(r.headers['x-correlation-id'], 'client-id-1');
    const tp = TRACEPARENT.exec(String(up.seen.at(-1)!.headers.traceparent))!;
    const path = join(tmp.dir, readdirLog());
    let file = '';
    await eventually(() => {
      (gw as unknown as { accessLog?: { flush?(): void } }).accessLog?.flush?.();
      file = readFileSync(path, 'utf8');
      return file.includes('client-id-1');
    }, 'the access log line');
    const entry = file
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .find((e) => e.trace_id === 'client-id-1')!;
    assert.ok(entry, 'access log entry of the request');
    assert.equal(entry.otel_trace_id, tp[1]);
    assert.match(String(entry.otel_span_id), /^[0-9a-f]{16}$/);
    const seen = up.seen.at(-1)!;
    assert.deepEqual([seen.headers['x-correlation-id'], seen.headers['x-trace-id']], ['client-id-1', 'client-id-1'], 'the client id goes upstream');
  });

  test('without a client id the access log carries the TinyFlake as trace_id and the W3C trace id as otel_trace_id', async () => {
    const r = await request(`${base}/api/log-generated`);
    const correlation = String(r.headers['x-correlation-id']);
    assert.match(correlation, TINYFLAKE);
    const tp = TRACEPARENT.exec(String(up.seen.at(-1)!.headers.traceparent))!;
    const entry = await loggedEntry(gw, '/api/log-generated');
    assert.deepEqual([entry.trace_id, entry.otel_trace_id], [correlation, tp[1]]);
    assert.match(String(entry.otel_span_id), /^[0-9a-f]{16}$/);
  });
});

function readdirLog(): string {
  return readdirSync(tmp.dir).find((n) => n.startsWith('access-1-'))!;
}

after(() => tmp.cleanup());

describe('sampling decisions', () => {
  let collector: Collector;
  let up: TestUpstream;

  before(async () => {
    collector = await startCollector();
    up = await startUpstream();
  });
  after(async () => {
    await up?.close();
    await collector?.close();
  });

  async function withGateway(rate: number, run: (base: string, gw: Gateway) => Promise<void>, backendExtra = ''): Promise<void> {
    const gw = await startGateway({
      logLevel: 'silent',
      configText: `
system { graceful-shutdown-timeout-secs 1 }
listeners { listener "http" { address "127.0.0.1:0" } }
routes { route "main" { matches { path-prefix "/" }; upstream "backend" } }
upstreams { upstream "backend" { target "${up.address}" } }
${tracingBlock(collector.endpoint, rate, '', backendExtra)}
`,
    });
    try {
      await run(`http://127.0.0.1:${gw.address('http').port}`, gw);
    } finally {
      await gw.close(); // flushes what is queued
    }
  }

  test('rate 0: no spans, yet the upstream gets an unsampled traceparent', async () => {
    const ids: string[] = [];
    const spanIds: string[] = [];
    await withGateway(0, async (base) => {
      for (let i = 0; i < 5; i++) {
        const r = await request(`${base}/r0/${i}`);
        assert.equal(r.status, 200);
        const tp = TRACEPARENT.exec(String(up.seen.at(-1)!.headers.traceparent))!;
        assert.equal(tp[3], '00');
        ids.push(tp[1]!);
        spanIds.push(tp[2]!);
      }
    });
    assert.equal(new Set(ids).size, 5, 'each request its own trace');
    for (const id of ids) assert.equal(spansOf(collector, id).length, 0);
    // unsampled requests too: the access log carries the W3C trace id next to the correlation id
    const logged = accessEntries('access-0-').filter((e) => String(e.path).startsWith('/r0/'));
    assert.deepEqual(logged.map((e) => `${String(e.otel_trace_id)}-${String(e.otel_span_id)}`).sort(), ids.map((id, i) => `${id}-${spanIds[i]}`).sort(), 'the ids the upstream saw');
    for (const e of logged) assert.match(String(e.trace_id), TINYFLAKE);
  });

  test('rate 0 honours a sampled parent; rate 1 honours an unsampled parent', async () => {
    const sampledParent = 'a'.repeat(32);
    const unsampledParent = 'b'.repeat(32);
    let upstreamTp = '';
    await withGateway(0, async (base) => {
      assert.equal((await request(`${base}/p`, { headers: { traceparent: `00-${sampledParent}-${'1'.repeat(16)}-01` } })).status, 200);
    });
    await eventually(() => spansOf(collector, sampledParent).some((s) => s.kind === SERVER), 'spans of the sampled parent at rate 0');
    await withGateway(1, async (base) => {
      assert.equal((await request(`${base}/p`, { headers: { traceparent: `00-${unsampledParent}-${'2'.repeat(16)}-00` } })).status, 200);
      upstreamTp = String(up.seen.at(-1)!.headers.traceparent);
      // a sampled request in the same gateway proves spans are exported at all
      assert.equal((await request(`${base}/control`)).status, 200);
    });
    const tp = TRACEPARENT.exec(upstreamTp)!;
    assert.equal(tp[1], unsampledParent);
    assert.equal(tp[3], '00', 'the unsampled decision goes on upstream');
    assert.ok(collector.spans.some((s) => s.attributes['url.path'] === '/control'), 'the control request was exported');
    assert.equal(spansOf(collector, unsampledParent).length, 0, 'nothing recorded for the unsampled parent');
  });

  test('OTLP/protobuf by default; protocol "http/json" sends the same spans as JSON', async () => {
    const byProtocol = new Map<string, ReceivedSpan[]>();
    for (const protocol of ['', 'protocol "http/json"']) {
      const from = collector.contentTypes.length;
      let traceId = '';
      await withGateway(
        1,
        async (base) => {
          const r = await request(`${base}/proto/x`, { headers: { 'user-agent': 'naïve-agent/1 ü' } });
          assert.equal(r.status, 200);
          traceId = TRACEPARENT.exec(String(up.seen.at(-1)!.headers.traceparent))![1]!;
        },
        protocol,
      );
      await eventually(() => spansOf(collector, traceId).length >= 3, `the spans (${protocol || 'default'})`);
      assert.deepEqual(new Set(collector.contentTypes.slice(from)), new Set([protocol ? 'application/json' : 'application/x-protobuf']));
      byProtocol.set(protocol, spansOf(collector, traceId));
    }
    // the same request gives the same spans either way (ids, times, addresses and ports differ)
    const shape = (spans: ReceivedSpan[]) =>
      spans
        .map((s) => ({ name: s.name, kind: s.kind, status: s.statusCode, flags: s.flags, root: s.parentSpanId === '', ua: s.attributes['user_agent.original'], path: s.attributes['url.path'], keys: Object.keys(s.attributes).sort(), resource: Object.keys(s.resource).sort() }))
        .sort((a, b) => a.kind - b.kind);
    assert.deepEqual(shape(byProtocol.get('')!), shape(byProtocol.get('protocol "http/json"')!));
    assert.equal(shape(byProtocol.get('')!).find((s) => s.kind === SERVER)?.ua, 'naïve-agent/1 ü');
  });
});

describe('collector failures never reach requests', () => {
  let up: TestUpstream;
  before(async () => {
    up = await startUpstream();
  });
  after(async () => {
    await up?.close();
  });

  const config = (endpoint: string, extra: string) => `
system { graceful-shutdown-timeout-secs 1 }
listeners { listener "http" { address "127.0.0.1:0" } }
routes { route "main" { matches { path-prefix "/" }; upstream "backend" } }
upstreams { upstream "backend" { target "${up.address}" } }
observability { tracing { backend "otlp" { endpoint "${endpoint}" }; sampling-rate 1; scheduled-delay "20ms"; ${extra} } }
`;

  test('a dead collector: every request served, spans counted as export_failed', async () => {
    const port = await closedPort();
    const gw = await startGateway({ logLevel: 'silent', configText: config(`http://127.0.0.1:${port}`, 'export-timeout "500ms"') });
    try {
      const base = `http://127.0.0.1:${gw.address('http').port}`;
      for (let i = 0; i < 20; i++) assert.equal((await request(`${base}/dead/${i}`)).status, 200);
      await eventually(async () => (await counter(gw, 'sentinel_tracing_spans_dropped_total', { reason: 'export_failed' })) > 0, 'export failures counted', 200, 50);
      assert.equal(await counter(gw, 'sentinel_tracing_spans_exported_total'), 0);
    } finally {
      await gw.close();
    }
  });

  test('the export thread terminated mid-run: the export in flight counted as export_failed, every request served, later spans delivered by a new thread', async () => {
    let hang = true;
    const collector = await startCollector();
    // one endpoint that hangs until the thread is gone, then forwards to a working collector
    const front = http.createServer((req, res) => {
      if (hang) return;
      const fwd = http.request(`${collector.endpoint}${req.url}`, { method: 'POST', headers: req.headers }, (r) => {
        res.writeHead(r.statusCode ?? 502, r.headers);
        r.pipe(res);
      });
      req.pipe(fwd);
    });
    await new Promise<void>((r) => front.listen(0, '127.0.0.1', r));
    const gw = await startGateway({ logLevel: 'silent', configText: config(`http://127.0.0.1:${(front.address() as AddressInfo).port}`, 'export-timeout "60s"; export-thread #true') });
    try {
      const base = `http://127.0.0.1:${gw.address('http').port}`;
      for (let i = 0; i < 5; i++) assert.equal((await request(`${base}/before/${i}`)).status, 200);
      const exportThread = sharedExportThread().thread;
      assert.ok(exportThread, 'the gateway exports through the export thread');
      await eventually(async () => (await new Promise<number>((r, j) => front.getConnections((e, n) => (e ? j(e) : r(n))))) > 0, 'an export reached the hanging endpoint');
      await exportThread.terminate();
      hang = false;
      await eventually(async () => (await counter(gw, 'sentinel_tracing_spans_dropped_total', { reason: 'export_failed' })) > 0, 'the export in flight counted as failed');
      for (let i = 0; i < 5; i++) assert.equal((await request(`${base}/during/${i}`)).status, 200);
      // the queue retries its timer; a send after the restart back-off (1 s, doubling after a
      // failed start) starts a new thread: a worker's start took seconds at load 37, so the bound
      // is HANG_MS (only a thread that never comes back exceeds it), not 200 tries
      await eventually(async () => {
        assert.equal((await request(`${base}/after`)).status, 200);
        return collector.spans.some((s) => s.attributes['url.path'] === '/after');
      }, 'spans delivered by a new export thread', HANG_MS / 50, 50);
      assert.notEqual(sharedExportThread().thread, exportThread);
    } finally {
      await gw.close();
      await closeServer(front);
      await collector.close();
    }
  });

  test('a hanging collector: every request served, the bounded queue drops and counts', async () => {
    const hung = await startCollector('hang');
    const gw = await startGateway({ logLevel: 'silent', configText: config(hung.endpoint, 'export-timeout "30s"; max-queue-size 8; max-export-batch-size 4') });
    try {
      const base = `http://127.0.0.1:${gw.address('http').port}`;
      const statuses = await Promise.all(Array.from({ length: 40 }, (_, i) => request(`${base}/hang/${i}`).then((r) => r.status)));
      assert.deepEqual(new Set(statuses), new Set([200]));
      await eventually(async () => (await counter(gw, 'sentinel_tracing_spans_dropped_total', { reason: 'queue_full' })) > 0, 'queue overflow counted');
      // (the export thread may still be starting when the queue overflows)
      await eventually(() => hung.requests >= 1, 'the exporter reached the hanging collector');
      // still served while the collector hangs
      assert.equal((await request(`${base}/after`)).status, 200);
    } finally {
      await gw.close(); // bounded: does not wait for the hung export
      await hung.close();
    }
  });
});

/** One listener and one route to `upstream`, plus `top` (the reload tests change only `top`). */
function oneRoute(upstream: string, top: string): string {
  return `
system { graceful-shutdown-timeout-secs 1 }
listeners { listener "http" { address "127.0.0.1:0" } }
routes { route "main" { matches { path-prefix "/" }; upstream "backend" } }
upstreams { upstream "backend" { target "${upstream}" } }
${top}
`;
}

describe('tracing off', () => {
  test('no tracing feature, the client traceparent passes through, a reload turns tracing on and off', async () => {
    const collector = await startCollector();
    const up = await startUpstream();
    const cfg = (top: string) => oneRoute(up.address, top);
    const gw = await startGateway({ logLevel: 'silent', configText: cfg('') });
    try {
      const base = `http://127.0.0.1:${gw.address('http').port}`;
      const clientTp = `00-${'c'.repeat(32)}-${'d'.repeat(16)}-01`;
      assert.ok(!gw.current.features.includes('tracing'));
      const r = await request(`${base}/off`, { headers: { traceparent: clientTp } });
      assert.equal(r.status, 200);
      assert.equal(up.seen.at(-1)!.headers.traceparent, clientTp, 'passed on unchanged');
      assert.match(String(r.headers['x-correlation-id']), /^[1-9A-HJ-NP-Za-km-z]{11}$/, 'a TinyFlake correlation id as before');
      const on = `observability { tracing { backend "otlp" { endpoint "${collector.endpoint}" }; sampling-rate 1; scheduled-delay "20ms" } }`;
      await gw.reload(cfg(on));
      assert.ok(gw.current.features.includes('tracing'));
      await request(`${base}/on`, { headers: { traceparent: clientTp } });
      assert.notEqual(up.seen.at(-1)!.headers.traceparent, clientTp, 'now a child span of the client');
      await eventually(() => collector.spans.some((s) => s.attributes['url.path'] === '/on'), 'spans after the reload');
      await gw.reload(cfg(on.replace('sampling-rate 1', 'sampling-rate 1; enabled #false')));
      assert.ok(!gw.current.features.includes('tracing'), 'enabled #false: not registered');
      await request(`${base}/off-again`, { headers: { traceparent: clientTp } });
      assert.equal(up.seen.at(-1)!.headers.traceparent, clientTp);
    } finally {
      await gw.close();
      await up.close();
      await collector.close();
    }
  });
});

describe('flush on reload and shutdown', () => {
  test('spans queued behind a slow collector are all delivered when the generation goes', async () => {
    // each export takes 300 ms: while the first batch (2 spans) is out, the rest queue up in
    // batches; closing the gateway flushes them all at once
    const collector = await startCollector('ok', 300);
    const up = await startUpstream();
    const gw = await startGateway({
      logLevel: 'silent',
      configText: `
system { graceful-shutdown-timeout-secs 1 }
listeners { listener "http" { address "127.0.0.1:0" } }
routes { route "main" { matches { path-prefix "/" }; upstream "backend" } }
upstreams { upstream "backend" { target "${up.address}" } }
observability { tracing { backend "otlp" { endpoint "${collector.endpoint}" }; sampling-rate 1; max-export-batch-size 2; max-queue-size 64 } }
`,
    });
    try {
      const base = `http://127.0.0.1:${gw.address('http').port}`;
      for (let i = 0; i < 6; i++) assert.equal((await request(`${base}/q/${i}`)).status, 200);
    } finally {
      await gw.close();
    }
    try {
      await eventually(() => collector.spans.length >= 18, 'all 18 spans (6 requests x 3)', 60, 50);
      assert.equal(collector.spans.length, 18);
      assert.equal(new Set(collector.spans.map((s) => s.traceId)).size, 6);
      assert.equal(await counter(gw, 'sentinel_tracing_spans_dropped_total'), 0);
    } finally {
      await up.close();
      await collector.close();
    }
  });
});

describe('flush on reload', () => {
  test('spans still queued when a reload replaces the generation are delivered by the old one', async () => {
    // a batch far larger than the traffic and an hour's delay: only the old generation's flush
    // can send these spans
    const collector = await startCollector();
    const up = await startUpstream();
    const cfg = (service: string) =>
      oneRoute(up.address, `observability { tracing { backend "otlp" { endpoint "${collector.endpoint}" }; sampling-rate 1; service-name "${service}"; max-export-batch-size 512; scheduled-delay "1h" } }`);
    const gw = await startGateway({ logLevel: 'silent', configText: cfg('before-reload') });
    try {
      const base = `http://127.0.0.1:${gw.address('http').port}`;
      for (let i = 0; i < 4; i++) assert.equal((await request(`${base}/r/${i}`)).status, 200);
      assert.equal(collector.requests, 0, 'nothing sent yet: the spans wait in the queue');
      await gw.reload(cfg('after-reload'));
      await eventually(() => collector.spans.length >= 12, 'the 12 queued spans (4 requests x 3) after the reload');
      assert.equal(collector.spans.length, 12);
      assert.deepEqual(new Set(collector.spans.map((s) => s.resource['service.name'])), new Set(['before-reload']));
      assert.equal((await request(`${base}/after`)).status, 200, 'the new generation serves');
    } finally {
      await gw.close();
      await up.close();
      await collector.close();
    }
  });
});
