import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ClientBudgetGate, ClientBudgets } from '../../../src/server/client-budgets.ts';

test('one bucket per key and shape; a new shape (a reload) makes a new one', () => {
  const t = new ClientBudgets(8);
  const a = t.bucket('k', 10, 1);
  assert.equal(t.bucket('k', 10, 1), a);
  assert.notEqual(t.bucket('k', 20, 2), a);
  assert.equal(t.size, 1);
});

test('the table stays bounded: refilled buckets make room first, else the oldest', () => {
  const t = new ClientBudgets(4);
  // in use: spent, refilling about never
  const busy = ['a', 'b', 'c'].map((k) => {
    const b = t.bucket(k, 10, 1e-9);
    b.take(5);
    return b;
  });
  // refilled at once: holds nothing a new bucket would not
  t.bucket('idle', 10, 1e12).take(1);
  t.bucket('new', 10, 1);
  assert.equal(t.size, 4);
  assert.deepEqual(['a', 'b', 'c'].map((k, i) => t.bucket(k, 10, 1e-9) === busy[i]), [true, true, true], 'the busy buckets were kept');
  // all in use: the oldest goes
  for (let i = 0; i < 100; i++) t.bucket(`flood${i}`, 10, 1e-9).take(5);
  assert.equal(t.size, 4);
});

test('the gate: off at 0, trusted proxies exempt, an IPv6 client per /64, IPv4-mapped as IPv4', () => {
  const t = new ClientBudgets();
  const exempt = (ip: string) => ip === '10.0.0.1';
  assert.equal(new ClientBudgetGate(t, 0, exempt).chunks('192.0.2.1', 4096, 1000), undefined);
  const g = new ClientBudgetGate(t, 8, exempt);
  assert.equal(g.chunks('10.0.0.1', 4096, 1000), undefined);
  assert.equal(g.messages('r', '10.0.0.1', 1000, 100), undefined);
  const v6 = g.chunks('2001:db8:0:1::5', 4096, 1000)!;
  assert.equal(v6.capacity, 8 * 4096);
  assert.equal(v6.perSecond, 8 * 1000);
  assert.equal(g.chunks('2001:db8:0:1:ffff::9', 4096, 1000), v6);
  assert.notEqual(g.chunks('2001:db8:0:2::5', 4096, 1000), v6);
  assert.equal(g.chunks('::ffff:192.0.2.7', 4096, 1000), g.chunks('192.0.2.7', 4096, 1000));
  // a route's messages are their own bucket, per route
  assert.notEqual(g.messages('r', '192.0.2.7', 1000, 100), g.chunks('192.0.2.7', 4096, 1000));
  assert.notEqual(g.messages('r', '192.0.2.7', 1000, 100), g.messages('s', '192.0.2.7', 1000, 100));
  assert.equal(g.messages('r', '192.0.2.7', 1000, 100)!.capacity, 8000);
});
