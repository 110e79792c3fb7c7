import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { body, haproxyConf, LARGE_BYTES, nginxProxyConf, originNginxConf, SMALL_BYTES } from '../../../bench/lib/configs.ts';
import { loadKey, parseOpenloopOutput, resolveLoad } from '../../../bench/lib/load.ts';
import { renderPassthrough } from '../../../bench/lib/targets.ts';
import { loadConfigText } from '../../../src/config/load.ts';

const repoRoot = fileURLToPath(new URL('../../..', import.meta.url));

test('origin bodies have the advertised sizes', () => {
  assert.equal(Buffer.byteLength(body(SMALL_BYTES)), 100);
  assert.equal(Buffer.byteLength(body(LARGE_BYTES)), 16384);
  assert.ok(body(SMALL_BYTES).endsWith('\n'));
});

test('generated nginx/HAProxy configs listen on loopback, point at the origin, stay in the foreground', () => {
  const origin = originNginxConf(4000, '/tmp/x');
  assert.match(origin, /daemon off;/);
  assert.match(origin, /master_process off;/);
  assert.match(origin, /listen 127\.0\.0\.1:4000 /);
  assert.match(origin, /alias \/tmp\/x\/large\.body;/);
  assert.ok(origin.includes(`return 200 "${body(SMALL_BYTES)}"`));
  const proxy = nginxProxyConf(4001, 4000, '/tmp/x');
  assert.match(proxy, /listen 127\.0\.0\.1:4001 /);
  assert.match(proxy, /server 127\.0\.0\.1:4000;/);
  assert.match(proxy, /worker_processes 1;/);
  const ha = haproxyConf(4002, 4000);
  assert.match(ha, /bind 127\.0\.0\.1:4002/);
  assert.match(ha, /server origin 127\.0\.0\.1:4000/);
  assert.match(ha, /nbthread 1/);
});

test('the Sentinel passthrough config compiles cleanly with the core loader', () => {
  const text = renderPassthrough(repoRoot, { listen: '127.0.0.1:4001', origin: '127.0.0.1:4000', metrics: '127.0.0.1:4003' });
  assert.doesNotMatch(text, /\{\{/);
  const cfg = loadConfigText(text, { name: 'sentinel-passthrough.kdl' });
  assert.deepEqual(cfg.warnings, []);
  assert.equal(cfg.listeners.length, 1);
  assert.equal(cfg.routes.length, 1);
  assert.deepEqual([...cfg.upstreams.keys()], ['origin']);
  assert.equal(cfg.system['worker-threads'], 1);
  assert.equal(cfg.observability.logging?.level, 'warn');
  assert.equal(cfg.observability.metrics?.enabled, true);
});

test('resolveLoad defaults and loadKey (shared passthrough baselines)', () => {
  const d = { rate: 10_000, connections: 50, path: '/small' };
  const plain = resolveLoad(undefined, d);
  assert.deepEqual(plain, { kind: 'closed', path: '/small', headers: [], wrkArgs: [], rate: 10_000, connections: 50, scheme: 'http' });
  // a closed loop ignores the rate, so two closed loads that differ only in rate are the same load
  assert.equal(loadKey(plain), loadKey(resolveLoad({ rate: 5 }, d)));
  assert.notEqual(loadKey(plain), loadKey(resolveLoad({ headers: ['X-Api-Key: a'] }, d)));
  assert.notEqual(loadKey(plain), loadKey(resolveLoad({ kind: 'open' }, d)));
});

test('parseOpenloopOutput takes the last JSON line and checks its shape', () => {
  const line =
    '{"rate":10000.000,"duration_s":2.000,"warmup_s":0.500,"connections":50,"scheduled":20000,"completed":19990,"errors":0,"non2xx":0,"unfinished":10,' +
    '"achieved_rps":9995.0,"latency_us":{"min":80.1,"mean":150.2,"p50":120.0,"p90":200.0,"p99":410.5,"p999":900.0,"max":1500.0}}';
  const o = parseOpenloopOutput(`warming up\n${line}\n`);
  assert.equal(o.completed, 19990);
  assert.equal(o.latency_us.p99, 410.5);
  assert.throws(() => parseOpenloopOutput('{"completed":1}'), /unexpected output/);
});
