// The HTTP cache through a real gateway, against a scripted origin on 127.0.0.1 that counts its hits.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'undici';
import { gatewayFrom } from '../../helpers/gateway.ts';
import { cacheConfig as config, get, scriptedOrigin, send, type Script } from './origin.ts';
import { until } from '../../helpers/until.ts';

const cleanup: (() => Promise<void>)[] = [];
after(async () => {
  for (const c of cleanup.reverse()) await c();
});

async function setup(scripts: Record<string, Script>, opts: { route?: string; top?: string } = {}) {
  const origin = await scriptedOrigin(scripts);
  const { gw, url } = await gatewayFrom(config(origin.up, opts));
  cleanup.push(async () => {
    await gw.close();
    await origin.up.close();
  });
  return { ...origin, gw, base: url() };
}

test('a fresh response is served from the cache: one origin hit, Cache-Status and Age', async () => {
  const { base, hits } = await setup({ '/a': (_q, r, n) => send(r, 200, { 'cache-control': 'max-age=60', etag: '"a1"' }, `a${n}`) });
  const first = await get(`${base}/a`);
  assert.equal(first.body, 'a1');
  assert.match(String(first.headers['cache-status']), /^sentinel; fwd=uri-miss; fwd-status=200; stored$/);
  const second = await get(`${base}/a`);
  assert.equal(second.body, 'a1');
  assert.match(String(second.headers['cache-status']), /^sentinel; hit; ttl=\d+$/);
  assert.equal(second.headers['content-length'], '2');
  assert.ok(Number(second.headers.age) >= 0);
  // equivalent spelling, ignored order of query params: same entry
  assert.equal((await get(`${base}/%61`)).body, 'a1');
  assert.equal(hits('/a'), 1);
  // HEAD from the stored GET: headers only, same length
  const head = await get(`${base}/a`, {}, 'HEAD');
  assert.equal(head.status, 200);
  assert.equal(head.body, '');
  assert.equal(head.headers['content-length'], '2');
  assert.equal(hits('/a'), 1);
});

test('Vary: one stored variant per Accept-Encoding value', async () => {
  const { base, hits } = await setup({
    '/v': (q, r, n) => send(r, 200, { 'cache-control': 'max-age=60', vary: 'Accept-Encoding' }, `${q.headers['accept-encoding'] ?? 'none'}-${n}`),
  });
  assert.equal((await get(`${base}/v`, { 'accept-encoding': 'gzip' })).body, 'gzip-1');
  assert.equal((await get(`${base}/v`, { 'accept-encoding': 'br' })).body, 'br-2');
  const miss = await get(`${base}/v`);
  assert.equal(miss.body, 'none-3');
  assert.match(String(miss.headers['cache-status']), /fwd=vary-miss/);
  assert.equal((await get(`${base}/v`, { 'accept-encoding': 'gzip' })).body, 'gzip-1');
  assert.equal((await get(`${base}/v`, { 'accept-encoding': 'br' })).body, 'br-2');
  assert.equal((await get(`${base}/v`)).body, 'none-3');
  assert.equal(hits('/v'), 3);
});

test('304 both ways: a conditional client request is answered from the cache; a stale entry is revalidated with the origin', async () => {
  const { base, hits } = await setup({
    '/c': (_q, r, n) => send(r, 200, { 'cache-control': 'max-age=60', etag: '"c1"', 'last-modified': 'Wed, 01 Jan 2025 00:00:00 GMT' }, `c${n}`),
    // no-cache: stored, but every use is revalidated with the origin
    '/r': (q, r, n) => {
      if (q.headers['if-none-match'] === '"r1"') {
        r.writeHead(304, { etag: '"r1"', 'cache-control': 'no-cache', 'x-refreshed': String(n) });
        r.end();
      } else send(r, 200, { 'cache-control': 'no-cache', etag: '"r1"', 'x-refreshed': '0' }, 'body-r');
    },
  });
  await get(`${base}/c`);
  const cond = await get(`${base}/c`, { 'if-none-match': 'W/"c1"' });
  assert.equal(cond.status, 304);
  assert.equal(cond.body, '');
  assert.equal(cond.headers.etag, '"c1"');
  const ims = await get(`${base}/c`, { 'if-modified-since': 'Thu, 02 Jan 2025 00:00:00 GMT' });
  assert.equal(ims.status, 304);
  const changed = await get(`${base}/c`, { 'if-none-match': '"other"' });
  assert.equal(changed.status, 200);
  assert.equal(changed.body, 'c1');
  assert.equal(hits('/c'), 1);

  assert.equal((await get(`${base}/r`)).body, 'body-r');
  const again = await get(`${base}/r`);
  assert.equal(again.status, 200);
  assert.equal(again.body, 'body-r', 'the stored body, refreshed by the 304');
  assert.equal(again.headers['x-refreshed'], '2', 'headers of the 304 replace the stored ones');
  assert.match(String(again.headers['cache-status']), /fwd=stale; fwd-status=304/);
  assert.equal(hits('/r'), 2);
});

test('100 concurrent misses for one key make one upstream request', async () => {
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const { base, hits } = await setup({
    '/slow': (_q, r, n) => void gate.then(() => send(r, 200, { 'cache-control': 'max-age=60' }, `slow${n}`)),
  });
  const pending = Promise.all(Array.from({ length: 100 }, () => get(`${base}/slow`)));
  // The origin answers once the other 99 wait for the first (bounded poll of cache-stats).
  let waits = 0;
  await until(() => `99 coalesced waits, have ${waits}`, async () => (waits = JSON.parse((await get(`${base}/admin/cache/stats`)).body).coalesced_waits) >= 99);
  assert.equal(waits, 99);
  release();
  const all = await pending;
  assert.equal(hits('/slow'), 1);
  for (const r of all) {
    assert.equal(r.status, 200);
    assert.equal(r.body, 'slow1');
  }
  assert.equal(all.filter((r) => /; hit; .*collapsed/.test(String(r.headers['cache-status']))).length, 99);
  const stats = JSON.parse((await get(`${base}/admin/cache/stats`)).body);
  assert.equal(stats.misses, 1);
  assert.equal(stats.hits, 99);
  const metrics = await (await request(`${base}/metrics`)).body.text();
  assert.match(metrics, /sentinel_cache_coalesced_waits_total\{outcome="hit"\} 99/);
});

test('stale-while-revalidate: stale copies are served while exactly one background request refreshes', async () => {
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const { base, hits } = await setup({
    // Age 5 > max-age 1: stored already stale, inside its 30 s stale-while-revalidate window
    '/swr': (_q, r, n) => {
      if (n === 1) return send(r, 200, { 'cache-control': 'max-age=1, stale-while-revalidate=30', age: '5' }, 'v1');
      void gate.then(() => send(r, 200, { 'cache-control': 'max-age=60' }, `v${n}`));
    },
  });
  assert.equal((await get(`${base}/swr`)).body, 'v1');
  const stale = await Promise.all(Array.from({ length: 20 }, () => get(`${base}/swr`)));
  for (const r of stale) {
    assert.equal(r.body, 'v1');
    assert.match(String(r.headers['cache-status']), /hit; ttl=-\d+; detail=stale-while-revalidate/);
  }
  assert.equal(hits('/swr'), 2, 'one refresh for 20 stale hits');
  release();
  await until('the refreshed copy', async () => (await get(`${base}/swr`)).body === 'v2');
  assert.equal(hits('/swr'), 2);
});

test('stale-if-error: a 5xx and an origin that is down get the stale copy', async () => {
  const { base, hits, up } = await setup(
    {
      '/e': (_q, r, n) => (n === 1 ? send(r, 200, { 'cache-control': 'max-age=1', age: '5' }, 'good') : send(r, 503, {}, 'broken')),
    },
    { route: 'stale-while-revalidate-secs 0; stale-if-error-secs 300' },
  );
  assert.equal((await get(`${base}/e`)).body, 'good');
  const on5xx = await get(`${base}/e`);
  assert.equal(on5xx.status, 200);
  assert.equal(on5xx.body, 'good');
  assert.match(String(on5xx.headers['cache-status']), /fwd=stale; fwd-status=503; .*detail=stale-if-error/);
  assert.equal(hits('/e'), 2);
  await up.close();
  const down = await get(`${base}/e`);
  assert.equal(down.status, 200);
  assert.equal(down.body, 'good');
  assert.match(String(down.headers['cache-status']), /detail=stale-if-error/);
});

test('not stored: Set-Cookie, private, no-store, Authorization; too large (client still gets every byte)', async () => {
  const big = 'x'.repeat(5000);
  const { base, hits } = await setup(
    {
      '/cookie': (_q, r) => send(r, 200, { 'cache-control': 'max-age=60', 'set-cookie': 'sid=1' }, 'c'),
      '/private': (_q, r) => send(r, 200, { 'cache-control': 'private, max-age=60' }, 'p'),
      '/nostore': (_q, r) => send(r, 200, { 'cache-control': 'no-store' }, 'n'),
      '/auth': (_q, r) => send(r, 200, { 'cache-control': 'max-age=60' }, 'a'),
      '/big': (_q, r) => send(r, 200, { 'cache-control': 'max-age=60' }, big),
      '/bigchunked': (_q, r) => {
        r.writeHead(200, { 'cache-control': 'max-age=60', 'content-type': 'text/plain' });
        r.write(big.slice(0, 2500));
        setTimeout(() => r.end(big.slice(2500)), 10);
      },
    },
    { route: 'max-size-bytes 4096' },
  );
  for (const p of ['/cookie', '/private', '/nostore', '/big', '/bigchunked']) {
    const a = await get(`${base}${p}`);
    const b = await get(`${base}${p}`);
    assert.equal(a.body, b.body);
    assert.equal(hits(p), 2, p);
  }
  assert.equal((await get(`${base}/big`)).body.length, 5000);
  assert.equal((await get(`${base}/bigchunked`)).body.length, 5000);
  await get(`${base}/auth`, { authorization: 'Bearer u1' });
  await get(`${base}/auth`, { authorization: 'Bearer u1' });
  assert.equal(hits('/auth'), 2);
});

test('PURGE is refused without auth (purge-allow, purge-token); the cache-purge builtin purges exact and wildcard', async () => {
  const { base, hits } = await setup(
    {
      '/p/one': (_q, r, n) => send(r, 200, { 'cache-control': 'max-age=60' }, `one${n}`),
      '/p/two': (_q, r, n) => send(r, 200, { 'cache-control': 'max-age=60' }, `two${n}`),
      '/q': (_q, r, n) => send(r, 200, { 'cache-control': 'max-age=60' }, `q${n}`),
    },
    { top: 'purge-allow "10.0.0.0/8"; purge-token "s3cret"' },
  );
  for (const p of ['/p/one', '/p/two', '/q']) await get(`${base}${p}`);
  const refused = await get(`${base}/p/one`, {}, 'PURGE');
  assert.equal(refused.status, 403);
  assert.equal((await get(`${base}/p/one`)).body, 'one1', 'still cached');
  const purged = await get(`${base}/p/one`, { authorization: 'Bearer s3cret' }, 'PURGE');
  assert.equal(purged.status, 200);
  assert.equal(JSON.parse(purged.body).purged_entries, 1);
  assert.equal((await get(`${base}/p/one`)).body, 'one2');
  // the builtin is an admin route: who may call it is the listener's / allow-from's business
  const wild = await get(`${base}/admin/cache/purge/p/*`, { 'x-purge-wildcard': 'true' }, 'PURGE');
  assert.equal(wild.status, 200);
  const wbody = JSON.parse(wild.body);
  assert.equal(wbody.purged_entries, 2);
  assert.equal(wbody.pattern, '/p/*');
  assert.equal((await get(`${base}/p/two`)).body, 'two2');
  assert.equal((await get(`${base}/q`)).body, 'q1', 'outside the pattern');
  assert.deepEqual([hits('/p/one'), hits('/p/two'), hits('/q')], [2, 2, 1]);
  const stats = JSON.parse((await get(`${base}/admin/cache/stats`)).body);
  assert.equal(stats.purges, 3);
  assert.ok(stats.hit_ratio > 0 && stats.hit_ratio < 1);
});

test('an unsafe method invalidates the stored response for its URL', async () => {
  const { base, hits } = await setup({
    '/item': (q, r, n) => (q.method === 'POST' ? send(r, 204, {}, '') : send(r, 200, { 'cache-control': 'max-age=60' }, `item${n}`)),
  });
  assert.equal((await get(`${base}/item`)).body, 'item1');
  assert.equal((await get(`${base}/item`)).body, 'item1');
  await get(`${base}/item`, {}, 'POST');
  assert.equal((await get(`${base}/item`)).body, 'item3');
  assert.equal(hits('/item'), 3);
});

test('the cache survives a reload that leaves its block unchanged', async () => {
  const { base, hits, gw, up } = await setup({ '/keep': (_q, r, n) => send(r, 200, { 'cache-control': 'max-age=60' }, `keep${n}`) });
  await get(`${base}/keep`);
  await gw.reload(config(up));
  assert.equal((await get(`${base}/keep`)).body, 'keep1');
  assert.equal(hits('/keep'), 1);
});

test('memory budget: filling the cache past max-size evicts the least recently used; the accounted size stays within the budget', async () => {
  const budget = 64 * 1024;
  const body = 'z'.repeat(8000);
  const scripts: Record<string, Script> = {};
  for (let i = 0; i < 40; i++) scripts[`/m${i}`] = (_q, r) => send(r, 200, { 'cache-control': 'max-age=600' }, body);
  const { base, hits } = await setup(scripts, { top: `max-size ${budget}` });
  const stats = async () => JSON.parse((await get(`${base}/admin/cache/stats`)).body) as { size_bytes: number; entries: number; evictions: number; stores: number };
  for (let i = 0; i < 40; i++) {
    assert.equal((await get(`${base}/m${i}`)).body.length, 8000);
    // stores complete after the response: wait for this one (bounded), then check the accounting
    let st = await stats();
    await until(`store ${i + 1}`, async () => (st = await stats()).stores >= i + 1, undefined, 10);
    assert.equal(st.stores, i + 1);
    assert.ok(st.size_bytes <= budget, `after ${i + 1} stores: ${st.size_bytes} > ${budget}`);
  }
  const st = await stats();
  // 40 x 8000 B bodies do not fit in 64 KiB: most were evicted; each entry is charged more than its body
  assert.ok(st.entries >= 3 && st.entries <= 7, `${st.entries} entries`);
  assert.equal(st.evictions, 40 - st.entries);
  assert.ok(st.size_bytes > st.entries * 8000, `${st.size_bytes} B for ${st.entries} entries of 8000 B`);
  const metrics = (await get(`${base}/metrics`)).body;
  assert.match(metrics, new RegExp(`sentinel_cache_evictions_total ${40 - st.entries}\\b`));
  assert.match(metrics, new RegExp(`sentinel_cache_size_bytes\\{tier="memory"\\} ${st.size_bytes}\\b`));
  // the most recent are hits, the first was evicted (fetched again)
  assert.match(String((await get(`${base}/m39`)).headers['cache-status']), /; hit/);
  assert.equal(hits('/m39'), 1);
  await get(`${base}/m0`);
  assert.equal(hits('/m0'), 2);
});

test('a fresh entry still defers to the request: Cache-Control no-cache / max-age, Pragma and Range go to the origin; a plain GET is a hit', async () => {
  const { base, hits } = await setup({
    '/q': (q, r, n) => {
      if (q.headers['if-none-match'] === '"q1"') {
        r.writeHead(304, { etag: '"q1"', 'cache-control': 'max-age=60' });
        r.end();
      } else send(r, 200, { 'cache-control': 'max-age=60', etag: '"q1"' }, `q${n}`);
    },
  });
  assert.equal((await get(`${base}/q`)).body, 'q1');
  const hit = await get(`${base}/q`);
  assert.match(String(hit.headers['cache-status']), /^sentinel; hit; ttl=\d+$/);
  assert.equal(hits('/q'), 1);
  // each of these must reach the origin (revalidation or bypass), never be answered as a plain hit
  let expected = 1;
  for (const headers of [{ 'cache-control': 'no-cache' }, { 'cache-control': 'max-age=0' }, { pragma: 'no-cache' }, { range: 'bytes=0-0' }] as Record<string, string>[]) {
    const r = await get(`${base}/q`, headers);
    expected++;
    assert.equal(hits('/q'), expected, JSON.stringify(headers));
    assert.doesNotMatch(String(r.headers['cache-status']), /; hit/, JSON.stringify(headers));
  }
  // only-if-cached with a fresh entry: answered from the cache
  const cached = await get(`${base}/q`, { 'cache-control': 'only-if-cached' });
  assert.equal(cached.status, 200);
  assert.equal(hits('/q'), expected);
});
