// redis-mode "sentinel" and "cluster" against real servers: a master watched by one Redis
// Sentinel, and a three-master Redis Cluster, all started here on free loopback ports.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { START_MS, until } from '../../helpers/until.ts';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { freePort, managedService, requireBinary, startRedis, type ManagedService, type RedisServer } from '../../helpers/redis.ts';
import { createRateLimitFilter } from '../../../plugins/rate-limit/index.ts';
import type { RequestFilter } from '../../../src/pipeline/types.ts';
import { decodeFilter, fakeCtx, fakeServices, metricValue } from '../../unit/rate-limit/fixtures.ts';

const dir = mkdtempSync(join(tmpdir(), 'sentinel-rl-topo-'));
const services: ManagedService[] = [];
const filters: RequestFilter[] = [];
let master: RedisServer;

before(() => {
  requireBinary('redis-server', 'redis-server');
  requireBinary('redis-cli', 'redis-tools');
});

after(async () => {
  for (const f of filters) await f.close?.();
  for (const s of services) await s.stop();
  await master?.stop();
  rmSync(dir, { recursive: true, force: true });
});

async function statuses(f: RequestFilter, ip: string, n: number): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < n; i++) out.push((await f.onRequest!(fakeCtx({ ip })))?.status ?? 200);
  return out;
}

// max-rps 0.1: one request per 10 s, so counts are exact however slow the machine is.
// A generous timeout: the first request waits (at most this long) for the client to connect.
const LIMIT = 'max-rps 0.1; burst 0; redis-timeout-ms 5000';

test('redis-mode "sentinel": the master is found through Redis Sentinel and holds the window', async () => {
  master = await startRedis();
  const port = await freePort();
  const conf = join(dir, 'sentinel.conf');
  writeFileSync(conf, `port ${port}\nbind 127.0.0.1\ndir ${dir}\nsentinel monitor mymaster 127.0.0.1 ${master.port} 1\n`);
  const sentinel = managedService('redis-sentinel', port, 'redis-server', [conf, '--sentinel'], 'PING\r\n', '+PONG');
  services.push(sentinel);
  await sentinel.start();

  const m = fakeServices();
  const { config } = decodeFilter(`backend "redis"; redis-mode "sentinel"; redis-url "redis://127.0.0.1:${port}"; redis-sentinel-master "mymaster"; ${LIMIT}`);
  const f = createRateLimitFilter('via-sentinel', config, m);
  filters.push(f);
  assert.deepEqual(await statuses(f, '192.0.2.10', 3), [200, 429, 429]);
  assert.equal(await metricValue(m.metrics, 'sentinel_rate_limit_fallbacks_total'), 0, 'Redis decided');
  const admin = new Redis(master.url);
  try {
    assert.deepEqual(await admin.keys('sentinel:ratelimit:via-sentinel:*'), ['sentinel:ratelimit:via-sentinel:i:192.0.2.10']);
  } finally {
    admin.disconnect();
  }
});

test('redis-mode "cluster": keys spread over three masters, each window enforced', async () => {
  const ports = [await freePort(), await freePort(), await freePort()];
  for (const p of ports) {
    const node = managedService(
      `redis cluster node ${p}`,
      p,
      'redis-server',
      ['--port', String(p), '--bind', '127.0.0.1', '--dir', dir, '--cluster-enabled', 'yes', '--cluster-config-file', `nodes-${p}.conf`, '--save', '', '--appendonly', 'no', '--protected-mode', 'no'],
      'PING\r\n',
      '+PONG',
    );
    services.push(node);
    await node.start();
  }
  const create = spawnSync('redis-cli', ['--cluster', 'create', ...ports.map((p) => `127.0.0.1:${p}`), '--cluster-replicas', '0', '--cluster-yes'], { encoding: 'utf8', timeout: 30_000 });
  assert.equal(create.status, 0, create.stdout + create.stderr);
  await until('the Redis cluster to reach cluster_state:ok', () => spawnSync('redis-cli', ['-p', String(ports[0]), 'cluster', 'info'], { encoding: 'utf8' }).stdout.includes('cluster_state:ok'), START_MS, 100);

  const m = fakeServices();
  const { config } = decodeFilter(`backend "redis"; redis-mode "cluster"; redis-url "${ports.map((p) => `127.0.0.1:${p}`).join(',')}"; ${LIMIT}`);
  const f = createRateLimitFilter('via-cluster', config, m);
  filters.push(f);
  const ips = Array.from({ length: 6 }, (_, i) => `198.51.100.${i + 1}`);
  for (const ip of ips) assert.deepEqual(await statuses(f, ip, 2), [200, 429], ip);
  assert.equal(await metricValue(m.metrics, 'sentinel_rate_limit_fallbacks_total'), 0, 'Redis Cluster decided');
  // The six keys landed on more than one master.
  const holders = ports.filter((p) => {
    const r = spawnSync('redis-cli', ['-p', String(p), '--scan', '--pattern', 'sentinel:ratelimit:via-cluster:*'], { encoding: 'utf8' });
    return r.stdout.trim() !== '';
  });
  assert.ok(holders.length >= 2, `keys on ${holders.length} master(s)`);
});
