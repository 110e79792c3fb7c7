import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryBackend } from '../../../plugins/caching/store/memory.ts';
import { entrySize, type StoredResponse } from '../../../plugins/caching/store/entry.ts';
import { Locks } from '../../../plugins/caching/coalesce.ts';
import { globToRegExp } from '../../../plugins/caching/glob.ts';

function entry(path: string, bytes: number, vary: string[] = [], variant = ''): StoredResponse {
  const primary = `GET a.test${path}`;
  return {
    key: variant ? `${primary}\n${variant}` : primary,
    primary,
    host: 'a.test',
    target: path,
    status: 200,
    headers: { 'content-type': 'text/plain' },
    body: Buffer.alloc(bytes, 97),
    vary,
    policy: { v: 1, t: 0, sh: true, ch: 0.1, imm: 0, st: 200, resh: {}, rescc: {}, m: 'GET', a: true, reqh: null, reqcc: {} },
    lifetime: 60,
    swr: 0,
    sie: 0,
  };
}

test('memory backend: byte budget with LRU eviction, evictions reported', () => {
  let evicted = 0;
  const one = entrySize(entry('/a', 1000));
  const m = new MemoryBackend(one * 3 + 10, { onEvict: (n) => (evicted += n) });
  for (const p of ['/a', '/b', '/c']) assert.equal(m.set(entry(p, 1000)), true);
  assert.equal(m.stats().entries, 3);
  m.get('GET a.test/a'); // /a is now the most recently used
  m.set(entry('/d', 1000));
  assert.equal(m.get('GET a.test/b'), undefined, 'least recently used goes first');
  assert.ok(m.get('GET a.test/a'));
  assert.equal(evicted, 1);
  assert.ok(m.stats().bytes <= one * 3 + 10);
});

test('memory backend: an entry over the budget is refused, not truncated', () => {
  const m = new MemoryBackend(5000);
  assert.equal(m.set(entry('/big', 6000)), false);
  assert.equal(m.get('GET a.test/big'), undefined);
  assert.equal(m.varyOf('GET a.test/big'), undefined);
  assert.equal(m.stats().entries, 0);
});

test('memory backend: variants, Vary change, purge exact and wildcard', () => {
  const m = new MemoryBackend(1 << 20);
  m.set(entry('/x', 10, ['accept-encoding'], 'gzip'));
  m.set(entry('/x', 10, ['accept-encoding'], 'br'));
  assert.deepEqual(m.varyOf('GET a.test/x'), ['accept-encoding']);
  assert.equal(m.stats().entries, 2);
  // the resource now varies on something else: the old variants are unreachable and dropped
  m.set(entry('/x', 10, ['accept-language'], 'en'));
  assert.equal(m.stats().entries, 1);
  assert.deepEqual(m.varyOf('GET a.test/x'), ['accept-language']);
  m.set(entry('/assets/a.js', 10));
  m.set(entry('/assets/b.js', 10));
  m.set(entry('/assets/sub/c.js', 10));
  assert.equal(m.purge((t) => t === '/assets/a.js'), 1);
  const re = globToRegExp('/assets/*');
  assert.equal(m.purge((t) => re.test(t)), 1);
  assert.equal(m.purge((t) => globToRegExp('/assets/**').test(t)), 1);
  assert.equal(m.stats().entries, 1);
  assert.equal(m.varyOf('GET a.test/assets/a.js'), undefined);
});

test('locks: one leader per key, waiters released or timed out', async () => {
  const locks = new Locks();
  const a = locks.claim('k');
  const b = locks.claim('k');
  const other = locks.claim('j');
  assert.equal(a.leader, true);
  assert.equal(b.leader, false);
  assert.equal(other.leader, true);
  if (b.leader || !a.leader) throw new Error('unreachable');
  const waiting = b.wait(5000);
  a.release();
  assert.equal(await waiting, true);
  assert.equal(locks.claim('k').leader, true, 'released: the next miss leads');
  const c = locks.claim('k');
  if (c.leader) throw new Error('k is held');
  assert.equal(await c.wait(10), false, 'timeout');
});
