// The two example configs quoted in sentinel-reference.md §1.15 load unchanged (with the
// unknown-key warning) and, with only their addresses pointed at test servers, route traffic.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadConfigFile } from '../../../src/config/load.ts';
import { startGateway, type Gateway } from '../../../src/server/gateway.ts';
import { startUpstream, type TestUpstream } from '../../helpers/upstream.ts';
import { request } from '../../helpers/http.ts';

const fixtures = fileURLToPath(new URL('../../fixtures/', import.meta.url));
const cleanups: (() => Promise<void>)[] = [];
after(async () => {
  for (const c of cleanups) await c();
});

test('Example A (multi-file with includes) loads unchanged and routes traffic', async () => {
  const config = loadConfigFile(join(fixtures, 'example-multi-file/zentinel.kdl'));
  assert.deepEqual(config.warnings.map((w) => w.message), ['unknown key "max-connections" (ignored)']);
  assert.deepEqual(config.listeners.map((l) => `${l.id} ${l.host}:${l.port}`), ['http 0.0.0.0:8080']);
  assert.deepEqual([...config.upstreams.keys()], ['api', 'static']);
  assert.deepEqual(config.routes.map((r) => r.id), ['static']);

  const ups: TestUpstream[] = [];
  for (const name of ['api1', 'api2', 'static']) {
    const u = await startUpstream((_req, res) => res.end(name));
    ups.push(u);
    cleanups.push(() => u.close());
  }
  const dir = mkdtempSync(join(tmpdir(), 'sentinel-example-a-'));
  cpSync(join(fixtures, 'example-multi-file'), dir, { recursive: true });
  const rewrite = (file: string, pairs: [string, string][]) => {
    let text = readFileSync(join(dir, file), 'utf8');
    for (const [from, to] of pairs) text = text.replace(from, to);
    writeFileSync(join(dir, file), text);
  };
  rewrite('listeners/http.kdl', [['0.0.0.0:8080', '127.0.0.1:0']]);
  rewrite('upstreams/backends.kdl', [
    ['127.0.0.1:9001', ups[0]!.address],
    ['127.0.0.1:9002', ups[1]!.address],
    ['127.0.0.1:9003', ups[2]!.address],
  ]);
  const gw: Gateway = await startGateway({ configPath: join(dir, 'zentinel.kdl'), logLevel: 'silent' });
  cleanups.push(() => gw.close());
  const r = await request(`http://127.0.0.1:${gw.address('http').port}/anything`);
  assert.equal(r.status, 200);
  assert.equal(r.body, 'static');
});

test('Example B (sentinel-bench passthrough) loads unchanged and routes traffic', async () => {
  const file = join(fixtures, 'example-passthrough.kdl');
  const config = loadConfigFile(file);
  assert.deepEqual(config.warnings, []);
  assert.equal(config.routes[0]!.priority, 100);
  assert.equal(config.routes[0]!.failureMode, 'open');
  assert.equal(config.limits['max-body-size-bytes'], 10485760);

  const up = await startUpstream((_req, res) => res.end('backend'));
  cleanups.push(() => up.close());
  const text = readFileSync(file, 'utf8').replace('0.0.0.0:8080', '127.0.0.1:0').replace('backend:8080', up.address).replace('0.0.0.0:9090', '127.0.0.1:0');
  const gw = await startGateway({ configText: text, logLevel: 'silent' });
  cleanups.push(() => gw.close());
  const r = await request(`http://127.0.0.1:${gw.address('http').port}/bench`);
  assert.equal(r.body, 'backend');
  const m = gw.metricsAddress();
  assert.ok(m, 'standalone metrics server is listening');
  const metrics = await request(`http://127.0.0.1:${m.port}/metrics`);
  assert.match(metrics.body, /sentinel_requests_total\{route="benchmark",method="GET",status="200"\} 1/);
  assert.equal((await request(`http://127.0.0.1:${m.port}/other`)).status, 404);
});
