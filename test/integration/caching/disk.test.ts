// The disk and hybrid cache backends through a real gateway, against a scripted origin that counts
// its hits: restart, reload, disk budget, over-limit and aborted bodies, broken files, hybrid
// promotion and purge on both tiers; and hit-for-pass (no serialisation on uncacheable URLs).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync, statSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gatewayFrom } from '../../helpers/gateway.ts';
import { cacheConfig, get as getWithPortHost, scriptedOrigin, send, type Script } from './origin.ts';
import { turningTimeout, until, UNTIL_MS } from '../../helpers/until.ts';

// One Host for every gateway: the Host's port is part of the key (a `Host: x:1337` answer is not the
// default port's), and a restarted gateway listens on another ephemeral port
const get = (url: string, headers: Record<string, string> = {}, method = 'GET') => getWithPortHost(url, { host: 'localhost', ...headers }, method);

const cleanup: (() => Promise<void> | void)[] = [];
after(async () => {
  for (const c of cleanup.reverse()) await c();
});

function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'sentinel-cache-'));
  cleanup.push(() => rmSync(d, { recursive: true, force: true }));
  return d;
}

/** entry files in the shard directories (not tmp/) */
function entryFiles(root: string): string[] {
  const out: string[] = [];
  for (const d of readdirSync(root)) if (d !== 'tmp') for (const f of readdirSync(join(root, d))) out.push(join(root, d, f));
  return out;
}

/** the entry file of a stored path (its metadata names the target) */
function fileFor(root: string, target: string): string | undefined {
  return entryFiles(root).find((f) => readFileSync(f).includes(`"target":${JSON.stringify(target)}`));
}

/** Stores finish after the response (the file is renamed once complete): poll, bounded. */
async function origin(scripts: Record<string, Script>) {
  const o = await scriptedOrigin(scripts);
  cleanup.push(() => o.up.close());
  return o;
}

async function gateway(kdl: string) {
  const { gw, url } = await gatewayFrom(kdl);
  let closed = false;
  const close = async () => {
    if (closed) return;
    closed = true;
    await gw.close();
  };
  cleanup.push(close);
  return { gw, base: url(), close };
}

async function stats(base: string) {
  return JSON.parse((await get(`${base}/admin/cache/stats`)).body) as { entries: number; size_bytes: number; backend: string; tiers: Record<string, { entries: number; bytes: number }> };
}

const fresh = (tag: string): Script => (_q, r, n) => send(r, 200, { 'cache-control': 'max-age=600', etag: `"${tag}${n}"` }, `${tag}${n}`);

test('disk: entries are served after a gateway restart and after reloads (origin hit count unchanged)', async () => {
  const dir = tempDir();
  const o = await origin({ '/a': fresh('a'), '/b': fresh('b') });
  const kdl = cacheConfig(o.up, { top: `backend "disk"; disk-path "${dir}"; disk-shards 4` });
  const first = await gateway(kdl);
  assert.equal((await get(`${first.base}/a`)).body, 'a1');
  assert.equal((await get(`${first.base}/b`)).body, 'b1');
  await until('two files', () => entryFiles(dir).length === 2);
  const hit = await get(`${first.base}/a`);
  assert.match(String(hit.headers['cache-status']), /^sentinel; hit/);
  assert.equal((await stats(first.base)).backend, 'disk');
  await first.close();
  assert.equal(entryFiles(dir).length, 2);

  const second = await gateway(kdl);
  const after = await get(`${second.base}/a`);
  assert.equal(after.body, 'a1');
  assert.equal(after.headers.etag, '"a1"');
  assert.match(String(after.headers['cache-status']), /^sentinel; hit; ttl=\d+$/);
  assert.equal((await get(`${second.base}/b`)).body, 'b1');
  assert.deepEqual([o.hits('/a'), o.hits('/b')], [1, 1]);
  assert.equal((await stats(second.base)).entries, 2);

  // a reload with the block unchanged keeps the same store
  await second.gw.reload(kdl);
  assert.equal((await get(`${second.base}/a`)).body, 'a1');
  // a reload that changes the storage settings opens a new store on the same directory: rebuilt from the files
  await second.gw.reload(cacheConfig(o.up, { top: `backend "disk"; disk-path "${dir}"; disk-shards 4; disk-max-size "20MiB"` }));
  assert.equal((await get(`${second.base}/b`)).body, 'b1');
  assert.deepEqual([o.hits('/a'), o.hits('/b')], [1, 1]);
});

test('disk: the disk-max-size budget evicts the least recently used entries (files removed)', async () => {
  const dir = tempDir();
  const body = 'x'.repeat(4000);
  const o = await origin({ '/e1': (_q, r) => send(r, 200, { 'cache-control': 'max-age=600' }, body), '/e2': (_q, r) => send(r, 200, { 'cache-control': 'max-age=600' }, body), '/e3': (_q, r) => send(r, 200, { 'cache-control': 'max-age=600' }, body) });
  // each file is the 4000 B body + ~1 KiB of metadata: two fit in 12000 B, three do not
  const { base } = await gateway(cacheConfig(o.up, { top: `backend "disk"; disk-path "${dir}"; disk-max-size 12000` }));
  await get(`${base}/e1`);
  await get(`${base}/e2`);
  await until('e1 and e2 stored', () => entryFiles(dir).length === 2);
  await get(`${base}/e1`); // e2 is now the least recently used
  await get(`${base}/e3`);
  await until('e3 stored, e2 evicted', () => fileFor(dir, '/e3') !== undefined && fileFor(dir, '/e2') === undefined);
  const files = entryFiles(dir);
  assert.equal(files.length, 2);
  assert.ok(files.reduce((n, f) => n + statSync(f).size, 0) <= 12000);
  assert.equal((await get(`${base}/e1`)).body.length, 4000);
  assert.equal((await get(`${base}/e3`)).body.length, 4000);
  assert.deepEqual([o.hits('/e1'), o.hits('/e3')], [1, 1]);
  await get(`${base}/e2`);
  assert.equal(o.hits('/e2'), 2, 'evicted: fetched again');
  const m = await (await get(`${base}/metrics`)).body;
  assert.match(m, /sentinel_cache_evictions_total \d+/);
  assert.match(m, /sentinel_cache_entries\{tier="disk"\} 2/);
});

test('disk: an entry over max-size-bytes is dropped (no file), and an aborted body leaves nothing', async () => {
  const dir = tempDir();
  const big = 'y'.repeat(6000);
  const o = await origin({
    '/big': (_q, r) => {
      r.writeHead(200, { 'cache-control': 'max-age=600', 'content-type': 'text/plain' });
      r.write(big.slice(0, 3000));
      setTimeout(() => r.end(big.slice(3000)), 20);
    },
    '/cut': (_q, r) => {
      r.writeHead(200, { 'cache-control': 'max-age=600', 'content-type': 'text/plain', 'content-length': '4000' });
      r.write('z'.repeat(1500));
      // the origin dies mid-body
      setTimeout(() => r.socket?.destroy(), 30);
    },
  });
  const { base } = await gateway(cacheConfig(o.up, { top: `backend "disk"; disk-path "${dir}"`, route: 'max-size-bytes 4096' }));
  assert.equal((await get(`${base}/big`)).body.length, 6000, 'the client gets every byte');
  await assert.rejects(get(`${base}/cut`));
  // the store notices the cut after the client does: wait for it to count the abort
  await until('the aborted store', async () => /sentinel_cache_dropped_total\{reason="aborted"\} 1/.test(await (await get(`${base}/metrics`)).body));
  assert.deepEqual(entryFiles(dir), []);
  // the abort unlinks its tmp file once the stream has let go of the fd: after the count, not with it
  // (ci23a, load ~37: the file was still there when the count was read)
  await until(() => `the aborted tmp file removed (left: ${readdirSync(join(dir, 'tmp')).join(', ')})`, () => readdirSync(join(dir, 'tmp')).length === 0);
  await get(`${base}/big`);
  assert.equal(o.hits('/big'), 2);
  const m = await (await get(`${base}/metrics`)).body;
  assert.match(m, /sentinel_cache_dropped_total\{reason="too-large"\} [1-9]/);
  assert.match(m, /sentinel_cache_dropped_total\{reason="aborted"\} 1/);
});

test('disk: a broken entry file is ignored and removed at startup; the others are served', async () => {
  const dir = tempDir();
  const o = await origin({ '/ok': fresh('ok'), '/bad': fresh('bad') });
  const kdl = cacheConfig(o.up, { top: `backend "disk"; disk-path "${dir}"` });
  const first = await gateway(kdl);
  await get(`${first.base}/ok`);
  await get(`${first.base}/bad`);
  await until('two files', () => entryFiles(dir).length === 2);
  await first.close();
  const bad = fileFor(dir, '/bad');
  assert.ok(bad);
  writeFileSync(bad, readFileSync(bad).subarray(0, 20)); // cut short, as after a crash
  const second = await gateway(kdl);
  assert.equal((await get(`${second.base}/ok`)).body, 'ok1');
  assert.equal((await get(`${second.base}/bad`)).body, 'bad2');
  assert.deepEqual([o.hits('/ok'), o.hits('/bad')], [1, 2]);
  await until('stored again', () => entryFiles(dir).length === 2);
});

test('hybrid: memory in front of disk; a disk hit is promoted; purge covers both tiers', async () => {
  const dir = tempDir();
  const body = (t: string) => t.repeat(3000);
  const o = await origin({
    '/h1': (_q, r) => send(r, 200, { 'cache-control': 'max-age=600' }, body('1')),
    '/h2': (_q, r) => send(r, 200, { 'cache-control': 'max-age=600' }, body('2')),
  });
  // the memory tier holds one entry (3000 B body + headers + the per-entry overhead), the disk both
  const { base } = await gateway(cacheConfig(o.up, { top: `backend "hybrid"; max-size 7000; disk-path "${dir}"` }));
  await get(`${base}/h1`);
  await get(`${base}/h2`);
  await until('both on disk', () => entryFiles(dir).length === 2);
  let s = await stats(base);
  assert.equal(s.backend, 'hybrid');
  assert.deepEqual([s.tiers.memory!.entries, s.tiers.disk!.entries], [1, 2]);
  // h1 only on disk now: served from there and promoted into memory
  const h1 = await get(`${base}/h1`);
  assert.equal(h1.body, body('1'));
  assert.match(String(h1.headers['cache-status']), /^sentinel; hit/);
  // the promoted copy answers even with the file gone
  rmSync(fileFor(dir, '/h1')!);
  assert.equal((await get(`${base}/h1`)).body, body('1'));
  assert.deepEqual([o.hits('/h1'), o.hits('/h2')], [1, 1]);
  // PURGE removes the entry from both tiers
  await get(`${base}/h2`); // promote h2 (h1 demoted)
  const purged = await get(`${base}/h2`, {}, 'PURGE');
  assert.equal(JSON.parse(purged.body).purged_entries, 1);
  assert.equal(fileFor(dir, '/h2'), undefined);
  assert.equal((await get(`${base}/h2`)).body, body('2'));
  await until('h2 stored again', () => fileFor(dir, '/h2') !== undefined);
  assert.equal(o.hits('/h2'), 2);
  // wildcard purge through the builtin, both tiers
  const wild = await get(`${base}/admin/cache/purge/h*`, { 'x-purge-wildcard': 'true' }, 'PURGE');
  assert.equal(wild.status, 200);
  assert.deepEqual(entryFiles(dir), []);
  s = await stats(base);
  assert.deepEqual([s.tiers.memory!.entries, s.tiers.disk!.entries], [0, 0]);
});

test('hit-for-pass: concurrent requests to an uncacheable URL all reach the origin at once', async () => {
  const N = 10;
  let inFlight = 0;
  let maxInFlight = 0;
  const waiting: (() => void)[] = [];
  const o = await origin({
    // answers only once N requests are in flight together (or after 3 s, so a failure cannot hang)
    '/private': (_q, r, n) => {
      inFlight++;
      maxInFlight = Math.max(maxInFlight, inFlight);
      const answer = () => {
        inFlight--;
        send(r, 200, { 'cache-control': 'private, max-age=60' }, `p${n}`);
      };
      if (n === 1) return answer();
      waiting.push(answer);
      if (waiting.length === N) for (const w of waiting.splice(0)) w();
      // a fallback against a hang only, in event-loop time (the gateway runs in this process): a
      // loaded machine slow to bring all N in must not answer one early and break the count
      else turningTimeout(UNTIL_MS, () => waiting.includes(answer) && (waiting.splice(waiting.indexOf(answer), 1), answer()));
    },
  });
  const { base } = await gateway(cacheConfig(o.up, { top: 'lock-timeout 10' }));
  const first = await get(`${base}/private`);
  assert.match(String(first.headers['cache-status']), /fwd=uri-miss; fwd-status=200$/);
  const all = await Promise.all(Array.from({ length: N }, () => get(`${base}/private`)));
  assert.equal(maxInFlight, N, 'not serialised behind the coalescing lock');
  for (const r of all) {
    assert.equal(r.status, 200);
    assert.match(String(r.headers['cache-status']), /detail=hit-for-pass/);
  }
  assert.equal(o.hits('/private'), N + 1);
  const s = JSON.parse((await get(`${base}/admin/cache/stats`)).body);
  assert.equal(s.coalesced_waits, 0);
});

test('disk: a disk-path that cannot be created fails the start with a clear error', async () => {
  const o = await origin({});
  const file = join(tempDir(), 'a-file');
  writeFileSync(file, '');
  await assert.rejects(gatewayFrom(cacheConfig(o.up, { top: `backend "disk"; disk-path "${file}/cache"` })), /cache disk-path ".*a-file\/cache": ENOTDIR/);
});
