import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import type { ClockCache } from '../../../src/waf/clock-cache.ts';
import { RegexPrefilter } from '../../../src/waf/regex/prefilter.ts';
import { currentTransaction } from '../../../src/waf/seen-before.ts';

const SOURCES = ['abc', '^x', 'y+z', '[0-9]{3}$'];

function built(): { pf: RegexPrefilter; idx: number[]; res: RegExp[] } {
  const pf = new RegexPrefilter();
  const idx = SOURCES.map((s) => pf.register(s, 'ARGS'));
  pf.build();
  return { pf, idx, res: SOURCES.map((s) => new RegExp(s, 'ms')) };
}

describe('regex prefilter: one-off values', () => {
  it('answers every one-off value right after the recent list recycles its arrays', () => {
    const { pf, idx, res } = built();
    // Far more one-off values than the recent list holds, alternating hits and misses, so a
    // recycled answer array carrying an earlier value's bits would show.
    for (let n = 0; n < 500; n++) {
      currentTransaction.serial = 10_000 + n;
      const value = n % 2 === 0 ? `xyyz-abc-${n}` : `q${n}q`;
      for (let p = 0; p < SOURCES.length; p++) {
        assert.equal(pf.answer(idx[p]!, value), res[p]!.test(value) ? 1 : 0, `${SOURCES[p]} on ${value}`);
      }
    }
  });

  it('allocates no answer array per one-off value once the recent list is full', () => {
    const { pf, idx } = built();
    let n = 0;
    const oneOff = (): void => {
      currentTransaction.serial = 20_000 + n;
      pf.answer(idx[0]!, `value-${n++}`);
    };
    for (let i = 0; i < 200; i++) oneOff(); // fills the recent list
    // Counts the typed arrays the prefilter makes (it reads the global binding at each call).
    const Original = globalThis.Uint8Array;
    let made = 0;
    globalThis.Uint8Array = class extends Original {
      constructor(...args: ConstructorParameters<typeof Uint8Array>) {
        super(...args);
        made++;
      }
    } as typeof Uint8Array;
    try {
      for (let i = 0; i < 1000; i++) oneOff();
    } finally {
      globalThis.Uint8Array = Original;
    }
    assert.equal(made, 0);
  });
});

describe('regex prefilter: admission across transactions', () => {
  it('keeps a value across requests once it came back in another transaction, not a one-off value', () => {
    const { pf, idx } = built();
    const cache = (pf as unknown as { cache: ClockCache<Uint8Array> }).cache;
    let serial = 40_000;
    const ask = (value: string): void => {
      currentTransaction.serial = serial++;
      pf.answer(idx[0]!, value);
    };
    ask('a header value');
    // Out of the recent list, so the next sight goes through admission again.
    for (let n = 0; n < 100; n++) ask(`one-off-${n}`);
    assert.equal(cache.peek('a header value') !== undefined, false, 'first sight: recent list only');
    ask(['a header', ' value'].join(''));
    assert.equal(cache.peek('a header value') !== undefined, true, 'seen in an earlier transaction: kept');
    assert.equal([...cache.keys()].some((k) => k.startsWith('one-off-')), false, 'one-off values are not kept');
  });
});

describe('regex prefilter: bounded cache, values in use kept', () => {
  it('keeps a value asked about in every transaction while many more values than it holds come and go, and answers stay right', () => {
    const pf = new RegexPrefilter(50);
    const idx = SOURCES.map((s) => pf.register(s, 'ARGS'));
    pf.build();
    const res = SOURCES.map((s) => new RegExp(s, 'ms'));
    const cache = (pf as unknown as { cache: ClockCache<Uint8Array> }).cache;
    const hot = 'xyz-abc-123';
    let serial = 50_000;
    const ask = (value: string): void => {
      for (let p = 0; p < SOURCES.length; p++) assert.equal(pf.answer(idx[p]!, value), res[p]!.test(value) ? 1 : 0, `${SOURCES[p]} on ${value}`);
    };
    const other = (v: number): string => (v % 3 === 0 ? `y${v}z` : `q-${v}-q`);
    currentTransaction.serial = serial++;
    ask(hot);
    // Values come back once, 70 values later: out of the recent list (64) by then, so the second
    // sight is admitted to the cache, which turns over ~10 times. The hot value is asked about in
    // every transaction from its own second sight on.
    let kept: Uint8Array | undefined;
    for (let n = 0; n < 570; n++) {
      for (const v of [n, n - 70]) {
        currentTransaction.serial = serial++;
        if (v >= 0) ask(other(v));
        if (n < 70) continue;
        ask(hot);
        kept ??= cache.peek(hot);
        assert.ok(kept, 'second sight: cached');
        assert.equal(cache.peek(hot), kept, `hot value dropped after ${n} others`);
      }
    }
    assert.ok(cache.size <= 50, `size ${cache.size}`);
  });
});

describe('regex prefilter: short values meet wide Sets', () => {
  // Eight patterns, two a chunk: four chunks, one wide Set of all eight for short values.
  const WIDE_SOURCES = ['abc', '^x', 'y+z', '[0-9]{3}$', '^[0-9]+$', 'q.q', '[^a-z]{5}', '(?:ab|cd)e?$'];
  function wideBuilt(): { pf: RegexPrefilter; idx: number[]; res: RegExp[]; calls: () => number } {
    const pf = new RegexPrefilter(1000, 2);
    const idx = WIDE_SOURCES.map((s, i) => pf.register(s, `G${i}`));
    pf.build();
    let calls = 0;
    const chunks = (pf as unknown as { chunks: { set: { match(b: Buffer): number[] }; wide: { set: { match(b: Buffer): number[] } } | undefined }[] }).chunks;
    const sets = new Set(chunks.flatMap((c) => (c.wide ? [c.set, c.wide.set] : [c.set])));
    for (const s of sets) {
      const match = s.match.bind(s);
      s.match = (b: Buffer): number[] => {
        calls++;
        return match(b);
      };
    }
    return { pf, idx, res: WIDE_SOURCES.map((s) => new RegExp(s, 'ms')), calls: () => calls };
  }

  it('answers each pattern as its regex does, short values and long, whichever pattern is asked first', () => {
    const { pf, idx, res } = wideBuilt();
    const values = ['', 'x', '123', '12345', 'abcde', 'cd', 'xyyz', 'q-q', '!!!!!', 'x'.repeat(31) + '9', 'x'.repeat(32) + '123', `${'a'.repeat(40)}cd`, 'é12', 'ab\ncd', '99999999999999999'];
    for (let n = 0; n < values.length * WIDE_SOURCES.length; n++) {
      currentTransaction.serial = 40_000 + n;
      // A new spelling each time (no cached answer), asked in a rotating order.
      const value = `${values[n % values.length]!}${n % 3 === 0 ? '' : String.fromCharCode(0x20 + (n % 90))}`;
      for (let k = 0; k < WIDE_SOURCES.length; k++) {
        const p = (k + n) % WIDE_SOURCES.length;
        assert.equal(pf.answer(idx[p]!, value), res[p]!.test(value) ? 1 : 0, `${WIDE_SOURCES[p]} on ${JSON.stringify(value)}`);
      }
    }
  });

  it('a short value asked about every pattern is one Set call; a long one one a chunk', () => {
    const { pf, idx, calls } = wideBuilt();
    currentTransaction.serial = 50_000;
    for (const i of idx) pf.answer(i, '1765000000003001');
    assert.equal(calls(), 1);
    const long = `${'1'.repeat(40)}abc`;
    for (const i of idx) pf.answer(i, long);
    assert.equal(calls(), 1 + 4);
  });
});

describe('regex prefilter: dense patterns apart', () => {
  // Six sparse patterns and three dense ones (they match most values), two a chunk.
  const SPARSE = ['abc', 'y+z', '[0-9]{3}$', 'q.q', '(?:ab|cd)e?$', '<script'];
  const DENSE = ['.', '^[^#]+', '^[0-9a-z]+$'];
  function denseBuilt(): { pf: RegexPrefilter; sparse: number[]; dense: number[]; hits: () => number; res: Map<number, RegExp> } {
    const pf = new RegexPrefilter(1000, 2);
    // Interleaved and in one group: without the split they would share chunks and wide Sets.
    const sparse: number[] = [];
    const dense: number[] = [];
    for (let k = 0; k < SPARSE.length; k++) {
      sparse.push(pf.register(SPARSE[k]!, 'ARGS'));
      if (k < DENSE.length) dense.push(pf.register(DENSE[k]!, 'ARGS', true));
    }
    pf.build();
    const res = new Map<number, RegExp>();
    sparse.forEach((i, k) => res.set(i, new RegExp(SPARSE[k]!, 'ms')));
    dense.forEach((i, k) => res.set(i, new RegExp(DENSE[k]!, 'ms')));
    let hits = 0;
    const chunks = (pf as unknown as { chunks: { set: { match(b: Buffer): number[] }; wide: { set: { match(b: Buffer): number[] } } | undefined }[] }).chunks;
    const sets = new Set(chunks.flatMap((c) => (c.wide ? [c.set, c.wide.set] : [c.set])));
    for (const s of sets) {
      const match = s.match.bind(s);
      s.match = (b: Buffer): number[] => {
        const found = match(b);
        hits += found.length;
        return found;
      };
    }
    return { pf, sparse, dense, hits: () => hits, res };
  }

  it('answers every pattern as its regex does, dense or not, in any order', () => {
    const { pf, sparse, dense, res } = denseBuilt();
    const all = [...sparse, ...dense];
    const values = ['', '3100', 'abc', 'xyyz', 'q-q#', '<script>', 'x'.repeat(40) + 'cde', '#', 'é1', 'a\nb'];
    for (let n = 0; n < values.length * all.length; n++) {
      currentTransaction.serial = 60_000 + n;
      const value = `${values[n % values.length]!}${n % 2 === 0 ? '' : String(n)}`;
      for (let k = 0; k < all.length; k++) {
        const p = all[(k + n) % all.length]!;
        assert.equal(pf.answer(p, value), res.get(p)!.test(value) ? 1 : 0, `${res.get(p)!.source} on ${JSON.stringify(value)}`);
      }
    }
  });

  it('a value asked about sparse patterns only meets no dense one', () => {
    const { pf, sparse, dense, hits } = denseBuilt();
    currentTransaction.serial = 70_000;
    // Every dense pattern matches these values and no sparse one does.
    for (const v of ['page', 'hello', 'x'.repeat(40)]) for (const i of sparse) assert.equal(pf.answer(i, v), 0);
    assert.equal(hits(), 0);
    for (const i of dense) assert.equal(pf.answer(i, 'page'), 1);
    assert.equal(hits(), dense.length);
  });
});
