import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import RE2 from 're2';

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

describe('regex prefilter: wide Sets for short values', () => {
  // 80 patterns of one group: three chunks of 32 for long values, one wide Set for short ones.
  const sources = Array.from({ length: 80 }, (_, i) => `tok${i}x|^s${i}-`);

  function setCalls(values: string[]): { calls: number; answers: number[][] } {
    const pf = new RegexPrefilter();
    const idx = sources.map((s) => pf.register(s, 'ARGS'));
    pf.build();
    const proto = RE2.Set.prototype as { match(input: Buffer | string): number[] };
    const match = proto.match;
    let calls = 0;
    proto.match = function (this: unknown, input: Buffer | string): number[] {
      calls++;
      return match.call(this, input);
    };
    const answers: number[][] = [];
    try {
      for (let v = 0; v < values.length; v++) {
        currentTransaction.serial = 30_000 + v;
        answers.push(idx.map((i) => pf.answer(i, values[v]!)));
      }
    } finally {
      proto.match = match;
    }
    return { calls, answers };
  }

  it('scans a short value once for every pattern of a group, a long one per chunk of 32, with the same answers as each regex', () => {
    const short = ['tok3x tok70x', 's41-', 'nothing here', 's7-tok79x'];
    const long = short.map((v) => `${v}${'.'.repeat(200)}`);
    const s = setCalls(short);
    const l = setCalls(long);
    assert.equal(s.calls, short.length);
    assert.equal(l.calls, long.length * 3);
    for (const [values, got] of [[short, s.answers], [long, l.answers]] as const) {
      values.forEach((value, v) => {
        sources.forEach((src, p) => assert.equal(got[v]![p], new RegExp(src, 'ms').test(value) ? 1 : 0, `${src} on ${value.slice(0, 20)}`));
      });
    }
  });
});
