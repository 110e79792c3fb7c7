import { strict as assert } from 'node:assert';
import { test } from 'node:test';

import { PendingTransactions } from '../../../src/waf/agent/pending.ts';

function clocked(max: number, ttl: number): { p: PendingTransactions<string>; tick: (ms: number) => void } {
  let t = 1000;
  return { p: new PendingTransactions<string>(max, ttl, () => t), tick: (ms) => (t += ms) };
}

test('set, get, delete; size counts what is kept', () => {
  const { p } = clocked(10, 1000);
  p.set('a', 'A');
  p.set('b', 'B');
  assert.equal(p.size, 2);
  assert.equal(p.get('a'), 'A');
  p.delete('a');
  p.delete('a'); // absent: nothing happens
  assert.equal(p.get('a'), undefined);
  assert.equal(p.size, 1);
  p.delete('b');
  assert.equal(p.size, 0);
  p.set('c', 'C'); // usable again after the last entry went
  assert.equal(p.get('c'), 'C');
});

test('over max, the least recently used goes: get() counts as a use, set() of a kept id too', () => {
  const { p } = clocked(3, 1000);
  p.set('a', 'A');
  p.set('b', 'B');
  p.set('c', 'C');
  assert.equal(p.get('a'), 'A'); // order now b, c, a
  p.set('d', 'D'); // b goes
  assert.equal(p.get('b'), undefined);
  assert.deepEqual(['a', 'c', 'd'].map((k) => p.get(k)), ['A', 'C', 'D']); // order now a, c, d
  p.set('a', 'A2'); // order c, d, a
  p.set('e', 'E'); // c goes
  assert.equal(p.get('c'), undefined);
  assert.equal(p.get('a'), 'A2');
  assert.equal(p.size, 3);
});

test('an entry older than the TTL is gone on get; get does not extend it, set restarts it', () => {
  const { p, tick } = clocked(10, 1000);
  p.set('a', 'A');
  p.set('b', 'B');
  tick(600);
  assert.equal(p.get('a'), 'A');
  tick(600); // 1,200 ms after both were set
  assert.equal(p.get('a'), undefined, 'get did not extend the TTL');
  assert.equal(p.size, 1, 'the stale entry was dropped');
  p.set('b', 'B2');
  tick(900);
  assert.equal(p.get('b'), 'B2', 'set restarted the TTL');
  tick(200);
  assert.equal(p.get('b'), undefined);
});
