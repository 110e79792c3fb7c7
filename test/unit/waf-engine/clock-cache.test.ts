// ClockCache (src/waf/clock-cache.ts): the bounded store of the miss memo and the regex prefilter.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { ClockCache } from '../../../src/waf/clock-cache.ts';

describe('ClockCache', () => {
  it('keeps up to its capacity, then evicts the oldest key not looked up since (second chance)', () => {
    const c = new ClockCache<number>(3);
    for (const [k, v] of [['a', 1], ['b', 2], ['c', 3]] as const) {
      assert.equal(c.reserve(), undefined, 'room left: nothing evicted');
      c.add(k, v);
    }
    assert.equal(c.size, 3);
    assert.equal(c.get('a'), 1); // a marked
    assert.equal(c.reserve(), 2, 'a was looked up, so b goes');
    c.add('d', 4);
    assert.deepEqual([c.peek('a'), c.peek('b'), c.peek('c'), c.peek('d')], [1, undefined, 3, 4]);
    // a lost its mark when the hand passed it: with nothing looked up, the hand goes on from b's slot.
    c.add('e', 5); // evicts c (next after b's slot)
    c.add('f', 6); // then a
    assert.deepEqual([...c.keys()].sort(), ['d', 'e', 'f']);
    assert.equal(c.size, 3);
  });

  it('every key marked: the hand unmarks them all and evicts the one it started at', () => {
    const c = new ClockCache<string>(4);
    for (const k of ['a', 'b', 'c', 'd']) c.add(k, k);
    for (const k of ['a', 'b', 'c', 'd']) c.get(k);
    assert.equal(c.reserve(), 'a');
    c.add('e', 'e');
    assert.equal(c.reserve(), 'b', 'the others lost their marks on the way');
  });

  it('peek does not mark; clear empties', () => {
    const c = new ClockCache<number>(2);
    c.add('a', 1);
    c.add('b', 2);
    assert.equal(c.peek('a'), 1);
    assert.equal(c.reserve(), 1);
    c.add('c', 3);
    c.clear();
    assert.equal(c.size, 0);
    assert.equal(c.get('c'), undefined);
    assert.equal(c.reserve(), undefined);
  });
});
