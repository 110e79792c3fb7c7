// The span recorder (plugins/tracing/tracer.ts) driven the way the core drives it, its batches
// decoded by the test receiver's protobuf decoder: what repeats from request to request (the Host's
// address, the route's names, the encoder's attribute runs) is remembered between requests, and
// nothing of one request leaks into the next when the values change.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
import { Tracing } from '../../../plugins/tracing/tracer.ts';
import type { CompiledRoute } from '../../../src/config/compile.ts';
import { decodeProtoTraces, type ReceivedSpan } from '../../integration/tracing/collector.ts';

const route = (id: string, prefix: string) => ({ id, raw: { matches: { 'path-prefix': [prefix] } } }) as unknown as CompiledRoute;
// one socket per client port, reused by the requests on that connection (the recorder reads a connection's peer once)
const sockets = new Map<number, object>();
const socketOf = (port: number) => sockets.get(port) ?? sockets.set(port, { remoteAddress: `::ffff:10.0.0.${port % 7}`, remotePort: port }).get(port)!;
const request = (host: string | undefined, ua: string, port: number) =>
  ({ headers: { ...(host === undefined ? {} : { host }), 'user-agent': ua }, socket: socketOf(port), httpVersion: '1.1' }) as unknown as IncomingMessage;

test('server and attempt spans keep their own attributes as the Host, route, method, path and peer change from request to request', async () => {
  const spans: ReceivedSpan[] = [];
  const tracing = new Tracing(
    { url: 'http://127.0.0.1:1/v1/traces', protocol: 'http/protobuf', samplingRate: 1, serviceName: 's', maxQueueSize: 1000, maxExportBatchSize: 1000, scheduledDelayMs: 3_600_000, exportTimeoutMs: 1000, exportThread: false },
    { instanceId: 'i', version: '0' },
    { exported: () => undefined, dropped: () => undefined },
    'http',
    (batch, done) => {
      spans.push(...decodeProtoTraces(Buffer.from(batch.body)));
      done({});
    },
  );
  const api = route('api', '/api');
  const web = route('web', '/');
  const cases = [
    { host: 'a.example:8080', address: 'a.example', method: 'GET', path: '/api/1', route: api, port: 40000, status: 200, ua: 'curl' },
    { host: 'a.example:8080', address: 'a.example', method: 'GET', path: '/api/1', route: api, port: 40000, status: 200, ua: 'curl' },
    { host: 'a.example:8080', address: 'a.example', method: 'GET', path: '/api/2', route: api, port: 40001, status: 503, ua: 'curl' },
    { host: '[::1]:9', address: '::1', method: 'GET', path: '/api/2', route: api, port: 40001, status: 200, ua: 'curl' },
    { host: '[::1]:9', address: '::1', method: 'POST', path: '/x', route: web, port: 40001, status: 201, ua: 'wget' },
    { host: undefined, address: undefined, method: 'POST', path: '/x', route: web, port: 40002, status: 200, ua: 'wget' },
    { host: 'a.example:8080', address: 'a.example', method: 'GET', path: '/api/1', route: api, port: 40000, status: 200, ua: 'curl' },
  ];
  for (const c of cases) {
    const trace = tracing.start(request(c.host, c.ua, c.port), c.method, c.path, performance.now());
    assert.ok(typeof trace !== 'string', 'rate 1 samples every request');
    const match = trace.child('route match', 'internal');
    match.set('sentinel.route.id', c.route.id);
    tracing.routed(trace, c.route);
    match.end();
    const attempt = trace.child(c.method, 'client');
    attempt.set('http.request.method', c.method);
    attempt.set('server.port', 8081);
    attempt.set('url.full', `http://127.0.0.1:8081${c.path}`);
    attempt.set('http.response.status_code', c.status);
    attempt.end();
    attempt.set('http.response.status_code', 999); // after its end: not exported
    trace.finish(c.status, undefined);
  }
  await tracing.shutdown(1000);
  const servers = spans.filter((s) => s.kind === 2);
  const attempts = spans.filter((s) => s.kind === 3);
  assert.deepEqual(
    servers.map((s) => [s.name, s.attributes]),
    cases.map((c) => [
      `${c.method} ${c.route === api ? '/api/*' : '/*'}`,
      {
        'http.request.method': c.method,
        'url.scheme': 'http',
        'network.protocol.version': '1.1',
        ...(c.address === undefined ? {} : { 'server.address': c.address }),
        'user_agent.original': c.ua,
        'sentinel.route.id': c.route.id,
        'http.route': c.route === api ? '/api/*' : '/*',
        'http.response.status_code': c.status,
        'url.path': c.path,
        'network.peer.address': `10.0.0.${c.port % 7}`,
        'network.peer.port': c.port,
        ...(c.status >= 500 ? { 'error.type': String(c.status) } : {}),
      },
    ]),
  );
  assert.deepEqual(
    attempts.map((s) => s.attributes),
    cases.map((c) => ({ 'http.request.method': c.method, 'server.port': 8081, 'url.full': `http://127.0.0.1:8081${c.path}`, 'http.response.status_code': c.status })),
  );
});
