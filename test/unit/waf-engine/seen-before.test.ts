// SeenBefore (src/waf/seen-before.ts) hashes a value's characters: equal text is the same value
// whatever V8 made of the string (a literal, a concatenation, a slice, a Buffer's decoding, a
// two-byte string), which is how the in-process engine meets the gateway's strings.
import { strict as assert } from 'node:assert';
import { test } from 'node:test';

import { currentTransaction, SeenBefore } from '../../../src/waf/seen-before.ts';

const big = `${'x'.repeat(64)}blue running shoes`;
const kinds: [string, () => string][] = [
  ['a literal', () => 'blue running shoes'],
  ['a concatenation', () => ['blue', ' running', ' shoes'].join('').slice(0, 4) + ' running shoes'],
  ['a slice', () => big.slice(64)],
  ['a Buffer decoded as latin1', () => Buffer.from('blue running shoes', 'latin1').toString('latin1')],
  ['JSON.parse', () => JSON.parse('"blue running shoes"') as string],
];

test('SeenBefore: the same text in another transaction is seen before, whatever the string kind', () => {
  for (const [first, a] of kinds) {
    for (const [second, b] of kinds) {
      const seen = new SeenBefore();
      currentTransaction.serial = 1;
      assert.equal(seen.check(a()), false, `${first}: first sight`);
      assert.equal(seen.check(b()), false, `${second} in the same transaction`);
      currentTransaction.serial = 2;
      assert.equal(seen.check(b()), true, `${second} after ${first}`);
    }
  }
  const seen = new SeenBefore();
  currentTransaction.serial = 3;
  seen.check('blue running sho\u015bs');
  currentTransaction.serial = 4;
  assert.equal(seen.check(['blue running sho', '\u015b', 's'].join('')), true, 'two-byte text too');
  assert.equal(seen.check('blue running shoes!'), false, 'other text is not');
});

test('SeenBefore: a value checked again in the same transaction answers as the table does, over the recent list and past it', () => {
  const withRecent = new SeenBefore();
  const tableOnly = new SeenBefore() as unknown as { hashed(s: string, serial: number): boolean };
  // Values repeat within and across transactions, at distances below and above the recent list's
  // length, as a new string of the same text or the same string.
  const values = Array.from({ length: 12 }, (_, i) => `/products/search?q=blue+running+shoes&size=42&page=${i % 7}`);
  let rng = 7;
  const next = (n: number): number => {
    rng = (Math.imul(rng, 1103515245) + 12345) >>> 0;
    return rng % n;
  };
  let answers = 0;
  for (let serial = 1; serial <= 200; serial++) {
    currentTransaction.serial = 100_000 + serial;
    for (let k = 0; k < 10; k++) {
      const base = values[next(values.length)]!;
      const s = next(2) === 0 ? base : [base.slice(0, 9), base.slice(9)].join('');
      const want = tableOnly.hashed(s, currentTransaction.serial);
      assert.equal(withRecent.check(s), want, `${s} in transaction ${serial}`);
      if (want) answers++;
    }
  }
  assert.ok(answers > 1000, `values seen before: ${answers}`);
});

test('SeenBefore: the recent list is per transaction (a value first seen in this one, checked in the next, is seen before)', () => {
  const seen = new SeenBefore();
  currentTransaction.serial = 200_000;
  assert.equal(seen.check('GET / HTTP/1.1'), false);
  assert.equal(seen.check('GET / HTTP/1.1'), false);
  currentTransaction.serial = 200_001;
  assert.equal(seen.check('GET / HTTP/1.1'), true);
  assert.equal(seen.check('GET / HTTP/1.1'), true);
});
