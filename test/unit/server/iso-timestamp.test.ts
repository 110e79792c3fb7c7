// The request timestamp agents get (ctx.timestamp): isoAt keeps the text up to the seconds and
// appends the milliseconds; it must always be what toISOString gives.
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { isoAt } from '../../../src/server/context.ts';

const same = (ms: number): void => assert.equal(isoAt(ms), new Date(ms).toISOString(), `ms ${ms}`);

test('isoAt: every millisecond of a second, in order and back again (the kept prefix and the cached text)', () => {
  const base = Date.UTC(2026, 11, 7, 4, 15, 59);
  for (let ms = base - 3; ms < base + 1004; ms++) same(ms);
  for (let ms = base + 1003; ms >= base - 3; ms -= 7) same(ms);
  // the same millisecond twice, then one whose second differs only in the minute/hour/day/year
  same(base);
  same(base);
  for (const t of [Date.UTC(2026, 11, 31, 23, 59, 59, 999), Date.UTC(2027, 0, 1), Date.UTC(2024, 1, 29, 12, 0, 0, 5), Date.UTC(2026, 11, 7, 5, 0, 0, 10)]) {
    same(t);
    same(t + 1);
    same(t - 1);
  }
});

test('isoAt: random times, before 1970 and past year 9999 included (toISOString\'s own year forms)', () => {
  let seed = 7;
  const rnd = (): number => {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    return seed / 2147483648;
  };
  for (let i = 0; i < 5000; i++) same(Math.floor((rnd() - 0.5) * 2 * 8.64e15));
  for (let i = 0; i < 5000; i++) same(Date.now() + Math.floor(rnd() * 5000));
  for (const t of [0, -1, 999, 1000, -1000, -1001, 253402300799999, 253402300800000, -62167219200001, -62167219200000]) same(t);
});
