// The pure parts of `npm run bench:cache` (bench/lib/cache.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { nginxProxyCacheDirectives, originCacheLocations, parseStubStatusRequests, sentinelCacheConfig, zipfSequence, zipfTopShare } from '../../../bench/lib/cache.ts';
import { body, originNginxConf, SMALL_BYTES } from '../../../bench/lib/configs.ts';
import { renderPassthrough } from '../../../bench/lib/targets.ts';
import { loadConfigText } from '../../../src/config/load.ts';

const repoRoot = fileURLToPath(new URL('../../..', import.meta.url));
const passthrough = renderPassthrough(repoRoot, { listen: '127.0.0.1:4001', origin: '127.0.0.1:4000', metrics: '127.0.0.1:4003' });

test('the Sentinel cache configs (memory, disk) compile cleanly with the core loader', () => {
  const mem = loadConfigText(sentinelCacheConfig(passthrough, { backend: 'memory', memoryBytes: 64 << 20 }), { name: 'cache.kdl' });
  assert.deepEqual(mem.warnings, []);
  assert.equal(mem.cache.backend, 'memory');
  assert.equal(mem.cache.memoryBudget, 64 << 20);
  assert.ok(mem.routes.some((r) => r.builtin === 'cache-stats'));
  assert.ok(mem.routes.some((r) => r.cache?.enabled));
  const disk = loadConfigText(sentinelCacheConfig(passthrough, { backend: 'disk', memoryBytes: 1 << 20, diskPath: '/tmp/c', diskBytes: 5 << 20 }), { name: 'cache.kdl' });
  assert.deepEqual(disk.warnings, []);
  assert.deepEqual([disk.cache.backend, disk.cache.diskPath, disk.cache.diskMaxSize], ['disk', '/tmp/c', 5 << 20]);
});

test('origin locations and the nginx proxy_cache directives', () => {
  const origin = originNginxConf(4000, '/tmp/x', originCacheLocations('/tmp/x', body(SMALL_BYTES)));
  assert.match(origin, /location = \/c\/small \{ add_header Cache-Control "max-age=3600"; return 200 /);
  assert.match(origin, /location \/z\/ \{.*try_files \/large\.body =404; \}/);
  assert.match(origin, /location = \/_origin_status \{ stub_status; \}\n {2}\}\n\}/);
  const d = nginxProxyCacheDirectives('/tmp/x/nc', 64 << 20);
  assert.match(d.http, /proxy_cache_path \/tmp\/x\/nc .* max_size=65536k /);
  assert.match(d.location, /proxy_cache bench;/);
});

test('stub_status request counter', () => {
  assert.equal(parseStubStatusRequests('Active connections: 2 \nserver accepts handled requests\n 10 10 1234 \nReading: 0 Writing: 1 Waiting: 1 \n'), 1234);
  assert.throws(() => parseStubStatusRequests('<html>404</html>'));
});

test('Zipf: a seeded, repeatable sequence whose head holds the share the distribution says', () => {
  const seq = zipfSequence(1000, 1, 50_000, 7);
  assert.deepEqual(seq, zipfSequence(1000, 1, 50_000, 7), 'same seed, same requests');
  assert.notDeepEqual(seq.slice(0, 50), zipfSequence(1000, 1, 50, 8));
  assert.ok(seq.every((k) => Number.isInteger(k) && k >= 1 && k <= 1000));
  const head = seq.filter((k) => k <= 10).length / seq.length;
  assert.ok(Math.abs(head - zipfTopShare(1000, 1, 10)) < 0.01, `top-10 share ${head}`);
  assert.equal(zipfTopShare(10, 1, 10), 1);
  // H(10)/H(100) for s = 1
  const h = (n: number) => Array.from({ length: n }, (_, i) => 1 / (i + 1)).reduce((a, b) => a + b);
  assert.ok(Math.abs(zipfTopShare(100, 1, 10) - h(10) / h(100)) < 1e-12);
});
