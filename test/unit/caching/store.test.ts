import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryBackend, SMALL_BODY_BYTES } from '../../../plugins/caching/store/memory.ts';
import { CHUNK_COST } from '../../../plugins/caching/store/arena.ts';
import { bodyLength, bodyParts, ENTRY_OVERHEAD_BYTES, entrySize, type Body, type EntryMeta, type StoredResponse } from '../../../plugins/caching/store/entry.ts';
import { Locks } from '../../../plugins/caching/coalesce.ts';
import { policyClass, storableHeaders, storeVerdict } from '../../../plugins/caching/policy.ts';
import { normaliseRouteCache } from '../../../plugins/caching/schema.ts';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
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

function meta(path: string, headers: Record<string, string> = { 'content-type': 'text/plain' }): EntryMeta {
  const { body: _body, ...m } = entry(path, 0);
  return { ...m, headers };
}

test('entrySize charges keys, headers, the policy object and a per-entry overhead, not only the body', () => {
  const plain = entry('/a', 1000);
  const base = entrySize(plain);
  assert.ok(base >= 1000 + ENTRY_OVERHEAD_BYTES + plain.key.length + 'content-type'.length + 'text/plain'.length);
  // the same body with more header bytes, a longer key, a stored Vary and request headers kept by the policy
  const heavy: StoredResponse = {
    ...entry(`/${'k'.repeat(500)}`, 1000, ['accept-encoding'], 'gzip'),
    headers: { 'content-type': 'text/plain', 'x-long': 'v'.repeat(2000) },
  };
  heavy.policy = { ...heavy.policy, resh: { 'x-other': 'w'.repeat(300) }, reqh: { 'accept-encoding': 'gzip' } };
  assert.ok(entrySize(heavy) >= base + 500 + 2000 + 300, `${entrySize(heavy)} vs ${base}`);
});

test('memory backend: a stored body owns exactly its bytes (no pooled slab or larger read buffer kept alive)', () => {
  const m = new MemoryBackend(1 << 20);
  const shared = Buffer.alloc(64 * 1024, 98);
  assert.equal(m.set({ ...entry('/view', 0), body: shared.subarray(100, 300) }), true);
  const stored = m.get('GET a.test/view')!;
  assert.ok(Buffer.isBuffer(stored.body), 'a small body is one Buffer of its own');
  assert.equal(stored.body.length, 200);
  assert.equal(stored.body.buffer.byteLength, 200);
  assert.equal(stored.body.toString(), 'b'.repeat(200));
});

test('memory backend: bodies being stored count against the budget; accounted bytes never pass it; evictions move', async () => {
  let evicted = 0;
  const budget = 64 * 1024;
  const m = new MemoryBackend(budget, { onEvict: (n) => (evicted += n) });
  // full: as many 5000-byte entries as fit
  assert.equal(m.set(entry('/old0', 5000)), true);
  const one = m.charged('GET a.test/old0')!;
  const n = Math.floor(budget / one);
  for (let i = 1; i < n; i++) assert.equal(m.set(entry(`/old${i}`, 5000)), true);
  assert.equal(evicted, 0);
  const full = m.accountedBytes;
  assert.ok(full <= budget && full > budget - one, `filled to ${full}`);
  // three bodies of 16 KiB stream in at once, 4 KiB at a time
  const writers = [0, 1, 2].map((i) => m.begin(meta(`/new${i}`)));
  const chunk = Buffer.alloc(4096, 99);
  let peak = 0;
  for (let round = 0; round < 4; round++) {
    for (const w of writers) {
      w.write(chunk);
      peak = Math.max(peak, m.accountedBytes);
      assert.ok(m.accountedBytes <= budget, `round ${round}: ${m.accountedBytes} > ${budget}`);
    }
  }
  // 48 KiB in flight leave room for at most 3 of the stored entries
  assert.ok(evicted >= n - 3 && evicted > 0, `the stored entries made room for the bodies in flight (evicted ${evicted} of ${n})`);
  assert.ok(peak >= 3 * 16 * 1024, `the bodies in flight were counted (peak ${peak})`);
  assert.deepEqual(await Promise.all(writers.map((w) => w.commit())), [true, true, true]);
  assert.ok(m.accountedBytes <= budget);
  for (const i of [0, 1, 2]) assert.ok(m.peek(`GET a.test/new${i}`), `new${i} stored`);
  assert.equal(bodyLength(m.get('GET a.test/new2')!.body), 4 * 4096);

  // bodies in flight that alone exceed the budget (4 x 20 KiB): the store that would pass it is
  // refused, the others still complete, and nothing stays reserved
  const big = [0, 1, 2, 3].map((i) => m.begin(meta(`/big${i}`)));
  for (let round = 0; round < 5; round++) {
    for (const w of big) {
      w.write(chunk);
      assert.ok(m.accountedBytes <= budget);
    }
  }
  const results = await Promise.all(big.map((w) => w.commit()));
  assert.ok(results.includes(false), 'a store that did not fit was refused');
  assert.ok(results.includes(true), 'the others were stored');
  assert.ok(m.accountedBytes <= budget);
  assert.equal(m.accountedBytes, m.stats().bytes, 'no reservation left behind');
  // an aborted write gives its reservation back
  const gone = m.begin(meta('/gone'));
  gone.write(chunk);
  gone.abort();
  assert.equal(await gone.commit(), false);
  assert.equal(m.accountedBytes, m.stats().bytes);
});

test('entrySize is at least what a stored entry really costs (heap + external memory, measured after GC)', () => {
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  const settings = normaliseRouteCache({ enabled: true }, 'r', []);
  const Policy = policyClass(Date.now);
  const used = () => {
    gc();
    gc();
    const u = process.memoryUsage();
    return u.heapUsed + u.external;
  };
  for (const bodyBytes of [20, 4096]) {
    const n = 5000;
    const m = new MemoryBackend(1 << 30);
    const before = used();
    let charged = 0;
    for (let i = 0; i < n; i++) {
      // an origin's response as the forwarder hands it over: header strings decoded from the wire
      const wire = ['Server', 'nginx', 'Date', new Date().toUTCString(), 'Content-Type', 'text/plain', 'Content-Length', String(bodyBytes), 'Last-Modified', 'Wed, 01 Jan 2025 00:00:00 GMT', 'ETag', `"${i.toString(16)}-${bodyBytes}"`, 'Cache-Control', 'max-age=3600', 'Accept-Ranges', 'bytes', 'Vary', 'Accept-Encoding'];
      const headers: Record<string, string> = {};
      for (let j = 0; j < wire.length; j += 2) headers[Buffer.from(wire[j]!).toString('latin1').toLowerCase()] = Buffer.from(wire[j + 1]!).toString('latin1');
      const req = { method: 'GET', url: `/z/${i}`, headers: { host: 'a.test', 'user-agent': 'test', accept: '*/*', 'accept-encoding': 'gzip' } };
      const v = storeVerdict(req, { status: 200, headers }, settings, Policy);
      if (!v.store) throw new Error(v.reason);
      const primary = `GET a.test/z/${i}`;
      const key = `${primary}\naccept-encoding: gzip`;
      assert.equal(m.set({ key, primary, host: 'a.test', target: `/z/${i}`, status: 200, headers: storableHeaders(headers), vary: v.vary, policy: v.policy, lifetime: v.lifetime, swr: v.swr, sie: v.sie, body: Buffer.alloc(bodyBytes, 97) }), true);
      charged += m.charged(key)!;
    }
    const real = (used() - before) / n;
    assert.equal(m.stats().entries, n);
    assert.ok(charged / n >= real, `${bodyBytes} B bodies: charged ${(charged / n).toFixed(0)} B per entry, really ${real.toFixed(0)} B`);
    m.clear();
  }
});

/** A body whose bytes say which entry and which position they are (to detect reuse). */
function pattern(id: number, bytes: number): Buffer {
  const b = Buffer.alloc(bytes);
  for (let i = 0; i < bytes; i++) b[i] = (id * 31 + i * 7 + (i >> 8)) & 0xff;
  return b;
}

test('memory backend arena: the budget holds counting arena chunks; held bodies survive eviction and reuse; chunks come back', async () => {
  const budget = 256 * 1024;
  const m = new MemoryBackend(budget);
  const check = (when: string) => {
    assert.ok(m.accountedBytes <= budget, `${when}: accounted ${m.accountedBytes} > ${budget}`);
    assert.ok(m.arena.inUse * CHUNK_COST <= m.accountedBytes, `${when}: chunks in use ${m.arena.inUse} not all accounted (${m.accountedBytes})`);
    assert.ok(m.arena.slabBytes <= budget, `${when}: arena ${m.arena.slabBytes} > ${budget}`);
  };
  const sizes = [0, 100, 2047, 2048, 3000, 4096, 4097, 9000, 16384, 40000, 70000];
  const held: { id: number; body: Buffer; parts: Body; release: () => void }[] = [];
  let seed = 7;
  const rnd = (n: number) => (seed = (seed * 1103515245 + 12345) % 2147483648) % n;
  for (let id = 0; id < 400; id++) {
    const bytes = sizes[rnd(sizes.length)]!;
    const body = pattern(id, bytes);
    if (id % 3 === 0) assert.equal(m.set({ ...entry(`/e${id}`, 0), body }), true);
    else {
      // streamed in uneven pieces, two writers interleaved
      const w = m.begin(meta(`/e${id}`));
      const other = m.begin(meta(`/x${id}`));
      for (let at = 0; at < bytes; at += 1500) {
        w.write(body.subarray(at, at + 1500));
        other.write(body.subarray(at, at + 700));
        check(`writing ${id}`);
      }
      if (id % 5 === 0) other.abort();
      else await other.commit();
      await w.commit();
    }
    check(`stored ${id}`);
    const e = m.peek(`GET a.test/e${id}`);
    if (e) {
      assert.ok(Buffer.concat(bodyParts(e.body)).equals(body), `entry ${id} (${bytes} B) reads back`);
      assert.equal(e.lease !== undefined, bytes >= SMALL_BODY_BYTES, `${bytes} B: arena body iff not small`);
      // some bodies are held as if a slow client were reading them, released later
      if (e.lease && rnd(4) === 0) held.push({ id, body, parts: e.body, release: e.lease.hold() });
    }
    if (held.length > 2) {
      const h = held.shift()!;
      assert.ok(Buffer.concat(bodyParts(h.parts)).equals(h.body), `held body ${h.id} intact after eviction and reuse`);
      h.release();
      check(`released ${h.id}`);
    }
  }
  for (const h of held) {
    assert.ok(Buffer.concat(bodyParts(h.parts)).equals(h.body), `held body ${h.id} intact`);
    h.release();
  }
  check('end');
  // nothing lingers once every reader is done: the chunks in use are the stored entries'
  assert.equal(m.accountedBytes, m.stats().bytes);
  // over the budget: refused, and every chunk it took is back
  const inUse = m.arena.inUse;
  const big = m.begin(meta('/big'));
  for (let i = 0; i < 80; i++) big.write(pattern(9, 4096));
  assert.equal(await big.commit(), false);
  assert.equal(m.peek('GET a.test/big'), undefined);
  assert.ok(m.arena.inUse <= inUse, 'the refused body gave its chunks back');
  assert.equal(m.accountedBytes, m.stats().bytes);
  m.clear();
  assert.equal(m.arena.inUse, 0);
});

test('memory backend arena: an evicted body that is held lingers (counted) and its chunks go back on the last release', () => {
  const m = new MemoryBackend(64 * 1024);
  assert.equal(m.set({ ...entry('/a', 0), body: pattern(1, 20000) }), true);
  const a = m.peek('GET a.test/a')!;
  const r1 = a.lease!.hold();
  const r2 = a.lease!.hold();
  const charged = m.charged('GET a.test/a')!;
  m.delete('GET a.test/a');
  assert.equal(m.stats().entries, 0);
  assert.ok(m.accountedBytes > 0 && m.accountedBytes < charged, `lingering chunks still count: ${m.accountedBytes}`);
  const lingering = m.arena.inUse;
  assert.equal(lingering, 5);
  // the rest of the budget still takes new bodies; none of them reuses the held chunks
  for (let i = 0; i < 20; i++) m.set({ ...entry(`/b${i}`, 0), body: pattern(100 + i, 9000) });
  assert.ok(Buffer.concat(bodyParts(a.body)).equals(pattern(1, 20000)));
  r1();
  assert.ok(Buffer.concat(bodyParts(a.body)).equals(pattern(1, 20000)), 'one reader left');
  const before = m.arena.inUse;
  r2();
  assert.equal(m.arena.inUse, before - 5, 'the last release gives the chunks back');
  assert.equal(m.accountedBytes, m.stats().bytes);
});

test('memory backend arena: a body is one run (one Buffer to write) when the arena has room for it in one piece', async () => {
  const m = new MemoryBackend(8 * 1024 * 1024);
  // announced size (Content-Length), streamed in pieces
  const w = m.begin(meta('/known'), 16384);
  for (let at = 0; at < 16384; at += 1000) w.write(pattern(1, 16384).subarray(at, at + 1000));
  assert.equal(await w.commit(), true);
  const known = m.peek('GET a.test/known')!.body;
  assert.ok(Buffer.isBuffer(known) && known.equals(pattern(1, 16384)));
  // not announced: the run grows while the chunk after it is free
  const u = m.begin(meta('/unknown'));
  for (let at = 0; at < 30000; at += 1000) u.write(pattern(2, 30000).subarray(at, at + 1000));
  assert.equal(await u.commit(), true);
  assert.ok(Buffer.isBuffer(m.peek('GET a.test/unknown')!.body));
  // a whole entry; a body shorter than announced gives the rest of its run back
  assert.equal(m.set({ ...entry('/set', 0), body: pattern(3, 20000) }), true);
  assert.ok(Buffer.isBuffer(m.peek('GET a.test/set')!.body));
  const inUse = m.arena.inUse;
  const short = m.begin(meta('/short'), 40000);
  short.write(pattern(4, 5000));
  assert.equal(await short.commit(), true);
  assert.equal(m.arena.inUse, inUse + 2, 'the 5000 B body kept 2 of the 10 chunks taken for 40000');
  // larger than a slab: several runs, in order
  const big = pattern(5, 1536 * 1024);
  assert.equal(m.set({ ...entry('/big', 0), body: big }), true);
  const parts = m.peek('GET a.test/big')!.body;
  assert.ok(!Buffer.isBuffer(parts) && parts.length >= 2);
  assert.ok(Buffer.concat(bodyParts(parts)).equals(big));
});
