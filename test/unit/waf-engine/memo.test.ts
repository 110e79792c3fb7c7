import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { makeItem } from '../../../src/waf/engine/collections.ts';
import { knownMiss, MissMemo, setMiss } from '../../../src/waf/engine/memo.ts';
import { currentTransaction } from '../../../src/waf/seen-before.ts';

describe('miss memo bitsets', () => {
  it('sets and reads each link bit alone, across word boundaries', () => {
    const memo = new MissMemo(100);
    for (const link of [0, 1, 7, 8, 31, 32, 33, 63, 64, 99]) {
      const bits = memo.of(makeItem('', `value-${link}`))!;
      assert.equal(knownMiss(bits, link), false);
      setMiss(bits, link);
      for (let other = 0; other < 100; other++) assert.equal(knownMiss(bits, other), other === link, `link ${link}, read ${other}`);
    }
  });

  it('split: `all` has a link only when every known item misses it; new values stay fresh', () => {
    const memo = new MissMemo(70);
    // Two transactions see the same values, so the memo keeps them (admission on second sight).
    const values = ['a', 'b', 'c'];
    for (let tx = 1; tx <= 2; tx++) {
      currentTransaction.serial = 1000 + tx;
      for (const v of values) memo.of(makeItem('k', v));
    }
    currentTransaction.serial = 1003;
    const items = values.map((v) => makeItem('k', v));
    for (const it of items) for (const link of [3, 40, 65]) setMiss(memo.of(it)!, link);
    setMiss(memo.of(items[0]!)!, 50); // only one item misses link 50
    const fresh = makeItem('k', 'never seen');
    const split = memo.split([...items, fresh]);
    assert.deepEqual(split.fresh, [fresh]);
    for (const link of [3, 40, 65]) assert.equal(knownMiss(split.all, link), true, `link ${link}`);
    for (const link of [0, 50, 69]) assert.equal(knownMiss(split.all, link), false, `link ${link}`);
  });
});
