// The disk and hybrid backends against a temp directory: file format, restart, budget, broken files, purge.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync, writeFileSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DiskBackend, decodeEntry, decodeMeta, encodeTrailer, fileHash, TRAILER_BYTES } from '../../../plugins/caching/store/disk.ts';
import { HybridBackend } from '../../../plugins/caching/store/hybrid.ts';
import { MemoryBackend } from '../../../plugins/caching/store/memory.ts';
import { entrySize, type StoredResponse } from '../../../plugins/caching/store/entry.ts';
import { until } from '../../helpers/until.ts';

const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});
function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'cache-disk-'));
  dirs.push(d);
  return d;
}

function entry(path: string, body: string | number, vary: string[] = [], variant = ''): StoredResponse & { body: Buffer } {
  const primary = `GET a.test${path}`;
  return {
    key: variant ? `${primary}\n${variant}` : primary,
    primary,
    host: 'a.test',
    target: path,
    status: 200,
    headers: { 'content-type': 'text/plain', 'x-multi': ['1', '2'] },
    body: typeof body === 'number' ? Buffer.alloc(body, 97) : Buffer.from(body),
    vary,
    policy: { v: 1, t: 1000, sh: true, ch: 0.1, imm: 0, st: 200, resh: {}, rescc: {}, m: 'GET', a: true, reqh: null, reqcc: {} },
    lifetime: 60,
    swr: 0,
    sie: 0,
  };
}

/** every file under the shard directories */
function entryFiles(root: string): string[] {
  const out: string[] = [];
  for (const d of readdirSync(root)) if (d !== 'tmp') for (const f of readdirSync(join(root, d))) out.push(join(root, d, f));
  return out;
}

test('entry file format: body, metadata, trailer; broken files are rejected', () => {
  const e = entry('/f', 'hello body');
  const file = Buffer.concat([e.body, encodeTrailer(e, e.body.length, 5)]);
  const back = decodeEntry(file)!;
  assert.equal(back.body.toString(), 'hello body');
  assert.deepEqual({ ...back, body: undefined }, { ...e, body: undefined });
  const cases: [string, Buffer][] = [
    ['truncated body', Buffer.concat([e.body.subarray(1), encodeTrailer(e, e.body.length, 5)])],
    ['no trailer', e.body],
    ['cut in the trailer', file.subarray(0, file.length - 3)],
    ['bad magic', Buffer.concat([file.subarray(0, file.length - 1), Buffer.from('X')])],
    ['empty', Buffer.alloc(0)],
    ['metadata not JSON', (() => { const b = Buffer.from(file); b[e.body.length] = 0x7b + 1; return b; })()],
  ];
  for (const [name, buf] of cases) assert.equal(decodeEntry(buf), undefined, name);
  assert.equal(decodeMeta(file.subarray(file.length - TRAILER_BYTES), file.length), undefined, 'trailer alone does not hold the metadata');
});

test('disk backend: stored, read back, survives a restart (index rebuilt from the files)', async () => {
  const root = tempDir();
  const a = new DiskBackend({ root, shards: 4, maxBytes: 1 << 20 });
  assert.equal(await a.set(entry('/one', 'first')), true);
  assert.equal(await a.set(entry('/v', 'gz', ['accept-encoding'], 'gzip')), true);
  assert.equal((await a.get('GET a.test/one'))!.body.toString(), 'first');
  assert.deepEqual(await a.varyOf('GET a.test/v'), ['accept-encoding']);
  await a.close();
  assert.equal(entryFiles(root).length, 2);
  const b = new DiskBackend({ root, shards: 4, maxBytes: 1 << 20 });
  await b.ready;
  assert.deepEqual(b.scanReport, { indexed: 2, removed: 0, overBudget: 0 });
  const one = (await b.get('GET a.test/one'))!;
  assert.equal(one.body.toString(), 'first');
  assert.deepEqual(one.headers['x-multi'], ['1', '2']);
  assert.equal(one.policy.t, 1000);
  assert.deepEqual(await b.varyOf('GET a.test/v'), ['accept-encoding']);
  assert.equal((await b.get('GET a.test/v\ngzip'))!.body.toString(), 'gz');
  assert.equal(b.stats().entries, 2);
  await b.close();
});

test('disk backend: broken files and unfinished writes are removed at startup, good ones kept', async () => {
  const root = tempDir();
  const a = new DiskBackend({ root, shards: 2, maxBytes: 1 << 20 });
  await a.set(entry('/good', 'good'));
  await a.set(entry('/cut', 'x'.repeat(100)));
  await a.close();
  const cutFile = entryFiles(root).find((f) => f.includes(fileHash('GET a.test/cut')))!;
  writeFileSync(cutFile, readFileSync(cutFile).subarray(0, 60)); // a partial file
  writeFileSync(join(root, '00', `${'0'.repeat(64)}.entry`), 'garbage');
  writeFileSync(join(root, 'tmp', 'abc.1.ff.tmp'), 'half a body');
  const b = new DiskBackend({ root, shards: 2, maxBytes: 1 << 20 });
  await b.ready;
  assert.equal(b.scanReport.indexed, 1);
  assert.equal(b.scanReport.removed, 2);
  assert.equal(entryFiles(root).length, 1);
  assert.deepEqual(readdirSync(join(root, 'tmp')), []);
  assert.equal(await b.get('GET a.test/cut'), undefined);
  assert.equal((await b.get('GET a.test/good'))!.body.toString(), 'good');
  await b.close();
});

test('disk backend: byte budget with LRU eviction across shards (files removed)', async () => {
  const root = tempDir();
  let evicted = 0;
  const size = (p: string) => { const e = entry(p, 1000); return e.body.length + encodeTrailer(e, 1000, Date.now()).length; };
  const budget = size('/a') * 3 + 10;
  const d = new DiskBackend({ root, shards: 8, maxBytes: budget, events: { onEvict: (n) => (evicted += n) } });
  for (const p of ['/a', '/b', '/c']) assert.equal(await d.set(entry(p, 1000)), true);
  await d.get('GET a.test/a');
  await d.set(entry('/d', 1000));
  assert.equal(await d.get('GET a.test/b'), undefined, 'least recently used goes first');
  assert.ok(await d.get('GET a.test/a'));
  assert.equal(evicted, 1);
  assert.equal(entryFiles(root).length, 3);
  const total = entryFiles(root).reduce((n, f) => n + statSync(f).size, 0);
  assert.ok(total <= budget);
  assert.equal(d.stats().bytes, total);
  assert.equal(await d.set(entry('/huge', budget)), false, 'over the whole budget: refused');
  assert.equal(entryFiles(root).length, 3);
  await d.close();
});

test('disk backend: an aborted write leaves nothing; a Vary change drops old variants; purge removes files', async () => {
  const root = tempDir();
  const d = new DiskBackend({ root, shards: 4, maxBytes: 1 << 20 });
  await d.ready;
  const w = d.begin(entry('/aborted', ''));
  w.write(Buffer.from('part of a body'));
  await until('the temporary file', () => readdirSync(join(root, 'tmp')).length > 0);
  w.abort();
  await until('the temporary file removed', () => readdirSync(join(root, 'tmp')).length === 0);
  assert.equal(entryFiles(root).length, 0);
  assert.equal(await d.get('GET a.test/aborted'), undefined);

  await d.set(entry('/x', 'g', ['accept-encoding'], 'gzip'));
  await d.set(entry('/x', 'b', ['accept-encoding'], 'br'));
  await d.set(entry('/x', 'e', ['accept-language'], 'en'));
  assert.equal(d.stats().entries, 1);
  assert.equal(entryFiles(root).length, 1);
  for (const p of ['/assets/a.js', '/assets/b.js']) await d.set(entry(p, 'js'));
  assert.equal(await d.purge((t) => t.startsWith('/assets/')), 2);
  assert.equal(entryFiles(root).length, 1);
  assert.equal(d.stats().entries, 1);
  await d.close();
});

test('hybrid backend: memory in front of disk, a disk hit is promoted, purge covers both tiers', async () => {
  const root = tempDir();
  const one = (p: string) => entry(p, 1000);
  const mem = new MemoryBackend(2 * entrySize(one('/a')) + 100); // two entries fit in memory
  const h = new HybridBackend(mem, new DiskBackend({ root, shards: 4, maxBytes: 1 << 20 }));
  for (const p of ['/a', '/b', '/c']) assert.equal(await h.set(one(p)), true);
  assert.equal(mem.peek('GET a.test/a'), undefined, 'evicted from memory');
  assert.deepEqual(h.tiers(), { memory: mem.stats(), disk: h.disk.stats() });
  assert.equal(h.disk.stats().entries, 3);
  assert.ok((await h.get('GET a.test/a'))!.body.length === 1000, 'read from disk');
  assert.ok(mem.peek('GET a.test/a'), 'promoted');
  assert.equal(h.stats().entries, 3);
  assert.equal(await h.purge(() => true), 3);
  assert.equal(mem.stats().entries, 0);
  assert.equal(h.disk.stats().entries, 0);
  assert.equal(entryFiles(root).length, 0);
  await h.close();
});
