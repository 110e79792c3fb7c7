// Active health checks against real servers: http (status, path, host), tcp, and the standard
// gRPC health protocol served by @grpc/grpc-js (messages defined from the official proto).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import { fromJSON } from '@grpc/proto-loader';
import { UpstreamGroup } from '../../helpers/upstream-group.ts';
import type { RawUpstream } from '../../../src/config/schema.ts';
import { fakeServices, pickContext, startServer, type TestServer } from './helpers.ts';
import { until } from '../../helpers/until.ts';

const cleanups: (() => Promise<void>)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

function group(config: Omit<RawUpstream, 'id'>): UpstreamGroup {
  const g = new UpstreamGroup({ id: 'svc', config: { id: 'svc', ...config } as RawUpstream, baseDir: '.', services: fakeServices() });
  cleanups.push(() => g.close());
  return g;
}

test('http check: unhealthy-threshold failures eject, healthy-threshold successes re-admit', async () => {
  let status = 200;
  const seen: { path: string; host: string }[] = [];
  const s = await startServer((req, res) => {
    seen.push({ path: req.url!, host: req.headers.host! });
    res.statusCode = req.url === '/ready' ? status : 404;
    res.end();
  });
  const other = await startServer((_req, res) => res.end());
  cleanups.push(() => s.close(), () => other.close());
  const g = group({
    target: [{ address: s.address, weight: 1 }, { address: other.address, weight: 1 }],
    'health-check': { type: { kind: 'http', path: '/ready', 'expected-status': '2xx', host: 'probe.local' }, 'healthy-threshold': 2, 'unhealthy-threshold': 2 },
  } as Omit<RawUpstream, 'id'>);
  assert.equal((await g.runCheck(0)).ok, true);
  assert.deepEqual(seen[0], { path: '/ready', host: 'probe.local' });
  status = 503;
  assert.equal((await g.runCheck(0)).ok, false);
  assert.equal(g.snapshot().targets[0]!.status, 'healthy', 'one failure is below the threshold');
  await g.runCheck(0);
  assert.equal(g.snapshot().targets[0]!.status, 'unhealthy');
  assert.match(g.snapshot().targets[0]!.last_error!, /status 503, expected 2xx/);
  for (let i = 0; i < 10; i++) {
    const p = g.select(pickContext())!;
    assert.equal(p.target.index, 1, 'ejected target must not be picked');
    g.report(p.target, { kind: 'response', status: 200, latencyMs: 1 });
  }
  status = 204;
  await g.runCheck(0);
  assert.equal(g.snapshot().targets[0]!.status, 'unhealthy', 'one success is below healthy-threshold');
  await g.runCheck(0);
  assert.equal(g.snapshot().targets[0]!.status, 'healthy');
  const picked = new Set(Array.from({ length: 4 }, () => {
    const p = g.select(pickContext())!;
    g.report(p.target, { kind: 'response', status: 200, latencyMs: 1 });
    return p.target.index;
  }));
  assert.deepEqual(picked, new Set([0, 1]));
});

test('http check: refused connection and timeout count as failures', async () => {
  const hang = await startServer(() => {
    /* never answers */
  });
  cleanups.push(() => hang.close());
  const closed = await startServer((_req, res) => res.end());
  const closedAddress = closed.address;
  await closed.close();
  const g = group({
    target: [{ address: closedAddress, weight: 1 }, { address: hang.address, weight: 1 }],
    'health-check': { type: { kind: 'http', path: '/' }, 'timeout-secs': 0.3, 'unhealthy-threshold': 1 },
  } as Omit<RawUpstream, 'id'>);
  const refused = await g.runCheck(0);
  assert.equal(refused.ok, false);
  assert.match(refused.detail, /ECONNREFUSED/);
  const slow = await g.runCheck(1);
  assert.equal(slow.ok, false);
  assert.equal(slow.detail, 'timeout');
  assert.equal(g.select(pickContext()), undefined, 'no healthy target left: the core answers 503');
});

test('tcp check', async () => {
  const s = await startServer((_req, res) => res.end());
  cleanups.push(() => s.close());
  const g = group({ target: [{ address: s.address, weight: 1 }], 'health-check': { type: { kind: 'tcp' }, 'unhealthy-threshold': 1 } } as Omit<RawUpstream, 'id'>);
  assert.deepEqual(await g.runCheck(0), { ok: true, detail: 'connected' });
  await s.close();
  const r = await g.runCheck(0);
  assert.equal(r.ok, false);
  assert.equal(g.snapshot().targets[0]!.status, 'unhealthy');
});

// grpc.health.v1 messages as in the official health.proto
const healthProto = fromJSON({
  nested: {
    grpc: {
      nested: {
        health: {
          nested: {
            v1: {
              nested: {
                HealthCheckRequest: { fields: { service: { type: 'string', id: 1 } } },
                HealthCheckResponse: {
                  fields: { status: { type: 'ServingStatus', id: 1 } },
                  nested: { ServingStatus: { values: { UNKNOWN: 0, SERVING: 1, NOT_SERVING: 2, SERVICE_UNKNOWN: 3 } } },
                },
                Health: { methods: { Check: { requestType: 'HealthCheckRequest', responseType: 'HealthCheckResponse', comment: '' } } },
              },
            },
          },
        },
      },
    },
  },
});

test('grpc check: grpc.health.v1.Health/Check against a real @grpc/grpc-js server', async () => {
  const pkg = grpc.loadPackageDefinition(healthProto) as unknown as { grpc: { health: { v1: { Health: grpc.ServiceClientConstructor } } } };
  const statuses = new Map<string, string>([
    ['', 'SERVING'],
    ['orders', 'SERVING'],
  ]);
  const asked: string[] = [];
  const server = new grpc.Server();
  server.addService(pkg.grpc.health.v1.Health.service, {
    Check: (call: grpc.ServerUnaryCall<{ service?: string }, unknown>, cb: grpc.sendUnaryData<unknown>) => {
      const service = call.request.service ?? ''; // proto3: an empty string arrives as absent
      asked.push(service);
      const st = statuses.get(service);
      if (!st) cb({ code: grpc.status.NOT_FOUND, details: 'unknown service' });
      else cb(null, { status: st });
    },
  });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
  );
  cleanups.push(() => new Promise((resolve) => server.tryShutdown(() => resolve())));

  const g = group({
    target: [{ address: `127.0.0.1:${port}`, weight: 1 }],
    'health-check': { type: { kind: 'grpc', service: 'orders' }, 'unhealthy-threshold': 1, 'healthy-threshold': 1 },
  } as Omit<RawUpstream, 'id'>);
  assert.deepEqual(await g.runCheck(0), { ok: true, detail: 'SERVING' });
  assert.equal(asked.at(-1), 'orders');
  statuses.set('orders', 'NOT_SERVING');
  assert.deepEqual(await g.runCheck(0), { ok: false, detail: 'serving status 2' });
  assert.equal(g.snapshot().targets[0]!.status, 'unhealthy');
  statuses.delete('orders');
  assert.deepEqual(await g.runCheck(0), { ok: false, detail: 'grpc-status 5' });
  statuses.set('orders', 'SERVING');
  assert.equal((await g.runCheck(0)).ok, true);
  assert.equal(g.snapshot().targets[0]!.status, 'healthy');

  const whole = group({ target: [{ address: `127.0.0.1:${port}`, weight: 1 }], 'health-check': { type: { kind: 'grpc' } } } as Omit<RawUpstream, 'id'>);
  assert.deepEqual(await whole.runCheck(0), { ok: true, detail: 'SERVING' });
  assert.equal(asked.at(-1), '', 'no service configured asks for the whole server');
});

test('scheduler: start() runs checks on its own, jittered, and close() stops them', async () => {
  let hits = 0;
  const s: TestServer = await startServer((_req, res) => {
    hits++;
    res.end();
  });
  cleanups.push(() => s.close());
  const g = group({
    target: [{ address: s.address, weight: 1 }, { address: s.address, weight: 1 }, { address: s.address, weight: 1 }],
    'health-check': { type: { kind: 'http', path: '/' }, 'interval-secs': 0.05 },
  } as Omit<RawUpstream, 'id'>);
  g.start();
  await until(() => `repeated checks of 3 targets (saw ${hits})`, () => hits >= 9);
  await g.close();
  const after = hits;
  // the negative window ends at a positive event: a group started after the close checks its own
  // server four times over (each of its intervals is one in which the closed group may not check)
  let others = 0;
  const s2: TestServer = await startServer((_req, res) => {
    others++;
    res.end();
  });
  cleanups.push(() => s2.close());
  const g2 = group({ target: [{ address: s2.address, weight: 1 }], 'health-check': { type: { kind: 'http', path: '/' }, 'interval-secs': 0.05 } } as Omit<RawUpstream, 'id'>);
  g2.start();
  await until(() => `four checks of a group started after the close (saw ${others})`, () => others >= 4);
  await g2.close();
  assert.equal(hits, after, 'no checks after close()');
});
