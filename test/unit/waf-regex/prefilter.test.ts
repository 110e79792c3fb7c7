import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

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
    const cache = (pf as unknown as { cache: Map<string, Uint8Array> }).cache;
    let serial = 40_000;
    const ask = (value: string): void => {
      currentTransaction.serial = serial++;
      pf.answer(idx[0]!, value);
    };
    ask('a header value');
    // Out of the recent list, so the next sight goes through admission again.
    for (let n = 0; n < 100; n++) ask(`one-off-${n}`);
    assert.equal(cache.has('a header value'), false, 'first sight: recent list only');
    ask(['a header', ' value'].join(''));
    assert.equal(cache.has('a header value'), true, 'seen in an earlier transaction: kept');
    assert.equal([...cache.keys()].some((k) => k.startsWith('one-off-')), false, 'one-off values are not kept');
  });
});
