import { test } from 'node:test';
import assert from 'node:assert/strict';
import { purgePattern, purgeRefusal } from '../../../src/builtins/handlers.ts';
import { appendCacheStatus, cacheStatusMember } from '../../../plugins/caching/cache-status.ts';

test('purgePattern: the path after the endpoint prefix, with the query', () => {
  const cases: [string, string, string[], string][] = [
    ['/admin/cache/purge/assets/app.js', '', ['/admin/cache/purge'], '/assets/app.js'],
    ['/admin/cache/purge/assets/app.js', 'v=2', ['/admin/cache/purge'], '/assets/app.js?v=2'],
    ['/admin/cache/purge', '', ['/admin/cache/purge'], '/'],
    ['/admin/cache/purge/x', '', ['/admin/cache/purge/'], '/x'],
    ['/cache/purge/x', '', ['/admin/cache/purge', '/cache/purge'], '/x'],
    ['/admin/cache/purgex', '', ['/admin/cache/purge'], '/admin/cache/purgex'],
    ['/p/*', '', [], '/p/*'],
  ];
  for (const [path, q, prefixes, want] of cases) assert.equal(purgePattern(path, q, prefixes), want, path);
});

test('purgeRefusal: no safe method, no other origin\'s page in a browser; tools without browser headers pass', () => {
  const host = '127.0.0.1:9090';
  const cases: [string, Record<string, string>, number | undefined][] = [
    ['POST', { host }, undefined],
    ['PURGE', { host }, undefined],
    ['DELETE', { host }, undefined],
    ['GET', { host }, 405],
    ['HEAD', { host }, 405],
    ['PUT', { host }, 405],
    ['POST', { host, 'sec-fetch-site': 'cross-site' }, 403],
    ['POST', { host, 'sec-fetch-site': 'same-site' }, 403],
    ['POST', { host, 'sec-fetch-site': 'same-origin', origin: `http://${host}` }, undefined],
    ['POST', { host, 'sec-fetch-site': 'none' }, undefined],
    ['POST', { host, origin: 'http://evil.example' }, 403],
    ['POST', { host, origin: 'null' }, 403],
    ['POST', { host, origin: 'not a url' }, 403],
    ['POST', { host, origin: 'http://127.0.0.1:9091' }, 403],
    ['POST', { host: 'Admin.Localhost:9090', origin: 'http://admin.localhost:9090' }, undefined],
    ['POST', { ':authority': host, origin: `https://${host}` }, undefined],
    ['POST', { origin: `http://${host}` }, 403],
  ];
  for (const [method, headers, want] of cases) assert.equal(purgeRefusal(method, headers)?.status, want, `${method} ${JSON.stringify(headers)}`);
});

test('Cache-Status members (RFC 9211) are appended after the upstream ones', () => {
  assert.equal(cacheStatusMember('sentinel', { hit: true, ttl: 41.6 }), 'sentinel; hit; ttl=42');
  assert.equal(cacheStatusMember('edge', { fwd: 'uri-miss', fwdStatus: 200, stored: true }), 'edge; fwd=uri-miss; fwd-status=200; stored');
  assert.equal(cacheStatusMember('s', { hit: true, ttl: -3, detail: 'stale-while-revalidate', collapsed: true }), 's; hit; ttl=-3; collapsed; detail=stale-while-revalidate');
  assert.equal(appendCacheStatus(undefined, 's; hit'), 's; hit');
  assert.equal(appendCacheStatus('origin-cdn; fwd=miss', 's; hit'), 'origin-cdn; fwd=miss, s; hit');
  assert.equal(appendCacheStatus(['a; hit', 'b; fwd=miss'], 's; hit'), 'a; hit, b; fwd=miss, s; hit');
});
